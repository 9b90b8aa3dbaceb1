"""Notifications to the shop owner: one owner for what Gallra tells the shop, and that it tells it once.

`notify(runtime, shop, kind, event_key, context)` claims the event (`Notification`, unique per shop
and `event_key`, so two instances or a trigger running twice tell the owner once), renders the
e-mail in the shop's language (`plugin.i18n.shop_language`) from
`plugin/documents/templates/notifications/<kind>.<lang>.txt` (first line the subject) and queues it
in the outbox, whose delivery brings retries and keeps addresses out of logs. Without a mail server
(SMTP_HOST unset) or a contact address the notification is still recorded, with the reason, so the
admin lists it as not e-mailed.

The triggers: the data-request pipeline (`extract_ready`), the deadline clock (`deadline_near`,
`overdue`), and the clock jobs here: `watch_unconfirmed` (an e-mail-channel message still
unconfirmed after its reminder) and `watch_connections` (a connection failing `FAILING_AFTER`
times in a row); the sweep (`dry_run_findings`, a shop in dry-run mode whose sweep found work).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from plugin.i18n import count, shop_language, translate
from plugin.ledger import dialect_of, insert_ignoring_conflicts, load_shop
from plugin.models import AdapterConnection, Notification, OutboxMessage, Step, cell_of, utcnow
from plugin.outbox import Outbox
from plugin.runtime import Runtime
from plugin.states import NotificationStatus, OutboxStatus

log = logging.getLogger("gallra.notifications")

KINDS = ("extract_ready", "deadline_near", "overdue", "unconfirmed", "connection_failing", "dry_run_findings")
# A connection "keeps failing" after this many failed checks or finally failed steps in a row.
FAILING_AFTER = 3

NO_MAIL_SERVER = "no_mail_server"
NO_CONTACT = "no_contact_address"
REASONS = {
    NO_MAIL_SERVER: "not e-mailed: no mail server configured",
    NO_CONTACT: "not e-mailed: no contact address",
}

# The counted units the templates name (`unit.<name>` in the `plugin.i18n` catalogue).
UNITS = ("days", "times", "records")


@lru_cache(maxsize=1)
def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("plugin.documents", "templates/notifications"),
        autoescape=select_autoescape(["html"]),  # plain-text e-mail: .txt is not escaped
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    for unit in UNITS:
        env.filters[unit] = lambda n, lang, unit=unit: count(int(n), unit, lang)
    env.filters["kind_name"] = lambda kind, lang: translate(lang, f"kind_name.{kind}", default=kind)
    return env


def render(kind: str, lang: str, context: dict[str, Any]) -> tuple[str, str]:
    """(subject, body) of a notification."""
    text = _templates().get_template(f"{kind}.{lang}.txt").render(lang=lang, **context)
    subject, _, body = text.partition("\n")
    return subject.strip(), body.lstrip("\n")


async def _already(runtime: Runtime, shop_domain: str, event_key: str) -> bool:
    async with runtime.db.session() as session:
        found = await session.scalar(
            select(Notification.id).where(
                Notification.shop_domain == shop_domain, Notification.event_key == event_key
            )
        )
    return found is not None


async def notify(
    runtime: Runtime,
    shop_domain: str,
    kind: str,
    event_key: str,
    context: dict[str, Any],
    *,
    private: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> bool:
    """Tell the shop owner about one event, once: True when this call recorded it. `context` (ids,
    counts, dates; no personal data) is stored and fills the template; `private` only fills it
    (a signed download link is not kept)."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    if await _already(runtime, shop_domain, event_key):
        return False
    async with runtime.db.session() as session:
        shop = await load_shop(session, shop_domain)
    lang = shop_language(shop)
    to = (
        runtime.vault.decrypt(shop.contact_email_enc, cell_of(shop, "contact_email_enc"))
        if shop is not None and shop.contact_email_enc
        else None
    )
    reason = NO_MAIL_SERVER if not runtime.settings.smtp_host else None if to else NO_CONTACT
    reference = None
    if reason is None:
        assert to is not None
        subject, body = render(kind, lang, context | (private or {}))
        # The outbox's dedupe key makes two instances racing past `_already` queue one message.
        reference = await Outbox(runtime, shop_domain).send(
            to=to, subject=subject, body=body, dedupe_key=f"notification:{event_key}"
        )
    async with runtime.db.transaction() as session:
        result = await session.execute(
            insert_ignoring_conflicts(dialect_of(session), Notification).values(
                shop_domain=shop_domain,
                kind=kind,
                event_key=event_key,
                language=lang,
                details=context,
                status=NotificationStatus.NOT_EMAILED if reason else NotificationStatus.QUEUED,
                reason=reason,
                outbox_reference=reference,
                created_at=now or utcnow(),
            )
        )
        recorded = bool(result.rowcount)  # type: ignore[attr-defined]
    if recorded:
        log.info("notified %s of %s (%s)", shop_domain, kind, reason or reference)
    return recorded


# --- triggers that scan -----------------------------------------------------------------------------


async def watch_unconfirmed(runtime: Runtime, now: datetime | None = None) -> int:
    """E-mail-channel messages reminded and still unconfirmed: the owner should chase the processor."""
    now = now or utcnow()
    notified = Notification.outbox_reference.is_not(None)
    async with runtime.db.session() as session:
        rows = (
            await session.execute(
                select(OutboxMessage, Step.system)
                .outerjoin(
                    Step, (Step.id == OutboxMessage.step_id) & (Step.shop_domain == OutboxMessage.shop_domain)
                )
                .where(
                    OutboxMessage.status == OutboxStatus.SENT,
                    OutboxMessage.reminders >= 1,
                    OutboxMessage.reference.not_in(select(Notification.outbox_reference).where(notified)),
                )
            )
        ).all()
    count_ = 0
    for message, system in rows:
        context = {
            "reference": message.reference,
            "system": system or "the processor",
            "step_id": message.step_id,
            "reminders": message.reminders,
            "sent": message.sent_at.date().isoformat() if message.sent_at else "",
        }
        key = f"unconfirmed:{message.reference}"
        if await notify(runtime, message.shop_domain, "unconfirmed", key, context, now=now):
            count_ += 1
    return count_


async def watch_connections(runtime: Runtime, now: datetime | None = None) -> int:
    """Connections failing `FAILING_AFTER` times in a row: once per run of failures."""
    now = now or utcnow()
    async with runtime.db.session() as session:
        rows = list(
            await session.scalars(
                select(AdapterConnection).where(
                    AdapterConnection.enabled.is_(True),
                    AdapterConnection.failures >= FAILING_AFTER,
                    AdapterConnection.failing_since.is_not(None),
                )
            )
        )
    told = 0
    for row in rows:
        assert row.failing_since is not None
        since = row.failing_since
        context = {
            "adapter": row.adapter,
            "failures": row.failures,
            "since": since.date().isoformat(),
            "error": row.last_error or "unknown",
        }
        key = f"connection_failing:{row.adapter}:{since.isoformat()}"
        if await notify(runtime, row.shop_domain, "connection_failing", key, context, now=now):
            told += 1
    return told


def sweep_findings(report: dict[str, Any]) -> tuple[int, int]:
    """(erase, reduce) counts of a sweep report's tally."""
    categories = (report.get("tally") or {}).get("categories") or {}
    erase = sum(int(c.get("erase", 0)) for c in categories.values())
    reduce = sum(int(c.get("reduce", 0)) for c in categories.values())
    return erase, reduce


async def notify_dry_run_findings(runtime: Runtime, shop_domain: str, report: dict[str, Any]) -> bool:
    """A sweep on a shop in dry-run mode found records to erase or reduce: the owner decides. Told
    once per week."""
    erase, reduce = sweep_findings(report)
    if not erase and not reduce:
        return False
    context = {"day": report["day"], "erase": erase, "reduce": reduce, "records": erase + reduce}
    # Once a week at most: a shop left in dry-run mode finds work every day, and a daily e-mail
    # saying so would teach the owner to ignore Gallra's e-mails.
    year, week, _ = date.fromisoformat(report["day"]).isocalendar()
    return await notify(
        runtime, shop_domain, "dry_run_findings", f"dry_run_findings:{year}-W{week:02d}", context
    )


# --- listing ----------------------------------------------------------------------------------------


def title_values(details: dict[str, Any], lang: str) -> dict[str, Any]:
    """A notification's details with its counts in words, for the admin's one-line titles."""
    values = dict(details)
    if "days_left" in values:
        values["days"] = count(int(values["days_left"]), "days", lang)
    if "records" in values:
        values["records_text"] = count(int(values["records"]), "records", lang)
    return values


@dataclass(frozen=True)
class NotificationSummary:
    id: int
    kind: str
    event_key: str
    language: str
    created_at: datetime
    details: dict[str, Any]
    # e-mailed | queued | failed | not_emailed
    state: str
    emailed_at: datetime | None
    # Why it was not e-mailed (`NO_MAIL_SERVER`, `NO_CONTACT`), in words in `note`.
    reason_code: str | None
    note: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "event_key": self.event_key,
            "language": self.language,
            "created_at": self.created_at.isoformat(),
            "details": self.details,
            "state": self.state,
            "emailed_at": self.emailed_at.isoformat() if self.emailed_at else None,
            "reason": self.reason_code,
            "note": self.note,
        }


async def list_notifications(
    session: AsyncSession, shop_domain: str, limit: int = 100
) -> list[NotificationSummary]:
    rows = (
        await session.execute(
            select(Notification, OutboxMessage.status, OutboxMessage.sent_at)
            .outerjoin(
                OutboxMessage,
                (OutboxMessage.reference == Notification.outbox_reference)
                & (OutboxMessage.shop_domain == Notification.shop_domain),
            )
            .where(Notification.shop_domain == shop_domain)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit)
        )
    ).all()
    found = []
    for row, status, sent_at in rows:
        if row.reason:
            state, note = "not_emailed", REASONS.get(row.reason, row.reason)
        elif status in (OutboxStatus.SENT, OutboxStatus.CONFIRMED):
            state, note = "emailed", None
        elif status == OutboxStatus.FAILED:
            state, note = "failed", "the mail server refused it"
        else:
            state, note = "queued", None
        found.append(
            NotificationSummary(
                id=row.id,
                kind=row.kind,
                event_key=row.event_key,
                language=row.language,
                created_at=row.created_at,
                details=dict(row.details or {}),
                state=state,
                emailed_at=sent_at if state == "emailed" else None,
                reason_code=row.reason,
                note=note,
            )
        )
    return found
