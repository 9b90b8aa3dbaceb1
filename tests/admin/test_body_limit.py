"""Every admin request body is limited: 413, and never read whole (a 150 MB JSON body used to be)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.routing import Route

from plugin.admin.routes import MAX_BODY, routes
from plugin.runtime import Runtime
from tests.admin.conftest import SHOP_A
from tests.admin.helpers import bearer, csrf_of, get_page, token
from tests.admin.seed import Seeded

CHUNK = 16 * 1024
CHUNKS = 128  # 2 MiB in all, 32 times the limit


class Body:
    """A request body that counts how much of it the app pulled."""

    def __init__(self) -> None:
        self.sent = 0

    async def stream(self) -> AsyncIterator[bytes]:
        for _ in range(CHUNKS):
            self.sent += CHUNK
            yield b" " * CHUNK


def body_routes() -> list[tuple[str, str]]:
    """(method, path) of every admin route that takes a body, path parameters filled in."""
    fill = {"int": "1", "str": "brevo"}
    found = []
    for route in routes():
        if isinstance(route, Route):
            for method in sorted((route.methods or set()) - {"GET", "HEAD"}):
                path = re.sub(r"{\w+:(\w+)}", lambda m: fill[m.group(1)], route.path)
                found.append((method, path))
    return found


def test_the_admin_takes_bodies_on_these_routes() -> None:
    # the list below runs on each; a route added later is on it without anyone remembering
    assert ("PUT", "/admin/api/policy") in body_routes() and ("POST", "/admin/policy") in body_routes()
    assert len(body_routes()) >= 15


async def test_declared_oversize_body_is_refused_unread(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    headers = {
        **bearer(runtime, SHOP_A),
        "Content-Type": "application/json",
        "Content-Length": str(CHUNK * CHUNKS),
        "Origin": "http://testserver",
    }
    for method, path in body_routes():
        body = Body()
        response = await client.request(method, path, headers=headers, content=body.stream())
        assert response.status_code == 413, (method, path, response.status_code)
        assert body.sent <= CHUNK, (method, path, body.sent)


async def test_streamed_oversize_body_is_cut_off_at_the_limit(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    page = await get_page(client, runtime, SHOP_A, "/admin")
    csrf = csrf_of(page.text)
    for method, path in body_routes():
        body = Body()
        if path.startswith("/admin/api/"):
            headers = {**bearer(runtime, SHOP_A), "Content-Type": "application/json"}
        else:  # a form post as admin.js sends it: the fields first, then (here) far too much
            headers = {"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://testserver"}
        response = await client.request(method, path, headers=headers, content=body.stream())
        # Routes that need no body answer without reading it; none reads past the limit.
        assert body.sent <= MAX_BODY + 2 * CHUNK, (method, path, body.sent)
        if body.sent > MAX_BODY:
            assert response.status_code == 413, (method, path, response.status_code)
    # the JSON bodies the API reads, and a form with its fields in place, are each refused
    for path in ("/admin/api/policy", "/admin/api/adapters/brevo"):
        body = Body()
        headers = {**bearer(runtime, SHOP_A), "Content-Type": "application/json"}
        assert (await client.put(path, headers=headers, content=body.stream())).status_code == 413

    async def form() -> AsyncIterator[bytes]:
        yield f"csrf={csrf}&id_token={token(runtime, SHOP_A)}&toml=".encode()
        for _ in range(CHUNKS):
            yield b"x" * CHUNK

    headers = {"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://testserver"}
    assert (await client.post("/admin/policy", headers=headers, content=form())).status_code == 413


@pytest.mark.parametrize("size", [1024, MAX_BODY - 1024])
async def test_bodies_within_the_limit_still_work(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded], size: int
) -> None:
    toml = 'preset = "SE"\n' + "#" * (size - 20) + "\n"
    saved = await client.put("/admin/api/policy", headers=bearer(runtime, SHOP_A), json={"toml": toml})
    assert saved.status_code == 200, saved.text
