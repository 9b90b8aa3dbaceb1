"""`POST /webhooks` (topic from the header) and one path per topic, as manifest.toml declares.

Order of checks: method (405, by the router), size (413, without reading past the limit),
signature (401, over the raw bytes, before any parsing), topic (404), body (400: it must fit the
topic, see `payloads`), then the durable write; 2xx only after the commit, 503 when the database
cannot take it. No network call and no read of the shop happen here: an `app/uninstalled` is
recorded as a claim that the clocks confirm later (`plugin.pipelines.uninstall`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from plugin.intake.batch import Incoming
from plugin.intake.headers import WebhookHeaders
from plugin.intake.mapping import new_request, shop_domain_of
from plugin.intake.payloads import TOPICS, AppUninstalled, PayloadError, parse
from plugin.intake.signature import verify
from plugin.intake.store import IntakeStore
from plugin.runtime import Runtime

log = logging.getLogger("gallra.intake")

MAX_BODY = 1024 * 1024
# Longest header values the delivery columns hold.
_HEADER_LIMITS = {"webhook_id": 255, "event_id": 255, "api_version": 32, "triggered_at": 64}


class _TooLarge(Exception):
    pass


def _answer(status: int, reason: str, **extra: object) -> JSONResponse:
    headers = {"Retry-After": "5"} if status == 503 else None
    return JSONResponse({"status": reason, **extra}, status_code=status, headers=headers)


async def read_limited(request: Request, limit: int = MAX_BODY) -> bytes:
    """The body, or _TooLarge as soon as it is known to exceed `limit` (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def receive(request: Request, topic: str | None) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    try:
        body = await read_limited(request)
    except _TooLarge:
        return _answer(413, "body larger than 1 MiB")
    headers = WebhookHeaders.read(request.headers)
    if not verify(body, headers.signature, runtime.settings.webhook_secrets()):
        return _answer(401, "signature missing or invalid")
    if topic is None:
        topic = headers.topic
    elif headers.topic is not None and headers.topic != topic:
        return _answer(400, "topic header does not match the path")
    if topic not in TOPICS:
        return _answer(404, "unknown topic")
    for name, limit in _HEADER_LIMITS.items():
        value = getattr(headers, name)
        if value is not None and len(value) > limit:
            return _answer(400, f"{name.replace('_', '-')} header too long")
    try:
        payload = parse(topic, body)
        # The shop and the request come from the signed body only; the headers are not signed
        # (but for the shop of `customers/merge`, whose body names none: see `shop_domain_of`).
        shop = shop_domain_of(payload, headers.shop_domain)
        incoming = Incoming(
            topic=topic,
            shop=shop,
            headers=headers,
            body=body,
            request=new_request(topic, payload, shop, runtime.vault),
            uninstall=isinstance(payload, AppUninstalled),
        )
    except PayloadError as exc:
        return _answer(400, str(exc))
    try:
        # Within the store's deadline: a database that hangs yields TimeoutError, not a hang.
        stored = await _store_in(request.app.state).submit(incoming)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        # Not stored, so not acknowledged: Shopify retries. The error class only, no values.
        log.warning("could not store %s delivery: %s", topic, type(exc).__name__)
        return _answer(503, "storage unavailable, retry later")
    return _answer(200, "duplicate" if stored.duplicate else "stored", request_id=stored.request_id)


def _store_in(state: State) -> IntakeStore:
    # One per app (and so per process and runtime), made by `start` or on first use.
    store: IntakeStore | None = getattr(state, "intake_store", None)
    if store is None:
        store = state.intake_store = IntakeStore(state.runtime)
    return store


async def start(state: State) -> None:
    """Get intake ready before the first delivery (called by the app on start-up)."""
    await _store_in(state).start()


async def close(state: State) -> None:
    """Finish pending writes and close intake's own connections (called by the app on shutdown)."""
    store: IntakeStore | None = getattr(state, "intake_store", None)
    if store is not None:
        await store.close()


async def webhooks(request: Request) -> JSONResponse:
    return await receive(request, None)


def _topic_endpoint(topic: str) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def endpoint(request: Request) -> JSONResponse:
        return await receive(request, topic)

    return endpoint


def routes() -> list[BaseRoute]:
    found: list[BaseRoute] = [Route("/webhooks", webhooks, methods=["POST"], name="webhooks")]
    for topic in sorted(TOPICS):
        found.append(
            Route(f"/webhooks/{topic}", _topic_endpoint(topic), methods=["POST"], name=f"webhook:{topic}")
        )
    return found
