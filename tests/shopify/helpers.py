"""Shared bits of the Shopify tests: a virtual clock both the fake and the client run on."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx

from plugin.cost_throttle import CostThrottle
from plugin.shopify.client import AdminClient
from tests.conftest import make_settings
from tests.fakes.shopify import ShopifyFake

SHOP = "shop-a.myshopify.com"


@dataclass
class VirtualClock:
    now: float = 1_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def client_for(
    fake: ShopifyFake, http: httpx.AsyncClient, clock: VirtualClock, **kwargs: object
) -> AdminClient:
    fake.clock = clock
    return AdminClient(
        http,
        make_settings(),
        SHOP,
        "shpat_test",
        throttle=CostThrottle(clock),
        **kwargs,  # type: ignore[arg-type]
    )
