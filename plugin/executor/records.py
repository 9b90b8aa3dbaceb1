"""How a step is named in evidence and certificates (no personal data), and the subject its
adapter call is made for."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from plugin.crypto import Vault
from plugin.holdings import Shipment, Subject
from plugin.models import Request, Step, cell_of

EXPORT_PART = "export_part"  # an adapter's export, kept encrypted until the extract is built


EXPORT_PART_LIFETIME = timedelta(days=45)


ERROR_LIMIT = 500


def subject_of(vault: Vault, request: Request, shipments: tuple[Shipment, ...] = ()) -> Subject:
    return Subject(
        shop_domain=request.shop_domain,
        customer_id=request.customer_id,
        email=vault.decrypt(request.email_enc, cell_of(request, "email_enc")),
        phone=vault.decrypt(request.phone_enc, cell_of(request, "phone_enc")),
        order_ids=tuple(int(o) for o in request.order_ids or ()),
        shipments=shipments,
        request_id=request.id,
    )


def step_record(step: Step) -> dict[str, Any]:
    """A step as evidence and certificates name it: no personal data."""
    decision = step.decision or {}
    holding = decision.get("holding", {})
    record = {
        "step": step.key,
        "system": step.system,
        "action": step.action,
        "category": step.category,
        "holding": step.holding_ref,
        "label": holding.get("label"),
        "rule_id": decision.get("rule_id"),
        "reference": decision.get("reference"),
        "keep_until": decision.get("keep_until"),
        "outcome": step.outcome,
        "provider_ref": step.provider_ref,
        "attempts": step.attempts,
    }
    if step.verification is not None:
        record["verification"] = step.verification
        record["verification_detail"] = step.verification_detail
    if step.action == "reduce":
        # What the rule asked to remove, and what the provider says went and still holds.
        record["reduce_fields"] = decision.get("reduce_fields") or []
        record["removed"] = decision.get("removed") or []
        record["still_held"] = decision.get("still_held") or []
    return record
