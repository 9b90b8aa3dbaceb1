"""`gallra policy show` and `gallra policy explain`: the stable interfaces other checks use."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
import typer
from sqlalchemy import delete
from typer.testing import CliRunner

from plugin.cli.policy import register
from plugin.db import Database
from plugin.models import Shop
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET

runner = CliRunner()
DOMAINS = ("own-policy.myshopify.com", "no-policy.myshopify.com", "abroad.myshopify.com")


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:  # keeps `policy` a sub-command even with one group
        pass

    register(app)
    return app


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(_app(), ["policy", *args])
    return result.exit_code, result.stdout, result.stderr


def test_explain_json_matches_the_interface() -> None:
    code, out, _ = run(
        "explain", "--country", "SE", "--fiscal-year-end", "07-31", "--order-date", "2024-03-15",
        "--delivered", "2024-03-20", "--last-activity", "2024-03-20", "--unsubscribed", "2024-05-01",
        "--mode", "sweep", "--now", "2026-01-01", "--json",
    )  # fmt: skip
    assert code == 0, out
    decisions = json.loads(out)["decisions"]
    assert [d["category"] for d in decisions] == [
        "accounting_record", "order_contact", "shipment", "newsletter", "customer_account",
    ]  # fmt: skip
    for d in decisions:
        assert set(d) == {"category", "action", "keep_until", "rule", "reference", "reason_sv", "reason_en"}
        assert d["action"] in {"erase", "keep", "reduce"}
    by = {d["category"]: d for d in decisions}
    assert (by["accounting_record"]["keep_until"], by["accounting_record"]["rule"]) == ("2031-12-31", "SE-1")
    assert by["accounting_record"]["reference"] == "Bokföringslagen (1999:1078) 7 kap. 2 §"
    assert (by["order_contact"]["action"], by["order_contact"]["keep_until"]) == ("keep", "2027-05-20")
    assert (by["newsletter"]["action"], by["newsletter"]["keep_until"]) == ("reduce", "2027-05-01")
    assert (by["customer_account"]["action"], by["customer_account"]["keep_until"]) == ("keep", "2027-03-20")


def test_explain_request_mode_and_readable_text() -> None:
    args = [
        "explain",
        "--country",
        "DE",
        "--order-date",
        "2025-03-15",
        "--now",
        "2025-06-01",
        "--mode",
        "request",
    ]
    code, out, _ = run(*args, "--json")
    assert code == 0
    by = {d["category"]: d for d in json.loads(out)["decisions"]}
    assert (by["accounting_record"]["action"], by["accounting_record"]["keep_until"]) == (
        "keep",
        "2033-12-31",
    )
    assert by["order_contact"]["action"] == "erase" and by["order_contact"]["keep_until"] is None
    assert by["shipment"]["action"] == "keep" and by["shipment"]["keep_until"] is None  # delivery unknown
    code, text, _ = run(*args)
    assert code == 0
    assert "accounting_record: keep" in text
    assert "newsletter: reduce" in text
    assert "kept until 2033-12-31: § 147 Abs. 1 Nr. 4" in text
    assert "sparas till och med 2033-12-31" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "--country", "XX", "--order-date", "2024-01-01", "--now", "2025-01-01"],
         "unknown country"),
        (["explain", "--country", "SE", "--order-date", "2024-13-01", "--now", "2025-01-01"],
         "--order-date"),
        (["explain", "--country", "SE", "--order-date", "2024-01-01", "--now", "2025-01-01",
          "--fiscal-year-end", "06-31"], "--fiscal-year-end"),
        (["show"], "exactly one of --country or --shop"),
        (["show", "--country", "SE", "--shop", "a.myshopify.com"], "exactly one of"),
    ],
)  # fmt: skip
def test_bad_input_is_one_readable_line(args: list[str], message: str) -> None:
    code, _, err = run(*args)
    assert code == 2
    assert message in err


def test_show_country_table_and_json() -> None:
    code, text, _ = run("show", "--country", "FI", "--fiscal-year-end", "04-30")
    assert code == 0
    assert text.startswith("Retention policy: preset FI, country FI, fiscal year ends 04-30")
    assert "FI-2" in text and "Kirjanpitolaki 2 luku 10 §" in text
    code, out, _ = run("show", "--country", "de", "--json")
    doc = json.loads(out)
    assert (doc["preset"], doc["fiscal_year_end"], doc["forced_overrides"]) == ("DE", "12-31", [])
    de2 = next(r for r in doc["rules"] if r["id"] == "DE-2")
    assert (de2["period"], de2["previous_period"], de2["period_since"], de2["statutory"]) == (
        "8y",
        "10y",
        "2025-01-01",
        True,
    )
    assert de2["reason_en"].startswith("accounting voucher (Buchungsbeleg), 8 years after")


@pytest.mark.parametrize("backend", ["sqlite_url", "postgres_url"])
def test_show_shop_reads_the_stored_policy(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = request.getfixturevalue(backend)
    forced = (
        'preset = "SE"\nfiscal_year_end = "06-30"\n[overrides.SE-1]\nperiod = "5y"\nforce = true\n'
        'forced_by = "CFO"\nforced_reason = "audit agreement"\n'
    )

    async def seed() -> None:
        db = Database(url)
        try:
            async with db.transaction() as session:
                # The session-wide database may hold these shops from the other backend's run.
                await session.execute(delete(Shop).where(Shop.domain.in_(DOMAINS)))
                session.add_all(
                    [
                        Shop(domain="own-policy.myshopify.com", country="SE", policy_toml=forced),
                        Shop(domain="no-policy.myshopify.com", country="DK", policy_toml=None),
                        Shop(domain="abroad.myshopify.com", country="AT", policy_toml=None),
                    ]
                )
        finally:
            await db.dispose()

    asyncio.run(seed())
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SHOPIFY_API_KEY", "test-client-id")
    monkeypatch.setenv("SHOPIFY_API_SECRET", TEST_SECRET)
    monkeypatch.setenv("GALLRA_ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)

    code, out, err = run("show", "--shop", "own-policy.myshopify.com", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["preset"], doc["fiscal_year_end"]) == ("SE", "06-30")
    assert doc["forced_overrides"] == [
        {
            "rule": "SE-1",
            "period": "5y",
            "statutory_period": "7y",
            "reference": "Bokföringslagen (1999:1078) 7 kap. 2 §",
            "forced_by": "CFO",
            "forced_reason": "audit agreement",
        }
    ]
    code, text, _ = run("show", "--shop", "own-policy.myshopify.com")
    assert "FORCED: SE-1 set to 5y, below the statutory 7y" in text

    code, out, _ = run("show", "--shop", "no-policy.myshopify.com", "--fiscal-year-end", "09-30", "--json")
    assert (json.loads(out)["preset"], json.loads(out)["fiscal_year_end"]) == ("DK", "09-30")
    code, out, _ = run("show", "--shop", "abroad.myshopify.com", "--json")
    assert (json.loads(out)["preset"], json.loads(out)["country"]) == ("STRICTEST", "AT")
    code, _, err = run("show", "--shop", "missing.myshopify.com")
    assert code == 2 and "no shop 'missing.myshopify.com'" in err


def test_gallra_policy_is_registered_in_the_real_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "plugin.cli", "policy", "explain", "--country", "NO",
         "--order-date", "2024-05-10", "--now", "2025-01-01", "--json"],
        capture_output=True, text=True, timeout=60, env={**os.environ}, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["decisions"][0]["rule"] == "NO-1"


def test_show_states_the_minimisation_period() -> None:
    code, text, _ = run("show", "--country", "SE")
    assert code == 0
    assert "Finished requests drop their subject's e-mail, phone, order ids and references after 3y" in text
    assert "(the default: the general claims limitation)" in text
    doc = json.loads(run("show", "--country", "SE", "--json")[1])
    assert (doc["minimise_requests_after"], doc["minimise_is_default"]) == ("3y", True)
