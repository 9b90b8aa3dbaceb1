"""`gallra sweep`: the summary (and --json) of the twelve-year test shop, through the real path:
the shop's token, Shopify bulk operations (the fake), the retention planner with the shop's policy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import typer
from typer.testing import CliRunner

from plugin.cli import sweep as sweep_cli
from plugin.runtime import Runtime
from plugin.settings import get_settings
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET
from tests.fakes.shopify import ShopifyFake
from tests.sweeps.shopdata import NOW, SHOP, Expected, expected_actions
from tests.sweeps.test_with_shopify import twelve_year_shop, what_shopify_has


def _run(coro: object) -> None:
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()  # type: ignore[arg-type]


@pytest.fixture
def cli_db(fresh_sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = fresh_sqlite_url
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SHOPIFY_API_KEY", "test-client-id")
    monkeypatch.setenv("SHOPIFY_API_SECRET", TEST_SECRET)
    monkeypatch.setenv("GALLRA_ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)
    monkeypatch.setenv("SHOPIFY_ADMIN_URL", "https://{shop}")
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def app() -> typer.Typer:
    cli = typer.Typer()
    cli.callback()(lambda: None)
    sweep_cli.register(cli)
    return cli


def test_gallra_sweep_dry_run_of_the_twelve_year_shop(
    cli_db: str, shopify_fake: ShopifyFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real path: the shop's token, Shopify bulk operations (the fake), the shop's policy."""
    expected: list[Expected] = []

    async def seed() -> None:
        runtime = Runtime.build(get_settings())
        await twelve_year_shop(runtime, shopify_fake)
        expected.append(expected_actions(await what_shopify_has(runtime)))
        await runtime.close()

    _run(seed())
    monkeypatch.setattr("plugin.sweeps.run.utcnow", lambda: NOW)  # the test shop's "today"

    result = CliRunner().invoke(app(), ["sweep", "--shop", SHOP, "--dry-run"])
    print(result.output)  # the dry-run summary of the twelve-year shop, shown with `pytest -s`
    assert result.exit_code == 0, result.output
    assert "dry run (nothing sent)" in result.output
    for category in ("accounting_record", "order_contact", "shipment", "customer_account", "newsletter"):
        assert category in result.output
    assert "undecided: " in result.output and "next expiry" in result.output

    as_json = CliRunner().invoke(app(), ["sweep", "--shop", SHOP, "--dry-run", "--json"])
    report = json.loads(as_json.output)
    cats = report["tally"]["categories"]
    assert report["dry_run"] is True and report["tally"]["orders"] == 600
    assert sum(c["erase"] for c in cats.values()) == len(expected[0].of("erase"))
    assert sum(c["reduce"] for c in cats.values()) == len(expected[0].of("reduce"))
    # Counts only: no e-mail address of the shop's customers anywhere in the report.
    assert "@example.com" not in as_json.output
    # Nothing was sent: the only mutations Shopify saw start the bulk reads.
    assert {m.name for m in shopify_fake.mutations} == {"bulkOperationRunQuery"}


def test_unknown_shop_is_one_readable_line(cli_db: str) -> None:
    result = CliRunner().invoke(app(), ["sweep", "--shop", "nope.myshopify.com"])
    assert result.exit_code == 1
    assert "no active shop 'nope.myshopify.com'" in result.output
