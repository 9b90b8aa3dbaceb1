"""Key rotation: rewriting every encrypted value and look-up hash under the current key, so that
GALLRA_ENCRYPTION_KEY_PREVIOUS can be removed (`gallra keys rotate`, `gallra keys status`).

A value needs rewriting when it is not a `v3:` token of the current key (a `v3:` token of the
previous key, a `v2:` token, a Fernet token): one prefix query per table finds them. Each batch is
one transaction, and each row is updated only if its encrypted and hashed columns still hold what
the batch read (compare-and-set), so a write by the running app between the read and the update
wins, and the row is simply found again by the next run if it still needs rewriting. Rows already
on the current key are never selected: a run that stops anywhere is completed by running again.

What a rotation cannot rewrite, and why:
- A request's business key (the ledger's unique key, which for a customer without an id holds a
  keyed hash of the e-mail or phone, or of the whole body) stays as it was hashed: it is the row's
  identity, bound into its encrypted values. Intake matches a redelivery under both keys while the
  previous one is configured; Shopify retries a delivery for 4 hours (`RETRY_WINDOW`), so the
  previous key may go once no such key younger than that is left on it.
- A hash whose value is gone (the request's e-mail or phone erased, kept only as a hash for the
  evidence) is re-keyed only when another request of the shop still holds the same value (the
  subject asked again): `rotate` then reads every request that holds one, once per run while such
  hashes are left. The others, once the previous key is removed, no longer match look-ups (a later
  register extract does not list that request).
- An outbox message's de-duplication hash: what it hashes is not stored. An open message queued
  under the previous key stops being shared with later steps once that key is removed (a later
  step asking the processor the same thing queues a second e-mail).
`status` counts each of them.

Evidence chains are MAC'd under a key derived from the same key (`plugin.evidence`): `rotate` ends by
re-chaining every shop whose chain has entries under another key (`evidence.rechain`, which first
verifies the chain), and `status` counts those chains among what is still to do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from plugin import evidence
from plugin.crypto import DecryptionError, Vault
from plugin.db import Database
from plugin.models import ENCRYPTED_COLUMNS, Base, Evidence, OutboxMessage, Request, cell_of, utcnow
from plugin.states import OutboxStatus

BATCH_SIZE = 500
# Shopify retries a failed delivery 8 times over 4 hours (shared/reference/shopify-platform.md).
RETRY_WINDOW = timedelta(hours=4)
# Hashes recomputed from the encrypted value they stand for: hash column -> (value column, kind).
_REHASHED = {"email_hash": ("email_enc", "email"), "phone_hash": ("phone_enc", "phone")}
_HASHED_KEY_KINDS = ("email:", "phone:", "body:")


def _column(model: type[Base], name: str) -> InstrumentedAttribute[Any]:
    attribute: InstrumentedAttribute[Any] = getattr(model, name)
    return attribute


def _stale_value(vault: Vault, model: type[Base], name: str) -> ColumnElement[bool]:
    column = _column(model, name)
    return and_(column.is_not(None), not_(column.startswith(vault.current_prefix(), autoescape=True)))


def _stale_hash(vault: Vault, name: str, *, rekeyable: bool) -> ColumnElement[bool]:
    column = _column(Request, name)
    value = _column(Request, _REHASHED[name][0])
    stale = and_(column.is_not(None), not_(column.startswith(f"{vault.key_id}:", autoescape=True)))
    return and_(stale, value.is_not(None) if rekeyable else value.is_(None))


def _needs_rewrite(vault: Vault, model: type[Base]) -> ColumnElement[bool]:
    conditions = [_stale_value(vault, model, name) for name in ENCRYPTED_COLUMNS[model]]
    if model is Request:
        conditions += [_stale_hash(vault, name, rekeyable=True) for name in _REHASHED]
    return or_(*conditions)


@dataclass
class Change:
    """One row's rewrite: what the batch read (the compare-and-set) and what it writes."""

    row_id: int
    read: dict[str, str | None]
    write: dict[str, str | None]


@dataclass
class Rotated:
    rewritten: int = 0
    # Rows the app changed between the batch's read and its update: left for the next run.
    changed_meanwhile: int = 0
    # Values neither configured key can read (or bound to another cell): left as they are.
    unreadable: int = 0
    batches: int = 0
    finished: bool = True
    # Shops whose evidence chain was re-written under the current key / did not verify (left as is).
    chains_rechained: int = 0
    chains_unverified: int = 0


def plan(vault: Vault, model: type[Base], rows: Sequence[Base]) -> tuple[list[Change], int]:
    """The changes that put `rows` on the current key, and how many rows could not be read."""
    changes: list[Change] = []
    unreadable = 0
    for row in rows:
        read: dict[str, str | None] = {}
        write: dict[str, str | None] = {}
        plain: dict[str, str | None] = {}
        try:
            for name in ENCRYPTED_COLUMNS[model]:
                token = getattr(row, name)
                read[name] = token
                if model is Request or not vault.is_current(token):
                    cell = cell_of(row, name)
                    value = vault.decrypt_bytes(token, cell)
                    if model is Request:  # e-mail and phone, to be hashed again; bodies may be any bytes
                        plain[name] = None if value is None else value.decode()
                    if not vault.is_current(token):
                        write[name] = vault.encrypt(value, cell)
        except (DecryptionError, UnicodeDecodeError):
            unreadable += 1
            continue
        if isinstance(row, Request):
            for name, (source, kind) in _REHASHED.items():
                stored = getattr(row, name)
                read[name] = stored
                if stored is None or vault.hash_is_current(stored) or plain.get(source) is None:
                    continue
                rehash = vault.email_hash if kind == "email" else vault.phone_hash
                write[name] = rehash(row.shop_domain, plain[source])
        if write:
            changes.append(Change(int(getattr(row, "id")), read, write))  # noqa: B009
    return changes, unreadable


async def apply(session: AsyncSession, model: type[Base], changes: Sequence[Change]) -> tuple[int, int]:
    """Write `changes`, each only if its row still holds what was read; (written, missed)."""
    written = missed = 0
    row_id = _column(model, "id")
    # A rotation is not a change of the record: its `updated_at` (set on update) stays as it was.
    kept: dict[str, Any] = (
        {"updated_at": _column(model, "updated_at")} if hasattr(model, "updated_at") else {}
    )
    for change in changes:
        unchanged = [_column(model, name).is_not_distinct_from(value) for name, value in change.read.items()]
        result = await session.execute(
            update(model)
            .where(row_id == change.row_id, *unchanged)
            .values({**change.write, **kept})
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) == 1:
            written += 1
        else:
            missed += 1
    return written, missed


async def rotate(
    db: Database,
    vault: Vault,
    *,
    batch_size: int = BATCH_SIZE,
    max_batches: int | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> Rotated:
    """Rewrite every encrypted value and every re-computable look-up hash under the current key, in
    batches of `batch_size` rows, each its own transaction; stop after `max_batches` (then
    `finished` is False and running again goes on)."""
    result = Rotated()
    for model in ENCRYPTED_COLUMNS:
        after = 0  # rows are walked in id order, so one unreadable row is not read again and again
        while True:
            if max_batches is not None and result.batches >= max_batches:
                result.finished = False
                return result
            row_id = _column(model, "id")
            async with db.transaction() as session:
                rows = list(
                    (
                        await session.execute(
                            select(model)
                            .where(row_id > after, _needs_rewrite(vault, model))
                            .order_by(row_id)
                            .limit(batch_size)
                        )
                    ).scalars()
                )
                if not rows:
                    break
                after = int(getattr(rows[-1], "id"))  # noqa: B009
                changes, unreadable = plan(vault, model, rows)
                written, missed = await apply(session, model, changes)
            result.batches += 1
            result.rewritten += written
            result.changed_meanwhile += missed
            result.unreadable += unreadable
            if progress is not None:
                progress(model.__tablename__, written)
    await _link_erased(db, vault, batch_size, max_batches, result, progress)
    if result.finished:
        await _rechain_evidence(db, vault, result, progress)
    return result


def _chain_on_other_key(vault: Vault) -> ColumnElement[bool]:
    current = evidence.ChainKeys(vault).current_id
    return or_(Evidence.key_id.is_(None), Evidence.key_id != current)


async def _rechain_evidence(
    db: Database, vault: Vault, result: Rotated, progress: Callable[[str, int], None] | None
) -> None:
    """Re-write, shop by shop (one transaction each), every chain with entries under another key."""
    evidence.bind(db, vault)
    async with db.session() as session:
        shops = list(
            (
                await session.execute(
                    select(Evidence.shop_domain).where(_chain_on_other_key(vault)).distinct()
                )
            ).scalars()
        )
    for shop in shops:
        async with db.transaction() as session:
            rechained = await evidence.rechain(session, shop)
        if rechained:
            result.chains_rechained += 1
        else:
            result.chains_unverified += 1
    if progress is not None and shops:
        progress("evidence chains", result.chains_rechained)


async def _link_erased(
    db: Database,
    vault: Vault,
    batch_size: int,
    max_batches: int | None,
    result: Rotated,
    progress: Callable[[str, int], None] | None,
) -> None:
    """Re-key the hashes of erased e-mails and phones from the shop's other requests that still hold
    the same value: each value held is hashed in every form it may have been stored under, and an
    erased request's hash among them becomes the value's current hash."""
    async with db.session() as session:
        erased = {
            (shop, name, stored)
            for name in _REHASHED
            for shop, stored in await session.execute(
                select(Request.shop_domain, _column(Request, name)).where(
                    _stale_hash(vault, name, rekeyable=False)
                )
            )
        }
    after = 0
    while erased:
        if max_batches is not None and result.batches >= max_batches:
            result.finished = False
            return
        async with db.transaction() as session:
            rows = list(
                (
                    await session.execute(
                        select(Request)
                        .where(
                            Request.id > after,
                            or_(Request.email_enc.is_not(None), Request.phone_enc.is_not(None)),
                        )
                        .order_by(Request.id)
                        .limit(batch_size)
                    )
                ).scalars()
            )
            if not rows:
                return
            after = rows[-1].id
            linked = 0
            for row in rows:
                for name, (source, kind) in _REHASHED.items():
                    try:
                        value = vault.decrypt(getattr(row, source), cell_of(row, source))
                    except DecryptionError:
                        continue
                    hashes = vault.email_hashes if kind == "email" else vault.phone_hashes
                    current, *others = hashes(row.shop_domain, value) or (None,)
                    for other in others:
                        if (row.shop_domain, name, other) not in erased:
                            continue
                        erased.discard((row.shop_domain, name, other))
                        column = _column(Request, name)
                        done = await session.execute(
                            update(Request)
                            .where(
                                Request.shop_domain == row.shop_domain,
                                column == other,
                                _column(Request, source).is_(None),
                            )
                            .values({name: current})
                            .execution_options(synchronize_session=False)
                        )
                        linked += int(getattr(done, "rowcount", 0) or 0)
        result.batches += 1
        result.rewritten += linked
        if progress is not None and linked:
            progress("requests (hashes of erased values)", linked)


@dataclass
class Status:
    # "table.column" -> values not sealed by the current key with their cell (v2, Fernet, previous).
    values: dict[str, int] = field(default_factory=dict)
    # "requests.email_hash" ... -> hashes `rotate` can still recompute under the current key.
    hashes: dict[str, int] = field(default_factory=dict)
    # Hashes of erased values, kept under another key (cannot be recomputed).
    orphan_hashes: int = 0
    # Open outbox messages de-duplicated under another key (cannot be recomputed).
    open_outbox: int = 0
    # Newest request whose business key is hashed under another key.
    newest_old_business_key: datetime | None = None
    # Shops whose evidence chain has entries MAC'd under another key.
    evidence_chains: int = 0
    previous_configured: bool = False
    now: datetime = field(default_factory=utcnow)

    @property
    def pending(self) -> int:
        return sum(self.values.values()) + sum(self.hashes.values()) + self.evidence_chains

    @property
    def redelivery_window_open(self) -> bool:
        newest = self.newest_old_business_key
        return newest is not None and newest + RETRY_WINDOW > self.now

    @property
    def previous_removable(self) -> bool:
        """Whether GALLRA_ENCRYPTION_KEY_PREVIOUS can be removed without losing a value or a look-up
        that `rotate` can still fix."""
        return self.pending == 0 and not self.redelivery_window_open


async def status(db: Database, vault: Vault, *, now: datetime | None = None) -> Status:
    found = Status(previous_configured=vault.rotating, now=now or utcnow())
    async with db.session() as session:
        for model, names in ENCRYPTED_COLUMNS.items():
            for name in names:
                count = await session.scalar(
                    select(func.count()).select_from(model).where(_stale_value(vault, model, name))
                )
                if count:
                    found.values[f"{model.__tablename__}.{name}"] = int(count)
        for name in _REHASHED:
            count = await session.scalar(
                select(func.count()).select_from(Request).where(_stale_hash(vault, name, rekeyable=True))
            )
            if count:
                found.hashes[f"requests.{name}"] = int(count)
        found.orphan_hashes = int(
            await session.scalar(
                select(func.count())
                .select_from(Request)
                .where(or_(*(_stale_hash(vault, name, rekeyable=False) for name in _REHASHED)))
            )
            or 0
        )
        found.open_outbox = int(
            await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(
                    OutboxMessage.dedupe_hash.is_not(None),
                    not_(OutboxMessage.dedupe_hash.startswith(f"{vault.key_id}:", autoescape=True)),
                    OutboxMessage.status.not_in((OutboxStatus.FAILED, OutboxStatus.CONFIRMED)),
                )
            )
            or 0
        )
        found.newest_old_business_key = await session.scalar(
            select(func.max(Request.received_at)).where(_old_business_key(vault))
        )
        found.evidence_chains = int(
            await session.scalar(
                select(func.count(Evidence.shop_domain.distinct())).where(_chain_on_other_key(vault))
            )
            or 0
        )
    return found


def _old_business_key(vault: Vault) -> ColumnElement[bool]:
    key = Request.business_key
    hashed = [key.startswith(kind, autoescape=True) for kind in _HASHED_KEY_KINDS]
    current = [key.startswith(f"{kind}{vault.key_id}:", autoescape=True) for kind in _HASHED_KEY_KINDS]
    return and_(or_(*hashed), not_(or_(*current)))
