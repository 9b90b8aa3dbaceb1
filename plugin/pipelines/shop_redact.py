"""`shop/redact`: erase everything Gallra holds for the shop, keeping only the evidence log reduced
to non-personal fields (its chain still verifies). Idempotent: running it twice erases nothing more
and appends one more `shop_redacted` entry at most once per request.

The delivery is signed but can be replayed or re-sent at any time, so its body alone never purges
a shop. Shopify sends `shop/redact` 48 hours after the owner uninstalls the app; Gallra carries it
out only once the shop's uninstall is confirmed (`plugin.pipelines.uninstall`: Shopify refused its
token) and 48 hours have passed since. Until then the request is `on_hold` with a `hold_reason`
(`HOLD_REASONS`), shown to the owner and the operator, and re-checked by the worker at
`next_attempt_at`; a confirmed uninstall wakes it at once. A shop Gallra has no row for (never
installed here) has nothing live to protect: its stray rows go at once. A shop already redacted is
redacted again (nothing more goes).

Legal holds (`plugin.legal_holds`) still bind: the requests of a customer under an active hold, with
their steps, deliveries and documents, and the active holds themselves, stay; everything else goes.
Releasing such a hold (or its end date passing) opens the redaction again, and it then takes the
rest.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from plugin import evidence, legal_holds
from plugin.crypto import Vault
from plugin.models import (
    AdapterConnection,
    Artifact,
    CustomerMerge,
    Delivery,
    Evidence,
    LegalHold,
    OutboxMessage,
    Request,
    Shop,
    ShopifyErasure,
    utcnow,
)
from plugin.states import RequestStatus, ShopStatus


async def redact_shop(session: AsyncSession, vault: Vault, request: Request) -> dict[str, Any]:
    """Erase the shop's data in the caller's transaction; counts of what went."""
    domain = request.shop_domain
    held = legal_holds.requests_of(vault, await legal_holds.active_holds(session, domain))
    kept = select(Request.id).where(Request.shop_domain == domain, held)
    others = and_(Request.id != request.id, not_(held))
    counts: dict[str, int] = {}

    async def run(name: str, statement: Any) -> None:
        result = await session.execute(statement.execution_options(synchronize_session=False))
        counts[name] = int(result.rowcount or 0)  # type: ignore[attr-defined]

    await run("connections", delete(AdapterConnection).where(AdapterConnection.shop_domain == domain))
    await run(
        "documents",
        delete(Artifact).where(
            Artifact.shop_domain == domain,
            or_(Artifact.request_id.is_(None), Artifact.request_id.not_in(kept)),
        ),
    )
    await run("outbox", delete(OutboxMessage).where(OutboxMessage.shop_domain == domain))
    await run(
        "deliveries",
        delete(Delivery).where(
            Delivery.shop_domain == domain,
            or_(Delivery.request_id.is_(None), Delivery.request_id.not_in(kept)),
        ),
    )
    await run(
        "legal_holds",
        delete(LegalHold).where(LegalHold.shop_domain == domain, LegalHold.released_at.is_not(None)),
    )
    await run("shopify_erasures", delete(ShopifyErasure).where(ShopifyErasure.shop_domain == domain))
    await run("customer_merges", delete(CustomerMerge).where(CustomerMerge.shop_domain == domain))
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
            status=ShopStatus.REDACTED,
            name=None,
            contact_email_enc=None,
            legal_name_enc=None,
            address_enc=None,
            controller_overrides=None,
            details_stale_at=None,
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


# Shopify: shop/redact comes 48 hours after the uninstall; Gallra waits as long from its confirmation.
SHOP_REDACT_DELAY = timedelta(hours=48)
# An installed shop's held redaction is looked at again this often (a confirmed uninstall wakes it).
RECHECK_INSTALLED = timedelta(hours=6)
# Why a shop redaction waits (Request.hold_reason), in the words the CLI and admin page use.
HOLD_REASONS = {
    "shop_installed": "the shop is installed: nothing is erased while it is",
    "uninstall_unconfirmed": "an uninstall was reported but Shopify has not confirmed it yet",
    "within_48h": "the shop was uninstalled less than 48 hours ago",
}


def hold_for(shop: Shop | None, now: datetime) -> tuple[str, datetime] | None:
    """Why and until when the shop's redaction must wait, or None when it may be carried out."""
    if shop is None or shop.status == ShopStatus.REDACTED:
        return None
    if shop.status == ShopStatus.UNINSTALLED:
        since = shop.uninstalled_at
        if since is not None and now < since + SHOP_REDACT_DELAY:
            return ("within_48h", since + SHOP_REDACT_DELAY)
        return None
    reason = "uninstall_unconfirmed" if shop.uninstall_claimed_at is not None else "shop_installed"
    return (reason, now + RECHECK_INSTALLED)


async def apply(session: AsyncSession, vault: Vault, request: Request, now: datetime | None = None) -> None:
    """Carry the redaction out, or put it on hold (see the module docstring)."""
    now = now or utcnow()
    # Locked (PostgreSQL) so that a reinstall cannot slip in between this check and the purge.
    shop = (
        await session.execute(select(Shop).where(Shop.domain == request.shop_domain).with_for_update())
    ).scalar_one_or_none()
    hold = hold_for(shop, now)
    if hold is not None:
        reason, until = hold
        if request.hold_reason != reason:
            await evidence.append(
                session, request.shop_domain, "shop_redact_held", {"reason": reason}, request.id
            )
        request.status, request.hold_reason, request.next_attempt_at = RequestStatus.ON_HOLD, reason, until
        return
    request.hold_reason = None
    counts = await redact_shop(session, vault, request)
    if not await already_redacted(session, request):
        await evidence.append(
            session,
            request.shop_domain,
            "shop_redacted",
            {"erased": counts, "at": utcnow().isoformat()},
            request.id,
        )
    request.status = RequestStatus.FINALIZING
    request.next_attempt_at = now
