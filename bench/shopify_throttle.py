"""Benchmark: Shopify's cost bucket. 2,000 queries of cost 10 against the Shopify fake with the
documented Standard restore rate (100 points/s, read from the responses; bucket 2,000 points), sent
by 4 concurrent workers sharing one shop, in real time.

    .venv/bin/python bench/shopify_throttle.py [--queries 2000] [--workers 4]

- paced: `AdminClient` with its per-shop leaky bucket (`plugin.cost_throttle`);
- baseline (same run, another shop on the same fake): the same client without pacing, reacting
  only to THROTTLED answers (wait ceil((cost - available) / restore) and retry) as spylib does.
Printed: THROTTLED answers (target 0) and achieved points/s as a fraction of the restore rate
(target >= 0.9). The bucket starts full, so the first 2,000 points are free of pacing; the
"sustained" figure leaves them out: (points - initial bucket) / seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from plugin.cost_throttle import CostThrottle, Reservation  # noqa: E402
from plugin.shopify.client import AdminClient  # noqa: E402
from tests.conftest import make_settings  # noqa: E402
from tests.fakes.shopify import ShopifyFake  # noqa: E402

QUERY = "query Cost10 { orders(first: 8) { nodes { id } } }"  # 2 + 8 × 1 = 10 points


class NoPacing(CostThrottle):
    """Sends at once; still learns the bucket from responses so THROTTLED waits are right."""

    async def acquire(self, document: str) -> Reservation:
        return Reservation(0.0)


async def run(
    fake: ShopifyFake, shop: str, http: httpx.AsyncClient, throttle: CostThrottle, queries: int, workers: int
) -> dict[str, float]:
    # Many attempts: a reactive client's workers can lose the race for refilled points many times over.
    client = AdminClient(http, make_settings(), shop, "shpat_test", throttle=throttle, max_attempts=10_000)
    remaining = queries
    points = 0.0

    async def worker() -> None:
        nonlocal remaining, points
        while remaining > 0:
            remaining -= 1
            await client.execute(QUERY)
            points += 10

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(workers)))
    elapsed = time.monotonic() - started
    bucket = fake.shops[shop].bucket
    return {
        "elapsed": elapsed,
        "points": points,
        "throttled": float(client.throttled),
        "restore": bucket.restore_rate,
        "maximum": bucket.maximum,
    }


def report(label: str, r: dict[str, float]) -> None:
    rate = r["points"] / r["elapsed"]
    sustained = (r["points"] - r["maximum"]) / r["elapsed"]
    print(
        f"{label:9s} THROTTLED {int(r['throttled']):5d}   {r['points']:,.0f} points in {r['elapsed']:.1f}s = "
        f"{rate:.1f} pts/s ({rate / r['restore']:.2f}x restore)   sustained beyond the initial bucket "
        f"{sustained:.1f} pts/s = {sustained / r['restore']:.2f}x restore rate"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    fake = ShopifyFake()
    paced_shop, naive_shop = "paced.myshopify.com", "baseline.myshopify.com"
    for shop in (paced_shop, naive_shop):
        fake.add_shop(shop)  # Bucket(): 2,000 points, restore 100 points/s
    print(
        f"shopify throttle: {args.queries:,} queries of cost 10, {args.workers} workers per shop, "
        f"bucket {fake.shops[paced_shop].bucket.maximum:.0f} points, "
        f"restore {fake.shops[paced_shop].bucket.restore_rate:.0f} pts/s"
    )
    with fake.mocked():
        async with httpx.AsyncClient() as http:
            jobs = [run(fake, paced_shop, http, CostThrottle(), args.queries, args.workers)]
            if not args.skip_baseline:
                jobs.append(run(fake, naive_shop, http, NoPacing(), args.queries, args.workers))
            results = await asyncio.gather(*jobs)
    report("paced", results[0])
    if not args.skip_baseline:
        report("baseline", results[1])
    paced = results[0]
    ok = (
        paced["throttled"] == 0
        and (paced["points"] - paced["maximum"]) / paced["elapsed"] >= 0.9 * paced["restore"]
    )
    print(f"{'':9s} targets (THROTTLED 0, >= 0.9x restore rate): {'OK' if ok else 'MISSED'}")


if __name__ == "__main__":
    asyncio.run(main())
