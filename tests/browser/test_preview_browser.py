"""The "preview now" dry run from the sweeps page, in headless Chromium, against the Shopify fake."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser
from sqlalchemy import select

from plugin.models import Sweep
from plugin.runtime import Runtime
from plugin.sweeps.schedule import run_queued_previews
from tests.admin.seed import seed_shop
from tests.browser.conftest import DESKTOP, serving, shopify_admin
from tests.browser.test_admin_browser import HOST, SHOP_A, shot

pytestmark = pytest.mark.browser


async def test_dry_run_preview_in_chromium(browser: Browser, runtime: Runtime, shopify_fake: Any) -> None:
    """ "Preview now" queues today's sweep as a dry run and answers at once; the page shows it
    queued, then (refreshing itself) its report once the sweep clock has run it against the
    (fake) Shopify Admin API."""
    shopify_fake.add_shop(SHOP_A)
    await seed_shop(runtime.db, runtime.vault, SHOP_A)
    async with serving(runtime) as base:
        tab = await shopify_admin(browser, runtime.settings, SHOP_A, DESKTOP)
        page, problems = tab.page, tab.problems
        await page.goto(f"{base}/admin/sweeps?shop={SHOP_A}&host={HOST}")
        await page.wait_for_selector("h1:has-text('Retention sweeps')")
        await page.click("button:has-text('Preview now (dry run)')")
        await page.wait_for_selector("text=Preview queued")
        await page.wait_for_selector("table.list .badge:has-text('Queued')")
        assert shopify_fake.shops[SHOP_A].bulk == {}  # nothing ran inside the web request
        await shot(page, "sweeps-preview-queued", "1280")

        # The sweep clock's tick (claimed through the database) runs it; the page, refreshing
        # itself while a preview is on its way, then shows the report.
        assert [report["shop"] for report in await run_queued_previews(runtime)] == [SHOP_A]
        await page.wait_for_selector(
            "table.list tr:has(.badge:has-text('Preview')) .state-done", timeout=15_000
        )
        assert await page.locator("[data-refresh]").count() == 0
        async with runtime.db.session() as session:
            previews = list(
                (
                    await session.execute(select(Sweep).where(Sweep.shop_domain == SHOP_A, Sweep.dry_run))
                ).scalars()
            )
        assert len(previews) == 1 and previews[0].status == "done" and previews[0].report["dry_run"]
        row = await page.inner_text("table.list tr:has(.badge:has-text('Preview'))")
        assert "Done" in row and "checked" in row  # the report's counts, not a dash
        await shot(page, "sweeps-previewed", "1280")
        assert problems == []
        await tab.context.close()
