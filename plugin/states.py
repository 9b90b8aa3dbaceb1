"""The states a row can be in: one enum per state column, and the database constraint built from it.

Every comparison and assignment of a state names a member here, never a bare string. The tables
(`plugin.models`) carry a CHECK constraint per state column made by `one_of`, and the migrations
create the same constraint from the same enum (`plugin.migrations.checks`), so a state that is not
listed here cannot be written, by the ORM or by hand-written SQL.

Adding a state is one line in its enum here, plus a migration that calls
`plugin.migrations.checks.replace_state_checks` for the table (the constraint's text changes).
"""

from __future__ import annotations

from enum import StrEnum


class RequestStatus(StrEnum):
    """A privacy request in the ledger (`requests.status`)."""

    RECEIVED = "received"
    PLANNING = "planning"
    IN_PROGRESS = "in_progress"
    # Only held (keep until) or e-mail-channel steps left.
    AWAITING = "awaiting"
    # Every erasure call is made; some are still to be seen taking effect (`plugin.executor.verify`).
    # Open, but never overdue: the deadline is judged on the calls.
    VERIFYING = "verifying"
    # Not to be carried out yet, for `hold_reason`; re-checked at `next_attempt_at`.
    ON_HOLD = "on_hold"
    FINALIZING = "finalizing"
    DONE = "done"
    FAILED = "failed"


class StepState(StrEnum):
    """One adapter call or scheduled re-plan of a request (`steps.state`)."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    HELD = "held"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    # The erasure call was made; its look-up afterwards is due at `next_attempt_at`.
    VERIFYING = "verifying"
    FAILED = "failed"
    SKIPPED = "skipped"


class ShopStatus(StrEnum):
    """An installed shop (`shops.status`)."""

    ACTIVE = "active"
    UNINSTALLED = "uninstalled"
    REDACTED = "redacted"
    # Never stored (`NEVER_STORED`): the stand-in for a shop a request names that is not installed here.
    UNKNOWN = "unknown"


class ConnectionStatus(StrEnum):
    """The last check of a shop's adapter connection (`adapter_connections.status`)."""

    UNCHECKED = "unchecked"
    OK = "ok"
    ERROR = "error"


class OutboxStatus(StrEnum):
    """An e-mail in the outbox (`outbox.status`)."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    CONFIRMED = "confirmed"
    FAILED = "failed"


class NotificationStatus(StrEnum):
    """What became of a notification to the shop owner (`notifications.status`)."""

    QUEUED = "queued"  # handed to the outbox
    NOT_EMAILED = "not_emailed"  # `reason` says why


class SweepStatus(StrEnum):
    """One shop's retention sweep of one day (`sweeps.status`)."""

    QUEUED = "queued"  # a preview the owner asked for, waiting for the sweep clock
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


# The state columns and their enums: the models and the migrations build their constraints from it.
class ErasureState(StrEnum):
    """A customer data erasure Gallra asked Shopify for (`shopify_erasures.state`)."""

    REQUESTED = "requested"  # Shopify carries it out after its delay; cancellable until then
    CANCELLED = "cancelled"
    VERIFIED = "verified"  # the customer was seen gone after Shopify's delay


class MergeState(StrEnum):
    """A `customers/merge` delivery (`customer_merges.state`)."""

    RECEIVED = "received"
    APPLIED = "applied"
    IGNORED = "ignored"  # Shopify did not report it completed: nothing moved


STATE_COLUMNS: dict[tuple[str, str], type[StrEnum]] = {
    ("requests", "status"): RequestStatus,
    ("steps", "state"): StepState,
    ("shops", "status"): ShopStatus,
    ("adapter_connections", "status"): ConnectionStatus,
    ("outbox", "status"): OutboxStatus,
    ("notifications", "status"): NotificationStatus,
    ("sweeps", "status"): SweepStatus,
    ("shopify_erasures", "state"): ErasureState,
    ("customer_merges", "state"): MergeState,
}


# States that describe a row in memory only; the constraint refuses them.
NEVER_STORED: frozenset[StrEnum] = frozenset({ShopStatus.UNKNOWN})


def one_of(column: str, states: type[StrEnum]) -> str:
    """The CHECK condition "column holds one of the enum's stored values", as SQL both databases read."""
    values = ", ".join(f"'{state.value}'" for state in states if state not in NEVER_STORED)
    return f"{column} IN ({values})"


def check_name(table: str, column: str) -> str:
    """The constraint's full name (the models' naming convention `ck_<table>_<name>`)."""
    return f"ck_{table}_{column}"
