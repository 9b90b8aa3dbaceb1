"""Benchmark: stream and join a 1,000,000-line bulk-operation result (orders with fulfillment
children carrying `__parentId`) with `plugin.shopify.bulk`, beside a naive reader in the same run.

    .venv/bin/python bench/bulk_stream.py [--lines 1000000] [--children 3] [--skip-baseline]

- streamed: `stream_jsonl` (httpx, line by line) → `join_children` → `order_from_bulk` records;
- baseline: download the whole body, `splitlines`, `json.loads` every line, join in a dict.
Each runs in its own process against a static HTTP server in a third process, so each peak RSS is
that reader's own. Target: streamed peak RSS < 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_jsonl(path: Path, lines: int, children: int) -> int:
    """Orders, each followed by `children` fulfillment lines with tracking (grouped output)."""
    start = datetime(2015, 1, 1, tzinfo=UTC)
    written = 0
    order = 0
    with path.open("w") as out:
        while written < lines:
            order += 1
            created = (start + timedelta(minutes=7 * order)).strftime("%Y-%m-%dT%H:%M:%SZ")
            order_gid = f"gid://shopify/Order/{5_000_000 + order}"
            out.write(
                json.dumps(
                    {
                        "id": order_gid,
                        "name": f"#{1000 + order}",
                        "createdAt": created,
                        "processedAt": created,
                        "closedAt": created,
                        "cancelledAt": None,
                        "customer": {"id": f"gid://shopify/Customer/{order % 90_000 + 1}"},
                        "shippingAddress": {"countryCodeV2": "SE"},
                        "fulfillments": [],
                    },
                    separators=(",", ":"),
                )
                + "\n"
            )
            written += 1
            for child in range(min(children, lines - written)):
                out.write(
                    json.dumps(
                        {
                            "id": f"gid://shopify/Fulfillment/{9_000_000 + order * 10 + child}",
                            "status": "SUCCESS",
                            "createdAt": created,
                            "deliveredAt": created,
                            "trackingInfo": [
                                {"company": "PostNord", "number": f"RR{order:09d}{child}SE", "url": None}
                            ],
                            "__parentId": order_gid,
                        },
                        separators=(",", ":"),
                    )
                    + "\n"
                )
                written += 1
    return order


async def streamed(url: str) -> tuple[int, int]:
    import httpx

    from plugin.shopify.bulk import join_children, order_from_bulk, stream_jsonl

    orders = fulfillments = 0
    async with httpx.AsyncClient() as http:
        async for node in join_children(stream_jsonl(http, url)):
            record = order_from_bulk(node)
            orders += 1
            fulfillments += len(record.fulfillments)
    return orders, fulfillments


async def naive(url: str) -> tuple[int, int]:
    import httpx

    from plugin.shopify.operations import parse_order

    async with httpx.AsyncClient(timeout=120) as http:
        body = (await http.get(url)).text
    objects = [json.loads(line) for line in body.splitlines() if line]
    children: dict[str, list[dict[str, object]]] = {}
    roots = []
    for obj in objects:
        parent = obj.pop("__parentId", None)
        if parent is None:
            roots.append(obj)
        else:
            children.setdefault(str(parent), []).append(obj)
    records = [parse_order(root, children.get(str(root["id"]), [])) for root in roots]
    return len(records), sum(len(r.fulfillments) for r in records)


def measure(mode: str, url: str) -> None:
    started, cpu = time.perf_counter(), time.process_time()
    orders, fulfillments = asyncio.run(streamed(url) if mode == "streamed" else naive(url))
    wall, cpu_used = time.perf_counter() - started, time.process_time() - cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "orders": orders,
                "fulfillments": fulfillments,
                "wall": wall,
                "cpu": cpu_used,
                "peak_mb": peak_mb,
            }
        )
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--children", type=int, default=3)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--measure", choices=["streamed", "naive"])
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.url)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bulk.jsonl"
        orders = write_jsonl(path, args.lines, args.children)
        size_mb = path.stat().st_size / 1e6
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", tmp],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.0)
            url = f"http://127.0.0.1:{port}/bulk.jsonl"
            print(
                f"bulk stream: {args.lines:,} JSONL lines ({orders:,} orders + fulfillment children), "
                f"{size_mb:.0f} MB"
            )
            modes = ["streamed"] if args.skip_baseline else ["streamed", "naive"]
            for mode in modes:
                out = subprocess.run(
                    [sys.executable, __file__, "--measure", mode, "--url", url],
                    capture_output=True,
                    text=True,
                    check=True,
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                ).stdout
                r = json.loads(out.strip().splitlines()[-1])
                label = (
                    "streamed (plugin.shopify.bulk)"
                    if mode == "streamed"
                    else "baseline (read all, then join)"
                )
                print(
                    f"{label:32s} {args.lines / r['wall']:>10,.0f} lines/s  wall {r['wall']:.1f}s  "
                    f"cpu {r['cpu']:.1f}s  peak RSS {r['peak_mb']:.0f} MB  orders {r['orders']:,}  "
                    f"fulfillments {r['fulfillments']:,}"
                )
                if mode == "streamed":
                    verdict = "OK" if r["peak_mb"] < 150 else "OVER TARGET"
                    print(f"{'':32s} target peak RSS < 150 MB: {verdict}")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
