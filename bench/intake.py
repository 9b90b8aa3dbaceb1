"""Intake benchmark: the real `gallra serve` against the official Shopify Node library's webhook
validation (the peer in ../shared/peers/shopify-node), same wrk settings, alternating runs.

`gallra serve` runs as shipped (uvicorn, one process, workers off: GALLRA_RUN_WORKERS=false) and
stores every delivery before it answers: verify, parse, write the delivery and its ledger request,
commit, 200. The peer (Node's http module + `@shopify/shopify-api` `webhooks.validate`) only
validates and stores nothing. wrk sends signed, unique `customers/data_request` deliveries from 50
connections; the two servers take turns (gallra, peer, gallra, peer, ...) so that the machine's
other load falls on both alike. It prints each run, the medians and the ratios, first on SQLite and
then on PostgreSQL. Bars: gallra >= 1.0x the peer's requests/s, p99 <= 2x the peer's p99, and no
delivery answered 2xx without a stored row (the deliveries table is counted after the runs).

    .venv/bin/python bench/intake.py [--seconds 10] [--rounds 3] [--only sqlite|postgres]

Needs wrk (Debian: apt-get install -y wrk), Node.js and npm (the peer is copied to a temporary
folder and installed there from its lock file), and for the second half PostgreSQL at
127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from plugin.db import Database  # noqa: E402
from plugin.intake.signature import sign  # noqa: E402
from plugin.models import Delivery  # noqa: E402

SECRET = "bench-secret"  # noqa: S105  (a throwaway secret for a throwaway server)
PEER = ROOT.parent / "shared" / "peers" / "shopify-node"
PG_ADMIN = os.environ.get("GALLRA_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
SHOP = "bench.myshopify.com"
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int
    cpu_us: float = 0.0  # server CPU (all threads, and the processes it started) per request
    load: float = 0.0  # the machine's 1-minute load average as the run started (others' work too)


def write_deliveries(path: Path, count: int) -> None:
    """Unique, signed deliveries: every one is a new ledger request (no duplicate shortcuts)."""
    with path.open("w") as out:
        for n in range(count):
            body = json.dumps(
                {
                    "shop_id": 954889,
                    "shop_domain": SHOP,
                    "orders_requested": [299938 + n, 280263],
                    "customer": {"id": 191167 + n, "email": f"c{n}@example.com", "phone": "555-625-1199"},
                    "data_request": {"id": n + 1},
                },
                separators=(",", ":"),
            )
            out.write(f"{body}\t{sign(body.encode(), SECRET)}\t{uuid.uuid4()}\n")


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value.strip())
    if match is None:
        raise RuntimeError(f"unexpected wrk latency {value!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def parse_wrk(output: str) -> Result:
    def find(pattern: str, default: str | None = None) -> str:
        match = re.search(pattern, output)
        if match is None:
            if default is None:
                raise RuntimeError(f"unexpected wrk output:\n{output}")
            return default
        return match.group(1)

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return Result(
        rps=float(find(r"Requests/sec:\s+([\d.]+)")),
        # Anchored to the start of a line: the thread stats' "+/- Stdev" column also ends in "%"
        # (e.g. "68.50%"), and an unanchored "50%" matched it.
        p50_ms=_ms(find(r"(?m)^\s*50%\s+(\S+)")),
        p99_ms=_ms(find(r"(?m)^\s*99%\s+(\S+)")),
        requests=int(find(r"(\d+) requests in")),
        non_2xx=int(find(r"Non-2xx or 3xx responses: (\d+)", "0")),
        errors=sum(int(g) for g in errors.groups()) if errors else 0,
    )


def run_wrk(
    url: str, script: Path, deliveries: Path, seconds: int, connections: int, threads: int, offset: int = 0
) -> Result:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
        "--",
        str(deliveries),
        str(threads),
        str(offset),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    return parse_wrk(output)


def cpu_seconds(server: psutil.Process) -> dict[int, float]:
    """CPU time so far of the server and of each process it started (intake's SQLite writer)."""
    found = {}
    for process in [server, *server.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        found[process.pid] = times.user + times.system
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, server: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"{what} exited with {server.returncode} before it was ready")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"{what} did not become ready")


def start_gallra(database_url: str, port: int) -> subprocess.Popen[bytes]:
    """`gallra serve`, exactly as shipped; migrating on start is part of it."""
    env = {
        **os.environ,
        "SHOPIFY_API_KEY": "bench",
        "SHOPIFY_API_SECRET": SECRET,
        "GALLRA_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DATABASE_URL": database_url,
        "GALLRA_RUN_WORKERS": "false",
        "GALLRA_LOG_LEVEL": "WARNING",
    }
    gallra = Path(sys.executable).parent / "gallra"
    command = [str(gallra), "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    wait_ready(f"http://127.0.0.1:{port}/readyz", server, "gallra serve")
    return server


def install_peer(folder: Path) -> Path:
    """The peer is shared read-only: copy it and install its locked dependencies there."""
    if not (PEER / "server.mjs").exists():
        sys.exit(f"bench/intake.py: the peer is not at {PEER}")
    target = folder / "shopify-node"
    shutil.copytree(PEER, target, ignore=shutil.ignore_patterns("node_modules"))
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=target,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=600,
    )
    return target


def start_peer(folder: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SECRET": SECRET, "PORT": str(port), "MODE": "library"}
    server = subprocess.Popen(["node", "server.mjs"], env=env, cwd=folder, stdout=subprocess.DEVNULL)
    wait_ready(f"http://127.0.0.1:{port}/", server, "the peer")
    return server


async def _count(database_url: str) -> int:
    db = Database(database_url)
    try:
        async with db.session() as session:
            return int((await session.execute(select(func.count()).select_from(Delivery))).scalar_one())
    finally:
        await db.dispose()


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def show(name: str, label: str, result: Result) -> None:
    print(
        f"{name:<8} {label:<7} {result.rps:>9.1f} req/s  p50 {result.p50_ms:>7.2f} ms  "
        f"p99 {result.p99_ms:>7.2f} ms  server CPU {result.cpu_us:>5.0f} us/req  "
        f"({result.requests} requests, {result.non_2xx} non-2xx, {result.errors} socket errors, "
        f"load {result.load:.1f} on {os.cpu_count()} CPUs)",
        flush=True,
    )


def bench_backend(
    name: str, database_url: str, args: argparse.Namespace, deliveries: Path, peer_folder: Path
) -> bool:
    gallra_port, peer_port = free_port(), free_port()
    gallra = start_gallra(database_url, gallra_port)
    peer = start_peer(peer_folder, peer_port)
    script = ROOT / "bench" / "intake.lua"
    urls = {
        "gallra": f"http://127.0.0.1:{gallra_port}/webhooks",
        "peer": f"http://127.0.0.1:{peer_port}/webhooks",
    }
    processes = {"gallra": psutil.Process(gallra.pid), "peer": psutil.Process(peer.pid)}
    runs: dict[str, list[Result]] = {"gallra": [], "peer": []}
    answered_2xx = 0
    try:
        offset = 0  # every run sends deliveries no run sent before (see bench/intake.lua)

        def run(url: str, seconds: int) -> Result:
            nonlocal offset
            result = run_wrk(url, script, deliveries, seconds, args.connections, args.threads, offset)
            # Requests still in flight when wrk stopped are not counted but were taken.
            offset += result.requests + 2 * args.connections
            if offset >= args.deliveries:
                sys.exit("bench/intake.py: the deliveries ran out; raise --deliveries")
            return result

        for label, url in urls.items():  # warm-up: imports, JIT, connection pools
            warm = run(url, 2)
            if label == "gallra":
                answered_2xx += warm.requests - warm.non_2xx
        for _ in range(args.rounds):
            for label, url in urls.items():
                load = os.getloadavg()[0]
                before = cpu_seconds(processes[label])
                result = run(url, args.seconds)
                after = cpu_seconds(processes[label])
                used = sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
                result.cpu_us = used / max(result.requests, 1) * 1e6
                result.load = load
                runs[label].append(result)
                if label == "gallra":
                    answered_2xx += result.requests - result.non_2xx
                show(name, label, result)
    finally:
        for server in (gallra, peer):
            server.terminate()
            server.wait(timeout=30)
    stored = asyncio.run(_count(database_url))
    rps = {label: median([r.rps for r in results]) for label, results in runs.items()}
    p99 = {label: median([r.p99_ms for r in results]) for label, results in runs.items()}
    rps_ratio, p99_ratio = rps["gallra"] / rps["peer"], p99["gallra"] / p99["peer"]
    # wrk does not count responses still in flight when it stops, so the server may hold more
    # rows than wrk saw 2xx answers; never fewer.
    unstored = max(0, answered_2xx - stored)
    met = rps_ratio >= 1.0 and p99_ratio <= 2.0 and unstored == 0
    print(
        f"{name:<8} medians of {args.rounds}: gallra {rps['gallra']:.0f} req/s p99 {p99['gallra']:.1f} ms, "
        f"peer {rps['peer']:.0f} req/s p99 {p99['peer']:.1f} ms"
    )
    print(
        f"{name:<8} gallra/peer: req/s {rps_ratio:.2f}x "
        f"(bar >= 1.0x: {'met' if rps_ratio >= 1.0 else 'MISSED'}), "
        f"p99 {p99_ratio:.2f}x (bar <= 2x: {'met' if p99_ratio <= 2.0 else 'MISSED'}); "
        f"{answered_2xx} deliveries answered 2xx, {stored} stored, {unstored} answered without a stored row "
        f"({'met' if unstored == 0 else 'MISSED'})",
        flush=True,
    )
    return met


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    for tool in ("wrk", "node", "npm"):
        if shutil.which(tool) is None:
            sys.exit(f"bench/intake.py needs {tool}")
    print(
        f"intake benchmark: gallra serve (1 process, workers off) vs shopify-node peer (library mode), "
        f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s, {args.rounds} alternating rounds, "
        f"unique signed deliveries",
        flush=True,
    )
    met = True
    with tempfile.TemporaryDirectory(prefix="gallra-bench-") as tmp:
        peer_folder = install_peer(Path(tmp))
        deliveries = Path(tmp) / "deliveries.tsv"
        write_deliveries(deliveries, args.deliveries)
        if args.only in (None, "sqlite"):
            met &= bench_backend(
                "sqlite", f"sqlite+aiosqlite:///{tmp}/bench.db", args, deliveries, peer_folder
            )
        if args.only in (None, "postgres"):
            name = f"gallra_bench_{uuid.uuid4().hex[:8]}"
            asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
            try:
                url = f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
                met &= bench_backend("postgres", url, args, deliveries, peer_folder)
            finally:
                asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(f"intake bars: {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
