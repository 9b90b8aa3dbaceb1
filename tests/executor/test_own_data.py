"""Gallra's own data about a request is a system like any other (`adapters.gallra`): its step runs
through the executor's one path (adapter call, recorded outcome, verification by the adapter's own
look-up), last, on SQLite and PostgreSQL; a crash between erasure and record is harmless, a dry run
touches nothing, and no shop owner sees it as something to connect."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from adapters import carriers, registry
from adapters.base import Outcome, OwnHeld, Result
from adapters.gallra import Gallra, request_holding
from adapters.registry import UnknownAdapter
from plugin import evidence
from plugin.documents.store import artifacts_of, read_artifact
from plugin.executor import dispatch, verify
from plugin.executor.outcomes import record_success
from plugin.executor.own_data import GallraRecords, own_context
from plugin.executor.records import EXPORT_PART
from plugin.holdings import GALLRA, Holding, Subject
from plugin.models import (
    REDACTED_BODY,
    Artifact,
    Delivery,
    Evidence,
    Shop,
    Step,
    artifact_cell,
    delivery_cell,
    utcnow,
)
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from tests.executor.conftest import Clock, fast_config
from tests.executor.doubles import (
    SHOP,
    Decision,
    FakeSources,
    Ledger,
    add_request,
    add_shop,
    newsletter_holding,
    request_row,
    steps_of,
)

BODY = '{"customer": {"email": "anna@example.se"}}'


async def add_working_data(runtime: Runtime, request_id: int, domain: str = SHOP) -> None:
    """What Gallra keeps while a request runs besides its row: the webhook body, an export part."""
    vault = runtime.vault
    async with runtime.db.transaction() as session:
        session.add(
            Delivery(
                shop_domain=domain,
                topic="customers/redact",
                webhook_id=f"wh-{request_id}",
                body_enc=vault.encrypt(BODY, delivery_cell(domain)),
                request_id=request_id,
            )
        )
        session.add(
            Artifact(
                shop_domain=domain,
                request_id=request_id,
                kind=EXPORT_PART,
                content_type="application/json",
                content_enc=vault.encrypt_json(
                    {"system": "newsletter", "data": {"email": "anna@example.se"}},
                    artifact_cell(domain, request_id, EXPORT_PART),
                ),
                created_at=utcnow(),
            )
        )


async def working_data(runtime: Runtime, request_id: int, domain: str = SHOP) -> tuple[list[str], int]:
    """The request's webhook bodies as stored, and how many export parts it still has."""
    async with runtime.db.session() as session:
        bodies = (
            await session.execute(select(Delivery.body_enc).where(Delivery.request_id == request_id))
        ).scalars()
        parts = (
            await session.execute(
                select(Artifact.id).where(Artifact.request_id == request_id, Artifact.kind == EXPORT_PART)
            )
        ).all()
        return [runtime.vault.decrypt(b, delivery_cell(domain)) or "" for b in bodies], len(parts)


async def entries(runtime: Runtime, request_id: int) -> list[Evidence]:
    async with runtime.db.session() as session:
        return list(await evidence.entries(session, SHOP, request_id))


def own_key(request_id: int) -> str:
    return f"gallra:erase:request:{request_id}"


async def test_own_data_is_erased_last_through_its_adapter_and_verified_by_a_look_up(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    sources.holdings["newsletter"] = [newsletter_holding()]
    request_id = await add_request(runtime)
    await add_working_data(runtime, request_id)

    await worker.drain(limit=20)

    request = await request_row(runtime, request_id)
    assert request.status == "done"
    assert request.email_enc is None and request.phone_enc is None and request.email_hash is not None
    assert await working_data(runtime, request_id) == ([REDACTED_BODY], 0)
    own = (await steps_of(runtime, request_id))[own_key(request_id)]
    assert (own.state, own.outcome) == ("done", Outcome.ERASED.value)
    assert (own.verification, own.verification_detail) == (verify.ABSENT, Gallra.verification.how)
    # The newsletter's erasure was looked up with the subject's e-mail, which Gallra still held.
    assert ("newsletter", "find", "anna@example.se") in ledger.calls

    log = await entries(runtime, request_id)
    mine = [i for i, e in enumerate(log) if e.payload.get("system") == "gallra"]
    others = [i for i, e in enumerate(log) if e.payload.get("system") == "newsletter"]
    assert [log[i].kind for i in mine] == ["step_done", "step_verified_absent"]
    assert max(others) < min(mine)  # last
    assert "e-mail and phone, 1 webhook bodies, 1 unfinished exports" in log[mine[0]].payload["detail"]
    async with runtime.db.session() as session:
        docs = {a.kind: a for a in await artifacts_of(session, SHOP, request_id)}
        found = await read_artifact(session, runtime.vault, SHOP, docs["certificate_json"].id)
        assert (await evidence.verify(session, SHOP)).ok
    assert found is not None
    certificate = json.loads(found[1])
    (gallra,) = [d for d in certificate["done"] if d["system"] == "gallra"]
    assert gallra["verification"]["state"] == verify.ABSENT


async def test_a_crash_between_the_erasure_and_its_record_is_harmless(
    runtime: Runtime, sources: FakeSources, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_shop(runtime)
    clock = Clock()
    worker = Worker(runtime, fast_config(clock=clock), sources)
    request_id = await add_request(runtime)
    await add_working_data(runtime, request_id)
    record: Callable[..., Awaitable[None]] = record_success
    crashed: list[int] = []

    async def dies_once(ctx: Any, step_id: int, result: Result | None, **kwargs: Any) -> None:
        async with runtime.db.session() as session:
            step = await session.get(Step, step_id)
        if step is not None and step.system == "gallra" and not crashed:
            crashed.append(step_id)
            raise RuntimeError("the worker died after the erasure, before recording it")
        await record(ctx, step_id, result, **kwargs)

    monkeypatch.setattr(dispatch, "record_success", dies_once)
    await worker.drain(limit=20)
    assert crashed
    # The erasure committed; the step was not recorded, and the request is not done.
    assert (await request_row(runtime, request_id)).email_enc is None
    assert (await steps_of(runtime, request_id))[own_key(request_id)].state == "running"
    assert (await request_row(runtime, request_id)).status != "done"

    clock.advance(timedelta(minutes=5))  # the dead worker's lease has ended
    await worker.drain(limit=20, settle=0.3)

    own = (await steps_of(runtime, request_id))[own_key(request_id)]
    assert (own.state, own.outcome, own.verification) == ("done", "already_absent", verify.ABSENT)
    assert (await request_row(runtime, request_id)).status == "done"
    assert await working_data(runtime, request_id) == ([REDACTED_BODY], 0)
    async with runtime.db.session() as session:
        assert (await evidence.verify(session, SHOP)).ok


async def test_a_dry_run_records_would_erase_and_touches_nothing(
    runtime: Runtime, sources: FakeSources
) -> None:
    domain = "dry.myshopify.com"
    await add_shop(runtime, domain, dry_run=True)
    worker = Worker(runtime, fast_config(), sources)
    request_id = await add_request(runtime, domain=domain)
    await add_working_data(runtime, request_id, domain)

    await worker.drain(limit=20)

    own = (await steps_of(runtime, request_id))[own_key(request_id)]
    assert (own.state, own.outcome, own.verification) == ("skipped", "would_erase", None)
    request = await request_row(runtime, request_id)
    assert request.status == "done" and request.email_enc is not None
    assert await working_data(runtime, request_id, domain) == ([BODY], 1)


async def test_the_adapter_finds_erases_once_and_keeps_to_its_shop(runtime: Runtime) -> None:
    await add_shop(runtime)
    await add_shop(runtime, "other.myshopify.com")
    mine = await add_request(runtime)
    theirs = await add_request(runtime, domain="other.myshopify.com")
    await add_working_data(runtime, mine)
    adapter = Gallra(Gallra.Config(), own_context(runtime, SHOP, None))
    subject = Subject(shop_domain=SHOP, request_id=mine)
    holding = request_holding(mine)

    assert await adapter.find(subject) == [holding]
    assert await GallraRecords(runtime, SHOP).held(mine) == OwnHeld(True, 1, 1)
    # Another shop's request is not this shop's to look up or erase.
    assert await adapter.find(Subject(shop_domain=SHOP, request_id=theirs)) == []
    assert (await adapter.erase(subject, request_holding(theirs))).outcome is Outcome.ALREADY_ABSENT
    assert (await request_row(runtime, theirs)).email_enc is not None

    first = await adapter.erase(subject, holding)
    assert first.outcome is Outcome.ERASED and "anna" not in first.detail
    assert await adapter.find(subject) == []
    again = await adapter.erase(subject, holding)
    assert again.outcome is Outcome.ALREADY_ABSENT
    assert await working_data(runtime, mine) == ([REDACTED_BODY], 0)

    # A retention sweep erases other requests' copies: its look-up asks about the holding's request.
    sweep = Subject(shop_domain=SHOP, request_id=999_999)
    check = await verify.after_call(adapter, sweep, holding, again, utcnow())
    assert check is not None and (check.state, check.detail) == (verify.ABSENT, Gallra.verification.how)
    still = request_holding(theirs)
    other_shop = Gallra(Gallra.Config(), own_context(runtime, "other.myshopify.com", None))
    check = await verify.after_call(other_shop, sweep, still, Result(Outcome.ERASED), utcnow())
    assert check is not None and check.state == verify.PRESENT


def test_no_shop_owner_connects_gallras_own_records() -> None:
    assert "gallra" not in registry.catalogue()  # admin connections, `gallra adapters list/configure`
    assert "gallra" not in registry.recipients()  # the register extract's recipients
    assert carriers.carrier_adapter("Gallra") is None
    with pytest.raises(UnknownAdapter):
        registry.get("gallra")  # what configuring and checking a connection look up
    assert registry.system("gallra") is Gallra and not registry.connected("gallra")
    assert registry.erased_last() == ("gallra",)
    assert registry.connected("klaviyo") and registry.connected("not-installed-plug-in")


class KeepOwnDataAMonth(FakeSources):
    """A policy that keeps Gallra's working copy for a month after the request, then erases it."""

    def plan(self, shop: Shop, holdings: Sequence[Holding], today: date, mode: str) -> list[Decision]:
        decisions = super().plan(shop, holdings, today, mode)
        return [
            replace(d, action="keep", keep_until=KEPT_UNTIL, rule_id="OWN-30")
            if d.holding.system == GALLRA and today < KEPT_UNTIL
            else d
            for d in decisions
        ]


KEPT_UNTIL = date(2031, 1, 31)


async def test_working_data_kept_for_a_while_is_erased_through_the_adapter_when_its_day_comes(
    runtime: Runtime, ledger: Ledger
) -> None:
    sources = KeepOwnDataAMonth(runtime, ledger)
    sources.holdings["newsletter"] = [newsletter_holding()]
    await add_shop(runtime)
    request_id = await add_request(runtime)
    await add_working_data(runtime, request_id)
    clock = Clock()
    worker = Worker(runtime, fast_config(clock=clock), sources)
    await worker.drain(limit=20)
    steps = await steps_of(runtime, request_id)
    assert steps[f"gallra:keep:request:{request_id}"].state == "held"
    assert (await request_row(runtime, request_id)).status == "done"
    assert await working_data(runtime, request_id) == ([BODY], 1)  # kept, as the policy says

    # The day comes (on the worker's clock and the planner's): re-planned, then erased last.
    clock.advance(timedelta(days=365 * 6))
    sources.plan_today = KEPT_UNTIL
    await worker.drain(limit=20)
    steps = await steps_of(runtime, request_id)
    assert steps[f"gallra:keep:request:{request_id}"].outcome == "replanned"
    (erased,) = [s for key, s in steps.items() if key.startswith(f"gallra:erase:request:{request_id}@")]
    assert (erased.state, erased.outcome, erased.verification) == ("done", "erased", verify.ABSENT)
    assert await working_data(runtime, request_id) == ([REDACTED_BODY], 0)
    assert (await request_row(runtime, request_id)).status == "done"
