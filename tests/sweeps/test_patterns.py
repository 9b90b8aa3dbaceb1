"""Counting orders of one shape by one verdict pattern gives exactly what planning each order gives,
and records of one shape have the same holdings but for their names."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import replace
from typing import ClassVar

import pytest

from adapters.shopify_holdings import (
    CustomerShape,
    customer_holdings,
    customer_shape,
    last_order_holding,
    order_holdings,
    order_shape,
)
from plugin.holdings import Holding
from plugin.models import AdapterConnection, Shop
from plugin.retention import Policy
from plugin.retention.dates import shop_zone
from plugin.runtime import Runtime
from plugin.shopify.records import CustomerRecord
from plugin.sweeps import runner
from plugin.sweeps.parts import SweepParts
from plugin.sweeps.patterns import OrderPatterns, Pattern, Signature
from plugin.sweeps.run import run_sweep
from plugin.sweeps.wiring import sweep_planner
from tests.sweeps.doubles import RecordingEnqueuer, stream
from tests.sweeps.shopdata import CONNECTED, NOW, POLICY_TOML, SHOP, TZ, build_shop


class Off(OrderPatterns):
    def learn(self, signature: Signature, pattern: Pattern | None) -> None:
        """Learns nothing: every record takes the full path."""


class Counting(OrderPatterns):
    made: ClassVar[list[OrderPatterns]] = []

    def __init__(self) -> None:
        super().__init__()
        Counting.made.append(self)


async def dry_sweep_with(
    runtime: Runtime, patterns: type[OrderPatterns], monkeypatch: pytest.MonkeyPatch
) -> dict[str, object]:
    monkeypatch.setattr(runner, "OrderPatterns", patterns)
    shop = build_shop(n_orders=20000, n_customers=3000, seed=5)
    parts = SweepParts(
        orders=stream(shop.orders),
        customers=stream(shop.customers),
        plan=sweep_planner(Policy.from_toml(POLICY_TOML)),
        enqueue=RecordingEnqueuer(),
    )
    report = await run_sweep(runtime, SHOP, dry_run=True, now=NOW, parts=parts, batch_size=500)
    return dict(report["tally"])


async def test_patterns_change_nothing_but_the_work(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with runtime.db.transaction() as session:
        session.add(Shop(domain=SHOP, country="SE", timezone=TZ, policy_toml=POLICY_TOML))
        for adapter in CONNECTED:
            session.add(AdapterConnection(shop_domain=SHOP, adapter=adapter, config_enc="x"))
    exact = await dry_sweep_with(runtime, Off, monkeypatch)
    fast = await dry_sweep_with(runtime, Counting, monkeypatch)  # the same day's preview, recomputed
    assert fast == exact
    orders, customers = Counting.made[-2:]  # the sweep's patterns for orders, then for customers
    assert orders.reused > 2000 and customers.reused > 100  # the shortcut did the work
    assert exact["categories"]["shipment"]["erase"] > 0  # type: ignore[index]


def _shapes_decide_holdings(pairs: Iterable[tuple[Hashable, list[Holding]]]) -> None:
    """Records of one shape have the same holdings but for their names; some shapes recur."""
    by_shape: dict[Hashable, list[Holding]] = {}
    alike = 0
    for shape, holdings in pairs:
        named_apart = [replace(h, ref=h.ref.split(":", 1)[0], label="") for h in holdings]
        if shape in by_shape:
            alike += 1
            assert named_apart == by_shape[shape]
        by_shape[shape] = named_apart
    assert alike > 0 and len(by_shape) > 1


def test_orders_of_one_shape_have_the_same_holdings_but_for_their_names() -> None:
    zone = shop_zone(TZ)
    orders = build_shop(n_orders=400).orders
    _shapes_decide_holdings((order_shape(o, zone), order_holdings(o, TZ)) for o in orders)


def _customer_and_gate(customer: CustomerRecord, shape: CustomerShape) -> list[Holding]:
    gate = last_order_holding(customer, shape)
    return [*customer_holdings(customer, TZ), *([gate] if gate else [])]


def test_customers_of_one_shape_have_the_same_holdings_but_for_their_names() -> None:
    zone = shop_zone(TZ)
    customers = build_shop(n_orders=400, n_customers=300).customers
    shapes = [(customer_shape(c, zone), c) for c in customers]
    _shapes_decide_holdings((shape, _customer_and_gate(c, shape)) for shape, c in shapes)


def test_shapes_tell_apart_what_retention_reads() -> None:
    order = build_shop(n_orders=200).orders[-1]
    zone = shop_zone(TZ)
    shape = order_shape(order, zone)
    assert order_shape(replace(order, id=1, name="#1"), zone) == shape
    assert order_shape(replace(order, cancelled_at=NOW), zone) != shape
    assert order_shape(replace(order, shipping_country="NO"), zone) != shape
