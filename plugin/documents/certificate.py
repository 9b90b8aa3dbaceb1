"""The certificate of erasure: per request, every system, what was done and when, the provider's
reference, and what was kept, until when and by which rule. No personal data: the subject is named
by keyed hashes and the shop's customer id; the evidence chain's head hash ties it to the log."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from plugin import evidence
from plugin.crypto import Vault
from plugin.documents.store import replace_artifacts, templates
from plugin.models import Artifact, Request, Shop, Step, utcnow

CERTIFICATE_JSON = "certificate_json"
CERTIFICATE_HTML = "certificate_html"


def _when(step: Step) -> str | None:
    return step.finished_at.isoformat() if step.finished_at else None


def build_certificate(
    request: Request, shop: Shop | None, steps: list[Step], head: tuple[int, str] | None
) -> dict[str, Any]:
    done: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    open_items: list[dict[str, Any]] = []
    for step in sorted(steps, key=lambda s: (s.system, s.key)):
        decision = step.decision or {}
        label = (decision.get("holding") or {}).get("label") or step.holding_ref
        base = {"system": step.system, "category": step.category, "holding": label, "action": step.action}
        if step.state == "held" or (step.action == "keep" and step.state != "done"):
            kept.append(
                base
                | {
                    "keep_until": decision.get("keep_until"),
                    "rule_id": decision.get("rule_id"),
                    "reference": decision.get("reference"),
                    "reason_en": decision.get("reason_en"),
                    "reason_sv": decision.get("reason_sv"),
                }
            )
        elif step.state in ("done", "skipped"):
            done.append(
                base
                | {
                    "outcome": step.outcome,
                    "at": _when(step),
                    "provider_ref": step.provider_ref,
                    "rule_id": decision.get("rule_id"),
                }
            )
        else:
            open_items.append(base | {"state": step.state, "provider_ref": step.provider_ref})
    return {
        "document": "certificate_of_erasure",
        "version": 1,
        "issued_at": utcnow().replace(microsecond=0).isoformat(),
        "shop": {"domain": request.shop_domain, "name": shop.name if shop else None},
        "request": {
            "id": request.id,
            "kind": request.kind,
            "received_at": request.received_at.isoformat(),
            "due_at": request.due_at.isoformat(),
            "dry_run": request.dry_run,
        },
        "subject": evidence.subject_ref(request.email_hash, request.phone_hash, request.customer_id),
        "done": done,
        "kept": kept,
        "open": open_items,
        # The log's head when issued: `gallra evidence verify SHOP` proves the chain up to it.
        "evidence": {"entries": head[0] if head else 0, "head_hash": head[1] if head else None},
    }


def render_certificate_html(certificate: dict[str, Any]) -> str:
    return templates().get_template("certificate.html").render(c=certificate)


async def issue_certificate(
    vault: Vault, session: AsyncSession, request: Request, shop: Shop | None
) -> list[Artifact]:
    steps = list(
        (
            await session.execute(
                select(Step).where(Step.request_id == request.id, Step.shop_domain == request.shop_domain)
            )
        ).scalars()
    )
    certificate = build_certificate(request, shop, steps, await evidence.head(session, request.shop_domain))
    text = json.dumps(certificate, indent=2, ensure_ascii=False)
    rows = await replace_artifacts(
        session,
        vault,
        request.shop_domain,
        request.id,
        [
            (CERTIFICATE_JSON, "application/json", text),
            (CERTIFICATE_HTML, "text/html; charset=utf-8", render_certificate_html(certificate)),
        ],
    )
    await evidence.append(
        session,
        request.shop_domain,
        "certificate_issued",
        {
            "done": len(certificate["done"]),
            "kept": len(certificate["kept"]),
            "open": len(certificate["open"]),
        },
        request.id,
    )
    return rows
