"""The controller's details in the admin: the shop owner reads them, sets a field (kept over
Shopify's later readings) or gives it back to Shopify, and only for their own shop."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from plugin import controller
from plugin.models import Shop
from plugin.runtime import Runtime
from tests.admin.conftest import SHOP_A, SHOP_B
from tests.admin.helpers import bearer, get_page, post_form
from tests.admin.seed import Seeded

URL = "/admin/api/shop/controller"


async def _shop(runtime: Runtime, domain: str) -> Shop:
    async with runtime.db.session() as session:
        return (await session.execute(select(Shop).where(Shop.domain == domain))).scalar_one()


async def test_owner_sets_reads_and_clears_the_controller(
    runtime: Runtime, client: httpx.AsyncClient, shops: tuple[Seeded, Seeded]
) -> None:
    headers = bearer(runtime, SHOP_A)
    saved = await client.put(
        URL, headers=headers, json={"legal_name": "Butik A AB", "contact_email": "dpo@butik-a.se"}
    )
    assert saved.status_code == 200, saved.text
    found = (await client.get(URL, headers=headers)).json()["controller"]
    assert (found["legal_name"], found["contact_email"]) == ("Butik A AB", "dpo@butik-a.se")
    assert found["overridden"] == ["contact_email", "legal_name"] and found["domain"] == SHOP_A

    # Shopify's next reading keeps them.
    async with runtime.db.transaction() as session:
        shop = (await session.execute(select(Shop).where(Shop.domain == SHOP_A))).scalar_one()
        controller.apply_platform(
            runtime.vault,
            shop,
            controller.Details(name="Shopify-namn", legal_name="Annat AB", contact_email="s@shopify.example"),
        )
    details = controller.details_of(runtime.vault, await _shop(runtime, SHOP_A))
    assert (details.name, details.legal_name, details.contact_email) == (
        "Shopify-namn",
        "Butik A AB",
        "dpo@butik-a.se",
    )

    # null gives the field back to Shopify, and asks for a reading.
    cleared = await client.put(URL, headers=headers, json={"legal_name": None})
    assert cleared.json()["controller"]["overridden"] == ["contact_email"]
    assert (await _shop(runtime, SHOP_A)).details_stale_at is not None
    # The other shop is untouched.
    other = controller.details_of(runtime.vault, await _shop(runtime, SHOP_B))
    assert other.legal_name is None and (await _shop(runtime, SHOP_B)).controller_overrides is None


async def test_bad_values_are_refused(
    runtime: Runtime, client: httpx.AsyncClient, shops: tuple[Seeded, Seeded]
) -> None:
    headers = bearer(runtime, SHOP_A)
    for body in ({"contact_email": "nope"}, {"name": ""}, {"name": 5}, {"phone": "1"}):
        answer = await client.put(URL, headers=headers, json=body)
        assert answer.status_code == 400, body
    assert (await _shop(runtime, SHOP_A)).controller_overrides is None
    assert (await client.get(URL)).status_code == 401


async def test_the_adapters_page_form_sets_only_what_changed(
    runtime: Runtime, client: httpx.AsyncClient, shops: tuple[Seeded, Seeded]
) -> None:
    async with runtime.db.transaction() as session:
        shop = (await session.execute(select(Shop).where(Shop.domain == SHOP_A))).scalar_one()
        controller.apply_platform(
            runtime.vault, shop, controller.Details(name="Butik A", contact_email="kontakt@butik-a.se")
        )
    page = await get_page(client, runtime, SHOP_A, "/admin/adapters")
    assert 'action="/admin/shop/controller"' in page.text and 'value="kontakt@butik-a.se"' in page.text

    form = {
        "name": "Butik A",
        "legal_name": "Butik A AB",
        "address": "",
        "contact_email": "kontakt@butik-a.se",
    }
    saved = await post_form(client, runtime, SHOP_A, "/admin/shop/controller", form, csrf_from=SHOP_A)
    assert saved.status_code == 303
    shop = await _shop(runtime, SHOP_A)
    # Only the legal name changed: the unchanged, prefilled values stay Shopify's.
    assert shop.controller_overrides == "legal_name"
    assert controller.details_of(runtime.vault, shop).legal_name == "Butik A AB"

    refused = await post_form(
        client, runtime, SHOP_A, "/admin/shop/controller", {**form, "contact_email": "x"}, csrf_from=SHOP_A
    )
    assert refused.status_code == 200 and "contact_email must be an e-mail address" in refused.text
    assert (
        controller.details_of(runtime.vault, await _shop(runtime, SHOP_A)).contact_email
        == "kontakt@butik-a.se"
    )
