"""No logger writes personal data or secrets, at DEBUG, in any process of a whole flow.

The app runs under a real uvicorn server with the logging `gallra serve` sets up (plugin.logs) at
DEBUG: signed webhooks (a data request and a customer redaction, plus a forged and a malformed
one) arrive over HTTP, the worker carries them out through Klaviyo, Mailchimp and Brevo (whose URLs
carry the e-mail address, the phone number, the Mailchimp member hash and the providers' ids) and
through the e-mail channel (PostNord, to an SMTP sink), a shop installs the app through
/auth/callback (code, state, hmac in the query string) and an admin page is asked for with a
session token in its URL. Everything written to stdout and stderr (this process, and on SQLite
intake's writer process, which shares its stderr) is searched for every personal value and secret
in plain, URL-encoded, lower- and upper-case forms."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import logging
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import httpx
import pytest
import uvicorn

from adapters.mailchimp import subscriber_hash
from plugin import connections, logs
from plugin.app import create_app
from plugin.cli.simulate import build_payload, signed_request
from plugin.clocks import JOBS
from plugin.crypto import Vault
from plugin.db import Database
from plugin.models import Shop, shop_cell
from plugin.pipelines.sources import LiveSources
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from plugin.settings import SettingsError
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET, make_settings
from tests.executor.conftest import fast_config
from tests.fakes.klaviyo import KlaviyoFake
from tests.fakes.mailchimp import MailchimpFake
from tests.fakes.smtp import SmtpSink

SHOP = "logs-shop.myshopify.com"
INSTALLING = "new-shop.myshopify.com"
EMAIL = "Anna.Lindqvist@example.se"
PHONE = "+46701234567"
FIRST, LAST = "Annika", "Lindqvist"
CUSTOMER = 7390011223344
ORDER = 5550001112223
TRACKING = "RR987654321SE"
BREVO_CONTACT = 88812345
SHOP_TOKEN = "shpat_logs_0123456789abcdef"
KLAVIYO_KEY = "pk_logs_secret_4711"
MAILCHIMP_KEY = "0123456789abcdef0123456789abcdef-us21"
BREVO_KEY = "xkeysib-logs-secret-0815"
SESSION_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzaWQiOiJsb2dzIn0.c2lnbmF0dXJlLWxvZ3M"
BREVO = "https://api.brevo.com/v3"


def forms(value: str) -> set[str]:
    """The ways a value can show up in a line: as is, URL-encoded either way, in either case."""
    found = {value, quote(value, safe=""), quote_plus(value), quote(value)}
    return {form for raw in found for form in (raw, raw.lower(), raw.upper())}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _signed_query(params: dict[str, str]) -> dict[str, str]:
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    return {**params, "hmac": hmac.new(TEST_SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()}


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """plugin.logs changes process-wide state: put it back for the tests that run after this one."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("gallra").level)
    access = logging.getLogger("uvicorn.access")
    saved_access = (list(access.handlers), access.propagate)
    sqlalchemy = logging.getLogger("sqlalchemy").level
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.getLogger("gallra").setLevel(saved[2])
    access.handlers[:], access.propagate = saved_access
    logging.getLogger("sqlalchemy").setLevel(sqlalchemy)


def _brevo_routes(router: Any) -> None:
    contact = {
        "id": BREVO_CONTACT,
        "email": EMAIL.lower(),
        "emailBlacklisted": False,
        "listIds": [3],
        "attributes": {"FIRSTNAME": FIRST, "LASTNAME": LAST, "SMS": PHONE},
    }
    router.get(url__regex=rf"^{BREVO}/contacts/[^/?]+%40[^/?]+").respond(200, json=contact)
    router.route(url__regex=rf"^{BREVO}/contacts/{BREVO_CONTACT}").respond(204)


async def _setup(runtime: Runtime, shopify_fake: Any) -> tuple[KlaviyoFake, MailchimpFake]:
    shopify_fake.add_shop(SHOP, country="SE", timezone="Europe/Stockholm", token=SHOP_TOKEN)
    shopify_fake.add_shop(INSTALLING, token=None)
    shopify_fake.add_customer(
        SHOP,
        CUSTOMER,
        email=EMAIL,
        phone=PHONE,
        first_name=FIRST,
        last_name=LAST,
        email_marketing="SUBSCRIBED",
    )
    delivered = datetime.now(UTC) - timedelta(days=5 * 365 - 5)
    shopify_fake.add_order(
        SHOP,
        ORDER,
        customer_id=CUSTOMER,
        created_at=datetime.now(UTC) - timedelta(days=5 * 365),
        fulfillments=[
            {
                "id": 1,
                "delivered_at": delivered,
                "tracking": [{"company": "PostNord", "number": TRACKING, "url": None}],
            }
        ],
    )
    klaviyo = KlaviyoFake(router=shopify_fake.router, api_key=KLAVIYO_KEY)
    klaviyo.add_profile(EMAIL.lower(), phone=PHONE)  # its id is in the URLs that erase it
    mailchimp = MailchimpFake(router=shopify_fake.router, api_key=MAILCHIMP_KEY)
    mailchimp.add_member("list1", EMAIL.lower())
    _brevo_routes(shopify_fake.router)
    # The server under test is real: calls to it leave respx's mocks.
    shopify_fake.router.route(host="127.0.0.1").pass_through()
    async with runtime.db.transaction() as session:
        session.add(
            Shop(
                domain=SHOP,
                name="Logs",
                country="SE",
                timezone="Europe/Stockholm",
                access_token_enc=runtime.vault.encrypt(SHOP_TOKEN, shop_cell("access_token_enc", SHOP)),
                contact_email_enc=runtime.vault.encrypt(
                    "owner@example.com", shop_cell("contact_email_enc", SHOP)
                ),
            )
        )
        await connections.configure(runtime, session, SHOP, "klaviyo", {"api_key": KLAVIYO_KEY})
        await connections.configure(runtime, session, SHOP, "mailchimp", {"api_key": MAILCHIMP_KEY})
        await connections.configure(runtime, session, SHOP, "brevo", {"api_key": BREVO_KEY})
        await connections.configure(runtime, session, SHOP, "postnord", {})
    return klaviyo, mailchimp


async def _webhooks(client: httpx.AsyncClient, runtime: Runtime) -> list[str]:
    """Posts the deliveries; returns the signatures (secrets of their own)."""
    signatures = []
    for topic in ("customers/data_request", "customers/redact"):
        payload = build_payload(topic, SHOP, CUSTOMER, EMAIL, PHONE, [ORDER])
        payload["customer"] |= {"first_name": FIRST, "last_name": LAST}
        body = json.dumps(payload).encode()
        headers = signed_request(runtime.settings, topic, body, SHOP)
        signatures.append(headers["X-Shopify-Hmac-Sha256"])
        assert (await client.post(f"/webhooks/{topic}", content=body, headers=headers)).status_code == 200
        forged = {**headers, "X-Shopify-Hmac-Sha256": "Zm9yZ2Vk" + signatures[-1][8:]}
        assert (await client.post(f"/webhooks/{topic}", content=body, headers=forged)).status_code == 401
        # A schema failure whose offending values are the personal data.
        bad = json.dumps({**payload, "customer": {"id": EMAIL, "email": PHONE}}).encode()
        headers = signed_request(runtime.settings, topic, bad, SHOP)
        assert (await client.post(f"/webhooks/{topic}", content=bad, headers=headers)).status_code == 400
    return signatures


async def _install(client: httpx.AsyncClient, shopify_fake: Any) -> list[str]:
    """The OAuth install of another shop; returns the code, state and hmac it carried."""
    started = await client.get("/auth/install", params={"shop": INSTALLING})
    assert started.status_code == 302
    state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
    code = shopify_fake.authorize(INSTALLING)
    query = _signed_query(
        {"code": code, "shop": INSTALLING, "state": state, "timestamp": str(int(time.time()))}
    )
    assert (await client.get("/auth/callback", params=query)).status_code == 302
    return [code, state, query["hmac"]]


async def test_a_whole_flow_at_debug_writes_no_personal_data(
    db: Database,
    shopify_fake: Any,
    capfd: pytest.CaptureFixture[str],
    restored_logging: None,
) -> None:
    logs.configure(logging.DEBUG)  # what `gallra serve` does with GALLRA_LOG_LEVEL=DEBUG
    port = _free_port()
    with SmtpSink() as sink:
        settings = make_settings(db.url, **sink.settings(), app_url=f"http://127.0.0.1:{port}")
        async with httpx.AsyncClient(timeout=5.0) as http:
            runtime = Runtime(settings=settings, db=db, vault=Vault(TEST_ENCRYPTION_KEY), http=http)
            klaviyo, mailchimp = await _setup(runtime, shopify_fake)
            [profile] = klaviyo.profiles
            config = uvicorn.Config(
                create_app(runtime), host="127.0.0.1", port=port, http="httptools", **logs.UVICORN
            )
            server = uvicorn.Server(config)
            serving = asyncio.create_task(server.serve())
            while not server.started:  # noqa: ASYNC110  (uvicorn's server has a flag, no event)
                await asyncio.sleep(0.01)
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10.0) as client:
                    signatures = await _webhooks(client, runtime)
                    secrets = await _install(client, shopify_fake)
                    page = await client.get(
                        "/admin/api/requests/1", params={"shop": SHOP, "id_token": SESSION_TOKEN}
                    )
                    assert page.status_code == 401
                    # A path no route matches is not written either (it could be anything).
                    nowhere = await client.get(f"/customers/{quote(EMAIL)}", params={"phone": PHONE})
                    assert nowhere.status_code == 404
            finally:
                server.should_exit = True
                await serving
            worker = Worker(runtime, fast_config(), LiveSources(runtime))
            await worker.drain(limit=80)
            for job in JOBS:  # the outbox sends the PostNord erasure e-mail on its clock
                if job.name == "outbox":
                    await job.func(runtime)
    # The flow did reach every system, with the values the logs must not show.
    assert mailchimp.forgotten == {("list1", subscriber_hash(EMAIL.lower()))}
    assert klaviyo.count("GET", "/profiles") >= 2  # looked up by e-mail and by phone
    assert any(route.calls for route in shopify_fake.router.routes if "brevo" in str(route.pattern))
    assert any(TRACKING in message.get_content() for message in sink.messages)  # PostNord's

    captured = capfd.readouterr()
    written = captured.out + captured.err
    # ...and the logs were written, at DEBUG, by Gallra's loggers in each process.
    assert "gallra.access: POST /webhooks/customers/redact 200" in written
    assert "gallra.access: GET /auth/callback 302" in written
    assert "gallra.access: GET /admin/api/requests/{request_id:int} 401" in written
    assert "gallra.access: GET (no route) 404" in written
    assert "stored customers/redact delivery" in written
    assert "e-mail" in written and " sent" in written
    if db.is_sqlite:
        assert "gallra.intake.writer: intake's writer process started" in written

    values = [
        EMAIL, PHONE, PHONE.lstrip("+"), PHONE[3:], FIRST, LAST, f"{FIRST} {LAST}", str(CUSTOMER), str(ORDER),
        TRACKING, str(BREVO_CONTACT), subscriber_hash(EMAIL.lower()), profile,
        SHOP_TOKEN, KLAVIYO_KEY, MAILCHIMP_KEY, BREVO_KEY, SESSION_TOKEN, *signatures, *secrets,
    ]  # fmt: skip
    leaks = sorted({form for value in values for form in forms(value) if form in written})
    assert not leaks, leaks


def test_no_exception_message_is_written(restored_logging: None) -> None:
    """Exception messages quote values (httpx names the URL, PostgreSQL a key's value): a written
    traceback names each exception's class and frames only, from Gallra's loggers and libraries'."""
    stream = io.StringIO()
    logs.configure("DEBUG", stream=stream)
    url = f"{BREVO}/contacts/{quote(EMAIL, safe='')}"
    request = httpx.Request("GET", url)
    try:
        try:
            raise KeyError(PHONE)
        except KeyError as exc:
            raise httpx.HTTPStatusError(
                f"Client error for url {url}", request=request, response=httpx.Response(404)
            ) from exc
    except httpx.HTTPStatusError as exc:
        logging.getLogger("gallra.test").exception("lookup failed")
        logging.getLogger("apscheduler.scheduler").warning(
            "Error getting due jobs from job store %r: %s", "default", exc
        )
        logging.getLogger("sqlalchemy.pool").error("Exception during reset or similar", exc_info=exc)
    logging.getLogger("asyncio").error(
        f"Exception in callback lookup({EMAIL!r})\nhandle: <Handle lookup({PHONE!r})>"
    )
    logging.getLogger("httpx").info(f"HTTP Request: GET {url}")  # below a library's floor
    written = stream.getvalue()
    assert written.count("httpx.HTTPStatusError (message withheld)") == 2
    assert "KeyError (message withheld)" in written and "direct cause" in written
    assert "Error getting due jobs from job store 'default': httpx.HTTPStatusError" in written
    assert "ERROR asyncio: Exception in callback lookup\n" in written
    assert "test_no_personal_data_in_logs.py" in written  # the frames are there
    leaks = sorted({form for value in (EMAIL, PHONE) for form in forms(value) if form in written})
    assert not leaks, written


def test_a_bad_log_level_names_the_valid_ones() -> None:
    with pytest.raises(SettingsError, match="GALLRA_LOG_LEVEL is invalid: 'verbose' \\(valid: DEBUG, INFO"):
        logs.level_of("verbose")
    assert logs.level_of("warning") == logging.WARNING
