"""A real server and Debian's headless Chromium (driven by Playwright, no browser download).

The server is uvicorn running the admin's routes in this test's event loop, over a migrated SQLite
database seeded with two shops. The browser plays the Shopify admin: an init script gives the page
the `shopify.idToken()` App Bridge provides, minting signed session tokens in Python; App Bridge's
CDN script is answered locally with an empty script (no network in tests).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from plugin.crypto import Vault
from plugin.db import Database
from plugin.runtime import Runtime
from plugin.settings import Settings
from tests.admin.conftest import admin_app
from tests.conftest import make_settings
from tests.shopify.tokens import make_session_token
from tests.timing import SkippingClock

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def serving(runtime: Runtime) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(
        admin_app(runtime), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.025)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def runtime(sqlite_db: Database, vault: Vault, clock: SkippingClock) -> AsyncIterator[Runtime]:
    http = httpx.AsyncClient(timeout=5)
    yield Runtime(settings=make_settings(sqlite_db.url), db=sqlite_db, vault=vault, http=http, clock=clock)
    await http.aclose()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield launched
        await launched.close()


def watch(page: Page) -> list[str]:
    """Script errors and console errors (a CSP violation is one) collected for the test to check."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    return problems


@dataclass
class AdminTab:
    context: BrowserContext
    page: Page
    problems: list[str]


async def shopify_admin(
    browser: Browser, settings: Settings, shop: str, viewport: dict[str, int]
) -> AdminTab:
    """A tab that behaves like the app's iframe in the Shopify admin for `shop`."""
    context = await browser.new_context(viewport=viewport, accept_downloads=True)  # type: ignore[arg-type]

    async def mint() -> str:
        return make_session_token(shop, settings)

    await context.expose_function("__gallraMintSessionToken", mint)
    await context.add_init_script(
        "window.shopify = { idToken: function () { return window.__gallraMintSessionToken(); } };"
    )
    await context.route(
        "https://cdn.shopify.com/**",
        lambda route: route.fulfill(
            status=200, content_type="text/javascript", body="/* App Bridge stand-in */"
        ),
    )
    page = await context.new_page()
    return AdminTab(context, page, watch(page))
