"""The shop's details read again after a `shop/update` delivery, off the request path.

Intake only records that Shopify said the shop changed (`Shop.details_stale_at`, see
`plugin.intake.batch.mark_details_stale`); this clock job reads the shop from the Admin API and
stores what it says (`plugin.shopify.tokens._save_details`): the controller fields the owner set
are kept, and so are the country and time zone. For a shop Gallra holds no usable token for the
mark is dropped (a reinstall reads the details anyway); Shopify being unavailable leaves the mark
for the next tick.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from plugin.models import Shop
from plugin.runtime import Runtime
from plugin.shopify.client import ShopifyError
from plugin.shopify.tokens import ShopNotInstalled, refresh_details
from plugin.states import ShopStatus

log = logging.getLogger("gallra.shopify.details")

# Shops read per tick: a burst of `shop/update` deliveries is spread over ticks.
BATCH = 50


async def refresh_stale_details(runtime: Runtime) -> int:
    """Read the details of every shop a `shop/update` marked; the number refreshed."""
    async with runtime.db.session() as session:
        domains = list(
            (
                await session.execute(
                    select(Shop.domain)
                    .where(Shop.details_stale_at.is_not(None), Shop.status == ShopStatus.ACTIVE)
                    .order_by(Shop.details_stale_at)
                    .limit(BATCH)
                )
            ).scalars()
        )
    refreshed = 0
    for domain in domains:
        try:
            await refresh_details(runtime, domain)
        except ShopNotInstalled:
            # No token to read with; the next install reads the details anyway.
            await _unmark(runtime, domain)
            continue
        except ShopifyError as exc:
            log.warning("could not read the details of %s: %s", domain, type(exc).__name__)
            continue
        refreshed += 1
    return refreshed


async def _unmark(runtime: Runtime, domain: str) -> None:
    async with runtime.db.transaction() as session:
        await session.execute(update(Shop).where(Shop.domain == domain).values(details_stale_at=None))
