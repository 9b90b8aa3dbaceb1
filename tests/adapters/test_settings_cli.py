"""`gallra adapters show NAME`: each setting with its meaning, read from the adapter's `Config`; and
a misspelt setting's error naming the valid ones, from the CLI and the admin API (SQLite and
PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from enum import StrEnum
from typing import Literal

import httpx
import pytest
from pydantic import Field, SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from adapters.base import AdapterConfig
from adapters.mailchimp import Mailchimp
from plugin.cli import _assemble
from plugin.cli.adapters import setting_specs
from plugin.crypto import Vault
from plugin.db import Database
from plugin.models import AdapterConnection, Shop
from plugin.runtime import Runtime
from tests.admin.conftest import admin_app
from tests.admin.helpers import bearer
from tests.conftest import TEST_ENCRYPTION_KEY, make_settings

SHOP = "butik-a.myshopify.com"


def gallra(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(_assemble(), list(args), env=env)
    return result.exit_code, result.output


async def in_thread(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """The CLI runs its own event loop: off this test's loop, in a thread."""
    return await asyncio.to_thread(gallra, *args, env=env)


def test_show_lists_every_setting_of_the_config_model_with_its_meaning() -> None:
    code, output = gallra("adapters", "show", "mailchimp")

    assert code == 0, output
    lines = output.splitlines()
    assert lines[0] == "mailchimp: Mailchimp (newsletter, api)"
    for key, field in Mailchimp.Config.model_fields.items():
        line = next(line for line in lines if line.startswith(f"  {key}: "))
        assert ("required" in line) is field.is_required()
        assert f"      {field.description}" in lines  # the meaning, under the setting
    assert "  api_key: secret; required; stored encrypted, shown masked" in lines
    assert "  connections: integer; at least 1, at most 10; default 4" in lines
    assert "  base_url: text; optional, empty by default" in lines

    code, output = gallra("adapters", "show", "mailchimp", "--json")
    shown = json.loads(output)
    assert list(shown["settings"]) == list(Mailchimp.Config.model_fields)
    assert shown["settings"]["connections"] == {
        "type": "integer",
        "required": False,
        "default": 4,
        "choices": None,
        "secret": False,
        "bounds": {"ge": 1, "le": 10},
        "help": Mailchimp.Config.model_fields["connections"].description,
    }
    # The catalogue lists the same settings the same way.
    listed = json.loads(gallra("adapters", "list", "--json")[1])
    assert next(row for row in listed if row["name"] == "mailchimp")["settings"] == shown["settings"]


def test_show_an_unknown_adapter_is_one_line() -> None:
    code, output = gallra("adapters", "show", "mailchimpp")
    assert code == 1 and "no adapter named 'mailchimpp'" in output


class Region(StrEnum):
    EU = "eu"
    US = "us"


class ChoicesConfig(AdapterConfig):
    region: Literal["eu", "us", "au"] = Field("eu", description="Where the account lives.")
    zone: Region = Field(Region.US, description="The data centre.")
    token: SecretStr | None = Field(None, description="Optional token.")
    lists: list[str] = Field(default_factory=list, description="Lists to clean.")
    name: str = Field(min_length=1, max_length=40, description="Account name.")


class WithChoices:
    name = "with_choices"
    Config = ChoicesConfig


def test_choices_defaults_and_bounds_come_from_the_model() -> None:
    """Host or region choices (a Literal or an Enum) show as choices, whatever adapter has them."""
    specs = setting_specs(WithChoices)  # type: ignore[arg-type]

    assert specs["region"]["type"] == "choice" and specs["region"]["choices"] == ["eu", "us", "au"]
    assert specs["region"]["default"] == "eu" and specs["region"]["required"] is False
    assert specs["zone"]["choices"] == ["eu", "us"] and specs["zone"]["default"] == "us"
    assert specs["token"]["secret"] is True and specs["token"]["default"] is None
    assert specs["lists"]["type"] == "list of text" and specs["lists"]["default"] == []
    assert specs["name"]["required"] is True
    assert specs["name"]["bounds"] == {"min_length": 1, "max_length": 40}


@pytest.fixture
async def shop_env(db: Database) -> dict[str, str]:
    async with db.transaction() as session:
        session.add(Shop(domain=SHOP, name="Butik A"))
    return {
        "DATABASE_URL": db.url,
        "SHOPIFY_API_KEY": "k",
        "SHOPIFY_API_SECRET": "s",
        "GALLRA_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
    }


def _valid() -> str:
    return ", ".join(Mailchimp.Config.model_fields)


async def test_configure_names_the_valid_settings_for_a_misspelt_one(shop_env: dict[str, str]) -> None:
    code, output = await in_thread("adapters", "configure", SHOP, "mailchimp", "api_kye=k-us21", env=shop_env)

    assert code == 1
    assert output.startswith("gallra: mailchimp: invalid settings: ")
    assert "unknown setting 'api_kye'" in output
    assert "api_key: Field required" in output
    assert f"(valid settings: {_valid()})" in output
    assert "k-us21" not in output  # a value is never echoed

    # Only an unknown name brings the list; a wrong value names its key alone.
    code, output = await in_thread(
        "adapters", "configure", SHOP, "mailchimp", "api_key=k-us21", "connections=99", env=shop_env
    )
    assert code == 1 and "connections:" in output and "(valid settings" not in output
    code, output = await in_thread("adapters", "configure", SHOP, "mailchimp", "api_key=k-us21", env=shop_env)
    assert code == 0, output


async def test_admin_api_names_the_valid_settings_too(db: Database) -> None:
    runtime = Runtime(
        settings=make_settings(db.url), db=db, vault=Vault(TEST_ENCRYPTION_KEY), http=httpx.AsyncClient()
    )
    async with runtime.db.transaction() as session:
        session.add(Shop(domain=SHOP, name="Butik A"))
    transport = httpx.ASGITransport(app=admin_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answer = await client.put(
            "/admin/api/adapters/mailchimp",
            headers=bearer(runtime, SHOP),
            json={"api_key": "k-us21", "api_kye": "k-us21"},
        )
    await runtime.http.aclose()

    assert answer.status_code == 400 and answer.json()["error"] == "invalid_settings"
    reason = answer.json()["reason"]
    assert reason == f"mailchimp: invalid settings: unknown setting 'api_kye' (valid settings: {_valid()})"
    async with runtime.db.session() as session:
        assert (await session.execute(select(AdapterConnection))).first() is None  # nothing stored
