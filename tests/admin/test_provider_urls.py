"""The admin side of where adapters call: a typed URL or an unknown region is a 400 naming what is
allowed (never the value), the form offers the provider's regions and no URL field unless the
server allows custom URLs, and a stored connection the server no longer accepts shows as a
settings error on every page and check, never as a 500."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from plugin.models import AdapterConnection, cell_of, connection_cell
from plugin.runtime import Runtime
from tests.admin.conftest import SHOP_A
from tests.admin.helpers import bearer, get_page, post_form
from tests.admin.seed import Seeded


async def test_a_url_or_unknown_region_is_a_400_naming_what_is_allowed(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    headers = bearer(runtime, SHOP_A)
    for url in (
        "http://127.0.0.1:8080/",
        "https://2130706433/",
        "file:///etc/passwd",
        "https://api.example.com",
    ):
        answer = await client.put(
            "/admin/api/adapters/klaviyo", headers=headers, json={"api_key": "pk_x", "base_url": url}
        )
        assert answer.status_code == 400
        body = answer.json()
        assert body["error"] == "invalid_settings"
        assert "base_url: this server does not allow custom provider URLs" in body["reason"]
        assert "production" in body["reason"] and url not in answer.text
    region = await client.put(
        "/admin/api/adapters/budbee",
        headers=headers,
        json={"api_key": "k", "api_secret": "s", "region": "mars"},
    )
    assert (
        region.status_code == 400 and "region: choose one of: production, sandbox" in region.json()["reason"]
    )
    sandbox = await client.put(
        "/admin/api/adapters/budbee",
        headers=headers,
        json={"api_key": "k", "api_secret": "s", "region": "sandbox"},
    )
    assert sandbox.status_code == 200


async def test_the_form_offers_regions_and_no_url_field(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    html = (await get_page(client, runtime, SHOP_A, "/admin/adapters")).text
    assert (
        '<select name="region"><option value="production">production</option><option value="sandbox">' in html
    )
    assert 'name="base_url"' not in html
    typed = await post_form(
        client,
        runtime,
        SHOP_A,
        "/admin/adapters/klaviyo/connect",
        {"api_key": "pk_x", "base_url": "https://127.1/"},
        csrf_from=SHOP_A,
    )
    assert typed.status_code == 422 and "127.1" not in typed.text


async def test_a_stored_connection_the_server_no_longer_accepts_is_a_settings_error(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    async with runtime.db.transaction() as session:
        session.add(
            AdapterConnection(
                shop_domain=SHOP_A,
                adapter="klaviyo",
                enabled=True,
                config_enc=runtime.vault.encrypt_json(
                    {"api_key": "pk_x", "base_url": "file:///etc/passwd"}, connection_cell(SHOP_A, "klaviyo")
                ),
            )
        )
    headers = bearer(runtime, SHOP_A)
    checked = await client.post("/admin/api/adapters/klaviyo/check", headers=headers)
    assert checked.status_code == 200
    assert checked.json()["ok"] is False
    assert checked.json()["message"].startswith(
        "klaviyo: its stored settings are no longer accepted (base_url: "
    )
    assert (await client.get("/admin/api/adapters", headers=headers)).status_code == 200
    page = await get_page(client, runtime, SHOP_A, "/admin/adapters")
    assert page.status_code == 200 and "passwd" not in page.text
    async with runtime.db.session() as session:
        row = (
            await session.execute(
                select(AdapterConnection).where(
                    AdapterConnection.shop_domain == SHOP_A, AdapterConnection.adapter == "klaviyo"
                )
            )
        ).scalar_one()
    assert row.status == "error" and "passwd" not in (row.last_error or "")
    # Saving it again from the form (which has no URL field here) puts it back on Klaviyo's host.
    saved = await post_form(client, runtime, SHOP_A, "/admin/adapters/klaviyo/connect", {}, csrf_from=SHOP_A)
    assert saved.status_code == 303
    async with runtime.db.session() as session:
        row = (
            await session.execute(
                select(AdapterConnection).where(
                    AdapterConnection.shop_domain == SHOP_A, AdapterConnection.adapter == "klaviyo"
                )
            )
        ).scalar_one()
    assert runtime.vault.decrypt_json(row.config_enc, cell_of(row, "config_enc")) == {"api_key": "pk_x"}
