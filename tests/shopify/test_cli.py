from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plugin.cli import _assemble
from plugin.crypto import Vault
from plugin.models import shop_cell
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET

runner = CliRunner()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_url: str, system_clock_skips: object) -> str:
    # Shopify is out of reach here (a closed local port, refused at once, no DNS): `shop add` backs
    # off on the system clock, skipped, then gives up reading the shop's details.
    monkeypatch.setenv("SHOPIFY_ADMIN_URL", "http://127.0.0.1:9/{shop}")
    monkeypatch.chdir(tmp_path)  # no stray .env from the work tree
    monkeypatch.setenv("SHOPIFY_API_KEY", "client-123")
    monkeypatch.setenv("SHOPIFY_API_SECRET", TEST_SECRET)
    monkeypatch.setenv("GALLRA_ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("GALLRA_APP_URL", "https://gallra.example.com/")
    return sqlite_url.split("///", 1)[1]


def test_shop_add_stores_encrypted_token(env: str) -> None:
    result = runner.invoke(
        _assemble(), ["shop", "add", "cli-shop.myshopify.com", "--token", "shpat_cli", "--country", "se"]
    )
    assert result.exit_code == 0, result.output
    assert "shpat_cli" not in result.output and "cli-shop.myshopify.com" in result.output
    with sqlite3.connect(env) as conn:
        country, token_enc, status = conn.execute(
            "SELECT country, access_token_enc, status FROM shops WHERE domain = 'cli-shop.myshopify.com'"
        ).fetchone()
    assert (country, status) == ("SE", "active")
    assert (
        "shpat_cli" not in token_enc
        and Vault(TEST_ENCRYPTION_KEY).decrypt(
            token_enc, shop_cell("access_token_enc", "cli-shop.myshopify.com")
        )
        == "shpat_cli"
    )


@pytest.mark.parametrize(
    "args", [["evil.com", "--token", "t"], ["ok.myshopify.com", "--token", "t", "--country", "SWE"]]
)
def test_shop_add_rejects_bad_input(env: str, args: list[str]) -> None:
    result = runner.invoke(_assemble(), ["shop", "add", *args])
    assert result.exit_code == 2


def test_shopify_toml(env: str) -> None:
    result = runner.invoke(_assemble(), ["shopify-toml"])
    assert result.exit_code == 0, result.output
    doc = tomllib.loads(result.output)
    assert doc["client_id"] == "client-123" and doc["embedded"] is True
    assert doc["application_url"] == "https://gallra.example.com/admin"  # the embedded admin page
    assert doc["auth"]["redirect_urls"] == ["https://gallra.example.com/auth/callback"]
    assert set(doc["access_scopes"]["scopes"].split(",")) >= {
        "read_customers",
        "write_customers",
        "read_orders",
        "read_all_orders",
        "write_customer_data_erasure",
        "read_customer_merge",
    }
    assert doc["webhooks"]["api_version"] == "2026-01"
    subscriptions = doc["webhooks"]["subscriptions"]
    assert {"topics": ["app/uninstalled"], "uri": "/webhooks/app/uninstalled"} in subscriptions
    assert {"topics": ["customers/merge"], "uri": "/webhooks/customers/merge"} in subscriptions
    compliance = [s for s in subscriptions if "compliance_topics" in s]
    assert len(compliance) == 1
    assert sorted(compliance[0]["compliance_topics"]) == [
        "customers/data_request",
        "customers/redact",
        "shop/redact",
    ]
