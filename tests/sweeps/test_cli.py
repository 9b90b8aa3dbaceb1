"""`gallra sweep`: the summary (and --json) of the twelve-year test shop, with the real retention
planner and the shop's stored policy; the Shopify stream is the test shop's records."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from plugin.db import Database
from plugin.migrate import upgrade
from plugin.models import AdapterConnection, Shop, Sweep
from plugin.runtime import Runtime
from plugin.settings import get_settings
from plugin.sweeps import cli as sweep_cli
from plugin.sweeps.parts import SweepParts
from plugin.sweeps.wiring import shop_policy, sweep_planner
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET
from tests.sweeps.doubles import RecordingEnqueuer, stream
from tests.sweeps.shopdata import CONNECTED, NOW, POLICY_TOML, SHOP, TZ, build_shop, expected_actions


def _run(coro: object) -> None:
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()  # type: ignore[arg-type]


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gallra.db'}"
    upgrade(url)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SHOPIFY_API_KEY", "test-client-id")
    monkeypatch.setenv("SHOPIFY_API_SECRET", TEST_SECRET)
    monkeypatch.setenv("GALLRA_ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)
    get_settings.cache_clear()

    async def seed() -> None:
        db = Database(url)
        async with db.transaction() as session:
            session.add(Shop(domain=SHOP, country="SE", timezone=TZ, policy_toml=POLICY_TOML))
            session.add(Sweep(shop_domain=SHOP, day="2026-01-01", dry_run=True, status="done"))
            for adapter in CONNECTED:
                session.add(AdapterConnection(shop_domain=SHOP, adapter=adapter, config_enc="x"))
        await db.dispose()

    _run(seed())
    yield url
    get_settings.cache_clear()


def test_gallra_sweep_dry_run_prints_the_summary(cli_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    shop = build_shop()
    enqueuer = RecordingEnqueuer()

    async def parts(runtime: Runtime, domain: str) -> SweepParts:
        assert domain == SHOP
        return SweepParts(
            orders=stream(shop.orders),
            customers=stream(shop.customers),
            plan=sweep_planner(shop_policy(POLICY_TOML, "SE")),
            enqueue=enqueuer,
            policy_name="SE",
        )

    monkeypatch.setattr("plugin.sweeps.wiring.real_parts", parts)
    monkeypatch.setattr("plugin.sweeps.run.utcnow", lambda: NOW)  # the test shop's "today"
    app = typer.Typer()
    app.callback()(lambda: None)
    sweep_cli.register(app)

    result = CliRunner().invoke(app, ["sweep", "--shop", SHOP, "--dry-run"])
    print(result.output)  # the dry-run summary of the twelve-year shop, shown with `pytest -s`
    assert result.exit_code == 0, result.output
    assert "dry run (nothing sent)" in result.output
    for category in ("accounting_record", "order_contact", "shipment", "customer_account", "newsletter"):
        assert category in result.output
    assert "undecided: " in result.output and "next expiry" in result.output
    assert enqueuer.calls == []

    as_json = CliRunner().invoke(app, ["sweep", "--shop", SHOP, "--dry-run", "--json"])
    report = json.loads(as_json.output)
    cats = report["tally"]["categories"]
    expected = expected_actions(shop)
    assert report["dry_run"] is True and report["tally"]["orders"] == 600
    assert sum(c["erase"] for c in cats.values()) == len(expected.of("erase"))
    assert sum(c["reduce"] for c in cats.values()) == len(expected.of("reduce"))
    # Counts only: no e-mail address of the shop's customers anywhere in the report.
    assert "@example.com" not in as_json.output


def test_unknown_shop_is_one_readable_line(cli_db: str) -> None:
    app = typer.Typer()
    app.callback()(lambda: None)
    sweep_cli.register(app)
    result = CliRunner().invoke(app, ["sweep", "--shop", "nope.myshopify.com"])
    assert result.exit_code == 1
    assert "no active shop 'nope.myshopify.com'" in result.output
