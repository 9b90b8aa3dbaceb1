"""The request page says what a request could not examine (a done request with gaps), and why a
request none of whose sources could be examined failed, in the shop's language."""

from __future__ import annotations

import httpx
from markupsafe import escape
from sqlalchemy import update

from plugin import evidence
from plugin.documents.gaps import NotExamined
from plugin.models import Request
from plugin.runtime import Runtime
from tests.admin.conftest import SHOP_A, SHOP_B
from tests.admin.helpers import get_page
from tests.admin.seed import Seeded


async def test_done_request_with_gaps_lists_what_was_not_examined(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    a, b = shops
    gap = NotExamined("shopify", "Shopify", "uninstalled", orders=2)
    async with runtime.db.transaction() as session:
        for seeded in (a, b):
            await evidence.append(
                session, seeded.shop, "planned", {"not_examined": [gap.as_dict()]}, seeded.done_request
            )
    english = (await get_page(client, runtime, SHOP_A, f"/admin/requests/{a.done_request}")).text
    assert "Done with gaps: these sources could not be examined" in english
    assert f"Shopify: {escape(gap.why('en'))}" in english
    swedish = (await get_page(client, runtime, SHOP_B, f"/admin/requests/{b.done_request}")).text
    assert "Klart med luckor" in swedish and f"Shopify: {escape(gap.why('sv'))}" in swedish
    # A request without gaps shows no such banner.
    plain = (await get_page(client, runtime, SHOP_A, f"/admin/requests/{a.open_request}")).text
    assert "Done with gaps" not in plain and "none of the request's sources" not in plain


async def test_a_request_nothing_could_be_examined_for_says_why_it_failed(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    a, _ = shops
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Request)
            .where(Request.id == a.open_request)
            .values(status="failed", last_error="no source could be examined (shopify: uninstalled)")
        )
    html = (await get_page(client, runtime, SHOP_A, f"/admin/requests/{a.open_request}")).text
    assert "Failed: none of the request&#39;s sources could be examined" in html
