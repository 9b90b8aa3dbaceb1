"""Erasing Gallra's own personal data about a request, last, in one transaction with the step's
outcome and evidence: the look-ups of the other systems need the identifiers until then."""

from __future__ import annotations

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import Outcome
from plugin import evidence
from plugin.crypto import Vault
from plugin.executor import verify
from plugin.executor.context import ExecContext
from plugin.executor.outcomes import locked_step
from plugin.executor.records import EXPORT_PART, step_record
from plugin.holdings import GALLRA
from plugin.ledger import load_shop
from plugin.models import Artifact, Delivery, Request, delivery_cell, utcnow
from plugin.states import StepState


async def erase_own_data(session: AsyncSession, vault: Vault, shop_domain: str, ref: str) -> str:
    """Erase Gallra's own personal data behind a `request:<id>` holding: the request's encrypted
    e-mail and phone, the raw webhook bodies, unfinished export parts. Keyed hashes stay (the
    evidence names the subject by them). Returns the outcome."""
    kind, _, ident = ref.partition(":")
    if kind != "request" or not ident.isdigit():
        raise ValueError(f"unknown own holding {ref!r}")
    request_id = int(ident)
    found = await session.execute(
        update(Request)
        .where(Request.id == request_id, Request.shop_domain == shop_domain)
        .values(email_enc=None, phone_enc=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Delivery)
        .where(Delivery.request_id == request_id, Delivery.shop_domain == shop_domain)
        .values(body_enc=vault.encrypt('{"redacted": true}', delivery_cell(shop_domain)))
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        delete(Artifact).where(
            Artifact.request_id == request_id,
            Artifact.shop_domain == shop_domain,
            Artifact.kind == EXPORT_PART,
        )
    )
    return Outcome.ERASED.value if found.rowcount else Outcome.ALREADY_ABSENT.value  # type: ignore[attr-defined]


async def run_own_step(ctx: ExecContext, step_id: int) -> None:
    """Erase one holding of Gallra's own data (in one transaction with its outcome and evidence)."""
    now = utcnow()
    async with ctx.runtime.db.transaction() as session:
        step = await locked_step(session, step_id)
        if step is None or step.state not in (StepState.PENDING, StepState.RUNNING) or step.system != GALLRA:
            return
        request = await session.get(Request, step.request_id)
        shop = await load_shop(session, step.shop_domain)
        if (shop is not None and shop.dry_run) or (request is not None and request.dry_run):
            step.state, step.outcome = StepState.SKIPPED, f"would_{step.action}"
        else:
            step.outcome = await erase_own_data(
                session, ctx.runtime.vault, step.shop_domain, step.holding_ref or ""
            )
            step.state = StepState.DONE
            step.verification, step.verified_at = verify.ABSENT, now
            step.verification_detail = verify.OWN_DATA
        step.finished_at = now
        step.lease_owner = step.lease_expires_at = None
        await evidence.append(
            session, step.shop_domain, f"step_{step.state}", step_record(step), step.request_id
        )
