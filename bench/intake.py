"""Intake benchmark: full webhook intake against a bare signature-only endpoint, same server, same run.

The app runs under uvicorn (uvloop, httptools, one process, no access log). wrk sends signed,
unique `customers/data_request` deliveries from 50 connections for ~10 s to the bare endpoint
(verify the HMAC, answer 200) and then to the real intake (verify, parse, store delivery + request
in one transaction, commit, answer 200). It prints requests/s, p50 and p99 for both and the ratios,
first on SQLite and then on PostgreSQL. Targets: full >= 0.5x the bare requests/s, p99 <= 4x.

    .venv/bin/python bench/intake.py [--seconds 10] [--connections 50] [--only sqlite|postgres]

Needs wrk (Debian: apt-get install -y wrk) and, for the second half, PostgreSQL at 127.0.0.1:5432.
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
from plugin.migrate import upgrade  # noqa: E402
from plugin.models import Request  # noqa: E402

SECRET = "bench-secret"  # noqa: S105  (a throwaway secret for a throwaway server)
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


def run_wrk(url: str, script: Path, deliveries: Path, seconds: int, connections: int, threads: int) -> Result:
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


def start_server(database_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SHOPIFY_API_KEY": "bench",
        "SHOPIFY_API_SECRET": SECRET,
        "GALLRA_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DATABASE_URL": database_url,
        "GALLRA_RUN_WORKERS": "false",
        "GALLRA_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "intake_server.py"), "--port", str(port)], env=env, cwd=ROOT
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.kill()
    raise RuntimeError("benchmark server did not become ready")


async def _count(database_url: str) -> int:
    db = Database(database_url)
    try:
        async with db.session() as session:
            return int((await session.execute(select(func.count()).select_from(Request))).scalar_one())
    finally:
        await db.dispose()


def bench_backend(name: str, database_url: str, args: argparse.Namespace, deliveries: Path) -> None:
    upgrade(database_url)
    port = free_port()
    server = start_server(database_url, port)
    script = ROOT / "bench" / "intake.lua"
    try:
        base = f"http://127.0.0.1:{port}"
        run_wrk(f"{base}/bench/bare", script, deliveries, 2, args.connections, args.threads)  # warm-up
        process = psutil.Process(server.pid)

        def measured(path: str) -> Result:
            load = os.getloadavg()[0]
            before = cpu_seconds(process)
            result = run_wrk(
                f"{base}{path}", script, deliveries, args.seconds, args.connections, args.threads
            )
            after = cpu_seconds(process)
            used = sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
            result.cpu_us = used / max(result.requests, 1) * 1e6
            result.load = load
            return result

        bare = measured("/bench/bare")
        full = measured("/webhooks/customers/data_request")
    finally:
        server.terminate()
        server.wait(timeout=30)
    stored = asyncio.run(_count(database_url))
    for label, result in (("bare (signature only)", bare), ("full intake", full)):
        print(
            f"{name:<8} {label:<22} {result.rps:>9.1f} req/s  p50 {result.p50_ms:>7.2f} ms  "
            f"p99 {result.p99_ms:>7.2f} ms  server CPU {result.cpu_us:>5.0f} us/req  "
            f"({result.requests} requests, {result.non_2xx} non-2xx, {result.errors} socket errors, "
            f"load {result.load:.1f} on {os.cpu_count()} CPUs)"
        )
    rps_ratio = full.rps / bare.rps
    p99_ratio = full.p99_ms / bare.p99_ms
    rps_verdict = "met" if rps_ratio >= 0.5 else "MISSED"
    p99_verdict = "met" if p99_ratio <= 4 else "MISSED"
    print(
        f"{name:<8} ratio full/bare: req/s {rps_ratio:.2f}x (target >= 0.5x: {rps_verdict}), "
        f"p99 {p99_ratio:.2f}x (target <= 4x: {p99_verdict}); "
        f"ledger holds {stored} requests for {full.requests} full-intake responses"
    )


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
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--deliveries", type=int, default=200_000)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/intake.py needs wrk: apt-get install -y wrk")
    print(
        f"intake benchmark: uvicorn (uvloop, httptools, 1 process), wrk {args.threads} threads, "
        f"{args.connections} connections, {args.seconds} s per endpoint, unique signed deliveries"
    )
    with tempfile.TemporaryDirectory(prefix="gallra-bench-") as tmp:
        deliveries = Path(tmp) / "deliveries.tsv"
        write_deliveries(deliveries, args.deliveries)
        if args.only in (None, "sqlite"):
            bench_backend("sqlite", f"sqlite+aiosqlite:///{tmp}/bench.db", args, deliveries)
        if args.only in (None, "postgres"):
            name = f"gallra_bench_{uuid.uuid4().hex[:8]}"
            asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
            try:
                bench_backend("postgres", f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}", args, deliveries)
            finally:
                asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
