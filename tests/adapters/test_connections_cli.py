"""`gallra adapters list/configure/connections/check` against a real SQLite database."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from plugin.cli import _assemble
from plugin.crypto import Vault
from plugin.db import Database
from plugin.models import Shop, shop_cell
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.fakes.klaviyo import KlaviyoFake

SHOP = "butik-a.myshopify.com"


@pytest.fixture
def env(fresh_sqlite_url: str) -> dict[str, str]:
    url = fresh_sqlite_url

    async def add_shop() -> None:
        db = Database(url)
        async with db.transaction() as session:
            session.add(
                Shop(
                    domain=SHOP,
                    name="Butik A",
                    contact_email_enc=Vault(TEST_ENCRYPTION_KEY).encrypt(
                        "o@a.se", shop_cell("contact_email_enc", SHOP)
                    ),
                )
            )
        await db.dispose()

    asyncio.run(add_shop())
    return {
        "DATABASE_URL": url,
        "SHOPIFY_API_KEY": "k",
        "SHOPIFY_API_SECRET": "s",
        "GALLRA_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
    }


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(_assemble(), ["adapters", *args], env=env)
    return result.exit_code, result.output


def test_list_shows_the_catalogue_as_json() -> None:
    result = CliRunner().invoke(_assemble(), ["adapters", "list", "--json"])
    rows = {row["name"]: row for row in json.loads(result.output)}

    assert rows["klaviyo"]["channel"] == "api" and rows["klaviyo"]["category"] == "newsletter"
    assert rows["postnord"]["channel"] == "email" and rows["postnord"]["erase"] is True
    assert rows["mailchimp"]["settings"]["api_key"]["required"] is True
    assert "help" in rows["mailchimp"]["settings"]["api_key"]


def test_list_as_a_table() -> None:
    result = CliRunner().invoke(_assemble(), ["adapters", "list"])

    assert result.exit_code == 0
    assert result.output.splitlines()[0].startswith("NAME")
    assert any(line.startswith("postnord") and "email" in line for line in result.output.splitlines())


def test_list_shows_which_adapters_can_reduce() -> None:
    rows = {
        r["name"]: r
        for r in json.loads(CliRunner().invoke(_assemble(), ["adapters", "list", "--json"]).output)
    }
    assert rows["mailchimp"]["reduce"] is True and rows["klaviyo"]["reduce"] is True
    assert rows["postnord"]["reduce"] is False and rows["budbee"]["reduce"] is False

    lines = CliRunner().invoke(_assemble(), ["adapters", "list"]).output.splitlines()
    assert lines[0].split()[-2:] == ["SWEEP", "REDUCE"]
    row = {line.split()[0]: line.split()[-2:] for line in lines[1:]}
    assert row["mailchimp"] == ["yes", "yes"] and row["brevo"] == ["-", "yes"]
    assert row["postnord"] == ["-", "-"]


def test_configure_validates_masks_and_stores_encrypted(env: dict[str, str]) -> None:
    code, output = run(env, "configure", SHOP, "klaviyo", "api_key=pk_secret_1", "suppress=false")

    assert code == 0, output
    assert "api_key = ********" in output and "suppress = False" in output
    assert "pk_secret_1" not in output

    async def raw() -> str:
        db = Database(env["DATABASE_URL"])
        async with db.session() as session:
            value = (await session.execute(text("SELECT config_enc FROM adapter_connections"))).scalar_one()
        await db.dispose()
        return str(value)

    assert "pk_secret_1" not in asyncio.run(raw())

    code, output = run(env, "connections", SHOP, "--json")
    (row,) = json.loads(output)
    assert row["adapter"] == "klaviyo" and row["settings"]["api_key"] == "********"


def test_configure_errors_name_the_key(env: dict[str, str]) -> None:
    code, output = run(env, "configure", SHOP, "klaviyo", "suppress=perhaps")

    assert code == 1
    assert "klaviyo: invalid settings" in output and "api_key: Field required" in output
    assert "suppress:" in output


def test_configure_rejects_malformed_pairs_without_echoing_them(env: dict[str, str]) -> None:
    code, output = run(env, "configure", SHOP, "klaviyo", "pk_secret_2")

    assert code != 0
    assert "setting 1 is not key=value" in output and "pk_secret_2" not in output


def test_unknown_shop_and_adapter(env: dict[str, str]) -> None:
    assert run(env, "configure", "nosuch.myshopify.com", "postnord")[0] == 1
    code, output = run(env, "configure", SHOP, "nosuch")
    assert code == 1 and "no adapter named 'nosuch'" in output


def test_check_reports_each_connection_and_fails_on_any_error(env: dict[str, str]) -> None:
    run(env, "configure", SHOP, "klaviyo", "api_key=pk_wrong")
    run(env, "configure", SHOP, "postnord")
    fake = KlaviyoFake(api_key="pk_right")

    with fake.mocked():
        code, output = run(env, "check", SHOP)

    assert code == 1
    assert "postnord: ok" in output
    assert "klaviyo: FAILED" in output and "api_key" in output and "pk_wrong" not in output

    with fake.mocked():
        run(env, "configure", SHOP, "klaviyo", "api_key=pk_right")
        code, output = run(env, "check", SHOP)
    assert code == 0 and "klaviyo: ok" in output


def test_outbox_lists_requests_without_addresses(env: dict[str, str]) -> None:
    async def queue() -> str:
        from plugin.outbox import Outbox
        from plugin.runtime import Runtime
        from plugin.settings import load_settings

        runtime = Runtime.build(load_settings(**{"database_url": env["DATABASE_URL"]}))
        try:
            return await Outbox(runtime, SHOP, step_id=3).send(
                to="dataprotectionofficer@postnord.com", subject="ref {reference}", body="anna@example.se"
            )
        finally:
            await runtime.close()

    code, output = run(env, "outbox", SHOP)
    assert code == 0 and "no e-mailed requests" in output

    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        reference = asyncio.run(queue())

    code, output = run(env, "outbox", SHOP, "--json")
    (row,) = json.loads(output)
    assert row["reference"] == reference and row["status"] == "queued" and row["step_id"] == 3
    code, output = run(env, "outbox", SHOP)
    assert reference in output and "@" not in output


def test_a_typed_provider_url_is_a_clear_error_unless_the_operator_allows_it(env: dict[str, str]) -> None:
    for url in ("http://127.0.0.1:9/", "https://127.1/", "file:///etc/passwd"):
        code, output = run(env, "configure", SHOP, "klaviyo", "api_key=pk_x", f"base_url={url}")
        assert code == 1 and "Traceback" not in output
        assert "base_url: this server does not allow custom provider URLs" in output and url not in output
    allowing = {**env, "GALLRA_ALLOW_CUSTOM_PROVIDER_URLS": "1"}
    code, output = run(allowing, "configure", SHOP, "klaviyo", "api_key=pk_x", "base_url=https://127.1/")
    assert code == 1 and "base_url: its host is a loopback, private, link-local or unspecified" in output
    local = {**allowing, "GALLRA_ALLOW_PRIVATE_PROVIDER_URLS": "1"}
    code, output = run(local, "configure", SHOP, "klaviyo", "api_key=pk_x", "base_url=http://127.0.0.1:9/k")
    assert code == 0 and "base_url = http://127.0.0.1:9/k" in output
    code, output = run(env, "configure", SHOP, "budbee", "api_key=k", "api_secret=s", "region=moon")
    assert code == 1 and "region: choose one of: production, sandbox" in output


def test_show_and_check_name_a_stored_connection_the_server_no_longer_accepts(env: dict[str, str]) -> None:
    local = {**env, "GALLRA_ALLOW_CUSTOM_PROVIDER_URLS": "1", "GALLRA_ALLOW_PRIVATE_PROVIDER_URLS": "1"}
    assert run(local, "configure", SHOP, "klaviyo", "api_key=pk_x", "base_url=http://127.0.0.1:9/k")[0] == 0
    code, output = run(env, "connections", SHOP, "--json")
    (row,) = json.loads(output)
    assert code == 0 and row["settings"]["invalid"].startswith("klaviyo: invalid settings: base_url: ")
    code, output = run(env, "check", SHOP)
    assert code == 1 and "Traceback" not in output
    assert "klaviyo: FAILED - klaviyo: its stored settings are no longer accepted (base_url: " in output
