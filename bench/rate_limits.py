"""What a provider call pays for its rate limit: `acquire` (a window that never binds, so the figure
is the bookkeeping alone) and a connection slot (enter and leave `pool`), per call, for the
in-process `RateLimiter` (the baseline) and the database-backed `SharedRateLimiter` on SQLite and
PostgreSQL. Klaviyo-like limits: a burst and a steady window on the call's scope.

    .venv/bin/python bench/rate_limits.py [--calls 500] [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.http import Limiter, RateLimit, RateLimiter
from bench.executor import drop_database, prepare_database
from plugin.rate_limits import SharedRateLimiter

LIMITS = (RateLimit(1_000_000, 1.0, "deletion"), RateLimit(10_000_000, 60.0, "deletion"))


async def per_call(limiter: Limiter, calls: int) -> tuple[float, float]:
    """Milliseconds per acquire and per pool slot, after a few warm-up calls."""
    for _ in range(5):
        await limiter.acquire("bench", "c", LIMITS, "deletion")
    started = time.perf_counter()
    for _ in range(calls):
        await limiter.acquire("bench", "c", LIMITS, "deletion")
    acquire = (time.perf_counter() - started) / calls * 1000
    started = time.perf_counter()
    for _ in range(calls):
        async with limiter.pool("bench", "c", 10):
            pass
    slot = (time.perf_counter() - started) / calls * 1000
    return acquire, slot


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    print(f"rate limiter cost, {args.calls} sequential calls each")
    acquire, slot = await per_call(RateLimiter(), args.calls)
    print(f"{'in-process (baseline)':<24} acquire {acquire:7.3f} ms/call   pool slot {slot:7.3f} ms/call")
    with tempfile.TemporaryDirectory() as tmp:
        for name, admin in (("shared, SQLite", None), ("shared, PostgreSQL", args.database_url)):
            url = await prepare_database(admin, Path(tmp))
            limiter = SharedRateLimiter(url)
            try:
                acquire, slot = await per_call(limiter, args.calls)
            finally:
                await limiter.close()
                await drop_database(admin, url)
            print(f"{name:<24} acquire {acquire:7.3f} ms/call   pool slot {slot:7.3f} ms/call")


if __name__ == "__main__":
    asyncio.run(main())
