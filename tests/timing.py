"""A clock for tests that never waits: real time plus every `sleep` skipped.

`plugin.timing.Clock` for the `Runtime` (Shopify's cost bucket and Retry-After pauses), and
`time()` for the Shopify fake's own bucket and token expiry, so Gallra and the fake agree on how
much time has passed. A `sleep` moves the clock forward at once and lets other tasks run."""

from __future__ import annotations

import asyncio
import time


class SkippingClock:
    def __init__(self) -> None:
        self.skipped = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return time.monotonic() + self.skipped

    def time(self) -> float:
        """Epoch seconds on the same clock."""
        return time.time() + self.skipped

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.skipped += max(0.0, seconds)
        await asyncio.sleep(0)
