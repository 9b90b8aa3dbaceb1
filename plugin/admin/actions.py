"""What the shop owner can change, shared by the form posts and the JSON API.

Every action first proves the row belongs to the caller's shop, then hands over to the stage that
owns the behaviour (executor, evidence, sweeps, connections, retention).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.registry import UnknownAdapter
from plugin import connections, controller, evidence, legal_holds
from plugin.admin import queries
from plugin.admin.policy_view import describe
from plugin.documents.certificate import stored_anchors
from plugin.executor import actions as step_actions
from plugin.ledger import load_shop
from plugin.models import AdapterConnection, Artifact, Evidence, Shop, cell_of, utcnow
from plugin.retention import Policy
from plugin.retention.dates import local_date
from plugin.runtime import Runtime
from plugin.shopify import erasures
from plugin.states import StepState
from plugin.sweeps.run import queue_preview

NOTE_LIMIT = 500


class NotFound(Exception):
    """No such row in the caller's shop (whether or not another shop has one)."""


class Refused(Exception):
    """The action does not apply to the row as it is (e.g. retrying a step that did not fail)."""


class InvalidSettings(Refused):
    """Settings the adapter refuses; the message names each setting and what is allowed."""


async def _on_step(
    runtime: Runtime, shop_domain: str, step_id: int, state: StepState, call: Callable[..., Awaitable[Any]]
) -> int:
    """Run `call(session)` on one of the shop's steps in the state the action needs; returns the
    step's request id and wakes the workers."""
    async with runtime.db.transaction() as session:
        step = await queries.step_of_shop(session, shop_domain, step_id)
        if step is None:
            raise NotFound("step")
        if step.state != state:
            raise Refused(f"the step is {step.state}; this needs a step that is {state}")
        request_id = step.request_id
        await call(session)
    runtime.work_available.set()
    return request_id


async def retry_step(runtime: Runtime, shop_domain: str, step_id: int) -> int:
    """Hand a failed step back to the executor; returns its request's id."""
    return await _on_step(
        runtime,
        shop_domain,
        step_id,
        StepState.FAILED,
        lambda session: step_actions.retry_step(session, shop_domain, step_id),
    )


async def confirm_step(runtime: Runtime, shop_domain: str, step_id: int, note: str) -> int:
    """Record that a processor confirmed an e-mailed erasure request; returns the request's id."""
    note = note.strip()[:NOTE_LIMIT]
    if not note:
        raise Refused("a note saying who confirmed, and how, is required")
    # With the vault, the note (it may name people) is stored encrypted, never in evidence.
    return await _on_step(
        runtime,
        shop_domain,
        step_id,
        StepState.AWAITING_CONFIRMATION,
        lambda session: step_actions.confirm_step(session, shop_domain, step_id, note, vault=runtime.vault),
    )


def actor(sub: str) -> str:
    """Who did an action in the admin: the Shopify staff user of the session token."""
    return f"shopify-user:{sub}"


async def cancel_shopify_erasure(
    runtime: Runtime, shop_domain: str, erasure_id: int, by: str, why: str
) -> int:
    """Cancel one of the shop's Shopify erasures within Shopify's window; returns its id."""
    try:
        done = await erasures.cancel(runtime, shop_domain, erasure_id, by=by, why=why)
    except erasures.UnknownErasure:
        raise NotFound("erasure") from None
    except erasures.CancelRefused as exc:
        raise Refused(str(exc)) from None
    return done.erasure_id


async def verify_evidence(session: AsyncSession, shop_domain: str) -> evidence.VerifyResult:
    """The chain, its head record and the anchors of the shop's stored certificates."""
    anchors = await stored_anchors(session, evidence.keys_of(session).vault, shop_domain)
    return await evidence.verify(session, shop_domain, anchors)


async def artifact(runtime: Runtime, shop_domain: str, artifact_id: int) -> tuple[Artifact, bytes]:
    async with runtime.db.session() as session:
        row = await queries.artifact_of_shop(session, shop_domain, artifact_id)
    if row is None or row.kind in queries.INTERNAL_ARTIFACTS:
        raise NotFound("artifact")
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise NotFound("artifact")
    content = runtime.vault.decrypt_bytes(row.content_enc, cell_of(row, "content_enc")) or b""
    return row, content


def artifact_filename(row: Artifact) -> str:
    extension = {
        "application/json": "json",
        "text/html": "html",
        "application/pdf": "pdf",
        "text/csv": "csv",
    }.get(row.content_type.split(";")[0].strip(), "bin")
    return f"gallra-{row.kind.replace('_', '-')}-{row.request_id or row.id}.{extension}"


def evidence_records(rows: list[Evidence]) -> list[dict[str, Any]]:
    return [
        {
            "seq": row.seq,
            "at": row.at.isoformat(),
            "kind": row.kind,
            "request_id": row.request_id,
            # What the chain covers (identifiers as keyed digests), then the identifiers while the
            # entry is not reduced.
            "payload": row.payload,
            "identifiers": row.identifiers,
            "prev_hash": row.prev_hash,
            "hash": row.hash,
        }
        for row in sorted(rows, key=lambda r: r.seq)
    ]


async def export_evidence(runtime: Runtime, shop_domain: str, fmt: str) -> tuple[str, bytes]:
    """The whole chain, oldest first, as CSV or JSON (keyed hashes and, until reduced, the
    identifiers of each entry; no e-mail addresses)."""
    if fmt not in ("csv", "json"):
        raise NotFound("format")
    async with runtime.db.session() as session:
        records = evidence_records(await queries.evidence_log(session, shop_domain))
    if fmt == "json":
        body = json.dumps({"shop": shop_domain, "entries": records}, indent=2, ensure_ascii=False)
        return "application/json", body.encode()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["seq", "at", "kind", "request_id", "payload", "identifiers", "prev_hash", "hash"])
    for record in records:
        writer.writerow(
            [
                record["seq"],
                record["at"],
                record["kind"],
                record["request_id"] or "",
                json.dumps(record["payload"], sort_keys=True, ensure_ascii=False),
                json.dumps(record["identifiers"], sort_keys=True, ensure_ascii=False)
                if record["identifiers"] is not None
                else "",
                record["prev_hash"],
                record["hash"],
            ]
        )
    return "text/csv; charset=utf-8", out.getvalue().encode()


async def set_shop_dry_run(runtime: Runtime, shop_domain: str, on: bool) -> None:
    async with runtime.db.transaction() as session:
        result = await session.execute(update(Shop).where(Shop.domain == shop_domain).values(dry_run=on))
        if not result.rowcount:  # type: ignore[attr-defined]
            raise NotFound("shop")


async def controller_of(runtime: Runtime, shop_domain: str) -> dict[str, Any]:
    """The controller as documents name it, and which fields the owner set themselves."""
    async with runtime.db.session() as session:
        shop = await load_shop(session, shop_domain)
        if shop is None:
            raise NotFound("shop")
        return controller.controller_document(runtime.vault, shop, shop_domain) | {
            "overridden": sorted(controller.overridden(shop))
        }


async def set_controller(runtime: Runtime, shop_domain: str, values: dict[str, Any]) -> dict[str, Any]:
    """The owner's own controller fields: a string sets one (kept over Shopify's later readings),
    null gives it back to Shopify (read again at the next tick)."""
    unknown = sorted(set(values) - set(controller.FIELDS))
    if unknown:
        raise InvalidSettings(f"unknown field(s) {', '.join(unknown)}; valid: {', '.join(controller.FIELDS)}")
    given: dict[str, str] = {}
    cleared: set[str] = set()
    for key, value in values.items():
        if value is None:
            cleared.add(key)
        elif isinstance(value, str) and value.strip() and len(value) <= 500:
            given[key] = value.strip()
        else:
            raise InvalidSettings(f"{key} must be a non-empty string (at most 500 characters) or null")
    if "contact_email" in given and not controller.EMAIL.match(given["contact_email"]):
        raise InvalidSettings("contact_email must be an e-mail address")
    async with runtime.db.transaction() as session:
        shop = await load_shop(session, shop_domain)
        if shop is None:
            raise NotFound("shop")
        controller.set_overrides(runtime.vault, shop, controller.Details(**given), clear=frozenset(cleared))
        if cleared:
            shop.details_stale_at = utcnow()
    return await controller_of(runtime, shop_domain)


async def set_connection_flags(
    runtime: Runtime,
    shop_domain: str,
    adapter: str,
    *,
    enabled: bool | None = None,
    dry_run: bool | None = None,
) -> None:
    values: dict[str, Any] = {}
    if enabled is not None:
        values["enabled"] = enabled
    if dry_run is not None:
        values["dry_run"] = dry_run
    if not values:
        return
    async with runtime.db.transaction() as session:
        row = (
            await session.execute(
                select(AdapterConnection).where(
                    AdapterConnection.shop_domain == shop_domain, AdapterConnection.adapter == adapter
                )
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFound("connection")
        for key, value in values.items():
            setattr(row, key, value)


async def preview_sweep(runtime: Runtime, shop_domain: str) -> bool:
    """Queue today's dry run (the sweep clock runs it); False when one is already on its way."""
    return await queue_preview(runtime, shop_domain)


async def save_policy(runtime: Runtime, shop_domain: str, policy: Policy) -> None:
    """Store the shop's policy; record the change, and any forced statutory shortening with who and
    why, in the evidence log in the same transaction."""
    async with runtime.db.transaction() as session:
        shop = await load_shop(session, shop_domain)
        if shop is None:
            raise NotFound("shop")
        shop.policy_toml = policy.to_toml()
        summary = describe(policy)
        summary.pop("toml", None)
        await evidence.append(session, shop_domain, "policy_changed", summary)


async def connect(runtime: Runtime, shop_domain: str, adapter: str, values: dict[str, Any]) -> None:
    """Store an adapter's settings encrypted (merged with what is stored, so a secret left empty on
    a later edit keeps its stored value)."""
    async with runtime.db.transaction() as session:
        try:
            await connections.configure(runtime, session, shop_domain, adapter, values)
        except UnknownAdapter:
            raise NotFound("adapter") from None
        except connections.ConfigInvalid as exc:
            raise InvalidSettings(str(exc)) from None
        except connections.ConnectionProblem as exc:
            raise Refused(str(exc)) from None


async def check(runtime: Runtime, shop_domain: str, adapter: str) -> tuple[bool, str]:
    """Test one connection now and record the result on it (status, time, error without secrets)."""
    async with runtime.db.transaction() as session:
        shop = await load_shop(session, shop_domain)
        row = (
            await session.execute(
                select(AdapterConnection).where(
                    AdapterConnection.shop_domain == shop_domain, AdapterConnection.adapter == adapter
                )
            )
        ).scalar_one_or_none()
        if shop is None or row is None:
            raise NotFound("connection")
        try:
            built = await connections.build_adapter(runtime, session, shop, adapter)
        except connections.ConnectionProblem as exc:
            ok, message = False, str(exc)
        else:
            result = await connections.run_check(built, shop_domain)
            ok, message = result.ok, result.message
        connections.record_check(row, ok, message, utcnow())
    return ok, message


def parse_hold(values: dict[str, Any]) -> dict[str, Any]:
    """A hold as a form or JSON body gives it: `customer` (a Shopify customer id, or an e-mail),
    `reason`, and `ends_on` (YYYY-MM-DD, optional). Refused with the field named when malformed."""
    customer = str(values.get("customer") or "").strip()
    customer_id: int | None = None
    email: str | None = None
    if customer.isdigit():
        customer_id = int(customer)
    elif customer.startswith("gid://shopify/Customer/") and customer.rsplit("/", 1)[1].isdigit():
        customer_id = int(customer.rsplit("/", 1)[1])
    elif customer:
        email = customer
    raw_end = str(values.get("ends_on") or "").strip()
    try:
        ends_on = date.fromisoformat(raw_end) if raw_end else None
    except ValueError:
        raise Refused("ends_on: a date as YYYY-MM-DD") from None
    return {
        "customer_id": customer_id,
        "email": email,
        "reason": str(values.get("reason") or ""),
        "ends_on": ends_on,
    }


async def place_hold(
    runtime: Runtime, shop: Shop | None, shop_domain: str, values: dict[str, Any], by: str
) -> int:
    """Place a legal hold for the caller's shop (`plugin.legal_holds`); returns its id."""
    parsed = parse_hold(values)
    now = utcnow()
    try:
        async with runtime.db.transaction() as session:
            hold = await legal_holds.place(
                session,
                runtime.vault,
                shop_domain,
                placed_by=by,
                today=local_date(now, shop.timezone if shop else None),
                now=now,
                **parsed,
            )
            hold_id = hold.id
    except legal_holds.HoldRefused as exc:
        raise Refused(str(exc)) from None
    runtime.work_available.set()
    return hold_id


async def release_hold(runtime: Runtime, shop_domain: str, hold_id: int, reason: str, by: str) -> None:
    """Release one of the caller's shop's holds; the steps it kept re-plan on the workers."""
    try:
        async with runtime.db.transaction() as session:
            await legal_holds.release(
                session, runtime.vault, shop_domain, hold_id, released_by=by, reason=reason
            )
    except legal_holds.HoldNotFound:
        raise NotFound("hold") from None
    except legal_holds.HoldRefused as exc:
        raise Refused(str(exc)) from None
    runtime.work_available.set()


async def holds_of(runtime: Runtime, shop_domain: str) -> list[legal_holds.HoldView]:
    async with runtime.db.session() as session:
        rows = await legal_holds.list_holds(session, shop_domain)
    return [legal_holds.view(runtime.vault, row) for row in rows]
