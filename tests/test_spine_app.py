"""The app factory: lifespan, routes from ROUTE_MODULES, the manifest's webhook paths, health checks."""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from starlette.routing import Route

from plugin.app import ROUTE_MODULES, create_app
from plugin.runtime import Runtime
from tests.conftest import make_settings, serving

ROOT = Path(__file__).resolve().parent.parent


def test_manifest_webhook_paths_are_served() -> None:
    manifest = tomllib.loads((ROOT / "manifest.toml").read_text())
    declared = {sub["uri"] for sub in manifest["webhooks"]["subscriptions"]}
    app = create_app(settings=make_settings())
    served = {r.path: r.methods for r in app.routes if isinstance(r, Route)}
    assert "plugin.intake.routes" in ROUTE_MODULES
    for uri in declared | {"/webhooks"}:
        assert uri in served and "POST" in (served[uri] or set()), uri


async def test_lifespan_builds_and_closes_its_runtime(fresh_sqlite_url: str) -> None:
    url = fresh_sqlite_url
    app = create_app(settings=make_settings(url))
    async with serving(app) as client:
        runtime = app.state.runtime
        assert isinstance(runtime, Runtime) and runtime.settings.database_url == url
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).json() == {"status": "ready"}
        assert (await client.post("/webhooks/shop/redact", content=b"{}")).status_code == 401
    assert runtime.http.is_closed


async def test_lifespan_enters_the_clocks_when_workers_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def background(runtime: Runtime) -> AsyncIterator[None]:
        events.append(f"start {type(runtime).__name__}")
        yield
        events.append("stop")

    monkeypatch.setattr("plugin.app.background", background)
    url = f"sqlite+aiosqlite:///{tmp_path}/app.db"
    async with serving(create_app(settings=make_settings(url, run_workers=True))) as client:
        assert events == ["start Runtime"]
        assert (await client.get("/healthz")).status_code == 200
    assert events == ["start Runtime", "stop"]
    events.clear()
    async with serving(create_app(settings=make_settings(url, run_workers=False))):
        pass
    assert events == []


async def test_given_runtime_is_used_and_left_open(fresh_sqlite_url: str) -> None:
    url = fresh_sqlite_url
    runtime = Runtime.build(make_settings(url))
    app = create_app(runtime)
    assert app.state.runtime is runtime
    async with serving(app) as client:
        assert (await client.get("/readyz")).status_code == 200
    assert not runtime.http.is_closed
    await runtime.close()
