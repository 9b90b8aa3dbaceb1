"""The ASGI application: routes from each stage, health checks, and the process lifespan.

Stages contribute routes through `ROUTE_MODULES`: each module exposes `routes() -> list[BaseRoute]`.
The shared `Runtime` is at `request.app.state.runtime`.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from plugin.clocks import background
from plugin.intake.routes import WebhookEndpoint
from plugin.intake.routes import close as close_intake
from plugin.intake.routes import start as start_intake
from plugin.logs import AccessLog, access_log
from plugin.runtime import Runtime
from plugin.settings import Settings, load_settings

log = logging.getLogger("gallra.app")

# Modules exposing `routes() -> list[BaseRoute]`; each stage appends its own.
ROUTE_MODULES: list[str] = [
    "plugin.intake.routes",
    "plugin.admin.routes",
    "plugin.shopify.routes",
]

READY_TIMEOUT = 2.0


async def healthz(_request: Request) -> JSONResponse:
    """The process is up; says nothing about the database (that is /readyz)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    try:
        async with asyncio.timeout(READY_TIMEOUT), runtime.db.session() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready"; the class name is safe to show
        log.warning("readiness check failed: %s", type(exc).__name__)
        return JSONResponse({"status": "database unavailable"}, status_code=503)
    return JSONResponse({"status": "ready"})


def collect_routes() -> list[BaseRoute]:
    found: list[BaseRoute] = [Route("/healthz", healthz), Route("/readyz", readyz)]
    for name in ROUTE_MODULES:
        found.extend(importlib.import_module(name).routes())
    return found


class App(Starlette):
    """Starlette, with webhook deliveries (a POST to one of intake's paths) handed straight to
    intake's endpoint, access-logged like every request, instead of through the middleware stack
    and router.

    Each layer of the stack keeps a coroutine and closures alive for as long as the delivery waits
    for its commit, and the garbage collector moves whatever is alive at a young-generation
    collection to the oldest generation; its collections, which walk the whole heap and stall
    every request, came the more often the more a waiting delivery held (see
    `plugin.intake.routes.WebhookEndpoint`). Nothing else differs for a delivery: intake handles
    its own errors (an unexpected one still reaches the server, which answers 500), and any other
    method or path goes through the router as before (405, 404)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._webhooks: dict[str, tuple[Route, WebhookEndpoint, AccessLog]] = {}
        for route in self.routes:
            if isinstance(route, Route) and isinstance(endpoint := route.endpoint, WebhookEndpoint):
                self._webhooks[route.path] = (route, endpoint, AccessLog(endpoint))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            found = self._webhooks.get(scope["path"])
            if found is not None:
                scope["app"] = self
                scope["route"], endpoint, logged = found
                if access_log.isEnabledFor(logging.INFO):
                    await logged(scope, receive, send)
                else:
                    await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(runtime: Runtime | None = None, settings: Settings | None = None) -> Starlette:
    """The app. Given a runtime (tests), it is used and left open; otherwise the lifespan builds one
    from `settings` (or the environment) and closes it on shutdown."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            current: Runtime | None = getattr(app.state, "runtime", None)
            if current is None:
                current = Runtime.build(settings or load_settings())
                stack.push_async_callback(current.close)
                app.state.runtime = current
            stack.push_async_callback(close_intake, app.state)
            await start_intake(app.state)
            if current.settings.run_workers:
                await stack.enter_async_context(background(current))
            yield

    app = App(routes=collect_routes(), lifespan=lifespan, middleware=[Middleware(AccessLog)])
    if runtime is not None:
        app.state.runtime = runtime
    return app
