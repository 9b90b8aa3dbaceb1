"""The rows `enqueue_plan` / `enqueue_plan_ids` write, column by column, on both databases.

The steps go in as multi-row inserts with the parts many decisions share made once per call, so
these tests hold every column to what the plan says and the decision's stored text to exactly what
`json.dumps(decision_to_dict(decision))` writes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select, text

from plugin.db import Database
from plugin.holdings import Category, Holding
from plugin.models import Request, Shop, Step, utcnow
from plugin.pipelines.enqueue import (
    INSERT_CHUNK,
    decision_to_dict,
    due_on,
    enqueue_plan,
    enqueue_plan_ids,
    step_key,
)
from plugin.retention.planner import Decision
from plugin.retention.rules import Action

SHOP = "rows.myshopify.com"
NOW = datetime(2026, 11, 23, 1, 2, 3, 456789, tzinfo=UTC)
ACTIONS = (Action.ERASE, Action.KEEP, Action.REDUCE)


def decisions(count: int, start: int = 0) -> list[Decision]:
    """Decisions of every shape the columns and the JSON can take: each action, flags, missing
    dates, a missing reference and country, text JSON must escape, several rules."""
    made = []
    for i in range(start, start + count):
        holding = Holding(
            system=("shopify", "postnord", "klaviyo")[i % 3],
            category=list(Category)[i % len(Category)],
            ref=f'ref:{i}:å"\\\n\t',
            label=f'Order #{i} "€" \u2028 ñ',
            order_created=date(2020, 1, 1) + timedelta(days=i % 400),
            delivered=None if i % 2 else date(2020, 2, 1),
            last_activity=date(2021, 3, 3) if i % 5 == 0 else None,
            unsubscribed=date(2022, 1, 1) if i % 7 == 0 else None,
            flags=frozenset(({"open_return", "legal_hold"}, {"bounced"}, set())[i % 3]),
            country=None if i % 4 == 0 else "SE",
        )
        action = ACTIONS[i % 3]
        made.append(
            Decision(
                holding=holding,
                action=action,
                keep_until=date(2030, 1, 1) + timedelta(days=i % 30) if action is Action.KEEP else None,
                rule_id=f"SE-{i % 4}",
                reference=None if i % 6 == 0 else "Bokföringslag (1999:1078) 7 kap. 2 §",  # type: ignore[arg-type]
                reason_sv="räkenskapsinformation, 7 år",
                reason_en=f"bookkeeping {i % 2}",
                reduce_fields=("phone", "email") if action is Action.REDUCE and i % 2 else (),
            )
        )
    return made


async def new_request(db: Database) -> int:
    async with db.transaction() as session:
        session.add(Shop(domain=SHOP, country="SE", timezone="Europe/Stockholm"))
        request = Request(
            shop_domain=SHOP, kind="sweep", business_key="sweep:2026-11-23", status="received", due_at=NOW
        )
        session.add(request)
        await session.flush()
        return request.id


async def stored(db: Database, request_id: int) -> dict[str, tuple[Step, str]]:
    """The request's steps by key, each with its decision's text as stored."""
    async with db.session() as session:
        steps = (await session.scalars(select(Step).where(Step.request_id == request_id))).all()
        found = await session.execute(text("SELECT id, CAST(decision AS TEXT) FROM steps"))
        texts: dict[int, str] = {row[0]: row[1] for row in found}
    return {step.key: (step, texts[step.id]) for step in steps}


def expected(decision: Decision, *, dry_run: bool, now: datetime) -> dict[str, Any]:
    action = decision.action.value
    holding = decision.holding
    if dry_run:
        state, outcome, due, finished = "skipped", f"would_{action}", None, now
    elif action == "keep":
        assert decision.keep_until is not None
        state, outcome, due, finished = "held", None, due_on(decision.keep_until), None
    else:
        state, outcome, due, finished = "pending", None, now, None
    return {
        "shop_domain": SHOP,
        "system": holding.system,
        "action": action,
        "category": holding.category.value,
        "holding_ref": holding.ref,
        "decision": decision_to_dict(decision),
        "state": state,
        "attempts": 0,
        "max_attempts": 8,
        "next_attempt_at": due,
        "lease_owner": None,
        "lease_expires_at": None,
        "outcome": outcome,
        "provider_ref": None,
        "last_error": None,
        "created_at": now,
        "finished_at": finished,
    }


def check(rows: dict[str, tuple[Step, str]], plan: list[Decision], *, dry_run: bool, now: datetime) -> None:
    firsts: dict[str, Decision] = {}
    for decision in plan:
        firsts.setdefault(
            step_key(decision.holding.system, decision.action.value, decision.holding.ref), decision
        )
    assert sorted(rows) == sorted(firsts)
    for key, decision in firsts.items():
        step, stored_text = rows[key]
        want = expected(decision, dry_run=dry_run, now=now)
        assert {column: getattr(step, column) for column in want} == want, key
        assert stored_text == json.dumps(decision_to_dict(decision)), key


async def test_queued_steps_hold_exactly_what_the_plan_says(db: Database) -> None:
    request_id = await new_request(db)
    plan = decisions(INSERT_CHUNK * 2 + 37)
    plan.append(plan[5]._replace(rule_id="LATER"))  # the same key again: the first decision wins
    async with db.transaction() as session:
        request = await session.get(Request, request_id)
        assert request is not None
        ids = await enqueue_plan_ids(session, request, plan, dry_run=False)
        assert request.status == "in_progress"
    rows = await stored(db, request_id)
    # enqueue_plan_ids stamps its steps with the time of the call, one time for them all.
    now = next(iter(rows.values()))[0].created_at
    assert abs(now - utcnow()) < timedelta(minutes=1)
    check(rows, plan, dry_run=False, now=now)
    assert sorted(ids) == sorted(step.id for step, _ in rows.values())

    # Queued again with new ones among them: only the new keys are added, the old rows untouched.
    more = decisions(20, start=len(plan) - 10)
    async with db.transaction() as session:
        request = await session.get(Request, request_id)
        assert request is not None
        again = await enqueue_plan_ids(session, request, [*plan[:50], *more], dry_run=False)
    after = await stored(db, request_id)
    assert len(again) == len(after) - len(rows) == 11
    assert {key: step.id for key, (step, _) in after.items() if key in rows} == {
        key: step.id for key, (step, _) in rows.items()
    }
    check({key: row for key, row in after.items() if key in rows}, plan, dry_run=False, now=now)
    fresh = {key: row for key, row in after.items() if key not in rows}
    check(fresh, more[9:], dry_run=False, now=next(iter(fresh.values()))[0].created_at)


async def test_a_dry_run_records_skipped_steps_in_the_plans_order(db: Database) -> None:
    request_id = await new_request(db)
    plan = decisions(INSERT_CHUNK + 3)
    async with db.transaction() as session:
        request = await session.get(Request, request_id)
        assert request is not None
        created = await enqueue_plan(session, request, plan, dry_run=True, now=NOW)
    keys = [step_key(d.holding.system, d.action.value, d.holding.ref) for d in plan]
    assert [step.key for step in created] == keys
    check(await stored(db, request_id), plan, dry_run=True, now=NOW)
