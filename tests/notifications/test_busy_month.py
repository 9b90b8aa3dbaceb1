"""The busy month (`python -m tests.notifications.busy_month`) on SQLite and PostgreSQL: the owner
gets one e-mail per event, each kind where the month's story puts it, all in Swedish."""

from __future__ import annotations

from collections import Counter

from plugin.db import Database
from tests.fakes.smtp import SmtpSink
from tests.notifications.busy_month import simulate
from tests.notifications.support import build_runtime


async def test_a_busy_month_tells_the_owner_each_event_once(db: Database) -> None:
    with SmtpSink() as sink:
        runtime = build_runtime(db, **sink.settings())
        try:
            received = await simulate(runtime, sink)
        finally:
            await runtime.http.aclose()
    subjects = [subject for _day, subject in received]
    assert len(subjects) == len(set(subjects))  # nothing told twice
    kinds = Counter(next(kind for marker, kind in MARKERS if marker in subject) for subject in subjects)
    assert kinds == {
        "extract_ready": 1,
        "deadline_near": 2,  # the stalled request and the slow one
        "overdue": 2,
        "unconfirmed": 1,  # PostNord, after its reminder
        "connection_failing": 1,  # Klaviyo, third failed night
        "dry_run_findings": 2,  # ten dry-run days from a Monday: two calendar weeks, once a week
    }
    days = [day for day, _subject in received]
    assert days == sorted(days)


MARKERS = (
    ("registerutdraget", "extract_ready"),
    ("ska vara klart om", "deadline_near"),
    ("är försenat", "overdue"),
    ("har inte bekräftat", "unconfirmed"),
    ("misslyckas gång på gång", "connection_failing"),
    ("gallringen", "dry_run_findings"),
)
