"""A token for shop A can never read or change anything of shop B: via pages and via the JSON API.

Both shops hold the same kinds of rows (and adapters with the same names), so every check also
proves that A's own action touched A's row and not B's.
"""

from __future__ import annotations

import httpx
from sqlalchemy import select

from plugin.models import AdapterConnection, Evidence, Shop, Step, connection_cell
from plugin.runtime import Runtime
from tests.admin.conftest import SHOP_A, SHOP_B
from tests.admin.helpers import bearer, get_page, post_form
from tests.admin.seed import Seeded


async def _step_state(runtime: Runtime, step_id: int) -> str:
    async with runtime.db.session() as session:
        return (await session.execute(select(Step.state).where(Step.id == step_id))).scalar_one()


async def test_pages_of_shop_b_are_not_found_with_a_token_for_shop_a(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    a, b = shops
    assert (await get_page(client, runtime, SHOP_A, f"/admin/requests/{a.open_request}")).status_code == 200
    for path in (
        f"/admin/requests/{b.open_request}",
        f"/admin/requests/{b.done_request}",
        f"/admin/artifacts/{b.certificate}",
    ):
        response = await get_page(client, runtime, SHOP_A, path)
        assert response.status_code == 404, path
        assert SHOP_B not in response.text
    # Lists show A's rows only, whatever the query string says.
    listing = await get_page(client, runtime, SHOP_A, f"/admin/requests?shop={SHOP_B}")
    assert f"/admin/requests/{a.open_request}" in listing.text
    assert f"/admin/requests/{b.open_request}" not in listing.text
    assert "frame-ancestors https://shop-a.myshopify.com " in listing.headers["content-security-policy"]


async def test_api_of_shop_b_is_not_found_with_a_token_for_shop_a(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    a, b = shops
    headers = bearer(runtime, SHOP_A)
    assert (await client.get(f"/admin/api/requests/{b.open_request}", headers=headers)).status_code == 404
    assert (await client.get(f"/admin/api/artifacts/{b.certificate}", headers=headers)).status_code == 404
    ids = {row["id"] for row in (await client.get("/admin/api/requests", headers=headers)).json()["requests"]}
    assert a.open_request in ids and b.open_request not in ids and b.overdue_request not in ids
    overview = (await client.get(f"/admin/api/overview?shop={SHOP_B}", headers=headers)).json()
    assert overview["shop"] == SHOP_A
    assert {row["id"] for row in overview["open_requests"]} == {a.open_request, a.overdue_request}
    exported = (await client.get("/admin/api/evidence.json", headers=headers)).json()
    assert exported["shop"] == SHOP_A
    async with runtime.db.session() as session:
        b_hashes = set(
            (await session.execute(select(Evidence.hash).where(Evidence.shop_domain == SHOP_B))).scalars()
        )
    assert b_hashes and not b_hashes & {entry["hash"] for entry in exported["entries"]}


async def test_shop_a_cannot_retry_or_confirm_steps_of_shop_b(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    _, b = shops
    headers = bearer(runtime, SHOP_A)
    assert (await client.post(f"/admin/api/steps/{b.failed_step}/retry", headers=headers)).status_code == 404
    confirm = await client.post(
        f"/admin/api/steps/{b.email_step}/confirm", headers=headers, json={"note": "PostNord replied"}
    )
    assert confirm.status_code == 404
    page_retry = await post_form(
        client, runtime, SHOP_A, f"/admin/steps/{b.failed_step}/retry", {}, csrf_from=SHOP_A
    )
    assert page_retry.status_code == 404
    page_confirm = await post_form(
        client, runtime, SHOP_A, f"/admin/steps/{b.email_step}/confirm", {"note": "x"}, csrf_from=SHOP_A
    )
    assert page_confirm.status_code == 404
    assert await _step_state(runtime, b.failed_step) == "failed"
    assert await _step_state(runtime, b.email_step) == "awaiting_confirmation"


async def test_shop_a_settings_change_only_shop_a(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    headers = bearer(runtime, SHOP_A)
    flags = await client.post("/admin/api/adapters/brevo/flags", headers=headers, json={"enabled": False})
    assert flags.status_code == 200
    form = await post_form(
        client, runtime, SHOP_A, "/admin/adapters/voyado/flags", {"dry_run": "1"}, csrf_from=SHOP_A
    )
    assert form.status_code == 303
    assert (await client.post("/admin/api/shop", headers=headers, json={"dry_run": True})).status_code == 200
    saved = await client.put(
        "/admin/api/policy",
        headers=headers,
        json={"toml": 'preset = "SE"\n[overrides.SE-1]\nperiod = "10y"\n'},
    )
    assert saved.status_code == 200
    connect = await client.put("/admin/api/adapters/brevo", headers=headers, json={"api_key": "a-new-key"})
    assert connect.status_code == 200
    async with runtime.db.session() as session:
        rows = {
            (row.shop_domain, row.adapter): row
            for row in (await session.execute(select(AdapterConnection))).scalars()
        }
        shops_by_domain = {row.domain: row for row in (await session.execute(select(Shop))).scalars()}
    assert rows[(SHOP_A, "brevo")].enabled is False and rows[(SHOP_B, "brevo")].enabled is True
    assert rows[(SHOP_A, "voyado")].dry_run is True and rows[(SHOP_B, "voyado")].dry_run is False
    assert (
        runtime.vault.decrypt_json(rows[(SHOP_A, "brevo")].config_enc, connection_cell(SHOP_A, "brevo"))[
            "api_key"
        ]
        == "a-new-key"
    )
    assert (
        runtime.vault.decrypt_json(rows[(SHOP_B, "brevo")].config_enc, connection_cell(SHOP_B, "brevo"))[
            "api_key"
        ]
        == "xkeysib-secret"
    )
    assert shops_by_domain[SHOP_A].dry_run is True and shops_by_domain[SHOP_B].dry_run is False
    assert "10y" in (shops_by_domain[SHOP_A].policy_toml or "")
    assert shops_by_domain[SHOP_B].policy_toml is None


async def test_unknown_adapter_and_format_are_not_found(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    headers = bearer(runtime, SHOP_A)
    assert (
        await client.post("/admin/api/adapters/nope/flags", headers=headers, json={"enabled": True})
    ).status_code == 404
    assert (await client.put("/admin/api/adapters/nope", headers=headers, json={})).status_code == 404
    assert (await client.get("/admin/api/evidence.xml", headers=headers)).status_code == 404
