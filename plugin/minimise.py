"""The ledger minimises itself: a finished request keeps its subject's data for the period the
shop's policy states (`Policy.minimise_after`, 3 years by default), then drops it.

What goes: the encrypted e-mail and phone, the order ids, the business key's identifiers (it
becomes a keyed digest of itself, still unique), the raw webhook bodies, every document of the
request but its certificate, its e-mail-channel messages, the references and labels of its steps
(refs and keys become keyed digests), and the identifier part of its evidence entries (the
retention end of `plugin.evidence`: the chain still verifies).

What stays: what the certificate names the subject by (the keyed e-mail and phone hashes and the
shop's customer id, `evidence.subject_ref`), the certificate itself, the request's kind, dates and
status, and the steps' systems, actions, outcomes and rules. The certificate is rendered from its
stored JSON, so it reads and verifies as before.

Run once a day by the clocks (`plugin.clocks.minimise_requests`, claimed once per day).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from plugin import evidence
from plugin.crypto import Vault
from plugin.documents.certificate import CERTIFICATE_HTML, CERTIFICATE_JSON
from plugin.ledger import load_shop
from plugin.models import REDACTED_BODY, Artifact, Delivery, OutboxMessage, Request, Step, delivery_cell
from plugin.retention import Policy, StoredPolicyError, shop_policy
from plugin.states import OutboxStatus, RequestStatus

FINISHED = (RequestStatus.DONE,)
MINIMISED_KEY = "minimised:"
log = logging.getLogger("gallra.minimise")


def is_due(policy: Policy, completed_at: datetime, now: datetime) -> bool:
    return policy.minimise_after.after(completed_at.date()) <= now.date()


async def minimise_due(session: AsyncSession, vault: Vault, now: datetime, *, limit: int = 500) -> int:
    """Minimise up to `limit` finished requests whose period has passed; returns how many (fewer
    than `limit`: none is left)."""
    open_rows = (
        Request.status.in_(FINISHED),
        Request.minimised_at.is_(None),
        Request.completed_at.is_not(None),
    )
    domains = (await session.execute(select(Request.shop_domain).where(*open_rows).distinct())).scalars()
    done = 0
    for domain in list(domains):
        try:
            policy = shop_policy(await load_shop(session, domain))
        except StoredPolicyError:
            # The failure rule of `shop_policy`: the shop's requests keep their data until the
            # owner saves a policy again (the admin shows why).
            log.warning("skipped %s: its stored retention policy cannot be used", domain)
            continue
        rows = (
            await session.execute(
                select(Request)
                .where(Request.shop_domain == domain, *open_rows)
                .order_by(Request.completed_at)
                .limit(limit - done)
            )
        ).scalars()
        for request in list(rows):
            assert request.completed_at is not None
            if not is_due(policy, request.completed_at, now):
                break  # oldest first: the rest of the shop's are newer
            await minimise_request(session, vault, request, now)
            done += 1
        if done >= limit:
            break
    return done


async def minimise_request(session: AsyncSession, vault: Vault, request: Request, now: datetime) -> None:
    """Drop one finished request's subject data, keeping what its certificate needs."""
    domain, rid = request.shop_domain, request.id
    request.email_enc = request.phone_enc = None
    request.order_ids = []
    if not request.business_key.startswith(MINIMISED_KEY):
        request.business_key = f"{MINIMISED_KEY}{vault.lookup_hash(domain, request.business_key)}"
    request.last_error = None
    request.minimised_at = now
    await session.execute(
        update(Delivery)
        .where(Delivery.request_id == rid, Delivery.shop_domain == domain)
        .values(body_enc=vault.encrypt(REDACTED_BODY, delivery_cell(domain)))
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        delete(Artifact).where(
            Artifact.request_id == rid,
            Artifact.shop_domain == domain,
            Artifact.kind.not_in((CERTIFICATE_JSON, CERTIFICATE_HTML)),
        )
    )
    steps = list(
        (
            await session.execute(select(Step).where(Step.request_id == rid, Step.shop_domain == domain))
        ).scalars()
    )
    step_ids = [s.id for s in steps]
    if step_ids:
        await session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.shop_domain == domain,
                OutboxMessage.step_id.in_(step_ids),
                OutboxMessage.status.in_((OutboxStatus.CONFIRMED, OutboxStatus.FAILED)),
            )
        )
    for step in steps:
        _minimise_step(vault, step)
    await evidence.reduce_subjects(session, domain, rid)
    await session.flush()


def _minimise_step(vault: Vault, step: Step) -> None:
    if step.key.startswith(MINIMISED_KEY):
        return
    # Keyed digests keep keys unique within the request and refs comparable under the key.
    step.key = f"{MINIMISED_KEY}{vault.lookup_hash(step.shop_domain, step.key)}"
    if step.holding_ref:
        step.holding_ref = f"{MINIMISED_KEY}{vault.lookup_hash(step.shop_domain, step.holding_ref)}"
    step.provider_ref = None
    step.last_error = None
    decision: dict[str, Any] = dict(step.decision or {})
    holding = decision.get("holding")
    if isinstance(holding, dict):
        # The holding's system, category and dates stay; its reference and label go.
        decision["holding"] = holding | {"ref": step.holding_ref or "", "label": ""}
    step.decision = decision
