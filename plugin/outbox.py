"""The e-mail channel: erasure requests to processors that have no erasure API.

An adapter calls `Outbox.send()`, which only queues the message (encrypted, with a reference number
such as `GAL-7F3A9C21D0`); `deliver_queued()` sends queued messages over SMTP with retries, and
`send_reminders()` reminds processors that have not confirmed after some days. The shop owner marks
a request confirmed with `mark_confirmed()` when the processor answers.

Queueing is idempotent: one message per step (a retried step gets its first reference back), and
steps asking one processor the same thing (several shipments of one customer, a retention sweep's
group of shipments) share one message through a keyed hash of the adapter's `dedupe_key`; the
look-up and the insert are serialised per hash, so steps running at once still share it. Delivery
is claimed row by row with a lease, so several instances delivering at once send each message once
(at least once if a process dies between the SMTP hand-off and the commit). Confirming one step
(`plugin.executor.actions.confirm_step`) confirms every step awaiting the same message.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.message import EmailMessage
from email.policy import Policy
from email.utils import make_msgid

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.http import backoff_delay
from plugin.crypto import Cell, Vault
from plugin.locks import serialise
from plugin.models import Notification, OutboxMessage, Step, cell_of, outbox_cell, utcnow
from plugin.runtime import Runtime
from plugin.settings import Settings
from plugin.states import OutboxStatus

log = logging.getLogger("gallra.outbox")

REFERENCE_PREFIX = "GAL-"
MAX_DELIVERY_ATTEMPTS = 6
DELIVERY_LEASE = timedelta(minutes=5)
SMTP_TIMEOUT = 30.0
REMIND_AFTER = timedelta(days=14)  # half of Art. 12(3)'s one month, so a reminder can still help
MAX_REMINDERS = 2

# Sends one message; raises smtplib.SMTPException or OSError. Runs in a worker thread.
Sender = Callable[[EmailMessage], None]


def new_reference() -> str:
    return REFERENCE_PREFIX + secrets.token_hex(5).upper()


class Outbox:
    """`adapters.base.EmailChannel` for one shop, bound to the step being run (if any)."""

    def __init__(
        self, runtime: Runtime, shop_domain: str, *, step_id: int | None = None, reply_to: str | None = None
    ) -> None:
        self.runtime = runtime
        self.shop_domain = shop_domain
        self.step_id = step_id
        self.reply_to = reply_to

    async def send(
        self,
        *,
        to: str,
        subject: str,
        body: str,
        reply_to: str | None = None,
        dedupe_key: str | None = None,
    ) -> str:
        vault = self.runtime.vault
        # Stored under the current key; matched under every form it may be stored under (during a
        # key rotation a message queued under the previous key is still the one to share).
        dedupe_hashes = vault.lookup_hashes(self.shop_domain, dedupe_key) if dedupe_key else ()
        dedupe_hash = dedupe_hashes[0] if dedupe_hashes else None
        for _ in range(2):  # a concurrent insert of the same message loses the race once, then finds it
            try:
                async with self.runtime.db.transaction() as session:
                    # Steps sharing a message run at once (a sweep group's hundreds): without
                    # this, each could find no message yet and queue its own. Held under every
                    # form of the hash, always in the same order, so that instances still on the
                    # previous key (a rolling restart during a rotation) are excluded too.
                    for candidate in dedupe_hashes:
                        await serialise(session, f"outbox:{self.shop_domain}:{candidate}")
                    existing = await self._existing(session, dedupe_hashes)
                    if existing is not None:
                        return existing
                    reference = new_reference()

                    def cell(column: str, reference: str = reference) -> Cell:
                        return outbox_cell(column, self.shop_domain, reference)

                    session.add(
                        OutboxMessage(
                            shop_domain=self.shop_domain,
                            step_id=self.step_id,
                            reference=reference,
                            dedupe_hash=dedupe_hash,
                            to_enc=vault.encrypt(to, cell("to_enc")),
                            reply_to_enc=vault.encrypt(reply_to or self.reply_to, cell("reply_to_enc")),
                            subject_enc=vault.encrypt(
                                subject.replace("{reference}", reference), cell("subject_enc")
                            ),
                            body_enc=vault.encrypt(body.replace("{reference}", reference), cell("body_enc")),
                            status=OutboxStatus.QUEUED,
                            next_attempt_at=utcnow(),
                        )
                    )
            except IntegrityError:
                continue
            log.info("queued e-mail %s for %s (step %s)", reference, self.shop_domain, self.step_id)
            return reference
        raise RuntimeError("could not queue the e-mail")  # pragma: no cover

    async def _existing(self, session: AsyncSession, dedupe_hashes: tuple[str, ...]) -> str | None:
        conditions = []
        if self.step_id is not None:
            conditions.append(OutboxMessage.step_id == self.step_id)
        if dedupe_hashes:
            # Failed messages are not reused (a retry should queue a fresh one), nor confirmed ones
            # (a later request about the same shipments is a new request).
            conditions.append(
                OutboxMessage.dedupe_hash.in_(dedupe_hashes)
                & OutboxMessage.status.not_in((OutboxStatus.FAILED, OutboxStatus.CONFIRMED))
            )
        if not conditions:
            return None
        found = await session.scalar(
            select(OutboxMessage.reference)
            .where(OutboxMessage.shop_domain == self.shop_domain, or_(*conditions))
            .order_by(OutboxMessage.id)
            .limit(1)
        )
        return found


# --- delivery -------------------------------------------------------------------------------------


def smtp_sender(settings: Settings) -> Sender:
    """Send with the stdlib client (blocking; the caller runs it in a thread)."""

    def send(message: EmailMessage) -> None:
        assert settings.smtp_host
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username and settings.smtp_password:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            smtp.send_message(message)

    return send


class _EncodedSubject(str):
    """A non-ASCII subject folded by `email.header.Header`: the `email` package's own folding
    (Python 3.11) drops the space between two encoded words of a long subject ("gång på gång"
    arrives as "gång pågång"). `EmailMessage` stores a value with a `name` as is and calls its `fold`."""

    name = "Subject"

    def fold(self, *, policy: Policy) -> str:
        encoded = Header(str(self), "utf-8", header_name=self.name).encode(linesep=policy.linesep)
        return f"{self.name}: {encoded}{policy.linesep}"


@dataclass(frozen=True)
class _Plain:
    reference: str
    to: str
    reply_to: str | None
    subject: str
    body: str


def _compose(settings: Settings, plain: _Plain, *, reminder: int = 0) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = plain.to
    if plain.reply_to:
        message["Reply-To"] = plain.reply_to
    subject = plain.subject
    body = plain.body
    if reminder:
        subject = f"Reminder / Påminnelse ({reminder}): {subject}"
        body = (
            f"Reminder: we have not yet received a confirmation of the request below "
            f"(reference {plain.reference}).\n"
            f"Påminnelse: vi har ännu inte fått någon bekräftelse på begäran nedan "
            f"(referens {plain.reference}).\n\n" + body
        )
    message["Subject"] = subject if subject.isascii() else _EncodedSubject(subject)
    message["Message-ID"] = make_msgid(idstring=plain.reference)
    message["X-Gallra-Reference"] = plain.reference
    message.set_content(body)
    return message


def _decrypt(vault: Vault, row: OutboxMessage) -> _Plain:
    return _Plain(
        reference=row.reference,
        to=vault.decrypt(row.to_enc, cell_of(row, "to_enc")) or "",
        reply_to=vault.decrypt(row.reply_to_enc, cell_of(row, "reply_to_enc")),
        subject=vault.decrypt(row.subject_enc, cell_of(row, "subject_enc")) or "",
        body=vault.decrypt(row.body_enc, cell_of(row, "body_enc")) or "",
    )


def _error_text(exc: BaseException) -> str:
    """Class and SMTP code only: server messages often quote the recipient's address."""
    code = getattr(exc, "smtp_code", None)
    return f"{type(exc).__name__}" + (f" (SMTP {code})" if code else "")


def _to_processors() -> ColumnElement[bool]:
    """Messages to processors, not the shop owner's notifications (`plugin.notifications`), which
    ask nothing to be confirmed: never reminded, not listed with the e-mail channel's requests."""
    notices = select(Notification.outbox_reference).where(Notification.outbox_reference.is_not(None))
    return OutboxMessage.reference.not_in(notices)


def _is_permanent(exc: BaseException) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return True
    code = getattr(exc, "smtp_code", None)
    return (
        isinstance(code, int) and 500 <= code < 600 and not isinstance(exc, smtplib.SMTPAuthenticationError)
    )


def _retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=backoff_delay(attempts, base=30.0, cap=3600.0))


async def _hand_off(sender: Sender, message: EmailMessage) -> None:
    await asyncio.wait_for(asyncio.to_thread(sender, message), timeout=SMTP_TIMEOUT * 2)


async def deliver_queued(
    runtime: Runtime, *, limit: int = 50, now: datetime | None = None, sender: Sender | None = None
) -> int:
    """Send due queued messages; returns how many were sent. A clock job; safe on many instances.
    Does nothing (messages stay queued) while SMTP is not configured."""
    if sender is None:
        if not runtime.settings.smtp_host:
            return 0
        sender = smtp_sender(runtime.settings)
    now = now or utcnow()
    async with runtime.db.session() as session:
        ids = list(
            await session.scalars(
                select(OutboxMessage.id)
                .where(
                    or_(
                        (OutboxMessage.status == OutboxStatus.QUEUED)
                        & (OutboxMessage.next_attempt_at <= now),
                        (OutboxMessage.status == OutboxStatus.SENDING)
                        & (OutboxMessage.lease_expires_at < now),
                    )
                )
                .order_by(OutboxMessage.id)
                .limit(limit)
            )
        )
    sent = 0
    for message_id in ids:
        if await _deliver_one(runtime, message_id, now, sender):
            sent += 1
    return sent


async def _deliver_one(runtime: Runtime, message_id: int, now: datetime, sender: Sender) -> bool:
    async with runtime.db.transaction() as session:
        claimed = await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                or_(
                    (OutboxMessage.status == OutboxStatus.QUEUED) & (OutboxMessage.next_attempt_at <= now),
                    (OutboxMessage.status == OutboxStatus.SENDING) & (OutboxMessage.lease_expires_at < now),
                ),
            )
            .values(
                status=OutboxStatus.SENDING,
                lease_expires_at=now + DELIVERY_LEASE,
                attempts=OutboxMessage.attempts + 1,
            )
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return False  # another instance has it
        row = await session.get(OutboxMessage, message_id)
        assert row is not None
        plain = _decrypt(runtime.vault, row)
        attempts = row.attempts
        shop_domain = row.shop_domain
    try:
        await _hand_off(sender, _compose(runtime.settings, plain))
    except (smtplib.SMTPException, OSError, TimeoutError) as exc:
        failed = _is_permanent(exc) or attempts >= MAX_DELIVERY_ATTEMPTS
        async with runtime.db.transaction() as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id, OutboxMessage.shop_domain == shop_domain)
                .values(
                    status=OutboxStatus.FAILED if failed else OutboxStatus.QUEUED,
                    next_attempt_at=None if failed else now + _retry_delay(attempts),
                    lease_expires_at=None,
                    last_error=_error_text(exc),
                )
            )
        log.warning("e-mail %s not delivered (attempt %d): %s", plain.reference, attempts, _error_text(exc))
        return False
    async with runtime.db.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.shop_domain == shop_domain)
            .values(status=OutboxStatus.SENT, sent_at=now, lease_expires_at=None, last_error=None)
        )
    log.info("e-mail %s sent", plain.reference)
    return True


async def send_reminders(
    runtime: Runtime,
    *,
    remind_after: timedelta = REMIND_AFTER,
    max_reminders: int = MAX_REMINDERS,
    now: datetime | None = None,
    sender: Sender | None = None,
) -> int:
    """Re-send sent, unconfirmed requests once `remind_after` has passed since the last send or
    reminder, at most `max_reminders` times. A clock job (daily is plenty); safe on many instances."""
    if sender is None:
        if not runtime.settings.smtp_host:
            return 0
        sender = smtp_sender(runtime.settings)
    now = now or utcnow()
    cutoff = now - remind_after
    async with runtime.db.session() as session:
        rows = (
            await session.execute(
                select(OutboxMessage.id, OutboxMessage.reminders, OutboxMessage.reminded_at).where(
                    OutboxMessage.status == OutboxStatus.SENT,
                    OutboxMessage.reminders < max_reminders,
                    _to_processors(),
                    or_(
                        (OutboxMessage.reminded_at.is_(None)) & (OutboxMessage.sent_at <= cutoff),
                        OutboxMessage.reminded_at <= cutoff,
                    ),
                )
            )
        ).all()
    reminded = 0
    for message_id, count, previous in rows:
        async with runtime.db.transaction() as session:
            # Claim by bumping the counter we read; a second instance sees a different count.
            claimed = await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == message_id,
                    OutboxMessage.reminders == count,
                    OutboxMessage.status == OutboxStatus.SENT,
                )
                .values(reminders=count + 1, reminded_at=now)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                continue
            row = await session.get(OutboxMessage, message_id)
            assert row is not None
            plain = _decrypt(runtime.vault, row)
        try:
            await _hand_off(sender, _compose(runtime.settings, plain, reminder=count + 1))
        except (smtplib.SMTPException, OSError, TimeoutError) as exc:
            # Give the reminder back so the next run tries again.
            async with runtime.db.transaction() as session:
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == message_id, OutboxMessage.reminders == count + 1)
                    .values(reminders=count, reminded_at=previous)
                )
            log.warning("reminder for %s not delivered: %s", plain.reference, _error_text(exc))
            continue
        reminded += 1
    return reminded


# --- confirmation and listing ---------------------------------------------------------------------


async def find_message(
    session: AsyncSession, shop_domain: str, reference_or_step_id: str | int
) -> OutboxMessage | None:
    """By reference, or by step id: the step's own message, else the one it shared with a sibling
    step (several shipments, one e-mail), found through the reference the step recorded."""
    query = select(OutboxMessage).where(OutboxMessage.shop_domain == shop_domain)
    if isinstance(reference_or_step_id, int) or str(reference_or_step_id).isdigit():
        step_id = int(reference_or_step_id)
        found = await session.scalar(query.where(OutboxMessage.step_id == step_id).limit(1))
        if found is not None:
            return found
        reference = await session.scalar(
            select(Step.provider_ref).where(Step.id == step_id, Step.shop_domain == shop_domain)
        )
        if not reference:
            return None
        return await session.scalar(query.where(OutboxMessage.reference == reference))
    return await session.scalar(
        query.where(OutboxMessage.reference == str(reference_or_step_id).strip().upper())
    )


async def mark_confirmed(
    session: AsyncSession,
    shop_domain: str,
    reference_or_step_id: str | int,
    note: str | None = None,
    *,
    vault: Vault | None = None,
    now: datetime | None = None,
) -> OutboxMessage | None:
    """The processor confirmed the erasure. Returns the message (its `step_id` tells the caller
    which step is now done), or None when the shop has no such message. Idempotent. A `note` may
    name people, so it is stored encrypted and needs `vault`."""
    message = await find_message(session, shop_domain, reference_or_step_id)
    if message is None:
        return None
    if message.status != OutboxStatus.CONFIRMED:
        message.status = OutboxStatus.CONFIRMED
        message.confirmed_at = now or utcnow()
        message.lease_expires_at = None
    if note:
        if vault is None:
            raise ValueError("mark_confirmed needs vault= to store a note encrypted")
        message.note_enc = vault.encrypt(note, cell_of(message, "note_enc"))
    await session.flush()
    return message


@dataclass(frozen=True)
class MessageSummary:
    """What the shop owner may see in a list: no addresses, no body."""

    reference: str
    step_id: int | None
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    reminders: int
    confirmed_at: datetime | None
    last_error: str | None


async def list_messages(
    session: AsyncSession, shop_domain: str, *, status: str | None = None
) -> list[MessageSummary]:
    query = select(OutboxMessage).where(OutboxMessage.shop_domain == shop_domain, _to_processors())
    if status:
        query = query.where(OutboxMessage.status == status)
    rows = await session.scalars(query.order_by(OutboxMessage.id))
    return [
        MessageSummary(
            reference=row.reference,
            step_id=row.step_id,
            status=row.status,
            attempts=row.attempts,
            created_at=row.created_at,
            sent_at=row.sent_at,
            reminders=row.reminders,
            confirmed_at=row.confirmed_at,
            last_error=row.last_error,
        )
        for row in rows
    ]
