"""The tables. One place for the schema; migrations in `plugin/migrations` follow it.

Conventions: every tenant-owned row carries `shop_domain` (the `*.myshopify.com` domain) and every
query filters on it. Columns ending in `_enc` hold encrypted tokens (see `plugin.crypto`); columns
ending in `_hash` hold keyed per-shop hashes. Each encrypted value is bound to its `Cell` (table,
column, shop and, where the row has a key fixed when the value is written, the row): see
`cell_of` at the end and `plugin.keys` for the rotation that rewrites them. Times are stored and
returned as aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from plugin.crypto import Cell
from plugin.states import (
    STATE_COLUMNS,
    ConnectionStatus,
    ErasureState,
    MergeState,
    OutboxStatus,
    RequestStatus,
    ShopStatus,
    StepState,
    SweepStatus,
    one_of,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both SQLite (which drops the zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def state_check(table: str, column: str) -> CheckConstraint:
    """The column holds one of its enum's states (`plugin.states`); named `ck_<table>_<column>`."""
    return CheckConstraint(one_of(column, STATE_COLUMNS[(table, column)]), name=column)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Shop(Base):
    """A shop that installed Gallra. Tokens and contact data are encrypted."""

    __tablename__ = "shops"
    __table_args__ = (state_check("shops", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain: Mapped[str] = mapped_column(String(255), unique=True)
    shopify_shop_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), default=ShopStatus.ACTIVE)
    name: Mapped[str | None] = mapped_column(String(255))
    contact_email_enc: Mapped[str | None] = mapped_column(Text)
    # The controller Gallra names on documents and processor e-mails (plugin.controller). The legal
    # name and the address are encrypted: a sole trader's legal name is their own name and the
    # business address often their home. `name` is the storefront's public trading name.
    legal_name_enc: Mapped[str | None] = mapped_column(Text)
    address_enc: Mapped[str | None] = mapped_column(Text)
    # Comma-separated controller fields the shop owner set themselves; a refresh from Shopify keeps them.
    controller_overrides: Mapped[str | None] = mapped_column(String(255))
    # A `shop/update` delivery said the shop changed at this time; a clock re-reads its details.
    details_stale_at: Mapped[datetime | None]
    country: Mapped[str | None] = mapped_column(String(2))
    timezone: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str | None] = mapped_column(String(3))
    plan: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(10))
    scopes: Mapped[str | None] = mapped_column(Text)
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    access_token_expires_at: Mapped[datetime | None]
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_expires_at: Mapped[datetime | None]
    # The shop's retention policy as TOML (preset + fiscal-year end + overrides); None = manifest default.
    policy_toml: Mapped[str | None] = mapped_column(Text)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    sweep_hour: Mapped[int] = mapped_column(Integer, default=3)
    installed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When Gallra confirmed the uninstall (Shopify refused the shop's token); shop/redact waits 48 h from it.
    uninstalled_at: Mapped[datetime | None]
    # An `app/uninstalled` delivery claimed an uninstall at this time, not yet confirmed
    # (`plugin.pipelines.uninstall`); the shop stays active, with its tokens, until then.
    uninstall_claimed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Delivery(Base):
    """One verified webhook delivery, stored before it is acknowledged. The raw body is encrypted."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("topic", "webhook_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shop_domain: Mapped[str] = mapped_column(String(255), index=True)
    topic: Mapped[str] = mapped_column(String(64))
    webhook_id: Mapped[str | None] = mapped_column(String(255))
    event_id: Mapped[str | None] = mapped_column(String(255))
    api_version: Mapped[str | None] = mapped_column(String(32))
    triggered_at: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    body_enc: Mapped[str] = mapped_column(Text)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id", ondelete="SET NULL"))


class Request(Base):
    """The ledger: one row per privacy request. Source of truth and work queue."""

    __tablename__ = "requests"
    __table_args__ = (
        UniqueConstraint("shop_domain", "kind", "business_key"),
        Index("ix_requests_due_work", "status", "next_attempt_at"),
        state_check("requests", "status"),
        # Every webhook writes a row into each index, and an index on a hash puts each row on a
        # random page (written to the log at commit, and again at the checkpoint). So: no index of
        # shop_domain alone (the unique key begins with it and serves those queries), and none of
        # email_hash or phone_hash. The one look-up by e-mail hash (a data request's export lists
        # the subject's other requests) reads the shop's requests through the unique key instead,
        # once per data request.
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shop_domain: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))  # data_request|customer_redact|shop_redact|sweep
    business_key: Mapped[str] = mapped_column(String(512))
    shopify_shop_id: Mapped[int | None] = mapped_column(BigInteger)
    customer_id: Mapped[int | None] = mapped_column(BigInteger)
    email_enc: Mapped[str | None] = mapped_column(Text)
    email_hash: Mapped[str | None] = mapped_column(String(64))
    phone_enc: Mapped[str | None] = mapped_column(Text)
    phone_hash: Mapped[str | None] = mapped_column(String(64))
    order_ids: Mapped[list[Any]] = mapped_column(default=list)
    data_request_id: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20), default=RequestStatus.RECEIVED)  # plugin.states
    # Why an on_hold request waits: `plugin.pipelines.shop_redact.HOLD_REASONS`.
    hold_reason: Mapped[str | None] = mapped_column(String(40))
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    deadline_flagged_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    # Set when the finished request's subject data was dropped (`plugin.minimise`).
    minimised_at: Mapped[datetime | None]
    # Shopify customer ids merged into `customer_id` after the request arrived (`customers/merge`,
    # `plugin.pipelines.merges`), oldest first; None when the customer never merged.
    merged_from: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Step(Base):
    """One adapter call (or one scheduled re-plan) of a request, idempotent and retried."""

    __tablename__ = "steps"
    __table_args__ = (
        UniqueConstraint("request_id", "key"),
        state_check("steps", "state"),
        Index("ix_steps_due_work", "state", "next_attempt_at"),
        # The retention sweep asks "is this holding already being erased?" for every batch.
        Index("ix_steps_shop_holding", "shop_domain", "holding_ref"),
        # Per step the executor asks "is any step of this request still busy / failed / awaiting?"
        # and "which of its steps are shipments / the customer's erasure?": indexed, so a sweep
        # request of 100,000 steps answers as fast as a request of three.
        Index("ix_steps_request_state", "request_id", "state", "system"),
        # `id` last: a sweep's carrier group is an id range within (request, shipment, carrier, erase).
        Index("ix_steps_request_category", "request_id", "category", "system", "action", "id"),
        # No index of request_id or shop_domain alone: the ones above begin with them and serve
        # every query (and the foreign key's cascade) by that column, and each index is written
        # for every step a sweep queues. A request_id index also drew the planner away from
        # (request, category) to scan the whole request in id order.
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    shop_domain: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(255))  # stable per request: "klaviyo:erase:<ref>"
    system: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(20))  # find|erase|reduce|export|keep|replan|notify
    category: Mapped[str | None] = mapped_column(String(40))
    holding_ref: Mapped[str | None] = mapped_column(String(255))
    decision: Mapped[dict[str, Any]] = mapped_column(default=dict)  # no personal data
    state: Mapped[str] = mapped_column(String(24), default=StepState.PENDING)  # plugin.states
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(40))
    provider_ref: Mapped[str | None] = mapped_column(String(255))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    # Whether an erase or reduce took effect, by the adapter's own look-up afterwards
    # (`plugin.executor.verify`): pending|verified_absent|still_present|not_verifiable; None for
    # steps that are not checked (keep, export, dry runs). `verify_after`: when to look (again);
    # `verification_detail`: how it was found, or why it cannot be; never personal data.
    verification: Mapped[str | None] = mapped_column(String(20))
    verified_at: Mapped[datetime | None]
    verify_after: Mapped[datetime | None]
    verification_detail: Mapped[str | None] = mapped_column(Text)


class ShopifyErasure(Base):
    """A `customerRequestDataErasure` Gallra made: Shopify carries it out days or months later
    (`plugin.shopify.erasures`). Only the app that requested it can cancel it, within the window."""

    __tablename__ = "shopify_erasures"
    __table_args__ = (
        # One per customer and request: a retried step records the same erasure again, not a second.
        UniqueConstraint("shop_domain", "customer_id", "request_id"),
        state_check("shopify_erasures", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shop_domain: Mapped[str] = mapped_column(String(255))
    customer_id: Mapped[int] = mapped_column(BigInteger)
    # Plain ids, no foreign keys (as `evidence.request_id`): a foreign key would take a share lock
    # on the request row inside the step's transaction, before the evidence lock, while another
    # step of the request holds that lock and waits to update the row (a deadlock on PostgreSQL).
    request_id: Mapped[int | None] = mapped_column(Integer)
    step_id: Mapped[int | None] = mapped_column(Integer)
    requested_at: Mapped[datetime]
    # When Shopify's documented delay says it carries the erasure out; cancelling is possible before.
    expected_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(20), default=ErasureState.REQUESTED)  # plugin.states
    # Customer ids this erasure followed through `customers/merge`, oldest first.
    merged_from: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    verified_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    # Who cancelled (`shopify-user:<id>` or `cli`), and why: the reason may name people, so encrypted.
    cancelled_by: Mapped[str | None] = mapped_column(String(64))
    cancel_reason_enc: Mapped[str | None] = mapped_column(Text)


class CustomerMerge(Base):
    """A `customers/merge` delivery (`plugin.pipelines.merges`): applied once off the request path;
    a merge Shopify reports as anything but completed is kept as `ignored` and changes nothing."""

    __tablename__ = "customer_merges"
    __table_args__ = (
        UniqueConstraint("shop_domain", "business_key"),
        state_check("customer_merges", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shop_domain: Mapped[str] = mapped_column(String(255))
    # kept, deleted, Shopify's status and job id: a replay under a new webhook id is a duplicate.
    business_key: Mapped[str] = mapped_column(String(255))
    kept_customer_id: Mapped[int] = mapped_column(BigInteger)
    deleted_customer_id: Mapped[int] = mapped_column(BigInteger)
    job_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))  # as Shopify sent it: completed, failed, ...
    state: Mapped[str] = mapped_column(String(20), default=MergeState.RECEIVED)  # plugin.states
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[datetime | None]
    moved: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # table -> rows moved


class StepGroup(Base):
    """Shipment erase steps of one sweep request and carrier that one e-mail covers: the carrier's
    steps that one sweep batch queued, split into consecutive id ranges in the queueing
    transaction. Ids only grow, so a range never gains a step once workers can see it."""

    __tablename__ = "step_groups"
    # "The group whose range ends at or after this step" (then checked to start at or before it).
    __table_args__ = (Index("ix_step_groups_range", "request_id", "system", "last_step_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    system: Mapped[str] = mapped_column(String(64))
    first_step_id: Mapped[int] = mapped_column(Integer)
    last_step_id: Mapped[int] = mapped_column(Integer)


class Evidence(Base):
    """Append-only, chained per shop (`plugin.evidence`). `payload` holds no identifiers, only their
    keyed digests; the identifiers themselves sit in `identifiers` until the entry is reduced."""

    __tablename__ = "evidence"
    __table_args__ = (UniqueConstraint("shop_domain", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shop_domain: Mapped[str] = mapped_column(String(255))
    seq: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[int | None] = mapped_column(Integer, index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # None once reduced (or when the entry named nothing); never covered by the chain directly.
    identifiers: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # 1: unkeyed SHA-256 chain of before 0005 (re-chained on the shop's next append); 2: HMAC chain.
    version: Mapped[int] = mapped_column(Integer, default=2)
    key_id: Mapped[str | None] = mapped_column(String(16))  # which key made the MAC (2 only)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class EvidenceHead(Base):
    """The newest entry of a shop's chain, written with every append and MAC'd under the chain key:
    entries removed from the end without it being rewritten (which needs the key) are found."""

    __tablename__ = "evidence_heads"

    shop_domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(16))
    mac: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AdapterConnection(Base):
    """A shop's settings for one adapter; credentials encrypted, never shown again."""

    __tablename__ = "adapter_connections"
    __table_args__ = (
        UniqueConstraint("shop_domain", "adapter"),
        state_check("adapter_connections", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shop_domain: Mapped[str] = mapped_column(String(255), index=True)
    adapter: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    config_enc: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=ConnectionStatus.UNCHECKED)
    last_checked_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # The current run of failed checks and finally failed steps (reset by a success): the shop
    # owner is told once per run that reaches `plugin.notifications.FAILING_AFTER`.
    failures: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Artifact(Base):
    """Downloadable documents: register extracts, certificates. Encrypted; links expire."""

    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shop_domain: Mapped[str] = mapped_column(String(255), index=True)
    request_id: Mapped[int | None] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(40))  # extract_json|extract_html|certificate_json|...
    content_type: Mapped[str] = mapped_column(String(80))
    content_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]


class OutboxMessage(Base):
    """E-mail channel: a templated request to a processor, tracked until confirmed."""

    __tablename__ = "outbox"
    # One message per step, so a retried step never queues a second e-mail.
    __table_args__ = (UniqueConstraint("shop_domain", "step_id"), state_check("outbox", "status"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shop_domain: Mapped[str] = mapped_column(String(255), index=True)
    step_id: Mapped[int | None] = mapped_column(Integer, index=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    # Keyed hash of what the message asks for, so two steps asking one processor the same thing
    # (several shipments of one customer) share one e-mail.
    dedupe_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    to_enc: Mapped[str] = mapped_column(Text)
    reply_to_enc: Mapped[str | None] = mapped_column(Text)
    subject_enc: Mapped[str] = mapped_column(Text)
    body_enc: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=OutboxStatus.QUEUED)  # plugin.states
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    lease_expires_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    reminded_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    note_enc: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(Base):
    """Something the shop owner was told (or would have been, had a mail server or a contact address
    been there), at most once per event: `event_key` is claimed by the unique constraint. `details`
    holds ids and counts only; the e-mail itself is an outbox message (`outbox_reference`)."""

    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("shop_domain", "event_key"), state_check("notifications", "status"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shop_domain: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    event_key: Mapped[str] = mapped_column(String(255))
    language: Mapped[str] = mapped_column(String(2))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20))  # plugin.states.NotificationStatus
    reason: Mapped[str | None] = mapped_column(String(40))
    outbox_reference: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Sweep(Base):
    """One retention sweep of one shop on one day; progress and report hold counts only."""

    __tablename__ = "sweeps"
    __table_args__ = (UniqueConstraint("shop_domain", "day", "dry_run"), state_check("sweeps", "status"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shop_domain: Mapped[str] = mapped_column(String(255), index=True)
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD in the shop's time zone
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default=SweepStatus.RUNNING)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)
    request_id: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class ClockClaim(Base):
    """A periodic effect claimed once, whatever the number of instances whose clocks fired."""

    __tablename__ = "clock_claims"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)


class OAuthState(Base):
    """A spent state of the authorization-code install flow (the state itself is signed, not
    stored): remembered until the state would have expired, so it works once only."""

    __tablename__ = "oauth_states"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    shop_domain: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]


class RateLimitCall(Base):
    """One call a provider's rate limit counted, shared by every process on the database
    (`plugin.rate_limits`): `key` is provider, credential fingerprint and limit scope; `at` is the
    database's clock (PostgreSQL) in epoch seconds. Rows older than the key's longest window are
    pruned as calls go."""

    __tablename__ = "rate_limit_calls"
    __table_args__ = (Index("ix_rate_limit_calls_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255))
    at: Mapped[float] = mapped_column(Double)


class RateLimitSlot(Base):
    """A connection slot of a provider that caps concurrency, held by one call at a time; the lease
    is renewed while the call runs, so a slot whose process died is free again when it ends."""

    __tablename__ = "rate_limit_slots"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[float] = mapped_column(Double)


class LegalHold(Base):
    """A hold the shop owner placed on a customer's data (`plugin.legal_holds`): while active, nothing
    of the customer's is erased, by a request or a sweep (GDPR art. 17(3)(e)). The customer is
    named by Shopify id or by e-mail (encrypted, with a keyed look-up hash); the reasons and who
    acted may name people, so they are encrypted too. Never deleted: a hold is released."""

    __tablename__ = "legal_holds"
    __table_args__ = (
        UniqueConstraint("shop_domain", "key"),
        Index("ix_legal_holds_active", "shop_domain", "released_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shop_domain: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(32))  # random, fixed at placing: binds the encrypted values
    customer_id: Mapped[int | None] = mapped_column(BigInteger)
    email_enc: Mapped[str | None] = mapped_column(Text)
    email_hash: Mapped[str | None] = mapped_column(String(64))
    reason_enc: Mapped[str] = mapped_column(Text)
    placed_at: Mapped[datetime] = mapped_column(default=utcnow)
    placed_by_enc: Mapped[str | None] = mapped_column(Text)
    ends_on: Mapped[date | None] = mapped_column(Date)  # last day held, in the shop's time zone
    released_at: Mapped[datetime | None]
    released_by_enc: Mapped[str | None] = mapped_column(Text)
    release_reason_enc: Mapped[str | None] = mapped_column(Text)
    # explicit | expired
    released_how: Mapped[str | None] = mapped_column(String(20))


# --- where encrypted values live --------------------------------------------------------------------
# An encrypted value is bound (GCM associated data) to its table, column and shop, and to its row
# where the row has a key that is known when the value is written and never changes:
#   shops                the shop itself (the shop is the row)
#   requests             kind and business key (the ledger's unique key; not rewritten by a
#                        key rotation, which leaves business keys as they were hashed)
#   adapter_connections  the adapter's name (unique per shop)
#   artifacts            request id and kind (a document is replaced, never moved)
#   outbox               the message's reference (unique)
#   shopify_erasures     the row id (a cancel reason is written to an existing row)
#   legal_holds          the hold's random key (set when it is placed)
#   deliveries           no row key: the id is given by the insert that stores the value, and
#                        (topic, webhook id) is optional in the headers.

ENCRYPTED_COLUMNS: dict[type[Base], tuple[str, ...]] = {
    Shop: ("contact_email_enc", "legal_name_enc", "address_enc", "access_token_enc", "refresh_token_enc"),
    Delivery: ("body_enc",),
    Request: ("email_enc", "phone_enc"),
    AdapterConnection: ("config_enc",),
    Artifact: ("content_enc",),
    OutboxMessage: ("to_enc", "reply_to_enc", "subject_enc", "body_enc", "note_enc"),
    ShopifyErasure: ("cancel_reason_enc",),
    LegalHold: ("email_enc", "reason_enc", "placed_by_enc", "released_by_enc", "release_reason_enc"),
}


def shop_cell(column: str, domain: str) -> Cell:
    return Cell("shops", column, domain)


def delivery_cell(shop_domain: str) -> Cell:
    return Cell("deliveries", "body_enc", shop_domain)


# What a delivery's body becomes once its personal data is erased (the request's own data, a
# minimised request): the row stays, for the delivery's id and the evidence that names it.
REDACTED_BODY = '{"redacted": true}'


def request_cell(column: str, shop_domain: str, kind: str, business_key: str) -> Cell:
    return Cell("requests", column, shop_domain, f"{kind}:{business_key}")


def connection_cell(shop_domain: str, adapter: str) -> Cell:
    return Cell("adapter_connections", "config_enc", shop_domain, adapter)


def artifact_cell(shop_domain: str, request_id: int | None, kind: str) -> Cell:
    return Cell("artifacts", "content_enc", shop_domain, f"{request_id}:{kind}")


def outbox_cell(column: str, shop_domain: str, reference: str) -> Cell:
    return Cell("outbox", column, shop_domain, reference)


def erasure_cell(shop_domain: str, erasure_id: int) -> Cell:
    return Cell("shopify_erasures", "cancel_reason_enc", shop_domain, str(erasure_id))


def legal_hold_cell(column: str, shop_domain: str, key: str) -> Cell:
    return Cell("legal_holds", column, shop_domain, key)


def cell_of(row: Base, column: str) -> Cell:
    """The cell of an encrypted `column` of a loaded row."""
    if isinstance(row, Request):
        return request_cell(column, row.shop_domain, row.kind, row.business_key)
    if isinstance(row, Shop):
        return shop_cell(column, row.domain)
    if isinstance(row, OutboxMessage):
        return outbox_cell(column, row.shop_domain, row.reference)
    if isinstance(row, Artifact):
        return artifact_cell(row.shop_domain, row.request_id, row.kind)
    if isinstance(row, AdapterConnection):
        return connection_cell(row.shop_domain, row.adapter)
    if isinstance(row, Delivery):
        return delivery_cell(row.shop_domain)
    if isinstance(row, ShopifyErasure):
        return erasure_cell(row.shop_domain, row.id)
    if isinstance(row, LegalHold):
        return legal_hold_cell(column, row.shop_domain, row.key)
    raise TypeError(f"{type(row).__name__} holds no encrypted columns")
