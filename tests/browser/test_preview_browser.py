"""The "preview now" dry run from the sweeps page, in headless Chromium, against the Shopify fake."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser
from sqlalchemy import select

from plugin.models import Sweep
from plugin.runtime import Runtime
from tests.admin.seed import seed_shop
from tests.browser.conftest import DESKTOP, serving, shopify_admin
from tests.browser.test_admin_browser import HOST, SHOP_A, shot

pytestmark = pytest.mark.browser


async def test_dry_run_preview_in_chromium(browser: Browser, runtime: Runtime, shopify_fake: Any) -> None:
    """ "Preview now" runs today's sweep as a dry run against the (fake) Shopify Admin API."""
    shopify_fake.add_shop(SHOP_A)
    await seed_shop(runtime.db, runtime.vault, SHOP_A)
    async with serving(runtime) as base:
        tab = await shopify_admin(browser, runtime.settings, SHOP_A, DESKTOP)
        page, problems = tab.page, tab.problems
        await page.goto(f"{base}/admin/sweeps?shop={SHOP_A}&host={HOST}")
        await page.wait_for_selector("h1:has-text('Retention sweeps')")
        await page.click("button:has-text('Preview now (dry run)')")
        await page.wait_for_selector("text=The preview sweep has run")
        async with runtime.db.session() as session:
            previews = list(
                (
                    await session.execute(select(Sweep).where(Sweep.shop_domain == SHOP_A, Sweep.dry_run))
                ).scalars()
            )
        assert len(previews) == 1 and previews[0].status == "done"
        assert "Preview" in await page.inner_text("table.list")
        await shot(page, "sweeps-previewed", "1280")
        assert problems == []
        await tab.context.close()
