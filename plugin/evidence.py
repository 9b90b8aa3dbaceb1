"""Evidence: an append-only, keyed, chained log per shop of every decision and every outcome.

Each entry is a public part (`payload`) and an identifier part (`identifiers`: the subject,
step keys, holding references and labels, provider references, errors — whatever names a person
or a provider's record of one). At append the identifier part is split off the payload, and the
payload gets in its place, per field, a keyed look-up digest (`Vault.lookup_hash`, so a holder of
the key can still ask "is customer 7 in here?") and one MAC of the whole identifier part.

The chain covers the payload only: each entry's `hash` is an HMAC-SHA256, under a key derived
from GALLRA_ENCRYPTION_KEY (HKDF info `CHAIN_PURPOSE`), of the shop, the previous entry's hash,
its sequence number, time, kind, request and payload. So:

- Reducing an entry (after `shop/redact`, or when the request's data retention ends, see
  `plugin.minimise`) sets `identifiers` to None. The payload, and so the chain, is unchanged: the
  chain still verifies, and what is left holds only keyed digests.
- While an entry is not reduced, `verify` checks its identifiers against the MAC in its payload,
  so they cannot be changed either.
- Rewriting entries and recomputing the chain needs the key: a database-only attacker cannot.
- Removing the newest entries needs no recomputation at all, so the head (sequence number and
  hash) is anchored apart: in `evidence_heads` (MAC'd, written with every append) and in every
  certificate (`plugin.documents.certificate`), which the shop owner keeps outside the database.
  `verify` checks both; docs/architecture.md, "Evidence", says what stays possible.

Entries written before migration 0005 (version 1) were chained with unkeyed SHA-256 over payloads
that held identifiers; the migration checks each such chain and re-writes it in this form under
the key (`rechained`). After it, an unkeyed entry is a break: it can only have been re-hashed by
someone without the key. `rechain` (`gallra evidence rechain`) moves a chain to the current key
after a key rotation; entries under the previous key verify while it is configured.

The keys come with the session: `bind(database, vault)` (done by `Runtime`) puts them in every
session's `info`, so every stage appends with `await append(session, shop, kind, {...}, request_id)`
inside its own transaction. `await verify(session, shop)` → `VerifyResult`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from plugin.crypto import Vault
from plugin.locks import serialise
from plugin.models import Evidence, EvidenceHead, utcnow

if TYPE_CHECKING:
    from plugin.db import Database

GENESIS = "0" * 64
CHAIN_PURPOSE = b"gallra evidence chain v1"
LEGACY, KEYED = 1, 2
SUBJECT = "subject"
# Payload fields that name a person or a provider's record of one. Whatever a stage writes under
# these goes to the identifier part; everything else must be free of personal data.
# (`forced_overrides` of a policy change names who forced it: a person of the shop; `hold` is a
# legal hold's reason and who placed or released it, `plugin.legal_holds`.)
IDENTIFIER_FIELDS = frozenset(
    {
        SUBJECT,
        "step",
        "holding",
        "label",
        "provider_ref",
        "error",
        "order_ids",
        "forced_overrides",
        # Who cancelled a Shopify erasure, and why (`plugin.shopify.erasures`).
        "cancelled_by",
        "cancel_reason",
        # A legal hold: its customer, reason and who placed or released it (`plugin.legal_holds`).
        "hold",
    }
)
DIGESTS = "ids"  # payload: field -> keyed look-up digest of its value
IDS_MAC = "ids_mac"  # payload: MAC of the identifier part under the chain key
REKEYED_FROM = "rechained_from"  # payload: the entry's hashes before a re-chain (old anchors)
_INFO = "gallra.evidence.keys"
# Version-1 reduction put a SHA-256 of the subject here; unkeyed, so re-chaining drops it.
_LEGACY_SUBJECT_DIGEST = "subject_digest"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _mac(key: bytes, value: Any) -> str:
    return hmac.new(key, _canonical(value).encode(), hashlib.sha256).hexdigest()


class ChainKeys:
    """The chain's MAC keys (current first, then the previous key's) and the vault for digests."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        keys = vault.purpose_keys(CHAIN_PURPOSE)
        self.by_id = {_mac(key, "key id")[:16]: key for key in keys}
        self.current_id = next(iter(self.by_id))
        self.current = self.by_id[self.current_id]


def bind(database: Database, vault: Vault) -> None:
    """Give every session of `database` the chain keys (appending and verifying need them)."""
    database.sessions.configure(info={_INFO: ChainKeys(vault)})


def keys_of(session: AsyncSession) -> ChainKeys:
    keys = session.info.get(_INFO)
    if not isinstance(keys, ChainKeys):
        raise RuntimeError("evidence keys are not bound to this database (plugin.evidence.bind)")
    return keys


# --- entry material -------------------------------------------------------------------------------


def split(
    keys: ChainKeys, shop_domain: str, payload: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(public part, identifier part) of a payload as a stage wrote it."""
    public = {k: v for k, v in payload.items() if k not in IDENTIFIER_FIELDS}
    named = {k: v for k, v in payload.items() if k in IDENTIFIER_FIELDS and v not in (None, "", [], {})}
    if not named:
        return public, None
    public[DIGESTS] = _digests(keys, shop_domain, named)
    public[IDS_MAC] = _ids_mac(keys.current, shop_domain, named)
    return public, named


def _digests(keys: ChainKeys, shop_domain: str, identifiers: dict[str, Any]) -> dict[str, str | None]:
    # The field name is hashed with the value: a customer id and an order id of 7 differ.
    return {k: keys.vault.lookup_hash(shop_domain, f"{k}:{_canonical(v)}") for k, v in identifiers.items()}


def _ids_mac(key: bytes, shop_domain: str, identifiers: dict[str, Any]) -> str:
    return _mac(key, {"shop": shop_domain, "identifiers": identifiers})


def entry_mac(
    key: bytes,
    shop_domain: str,
    prev_hash: str,
    seq: int,
    at: datetime,
    kind: str,
    request_id: int | None,
    payload: dict[str, Any],
) -> str:
    material = {
        "v": KEYED,
        "shop": shop_domain,
        "prev": prev_hash,
        "seq": seq,
        "at": at.isoformat(),
        "kind": kind,
        "request_id": request_id,
        "payload": payload,
    }
    return _mac(key, material)


def _head_mac(key: bytes, shop_domain: str, seq: int, entry_hash: str) -> str:
    return _mac(key, {"head": shop_domain, "seq": seq, "hash": entry_hash})


def legacy_hash(
    prev_hash: str, seq: int, at: datetime, kind: str, request_id: int | None, payload: dict[str, Any]
) -> str:
    """A version-1 entry's unkeyed hash (its subject counted by digest, as version 1 reduced it)."""
    view = {k: v for k, v in payload.items() if k != SUBJECT}
    if SUBJECT in payload:
        view[_LEGACY_SUBJECT_DIGEST] = hashlib.sha256(_canonical(payload[SUBJECT]).encode()).hexdigest()
    material = {
        "prev": prev_hash,
        "seq": seq,
        "at": at.isoformat(),
        "kind": kind,
        "request_id": request_id,
        "payload": view,
    }
    return hashlib.sha256(_canonical(material).encode()).hexdigest()


def subject_ref(
    email_hash: str | None, phone_hash: str | None = None, customer_id: int | None = None
) -> dict[str, Any]:
    """How evidence names a subject: keyed hashes and the shop's own customer id, never addresses."""
    return {"email_hash": email_hash, "phone_hash": phone_hash, "customer_id": customer_id}


def readable(row: Evidence) -> dict[str, Any]:
    """An entry as the shop owner reads it: the public part with the identifiers while they exist."""
    shown = {k: v for k, v in row.payload.items() if k not in (DIGESTS, IDS_MAC, REKEYED_FROM)}
    return shown | (row.identifiers or {})


# --- appending ------------------------------------------------------------------------------------


async def lock_chain(session: AsyncSession, shop_domain: str) -> None:
    """Take the shop's evidence lock for the rest of the transaction (every append takes it). A
    transaction that locks rows and then appends while another such transaction of the same shop
    may run takes it first, so that the two take their locks in one order and cannot deadlock."""
    await serialise(session, f"evidence:{shop_domain}")


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
    keys = keys_of(session)
    await lock_chain(session, shop_domain)
    last = await head(session, shop_domain)
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    # Microseconds are dropped so the stored time (SQLite keeps them, some drivers may not) and the
    # MAC'd time are the same value.
    moment = (at or utcnow()).astimezone(UTC).replace(microsecond=0)
    public, identifiers = split(keys, shop_domain, payload)
    row = Evidence(
        shop_domain=shop_domain,
        seq=seq,
        request_id=request_id,
        at=moment,
        kind=kind,
        payload=public,
        identifiers=identifiers,
        version=KEYED,
        key_id=keys.current_id,
        prev_hash=prev,
        hash=entry_mac(keys.current, shop_domain, prev, seq, moment, kind, request_id, public),
    )
    session.add(row)
    await _set_head(session, keys, shop_domain, seq, row.hash)
    await session.flush()
    return row


async def _set_head(
    session: AsyncSession, keys: ChainKeys, shop_domain: str, seq: int, entry_hash: str
) -> None:
    head_row = await session.get(EvidenceHead, shop_domain)
    if head_row is None:
        head_row = EvidenceHead(shop_domain=shop_domain)
        session.add(head_row)
    head_row.seq, head_row.hash, head_row.key_id = seq, entry_hash, keys.current_id
    head_row.mac = _head_mac(keys.current, shop_domain, seq, entry_hash)
    head_row.updated_at = utcnow()


async def head(session: AsyncSession, shop_domain: str) -> tuple[int, str] | None:
    """The shop's latest (sequence number, hash), or None for an empty log: what a certificate
    carries as its anchor."""
    last = (
        await session.execute(
            select(Evidence.seq, Evidence.hash)
            .where(Evidence.shop_domain == shop_domain)
            .order_by(Evidence.seq.desc())
            .limit(1)
        )
    ).first()
    return (int(last[0]), str(last[1])) if last else None


async def entries(session: AsyncSession, shop_domain: str, request_id: int | None = None) -> list[Evidence]:
    statement = select(Evidence).where(Evidence.shop_domain == shop_domain)
    if request_id is not None:
        statement = statement.where(Evidence.request_id == request_id)
    return list((await session.execute(statement.order_by(Evidence.seq))).scalars())


# --- verifying ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    first_broken_seq: int | None = None
    reason: str = ""
    anchors: int = 0  # certificate anchors checked

    def describe(self, shop_domain: str) -> str:
        if not self.ok:
            return f"{shop_domain}: evidence chain BROKEN at entry {self.first_broken_seq}: {self.reason}"
        anchors = f", {self.anchors} certificate anchors match" if self.anchors else ""
        return f"{shop_domain}: evidence chain intact ({self.entries} entries{anchors})"


@dataclass(frozen=True)
class Anchor:
    """A chain head as a certificate (or anyone who read the log) saw it."""

    seq: int
    hash: str


class EntryLike(Protocol):
    shop_domain: str
    seq: int
    at: datetime
    kind: str
    request_id: int | None
    payload: dict[str, Any]
    identifiers: dict[str, Any] | None
    version: int
    key_id: str | None
    prev_hash: str
    hash: str


def _check_entry(keys: ChainKeys, row: EntryLike, prev: str) -> str | None:
    """Why the entry does not hold (given the previous entry's hash), or None. An unkeyed entry
    holds here if its unkeyed hash does; whether one may exist at all is `_walk`'s question."""
    if row.prev_hash != prev:
        return "does not link to the previous entry"
    if row.version == LEGACY:
        if legacy_hash(row.prev_hash, row.seq, row.at, row.kind, row.request_id, row.payload) != row.hash:
            return "content does not match its hash (altered)"
        return None
    key = keys.by_id.get(row.key_id or "")
    if key is None:
        return "made under a key that is not configured (re-chain before removing a previous key)"
    expected = entry_mac(
        key, row.shop_domain, row.prev_hash, row.seq, row.at, row.kind, row.request_id, row.payload
    )
    if not hmac.compare_digest(expected, row.hash):
        return "content does not match its MAC (altered, or re-hashed without the key)"
    if row.identifiers is not None:
        stated = str(row.payload.get(IDS_MAC, ""))
        if not hmac.compare_digest(_ids_mac(key, row.shop_domain, row.identifiers), stated):
            return "identifiers do not match the entry (altered)"
    return None


def _walk(keys: ChainKeys, rows: Sequence[EntryLike], *, legacy_ok: bool = False) -> VerifyResult:
    prev = GENESIS
    unkeyed: VerifyResult | None = None
    for count, row in enumerate(rows, 1):
        if row.seq != count:
            return VerifyResult(False, count, row.seq, f"expected entry {count} (an entry is missing)")
        problem = _check_entry(keys, row, prev)
        if problem:
            return VerifyResult(False, count, row.seq, problem)
        if row.version == LEGACY and not legacy_ok and unkeyed is None:
            # Reported unless a break further on says more (a chain the migration left unkeyed
            # because it was already broken).
            unkeyed = VerifyResult(
                False, count, row.seq, "unkeyed entry (re-hashed by someone without the key)"
            )
        prev = row.hash
    return unkeyed or VerifyResult(True, len(rows))


async def verify(session: AsyncSession, shop_domain: str, anchors: Iterable[Anchor] = ()) -> VerifyResult:
    """Walk the shop's chain in order; report the first entry whose links, MAC or identifiers do not
    hold, then check the head record and the given anchors against it."""
    keys = keys_of(session)
    rows = await entries(session, shop_domain)
    walked = _walk(keys, rows)
    if not walked.ok:
        return walked
    count = len(rows)
    last = rows[-1] if rows else None
    head_row = await session.get(EvidenceHead, shop_domain)
    if head_row is not None or last is not None:
        problem = _check_head(keys, shop_domain, head_row, last)
        if problem:
            return VerifyResult(False, count, (last.seq if last else 0) + 1, problem)
    by_seq = {row.seq: row for row in rows}
    checked = 0
    for anchor in anchors:
        row = by_seq.get(anchor.seq)
        if row is None:
            reason = f"entry {anchor.seq}, named by a certificate, is missing (log truncated)"
            return VerifyResult(False, count, anchor.seq, reason)
        if row.hash != anchor.hash and anchor.hash not in row.payload.get(REKEYED_FROM, []):
            return VerifyResult(False, count, anchor.seq, "differs from the entry a certificate names")
        checked += 1
    return VerifyResult(True, count, anchors=checked)


def _check_head(
    keys: ChainKeys, shop_domain: str, head_row: EvidenceHead | None, last: Evidence | None
) -> str | None:
    if head_row is None:
        return "the head record is missing (removed with entries?)"
    key = keys.by_id.get(head_row.key_id)
    expected = _head_mac(key, shop_domain, head_row.seq, head_row.hash) if key else ""
    if not hmac.compare_digest(expected, head_row.mac):
        return "the head record does not match its MAC (altered)"
    if last is None or head_row.seq > last.seq:
        return f"the log ends before its recorded head, entry {head_row.seq} (entries removed)"
    if head_row.seq != last.seq or head_row.hash != last.hash:
        return "the newest entry is not the recorded head (entries replaced)"
    return None


# --- re-chaining and reduction --------------------------------------------------------------------


@dataclass(frozen=True)
class Rewritten:
    """An entry's new chained form (same shop, sequence number, time, kind and request)."""

    seq: int
    payload: dict[str, Any]
    identifiers: dict[str, Any] | None
    key_id: str
    prev_hash: str
    hash: str


def rechained(
    keys: ChainKeys, shop_domain: str, rows: Sequence[EntryLike], *, legacy_ok: bool = False
) -> list[Rewritten] | None:
    """The shop's entries (in order) re-written under the current key; None if they do not verify
    as they stand (re-writing would hide the break). Unkeyed entries are accepted only when
    `legacy_ok` (migration 0005)."""
    if not _walk(keys, rows, legacy_ok=legacy_ok).ok:
        return None
    out: list[Rewritten] = []
    prev = GENESIS
    for row in rows:
        if row.version == LEGACY:
            legacy = {k: v for k, v in row.payload.items() if k != _LEGACY_SUBJECT_DIGEST}
            public, identifiers = split(keys, shop_domain, legacy)
        else:
            public = {k: v for k, v in row.payload.items() if k != REKEYED_FROM}
            identifiers = row.identifiers
            if identifiers is not None:
                public[DIGESTS] = _digests(keys, shop_domain, identifiers)
                public[IDS_MAC] = _ids_mac(keys.current, shop_domain, identifiers)
        # Certificates issued before name the old hashes; the entry keeps them, under the new MAC.
        public[REKEYED_FROM] = [*row.payload.get(REKEYED_FROM, []), row.hash]
        digest = entry_mac(keys.current, shop_domain, prev, row.seq, row.at, row.kind, row.request_id, public)
        out.append(Rewritten(row.seq, public, identifiers, keys.current_id, prev, digest))
        prev = digest
    return out


def head_record(keys: ChainKeys, shop_domain: str, seq: int, entry_hash: str) -> dict[str, Any]:
    """The `evidence_heads` row's values for a chain ending at (seq, hash)."""
    return {
        "shop_domain": shop_domain,
        "seq": seq,
        "hash": entry_hash,
        "key_id": keys.current_id,
        "mac": _head_mac(keys.current, shop_domain, seq, entry_hash),
        "updated_at": utcnow(),
    }


async def rechain(session: AsyncSession, shop_domain: str) -> bool:
    """Re-write the shop's chain under the current key (after a key rotation, before the previous
    key is removed) once it verifies, head record included. False, changing nothing, if it does
    not."""
    keys = keys_of(session)
    await serialise(session, f"evidence:{shop_domain}")
    if not (await verify(session, shop_domain)).ok:
        return False
    rows = await entries(session, shop_domain)
    new = rechained(keys, shop_domain, rows)
    if new is None:
        return False
    for row, rewritten in zip(rows, new, strict=True):
        row.payload, row.identifiers = rewritten.payload, rewritten.identifiers
        row.version, row.key_id = KEYED, rewritten.key_id
        row.prev_hash, row.hash = rewritten.prev_hash, rewritten.hash
    if rows:
        await _set_head(session, keys, shop_domain, rows[-1].seq, rows[-1].hash)
    await session.flush()
    return True


async def reduce_subjects(session: AsyncSession, shop_domain: str, request_id: int | None = None) -> int:
    """Drop the identifier part of every entry of the shop (or of one request); the chain still
    verifies. Returns the number of entries reduced."""
    reduced = 0
    for row in await entries(session, shop_domain, request_id):
        if row.version == LEGACY:
            # Left unkeyed by the migration because its chain was already broken: the
            # identifiers go all the same.
            kept = {k: v for k, v in row.payload.items() if k not in IDENTIFIER_FIELDS}
            if kept != row.payload:
                row.payload = kept
                reduced += 1
        elif row.identifiers is not None:
            row.identifiers = None
            reduced += 1
    await session.flush()
    return reduced


def anchors_of(records: Sequence[dict[str, Any]]) -> list[Anchor]:
    """The anchors in certificates' `evidence` sections (`{"entries": seq, "head_hash": hash}`)."""
    found = []
    for record in records:
        seq, value = record.get("entries"), record.get("head_hash")
        if isinstance(seq, int) and seq > 0 and isinstance(value, str):
            found.append(Anchor(seq, value))
    return found
