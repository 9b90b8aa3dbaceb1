"""Small helpers: session tokens as App Bridge hands them, and the CSRF field of a rendered page."""

from __future__ import annotations

import re
from typing import Any

import httpx

from plugin.runtime import Runtime
from tests.shopify.tokens import make_session_token


def token(runtime: Runtime, shop: str, **overrides: Any) -> str:
    return make_session_token(shop, runtime.settings, **overrides)


def bearer(runtime: Runtime, shop: str, **overrides: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(runtime, shop, **overrides)}"}


async def get_page(client: httpx.AsyncClient, runtime: Runtime, shop: str, path: str) -> httpx.Response:
    joiner = "&" if "?" in path else "?"
    return await client.get(f"{path}{joiner}id_token={token(runtime, shop)}")


def csrf_of(html: str) -> str:
    found = re.search(r'name="gallra-csrf" content="([^"]+)"', html)
    assert found, "page has no CSRF field"
    return found.group(1)


async def post_form(
    client: httpx.AsyncClient, runtime: Runtime, shop: str, path: str, data: dict[str, str], *, csrf_from: str
) -> httpx.Response:
    """Post like admin.js does: the page's CSRF field plus a fresh session token."""
    page = await get_page(client, runtime, csrf_from, "/admin")
    fields = {"csrf": csrf_of(page.text), "id_token": token(runtime, shop), **data}
    return await client.post(path, data=fields, headers={"Origin": "http://testserver"})
