"""Where adapters call: their providers' declared https hosts, picked by region; a URL of the shop's
own only when the server's operator allows it, never into loopback, private, link-local or
unspecified addresses unless that is allowed too; `check` never repeats what answered; a stored
connection the server no longer accepts fails as a settings error, never as a crash."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr
from sqlalchemy import select

from adapters import http as provider_http
from adapters._rest import ApiAdapter
from adapters.base import URL_POLICY, AdapterContext, ProviderConfig, SettingsInvalid
from adapters.budbee import Budbee
from adapters.http import ProviderHttp, UrlPolicy
from adapters.klaviyo import Klaviyo, KlaviyoConfig
from adapters.registry import catalogue
from adapters.voyado import Voyado
from plugin import connections
from plugin.crypto import Vault
from plugin.db import Database
from plugin.ledger import load_shop
from plugin.models import AdapterConnection, Shop, connection_cell
from plugin.runtime import Runtime
from tests.adapters.support import SHOP as SHOP_INFO
from tests.adapters.support import build, subject
from tests.conftest import TEST_ENCRYPTION_KEY, make_settings

SHOP = "butik-a.myshopify.com"
LEAK = "internal-admin-token-4711"

# Every spelling of an address in the operator's own network that a shop could type.
PRIVATE_URLS = [
    "https://127.0.0.1/",
    "https://127.1/",
    "https://2130706433/",
    "https://0x7f.1/",
    "https://017700000001/",
    "https://localhost/",
    "https://LOCALHOST:8443/api",
    "https://[::1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:7f00:1]/",
    "https://[2002:7f00:1::]/",
    "https://0.0.0.0/",
    "https://0/",
    "https://[::]/",
    "https://10.0.0.5/",
    "https://172.16.3.4/",
    "https://192.168.1.1/",
    "https://100.64.0.1/",
    "https://169.254.169.254/latest/meta-data",
    "https://[fe80::1]/",
    "https://[fd00::1]/",
]


def klaviyo_settings(base_url: str) -> dict[str, Any]:
    return {"api_key": "pk_test", "base_url": base_url}


def refused(values: dict[str, Any], policy: UrlPolicy) -> str:
    with pytest.raises(connections.ConfigInvalid) as caught:
        connections.validate_config(Klaviyo, values, policy)
    return str(caught.value)


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Host names and what they resolve to, instead of the network's DNS (literal addresses still
    resolve as the system does)."""
    names: dict[str, list[str]] = {}
    real = provider_http.lookup

    def lookup(host: str, port: int) -> list[str]:
        return list(names[host]) if host in names else real(host, port)

    monkeypatch.setattr(provider_http, "lookup", lookup)
    return names


class _Leaky(BaseHTTPRequestHandler):
    """A service in the operator's network that answers with something no shop should read."""

    def do_GET(self) -> None:
        body = f'{{"errors": [{{"code": "{LEAK}", "detail": "root:x:0:0 {LEAK}"}}]}}'.encode()
        self.send_response(400, f"Bad {LEAK}")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def loopback_listener() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Leaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def runtime_for(db: Database, **settings: Any) -> Runtime:
    return Runtime(
        settings=make_settings(db.url, **settings),
        db=db,
        vault=Vault(TEST_ENCRYPTION_KEY),
        http=httpx.AsyncClient(),
    )


@pytest.fixture
async def runtime(db: Database) -> AsyncIterator[Runtime]:
    """The server as shipped: no custom provider URLs."""
    rt = runtime_for(db)
    async with db.transaction() as session:
        session.add(Shop(domain=SHOP, name="Butik A", country="SE", access_token_enc=None))
    yield rt
    await rt.http.aclose()


# --- what each adapter declares -------------------------------------------------------------------


def test_every_http_adapter_declares_its_providers_https_roots_and_takes_no_url() -> None:
    api = {
        name: cls for name, cls in catalogue().items() if issubclass(cls, ApiAdapter) or name == "postnord"
    }
    assert {"klaviyo", "mailchimp", "voyado", "brevo", "shipmondo", "sendcloud", "postnord"} <= set(api)
    for name, cls in api.items():
        assert issubclass(cls.Config, ProviderConfig), name
        endpoints = cls.Config.endpoints
        assert endpoints.regions and all(root.startswith("https://") for root in endpoints.regions.values())
        assert cls.Config.model_fields["base_url"].default is None, name
    # Adapters that never call HTTP offer no address at all.
    for name in ("posti", "schenker", "instabox", "bring", "dhl"):
        assert "base_url" not in catalogue()[name].Config.model_fields


def test_the_catalogue_lists_each_adapters_regions() -> None:
    from typer.testing import CliRunner

    from plugin.cli import _assemble

    rows = {
        row["name"]: row
        for row in json.loads(CliRunner().invoke(_assemble(), ["adapters", "list", "--json"]).output)
    }
    assert rows["budbee"]["regions"] == {
        "production": "https://api.budbee.com",
        "sandbox": "https://sandbox.api.budbee.com",
    }
    assert rows["voyado"]["regions"]["staging"] == "https://{tenant}.staging.voyado.com"
    assert rows["posti"]["regions"] == {}


# --- regions --------------------------------------------------------------------------------------


async def test_a_region_picks_one_of_the_documented_hosts() -> None:
    # Budbee publishes no privacy address: its check needs the shop's (its e-mail channel's) too.
    budbee, _, _ = build(
        Budbee, api_key="k", api_secret="s", region="sandbox", privacy_email="p@budbee.example"
    )
    voyado, _, _ = build(Voyado, api_key="vy", tenant="Butik", region="STAGING")
    default_voyado, _, _ = build(Voyado, api_key="vy", tenant="butik")
    with respx.mock(assert_all_called=True) as mock:
        sandbox = mock.get("https://sandbox.api.budbee.com/multiple/orders").respond(200, json=[])
        staging = mock.get("https://butik.staging.voyado.com/api/v2/contacts/id").respond(404)
        production = mock.get("https://butik.voyado.com/api/v2/contacts/id").respond(404)
        await budbee.check()
        await voyado.check()
        await default_voyado.check()
    assert sandbox.call_count == staging.call_count == production.call_count == 1


def test_an_unknown_region_or_a_tenant_that_is_not_one_label_is_refused_naming_the_choices() -> None:
    with pytest.raises(connections.ConfigInvalid) as region:
        connections.validate_config(Budbee, {"api_key": "k", "api_secret": "s", "region": "us"}, UrlPolicy())
    assert "region: choose one of: production, sandbox" in str(region.value)
    for tenant in ("evil.example", "butik.voyado.com/x", "127.0.0.1", "a@b", ""):
        with pytest.raises(connections.ConfigInvalid) as label:
            connections.validate_config(Voyado, {"api_key": "vy", "tenant": tenant}, UrlPolicy())
        assert "tenant: " in str(label.value) and "host name label" in str(label.value)
        assert not tenant or tenant not in str(label.value)


# --- custom URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["https://api.example.com/", "http://127.0.0.1:9/klaviyo", "https://127.1/"])
def test_no_custom_url_without_the_server_setting(url: str) -> None:
    message = refused(klaviyo_settings(url), UrlPolicy())
    assert "base_url: this server does not allow custom provider URLs" in message
    assert "production" in message and url.split("//")[1].split("/")[0] not in message


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_every_private_address_form_is_refused_even_with_custom_urls_allowed(url: str) -> None:
    message = refused(klaviyo_settings(url), UrlPolicy(custom=True))
    assert "base_url: its host is a loopback, private, link-local or unspecified address" in message
    assert url.split("//")[1].split("/")[0].strip("[]") not in message.lower()


def test_host_names_resolving_into_the_network_are_refused(resolver: dict[str, list[str]]) -> None:
    resolver["intranet.example.com"] = ["10.1.2.3"]
    resolver["mixed.example.com"] = ["93.184.216.34", "127.0.0.1"]
    resolver["mapped.example.com"] = ["::ffff:192.168.0.1"]
    for host in resolver:
        message = refused(klaviyo_settings(f"https://{host}/"), UrlPolicy(custom=True))
        assert "loopback, private, link-local or unspecified" in message and host not in message
    message = refused(klaviyo_settings("https://nowhere.invalid/"), UrlPolicy(custom=True))
    assert "base_url: its host does not resolve" in message


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "file://localhost/etc/passwd",
        "ftp://files.example.com/",
        "gopher://127.0.0.1:6379/_INFO",
        "javascript:alert(1)",
        "//api.example.com/",
        "https://",
        "https://user:secret@api.example.com/",
    ],
)
def test_other_schemes_and_malformed_urls_are_refused_cleanly(url: str) -> None:
    for policy in (UrlPolicy(custom=True), UrlPolicy(custom=True, private=True)):
        message = refused(klaviyo_settings(url), policy)
        assert message.startswith("klaviyo: invalid settings: base_url: ")
        assert "secret" not in message and "passwd" not in message


def test_plain_http_only_towards_addresses_the_operator_allowed(resolver: dict[str, list[str]]) -> None:
    resolver["api.example.com"] = ["93.184.216.34"]
    assert "must start with https://" in refused(
        klaviyo_settings("http://api.example.com/"), UrlPolicy(custom=True)
    )
    local = connections.validate_config(
        Klaviyo, klaviyo_settings("http://127.0.0.1:9/klaviyo/"), UrlPolicy(custom=True, private=True)
    )
    assert isinstance(local, ProviderConfig) and local.root() == "http://127.0.0.1:9/klaviyo"


def klaviyo_at(url: str, policy: UrlPolicy, client: httpx.AsyncClient) -> Klaviyo:
    config = KlaviyoConfig.model_validate(klaviyo_settings(url), context={URL_POLICY: policy})
    return Klaviyo(config, AdapterContext(shop=SHOP_INFO, http=ProviderHttp(client, policy=policy)))


async def test_a_custom_url_is_called_at_the_address_that_was_checked(resolver: dict[str, list[str]]) -> None:
    resolver["crm.example.com"] = ["93.184.216.34"]
    policy = UrlPolicy(custom=True)
    async with httpx.AsyncClient() as client:
        adapter = klaviyo_at("https://crm.example.com:8443/klaviyo", policy, client)
        with respx.mock(assert_all_called=True) as mock:
            route = mock.get("https://93.184.216.34:8443/klaviyo/api/profiles").respond(
                200, json={"data": []}
            )
            await adapter.check()
    sent = route.calls.last.request
    assert sent.headers["host"] == "crm.example.com:8443"
    assert sent.extensions["sni_hostname"] == "crm.example.com"  # TLS name and certificate check


async def test_a_name_that_resolves_elsewhere_at_call_time_is_not_called(
    resolver: dict[str, list[str]],
) -> None:
    resolver["crm.example.com"] = ["93.184.216.34"]
    policy = UrlPolicy(custom=True)
    async with httpx.AsyncClient() as client:
        adapter = klaviyo_at("https://crm.example.com/", policy, client)
        resolver["crm.example.com"] = ["127.0.0.1"]  # DNS rebinding after the settings were saved
        with respx.mock(assert_all_called=False) as mock:
            anything = mock.route().respond(200, json={"data": []})
            with pytest.raises(SettingsInvalid, match="base_url: its host is a loopback"):
                await adapter.check()
    assert not anything.called


async def test_a_url_that_slipped_past_validation_is_a_settings_error() -> None:
    # As an adapter built without validation (an older release's stored value) would call.
    config = KlaviyoConfig.model_construct(
        api_key=SecretStr("pk"), base_url="file:///etc/passwd", region=None
    )
    async with httpx.AsyncClient() as client:
        for policy in (UrlPolicy(), UrlPolicy(custom=True, private=True)):
            adapter = Klaviyo(
                config, AdapterContext(shop=SHOP_INFO, http=ProviderHttp(client, policy=policy))
            )
            with pytest.raises(SettingsInvalid) as caught:
                await adapter.find(subject())
            assert "passwd" not in str(caught.value)


# --- through the connections (storage on SQLite and PostgreSQL) ------------------------------------


async def test_custom_urls_only_with_the_server_setting(db: Database, resolver: dict[str, list[str]]) -> None:
    resolver["crm.example.com"] = ["93.184.216.34"]
    shipped = runtime_for(db)
    allowing = runtime_for(db, allow_custom_provider_urls=True)
    async with db.transaction() as session:
        session.add(Shop(domain=SHOP, name="Butik A"))
    async with db.transaction() as session:
        with pytest.raises(connections.ConfigInvalid, match="does not allow custom provider URLs"):
            await connections.configure(
                shipped, session, SHOP, "klaviyo", klaviyo_settings("https://crm.example.com")
            )
    async with db.transaction() as session:
        with pytest.raises(connections.ConfigInvalid, match="loopback, private"):
            await connections.configure(
                allowing, session, SHOP, "klaviyo", klaviyo_settings("https://127.1/")
            )
        row = await connections.configure(
            allowing, session, SHOP, "klaviyo", klaviyo_settings("https://crm.example.com/")
        )
        config = connections.load_config(allowing, row)
        assert isinstance(config, ProviderConfig) and config.root() == "https://crm.example.com"
        # An empty base_url takes the shop back to the declared host, wherever the server stands.
        row = await connections.configure(shipped, session, SHOP, "klaviyo", {"base_url": ""})
        assert connections.describe(connections.load_config(shipped, row))["base_url"] is None
    for rt in (shipped, allowing):
        await rt.http.aclose()


async def test_check_never_repeats_what_the_other_end_answered(db: Database, loopback_listener: str) -> None:
    async with db.transaction() as session:
        session.add(Shop(domain=SHOP, name="Butik A"))
    settings = klaviyo_settings(f"{loopback_listener}/klaviyo")
    # The tester's attempt from the issue: refused unless the operator allows both settings.
    for allowed in ({}, {"allow_custom_provider_urls": True}):
        rt = runtime_for(db, **allowed)
        async with db.transaction() as session:
            with pytest.raises(connections.ConfigInvalid):
                await connections.configure(rt, session, SHOP, "klaviyo", settings)
        await rt.http.aclose()
    local = runtime_for(db, allow_custom_provider_urls=True, allow_private_provider_urls=True)
    async with db.transaction() as session:
        await connections.configure(local, session, SHOP, "klaviyo", settings)
    async with db.transaction() as session:
        shop = await load_shop(session, SHOP)
        assert shop is not None
        results = await connections.check_connections(local, session, shop)
    async with db.session() as session:
        row = await connections.get_connection(session, SHOP, "klaviyo")
    await local.http.aclose()
    assert [(r.adapter, r.ok) for r in results] == [("klaviyo", False)]
    assert results[0].message == "klaviyo: HTTP 400 from GET /klaviyo/api/profiles"
    assert row is not None and row.last_error == results[0].message
    assert LEAK not in results[0].message and "root:" not in (row.last_error or "")


async def test_a_stored_connection_the_server_no_longer_accepts_fails_as_a_settings_error(
    runtime: Runtime,
) -> None:
    async with runtime.db.transaction() as session:
        # Stored by an older release: a file URL for Klaviyo, a private one for Brevo; Rule.io is fine.
        for adapter, values in (
            ("klaviyo", {"api_key": "pk", "base_url": "file:///etc/passwd"}),
            ("brevo", {"api_key": "xkeysib", "base_url": "http://127.0.0.1:9/v3"}),
            ("rule_io", {"api_key": "rk"}),
        ):
            session.add(
                AdapterConnection(
                    shop_domain=SHOP,
                    adapter=adapter,
                    enabled=True,
                    config_enc=runtime.vault.encrypt_json(values, connection_cell(SHOP, adapter)),
                )
            )
    with respx.mock(assert_all_called=True) as mock:
        mock.get("https://app.rule.io/api/v2/subscribers?limit=1").respond(200, json={"subscribers": []})
        async with runtime.db.transaction() as session:
            shop = await load_shop(session, SHOP)
            assert shop is not None
            built = {a.name: a for a in await connections.build_adapters(runtime, session, shop)}
            results = {r.adapter: r for r in await connections.check_connections(runtime, session, shop)}
            one = await connections.build_adapter(runtime, session, shop, "klaviyo")
    assert set(built) == {"klaviyo", "brevo", "rule_io"}
    assert results["rule_io"].ok and not results["klaviyo"].ok and not results["brevo"].ok
    for name in ("klaviyo", "brevo"):
        message = results[name].message
        assert message.startswith(f"{name}: its stored settings are no longer accepted (base_url: ")
        assert "set them again" in message and "passwd" not in message and "127.0.0.1" not in message
    assert built["klaviyo"].category == Klaviyo.category and built["klaviyo"].can_reduce
    with pytest.raises(SettingsInvalid):
        await one.find(subject())
    with pytest.raises(SettingsInvalid):
        await built["brevo"].erase(subject(), None)  # type: ignore[arg-type]
    async with runtime.db.session() as session:
        rows = {row.adapter: row for row in (await session.execute(select(AdapterConnection))).scalars()}
        shown = connections.shown_settings(runtime, rows["klaviyo"])
    assert rows["klaviyo"].status == "error" and rows["rule_io"].status == "ok"
    assert set(shown) == {"invalid"} and "passwd" not in shown["invalid"]
