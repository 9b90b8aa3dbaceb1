"""What the admin pages and the JSON API read. Every function takes the shop domain first and
filters every query on it: there is no way to ask for another shop's rows through this module."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from plugin.ledger import OPEN_STATUSES as LEDGER_OPEN_STATUSES
from plugin.ledger import days_left, local_zone
from plugin.models import AdapterConnection, Artifact, Evidence, Request, Shop, Step, Sweep, utcnow
from plugin.states import ConnectionStatus, RequestStatus, StepState

# verifying: every erasure call made, some still to be seen taking effect; open, never overdue.
OPEN_STATUSES = (*LEDGER_OPEN_STATUSES, RequestStatus.VERIFYING, RequestStatus.FAILED)
CHART_DAYS = 90
# Working files of the executor (an adapter's export before the extract is built): not downloads.
INTERNAL_ARTIFACTS = ("export_part",)


@dataclass(frozen=True)
class OpenRequest:
    id: int
    kind: str
    status: str
    received_at: datetime
    due_at: datetime
    days_left: int
    overdue: bool


@dataclass(frozen=True)
class DayCount:
    day: date
    requests: int
    erasures: int


@dataclass
class Overview:
    open_requests: list[OpenRequest]
    last_sweep: Sweep | None
    next_sweep: datetime | None
    problem_adapters: list[AdapterConnection]
    chart: list[DayCount]
    dry_run: bool


@dataclass
class RequestDetail:
    request: Request
    steps: list[Step]
    evidence: list[Evidence]
    artifacts: list[Artifact]
    timeline: list[dict[str, Any]] = field(default_factory=list)


def shop_zone(shop: Shop | None) -> ZoneInfo:
    """The zone the admin shows the shop's dates in (the one `days_left` counts in)."""
    return local_zone(shop.timezone if shop is not None else None)


def next_sweep_at(shop: Shop | None, now: datetime) -> datetime:
    """The next daily sweep: `sweep_hour` o'clock in the shop's own time zone."""
    zone = shop_zone(shop)
    hour = shop.sweep_hour if shop is not None and shop.sweep_hour is not None else 3
    local = now.astimezone(zone)
    candidate = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if candidate <= local:
        candidate = (candidate + timedelta(days=1)).replace(hour=hour)
    return candidate.astimezone(UTC)


async def open_requests(
    session: AsyncSession, shop_domain: str, now: datetime, timezone: str | None = None
) -> list[OpenRequest]:
    """The shop's open requests, soonest due first; `timezone` is the shop's (see `days_left`)."""
    rows = (
        await session.execute(
            select(Request)
            .where(Request.shop_domain == shop_domain, Request.status.in_(OPEN_STATUSES))
            .order_by(Request.due_at, Request.id)
        )
    ).scalars()
    return [
        OpenRequest(
            id=row.id,
            kind=row.kind,
            status=row.status,
            received_at=row.received_at,
            due_at=row.due_at,
            days_left=days_left(row.due_at, now, timezone),
            overdue=row.due_at < now and row.status != "verifying",
        )
        for row in rows
    ]


async def recent_requests(session: AsyncSession, shop_domain: str, limit: int = 200) -> list[Request]:
    rows = await session.execute(
        select(Request)
        .where(Request.shop_domain == shop_domain)
        .order_by(Request.received_at.desc(), Request.id.desc())
        .limit(limit)
    )
    return list(rows.scalars())


async def chart(
    session: AsyncSession, shop_domain: str, now: datetime, zone: ZoneInfo, days: int = CHART_DAYS
) -> list[DayCount]:
    """Requests received and holdings erased per day (in the shop's zone) over the last `days`."""
    today = now.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), zone).astimezone(UTC)
    received = (
        await session.execute(
            select(Request.received_at).where(
                Request.shop_domain == shop_domain, Request.received_at >= since, Request.kind != "sweep"
            )
        )
    ).scalars()
    erased = (
        await session.execute(
            select(Step.finished_at).where(
                Step.shop_domain == shop_domain,
                Step.action == "erase",
                Step.state == StepState.DONE,
                Step.finished_at >= since,
            )
        )
    ).scalars()
    requests_per_day: dict[date, int] = {}
    erasures_per_day: dict[date, int] = {}
    for at in received:
        day = at.astimezone(zone).date()
        requests_per_day[day] = requests_per_day.get(day, 0) + 1
    for finished in erased:
        if finished is None:
            continue
        day = finished.astimezone(zone).date()
        erasures_per_day[day] = erasures_per_day.get(day, 0) + 1
    return [
        DayCount(day, requests_per_day.get(day, 0), erasures_per_day.get(day, 0))
        for day in (first + timedelta(days=offset) for offset in range(days))
    ]


async def last_sweep(session: AsyncSession, shop_domain: str, *, dry_run: bool = False) -> Sweep | None:
    found: Sweep | None = (
        await session.execute(
            select(Sweep)
            .where(Sweep.shop_domain == shop_domain, Sweep.dry_run == dry_run)
            .order_by(Sweep.started_at.desc(), Sweep.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return found


async def sweeps(session: AsyncSession, shop_domain: str, limit: int = 30) -> list[Sweep]:
    rows = await session.execute(
        select(Sweep)
        .where(Sweep.shop_domain == shop_domain)
        .order_by(Sweep.started_at.desc(), Sweep.id.desc())
        .limit(limit)
    )
    return list(rows.scalars())


async def connections(session: AsyncSession, shop_domain: str) -> dict[str, AdapterConnection]:
    rows = await session.execute(
        select(AdapterConnection).where(AdapterConnection.shop_domain == shop_domain)
    )
    return {row.adapter: row for row in rows.scalars()}


async def overview(session: AsyncSession, shop_domain: str, shop: Shop | None, now: datetime) -> Overview:
    adapters = await connections(session, shop_domain)
    return Overview(
        open_requests=await open_requests(session, shop_domain, now, shop.timezone if shop else None),
        last_sweep=await last_sweep(session, shop_domain),
        next_sweep=next_sweep_at(shop, now),
        problem_adapters=[
            row for row in adapters.values() if row.enabled and row.status == ConnectionStatus.ERROR
        ],
        chart=await chart(session, shop_domain, now, shop_zone(shop)),
        dry_run=bool(shop is not None and shop.dry_run),
    )


async def request_detail(
    session: AsyncSession, shop_domain: str, request_id: int, now: datetime | None = None
) -> RequestDetail | None:
    request = (
        await session.execute(
            select(Request).where(Request.shop_domain == shop_domain, Request.id == request_id)
        )
    ).scalar_one_or_none()
    if request is None:
        return None
    steps = list(
        (
            await session.execute(
                select(Step)
                .where(Step.shop_domain == shop_domain, Step.request_id == request_id)
                .order_by(Step.created_at, Step.id)
            )
        ).scalars()
    )
    evidence = list(
        (
            await session.execute(
                select(Evidence)
                .where(Evidence.shop_domain == shop_domain, Evidence.request_id == request_id)
                .order_by(Evidence.seq)
            )
        ).scalars()
    )
    current = now or utcnow()
    artifacts = [
        row
        for row in (
            await session.execute(
                select(Artifact)
                .where(Artifact.shop_domain == shop_domain, Artifact.request_id == request_id)
                .order_by(Artifact.created_at.desc(), Artifact.id.desc())
            )
        ).scalars()
        if (row.expires_at is None or row.expires_at > current) and row.kind not in INTERNAL_ARTIFACTS
    ]
    return RequestDetail(request, steps, evidence, artifacts, timeline(request, steps))


def timeline(request: Request, steps: list[Step]) -> list[dict[str, Any]]:
    """From "received" to "done": one entry per event, oldest first."""
    events: list[dict[str, Any]] = [{"at": request.received_at, "what": "received", "step": None}]
    if steps:
        events.append({"at": min(step.created_at for step in steps), "what": "planned", "step": None})
    for step in steps:
        if step.finished_at is not None:
            events.append({"at": step.finished_at, "what": step.state, "step": step})
    if request.completed_at is not None:
        events.append({"at": request.completed_at, "what": "done", "step": None})
    events.sort(key=lambda event: event["at"])
    return events


async def step_of_shop(session: AsyncSession, shop_domain: str, step_id: int) -> Step | None:
    found: Step | None = (
        await session.execute(select(Step).where(Step.shop_domain == shop_domain, Step.id == step_id))
    ).scalar_one_or_none()
    return found


async def artifact_of_shop(session: AsyncSession, shop_domain: str, artifact_id: int) -> Artifact | None:
    found: Artifact | None = (
        await session.execute(
            select(Artifact).where(Artifact.shop_domain == shop_domain, Artifact.id == artifact_id)
        )
    ).scalar_one_or_none()
    return found


async def evidence_log(session: AsyncSession, shop_domain: str, limit: int | None = None) -> list[Evidence]:
    query = select(Evidence).where(Evidence.shop_domain == shop_domain).order_by(Evidence.seq.desc())
    if limit is not None:
        query = query.limit(limit)
    return list((await session.execute(query)).scalars())
