"""The Shopify adapter against the schema-validated Shopify fake (tests/fakes/shopify.py), through
Gallra's own Admin client and `plugin.shopify.operations`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from adapters.base import AdapterContext, AuthFailed, Outcome, PermanentFailure, ShopInfo
from adapters.http import ProviderHttp
from adapters.shopify import Shopify, ShopifyConfig
from plugin.cost_throttle import CostThrottle
from plugin.documents.extract import compact
from plugin.holdings import Category, Subject
from plugin.ledger import load_shop
from plugin.models import shop_cell
from plugin.shopify.client import AdminClient
from tests.conftest import make_settings
from tests.timing import SkippingClock

SHOP = "butik-a.myshopify.com"
CUSTOMER = 191167
ANNA = Subject(shop_domain=SHOP, customer_id=CUSTOMER, email="anna@example.se", order_ids=(299938,))


@pytest.fixture
def store(shopify_fake: Any) -> Any:
    shopify_fake.add_shop(SHOP, country="SE", timezone="Europe/Stockholm", token="shpat_a")
    shopify_fake.add_customer(
        SHOP,
        CUSTOMER,
        email="anna@example.se",
        phone="+46701234567",
        first_name="Anna",
        email_marketing="SUBSCRIBED",
        sms_marketing="SUBSCRIBED",
    )
    shopify_fake.add_order(
        SHOP,
        299938,
        customer_id=CUSTOMER,
        created_at=datetime(2025, 3, 1, 23, 30, tzinfo=UTC),  # 00:30 on 2 March in Stockholm (CET)
        fulfillments=[
            {
                "id": 1,
                "created_at": datetime(2025, 3, 3, tzinfo=UTC),
                "tracking": [{"company": "PostNord Sverige AB", "number": "RR123SE", "url": None}],
            }
        ],
    )
    return shopify_fake


@pytest.fixture
async def client_factory(clock: SkippingClock) -> AsyncIterator[Any]:
    async with httpx.AsyncClient() as http:

        def factory(token: str = "shpat_a") -> Any:  # noqa: S107 - the fake shop's token
            client = AdminClient(http, make_settings(), SHOP, token, throttle=CostThrottle(clock))

            async def make() -> AdminClient:
                return client

            return make

        yield factory


def shopify(client_factory: Any, token: str = "shpat_a", **settings: Any) -> Shopify:  # noqa: S107
    ctx = AdapterContext(
        shop=ShopInfo(domain=SHOP, name="Butik A", timezone="Europe/Stockholm"),
        http=ProviderHttp(httpx.AsyncClient()),
        admin_client=client_factory(token),
    )
    return Shopify(ShopifyConfig.model_validate(settings), ctx)


async def test_find_gives_account_marketing_orders_and_shipments(store: Any, client_factory: Any) -> None:
    held = {(h.system, h.category, h.ref): h for h in await shopify(client_factory).find(ANNA)}

    assert ("shopify", Category.CUSTOMER_ACCOUNT, f"customer:{CUSTOMER}") in held
    assert ("shopify", Category.NEWSLETTER, f"customer:{CUSTOMER}:marketing") in held
    order = held[("shopify", Category.ACCOUNTING_RECORD, "order:299938")]
    assert order.order_created is not None and order.order_created.isoformat() == "2025-03-02"
    assert ("postnord", Category.SHIPMENT, "shipment:299938:RR123SE") in held


async def test_find_for_an_unknown_customer_is_empty(store: Any, client_factory: Any) -> None:
    assert await shopify(client_factory).find(Subject(shop_domain=SHOP, customer_id=1)) == []


async def test_erase_marketing_unsubscribes_e_mail_and_sms_once(store: Any, client_factory: Any) -> None:
    adapter = shopify(client_factory)
    marketing = next(h for h in await adapter.find(ANNA) if h.category is Category.NEWSLETTER)

    result = await adapter.erase(ANNA, marketing)

    assert result.outcome is Outcome.SUPPRESSED
    assert "e-mail and SMS" in result.detail
    assert store.customer(SHOP, CUSTOMER)["email_marketing"] == "UNSUBSCRIBED"
    assert store.customer(SHOP, CUSTOMER)["sms_marketing"] == "UNSUBSCRIBED"
    fields = sorted(m.name for m in store.mutations)
    assert fields == ["customerEmailMarketingConsentUpdate", "customerSmsMarketingConsentUpdate"]

    again = await adapter.erase(ANNA, marketing)  # repeated: nothing left to change, no mutation

    assert again.outcome is Outcome.SUPPRESSED and len(store.mutations) == 2


async def test_sms_can_be_left_alone(store: Any, client_factory: Any) -> None:
    adapter = shopify(client_factory, unsubscribe_sms=False)
    marketing = next(h for h in await adapter.find(ANNA) if h.category is Category.NEWSLETTER)

    await adapter.erase(ANNA, marketing)

    assert store.customer(SHOP, CUSTOMER)["sms_marketing"] == "SUBSCRIBED"
    assert [m.name for m in store.mutations] == ["customerEmailMarketingConsentUpdate"]


async def test_erase_account_requests_shopifys_erasure(store: Any, client_factory: Any) -> None:
    adapter = shopify(client_factory)
    account = next(h for h in await adapter.find(ANNA) if h.category is Category.CUSTOMER_ACCOUNT)

    first = await adapter.erase(ANNA, account)
    second = await adapter.erase(ANNA, account)

    assert first.outcome is second.outcome is Outcome.ERASE_REQUESTED
    assert first.provider_ref == f"gid://shopify/Customer/{CUSTOMER}"
    assert store.shops[SHOP].erasure_requested == {CUSTOMER}


async def test_erasing_a_missing_customer_is_already_absent(store: Any, client_factory: Any) -> None:
    adapter = shopify(client_factory)
    held = await adapter.find(ANNA)
    del store.shops[SHOP].customers[CUSTOMER]

    results = {
        h.category: await adapter.erase(ANNA, h)
        for h in held
        if h.system == "shopify" and "customer" in h.ref
    }

    assert {r.outcome for r in results.values()} == {Outcome.ALREADY_ABSENT}


async def test_orders_are_not_erased_one_by_one(store: Any, client_factory: Any) -> None:
    adapter = shopify(client_factory)
    order = next(h for h in await adapter.find(ANNA) if h.category is Category.ACCOUNTING_RECORD)

    with pytest.raises(PermanentFailure, match="customer account"):
        await adapter.erase(ANNA, order)


async def test_throttling_is_waited_out(store: Any, client_factory: Any, clock: SkippingClock) -> None:
    store.fail_next(SHOP, status=429, headers={"Retry-After": "1"})

    held = await shopify(client_factory).find(ANNA)

    assert held and 1.0 in clock.sleeps


async def test_rejected_token_is_an_auth_failure_saying_what_to_do(store: Any, client_factory: Any) -> None:
    adapter = shopify(client_factory, token="shpat_revoked")

    with pytest.raises(AuthFailed) as raised:
        await adapter.check()

    assert str(raised.value).startswith("shopify:") and "access token" in str(raised.value)
    assert "shpat_revoked" not in str(raised.value)


async def test_check_passes(store: Any, client_factory: Any) -> None:
    await shopify(client_factory).check()


async def test_export_has_everything_the_scopes_read(shopify_fake: Any, client_factory: Any) -> None:
    """The register extract's Shopify part: account, addresses, consent with its dates, and every
    order (the customer's and a requested guest order) with line items, totals, addresses, notes
    and fulfilments with tracking."""
    home = {
        "firstName": "Anna",
        "lastName": "Svensson",
        "address1": "Storgatan 1",
        "zip": "111 22",
        "city": "Stockholm",
        "country": "Sweden",
        "countryCodeV2": "SE",
        "phone": "+46701234567",
    }
    shopify_fake.add_shop(SHOP, country="SE", timezone="Europe/Stockholm", token="shpat_a")
    shopify_fake.add_customer(
        SHOP,
        CUSTOMER,
        email="anna@example.se",
        phone="+46701234567",
        first_name="Anna",
        last_name="Svensson",
        email_marketing="SUBSCRIBED",
        sms_marketing="UNSUBSCRIBED",
        email_opt_in_level="CONFIRMED_OPT_IN",
        sms_opt_in_level="SINGLE_OPT_IN",
        email_marketing_updated_at=datetime(2024, 5, 1, 8, tzinfo=UTC),
        sms_marketing_updated_at=datetime(2025, 1, 2, tzinfo=UTC),
        note="Prefers morning deliveries",
        tags=["vip"],
        locale="sv",
        addresses=[home],
    )
    shopify_fake.add_order(
        SHOP,
        299938,
        customer_id=CUSTOMER,
        created_at=datetime(2025, 3, 1, 23, 30, tzinfo=UTC),
        email="anna@example.se",
        phone="+46701234567",
        note="Ring på dörren",
        tags=["gift"],
        line_items=[
            {"title": "Ullsocka", "variant": "38-40", "sku": "US-38", "quantity": 2, "price": "149.00"}
        ],
        shipping_address=home,
        billing_address=home,
        shipping_method="PostNord MyPack",
        shipping_price="49.00",
        attributes={"gift_message": "Grattis"},
        fulfillments=[
            {
                "id": 1,
                "created_at": datetime(2025, 3, 3, tzinfo=UTC),
                "delivered_at": datetime(2025, 3, 5, tzinfo=UTC),
                "tracking": [
                    {"company": "PostNord", "number": "RR123SE", "url": "https://t.example/RR123SE"}
                ],
            }
        ],
    )
    shopify_fake.add_order(  # a guest order the webhook names, not on the account
        SHOP,
        299940,
        created_at=datetime(2025, 4, 1, tzinfo=UTC),
        # More lines than one page of the export holds: the order says it is not complete.
        line_items=[{"title": "Mössa", "quantity": 1, "price": "199.00"}]
        + [{"title": f"Vante {n}", "quantity": 1, "price": "99.00"} for n in range(25)],
    )
    subject = Subject(shop_domain=SHOP, customer_id=CUSTOMER, order_ids=(299938, 299940))

    # As the extract shows it: what Shopify left empty is left out.
    exported = compact(await shopify(client_factory).export(subject))

    customer = exported["customer"]
    assert customer["first_name"] == "Anna" and customer["last_name"] == "Svensson"
    assert customer["email"] == "anna@example.se" and customer["phone"] == "+46701234567"
    assert customer["note"] == "Prefers morning deliveries" and customer["tags"] == ["vip"]
    assert customer["created_at"] == "2020-01-01T00:00:00+00:00" and customer["locale"] == "sv"
    assert customer["addresses"] == [
        {
            "name": "Anna Svensson",
            "address1": "Storgatan 1",
            "zip": "111 22",
            "city": "Stockholm",
            "country": "Sweden",
            "phone": "+46701234567",
            "country_code": "SE",
        }
    ]
    assert customer["marketing_consent"] == {
        "email": {
            "email_address": "anna@example.se",
            "state": "SUBSCRIBED",
            "opt_in_level": "CONFIRMED_OPT_IN",
            "consent_updated_at": "2024-05-01T08:00:00+00:00",
        },
        "sms": {
            "phone_number": "+46701234567",
            "state": "UNSUBSCRIBED",
            "opt_in_level": "SINGLE_OPT_IN",
            "consent_updated_at": "2025-01-02T00:00:00+00:00",
        },
    }
    assert customer["amount_spent"] == {"amount": "347.00", "currency": "SEK"}
    first, guest = exported["orders"]
    assert first["id"] == 299938 and first["name"] and first["currency"] == "SEK"
    assert first["note"] == "Ring på dörren" and first["tags"] == ["gift"]
    assert first["email"] == "anna@example.se" and first["phone"] == "+46701234567"
    assert first["attributes"] == {"gift_message": "Grattis"}
    assert first["line_items"] == [
        {
            "title": "Ullsocka",
            "variant": "38-40",
            "sku": "US-38",
            "quantity": 2,
            "unit_price": {"amount": "149.00", "currency": "SEK"},
            "total": {"amount": "298.00", "currency": "SEK"},
        }
    ]
    assert first["totals"]["subtotal"] == {"amount": "298.00", "currency": "SEK"}
    assert first["totals"]["shipping"] == {"amount": "49.00", "currency": "SEK"}
    assert first["totals"]["total"] == {"amount": "347.00", "currency": "SEK"}
    assert first["shipping_address"]["address1"] == "Storgatan 1"
    assert first["billing_address"]["city"] == "Stockholm"
    assert first["shipping_method"] == "PostNord MyPack"
    (fulfillment,) = first["fulfillments"]
    assert fulfillment["delivered_at"] == "2025-03-05T00:00:00+00:00"
    assert fulfillment["tracking"] == [
        {"carrier": "PostNord", "number": "RR123SE", "url": "https://t.example/RR123SE"}
    ]
    assert guest["id"] == 299940 and guest["line_items"][0]["title"] == "Mössa"
    assert len(guest["line_items"]) == 25 and guest["line_items_incomplete"] is True
    assert "line_items_incomplete" not in first  # all its lines are there


async def test_built_for_a_shop_through_its_stored_token(store: Any, sqlite_db: Any) -> None:
    """`plugin.connections.build_adapter` gives the adapter a client on the shop's stored token."""
    from plugin import connections
    from plugin.crypto import Vault
    from plugin.models import Shop
    from plugin.runtime import Runtime
    from tests.conftest import TEST_ENCRYPTION_KEY

    async with httpx.AsyncClient() as http:
        runtime = Runtime(
            settings=make_settings(sqlite_db.url), db=sqlite_db, vault=Vault(TEST_ENCRYPTION_KEY), http=http
        )
        async with sqlite_db.transaction() as session:
            session.add(
                Shop(
                    domain=SHOP,
                    name="Butik A",
                    timezone="Europe/Stockholm",
                    access_token_enc=runtime.vault.encrypt("shpat_a", shop_cell("access_token_enc", SHOP)),
                )
            )
            session.add(Shop(domain="gone.myshopify.com", name="Gone", status="active"))
            session.add(
                Shop(
                    domain="expired.myshopify.com",
                    name="Expired",
                    access_token_enc=runtime.vault.encrypt(
                        "shpat_old", shop_cell("access_token_enc", "expired.myshopify.com")
                    ),
                    access_token_expires_at=datetime(2020, 1, 1, tzinfo=UTC),
                )
            )
        async with sqlite_db.session() as session:
            shop = await load_shop(session, SHOP)
            gone = await load_shop(session, "gone.myshopify.com")
            assert shop is not None and gone is not None
            adapter = await connections.build_adapter(runtime, session, shop, "shopify", step_id=1)
            with pytest.raises(connections.NotConfigured):
                await connections.build_adapter(runtime, session, gone, "shopify")
            expired = await load_shop(session, "expired.myshopify.com")
            assert expired is not None
            stale = await connections.build_adapter(runtime, session, expired, "shopify")
        with pytest.raises(AuthFailed, match="reinstall the app"):
            await stale.find(ANNA)

        held = await adapter.find(ANNA)
        await adapter.check()

    assert any(h.ref == f"customer:{CUSTOMER}" for h in held)


async def test_reduce_marketing_unsubscribes_and_keeps_the_customer(store: Any, client_factory: Any) -> None:
    adapter = shopify(client_factory)
    marketing = next(h for h in await adapter.find(ANNA) if h.category is Category.NEWSLETTER)
    nobody = Subject(shop_domain=SHOP)  # a swept holding: the ref carries the customer id

    first = await adapter.reduce(nobody, marketing, ("name", "phone", "address"))
    again = await adapter.reduce(nobody, marketing, ("name", "phone", "address"))

    assert first.outcome is again.outcome is Outcome.SUPPRESSED
    # The consent state is the suppression entry; the fields are the customer account's, and the
    # result says so instead of reporting them removed.
    assert first.removed == () and first.still_held == ()
    assert first.detail == (
        "e-mail and SMS marketing consent set to UNSUBSCRIBED; name, phone, address are on the customer "
        "account, handled by its own step"
    )
    assert store.customer(SHOP, CUSTOMER)["email_marketing"] == "UNSUBSCRIBED"
    assert store.customer(SHOP, CUSTOMER)["sms_marketing"] == "UNSUBSCRIBED"
    assert sorted(m.name for m in store.mutations) == [
        "customerEmailMarketingConsentUpdate",
        "customerSmsMarketingConsentUpdate",
    ]
    assert store.shops[SHOP].erasure_requested == set() and CUSTOMER in store.shops[SHOP].customers


async def test_reduce_of_a_missing_customer_is_already_absent(store: Any, client_factory: Any) -> None:
    adapter = shopify(client_factory)
    marketing = next(h for h in await adapter.find(ANNA) if h.category is Category.NEWSLETTER)
    del store.shops[SHOP].customers[CUSTOMER]

    assert (await adapter.reduce(ANNA, marketing, ())).outcome is Outcome.ALREADY_ABSENT
    assert store.mutations == [] and store.shops[SHOP].erasure_requested == set()


async def test_reduce_keeps_the_account_and_orders_whole(store: Any, client_factory: Any) -> None:
    adapter = shopify(client_factory)
    held = [h for h in await adapter.find(ANNA) if h.system == "shopify"]
    others = [h for h in held if h.category is not Category.NEWSLETTER]
    assert {Category.CUSTOMER_ACCOUNT, Category.ACCOUNTING_RECORD} <= {h.category for h in others}

    for holding in others:
        with pytest.raises(PermanentFailure, match="kept whole until its rule ends"):
            await adapter.reduce(ANNA, holding, ("email",))

    assert store.mutations == [] and store.shops[SHOP].erasure_requested == set()
