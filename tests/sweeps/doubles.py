"""Small doubles for the sweep's parts: a stream that can die half-way, a planner that follows the
test shop's rule definitions, and an enqueuer that records steps the way the pipeline does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from plugin.holdings import Holding
from plugin.models import Request, Step
from plugin.sweeps.parts import Decision, Planner

T = TypeVar("T")


class Killed(Exception):
    """Stands in for the process dying in the middle of a sweep."""


@dataclass
class CountingPlanner:
    """The real planner, counting how many holdings it was asked about (to prove a resumed sweep
    does not plan again what it had checkpointed)."""

    plan: Planner
    planned: int = 0

    def __call__(self, holdings: Sequence[Holding], today: date) -> Sequence[Decision]:
        self.planned += len(holdings)
        return self.plan(holdings, today)


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
