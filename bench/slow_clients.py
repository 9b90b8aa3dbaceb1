"""Slow clients: genuine webhook deliveries under a flood of stalled sockets, against a baseline.

Starts the real `gallra serve` (the uvicorn configuration `plugin.http_server.uvicorn_config` builds) on
127.0.0.1 with a throwaway SQLite database, its open-file limit lowered to `--nofile` (256 is
macOS's default; the server needs a descriptor per socket), and measures, in one run:

1. baseline: `--deliveries` signed `customers/redact` deliveries, no flood;
2. flood: `--stalled` sockets that stall (a third send nothing, a third half their headers, a third
   their headers and a few bytes of a promised body), held open, then the same deliveries again;
3. how many of the stalled sockets the server had closed `--hold` seconds after they stalled.

    .venv/bin/python bench/slow_clients.py [--stalled 400] [--deliveries 30] [--nofile 256]

Loopback only; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from plugin.intake.signature import sign  # noqa: E402

SECRET = "bench-secret"  # noqa: S105  (a throwaway secret for a throwaway server)
SHOP = "bench.myshopify.com"
GALLRA = [sys.executable, "-c", "from plugin.cli import main; main()"]


@dataclass
class Outcome:
    sent: int
    answered_2xx: int
    p50_ms: float
    max_ms: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(workdir: Path, port: int, nofile: int) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GALLRA_", "SHOPIFY_"))},
        "PYTHONPATH": str(ROOT),
        "SHOPIFY_API_KEY": "bench",
        "SHOPIFY_API_SECRET": SECRET,
        "GALLRA_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/gallra.db",
        "GALLRA_RUN_WORKERS": "0",
        "GALLRA_LOG_LEVEL": "WARNING",
    }

    def limit_files() -> None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))

    log = (workdir / "serve.log").open("wb")
    server = subprocess.Popen(
        [*GALLRA, "serve", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=limit_files,  # no threads in this process yet
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
        if server.poll() is not None:
            break
    server.kill()
    raise SystemExit("the server did not start:\n" + (workdir / "serve.log").read_text())


def delivery(n: int) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "shop_id": 1,
            "shop_domain": SHOP,
            "customer": {"id": 1000 + n, "email": f"c{n}@example.com", "phone": None},
            "orders_to_redact": [],
        },
        separators=(",", ":"),
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "customers/redact",
        "X-Shopify-Hmac-Sha256": sign(body, SECRET),
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
    }
    return body, headers


async def deliver(port: int, count: int, first: int) -> Outcome:
    """`count` deliveries, ten at a time, each on a new connection as Shopify's are; 5 s each."""
    url = f"http://127.0.0.1:{port}/webhooks/customers/redact"
    latencies: list[float] = []
    answered = 0
    gate = asyncio.Semaphore(10)
    # One client, no connection kept: a new connection per delivery without a new client's
    # set-up (its TLS context alone costs more than the delivery) in the figures.
    no_reuse = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=1.0), limits=no_reuse) as client:

        async def one(n: int) -> None:
            nonlocal answered
            body, headers = delivery(n)
            async with gate:
                started = time.perf_counter()
                try:
                    response = await client.post(url, content=body, headers=headers)
                except httpx.TransportError:
                    return
                latencies.append((time.perf_counter() - started) * 1000)
                answered += 200 <= response.status_code < 300

        await asyncio.gather(*(one(first + n) for n in range(count)))
    return Outcome(
        count,
        answered,
        statistics.median(latencies) if latencies else float("nan"),
        max(latencies, default=float("nan")),
    )


STALLS = (
    b"",
    b"POST /webhooks/customers/redact HTTP/1.1\r\nHost: 127.0.0.1\r\n",
    b"POST /webhooks/customers/redact HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b'Content-Length: 1000\r\n\r\n{"shop_id":',
)


def open_stalled(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for n in range(count):
        sock = socket.socket()
        sock.settimeout(2)
        try:
            sock.connect(("127.0.0.1", port))
            if STALLS[n % 3]:
                sock.sendall(STALLS[n % 3])
        except OSError:
            sock.close()
            continue
        sockets.append(sock)
    return sockets


def closed_by_server(sockets: list[socket.socket]) -> int:
    closed = 0
    for sock in sockets:
        sock.setblocking(False)
        try:
            sock.recv(65536)
        except BlockingIOError:
            continue  # open and silent: still held
        except OSError:
            pass  # reset
        closed += 1  # end of file, a reset, or an answer: the server is done with it
    return closed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stalled", type=int, default=400)
    parser.add_argument("--deliveries", type=int, default=30)
    parser.add_argument("--nofile", type=int, default=256)
    parser.add_argument("--hold", type=float, default=7.0, help="seconds the stalled sockets are held")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = start_server(Path(tmp), port, args.nofile)
        try:
            baseline = asyncio.run(deliver(port, args.deliveries, 0))
            started = time.monotonic()
            stalled = open_stalled(port, args.stalled)
            flooded = asyncio.run(deliver(port, args.deliveries, args.deliveries))
            time.sleep(max(0.0, args.hold - (time.monotonic() - started)))
            closed = closed_by_server(stalled)
            for sock in stalled:
                sock.close()
            after = asyncio.run(deliver(port, args.deliveries, 2 * args.deliveries))
        finally:
            server.terminate()
            server.wait(timeout=30)
        log = (Path(tmp) / "serve.log").read_text(errors="replace")
        if os.environ.get("SLOW_CLIENTS_LOG"):
            Path(os.environ["SLOW_CLIENTS_LOG"]).write_text(log)
    print(f"server open-file limit {args.nofile}; {len(stalled)} of {args.stalled} stalled sockets connected")
    print(f"{'run':<28}{'answered 2xx':>14}{'p50 ms':>10}{'max ms':>10}")
    for name, outcome in (("baseline (no flood)", baseline), ("under the flood", flooded), ("after", after)):
        print(
            f"{name:<28}{f'{outcome.answered_2xx}/{outcome.sent}':>14}"
            f"{outcome.p50_ms:>10.1f}{outcome.max_ms:>10.1f}"
        )
    print(f"stalled sockets closed by the server within {args.hold:.0f} s: {closed}/{len(stalled)}")
    print(f"server log: {len(log.splitlines())} lines, {log.count('Traceback')} tracebacks")


if __name__ == "__main__":
    main()
