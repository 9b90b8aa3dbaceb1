"""The certificate of erasure: per request, every system, what was done and when, the provider's
reference, what was reduced (removed, kept, until when, by which rule), and what was kept, until
when and by which rule. Each erasure and reduction carries its verification (seen gone by the
provider's own look-up, when and how, or why it cannot be), and the request is "verified" only
when every system is. No personal data: the subject is named by keyed hashes and the shop's
customer id; the evidence chain's head hash ties it to the log. What a legal hold keeps says so
with the hold's reason, since and until (`plugin.legal_holds`): the reason is the shop owner's
own words, and the stored documents are encrypted like every artifact.

The JSON is language-free; the HTML is rendered from it in Swedish or English. The stored HTML is
in the shop's language (`shop_language`); the other is rendered on demand from the stored JSON
(`certificate_document`), so both always say the same thing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from plugin import evidence, legal_holds
from plugin.controller import controller_document
from plugin.crypto import Vault
from plugin.documents.gaps import not_examined_block, planned_gaps
from plugin.documents.store import artifacts_of, read_artifact, replace_artifacts, templates
from plugin.documents.words import field_names
from plugin.i18n import Lang, shop_language
from plugin.models import Artifact, Request, Shop, Step, cell_of, utcnow
from plugin.states import StepState

CERTIFICATE_JSON = "certificate_json"
CERTIFICATE_HTML = "certificate_html"
# A `reduce` step whose provider call removed the fields (or stopped at suppression, or would have in
# a dry run). Any other outcome of a reduce step (an erasure) is reported as done.
REDUCED_OUTCOMES = ("reduced", "suppressed", "would_reduce")


# A system's verification is its least settled step's, in this order (the first found wins).
VERIFICATION_ORDER = ("still_present", "pending", "not_checked", "not_verifiable", "verified_absent")


def _when(step: Step) -> str | None:
    return step.finished_at.isoformat() if step.finished_at else None


def _legal_hold(decision: dict[str, Any], holds: dict[int, dict[str, Any]] | None) -> dict[str, Any] | None:
    """The legal hold that keeps the step's holding, if one does."""
    if not holds or not legal_holds.is_hold_rule(decision.get("rule_id")):
        return None
    return next((holds[i] for i in legal_holds.decision_hold_ids(decision) if i in holds), None)


def _verification(step: Step) -> dict[str, Any]:
    """How the step's erasure was seen to take effect (`plugin.executor.verify`); `not_checked`
    for one never looked at (a dry run, a step from before verification existed)."""
    when = step.verified_at or step.verify_after
    return {
        "state": step.verification or "not_checked",
        "at": when.isoformat() if when else None,
        "how": step.verification_detail,
    }


def verification_summary(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per system, the verification of its erasures and reductions; the request is verified only
    when every system's is `verified_absent`."""
    by_system: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_system.setdefault(entry["system"], []).append(entry["verification"])
    systems = []
    for system, checks in sorted(by_system.items()):
        state = next(s for s in VERIFICATION_ORDER if any(c["state"] == s for c in checks))
        times = [c["at"] for c in checks if c["state"] == state and c["at"]]
        hows = sorted({c["how"] for c in checks if c["state"] == state and c["how"]})
        systems.append(
            {"system": system, "state": state, "at": max(times, default=None), "how": "; ".join(hows)}
        )
    verified = bool(systems) and all(s["state"] == "verified_absent" for s in systems)
    return {"verified": verified, "systems": systems}


def build_certificate(
    request: Request,
    shop: Shop | None,
    steps: list[Step],
    head: tuple[int, str] | None,
    not_examined: Sequence[dict[str, Any]] = (),
    *,
    controller: dict[str, Any] | None = None,
    holds: dict[int, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`controller`: `plugin.controller.controller_document` of the shop (the caller holds the key
    its encrypted fields need); without it only the shop's name is known. `holds`: the legal holds
    the steps name, as `plugin.legal_holds.kept_lines` gives them."""
    who = controller or controller_document(None, shop, request.shop_domain)
    done: list[dict[str, Any]] = []
    reduced: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    open_items: list[dict[str, Any]] = []
    for step in sorted(steps, key=lambda s: (s.system, s.key)):
        decision = step.decision or {}
        label = (decision.get("holding") or {}).get("label") or step.holding_ref
        base = {"system": step.system, "category": step.category, "holding": label, "action": step.action}
        checked = {"verification": _verification(step)} if step.action in ("erase", "reduce") else {}
        if step.state == StepState.HELD or (step.action == "keep" and step.state != StepState.DONE):
            row = base | {
                "keep_until": decision.get("keep_until"),
                "rule_id": decision.get("rule_id"),
                "reference": decision.get("reference"),
                "reason_en": decision.get("reason_en"),
                "reason_sv": decision.get("reason_sv"),
            }
            hold = _legal_hold(decision, holds)
            kept.append(row if hold is None else row | {"legal_hold": hold})
        elif (
            step.action == "reduce"
            and step.state in (StepState.DONE, StepState.SKIPPED)
            and step.outcome in REDUCED_OUTCOMES
        ):
            rule_fields = list(decision.get("reduce_fields") or [])
            reduced.append(
                base
                | checked
                | {
                    "outcome": step.outcome,
                    "at": _when(step),
                    "provider_ref": step.provider_ref,
                    "reduce_fields": rule_fields,
                    # As the adapter reported them (the executor keeps them with the step); a dry
                    # run removed nothing, so it names what the rule would remove.
                    "removed": list(
                        decision.get("removed") or (rule_fields if step.outcome == "would_reduce" else [])
                    ),
                    "still_held": list(decision.get("still_held") or []),
                    "keep_until": decision.get("keep_until"),
                    "rule_id": decision.get("rule_id"),
                    "reference": decision.get("reference"),
                    "reason_en": decision.get("reason_en"),
                    "reason_sv": decision.get("reason_sv"),
                }
            )
        elif step.state in (StepState.DONE, StepState.SKIPPED):
            done.append(
                base
                | checked
                | {
                    "outcome": step.outcome,
                    "at": _when(step),
                    "provider_ref": step.provider_ref,
                    "rule_id": decision.get("rule_id"),
                }
            )
        else:
            open_items.append(base | checked | {"state": step.state, "provider_ref": step.provider_ref})
    return {
        "document": "certificate_of_erasure",
        "version": 1,
        "issued_at": utcnow().replace(microsecond=0).isoformat(),
        "shop": {"domain": request.shop_domain, "name": who["name"]},
        # Who erased: the controller, by name, legal name, address and contact address.
        "controller": who,
        "request": {
            "id": request.id,
            "kind": request.kind,
            "received_at": request.received_at.isoformat(),
            "due_at": request.due_at.isoformat(),
            "dry_run": request.dry_run,
        },
        "subject": evidence.subject_ref(request.email_hash, request.phone_hash, request.customer_id),
        # Shopify customers merged into `subject.customer_id` after the request arrived
        # (`customers/merge`): the request followed the kept customer; both are named.
        "merged_from": list(request.merged_from or []),
        "done": done,
        "reduced": reduced,
        "kept": kept,
        "open": open_items,
        # Which systems were seen to have erased, when and how; "verified" only when every one was.
        "verification": verification_summary(
            [e for e in (*done, *reduced, *open_items) if "verification" in e]
        ),
        **not_examined_block(not_examined),
        # The log's head when issued (its sequence number and the entry's MAC): the anchor that
        # `gallra evidence verify SHOP [--certificate FILE]` checks, so a log cut back below it,
        # even with its head record, is found as long as the shop keeps this document.
        "evidence": {"entries": head[0] if head else 0, "head_hash": head[1] if head else None},
    }


def render_certificate_html(certificate: dict[str, Any], lang: Lang) -> str:
    return templates().get_template("certificate.html").render(c=certificate, lang=lang, fields=field_names)


async def certificate_document(
    session: AsyncSession, vault: Vault, request: Request, lang: Lang
) -> str | None:
    """The request's certificate as HTML in `lang`, rendered from its stored JSON; None if none was
    issued."""
    for artifact in await artifacts_of(session, request.shop_domain, request.id):
        if artifact.kind == CERTIFICATE_JSON:
            found = await read_artifact(session, vault, request.shop_domain, artifact.id)
            return render_certificate_html(json.loads(found[1]), lang) if found else None
    return None


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
    certificate = build_certificate(
        request,
        shop,
        steps,
        await evidence.head(session, request.shop_domain),
        await planned_gaps(session, request),
        controller=controller_document(vault, shop, request.shop_domain),
        holds=await legal_holds.kept_lines(
            session,
            vault,
            request.shop_domain,
            (i for step in steps for i in legal_holds.decision_hold_ids(step.decision or {})),
        ),
    )
    text = json.dumps(certificate, indent=2, ensure_ascii=False)
    rows = await replace_artifacts(
        session,
        vault,
        request.shop_domain,
        request.id,
        [
            (CERTIFICATE_JSON, "application/json", text),
            (
                CERTIFICATE_HTML,
                "text/html; charset=utf-8",
                render_certificate_html(certificate, shop_language(shop)),
            ),
        ],
    )
    await evidence.append(
        session,
        request.shop_domain,
        "certificate_issued",
        {
            "done": len(certificate["done"]),
            "reduced": len(certificate["reduced"]),
            "kept": len(certificate["kept"]),
            "open": len(certificate["open"]),
            "not_examined": len(certificate["not_examined"]),
            "verified": certificate["verification"]["verified"],
        },
        request.id,
    )
    return rows


def anchor_of(document: dict[str, Any]) -> list[evidence.Anchor]:
    """The chain head a certificate (its JSON) carries; none for an empty log."""
    section = document.get("evidence")
    return evidence.anchors_of([section]) if isinstance(section, dict) else []


async def stored_anchors(session: AsyncSession, vault: Vault, shop_domain: str) -> list[evidence.Anchor]:
    """The anchors of every certificate of the shop still stored."""
    rows = (
        await session.execute(
            select(Artifact).where(Artifact.shop_domain == shop_domain, Artifact.kind == CERTIFICATE_JSON)
        )
    ).scalars()
    found: list[evidence.Anchor] = []
    for row in rows:
        found += anchor_of(json.loads(vault.decrypt(row.content_enc, cell_of(row, "content_enc")) or "{}"))
    return found
