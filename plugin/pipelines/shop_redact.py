"""`shop/redact`: erase everything Gallra holds for the shop, keeping only the evidence log reduced
to non-personal fields (its chain still verifies). Idempotent: running it twice erases nothing more
and appends one more `shop_redacted` entry at most once per request."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from plugin import evidence
from plugin.crypto import Vault
from plugin.models import (
    AdapterConnection,
    Artifact,
    Delivery,
    Evidence,
    OutboxMessage,
    Request,
    Shop,
    utcnow,
)


async def redact_shop(session: AsyncSession, vault: Vault, request: Request) -> dict[str, Any]:
    """Erase the shop's data in the caller's transaction; counts of what went."""
    domain = request.shop_domain
    others = Request.id != request.id
    counts: dict[str, int] = {}

    async def run(name: str, statement: Any) -> None:
        result = await session.execute(statement.execution_options(synchronize_session=False))
        counts[name] = int(result.rowcount or 0)  # type: ignore[attr-defined]

    await run("connections", delete(AdapterConnection).where(AdapterConnection.shop_domain == domain))
    await run("documents", delete(Artifact).where(Artifact.shop_domain == domain))
    await run("outbox", delete(OutboxMessage).where(OutboxMessage.shop_domain == domain))
    await run("deliveries", delete(Delivery).where(Delivery.shop_domain == domain))
    # Requests (and, by cascade, their steps) go; this request stays as the record of the redaction,
    # without any subject data.
    await run("requests", delete(Request).where(Request.shop_domain == domain, others))
    await session.execute(
        update(Request)
        .where(Request.id == request.id)
        .values(email_enc=None, phone_enc=None, email_hash=None, phone_hash=None)
        .execution_options(synchronize_session=False)
    )
    await run(
        "shop",
        update(Shop)
        .where(Shop.domain == domain)
        .values(
            status="redacted",
            name=None,
            contact_email_enc=None,
            access_token_enc=None,
            access_token_expires_at=None,
            refresh_token_enc=None,
            refresh_token_expires_at=None,
            policy_toml=None,
            scopes=None,
        ),
    )
    counts["evidence_reduced"] = await evidence.reduce_subjects(session, domain)
    return counts


async def already_redacted(session: AsyncSession, request: Request) -> bool:
    found = await session.execute(
        select(Evidence.id).where(
            Evidence.shop_domain == request.shop_domain,
            Evidence.request_id == request.id,
            Evidence.kind == "shop_redacted",
        )
    )
    return found.first() is not None


async def apply(session: AsyncSession, vault: Vault, request: Request) -> None:
    counts = await redact_shop(session, vault, request)
    if not await already_redacted(session, request):
        await evidence.append(
            session,
            request.shop_domain,
            "shop_redacted",
            {"erased": counts, "at": utcnow().isoformat()},
            request.id,
        )
    request.status = "finalizing"
    request.next_attempt_at = utcnow()
