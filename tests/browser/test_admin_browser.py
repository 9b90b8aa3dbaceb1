"""The shop owner's admin in a real headless Chromium: log in with a signed session token, open each
page, retry a failed step, download a certificate, run a dry-run sweep preview; screenshots of every
page at 1280 px and at phone width go to tests/screenshots/."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page
from sqlalchemy import select

from plugin.models import Step
from plugin.runtime import Runtime
from tests.admin.seed import seed_shop
from tests.browser.conftest import DESKTOP, PHONE, SCREENSHOTS, serving, shopify_admin, watch
from tests.conftest import make_settings

pytestmark = pytest.mark.browser

SHOP_A = "shop-a.myshopify.com"
SHOP_B = "shop-b.myshopify.com"
HOST = "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvc2hvcC1h"  # base64 of admin.shopify.com/store/shop-a


async def shot(page: Page, name: str, width: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{width}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def nav(page: Page, label: str, heading: str) -> None:
    await page.click(f"nav.tabs >> text={label}")
    await page.wait_for_selector(f"h1:has-text('{heading}')")
    # admin.js takes the one-minute token out of the address bar once the page has loaded (polled
    # from here: the page's CSP rightly forbids the eval that wait_for_function would use).
    for _ in range(100):
        if "id_token" not in page.url:
            break
        await asyncio.sleep(0.05)
    assert "id_token" not in page.url


async def test_shop_owner_flow_in_chromium(browser: Browser, runtime: Runtime) -> None:
    a = await seed_shop(runtime.db, runtime.vault, SHOP_A)
    await seed_shop(runtime.db, runtime.vault, SHOP_B, locale="sv")
    async with serving(runtime) as base:
        tab = await shopify_admin(browser, runtime.settings, SHOP_A, DESKTOP)
        page, problems = tab.page, tab.problems
        # As Shopify opens the app: no token in the URL, so the bounce page fetches one.
        await page.goto(f"{base}/admin?shop={SHOP_A}&host={HOST}")
        await page.wait_for_selector("h1:has-text('Are our privacy promises kept?')")
        assert await page.locator("tr.overdue").count() == 1
        assert await page.locator("svg.chart rect.bar").count() >= 8
        await shot(page, "overview", "1280")

        await nav(page, "Requests", "Requests")
        await shot(page, "requests", "1280")
        await page.click(f"a[href='/admin/requests/{a.open_request}'] >> nth=0")
        await page.wait_for_selector("h2:has-text('The plan')")
        assert "kept until 2033-12-31" in await page.inner_text(".plan")
        await shot(page, "request", "1280")

        await page.click(f"#step-{a.failed_step} button:has-text('Retry')")
        await page.wait_for_selector("text=The step will be tried again shortly.")
        async with runtime.db.session() as session:
            state = (await session.execute(select(Step.state).where(Step.id == a.failed_step))).scalar_one()
        assert state == "pending"
        await shot(page, "request-retried", "1280")

        # An e-mailed erasure request, confirmed by the processor: recorded with a note.
        await page.fill(f"#note-{a.email_step}", "PostNord replied by e-mail")
        await page.click(f"#step-{a.email_step} button:has-text('Mark confirmed')")
        await page.wait_for_selector("text=The step is marked as confirmed.")
        async with runtime.db.session() as session:
            confirmed = (await session.execute(select(Step).where(Step.id == a.email_step))).scalar_one()
        assert (confirmed.state, confirmed.outcome) == ("done", "confirmed")

        async with page.expect_download() as info:
            await page.click("a[data-download]")
        download = await info.value
        assert download.suggested_filename.endswith(".json")
        saved = Path(await download.path())
        body = json.loads(await asyncio.to_thread(saved.read_text))
        assert body == {"certificate": "erasure", "request": a.open_request}

        await nav(page, "Retention", "Retention policy")
        assert "An order placed today:" in await page.inner_text("main")
        await shot(page, "policy", "1280")
        # Shortening the bookkeeping period below the law's seven years is refused with the reason.
        await page.click("text=Edit the policy")
        await page.fill("input[name='period.SE-1']", "3y")
        await page.click("form[action='/admin/policy'] button[type=submit]")
        await page.wait_for_selector(".banner.bad")
        assert "statutory minimum" in await page.inner_text(".banner.bad")
        await shot(page, "policy-refused", "1280")
        # The refusal is a 422 on purpose; the browser reports that status as a console error.
        problems[:] = [p for p in problems if "status of 422" not in p]
        await nav(page, "Connections", "Connections")
        assert "xkeysib-secret" not in await page.content()
        await shot(page, "adapters", "1280")

        await nav(page, "Sweeps", "Retention sweeps")
        assert "Preview now (dry run)" in await page.inner_text("main")
        await shot(page, "sweeps", "1280")
        await nav(page, "Audit log", "Audit log")
        assert "The evidence chain is intact" in await page.inner_text("main")
        await shot(page, "audit", "1280")
        assert problems == []
        await tab.context.close()


async def test_swedish_shop_and_foreign_token_in_chromium(browser: Browser, runtime: Runtime) -> None:
    a = await seed_shop(runtime.db, runtime.vault, SHOP_A)
    await seed_shop(runtime.db, runtime.vault, SHOP_B, locale="sv")
    async with serving(runtime) as base:
        # Shop B's admin (Swedish) asking for shop A's request: not found, nothing of A shown.
        tab = await shopify_admin(browser, runtime.settings, SHOP_B, DESKTOP)
        page = tab.page
        await page.goto(f"{base}/admin?shop={SHOP_B}")
        await page.wait_for_selector("h1:has-text('Håller vi det vi lovar om personuppgifter?')")
        await shot(page, "overview-sv", "1280")
        response = await page.goto(f"{base}/admin/requests/{a.open_request}?shop={SHOP_B}")
        await page.wait_for_load_state("networkidle")
        assert "Hittades inte." in await page.content()
        assert response is not None
        await tab.context.close()


async def test_dev_login_outside_shopify_in_chromium(browser: Browser, runtime: Runtime) -> None:
    from plugin.admin.dev_login import login_url

    await seed_shop(runtime.db, runtime.vault, SHOP_A)
    dev = Runtime(
        settings=make_settings(runtime.db.url, dev=True),
        db=runtime.db,
        vault=runtime.vault,
        http=runtime.http,
    )
    async with serving(dev) as base:
        context = await browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
        page = await context.new_page()
        problems = watch(page)
        link = login_url(SHOP_A, dev.settings).replace("http://127.0.0.1:8000", base)
        await page.goto(link)
        await page.wait_for_selector("h1:has-text('Are our privacy promises kept?')")
        await nav(page, "Audit log", "Audit log")
        assert problems == []
        await context.close()


async def test_every_page_fits_a_phone_in_chromium(browser: Browser, runtime: Runtime) -> None:
    a = await seed_shop(runtime.db, runtime.vault, SHOP_A)
    async with serving(runtime) as base:
        # The same pages at phone width: nothing may overflow sideways.
        tab = await shopify_admin(browser, runtime.settings, SHOP_A, PHONE)
        page, problems = tab.page, tab.problems
        await page.goto(f"{base}/admin?shop={SHOP_A}&host={HOST}")
        await page.wait_for_selector("h1")
        for name, path in (
            ("overview", "/admin"),
            ("requests", "/admin/requests"),
            ("request", f"/admin/requests/{a.open_request}"),
            ("policy", "/admin/policy"),
            ("adapters", "/admin/adapters"),
            ("sweeps", "/admin/sweeps"),
            ("audit", "/admin/audit"),
        ):
            await page.goto(f"{base}{path}?shop={SHOP_A}&host={HOST}")
            await page.wait_for_selector("main h1")
            overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{name} overflows sideways by {overflow}px at phone width"
            await shot(page, name, "phone")
        assert problems == []
        await tab.context.close()
