"""Legal holds: the shop owner keeps a customer's data from every erasure (GDPR art. 17(3)(e)).

A hold names a customer by Shopify customer id or by e-mail (stored encrypted, found by its keyed
look-up hash), carries a reason (free text, possibly personal: encrypted) and an optional last day.
While a hold is active:
- a request about that customer (`customers/redact`, a data request) plans with every holding
  flagged `legal_hold` (and `legal_hold:<id>`, naming the hold), so the retention policy's `HOLD-*`
  flag rules keep it (one path: `plugin.retention.planner`). A hold with an end date keeps until
  that day; one without is looked at again every day (`plugin.pipelines.holds`);
- the retention sweep flags the customer's orders and account alike, so they are counted as kept;
- `shop/redact` leaves the customer's requests in place (`plugin.pipelines.shop_redact`).
A hold is released by the owner or, the day after its end date, by the clock (`release_expired`);
either way the customer's held steps are woken at once and re-plan without the hold. Placing,
releasing and expiry are evidence-logged: the public part names the hold's id and dates only; the
reason, who acted and the customer go into the entry's identifier part.

Automatic holds (an order with an open dispute or return) are no rows here: they are flags Shopify's
order data sets (`adapters.shopify_holdings`), kept by the policy's `DISPUTE-*` and `RETURN-*` rules.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from plugin import evidence
from plugin.crypto import Vault, normalise_email
from plugin.holdings import Holding
from plugin.models import LegalHold, Request, Shop, Step, cell_of, utcnow
from plugin.retention.dates import local_date

FLAG = "legal_hold"  # the flag the policy's HOLD-* rules keep while a holding carries it
ID_FLAG = "legal_hold:"  # + the hold's id: which hold keeps the holding
REASON_LIMIT = 1000
ACTOR_LIMIT = 200
RELEASED_EXPLICIT, RELEASED_EXPIRED = "explicit", "expired"


class HoldRefused(Exception):
    """The hold cannot be placed or released as asked; the message says why (no personal data)."""


class HoldNotFound(Exception):
    """No such hold in the caller's shop (whether or not another shop has one)."""


@dataclasses.dataclass(frozen=True)
class HoldView:
    """A hold as the shop owner reads it (decrypted). Personal data: never log it."""

    id: int
    customer_id: int | None
    email: str | None = dataclasses.field(repr=False)
    reason: str = dataclasses.field(repr=False)
    placed_at: datetime
    placed_by: str | None = dataclasses.field(repr=False)
    ends_on: date | None
    released_at: datetime | None
    released_by: str | None = dataclasses.field(repr=False)
    release_reason: str | None = dataclasses.field(repr=False)
    released_how: str | None

    @property
    def active(self) -> bool:
        return self.released_at is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "email": self.email,
            "reason": self.reason,
            "placed_at": self.placed_at.isoformat(),
            "placed_by": self.placed_by,
            "ends_on": self.ends_on.isoformat() if self.ends_on else None,
            "active": self.active,
            "released_at": self.released_at.isoformat() if self.released_at else None,
            "released_by": self.released_by,
            "release_reason": self.release_reason,
            "released_how": self.released_how,
        }

    def kept_line(self) -> dict[str, Any]:
        """What a plan or certificate shows of the hold: "kept: legal hold — reason, since, until"."""
        return {
            "hold_id": self.id,
            "reason": self.reason,
            "since": self.placed_at.date().isoformat(),
            "until": self.ends_on.isoformat() if self.ends_on else None,
        }


def view(vault: Vault, hold: LegalHold) -> HoldView:
    def clear(column: str) -> str | None:
        return vault.decrypt(getattr(hold, column), cell_of(hold, column))

    return HoldView(
        id=hold.id,
        customer_id=hold.customer_id,
        email=clear("email_enc"),
        reason=clear("reason_enc") or "",
        placed_at=hold.placed_at,
        placed_by=clear("placed_by_enc"),
        ends_on=hold.ends_on,
        released_at=hold.released_at,
        released_by=clear("released_by_enc"),
        release_reason=clear("release_reason_enc"),
        released_how=hold.released_how,
    )


def _entry(row: LegalHold, **public: Any) -> dict[str, Any]:
    """An evidence payload about the hold: the subject as evidence names one (keyed hash, customer
    id) in the identifier part; only the hold's id and dates in the public part."""
    return {
        evidence.SUBJECT: evidence.subject_ref(row.email_hash, None, row.customer_id),
        "hold_id": row.id,
        "ends_on": row.ends_on.isoformat() if row.ends_on else None,
        **public,
    }


def _text(value: str | None, limit: int) -> str:
    return (value or "").strip()[:limit]


async def place(
    session: AsyncSession,
    vault: Vault,
    shop_domain: str,
    *,
    customer_id: int | None,
    email: str | None,
    reason: str,
    placed_by: str | None,
    ends_on: date | None = None,
    today: date | None = None,
    now: datetime | None = None,
) -> LegalHold:
    """Place a hold in the caller's transaction; woken steps re-plan with it on their next run."""
    now = now or utcnow()
    email = normalise_email(email) if email and email.strip() else None
    reason = _text(reason, REASON_LIMIT)
    if customer_id is None and email is None:
        raise HoldRefused("name the customer: a Shopify customer id or an e-mail address")
    if customer_id is not None and customer_id <= 0:
        raise HoldRefused("a Shopify customer id is a positive number")
    if email is not None and "@" not in email:
        raise HoldRefused("the e-mail address is not valid")
    if not reason:
        raise HoldRefused("a reason is required")
    if ends_on is not None and today is not None and ends_on < today:
        raise HoldRefused("the end date has passed")
    hold = LegalHold(
        shop_domain=shop_domain,
        key=secrets.token_hex(16),
        customer_id=customer_id,
        email_hash=vault.email_hash(shop_domain, email) if email else None,
        placed_at=now,
        ends_on=ends_on,
    )
    hold.email_enc = vault.encrypt(email, cell_of(hold, "email_enc"))
    hold.reason_enc = vault.encrypt(reason, cell_of(hold, "reason_enc")) or ""
    hold.placed_by_enc = vault.encrypt(_text(placed_by, ACTOR_LIMIT) or None, cell_of(hold, "placed_by_enc"))
    session.add(hold)
    await session.flush()
    await evidence.append(
        session,
        shop_domain,
        "legal_hold_placed",
        _entry(hold, hold={"reason": reason, "by": placed_by}),
        at=now,
    )
    await wake_held_steps(session, vault, hold, now)
    return hold


async def release(
    session: AsyncSession,
    vault: Vault,
    shop_domain: str,
    hold_id: int,
    *,
    released_by: str | None,
    reason: str | None,
    how: str = RELEASED_EXPLICIT,
    now: datetime | None = None,
) -> LegalHold:
    """Release one of the shop's holds in the caller's transaction and wake the customer's held
    steps, which then re-plan without it."""
    now = now or utcnow()
    hold = await get(session, shop_domain, hold_id, lock=True)
    if hold.released_at is not None:
        raise HoldRefused("the hold was already released")
    hold.released_at, hold.released_how = now, how
    hold.released_by_enc = vault.encrypt(
        _text(released_by, ACTOR_LIMIT) or None, cell_of(hold, "released_by_enc")
    )
    hold.release_reason_enc = vault.encrypt(
        _text(reason, REASON_LIMIT) or None, cell_of(hold, "release_reason_enc")
    )
    kind = "legal_hold_expired" if how == RELEASED_EXPIRED else "legal_hold_released"
    await evidence.append(
        session,
        shop_domain,
        kind,
        _entry(hold, hold={"reason": _text(reason, REASON_LIMIT) or None, "by": released_by}),
        at=now,
    )
    await wake_held_steps(session, vault, hold, now)
    await _reopen_shop_redaction(session, shop_domain, now)
    return hold


async def _reopen_shop_redaction(session: AsyncSession, shop_domain: str, now: datetime) -> None:
    """`shop/redact` left the held customer's data in place (`plugin.pipelines.shop_redact`); once a
    hold of a redacted shop is gone, the redaction runs again and takes what is no longer held."""
    status = await session.scalar(select(Shop.status).where(Shop.domain == shop_domain))
    if status != "redacted":
        return
    await session.execute(
        update(Request)
        .where(Request.shop_domain == shop_domain, Request.kind == "shop_redact", Request.status == "done")
        .values(status="received", next_attempt_at=now, completed_at=None)
        .execution_options(synchronize_session=False)
    )


async def get(session: AsyncSession, shop_domain: str, hold_id: int, *, lock: bool = False) -> LegalHold:
    query = select(LegalHold).where(LegalHold.id == hold_id, LegalHold.shop_domain == shop_domain)
    found = (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()
    if found is None:
        raise HoldNotFound("hold")
    return found


async def list_holds(
    session: AsyncSession, shop_domain: str, *, active_only: bool = False
) -> list[LegalHold]:
    query = select(LegalHold).where(LegalHold.shop_domain == shop_domain)
    if active_only:
        query = query.where(LegalHold.released_at.is_(None))
    return list((await session.execute(query.order_by(LegalHold.id.desc()))).scalars())


async def active_holds(session: AsyncSession, shop_domain: str) -> list[LegalHold]:
    return await list_holds(session, shop_domain, active_only=True)


def matching(
    holds: Iterable[LegalHold], customer_id: int | None, email_hashes: Sequence[str]
) -> list[LegalHold]:
    """The holds naming this customer (by id, or by any form of the e-mail's keyed hash)."""
    hashes = set(email_hashes)
    return [
        h
        for h in holds
        if (customer_id is not None and h.customer_id == customer_id)
        or (h.email_hash is not None and h.email_hash in hashes)
    ]


async def holds_for_subject(
    session: AsyncSession, vault: Vault, shop_domain: str, customer_id: int | None, email: str | None
) -> list[LegalHold]:
    """The shop's active holds on this customer."""
    hashes = vault.email_hashes(shop_domain, email) if email else ()
    return matching(await active_holds(session, shop_domain), customer_id, hashes)


def flags_for(holds: Sequence[LegalHold]) -> frozenset[str]:
    if not holds:
        return frozenset()
    return frozenset({FLAG, *(f"{ID_FLAG}{h.id}" for h in holds)})


def without_hold_flags(flags: Iterable[str]) -> frozenset[str]:
    return frozenset(f for f in flags if f != FLAG and not f.startswith(ID_FLAG))


def apply(holdings: Iterable[Holding], holds: Sequence[LegalHold]) -> list[Holding]:
    """The holdings with the holds' flags set in place of any they carried before (a released hold's
    flags go)."""
    extra = flags_for(holds)
    return [
        h
        if not extra and not any(f == FLAG or f.startswith(ID_FLAG) for f in h.flags)
        else dataclasses.replace(h, flags=without_hold_flags(h.flags) | extra)
        for h in holdings
    ]


def hold_ids(flags: Iterable[str]) -> list[int]:
    return sorted(
        int(f[len(ID_FLAG) :]) for f in flags if f.startswith(ID_FLAG) and f[len(ID_FLAG) :].isdigit()
    )


def decision_hold_ids(decision: dict[str, Any]) -> list[int]:
    """The holds a stored step decision (`plugin.pipelines.enqueue.decision_to_dict`) names."""
    return hold_ids((decision.get("holding") or {}).get("flags") or ())


def end_of(holds: Sequence[LegalHold]) -> date | None:
    """The last day these holds keep (None: at least one has no end)."""
    ends = [h.ends_on for h in holds]
    return None if not ends or None in ends else max(e for e in ends if e is not None)


def is_hold_rule(rule_id: str | None) -> bool:
    return bool(rule_id) and str(rule_id).split("-", 1)[0] == "HOLD"


async def kept_lines(
    session: AsyncSession, vault: Vault, shop_domain: str, ids: Iterable[int]
) -> dict[int, dict[str, Any]]:
    """Hold id → what a plan or certificate shows of it (`HoldView.kept_line`), for the shop's holds."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = (
        await session.execute(
            select(LegalHold).where(LegalHold.shop_domain == shop_domain, LegalHold.id.in_(wanted))
        )
    ).scalars()
    return {row.id: view(vault, row).kept_line() for row in rows}


def email_hashes(vault: Vault, hold: LegalHold) -> tuple[str, ...]:
    """Every form the hold's e-mail may be hashed under in other rows (both keys during a key
    rotation, which rewrites the requests' hashes but not the holds')."""
    if hold.email_enc is None:
        return ()
    return vault.email_hashes(hold.shop_domain, vault.decrypt(hold.email_enc, cell_of(hold, "email_enc")))


def requests_of(vault: Vault, holds: Iterable[LegalHold]) -> ColumnElement[bool]:
    """A condition on `Request`: about a customer under one of these holds."""
    ids = [h.customer_id for h in holds if h.customer_id is not None]
    hashes = [x for h in holds for x in email_hashes(vault, h)]
    found: list[ColumnElement[bool]] = []
    if ids:
        found.append(Request.customer_id.in_(ids))
    if hashes:
        found.append(Request.email_hash.in_(hashes))
    return or_(*found) if found else false()


async def wake_held_steps(session: AsyncSession, vault: Vault, hold: LegalHold, now: datetime) -> int:
    """The customer's held steps, in every request of the shop about them, are due now: each
    re-plans with the holds as they are (`plugin.pipelines.holds`)."""
    requests = select(Request.id).where(Request.shop_domain == hold.shop_domain, requests_of(vault, [hold]))
    result = await session.execute(
        update(Step)
        .where(Step.shop_domain == hold.shop_domain, Step.state == "held", Step.request_id.in_(requests))
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def release_expired(session: AsyncSession, vault: Vault, now: datetime | None = None) -> int:
    """Release every hold whose end date has passed in its shop's time zone (the clock's job); each
    shop's holds are few. Safe to run on every instance: a hold is locked and released once."""
    now = now or utcnow()
    rows = (
        await session.execute(
            select(LegalHold.id, LegalHold.shop_domain, LegalHold.ends_on, Shop.timezone)
            .join(Shop, Shop.domain == LegalHold.shop_domain, isouter=True)
            .where(
                LegalHold.released_at.is_(None),
                LegalHold.ends_on.is_not(None),
                LegalHold.ends_on <= now.date(),
            )
        )
    ).all()
    released = 0
    for hold_id, shop_domain, ends_on, timezone in rows:
        if ends_on is None or ends_on >= local_date(now, timezone):
            continue
        try:
            await release(
                session,
                vault,
                shop_domain,
                hold_id,
                released_by=None,
                reason=None,
                how=RELEASED_EXPIRED,
                now=now,
            )
        except HoldRefused:
            continue  # another instance released it first
        released += 1
    return released
