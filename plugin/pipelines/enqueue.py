"""Plan → steps: the one place a retention plan becomes persisted work.

    enqueue_plan(session, request: Request, decisions: Iterable[DecisionLike], *, dry_run: bool,
                 now: datetime | None = None, key_suffix: str = "") -> list[Step]

For each decision (anything with `holding`, `action`, `keep_until`, `rule_id`, `reference`,
`reason_sv`, `reason_en`, `reduce_fields`, as `plugin.retention` produces):
- *erase* / *reduce* → a `pending` step (one adapter call) due now;
- *keep until DATE* → a `held` step due on that date, whose action re-plans the holding then (a
  keep with no date, such as a legal hold without an end, is due the next day);
- in dry-run every step is recorded `skipped` with outcome `would_erase` / `would_reduce` /
  `would_keep` and no next attempt, and nothing is ever sent.
Step keys are stable (`system:action:ref` + suffix), so enqueueing the same plan twice (a crash
during planning, a duplicate request) adds nothing: the steps go in, 500 at a time, with
`INSERT ... ON CONFLICT (request_id, key) DO NOTHING RETURNING id` (SQLAlchemy Core, SQLite and
PostgreSQL), which checks only the batch's keys, so the cost of a call does not grow with the
steps the request already has.
The steps returned are the ones this call created, in the plan's order (`enqueue_plan_ids`: only
their ids, for callers that queue many and read none). The request moves to
`in_progress`; the caller commits. The retention sweep creates a `Request(kind="sweep")` and calls this.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from plugin.holdings import holding_to_dict, iso_day
from plugin.models import Request, Step, utcnow
from plugin.retention import DecisionLike
from plugin.states import RequestStatus, StepState

ACTIONS = ("erase", "reduce", "keep")
# Rows per INSERT: a sweep hands over thousands of decisions at once, and building them all
# before inserting any would hold them all in memory together.
INSERT_CHUNK = 500


def action_name(action: Any) -> str:
    value = action.value if isinstance(action, Enum) else action
    name = str(value).lower()
    if name not in ACTIONS:
        raise ValueError(f"unknown plan action {action!r}")
    return name


def decision_to_dict(decision: DecisionLike) -> dict[str, Any]:
    """What a step remembers of its decision: the rule and the reasons, never personal data."""
    fields = decision.reduce_fields
    return {
        "action": action_name(decision.action),
        "keep_until": iso_day(decision.keep_until),
        "rule_id": decision.rule_id,
        "reference": decision.reference,
        "reason_sv": decision.reason_sv,
        "reason_en": decision.reason_en,
        "reduce_fields": sorted(str(f) for f in fields) if fields else [],
        "holding": holding_to_dict(decision.holding),
    }


def due_on(day: date) -> datetime:
    """A held step is due at the start of its keep-until date (UTC), and then re-plans."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def step_key(system: str, action: str, ref: str, suffix: str = "") -> str:
    key = f"{system}:{action}:{ref}{suffix}"
    return key[:255]


async def enqueue_plan(
    session: AsyncSession,
    request: Request,
    decisions: Iterable[DecisionLike],
    *,
    dry_run: bool,
    now: datetime | None = None,
    key_suffix: str = "",
) -> list[Step]:
    created: list[Step] = []

    async def load(ids: list[int]) -> None:
        if ids:
            created.extend((await session.scalars(select(Step).where(Step.id.in_(ids)))).all())

    order = await _enqueue(session, request, decisions, dry_run, now, key_suffix, load)
    # RETURNING promises no order; the caller gets the steps in the plan's order.
    return sorted(created, key=lambda step: order[step.key])


async def enqueue_plan_ids(
    session: AsyncSession, request: Request, decisions: Iterable[DecisionLike], *, dry_run: bool
) -> list[int]:
    """`enqueue_plan` returning only the new steps' ids (in no particular order): the retention
    sweep queues a hundred thousand steps on a shop's first live day and needs none of them as
    ORM objects, which cost as much to build as the insert itself."""
    created: list[int] = []

    async def keep(ids: list[int]) -> None:
        created.extend(ids)

    await _enqueue(session, request, decisions, dry_run, None, "", keep)
    return created


async def _enqueue(
    session: AsyncSession,
    request: Request,
    decisions: Iterable[DecisionLike],
    dry_run: bool,
    now: datetime | None,
    key_suffix: str,
    on_created: Callable[[list[int]], Awaitable[None]],
) -> dict[str, int]:
    """Queue the decisions, handing the ids of each chunk's new steps to `on_created`; the keys
    of this call in the plan's order."""
    now = now or utcnow()
    await session.flush()  # the request (and anything else pending) exists before its steps
    rows = _StepRows(request, dry_run=dry_run, now=now)
    seen: dict[str, int] = {}  # this call's keys only: the first decision for a key wins
    chunk: list[dict[str, Any]] = []
    names = _action_names()
    any_created = False
    for decision in decisions:
        action = names(decision.action)
        holding = decision.holding
        key = step_key(holding.system, action, holding.ref, key_suffix)
        if key in seen:
            continue
        seen[key] = len(seen)
        chunk.append(rows.row(decision, action, key))
        if len(chunk) >= INSERT_CHUNK:
            any_created |= await _insert_new(session, chunk, on_created)
            chunk = []
    if chunk:
        any_created |= await _insert_new(session, chunk, on_created)
    if (
        request.status
        in (RequestStatus.RECEIVED, RequestStatus.PLANNING, RequestStatus.DONE, RequestStatus.FINALIZING)
        and any_created
    ):
        request.status = RequestStatus.IN_PROGRESS
    await session.flush()
    return seen


def _insert_new_steps(dialect: str) -> Any:
    """`INSERT ... ON CONFLICT (request_id, key) DO NOTHING RETURNING id` on SQLite and PostgreSQL."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    steps = cast(Table, Step.__table__)
    return insert(steps).on_conflict_do_nothing(index_elements=["request_id", "key"]).returning(steps.c.id)


async def _insert_new(
    session: AsyncSession, rows: list[dict[str, Any]], on_created: Callable[[list[int]], Awaitable[None]]
) -> bool:
    """Insert the rows whose key the request does not have yet, in this session's transaction;
    True if any was new. Multi-row INSERTs that only look at these keys (by the unique index),
    never at the request's other steps, so the 100,000th step of a sweep costs what its first
    one did."""
    connection = await session.connection()
    result = await connection.execute(_insert_new_steps(connection.dialect.name), rows)
    ids = list(result.scalars())
    await on_created(ids)
    return bool(ids)


class _StepRows:
    """Column values of a call's steps. What many steps share (the decision without its holding,
    the due date of a held step) is made once per call."""

    def __init__(self, request: Request, *, dry_run: bool, now: datetime) -> None:
        self.request_id, self.shop_domain, self.dry_run, self.now = (
            request.id,
            request.shop_domain,
            dry_run,
            now,
        )
        self.today = now.date()
        self.due_days: dict[date, datetime] = {}
        self.shapes: dict[tuple[Any, ...], dict[str, Any]] = {}

    def row(self, decision: DecisionLike, action: str, key: str) -> dict[str, Any]:
        holding = decision.holding
        if self.dry_run:
            state, outcome, finished, due = StepState.SKIPPED, f"would_{action}", self.now, None
        elif action == "keep":
            # A keep with no end date (a legal hold, an open dispute or return) is looked at again
            # the next day, as `plugin.pipelines.holds` does for one that stays undated.
            until = decision.keep_until or self.today + timedelta(days=1)
            state, outcome, finished, due = StepState.HELD, None, None, self._due(until)
        else:
            state, outcome, finished, due = StepState.PENDING, None, None, self.now
        return {
            "request_id": self.request_id,
            "shop_domain": self.shop_domain,
            "key": key,
            "system": holding.system,
            "action": action,
            "category": holding.category.value,
            "holding_ref": holding.ref,
            "decision": self._decision(decision, action),
            "state": state,
            "next_attempt_at": due,
            "outcome": outcome,
            "created_at": self.now,
            "finished_at": finished,
        }

    def _due(self, day: date) -> datetime:
        due = self.due_days.get(day)
        if due is None:
            due = self.due_days[day] = due_on(day)
        return due

    def _decision(self, decision: DecisionLike, action: str) -> dict[str, Any]:
        """`decision_to_dict(decision)`, its rule part made once per distinct rule and reasons."""
        fields = decision.reduce_fields
        shape = (
            action,
            decision.keep_until,
            decision.rule_id,
            decision.reference,
            decision.reason_sv,
            decision.reason_en,
            tuple(fields) if fields else (),
        )
        head = self.shapes.get(shape)
        if head is None:
            head = self.shapes[shape] = decision_to_dict(decision)
        return {**head, "holding": holding_to_dict(decision.holding)}


def _action_names() -> Callable[[Any], str]:
    """`action_name`, remembered per action value for one call."""
    known: dict[Any, str] = {}

    def name(action: Any) -> str:
        found = known.get(action)
        if found is None:
            found = known[action] = action_name(action)
        return found

    return name
