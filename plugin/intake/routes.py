"""`POST /webhooks` (topic from the header) and one path per topic, as manifest.toml declares.

Order of checks: method (405, by the router), size (413, without reading past the limit),
signature (401, over the raw bytes, before any parsing), topic (404), body (400: it must fit the
topic, see `payloads`), then the durable write; 2xx only after the commit, 503 when the database
cannot take it. No network call and no read of the shop happen here: an `app/uninstalled` is
recorded as a claim that the clocks confirm later (`plugin.pipelines.uninstall`).
"""

from __future__ import annotations

import json
import logging

from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import State
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

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


class _Gone(Exception):
    """The client went away before its request was read: there is no one to answer."""


def _answer(status: int, reason: str, **extra: object) -> tuple[int, bytes]:
    # As Starlette's JSONResponse renders it.
    content = json.dumps({"status": reason, **extra}, ensure_ascii=False, separators=(",", ":"))
    return status, content.encode()


async def _respond(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")]
    if status == 503:
        headers.append((b"retry-after", b"5"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_limited(scope: Scope, receive: Receive, limit: int = MAX_BODY) -> bytes:
    """The body, or _TooLarge as soon as it is known to exceed `limit` (declared or streamed);
    _Gone when the client disconnects first."""
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            if value.isdigit() and int(value) > limit:
                raise _TooLarge
            break
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            raise _Gone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def check(
    runtime: Runtime, headers_raw: list[tuple[bytes, bytes]], body: bytes, topic: str | None
) -> Incoming | tuple[int, bytes]:
    """The delivery ready to be stored, or the answer (status, JSON body) that refuses it."""
    headers = WebhookHeaders.from_raw(headers_raw)
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
        return Incoming(
            topic=topic,
            shop=shop,
            headers=headers,
            body=body,
            request=new_request(topic, payload, shop, runtime.vault),
            uninstall=isinstance(payload, AppUninstalled),
        )
    except PayloadError as exc:
        return _answer(400, str(exc))


class WebhookEndpoint:
    """The ASGI endpoint of one webhook path (`topic` None: the topic comes from the header).

    Plain ASGI rather than a Starlette request handler: a delivery waits for its commit with
    everything the request handler holds (a `Request`, the wrappers' coroutines and closures),
    and what is still alive at a young-generation collection is moved to the oldest generation,
    whose collections walk the whole heap and stall the event loop. The fewer objects a waiting
    delivery keeps, the rarer those stalls: the checks run in a plain function (`check`), and
    only the delivery itself is kept while it waits (not the parsed body)."""

    def __init__(self, topic: str | None) -> None:
        self.topic = topic

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await read_limited(scope, receive)
        except _TooLarge:
            await _respond(send, *_answer(413, "body larger than 1 MiB"))
            return
        except _Gone:
            log.debug("client went away before its request was read")
            return
        state: State = scope["app"].state
        checked = check(state.runtime, scope["headers"], body, self.topic)
        if not isinstance(checked, Incoming):
            await _respond(send, *checked)
            return
        try:
            # Within the store's deadline: a database that hangs yields TimeoutError, not a hang.
            stored = await _store_in(state).submit(checked)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            # Not stored, so not acknowledged: Shopify retries. The error class only, no values.
            log.warning("could not store %s delivery: %s", checked.topic, type(exc).__name__)
            await _respond(send, *_answer(503, "storage unavailable, retry later"))
            return
        status = "duplicate" if stored.duplicate else "stored"
        await _respond(send, *_answer(200, status, request_id=stored.request_id))


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


def routes() -> list[BaseRoute]:
    found: list[BaseRoute] = [Route("/webhooks", WebhookEndpoint(None), methods=["POST"], name="webhooks")]
    for topic in sorted(TOPICS):
        found.append(
            Route(f"/webhooks/{topic}", WebhookEndpoint(topic), methods=["POST"], name=f"webhook:{topic}")
        )
    return found
