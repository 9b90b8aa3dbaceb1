"""The shipments a step's subject carries: the carrier adapters erase by tracking number, and a sweep's
carrier step reads only its group's rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from plugin.holdings import Category, Shipment, holding_from_dict, shipments_of_holdings
from plugin.models import Step, StepGroup


def shipments_of(steps: list[Step]) -> tuple[Shipment, ...]:
    """The subject's shipments, rebuilt from the request's shipment steps: the carrier adapters
    erase by tracking number."""
    holdings = [holding_from_dict(s.decision["holding"]) for s in steps if s.decision.get("holding")]
    # An export step carries the shipments its system was found to hold (`holdings`).
    holdings += [holding_from_dict(h) for s in steps for h in s.decision.get("holdings") or ()]
    return shipments_of_holdings(holdings)


def siblings(step: Step, *conditions: ColumnElement[bool]) -> Select[Any]:
    """The step's siblings in its request that meet `conditions` (by the request's indexes)."""
    mine = (Step.request_id == step.request_id, Step.shop_domain == step.shop_domain)
    return select(Step).where(*mine, *conditions).order_by(Step.id)


async def shipment_steps(session: AsyncSession, step: Step, *, sweep: bool) -> list[Step]:
    """The shipment steps whose shipments the step's subject carries, the only siblings
    `shipments_of` reads. A customer's request: its shipment steps, one indexed query (request,
    category). A sweep names no one: its carrier step carries its group's shipments (`StepGroup`,
    an id range fixed when the sweep queued them), found by that range, so a step reads at most
    its group's rows however large the day's request grows; an ungrouped one only its own, and
    the sweep's other steps none."""
    if not sweep:
        shipments = siblings(step, Step.category == Category.SHIPMENT.value)
        return list((await session.execute(shipments)).scalars())
    if step.category != Category.SHIPMENT.value:
        return []
    group = (
        await session.execute(
            select(StepGroup.first_step_id, StepGroup.last_step_id)
            .where(
                StepGroup.request_id == step.request_id,
                StepGroup.system == step.system,
                StepGroup.last_step_id >= step.id,
            )
            .order_by(StepGroup.last_step_id)
            .limit(1)
        )
    ).first()
    if group is None or group.first_step_id > step.id:
        return [step]
    members = siblings(
        step,
        Step.category == Category.SHIPMENT.value,
        Step.system == step.system,
        Step.action == "erase",
        Step.id.between(group.first_step_id, group.last_step_id),
    )
    return list((await session.execute(members)).scalars())
