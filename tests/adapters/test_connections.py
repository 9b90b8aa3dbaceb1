"""Per-shop adapter connections on SQLite and PostgreSQL: validated, encrypted at rest, masked when
shown, built into adapters for the executor, checked; one shop never sees another's."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text

from adapters.base import ProviderConfig
from adapters.klaviyo import Klaviyo, KlaviyoConfig
from adapters.postnord import PostNord
from plugin import connections
from plugin.crypto import Vault
from plugin.db import Database
from plugin.holdings import Shipment, Subject
from plugin.ledger import load_shop
from plugin.models import Shop, shop_cell
from plugin.outbox import Outbox, list_messages
from plugin.runtime import Runtime
from tests.conftest import TEST_ENCRYPTION_KEY, make_settings
from tests.fakes.klaviyo import KlaviyoFake

SHOP_A = "butik-a.myshopify.com"
SHOP_B = "butik-b.myshopify.com"


@pytest.fixture
async def runtime(db: Database) -> AsyncIterator[Runtime]:
    vault = Vault(TEST_ENCRYPTION_KEY)
    rt = Runtime(settings=make_settings(db.url), db=db, vault=vault, http=httpx.AsyncClient())
    async with db.transaction() as session:
        for domain, name in ((SHOP_A, "Butik A"), (SHOP_B, "Butik B")):
            session.add(
                Shop(
                    domain=domain,
                    name=name,
                    contact_email_enc=vault.encrypt(
                        f"owner@{domain}", shop_cell("contact_email_enc", domain)
                    ),
                    country="SE",
                    locale="sv",
                    access_token_enc=vault.encrypt("shpat_x", shop_cell("access_token_enc", domain)),
                )
            )
    yield rt
    await rt.http.aclose()


async def shop(runtime: Runtime, domain: str = SHOP_A) -> Shop:
    async with runtime.db.session() as session:
        found = await load_shop(session, domain)
    assert found is not None
    return found


async def test_settings_are_validated_stored_encrypted_and_masked(runtime: Runtime) -> None:
    async with runtime.db.transaction() as session:
        await connections.configure(runtime, session, SHOP_A, "klaviyo", {"api_key": "pk_live_secret"})

    async with runtime.db.session() as session:
        raw = (await session.execute(text("SELECT config_enc FROM adapter_connections"))).scalar_one()
        row = await connections.get_connection(session, SHOP_A, "klaviyo")
    assert "pk_live_secret" not in raw
    assert row is not None and row.status == "unchecked"
    config = connections.load_config(runtime, row)
    assert isinstance(config, KlaviyoConfig) and config.api_key.get_secret_value() == "pk_live_secret"
    shown = connections.describe(config)
    assert shown["api_key"] == connections.MASK
    assert shown["region"] is None and shown["base_url"] is None and shown["suppress"] is True
    assert isinstance(config, ProviderConfig) and config.root() == "https://a.klaviyo.com"


async def test_invalid_settings_name_the_key_and_never_the_value(runtime: Runtime) -> None:
    async with runtime.db.transaction() as session:
        with pytest.raises(connections.ConfigInvalid) as missing:
            await connections.configure(runtime, session, SHOP_A, "klaviyo", {"apikey": "pk_oops"})
        with pytest.raises(connections.ConfigInvalid) as wrong_type:
            await connections.configure(
                runtime, session, SHOP_A, "klaviyo", {"api_key": "pk", "suppress": "maybe"}
            )

    assert ("api_key", "Field required") in missing.value.problems
    assert ("apikey", "unknown setting") in missing.value.problems
    assert "pk_oops" not in str(missing.value)
    assert [key for key, _ in wrong_type.value.problems] == ["suppress"]
    assert str(wrong_type.value).startswith("klaviyo: invalid settings: suppress:")


async def test_later_settings_merge_into_stored_ones(runtime: Runtime) -> None:
    async with runtime.db.transaction() as session:
        await connections.configure(runtime, session, SHOP_A, "klaviyo", {"api_key": "pk_1"})
        await connections.configure(runtime, session, SHOP_A, "klaviyo", {"suppress": "false"})
        row = await connections.get_connection(session, SHOP_A, "klaviyo")
        assert row is not None
        config = connections.load_config(runtime, row)
    assert isinstance(config, KlaviyoConfig)
    assert config.api_key == SecretStr("pk_1") and config.suppress is False


async def test_unknown_adapter(runtime: Runtime) -> None:
    async with runtime.db.transaction() as session:
        with pytest.raises(KeyError, match="gallra adapters list"):
            await connections.configure(runtime, session, SHOP_A, "nosuch", {})


async def test_build_adapters_gives_enabled_ones_with_the_shops_context(runtime: Runtime) -> None:
    async with runtime.db.transaction() as session:
        await connections.configure(runtime, session, SHOP_A, "klaviyo", {"api_key": "pk_1"})
        await connections.configure(runtime, session, SHOP_A, "postnord", {})
        await connections.configure(
            runtime, session, SHOP_A, "mailchimp", {"api_key": "k-us1"}, enabled=False
        )
    shop_a = await shop(runtime)

    async with runtime.db.session() as session:
        built = await connections.build_adapters(runtime, session, shop_a, step_id=12)

    names = [a.name for a in built]
    assert "klaviyo" in names and "postnord" in names and "mailchimp" not in names
    klaviyo = next(a for a in built if isinstance(a, Klaviyo))
    assert klaviyo.ctx.shop.domain == SHOP_A and klaviyo.ctx.shop.contact_email == f"owner@{SHOP_A}"
    assert klaviyo.ctx.http.limiter is runtime.limiter  # one limiter per process
    assert isinstance(klaviyo.ctx.email, Outbox) and klaviyo.ctx.email.step_id == 12


async def test_shops_are_isolated(runtime: Runtime) -> None:
    async with runtime.db.transaction() as session:
        await connections.configure(runtime, session, SHOP_A, "klaviyo", {"api_key": "pk_1"})
    shop_b = await shop(runtime, SHOP_B)

    async with runtime.db.session() as session:
        built = await connections.build_adapters(runtime, session, shop_b)
        with pytest.raises(connections.NotConfigured):
            await connections.build_adapter(runtime, session, shop_b, "klaviyo")
        assert await connections.list_connections(session, SHOP_B) == []
    assert "klaviyo" not in [a.name for a in built]


async def test_built_email_adapter_queues_in_the_shops_outbox_for_the_step(runtime: Runtime) -> None:
    async with runtime.db.transaction() as session:
        await connections.configure(runtime, session, SHOP_A, "postnord", {"language": "en"})
    shop_a = await shop(runtime)
    subject = Subject(
        shop_domain=SHOP_A,
        customer_id=7,
        email="anna@example.se",
        shipments=(Shipment(1001, "#1001", "PostNord Sverige AB", "RR123SE"),),
    )

    async with runtime.db.session() as session:
        adapter = await connections.build_adapter(runtime, session, shop_a, "postnord", step_id=33)
    assert isinstance(adapter, PostNord)
    (holding,) = await adapter.find(subject)
    result = await adapter.erase(subject, holding)
    again = await adapter.erase(subject, holding)

    assert result.provider_ref == again.provider_ref
    async with runtime.db.session() as session:
        (message,) = await list_messages(session, SHOP_A)
        assert await list_messages(session, SHOP_B) == []
    assert message.reference == result.provider_ref and message.step_id == 33


async def test_check_records_the_outcome_per_connection(runtime: Runtime) -> None:
    fake = KlaviyoFake(api_key="pk_good")
    async with runtime.db.transaction() as session:
        await connections.configure(runtime, session, SHOP_A, "klaviyo", {"api_key": "pk_bad"})
        await connections.configure(runtime, session, SHOP_B, "klaviyo", {"api_key": "pk_good"})
    with fake.mocked():
        async with runtime.db.transaction() as session:
            results_a = await connections.check_connections(runtime, session, await shop(runtime, SHOP_A))
        async with runtime.db.transaction() as session:
            results_b = await connections.check_connections(runtime, session, await shop(runtime, SHOP_B))

    bad = next(r for r in results_a if r.adapter == "klaviyo")
    good = next(r for r in results_b if r.adapter == "klaviyo")
    assert not bad.ok and "api_key" in bad.message and "pk_bad" not in bad.message
    assert good.ok
    async with runtime.db.session() as session:
        row_a = await connections.get_connection(session, SHOP_A, "klaviyo")
        row_b = await connections.get_connection(session, SHOP_B, "klaviyo")
    assert row_a is not None and row_a.status == "error" and row_a.last_checked_at is not None
    assert row_b is not None and row_b.status == "ok"
