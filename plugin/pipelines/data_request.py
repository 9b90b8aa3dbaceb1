"""`customers/data_request`: an export step per adapter (Shopify's included: the customer and the
requested orders), then the register extract from the exports, Gallra's own records and the shop's
retention policy, stored encrypted behind an expiring link; the shop owner is notified."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.registry import catalogue, connected
from adapters.shopify_holdings import shop_date
from plugin import evidence, notifications
from plugin.controller import controller_document
from plugin.documents.extract import EXTRACT_HTML, build_extract, link_expiry, store_extract
from plugin.documents.gaps import planned_entry
from plugin.documents.links import download_link
from plugin.documents.store import artifacts_of
from plugin.executor.context import ExecContext
from plugin.executor.records import EXPORT_PART
from plugin.holdings import Category, holding_to_dict
from plugin.i18n import shop_language
from plugin.ledger import days_left, local_zone
from plugin.models import Artifact, Request, Shop, Step, cell_of, utcnow
from plugin.pipelines.enqueue import action_name
from plugin.pipelines.gather import gather
from plugin.states import RequestStatus, StepState

log = logging.getLogger("gallra.pipelines")

Apply = Callable[[AsyncSession, Request], Awaitable[None]]


async def prepare(ctx: ExecContext, session: AsyncSession, request: Request, shop: Shop) -> Apply:
    gathered = await gather(ctx, session, request, shop)
    adapters = await ctx.sources.adapters(session, shop)
    now = utcnow()
    today = shop_date(now, shop.timezone) or now.date()
    # Retention per holding as the policy stands today (sweep mode: nothing is being erased).
    decisions = ctx.sources.plan(shop, gathered.holdings, today, "sweep")
    retention = [
        {
            "system": d.holding.system,
            "category": d.holding.category.value,
            "label": d.holding.label,
            "action": action_name(d.action),
            "keep_until": d.keep_until.isoformat() if d.keep_until else None,
            "rule_id": d.rule_id,
            "reference": d.reference,
            "reason_sv": d.reason_sv,
            "reason_en": d.reason_en,
        }
        for d in decisions
    ]
    recipients = {
        a.name: {"system": a.name, "title": a.title, "category": a.category.value} for a in adapters
    }
    for holding in gathered.holdings:
        # Gallra's own records are the controller's working copy, not a recipient.
        if holding.system not in recipients and connected(holding.system):
            known = catalogue().get(holding.system)
            recipients[holding.system] = {
                "system": holding.system,
                "title": known.title if known else holding.system.replace("_", " ").title(),
                "category": holding.category.value,
            }
    # A source that could not be examined gets no export step (it would fail the same way); the
    # extract lists it as not examined instead.
    unreadable = {g.system for g in gathered.not_examined}
    exporters = [
        (a.name, a.category.value, a.title) for a in adapters if a.can_export and a.name not in unreadable
    ]
    # What each exporter was found to hold, carried on its export step: a carrier reached through
    # the e-mail channel knows the subject only through the shipments Shopify handed it, which the
    # executor rebuilds from these (as it does for an erase step's holding).
    held_by = {
        name: [
            holding_to_dict(h)
            for h in gathered.holdings
            if h.system == name and h.category is Category.SHIPMENT
        ]
        for name, _, _ in exporters
    }

    async def apply(session: AsyncSession, request: Request) -> None:
        dry_run = shop.dry_run or request.dry_run
        request.dry_run = dry_run
        for name, category, title in exporters:
            session.add(
                Step(
                    request_id=request.id,
                    shop_domain=request.shop_domain,
                    key=f"{name}:export",
                    system=name,
                    action="export",
                    category=category,
                    decision={"action": "export", "title": title, "holdings": held_by[name]},
                    state=StepState.SKIPPED if dry_run else StepState.PENDING,
                    outcome="would_export" if dry_run else None,
                    next_attempt_at=now,
                    attempts=0,
                    created_at=now,
                )
            )
        request.status = RequestStatus.IN_PROGRESS
        await evidence.append(
            session,
            request.shop_domain,
            "planned",
            {
                evidence.SUBJECT: evidence.subject_ref(
                    request.email_hash, request.phone_hash, request.customer_id
                ),
                "mode": "access",
                "dry_run": dry_run,
                "systems": [name for name, _, _ in exporters],
                "retention": retention,
                "recipients": sorted(recipients.values(), key=lambda r: r["system"]),
                "not_examined": [g.as_dict() for g in gathered.not_examined],
            },
            request.id,
        )

    return apply


async def finalize(ctx: ExecContext, session: AsyncSession, request: Request, shop: Shop | None) -> None:
    vault = ctx.runtime.vault
    parts = list(
        (
            await session.execute(
                select(Artifact).where(
                    Artifact.shop_domain == request.shop_domain,
                    Artifact.request_id == request.id,
                    Artifact.kind == EXPORT_PART,
                )
            )
        ).scalars()
    )
    exports: dict[str, Any] = {}
    for part in parts:
        content = vault.decrypt_json(part.content_enc, cell_of(part, "content_enc"))
        exports[content["system"]] = content["data"]
    own = []
    # Every hash the subject's e-mail may be stored under (earlier requests may be hashed under the
    # previous key of a rotation); from the e-mail itself, which this open request still holds.
    email = vault.decrypt(request.email_enc, cell_of(request, "email_enc"))
    candidates = vault.email_hashes(request.shop_domain, email) if email else ()
    if request.email_hash and request.email_hash not in candidates:
        candidates = (*candidates, request.email_hash)
    # Requests about the same Shopify customer count too (one sent without an e-mail, or after the
    # address changed).
    same: list[ColumnElement[bool]] = [Request.email_hash.in_(candidates)] if candidates else []
    if request.customer_id is not None:
        same.append(Request.customer_id == request.customer_id)
    if same:
        found = (
            await session.execute(
                select(
                    Request.id,
                    Request.kind,
                    Request.received_at,
                    Request.due_at,
                    Request.completed_at,
                    Request.status,
                )
                .where(Request.shop_domain == request.shop_domain, or_(*same))
                .order_by(Request.received_at, Request.id)
            )
        ).all()
        own = [
            {
                "id": r.id,
                "kind": r.kind,
                "received_at": r.received_at.isoformat(),
                "due_at": r.due_at.isoformat(),
                "completed_at": r.completed_at.isoformat() if r.completed_at else None,
                "status": r.status,
            }
            for r in found
        ]
    planned = await planned_entry(session, request)
    expires = link_expiry()
    extract = build_extract(
        request,
        shop,
        exports,
        own,
        planned or {},
        expires_at=expires,
        controller=controller_document(vault, shop, request.shop_domain),
    )
    stored = await store_extract(vault, session, request, extract, expires_at=expires)
    await session.execute(delete(Artifact).where(Artifact.id.in_([p.id for p in parts])))
    await evidence.append(
        session,
        request.shop_domain,
        "extract_built",
        {
            "systems": sorted(exports),
            "documents": [r.kind for r in stored],
            "available_until": expires.isoformat(),
        },
        request.id,
    )


async def notify_owner(ctx: ExecContext, shop: Shop | None, request: Request) -> None:
    """Tell the shop owner the extract is ready, with a signed link to it in the shop's language
    that expires with the document. Called after the extract's transaction committed: the
    notification and its e-mail are written in their own."""
    lang = shop_language(shop)
    async with ctx.runtime.db.session() as session:
        documents = {row.kind: row for row in await artifacts_of(session, request.shop_domain, request.id)}
    document = documents.get(EXTRACT_HTML[lang])
    if document is None or document.expires_at is None:
        return
    expires = document.expires_at
    now = utcnow()
    context = {
        "request_id": request.id,
        "artifact_id": document.id,
        "until": expires.astimezone(local_zone(shop.timezone if shop else None)).date().isoformat(),
        "days_left": days_left(expires, now, shop.timezone if shop else None),
    }
    link = download_link(ctx.runtime.settings, request.shop_domain, document.id, expires)
    await notifications.notify(
        ctx.runtime,
        request.shop_domain,
        "extract_ready",
        f"extract_ready:{request.id}",
        context,
        private={"link": link},
        now=now,
    )
