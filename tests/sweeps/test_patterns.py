"""Counting alike orders by one verdict pattern gives exactly what planning each order gives."""

from __future__ import annotations

from typing import ClassVar
from zoneinfo import ZoneInfo

import pytest

from plugin.models import AdapterConnection, Shop
from plugin.retention import Policy
from plugin.runtime import Runtime
from plugin.sweeps import runner
from plugin.sweeps.parts import SweepParts
from plugin.sweeps.patterns import OrderPatterns, order_signature
from plugin.sweeps.run import run_sweep
from plugin.sweeps.wiring import sweep_planner
from tests.sweeps.doubles import RecordingEnqueuer, stream
from tests.sweeps.shopdata import CONNECTED, NOW, POLICY_TOML, SHOP, TZ, build_shop


class Off(OrderPatterns):
    def __init__(self) -> None:
        super().__init__()
        self.enabled = False


class Often(OrderPatterns):
    made: ClassVar[list[OrderPatterns]] = []

    def __init__(self) -> None:
        super().__init__(check_every=3)  # spot-check a third of the reuses
        Often.made.append(self)


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
    fast = await dry_sweep_with(runtime, Often, monkeypatch)  # the same day's preview, recomputed
    assert fast == exact
    orders, customers = Often.made[-2:]  # the sweep's patterns for orders, then for customers
    assert orders.enabled and orders.reused > 2000 and orders.checked > 500  # the shortcut did the work
    assert customers.enabled and customers.reused > 100
    assert exact["categories"]["shipment"]["erase"] > 0  # type: ignore[index]


def test_a_pattern_that_no_longer_matches_switches_the_shortcut_off() -> None:
    shop = build_shop(n_orders=20)
    zone = ZoneInfo(TZ)
    patterns = OrderPatterns(check_every=1)
    signature = order_signature(shop.orders[0], zone)
    patterns.learn(signature, (("accounting_record", "keep", None, None),))
    assert patterns.reuse(signature) is None  # check_every=1: every reuse is recomputed
    patterns.learn(signature, (("accounting_record", "erase", None, None),))
    assert patterns.enabled is False and patterns.reuse(signature) is None
    # An order with the same signature that turns out to have something to do is a mismatch too.
    again = OrderPatterns(check_every=1)
    again.learn(signature, (("accounting_record", "keep", None, None),))
    again.learn(signature, None)
    assert again.enabled is False


def test_signatures_tell_apart_what_retention_reads() -> None:
    shop = build_shop(n_orders=200)
    zone = ZoneInfo(TZ)
    signatures = {order_signature(o, zone) for o in shop.orders}
    assert 1 < len(signatures) <= len(shop.orders)
    order = shop.orders[-1]
    from dataclasses import replace

    assert order_signature(replace(order, id=1, name="#1"), zone) == order_signature(order, zone)
    assert order_signature(replace(order, cancelled_at=NOW), zone) != order_signature(order, zone)
    assert order_signature(replace(order, shipping_country="NO"), zone) != order_signature(order, zone)
