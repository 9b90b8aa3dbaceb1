"""The process's shared parts, built once and handed to every stage: settings, database, vault,
the one `httpx.AsyncClient`, the provider rate limiter (shared with every process on the database),
and the wake-up signal for workers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx

from adapters.http import WINDOW_MARGIN, WINDOW_MARGIN_RATIO, Limiter, RateLimiter
from plugin import evidence
from plugin.cost_throttle import ShopThrottles
from plugin.crypto import Vault
from plugin.db import Database
from plugin.rate_limits import SharedRateLimiter
from plugin.settings import Settings
from plugin.timing import SYSTEM_CLOCK, Clock


@dataclass
class Runtime:
    settings: Settings
    db: Database
    vault: Vault
    http: httpx.AsyncClient
    # What Shopify's pacing and providers' Retry-After and back-off wait on; tests hand in one that
    # jumps forward instead of waiting.
    clock: Clock = SYSTEM_CLOCK
    # Provider rate limits, shared through the database by every process on it (see `__post_init__`).
    limiter: Limiter = field(init=False)
    # Shopify's cost bucket per shop, shared by every Admin API client in the process.
    shopify_throttles: ShopThrottles = field(init=False)
    # Set by intake after a commit so idle workers pick new work up at once instead of at the next tick.
    work_available: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        # The evidence chain's keys travel with the database's sessions (`plugin.evidence`).
        evidence.bind(self.db, self.vault)
        self.shopify_throttles = ShopThrottles(self.clock)
        if ":memory:" in self.db.url:
            # An in-memory database belongs to this process alone; nothing to share.
            self.limiter = RateLimiter(margin=WINDOW_MARGIN, margin_ratio=WINDOW_MARGIN_RATIO)
        else:
            self.limiter = SharedRateLimiter(
                self.db.url, margin=WINDOW_MARGIN, margin_ratio=WINDOW_MARGIN_RATIO
            )

    @classmethod
    def build(cls, settings: Settings, *, http: httpx.AsyncClient | None = None) -> Runtime:
        return cls(
            settings=settings,
            db=Database(settings.database_url),
            vault=vault_of(settings),
            http=http or httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0)),
        )

    async def close(self) -> None:
        await self.http.aclose()
        await self.limiter.close()
        await self.db.dispose()


def vault_of(settings: Settings) -> Vault:
    """The vault of GALLRA_ENCRYPTION_KEY (and _PREVIOUS during a rotation)."""
    previous = settings.encryption_key_previous
    return Vault(
        settings.encryption_key.get_secret_value(), previous.get_secret_value() if previous else None
    )
