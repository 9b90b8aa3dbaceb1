"""Evidence: an append-only, hash-chained log per shop of every decision and every outcome.

Each entry's hash covers the previous entry's hash, its sequence number, time, kind, request and
payload, so changing or removing any entry breaks the chain from there on; `verify` finds the first
broken entry. Payloads hold no personal data: a subject is named by keyed per-shop hashes
(`Vault.email_hash`), under the one key `subject`.

After `shop/redact` even those keyed hashes must go, yet the chain must still verify. So the hash
never covers the `subject` value itself but its SHA-256 digest; reducing an entry replaces
`subject` by `subject_digest`, and the entry hashes to exactly the same value as before.

Usage: `await append(session, shop, "step_done", {...}, request_id=7)` inside the caller's
transaction; `await verify(session, shop)` → `VerifyResult`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from plugin.executor.locks import serialise
from plugin.models import Evidence, utcnow

GENESIS = "0" * 64
SUBJECT = "subject"  # the one payload key that may carry (pseudonymous) personal data
SUBJECT_DIGEST = "subject_digest"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _digest(value: Any) -> str:
    return hashlib.sha256(_canonical(value).encode()).hexdigest()


def hashed_view(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as the chain sees it: the subject replaced by its digest."""
    view = {k: v for k, v in payload.items() if k != SUBJECT}
    if SUBJECT in payload:
        view[SUBJECT_DIGEST] = _digest(payload[SUBJECT])
    return view


def entry_hash(
    prev_hash: str, seq: int, at: datetime, kind: str, request_id: int | None, payload: dict[str, Any]
) -> str:
    material = _canonical(
        {
            "prev": prev_hash,
            "seq": seq,
            "at": at.isoformat(),
            "kind": kind,
            "request_id": request_id,
            "payload": hashed_view(payload),
        }
    )
    return hashlib.sha256(material.encode()).hexdigest()


def subject_ref(
    email_hash: str | None, phone_hash: str | None = None, customer_id: int | None = None
) -> dict[str, Any]:
    """How evidence names a subject: keyed hashes and the shop's own customer id, never addresses."""
    return {"email_hash": email_hash, "phone_hash": phone_hash, "customer_id": customer_id}


async def append(
    session: AsyncSession,
    shop_domain: str,
    kind: str,
    payload: dict[str, Any],
    request_id: int | None = None,
    *,
    at: datetime | None = None,
) -> Evidence:
    """Append one entry inside the caller's transaction. Appends for one shop are serialised (an
    advisory lock on PostgreSQL, the write lock on SQLite), so sequence numbers never collide."""
    await serialise(session, f"evidence:{shop_domain}")
    last = await head(session, shop_domain)
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    # Microseconds are dropped so the stored time (SQLite keeps them, some drivers may not) and the
    # hashed time are the same value.
    moment = (at or utcnow()).astimezone(UTC).replace(microsecond=0)
    row = Evidence(
        shop_domain=shop_domain,
        seq=seq,
        request_id=request_id,
        at=moment,
        kind=kind,
        payload=payload,
        prev_hash=prev,
        hash=entry_hash(prev, seq, moment, kind, request_id, payload),
    )
    session.add(row)
    await session.flush()
    return row


async def head(session: AsyncSession, shop_domain: str) -> tuple[int, str] | None:
    """The shop's latest (sequence number, hash), or None for an empty log."""
    last = (
        await session.execute(
            select(Evidence.seq, Evidence.hash)
            .where(Evidence.shop_domain == shop_domain)
            .order_by(Evidence.seq.desc())
            .limit(1)
        )
    ).first()
    return (int(last[0]), str(last[1])) if last else None


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    first_broken_seq: int | None = None
    reason: str = ""

    def describe(self, shop_domain: str) -> str:
        if self.ok:
            return f"{shop_domain}: evidence chain intact ({self.entries} entries)"
        return f"{shop_domain}: evidence chain BROKEN at entry {self.first_broken_seq}: {self.reason}"


async def entries(session: AsyncSession, shop_domain: str, request_id: int | None = None) -> list[Evidence]:
    statement = select(Evidence).where(Evidence.shop_domain == shop_domain)
    if request_id is not None:
        statement = statement.where(Evidence.request_id == request_id)
    return list((await session.execute(statement.order_by(Evidence.seq))).scalars())


async def verify(session: AsyncSession, shop_domain: str) -> VerifyResult:
    """Walk the shop's chain in order; report the first entry whose links or hash do not hold."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    for row in await entries(session, shop_domain):
        count += 1
        if row.seq != expected_seq:
            return VerifyResult(False, count, row.seq, f"expected entry {expected_seq} (an entry is missing)")
        if row.prev_hash != prev:
            return VerifyResult(False, count, row.seq, "does not link to the previous entry")
        # A reduced entry carries `subject_digest` in place of `subject`; both hash alike.
        recomputed = entry_hash(row.prev_hash, row.seq, row.at, row.kind, row.request_id, row.payload)
        if recomputed != row.hash:
            return VerifyResult(False, count, row.seq, "content does not match its hash (altered)")
        prev = row.hash
        expected_seq += 1
    return VerifyResult(True, count)


async def reduce_subjects(session: AsyncSession, shop_domain: str) -> int:
    """Drop the subject's keyed hashes from every entry of the shop, keeping the chain verifiable.
    Returns the number of entries reduced."""
    reduced = 0
    for row in await entries(session, shop_domain):
        if SUBJECT in row.payload:
            payload = {k: v for k, v in row.payload.items() if k != SUBJECT}
            payload[SUBJECT_DIGEST] = _digest(row.payload[SUBJECT])
            row.payload = payload
            reduced += 1
    await session.flush()
    return reduced
