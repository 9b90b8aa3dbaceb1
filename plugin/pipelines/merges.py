"""`customers/merge`: when two customers merge in Shopify, what Gallra keys by the customer that
went follows the customer that was kept. Off the request path: intake records the delivery
(`plugin.intake.batch.record_merge`), the clocks apply it here within a minute.

- A merge Shopify reports as completed moves, in the merge's shop only, every row of `REKEYED`
  that is keyed by the deleted customer's id and still open: open requests (and requests already
  planned go back to planning, so their steps cover the kept customer, who now holds the deleted
  one's orders), pending Shopify erasures (their verification and cancelling then name the kept
  customer), active legal holds (they go on keeping what is now the kept customer's). Each moved
  request or erasure lists the ids merged into it (`merged_from`), which the certificate shows.
  Finished requests and verified or cancelled erasures stay as they were: they are the
  record of what was done to that customer.
- A merge with any other status (Shopify's sample shows `failed`) changes nothing; it is kept as
  `ignored` with its evidence entry, as received.
- While a worker holds the lease of a request it would move (it is planning or finalising it),
  the merge waits for the next tick, so no plan is written for the customer that went.

Shopify does not document whether an erasure it had pending for the deleted customer carries over
to the kept one; Gallra assumes the data does (a merge moves orders and addresses to the kept
customer), so the tracked erasure follows it and is verified against the kept customer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from plugin import evidence
from plugin.executor import verify
from plugin.executor.records import step_record
from plugin.executor.status import refresh_request
from plugin.holdings import SHOPIFY
from plugin.ledger import OPEN_STATUSES
from plugin.models import Base, CustomerMerge, LegalHold, Request, ShopifyErasure, Step, utcnow
from plugin.runtime import Runtime
from plugin.states import ErasureState, MergeState, StepState

log = logging.getLogger("gallra.pipelines")

# Planned requests whose steps named the deleted customer: planned again for the kept one.
REPLAN_STATUSES = ("in_progress", "awaiting")


@dataclass(frozen=True)
class Rekeyed:
    """A table whose rows are keyed by a Shopify customer id and follow a merge."""

    name: str
    model: type[Base]
    still_open: ColumnElement[bool]  # only these rows move; the rest are a record of the past
    customer_column: str = "customer_id"
    merged_column: str | None = "merged_from"  # where the ids merged into the row are listed


REKEYED: tuple[Rekeyed, ...] = (
    Rekeyed("requests", Request, Request.status.in_(OPEN_STATUSES)),
    Rekeyed("shopify_erasures", ShopifyErasure, ShopifyErasure.state == ErasureState.REQUESTED),
    # A hold on the deleted customer keeps holding the data, now the kept customer's.
    Rekeyed("legal_holds", LegalHold, LegalHold.released_at.is_(None), merged_column=None),
)


class Leased(Exception):
    """A request the merge would move is leased by a worker right now: try again later."""


async def move_customer(
    session: AsyncSession, shop_domain: str, deleted_id: int, kept_id: int, now: datetime
) -> dict[str, int]:
    """Re-key the shop's open rows of every `REKEYED` table from `deleted_id` to `kept_id`, in the
    caller's transaction; the rows moved per table. Raises Leased (nothing moved) while a worker
    holds a request it would move."""
    await _refuse_if_leased(session, shop_domain, deleted_id, now)
    moved: dict[str, int] = {}
    for table in REKEYED:
        model: Any = table.model
        column = getattr(model, table.customer_column)
        rows = list(
            (
                await session.execute(
                    select(model).where(
                        model.shop_domain == shop_domain, column == deleted_id, table.still_open
                    )
                )
            ).scalars()
        )
        for row in rows:
            setattr(row, table.customer_column, kept_id)
            if table.merged_column is not None:
                earlier = list(getattr(row, table.merged_column) or [])
                setattr(row, table.merged_column, [*earlier, deleted_id])
            if isinstance(row, Request) and row.status in REPLAN_STATUSES:
                row.status, row.next_attempt_at, row.attempts = "planning", now, 0
        moved[table.name] = len(rows)
    return moved


async def _refuse_if_leased(session: AsyncSession, shop_domain: str, customer_id: int, now: datetime) -> None:
    leased = await session.execute(
        select(Request.id)
        .where(
            Request.shop_domain == shop_domain,
            Request.customer_id == customer_id,
            Request.status.in_((*OPEN_STATUSES, "finalizing")),
            Request.lease_owner.is_not(None),
            or_(Request.lease_expires_at.is_(None), Request.lease_expires_at > now),
        )
        .limit(1)
    )
    if leased.scalar_one_or_none() is not None:
        raise Leased


async def apply_merge(session: AsyncSession, merge: CustomerMerge, now: datetime) -> bool:
    """Apply (or, when Shopify's status is not completed, ignore) one received merge in the
    caller's transaction, with its evidence entry; False when it must wait (Leased)."""
    subject = {"kept_customer_id": merge.kept_customer_id, "deleted_customer_id": merge.deleted_customer_id}
    if merge.status != "completed":
        merge.state, merge.applied_at = MergeState.IGNORED, now
        await evidence.append(
            session,
            merge.shop_domain,
            "customer_merge_ignored",
            {"subject": subject, "status": merge.status, "job": bool(merge.job_id)},
            at=now,
        )
        return True
    try:
        # Leased is raised before anything is written.
        moved = await move_customer(
            session, merge.shop_domain, merge.deleted_customer_id, merge.kept_customer_id, now
        )
    except Leased:
        return False
    settled = await _settle_lookups_of_merged_customer(
        session, merge.shop_domain, merge.deleted_customer_id, now
    )
    merge.state, merge.applied_at, merge.moved = MergeState.APPLIED, now, moved
    await evidence.append(
        session,
        merge.shop_domain,
        "customer_merge_applied",
        {"subject": subject, "status": merge.status, "moved": moved, "lookups_settled": settled},
        at=now,
    )
    return True


MERGED_AWAY = (
    "the customer was merged into another before Shopify's erasure could be seen: a look-up by the "
    "old id would find nothing whether or not Shopify erased it"
)


async def _settle_lookups_of_merged_customer(
    session: AsyncSession, shop_domain: str, deleted_id: int, now: datetime
) -> int:
    """Shopify look-ups still waiting on the deleted customer (its requests' `verifying` steps)
    can prove nothing any more: Shopify no longer has that id after the merge, erased or not. They
    are settled as not verifiable, said plainly, never counted as verified gone."""
    waiting = await session.execute(
        select(Step)
        .join(Request, Request.id == Step.request_id)
        .where(
            Request.shop_domain == shop_domain,
            Request.customer_id == deleted_id,
            Step.shop_domain == shop_domain,
            Step.system == SHOPIFY,
            Step.state == StepState.VERIFYING,
        )
        .with_for_update(of=Step)
    )
    steps = list(waiting.scalars())
    for step in steps:
        step.state, step.verification, step.verification_detail = (
            StepState.DONE,
            verify.NOT_VERIFIABLE,
            MERGED_AWAY,
        )
        step.verified_at, step.verify_after = now, None
        await evidence.append(
            session, shop_domain, f"step_{verify.NOT_VERIFIABLE}", step_record(step), step.request_id
        )
    for request_id in sorted({step.request_id for step in steps}):
        await refresh_request(session, request_id, now)
    return len(steps)


async def apply_received_merges(runtime: Runtime, now: datetime | None = None, limit: int = 100) -> int:
    """Apply every received merge, oldest first, each in its own transaction; how many were
    applied or ignored (merges that must wait stay received for the next tick)."""
    moment = now or utcnow()
    async with runtime.db.session() as session:
        ids = list(
            (
                await session.execute(
                    select(CustomerMerge.id)
                    .where(CustomerMerge.state == MergeState.RECEIVED)
                    .order_by(CustomerMerge.received_at, CustomerMerge.id)
                    .limit(limit)
                )
            ).scalars()
        )
    decided = 0
    for merge_id in ids:
        async with runtime.db.transaction() as session:
            merge = (
                await session.execute(
                    select(CustomerMerge)
                    .where(CustomerMerge.id == merge_id, CustomerMerge.state == MergeState.RECEIVED)
                    .with_for_update()  # two instances' clocks apply a merge once
                )
            ).scalar_one_or_none()
            if merge is not None and await apply_merge(session, merge, moment):
                decided += 1
    if decided:
        runtime.work_available.set()
    return decided
