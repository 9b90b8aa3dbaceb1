"""Small doubles for the sweep's parts: a stream that can die half-way, a planner that follows the
test shop's rule definitions, and an enqueuer that records steps the way the pipeline does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from plugin.holdings import Category, Holding
from plugin.models import Request, Step
from plugin.sweeps.parts import Decision
from tests.sweeps.shopdata import accounting_until, customer_until, shipment_until

T = TypeVar("T")


class Killed(Exception):
    """Stands in for the process dying in the middle of a sweep."""


@dataclass(frozen=True)
class FakeDecision:
    holding: Holding
    action: str
    keep_until: date | None = None
    rule_id: str | None = None
    reference: str | None = None
    reason_sv: str = ""
    reason_en: str = ""
    reduce_fields: tuple[str, ...] = ()


def _until(holding: Holding) -> date | None:
    if holding.category in (Category.ACCOUNTING_RECORD, Category.ORDER_CONTACT):
        return accounting_until(holding.order_created) if holding.order_created else None
    if holding.category == Category.SHIPMENT:
        return shipment_until(holding.delivered) if holding.delivered else None
    if holding.category == Category.CUSTOMER_ACCOUNT:
        return customer_until(holding.last_activity) if holding.last_activity else None
    if holding.category == Category.NEWSLETTER:
        anchor = holding.unsubscribed
        return customer_until(anchor) if anchor else None
    if holding.category == Category.APP_REQUEST_DATA:
        return customer_until(holding.last_activity) if holding.last_activity else None
    return None


@dataclass
class RulePlanner:
    """Sweep mode by the test shop's rules: past its keep-until → erase, else keep until then."""

    planned: int = 0

    def __call__(self, holdings: Sequence[Holding], today: date) -> list[Decision]:
        self.planned += len(holdings)
        out: list[Decision] = []
        for holding in holdings:
            until = _until(holding)
            if until is not None and until < today:
                out.append(FakeDecision(holding, "erase"))
            else:
                out.append(FakeDecision(holding, "keep", until))
        return out


@dataclass
class RecordingEnqueuer:
    """Inserts steps like `enqueue_plan` (key system:action:ref, unique per request)."""

    calls: list[list[tuple[str, str, str]]] = field(default_factory=list)

    async def __call__(self, session: AsyncSession, request: Request, decisions: Sequence[Decision]) -> None:
        batch = []
        for decision in decisions:
            h = decision.holding
            key = f"{h.system}:{decision.action}:{h.ref}"
            session.add(
                Step(
                    request_id=request.id,
                    shop_domain=request.shop_domain,
                    key=key,
                    system=h.system,
                    action=str(decision.action),
                    category=h.category.value,
                    holding_ref=h.ref,
                    state="pending",
                )
            )
            batch.append((h.system, str(decision.action), h.ref))
        await session.flush()
        self.calls.append(batch)

    @property
    def queued(self) -> list[tuple[str, str, str]]:
        return [item for call in self.calls for item in call]


def stream(records: Sequence[T], *, die_after: int | None = None) -> Callable[[], AsyncIterator[T]]:
    """A re-openable stream; the first opening dies after `die_after` records when given."""
    state: dict[str, Any] = {"opened": 0, "yielded": 0}

    def open_stream() -> AsyncIterator[T]:
        state["opened"] += 1
        first = state["opened"] == 1

        async def gen() -> AsyncIterator[T]:
            for index, record in enumerate(records):
                if first and die_after is not None and index >= die_after:
                    raise Killed
                state["yielded"] += 1
                yield record

        return gen()

    open_stream.state = state  # type: ignore[attr-defined]
    return open_stream
