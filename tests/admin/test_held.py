"""A held shop erasure says why it waits, on the request page and in the JSON API, in the shop's
language."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from plugin.models import Request
from plugin.runtime import Runtime
from tests.admin.conftest import SHOP_A, SHOP_B
from tests.admin.helpers import bearer, get_page
from tests.admin.seed import Seeded


async def test_on_hold_request_shows_its_reason(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    a, b = shops
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Request)
            .where(Request.id.in_([a.open_request, b.open_request]))
            # A shop erasure names no customer (and a value is sealed to its row's kind: none to keep).
            .values(
                kind="shop_redact",
                status="on_hold",
                hold_reason="shop_installed",
                email_enc=None,
                phone_enc=None,
            )
        )
    html = (await get_page(client, runtime, SHOP_A, f"/admin/requests/{a.open_request}")).text
    assert "On hold: the shop is installed, and nothing is erased while it is." in html
    assert "On hold</span>" in html
    swedish = (await get_page(client, runtime, SHOP_B, f"/admin/requests/{b.open_request}")).text
    assert "Vilande: butiken har appen installerad" in swedish
    detail = (
        await client.get(f"/admin/api/requests/{a.open_request}", headers=bearer(runtime, SHOP_A))
    ).json()
    assert (detail["request"]["status"], detail["request"]["hold_reason"]) == ("on_hold", "shop_installed")
    listed = (await get_page(client, runtime, SHOP_A, "/admin/requests")).text
    assert f"/admin/requests/{a.open_request}" in listed and "On hold" in listed
