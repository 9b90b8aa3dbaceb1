"""Test doubles for the executor: recording adapters with scripted failures, a planner with fixed
rules, and `Sources` wiring them together. No mocks of the executor itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import (
    Adapter,
    AdapterConfig,
    AdapterContext,
    AdapterError,
    Outcome,
    Result,
    ShopInfo,
)
from adapters.http import ProviderHttp
from plugin.holdings import Category, Holding, Subject
from plugin.ledger import NewRequest, insert_request
from plugin.models import Request, Shop, Step
from plugin.runtime import Runtime
from plugin.shopify.records import OrderRecord


class NoConfig(AdapterConfig):
    pass


@dataclass
class Ledger:
    """What the fake providers saw: every call, and erasures per holding."""

    calls: list[tuple[str, str, str]] = field(default_factory=list)  # (system, action, ref)
    failures: dict[str, list[AdapterError]] = field(default_factory=dict)  # ref -> errors to raise first
    reduced_fields: list[tuple[str, ...]] = field(default_factory=list)  # what each reduce was given
    # Refs whose erase the provider answers as done but silently ignores: `find` still sees them.
    ignored: set[str] = field(default_factory=set)

    def gone(self, system: str, ref: str) -> bool:
        """Whether an erase or reduce of `ref` took effect at the fake provider."""
        if ref in self.ignored:
            return False
        return any(s == system and r == ref and a in ("erase", "reduce") for s, a, r in self.calls)

    def erasures(self, system: str | None = None) -> dict[str, int]:
        return self.count("erase", system)

    def count(self, action: str, system: str | None = None) -> dict[str, int]:
        counts: dict[str, int] = {}
        for sys_, done, ref in self.calls:
            if done == action and (system is None or sys_ == system):
                counts[ref] = counts.get(ref, 0) + 1
        return counts


class RecordingAdapter(Adapter):
    name: ClassVar[str] = "newsletter"
    title: ClassVar[str] = "Newsletter Tool"
    category: ClassVar[Category] = Category.NEWSLETTER
    Config = NoConfig
    can_reduce = True

    def __init__(self, ledger: Ledger, ctx: AdapterContext, holdings: Sequence[Holding] = ()) -> None:
        super().__init__(NoConfig(), ctx)
        self.ledger = ledger
        self.holdings = list(holdings)

    async def check_api(self) -> None:
        return None

    async def find(self, subject: Subject) -> list[Holding]:
        self.ledger.calls.append((self.name, "find", subject.email or ""))
        return [h for h in self.holdings if not self.ledger.gone(self.name, h.ref)]

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        queued = self.ledger.failures.get(holding.ref)
        if queued:
            raise queued.pop(0)
        self.ledger.calls.append((self.name, "erase", holding.ref))
        return Result(Outcome.ERASED, provider_ref=f"job-{holding.ref}")

    async def reduce(self, subject: Subject, holding: Holding, fields: tuple[str, ...]) -> Result:
        """Removes every field but `activity_history` (as a provider without a way to clear it)."""
        self.ledger.calls.append((self.name, "reduce", holding.ref))
        self.ledger.reduced_fields.append(fields)
        held = tuple(f for f in fields if f == "activity_history")
        removed = tuple(f for f in fields if f not in held)
        return Result(Outcome.REDUCED, f"job-{holding.ref}", "suppressed; fields cleared", removed, held)

    async def export(self, subject: Subject) -> dict[str, Any]:
        self.ledger.calls.append((self.name, "export", subject.email or ""))
        return {"profile": {"email": subject.email}, "lists": ["news"]}


class CarrierByEmail(RecordingAdapter):
    name: ClassVar[str] = "postnord"
    title: ClassVar[str] = "PostNord"
    category: ClassVar[Category] = Category.SHIPMENT
    channel: ClassVar[Literal["api", "email"]] = "email"
    can_find = False
    can_export = False
    can_reduce = False

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        self.ledger.calls.append((self.name, "erase", holding.ref))
        numbers = ",".join(s.tracking_number or "" for s in subject.shipments)
        return Result(Outcome.REQUEST_SENT, provider_ref=f"GAL-{numbers}")


@dataclass(frozen=True)
class Decision:
    holding: Holding
    action: str
    keep_until: date | None = None
    rule_id: str | None = None
    reference: str | None = None
    reason_sv: str = ""
    reason_en: str = ""
    reduce_fields: tuple[str, ...] = ()


KEEP_UNTIL = date(2031, 12, 31)


SUPPRESSION_UNTIL = date(2029, 11, 22)
MK1_FIELDS = ("name", "phone", "address", "profile_properties", "activity_history")


def simple_plan(holdings: Sequence[Holding], today: date, mode: str) -> list[Decision]:
    """Orders are kept for bookkeeping until KEEP_UNTIL (or a `keep_until` flag date); a holding
    flagged `suppress` is reduced to a suppression entry kept until SUPPRESSION_UNTIL; everything
    else goes."""
    decisions = []
    for h in holdings:
        if "suppress" in h.flags:
            decisions.append(
                Decision(
                    h,
                    "reduce",
                    SUPPRESSION_UNTIL,
                    "MK-1-SUPPRESSION",
                    "GDPR art. 21(3)",
                    "Spärr",
                    "Suppression entry",
                    MK1_FIELDS,
                )
            )
            continue
        until = KEEP_UNTIL
        for flag in h.flags:
            if flag.startswith("keep:"):
                until = date.fromisoformat(flag[5:])
        if h.category == Category.ACCOUNTING_RECORD and until > today:
            decisions.append(
                Decision(h, "keep", until, "SE-1", "Bokföringslagen 7 kap. 2 §", "Bokföring", "Bookkeeping")
            )
        else:
            decisions.append(Decision(h, "erase", None, "REQ", "GDPR Art. 17", "Radering", "Erasure"))
    return decisions


class FakeSources:
    def __init__(self, runtime: Runtime, ledger: Ledger) -> None:
        self.runtime = runtime
        self.ledger = ledger
        self.holdings: dict[str, list[Holding]] = {}
        self.orders: dict[int, OrderRecord] = {}
        self.enabled: list[type[RecordingAdapter]] = [RecordingAdapter]
        self.plan_today: date | None = None

    def _build(self, cls: type[RecordingAdapter], shop: Shop) -> RecordingAdapter:
        ctx = AdapterContext(
            shop=ShopInfo(domain=shop.domain, name=shop.name or shop.domain),
            http=ProviderHttp(self.runtime.http, self.runtime.limiter),
        )
        return cls(self.ledger, ctx, self.holdings.get(cls.name, ()))

    async def adapters(
        self, session: AsyncSession, shop: Shop, *, step_id: int | None = None
    ) -> list[Adapter]:
        return [self._build(cls, shop) for cls in self.enabled]

    async def adapter(
        self, session: AsyncSession, shop: Shop, name: str, *, step_id: int | None = None
    ) -> Adapter | None:
        for cls in self.enabled:
            if cls.name == name:
                return self._build(cls, shop)
        return None

    async def shopify_orders(self, shop: Shop, order_ids: Sequence[int]) -> list[OrderRecord]:
        return [self.orders[i] for i in order_ids if i in self.orders]

    def plan(self, shop: Shop, holdings: Sequence[Holding], today: date, mode: str) -> list[Decision]:
        return simple_plan(holdings, self.plan_today or today, mode)


SHOP = "demo.myshopify.com"


def newsletter_holding(ref: str = "profile:1") -> Holding:
    return Holding("newsletter", Category.NEWSLETTER, ref, f"Newsletter profile {ref}")


def order(order_id: int, *, tracking: str | None = None, created: datetime | None = None) -> OrderRecord:
    from plugin.shopify.records import FulfillmentRecord, TrackingInfo

    created = created or datetime(2026, 3, 1, 12, tzinfo=UTC)
    fulfillments: tuple[FulfillmentRecord, ...] = ()
    if tracking:
        fulfillments = (
            FulfillmentRecord(
                id=order_id * 10,
                status="SUCCESS",
                created_at=created + timedelta(days=1),
                delivered_at=created + timedelta(days=3),
                tracking=(TrackingInfo("PostNord", tracking),),
            ),
        )
    return OrderRecord(
        id=order_id,
        name=f"#{order_id}",
        created_at=created,
        shipping_country="SE",
        customer_id=7,
        fulfillments=fulfillments,
    )


async def add_shop(runtime: Runtime, domain: str = SHOP, *, dry_run: bool = False) -> None:
    async with runtime.db.transaction() as session:
        session.add(
            Shop(domain=domain, name="Demo", country="SE", timezone="Europe/Stockholm", dry_run=dry_run)
        )


async def uninstall_shop(runtime: Runtime, at: datetime, domain: str = SHOP) -> None:
    """The shop as a confirmed uninstall leaves it (plugin/pipelines/uninstall.py): a shop erasure
    is carried out 48 hours after `at`."""
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Shop).where(Shop.domain == domain).values(status="uninstalled", uninstalled_at=at)
        )


async def add_request(
    runtime: Runtime,
    kind: str = "customer_redact",
    *,
    email: str = "anna@example.se",
    orders: Sequence[int] = (),
    domain: str = SHOP,
    key: str | None = None,
    customer_id: int = 7,
) -> int:
    async with runtime.db.transaction() as session:
        new = NewRequest(
            kind=kind,
            shop_domain=domain,
            business_key=key or f"{kind}:{email}:{','.join(map(str, orders))}",
            customer_id=customer_id,
            email=email,
            order_ids=list(orders),
        )
        request_id = await insert_request(session, runtime.vault, new)
    assert request_id is not None
    return request_id


async def steps_of(runtime: Runtime, request_id: int) -> dict[str, Step]:
    async with runtime.db.session() as session:
        rows = (await session.execute(select(Step).where(Step.request_id == request_id))).scalars()
        return {s.key: s for s in rows}


async def request_row(runtime: Runtime, request_id: int) -> Request:
    async with runtime.db.session() as session:
        row = await session.get(Request, request_id)
        assert row is not None
        return row
