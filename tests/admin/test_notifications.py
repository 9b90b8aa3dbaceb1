"""The admin lists what Gallra told the shop owner (overview page and JSON API), also what it could
not e-mail and why, per shop, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx

from plugin import clocks
from plugin.runtime import Runtime
from tests.admin.conftest import SHOP_A, SHOP_B
from tests.admin.helpers import bearer, get_page
from tests.admin.seed import Seeded


async def test_notifications_listed_with_why_they_were_not_e_mailed(
    runtime: Runtime, client: httpx.AsyncClient, shops: tuple[Seeded, Seeded]
) -> None:
    a, b = shops
    assert runtime.settings.smtp_host is None
    assert await clocks.watch_deadlines(runtime) == 2  # each shop's overdue request

    page = await get_page(client, runtime, SHOP_A, "/admin")
    assert page.status_code == 200
    assert f"Request {a.overdue_request} is overdue" in page.text
    assert "not e-mailed: no mail server configured" in page.text
    swedish = await get_page(client, runtime, SHOP_B, "/admin")
    assert f"Ärende {b.overdue_request} är försenat" in swedish.text
    assert "inte skickat: ingen e-postserver konfigurerad" in swedish.text

    answer = await client.get("/admin/api/notifications", headers=bearer(runtime, SHOP_A))
    assert answer.status_code == 200
    (listed,) = answer.json()["notifications"]
    assert listed["kind"] == "overdue" and listed["details"]["request_id"] == a.overdue_request
    assert listed["state"] == "not_emailed" and listed["reason"] == "no_mail_server"
    assert listed["note"] == "not e-mailed: no mail server configured"
    assert listed["language"] == "en" and listed["emailed_at"] is None
    other = await client.get("/admin/api/notifications", headers=bearer(runtime, SHOP_B))
    assert [n["details"]["request_id"] for n in other.json()["notifications"]] == [b.overdue_request]


async def test_no_notifications_yet(
    runtime: Runtime, client: httpx.AsyncClient, shops: tuple[Seeded, Seeded]
) -> None:
    page = await get_page(client, runtime, SHOP_A, "/admin")
    assert "No notifications yet." in page.text
    answer = await client.get("/admin/api/notifications", headers=bearer(runtime, SHOP_A))
    assert answer.json() == {"notifications": []}
