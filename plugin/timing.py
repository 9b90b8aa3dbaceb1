"""The clock that pacing and back-off wait on.

Whatever waits for time to pass (Shopify's cost bucket, its Retry-After pauses) takes a `Clock`
from the process's `Runtime` instead of calling `time`/`asyncio` itself, so a test can hand in a
clock whose `sleep` moves time forward at once. Production always runs on `SYSTEM_CLOCK`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final, Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going backwards."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once `seconds` have passed on this clock."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK: Final = SystemClock()
