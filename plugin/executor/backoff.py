"""When a failed step is tried again: exponential backoff with jitter, never before Retry-After."""

from __future__ import annotations

import random
from datetime import datetime, timedelta


def retry_delay(attempt: int, *, base: float, cap: float, retry_after: float | None = None) -> float:
    """Seconds until attempt `attempt + 1`. "Equal jitter": half the exponential delay is fixed so a
    storm of failures spreads out without any retry coming back almost at once."""
    exponential = float(min(cap, base * 2.0 ** max(0, attempt - 1)))
    delay = exponential / 2 + random.uniform(0, exponential / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def next_attempt_at(
    now: datetime, attempt: int, *, base: float, cap: float, retry_after: float | None = None
) -> datetime:
    return now + timedelta(seconds=retry_delay(attempt, base=base, cap=cap, retry_after=retry_after))
