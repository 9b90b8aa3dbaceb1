"""Seeing an erasure take effect.

After an erase or reduce call succeeds, the adapter's own `find` is asked again for the same
subject (the identifiers the call used; `Adapter.lookup_subject`) and `Adapter.gone` judges the
answer:
- `verified_absent`: the holding is no longer found (when, and how: `Verification.how`);
- `still_present`: still found; the step goes back to retrying the erasure with the executor's
  backoff, and fails visibly once its attempts are used up;
- `not_verifiable`: no look-up can show it (the provider's API cannot look a subject up, the
  erasure named the record by the provider's id only, the provider keeps the record by design as a
  suppression or a cancelled shipment, or the e-mail channel, where the processor's confirmation
  is recorded instead: by whom and when);
- `pending`: an asynchronous erasure (a deletion job, Shopify's customer data erasure) not yet
  seen gone right after its call is looked at when the adapter's `Verification` says, and again
  until its window ends; meanwhile the step is `verifying` and the request `verifying`, which is
  not late: the legal deadline is judged on the erasure call.

This module decides and looks; `plugin.executor.outcomes` records the result with the step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from adapters.base import Adapter, AdapterError, Outcome, Result
from plugin.holdings import Holding, Subject

log = logging.getLogger("gallra.executor")

PENDING = "pending"
ABSENT = "verified_absent"
PRESENT = "still_present"
NOT_VERIFIABLE = "not_verifiable"
STATES = (PENDING, ABSENT, PRESENT, NOT_VERIFIABLE)

# Outcomes after which the provider keeps the record on purpose: a look-up would find it.
KEPT_BY_DESIGN = {
    Outcome.SUPPRESSED: "the provider keeps the record, unsubscribed or suppressed; a look-up finds it "
    "by design",
    Outcome.CANCELLED: "the provider keeps the cancelled shipment; a look-up finds it by design",
}
CANNOT_FIND = "the provider's API cannot look a subject up"
SHOPIFY_LIST = "the provider's API cannot look the shipment up; Gallra knows of it only from Shopify's order"
BY_ID_ONLY = (
    "erased by the provider's own record id (retention sweep); Gallra holds no identifier to look it up again"
)
# A look-up that failed is tried again after this long (a synchronous adapter's `every` is longer).
LOOKUP_RETRY = timedelta(minutes=15)


@dataclass(frozen=True)
class Check:
    """A verification result to record with the step; `at` is when to look again (pending)."""

    state: str
    detail: str
    at: datetime | None = None
    cover_id: int | None = None  # the step whose erasure carries this one's (`follows`)

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"unknown verification state {self.state!r}")


def follows(cover_key: str) -> str:
    """The detail of a step whose erasure another step carries out (Shopify's customer erasure
    covering an order's contact data): it is verified with that step."""
    return f"verified with step {cover_key}"


async def after_call(
    adapter: Adapter, subject: Subject, holding: Holding, result: Result, now: datetime
) -> Check | None:
    """What follows a successful erase or reduce call: a verdict, or a look-up later. None for an
    e-mailed request (its confirmation is recorded instead, `plugin.executor.actions.confirm_step`)."""
    if result.outcome is Outcome.REQUEST_SENT:
        return None
    if result.outcome in KEPT_BY_DESIGN:
        return Check(NOT_VERIFIABLE, KEPT_BY_DESIGN[result.outcome], now)
    if not adapter.can_find:
        return Check(NOT_VERIFIABLE, CANNOT_FIND, now)
    if not adapter.verifiable():
        return Check(NOT_VERIFIABLE, SHOPIFY_LIST, now)
    asked = adapter.lookup_subject(subject, holding)
    if asked is None:
        return Check(NOT_VERIFIABLE, BY_ID_ONLY, now)
    check = await look(adapter, asked, holding, now)
    rules = adapter.verification
    if check.state != ABSENT and rules.after > timedelta(0) and result.outcome is not Outcome.ALREADY_ABSENT:
        # Accepted, not yet carried out (the provider's job runs later): looked at again then.
        return Check(
            PENDING,
            f"asynchronous erasure: looked at again from {now + rules.after:%Y-%m-%d %H:%M} UTC",
            now + rules.after,
        )
    return check


async def look(adapter: Adapter, asked: Subject, holding: Holding, now: datetime) -> Check:
    """Ask the adapter's `find` about `asked` (`Adapter.lookup_subject`) and judge: absent, still
    present, or (the look-up failed) pending."""
    try:
        found = await adapter.find(asked)
    except AdapterError as exc:
        return Check(
            PENDING, f"the look-up failed ({exc.summary}); looked at again later", now + LOOKUP_RETRY
        )
    except Exception as exc:
        # The message may quote provider data; only the type is kept.
        log.error("verification look-up by %s failed with %s", adapter.name, type(exc).__name__)
        return Check(
            PENDING, f"the look-up failed ({type(exc).__name__}); looked at again later", now + LOOKUP_RETRY
        )
    if adapter.gone(holding, found):
        return Check(ABSENT, adapter.verification.how, now)
    return Check(PRESENT, f"{adapter.name}: still found after the erasure was reported done", now)


async def recheck(
    adapter: Adapter, subject: Subject, holding: Holding, erased_at: datetime | None, now: datetime
) -> Check:
    """A due look-up of an asynchronous erasure: still found within the adapter's window is looked
    at again later, not yet `still_present`."""
    asked = adapter.lookup_subject(subject, holding)
    if asked is None:  # nothing left to ask about: a look-up could not show it gone
        return Check(NOT_VERIFIABLE, BY_ID_ONLY, now)
    check = await look(adapter, asked, holding, now)
    rules = adapter.verification
    if check.state == PRESENT and now < (erased_at or now) + rules.within:
        return Check(
            PENDING, f"not yet carried out by {adapter.name}; looked at again later", now + rules.every
        )
    return check
