"""The controller's details: read from the Admin API (the schema-validating Shopify fake) on
`gallra shop add` and on install, set or overridden by the owner (CLI, admin API), kept over a
refresh, and read again after a `shop/update` delivery (off the request path, by a clock)."""

from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from plugin import controller
from plugin.app import create_app
from plugin.cli import _assemble
from plugin.clocks import JOBS, refresh_shop_details
from plugin.crypto import Vault
from plugin.models import Shop, shop_cell
from plugin.runtime import Runtime
from plugin.shopify.session_token import verify_session_token
from plugin.shopify.tokens import exchange_session_token, refresh_details, register_shop
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET, serving
from tests.fakes.shopify import ShopifyFake
from tests.intake.conftest import APP_UNINSTALLED, CUSTOMER_REDACT, Sender
from tests.shopify.tokens import make_session_token

SHOP = "kontrollant.myshopify.com"
TOKEN = "shpat_controller"


def _add(fake: ShopifyFake, domain: str = SHOP, **kw: Any) -> None:
    fake.add_shop(
        domain,
        token=TOKEN,
        name=kw.get("name", "Fjällbutiken"),
        email=kw.get("email", "kontakt@fjallbutiken.se"),
        company=kw.get("company", "Fjällbutiken i Åre AB"),
        address1="Storgatan 1",
        zip="837 52",
        city="Åre",
        country="SE",
    )


async def _shop(runtime: Runtime) -> Shop:
    async with runtime.db.session() as session:
        return (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()


async def _details(runtime: Runtime) -> controller.Details:
    return controller.details_of(runtime.vault, await _shop(runtime))


async def test_shop_add_reads_the_controller_from_the_admin_api(
    runtime: Runtime, shopify_fake: ShopifyFake
) -> None:
    _add(shopify_fake)
    await register_shop(runtime, SHOP, TOKEN)
    assert await _details(runtime) == controller.Details(
        name="Fjällbutiken",
        legal_name="Fjällbutiken i Åre AB",
        address="Storgatan 1, 837 52 Åre, Sweden",
        contact_email="kontakt@fjallbutiken.se",
    )
    shop = await _shop(runtime)
    # Personal data of a sole trader is encrypted at rest; the public trading name is not.
    for column, plain in (
        ("legal_name_enc", "Fjällbutiken i Åre AB"),
        ("address_enc", "Storgatan"),
        ("contact_email_enc", "kontakt@"),
    ):
        stored = getattr(shop, column)
        assert stored and plain not in stored
    assert shop.shopify_shop_id is not None and shop.controller_overrides is None
    assert any("ShopInfo" in request.content.decode() for request in shopify_fake.requests)


async def test_install_reads_the_legal_name_and_address(runtime: Runtime, shopify_fake: ShopifyFake) -> None:
    _add(shopify_fake)
    session_token = make_session_token(SHOP, runtime.settings)
    claims = verify_session_token(session_token, runtime.settings)
    await exchange_session_token(runtime, claims, session_token)
    details = await _details(runtime)
    assert details.legal_name == "Fjällbutiken i Åre AB"
    assert details.address == "Storgatan 1, 837 52 Åre, Sweden"


async def test_overrides_win_and_survive_a_refresh(runtime: Runtime, shopify_fake: ShopifyFake) -> None:
    _add(shopify_fake)
    mine = controller.Details(name="Fjällbutiken Åre", contact_email="dataskydd@fjallbutiken.se")
    await register_shop(runtime, SHOP, TOKEN, controller_details=mine)
    details = await _details(runtime)
    assert (details.name, details.contact_email) == ("Fjällbutiken Åre", "dataskydd@fjallbutiken.se")
    assert details.legal_name == "Fjällbutiken i Åre AB"  # not overridden: Shopify's

    fake = shopify_fake.shops[SHOP]
    fake.name, fake.email, fake.company = "Nytt namn", "ny@fjallbutiken.se", "Nya Fjällbutiken AB"
    await refresh_details(runtime, SHOP)
    details = await _details(runtime)
    assert (details.name, details.contact_email) == ("Fjällbutiken Åre", "dataskydd@fjallbutiken.se")
    assert details.legal_name == "Nya Fjällbutiken AB"
    # Running `shop add` again without the options keeps them too.
    await register_shop(runtime, SHOP, TOKEN)
    assert (await _details(runtime)).name == "Fjällbutiken Åre"


async def test_a_cleared_override_returns_to_shopify(runtime: Runtime, shopify_fake: ShopifyFake) -> None:
    _add(shopify_fake)
    await register_shop(runtime, SHOP, TOKEN, controller_details=controller.Details(name="Eget namn"))
    async with runtime.db.transaction() as session:
        shop = (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()
        controller.set_overrides(runtime.vault, shop, controller.Details(), clear=frozenset({"name"}))
    await refresh_details(runtime, SHOP)
    assert (await _details(runtime)).name == "Fjällbutiken"


async def test_shop_update_marks_the_shop_and_the_clock_reads_it_again(
    runtime: Runtime, shopify_fake: ShopifyFake
) -> None:
    _add(shopify_fake)
    await register_shop(runtime, SHOP, TOKEN, controller_details=controller.Details(contact_email="dpo@x.se"))
    shopify_fake.shops[SHOP].name = "Fjällbutiken & Co"
    shopify_fake.shops[SHOP].email = "ny@fjallbutiken.se"
    calls = len(shopify_fake.requests)
    body = {**APP_UNINSTALLED, "myshopify_domain": SHOP, "name": "Fjällbutiken & Co"}
    async with serving(create_app(runtime)) as client:
        answer = await Sender(client).send("shop/update", body, shop=None)
    assert answer.status_code == 200 and answer.json()["status"] == "stored"
    # Intake made no call to Shopify: it only recorded the claim.
    assert len(shopify_fake.requests) == calls
    shop = await _shop(runtime)
    assert shop.details_stale_at is not None and shop.name == "Fjällbutiken"
    assert shop.status == "active" and shop.uninstall_claimed_at is None  # not an uninstall

    assert any(job.func is refresh_shop_details for job in JOBS)
    assert await refresh_shop_details(runtime) == 1
    shop = await _shop(runtime)
    details = controller.details_of(runtime.vault, shop)
    assert (details.name, details.contact_email) == ("Fjällbutiken & Co", "dpo@x.se")
    assert shop.details_stale_at is None
    assert await refresh_shop_details(runtime) == 0  # nothing left to read (and this minute claimed)


@pytest.mark.parametrize(
    "body",
    [
        {**CUSTOMER_REDACT, "myshopify_domain": SHOP},  # a compliance body under shop/update
        {"id": 1, "name": "X", "domain": "custom.example"},  # names no *.myshopify.com shop
    ],
)
async def test_shop_update_body_is_validated_strictly(
    runtime: Runtime, shopify_fake: ShopifyFake, body: dict[str, Any]
) -> None:
    _add(shopify_fake)
    await register_shop(runtime, SHOP, TOKEN)
    async with serving(create_app(runtime)) as client:
        answer = await Sender(client).send("shop/update", body, shop=SHOP)
    assert answer.status_code == 400
    assert (await _shop(runtime)).details_stale_at is None


# --- the command line -------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_url: str) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHOPIFY_API_KEY", "client-123")
    monkeypatch.setenv("SHOPIFY_API_SECRET", TEST_SECRET)
    monkeypatch.setenv("GALLRA_ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("GALLRA_APP_URL", "https://gallra.example.com/")
    return sqlite_url.split("///", 1)[1]


def _stored(path: str, domain: str) -> tuple[str | None, str | None, str | None, str | None]:
    with sqlite3.connect(path) as conn:
        name, contact, legal, overrides = conn.execute(
            "SELECT name, contact_email_enc, legal_name_enc, controller_overrides"
            " FROM shops WHERE domain = ?",
            (domain,),
        ).fetchone()
    vault = Vault(TEST_ENCRYPTION_KEY)
    return (
        name,
        vault.decrypt(contact, shop_cell("contact_email_enc", domain)),
        vault.decrypt(legal, shop_cell("legal_name_enc", domain)),
        overrides,
    )


def test_cli_shop_add_reads_the_shop(env: str, shopify_fake: ShopifyFake) -> None:
    domain = "cli-read.myshopify.com"
    _add(shopify_fake, domain)
    result = runner.invoke(_assemble(), ["shop", "add", domain, "--token", TOKEN])
    assert result.exit_code == 0, result.output
    assert _stored(env, domain) == ("Fjällbutiken", "kontakt@fjallbutiken.se", "Fjällbutiken i Åre AB", None)


def test_cli_shop_add_overrides(env: str, shopify_fake: ShopifyFake) -> None:
    domain = "cli-override.myshopify.com"
    _add(shopify_fake, domain)
    args = ["--name", "Butiken", "--contact-email", "dpo@butiken.se", "--legal-name", "Butiken HB"]
    result = runner.invoke(_assemble(), ["shop", "add", domain, "--token", TOKEN, *args])
    assert result.exit_code == 0, result.output
    overrides = "name,legal_name,contact_email"
    assert _stored(env, domain) == ("Butiken", "dpo@butiken.se", "Butiken HB", overrides)


def test_cli_shop_add_says_when_shopify_could_not_be_read(env: str, shopify_fake: ShopifyFake) -> None:
    # No such shop at the fake: Shopify answers 404. The token is stored all the same.
    domain = "cli-unread.myshopify.com"
    result = runner.invoke(_assemble(), ["shop", "add", domain, "--token", TOKEN, "--name", "Butiken"])
    assert result.exit_code == 0, result.output
    assert "could not read the shop's details" in result.output
    assert _stored(env, domain) == ("Butiken", None, None, "name")


@pytest.mark.parametrize("args", [["--contact-email", "not-an-address"], ["--name", "  "]])
def test_cli_shop_add_refuses_bad_overrides(env: str, args: list[str]) -> None:
    result = runner.invoke(_assemble(), ["shop", "add", SHOP, "--token", TOKEN, *args])
    assert result.exit_code == 2


async def test_a_marked_shop_without_a_token_is_not_read_again_and_again(
    runtime: Runtime, shopify_fake: ShopifyFake
) -> None:
    _add(shopify_fake)
    await register_shop(runtime, SHOP, TOKEN)
    async with runtime.db.transaction() as session:
        shop = (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()
        shop.access_token_enc = None
        shop.details_stale_at = shop.installed_at
    calls = len(shopify_fake.requests)
    assert await refresh_shop_details(runtime) == 0
    assert (await _shop(runtime)).details_stale_at is None and len(shopify_fake.requests) == calls


async def test_shopify_unavailable_keeps_the_mark(runtime: Runtime, shopify_fake: ShopifyFake) -> None:
    _add(shopify_fake)
    await register_shop(runtime, SHOP, TOKEN)
    async with runtime.db.transaction() as session:
        shop = (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()
        shop.details_stale_at = shop.installed_at
    shopify_fake.shops[SHOP].tokens.clear()  # Shopify refuses the token: 401
    assert await refresh_shop_details(runtime) == 0
    assert (await _shop(runtime)).details_stale_at is not None


def test_the_app_subscribes_to_shop_update(env: str) -> None:
    result = runner.invoke(_assemble(), ["shopify-toml"])
    assert result.exit_code == 0, result.output
    subscriptions = tomllib.loads(result.output)["webhooks"]["subscriptions"]
    assert {"topics": ["shop/update"], "uri": "/webhooks/shop/update"} in subscriptions
