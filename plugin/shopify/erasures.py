"""Shopify's erasure lifecycle: every `customerRequestDataErasure` Gallra makes, tracked until
Shopify carries it out (verified), or the shop owner cancels it within Shopify's window.

Shopify does not erase at once. Its documented delay (shopify-platform.md §1.1, from
https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance; the help centre's
"Processing customer data requests" page, help.shopify.com/manual/privacy-and-security/privacy/
processing-customer-data-requests, says the same in days): a customer who has not ordered in the
last 6 months (180 days) is erased 10 days after the request; otherwise the erasure waits until
180 days after the customer's most recent order (room for chargebacks). `expected_erasure_at` is
that rule, and the row's `expected_at` the end of the window in which `customerCancelDataErasure`
can still stop it. Since 31 May 2025 only the app that requested an erasure can cancel it (Shopify
answers UNAUTHORIZED_CANCELLATION to anyone else), so for the erasures Gallra makes, Gallra's admin
and CLI are the only place the shop owner can cancel them.

The most recent order is known to the plan, not to this module: the customer account holding
carries `last_activity` (the last order, else the account's last update) and the `has_orders`
flag (`adapters.shopify_holdings.customer_holdings`). When the account has orders, its last activity
counts as the last order: never earlier than the real one, so the expected date is never too early.

`mark_verified` is the one call for the verification that re-checks the customer after the delay;
`cancel` asks Shopify and records who cancelled and why (the reason encrypted: it may name people;
evidence holds the customer, the actor and the reason only in its identifier part).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from plugin import evidence
from plugin.holdings import SHOPIFY
from plugin.ledger import dialect_of, insert_ignoring_conflicts
from plugin.models import ShopifyErasure, Step, erasure_cell, utcnow
from plugin.runtime import Runtime
from plugin.shopify.client import ShopifyError, UserErrors
from plugin.shopify.operations import cancel_customer_erasure
from plugin.shopify.tokens import ShopNotInstalled, TokenRequestFailed, admin_client
from plugin.states import ErasureState

log = logging.getLogger("gallra.shopify.erasures")

ERASURE_DELAY = timedelta(days=10)
RECENT_ORDER_HOLD = timedelta(days=180)
REASON_LIMIT = 500
ACTOR_LIMIT = 64


class CancelRefused(Exception):
    """The erasure cannot be cancelled (not pending, past Shopify's window, or Shopify refused).
    The message says why and holds no personal data; nothing was changed."""


class UnknownErasure(Exception):
    """No such tracked erasure in the caller's shop (whether or not another shop has one)."""


def expected_erasure_at(requested_at: datetime, last_order_at: datetime | None) -> datetime:
    """When Shopify carries out an erasure requested at `requested_at` (see the module's doc)."""
    soonest = requested_at + ERASURE_DELAY
    if last_order_at is None or last_order_at + RECENT_ORDER_HOLD <= requested_at:
        return soonest
    return max(soonest, last_order_at + RECENT_ORDER_HOLD)


def _last_order(holding: dict[str, Any] | None) -> datetime | None:
    """The customer account holding's last order, at the end of its (shop-local) day, in UTC."""
    if not holding or "has_orders" not in (holding.get("flags") or ()):
        return None
    day = holding.get("last_activity")
    if not day:
        return None
    # A shop-local date: the day's end in the furthest time zone keeps the estimate late, not early.
    return datetime.combine(date.fromisoformat(str(day)), time.max, tzinfo=UTC) + timedelta(hours=14)


def customer_of_ref(ref: str | None) -> int | None:
    """The customer id of a customer account holding's ref (`customer:<id>`), else None."""
    parts = (ref or "").split(":")
    if len(parts) == 2 and parts[0] == "customer" and parts[1].isdigit():
        return int(parts[1])
    return None


async def track_step(session: AsyncSession, step: Step, outcome: str | None, now: datetime) -> None:
    """Record the Shopify erasure a finished step requested (the executor calls this for every
    successful step; anything but Shopify's customer account erasure is left alone). In the
    step's transaction, so a step counts as done only with its erasure tracked."""
    if step.system != SHOPIFY or step.action != "erase" or outcome != "erase_requested":
        return
    customer_id = customer_of_ref(step.holding_ref)
    if customer_id is None:
        return  # an order covered by the account's erasure, or the marketing consent
    await track(
        session,
        shop_domain=step.shop_domain,
        customer_id=customer_id,
        request_id=step.request_id,
        step_id=step.id,
        requested_at=now,
        last_order_at=_last_order((step.decision or {}).get("holding")),
    )


async def verified_step(session: AsyncSession, step: Step, at: datetime) -> None:
    """A step's erasure was seen to take effect (`plugin.executor.verify`): when it was Shopify's
    customer data erasure, its tracked erasure is verified too, in the same transaction."""
    if step.system != SHOPIFY or step.action != "erase" or step.outcome != "erase_requested":
        return
    customer_id = customer_of_ref(step.holding_ref)
    if customer_id is not None:
        await mark_verified(session, step.shop_domain, customer_id, at)


async def track(
    session: AsyncSession,
    *,
    shop_domain: str,
    customer_id: int,
    request_id: int | None,
    step_id: int | None,
    requested_at: datetime,
    last_order_at: datetime | None,
) -> None:
    """Track one requested erasure; a second record of the same (retried step) changes nothing."""
    expected = expected_erasure_at(requested_at, last_order_at)
    statement = insert_ignoring_conflicts(dialect_of(session), ShopifyErasure).values(
        shop_domain=shop_domain,
        customer_id=customer_id,
        request_id=request_id,
        step_id=step_id,
        requested_at=requested_at,
        expected_at=expected,
        state=ErasureState.REQUESTED,
    )
    await session.execute(statement)
    await evidence.append(
        session,
        shop_domain,
        "shopify_erasure_tracked",
        {
            "subject": {"customer_id": customer_id},
            "requested_at": requested_at.isoformat(),
            "expected_at": expected.isoformat(),
        },
        request_id,
        at=requested_at,
    )


async def mark_verified(session: AsyncSession, shop_domain: str, customer_id: int, at: datetime) -> int:
    """Mark the shop's requested (not cancelled) erasures of the customer verified at `at`: the
    verification found the customer gone after Shopify's delay. Returns how many were marked.
    In the caller's transaction; its evidence entry is the caller's (it knows how it checked)."""
    result = await session.execute(
        update(ShopifyErasure)
        .where(
            ShopifyErasure.shop_domain == shop_domain,
            ShopifyErasure.customer_id == customer_id,
            ShopifyErasure.state == ErasureState.REQUESTED,
        )
        .values(state=ErasureState.VERIFIED, verified_at=at)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def erasures(
    session: AsyncSession, shop_domain: str, *, state: str | None = None
) -> list[ShopifyErasure]:
    """The shop's tracked erasures, soonest expected first."""
    statement = select(ShopifyErasure).where(ShopifyErasure.shop_domain == shop_domain)
    if state is not None:
        statement = statement.where(ShopifyErasure.state == state)
    rows = await session.execute(statement.order_by(ShopifyErasure.expected_at, ShopifyErasure.id))
    return list(rows.scalars())


def cancellable(erasure: ShopifyErasure, now: datetime) -> bool:
    return erasure.state == ErasureState.REQUESTED and now < erasure.expected_at


def summary(erasure: ShopifyErasure, now: datetime) -> dict[str, Any]:
    """A tracked erasure as the admin and the CLI show it (no reason: it may name people)."""
    return {
        "id": erasure.id,
        "shop": erasure.shop_domain,
        "customer_id": erasure.customer_id,
        "merged_from": list(erasure.merged_from or []),
        "request_id": erasure.request_id,
        "step_id": erasure.step_id,
        "state": erasure.state,
        "requested_at": erasure.requested_at.isoformat(),
        "expected_at": erasure.expected_at.isoformat(),
        "cancellable": cancellable(erasure, now),
        "verified_at": erasure.verified_at.isoformat() if erasure.verified_at else None,
        "cancelled_at": erasure.cancelled_at.isoformat() if erasure.cancelled_at else None,
        "cancelled_by": erasure.cancelled_by,
    }


@dataclass(frozen=True)
class Cancelled:
    erasure_id: int
    customer_id: int
    cancelled_at: datetime


_SHOPIFY_REFUSALS = {
    "NOT_BEING_ERASED": "Shopify has no pending erasure of this customer (it may have been carried out)",
    "UNAUTHORIZED_CANCELLATION": "Shopify says only the original requester can cancel this erasure",
    "DOES_NOT_EXIST": "Shopify no longer has this customer",
    "FAILED_TO_CANCEL": "Shopify could not cancel the erasure; try again later",
}


async def _pending_row(session: AsyncSession, shop_domain: str, erasure_id: int) -> ShopifyErasure:
    row = (
        await session.execute(
            select(ShopifyErasure).where(
                ShopifyErasure.id == erasure_id, ShopifyErasure.shop_domain == shop_domain
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise UnknownErasure("erasure")
    return row


def _check_window(row: ShopifyErasure, now: datetime) -> None:
    if row.state != ErasureState.REQUESTED:
        raise CancelRefused(f"the erasure is {row.state}; only a requested erasure can be cancelled")
    if now >= row.expected_at:
        raise CancelRefused(
            f"Shopify's window to cancel ended on {row.expected_at.date().isoformat()}: "
            "the erasure is due to have been carried out"
        )


async def cancel(
    runtime: Runtime, shop_domain: str, erasure_id: int, *, by: str, why: str, now: datetime | None = None
) -> Cancelled:
    """Cancel a tracked erasure within Shopify's window: check it, ask Shopify
    (`customerCancelDataErasure`), then record who and why with evidence. Raises CancelRefused
    (nothing changed) or UnknownErasure."""
    why = why.strip()[:REASON_LIMIT]
    by = by.strip()[:ACTOR_LIMIT]
    if not why:
        raise CancelRefused("a reason for cancelling is required")
    if not by:
        raise CancelRefused("who cancels is required")
    moment = now or utcnow()
    async with runtime.db.session() as session:
        row = await _pending_row(session, shop_domain, erasure_id)
        _check_window(row, moment)
        customer_id = row.customer_id
    try:
        client = await admin_client(runtime, shop_domain)
        await cancel_customer_erasure(client, customer_id)
    except UserErrors as exc:
        code = next(iter(sorted(exc.codes)), "")
        raise CancelRefused(_SHOPIFY_REFUSALS.get(code, f"Shopify refused: {exc}")) from None
    except (ShopNotInstalled, TokenRequestFailed):
        raise CancelRefused(
            "the shop has no usable Shopify access token; open the app and try again"
        ) from None
    except ShopifyError as exc:
        log.warning("cancelling an erasure failed: %s", type(exc).__name__)
        raise CancelRefused("Shopify did not answer; nothing changed, try again") from None
    async with runtime.db.transaction() as session:
        row = await _pending_row(session, shop_domain, erasure_id)
        if row.state == ErasureState.REQUESTED:
            row.state = ErasureState.CANCELLED
            row.cancelled_at = moment
            row.cancelled_by = by
            row.cancel_reason_enc = runtime.vault.encrypt(why.encode(), erasure_cell(shop_domain, row.id))
        await evidence.append(
            session,
            shop_domain,
            "shopify_erasure_cancelled",
            {
                "subject": {"customer_id": customer_id},
                "cancelled_by": by,
                "cancel_reason": why,
                "requested_at": row.requested_at.isoformat(),
                "expected_at": row.expected_at.isoformat(),
            },
            row.request_id,
            at=moment,
        )
    return Cancelled(erasure_id, customer_id, moment)
