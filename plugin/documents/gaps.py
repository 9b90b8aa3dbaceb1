"""What a request could not examine, and why.

Every compliance topic must complete without a Shopify token: after an uninstall Shopify revokes
it (and keeps sending `customers/redact` for 48 hours), a refresh can be refused, scopes can be
revoked. The connected tools are still asked with what the payload gives (e-mail, phone, customer
id, order ids), and each source that could not be looked at is recorded here as *not examined*
with a value-free reason, so the certificate and the extract list it instead of a bare `done`.

A source is one system Gallra would have asked: Shopify (through its adapter, or its orders when
Gallra holds no token) and every connected tool that can `find`. A request none of whose sources
could be examined is not done: planning fails with `NothingExamined` (`nothing_examined`; a shop
never installed here or already purged has no sources, see `NO_SOURCES`).

The records carry no identifiers (evidence keeps those apart): the orders named in the payload are
counted, never listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import AdapterError, AuthFailed
from plugin.holdings import SHOPIFY
from plugin.i18n import translate
from plugin.models import Evidence, Request
from plugin.states import ShopStatus

# Why a source was not examined, each completing "<system>: ...": `gap.<reason>` in the catalogue
# (`plugin.i18n`), one of these.
REASONS = frozenset(
    {"uninstalled", "not_installed", "shop_redacted", "no_token", "token_refused", "connection_failed"}
)


# A shop never installed here, or one whose data was purged (shop/redact), has no source Gallra
# could ever ask: nothing failed. Its request still erases Gallra's own copy of the subject (a
# late or replayed customers/redact must not leave one behind) and ends done, listing Shopify.
NO_SOURCES = frozenset({"not_installed", "shop_redacted"})


def nothing_examined(gaps: Sequence[NotExamined], examined: Sequence[str]) -> bool:
    """Every source the request had failed: none examined, and a gap that is a real failure."""
    return not examined and any(g.reason not in NO_SOURCES for g in gaps)


class ShopifyNotExamined(Exception):
    """Shopify cannot be read for this shop; `reason` is a key of `REASONS`. Raised by
    `Sources.shopify_orders`; the message holds no personal data."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"shopify: not examined ({reason})")
        self.reason = reason


class NothingExamined(Exception):
    """Not one of the request's sources could be examined: the request is not done. `retryable`
    when a source failed for a reason that may pass (the planning is tried again)."""

    def __init__(self, gaps: Sequence[NotExamined], *, retryable: bool = False) -> None:
        listed = "; ".join(f"{g.system}: {g.reason}" for g in gaps)
        super().__init__(f"no source could be examined ({listed})")
        self.gaps = list(gaps)
        self.retryable = retryable


@dataclass(frozen=True)
class NotExamined:
    system: str
    title: str
    reason: str  # a key of REASONS
    detail: str = ""  # the adapter's own value-free message (`AdapterError.summary`)
    orders: int = 0  # order ids named in the request that could not be looked at
    retryable: bool = False

    def why(self, lang: str) -> str:
        text = translate(lang, f"gap.{self.reason}", default=self.reason)
        if self.detail:
            text = f"{text}: {self.detail}"
        if self.orders:
            text += "; " + translate(lang, "gap.orders", n=self.orders)
        return text

    def as_dict(self) -> dict[str, Any]:
        """As the evidence, the certificate and the extract carry it (no identifiers)."""
        return {
            "system": self.system,
            "title": self.title,
            "reason": self.reason,
            "detail": self.detail,
            "orders_not_examined": self.orders,
            "why_en": self.why("en"),
            "why_sv": self.why("sv"),
        }


def shopify_reason(shop_status: str | None) -> str:
    """Why a shop without a usable token cannot be read, from its status."""
    reasons: dict[str, str] = {
        ShopStatus.UNINSTALLED: "uninstalled",
        ShopStatus.REDACTED: "shop_redacted",
        ShopStatus.UNKNOWN: "not_installed",
    }
    return reasons.get(shop_status or "", "no_token")


def shopify_gap(reason: str, order_ids: Sequence[int]) -> NotExamined:
    return NotExamined(SHOPIFY, "Shopify", reason, orders=len(set(order_ids)))


def tool_gap(system: str, title: str, error: AdapterError, order_ids: Sequence[int]) -> NotExamined:
    """A connected tool (or Shopify's adapter) whose `find` failed."""
    detail = error.summary.removeprefix(f"{error.adapter}: ")
    if system == SHOPIFY:
        if isinstance(error, AuthFailed):
            return NotExamined(SHOPIFY, title, "token_refused", orders=len(set(order_ids)))
        return NotExamined(SHOPIFY, title, "connection_failed", detail, len(set(order_ids)), error.retryable)
    return NotExamined(system, title, "connection_failed", detail, retryable=error.retryable)


def not_examined_of(planned: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The not-examined records of a request's `planned` evidence entry (its public part)."""
    found = (planned or {}).get("not_examined") or []
    return [dict(g) for g in found if isinstance(g, dict)]


def completeness(not_examined: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The documents' summary: complete, or done with the listed gaps."""
    systems = sorted({str(g.get("system")) for g in not_examined})
    return {
        "complete": not systems,
        "state": "done_with_gaps" if systems else "done",
        "not_examined": systems,
    }


def not_examined_block(not_examined: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The documents' part: their summary (complete, or done with gaps) and the list itself."""
    return {"summary": completeness(not_examined), "not_examined": list(not_examined)}


async def planned_entry(session: AsyncSession, request: Request) -> dict[str, Any] | None:
    """The public part of the request's latest `planned` evidence entry (its plan, as recorded)."""
    payload: dict[str, Any] | None = (
        await session.execute(
            select(Evidence.payload)
            .where(
                Evidence.shop_domain == request.shop_domain,
                Evidence.request_id == request.id,
                Evidence.kind == "planned",
            )
            .order_by(Evidence.seq.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return payload


async def planned_gaps(session: AsyncSession, request: Request) -> list[dict[str, Any]]:
    """The not-examined records of the request's latest `planned` entry."""
    return not_examined_of(await planned_entry(session, request))
