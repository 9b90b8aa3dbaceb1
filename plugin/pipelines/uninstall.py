"""`app/uninstalled`: confirm an uninstall before acting on it, off the request path.

The delivery's body is signed, but a signed body can be replayed at any time (after a reinstall,
with any headers and a new webhook id), so intake only records a claim (`Shop.uninstall_claimed_at`,
see `plugin.intake.batch.claim_uninstall`) and the shop stays installed, with its tokens. The
clocks then ask Shopify, here:

- The shop's token works (a cheap Admin API query answers): the shop is installed now, whatever
  the delivery said. The claim is dropped (evidence `uninstall_ignored`); nothing else changes.
- Shopify refuses the token (Admin API 401/403, or the refresh token is refused), or Gallra holds
  no token that could still work: the uninstall is confirmed. The shop is marked `uninstalled`
  with `uninstalled_at` = now (never earlier than the real uninstall, which the refusal proves has
  happened; a `shop/redact` counts its 48 hours from here), its tokens are deleted, and any held
  `shop/redact` is re-checked (evidence `uninstall_confirmed`).
- Anything else (network error, 5xx, throttling): no decision; the next tick asks again.

A reinstall while a claim is pending stores a new grant and clears the claim
(`plugin.shopify.tokens._store`), and the confirming update only applies if the claim and the
token it checked are still the ones in the row, so a refusal of the old token never uninstalls the
reinstalled shop.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from plugin import evidence
from plugin.models import Request, Shop, utcnow
from plugin.runtime import Runtime
from plugin.shopify.client import AdminClient, ShopifyAuthError, ShopifyError
from plugin.shopify.operations import SHOP_INFO
from plugin.shopify.tokens import ShopNotInstalled, TokenRequestFailed, access_token
from plugin.states import RequestStatus, ShopStatus

log = logging.getLogger("gallra.pipelines")


class Verdict(enum.Enum):
    INSTALLED = "installed"
    UNINSTALLED = "uninstalled"
    UNKNOWN = "unknown"


Check = Callable[[Runtime, str], Awaitable[Verdict]]


async def token_verdict(runtime: Runtime, shop_domain: str) -> Verdict:
    """What Shopify says of the shop's token: works, refused, or no answer."""
    try:
        token = await access_token(runtime, shop_domain)  # refreshed first if it is about to lapse
    except ShopNotInstalled:
        return Verdict.UNINSTALLED  # no token left that could work, or the refresh was refused
    except TokenRequestFailed:
        return Verdict.UNKNOWN
    client = AdminClient(
        runtime.http,
        runtime.settings,
        shop_domain,
        token,
        throttle=runtime.shopify_throttles.for_shop(shop_domain),
        max_attempts=2,
    )
    try:
        await client.execute(SHOP_INFO)
    except ShopifyAuthError:
        return Verdict.UNINSTALLED
    except ShopifyError:
        return Verdict.UNKNOWN
    return Verdict.INSTALLED


async def confirm_uninstalls(
    runtime: Runtime, now: datetime | None = None, check: Check = token_verdict
) -> int:
    """Decide every pending uninstall claim Shopify answers for; the number decided."""
    async with runtime.db.session() as session:
        claims = (
            await session.execute(
                select(Shop.domain, Shop.uninstall_claimed_at, Shop.access_token_enc).where(
                    Shop.uninstall_claimed_at.is_not(None), Shop.status == ShopStatus.ACTIVE
                )
            )
        ).all()
    decided = 0
    for domain, claimed_at, token_enc in claims:
        if claimed_at is None:
            continue
        verdict = await check(runtime, domain)
        if verdict is Verdict.UNKNOWN:
            continue
        at = now or utcnow()
        async with runtime.db.transaction() as session:
            if verdict is Verdict.INSTALLED:
                done = await _dismiss(session, domain, claimed_at, at)
            else:
                done = await _confirm(session, domain, claimed_at, token_enc, at)
        decided += done
    return decided


async def _dismiss(session: AsyncSession, domain: str, claimed_at: datetime, now: datetime) -> bool:
    result = await session.execute(
        update(Shop)
        .where(Shop.domain == domain, Shop.uninstall_claimed_at == claimed_at)
        .values(uninstall_claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    log.info("uninstall claim for %s ignored: its token still works", domain)
    await evidence.append(
        session,
        domain,
        "uninstall_ignored",
        {"claimed_at": claimed_at.isoformat(), "at": now.isoformat(), "reason": "token_works"},
    )
    return True


async def _confirm(
    session: AsyncSession, domain: str, claimed_at: datetime, token_enc: str | None, now: datetime
) -> bool:
    same_token = Shop.access_token_enc.is_(None) if token_enc is None else Shop.access_token_enc == token_enc
    result = await session.execute(
        update(Shop)
        .where(
            Shop.domain == domain,
            Shop.status == ShopStatus.ACTIVE,
            Shop.uninstall_claimed_at == claimed_at,
            same_token,
        )
        .values(
            status=ShopStatus.UNINSTALLED,
            uninstalled_at=now,
            uninstall_claimed_at=None,
            access_token_enc=None,
            access_token_expires_at=None,
            refresh_token_enc=None,
            refresh_token_expires_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False  # reinstalled (or the token refreshed) meanwhile: the next tick decides again
    # A held shop/redact is looked at again now; it then waits for its 48 hours.
    await session.execute(
        update(Request)
        .where(
            Request.shop_domain == domain,
            Request.kind == "shop_redact",
            Request.status == RequestStatus.ON_HOLD,
        )
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    log.info("uninstall of %s confirmed: Shopify refused its token", domain)
    await evidence.append(
        session,
        domain,
        "uninstall_confirmed",
        {"claimed_at": claimed_at.isoformat(), "at": now.isoformat(), "reason": "token_refused"},
    )
    return True
