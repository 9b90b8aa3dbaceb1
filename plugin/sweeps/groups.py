"""A sweep's carrier steps in fixed groups, so that a carrier reached by e-mail gets one e-mail per
group instead of one per expired shipment (tens of thousands on a large shop's first live sweep).

The steps one batch queues for one carrier are split into groups of at most `GROUP_SIZE`, in the
same transaction that queues them: the group is written before any worker can see its steps, and
never grows afterwards, however many batches the sweep still queues. A group is a range of step ids
(`StepGroup`: request, carrier, first and last id), one row per group, so grouping 100,000 steps
writes a few hundred rows instead of rewriting each step's decision; the executor reads a step's
group by that range (`plugin.executor.shipments.shipment_steps`) instead of the whole day's request,
and the carrier's e-mail names exactly the group's shipments.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from plugin.holdings import Category
from plugin.models import Step, StepGroup

# Shipments named in one e-mail: few enough for a privacy desk to work through and to quote back,
# many enough that a first live sweep sends a few hundred e-mails, not a hundred thousand.
GROUP_SIZE = 500
# Ids per look-up (well inside SQLite's and PostgreSQL's bound-parameter limits).
_READ_CHUNK = 1000


def split(ids: list[int], size: int) -> list[list[int]]:
    """`ids` in consecutive groups of at most `size`, as even as possible (1,001 steps make
    groups of 334, 334 and 333, not 500, 500 and 1)."""
    if not ids:
        return []
    count = -(-len(ids) // size)
    base, extra = divmod(len(ids), count)
    groups, start = [], 0
    for n in range(count):
        end = start + base + (1 if n < extra else 0)
        groups.append(ids[start:end])
        start = end
    return groups


async def group_carrier_steps(
    session: AsyncSession, request_id: int, step_ids: list[int], size: int | None = None
) -> int:
    """Group the shipment erase steps among `step_ids` (steps this transaction has just queued
    for request `request_id`) per carrier, at most `size` (default `GROUP_SIZE`) a group; returns
    how many groups were written."""
    size = size or GROUP_SIZE
    by_system: dict[str, list[int]] = defaultdict(list)
    for start in range(0, len(step_ids), _READ_CHUNK):
        rows = await session.execute(
            select(Step.id, Step.system).where(
                Step.id.in_(step_ids[start : start + _READ_CHUNK]),
                Step.category == Category.SHIPMENT.value,
                Step.action == "erase",
            )
        )
        for step_id, system in rows:
            by_system[system].append(step_id)
    ranges = [
        {"request_id": request_id, "system": system, "first_step_id": members[0], "last_step_id": members[-1]}
        for system in sorted(by_system)
        for members in split(sorted(by_system[system]), size)
    ]
    if ranges:
        await session.execute(insert(StepGroup), ranges)
    return len(ranges)
