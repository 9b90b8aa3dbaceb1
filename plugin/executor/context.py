"""What every part of the executor is handed: the runtime, where data comes from, and its tuning."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from plugin.models import utcnow
from plugin.runtime import Runtime

if TYPE_CHECKING:
    from plugin.pipelines.sources import Sources


def worker_id() -> str:
    """Unique per worker, readable in the admin page: host, process and a random tail."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class WorkerConfig:
    owner: str = field(default_factory=worker_id)
    concurrency: int = 8  # claims in flight per worker (steps wait on provider rate limits)
    lease_seconds: float = 120.0  # renewed every third of it while a call runs
    poll_seconds: float = 5.0  # idle wait when nothing wakes the worker
    backoff_base: float = 30.0  # first retry after 15-30 s, doubling per attempt
    backoff_cap: float = 6 * 3600.0
    max_attempts: int = 8  # for planning a request; steps carry their own max_attempts
    # What time it is for claiming work and for time-gated decisions (a held shop/redact's 48 hours);
    # tests pass a fixed or advancing clock.
    clock: Callable[[], datetime] = field(default=utcnow)


@dataclass
class ExecContext:
    runtime: Runtime
    sources: Sources
    config: WorkerConfig
