"""Compliance without a Shopify token: after an uninstall (Shopify revokes the token and keeps
sending `customers/redact` for 48 hours), with a refused token refresh, or with every source
failing. The connected tools are still asked with what the request gives; what could not be
examined is listed on the certificate and the extract, with why; a request none of whose sources
could be examined is not `done`.

Shopify is the stateful Shopify fake, Klaviyo the respx fake on its router; the real sources
(`LiveSources`), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from markupsafe import escape
from sqlalchemy import select

from adapters.base import TemporaryFailure
from plugin import evidence
from plugin.connections import configure
from plugin.documents.certificate import certificate_document
from plugin.documents.store import artifacts_of, read_artifact
from plugin.holdings import Holding, Subject
from plugin.models import Request, Shop, Step, shop_cell, utcnow
from plugin.pipelines.sources import LiveSources
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from tests.executor.conftest import Clock, after_shopify_erasure, fast_config
from tests.executor.doubles import (
    SHOP as DEMO,
)
from tests.executor.doubles import (
    FakeSources,
    Ledger,
    RecordingAdapter,
    add_request,
    newsletter_holding,
)
from tests.fakes.klaviyo import KlaviyoFake

SHOP = "tokenless.myshopify.com"
EMAIL = "anna@example.se"
ORDERS = [450789469, 450789470]

UNINSTALLED_EN = (
    "the app was uninstalled and Shopify revoked its access, so the shop's customer record, orders and "
    "shipments could not be read; 2 orders named in the request could not be examined"
)
UNINSTALLED_SV = (
    "appen avinstallerades och Shopify drog in dess åtkomst, så butikens kundpost, ordrar och leveranser "
    "kunde inte läsas; 2 ordrar som förfrågan nämner kunde inte granskas"
)


async def _uninstalled_shop(runtime: Runtime) -> None:
    """A shop whose uninstall was confirmed an hour ago: its tokens are gone, its connections not."""
    async with runtime.db.transaction() as session:
        session.add(
            Shop(
                domain=SHOP,
                name="Tokenless",
                country="SE",
                timezone="Europe/Stockholm",
                status="uninstalled",
                uninstalled_at=utcnow() - timedelta(hours=1),
            )
        )


async def _documents(runtime: Runtime, request_id: int) -> dict[str, str]:
    async with runtime.db.session() as session:
        texts = {}
        for artifact in await artifacts_of(session, SHOP, request_id):
            found = await read_artifact(session, runtime.vault, SHOP, artifact.id)
            assert found is not None
            texts[artifact.kind] = found[1]
    return texts


async def test_redact_after_uninstall_asks_the_newsletter_tool_and_lists_shopify_not_examined(
    runtime: Runtime, shopify_fake: Any
) -> None:
    klaviyo = KlaviyoFake(router=shopify_fake.router)
    profile = klaviyo.add_profile(EMAIL)
    await _uninstalled_shop(runtime)
    async with runtime.db.transaction() as session:
        await configure(runtime, session, SHOP, "klaviyo", {"api_key": klaviyo.api_key})
    request_id = await add_request(runtime, "customer_redact", email=EMAIL, orders=ORDERS, domain=SHOP)

    await Worker(runtime, fast_config(), LiveSources(runtime)).drain(limit=40)

    async with runtime.db.session() as session:
        request = await session.get(Request, request_id)
        log = {e.kind: e for e in await evidence.entries(session, SHOP, request_id)}
    assert request is not None and request.status == "done", request and request.last_error
    # Klaviyo was asked with the request's e-mail, and the profile went (the plan reduces it to
    # its suppression entry: suppressed, then deleted by id).
    assert klaviyo.count("GET", "/api/profiles") >= 1
    assert EMAIL in klaviyo.suppressed and profile not in klaviyo.profiles
    # Shopify itself was never called: there is no token to call it with.
    assert not [r for r in shopify_fake.router.calls if "myshopify.com" in str(r.request.url)]

    texts = await _documents(runtime, request_id)
    certificate = json.loads(texts["certificate_json"])
    assert certificate["summary"] == {
        "complete": False,
        "state": "done_with_gaps",
        "not_examined": ["shopify"],
    }
    (gap,) = certificate["not_examined"]
    assert gap["system"] == "shopify"
    assert gap["title"] == "Shopify"
    assert gap["reason"] == "uninstalled"
    assert gap["detail"] == ""
    assert gap["orders_not_examined"] == 2
    assert gap["why_en"] == UNINSTALLED_EN
    assert gap["why_sv"] == UNINSTALLED_SV
    assert {r["system"] for r in certificate["reduced"]} == {"klaviyo"}
    # Counted, never listed: the order ids and the address stay out of the document.
    assert not any(str(order) in texts["certificate_json"] for order in ORDERS)
    assert EMAIL not in texts["certificate_json"]
    # The stored HTML is in the shop's language; the English one is rendered from the same JSON.
    html_sv = texts["certificate_html"]
    assert (
        "Inte granskat" in html_sv
        and "Klart med luckor" in html_sv
        and str(escape(UNINSTALLED_SV)) in html_sv
    )
    async with runtime.db.session() as session:
        request = await session.get(Request, request_id)
        assert request is not None
        html_en = await certificate_document(session, runtime.vault, request, "en")
    assert html_en is not None
    assert (
        "Not examined" in html_en and "Done with gaps" in html_en and str(escape(UNINSTALLED_EN)) in html_en
    )
    # The completion itself names the gap, and the plan recorded it.
    assert log["request_done"].payload["not_examined"] == ["shopify"]
    assert log["planned"].payload["not_examined"][0]["reason"] == "uninstalled"
    assert log["certificate_issued"].payload["not_examined"] == 1


async def test_data_request_with_refused_token_refresh_exports_the_tools_and_lists_shopify(
    runtime: Runtime, shopify_fake: Any
) -> None:
    # The shop is installed as far as Gallra knows, but its access token has lapsed and Shopify
    # refuses the refresh token (revoked access).
    shopify_fake.add_shop(SHOP, country="SE", timezone="Europe/Stockholm", token=None)
    klaviyo = KlaviyoFake(router=shopify_fake.router)
    klaviyo.add_profile(EMAIL)
    now = utcnow()
    async with runtime.db.transaction() as session:
        session.add(
            Shop(
                domain=SHOP,
                name="Tokenless",
                country="SE",
                timezone="Europe/Stockholm",
                access_token_enc=runtime.vault.encrypt("shpat_lapsed", shop_cell("access_token_enc", SHOP)),
                access_token_expires_at=now - timedelta(minutes=5),
                refresh_token_enc=runtime.vault.encrypt(
                    "shprt_revoked", shop_cell("refresh_token_enc", SHOP)
                ),
                refresh_token_expires_at=now + timedelta(days=30),
            )
        )
        await configure(runtime, session, SHOP, "klaviyo", {"api_key": klaviyo.api_key})
    request_id = await add_request(runtime, "data_request", email=EMAIL, orders=ORDERS[:1], domain=SHOP)

    await Worker(runtime, fast_config(), LiveSources(runtime)).drain(limit=40)

    async with runtime.db.session() as session:
        request = await session.get(Request, request_id)
    assert request is not None and request.status == "done", request and request.last_error
    texts = await _documents(runtime, request_id)
    extract = json.loads(texts["extract_json"])
    # The tool's data is in the copy; Shopify's is not, and the extract says why.
    assert set(extract["data"]) == {"klaviyo"}
    assert extract["data"]["klaviyo"]
    assert EMAIL in texts["extract_json"]
    assert extract["summary"] == {"complete": False, "state": "done_with_gaps", "not_examined": ["shopify"]}
    (gap,) = extract["not_examined"]
    assert (gap["system"], gap["reason"], gap["orders_not_examined"], gap["detail"]) == (
        "shopify",
        "token_refused",
        1,
        "",
    )
    assert gap["why_en"] == (
        "Shopify refused the app's access (token refresh refused or access revoked), so the shop's "
        "customer record, orders and shipments could not be read; 1 order named in the request "
        "could not be examined"
    )
    assert (
        "Kopian är ofullständig" in texts["extract_html_sv"]
        and str(escape(gap["why_sv"])) in texts["extract_html_sv"]
    )
    assert (
        "This copy is incomplete" in texts["extract_html_en"]
        and str(escape(gap["why_en"])) in texts["extract_html_en"]
    )
    assert str(ORDERS[0]) not in json.dumps(extract["not_examined"])


async def test_a_request_none_of_whose_sources_could_be_examined_is_not_done(
    runtime: Runtime, shopify_fake: Any
) -> None:
    await _uninstalled_shop(runtime)  # Shopify unreadable, and no tool connected
    request_id = await add_request(runtime, "customer_redact", email=EMAIL, orders=ORDERS, domain=SHOP)

    await Worker(runtime, fast_config(), LiveSources(runtime)).drain(limit=40)

    async with runtime.db.session() as session:
        request = await session.get(Request, request_id)
        log = [e.kind for e in await evidence.entries(session, SHOP, request_id)]
        docs = await artifacts_of(session, SHOP, request_id)
    assert request is not None and request.status == "failed"
    assert request.last_error == "no source could be examined (shopify: uninstalled)"
    assert "request_failed" in log and "request_done" not in log
    assert docs == []  # no certificate claims an erasure nothing was examined for
    # Gallra's working copy stays (encrypted) so the operator can retry once the shop is back.
    assert request.email_enc is not None


async def test_a_failing_tool_is_not_examined_while_shopify_and_the_others_are_asked(
    runtime: Runtime, shopify_fake: Any
) -> None:
    shopify_fake.add_shop(SHOP, country="SE", timezone="Europe/Stockholm", token="shpat_live")
    shopify_fake.add_customer(SHOP, 7, email=EMAIL, email_marketing="SUBSCRIBED")
    klaviyo = KlaviyoFake(router=shopify_fake.router)
    klaviyo.add_profile(EMAIL)
    async with runtime.db.transaction() as session:
        session.add(
            Shop(
                domain=SHOP,
                name="Tokenless",
                country="SE",
                timezone="Europe/Stockholm",
                access_token_enc=runtime.vault.encrypt("shpat_live", shop_cell("access_token_enc", SHOP)),
            )
        )
        # A key Klaviyo no longer accepts (revoked by the shop owner): every call answers 401.
        await configure(runtime, session, SHOP, "klaviyo", {"api_key": "pk_revoked"})
    request_id = await add_request(runtime, "customer_redact", email=EMAIL, domain=SHOP)

    clock = Clock()
    worker = Worker(runtime, fast_config(clock=clock), LiveSources(runtime))
    await worker.drain(limit=40)
    await after_shopify_erasure(worker, clock, shopify_fake, SHOP)

    async with runtime.db.session() as session:
        request = await session.get(Request, request_id)
        log = {e.kind: e for e in await evidence.entries(session, SHOP, request_id)}
    assert request is not None and request.status == "done", request and request.last_error
    # Shopify was read and acted on although Klaviyo failed.
    mutations = [name for _, name, _ in shopify_fake.mutations]
    assert "customerEmailMarketingConsentUpdate" in mutations
    assert klaviyo.suppressed == set()
    certificate = json.loads((await _documents(runtime, request_id))["certificate_json"])
    assert certificate["summary"]["not_examined"] == ["klaviyo"]
    (gap,) = certificate["not_examined"]
    assert (gap["system"], gap["title"], gap["reason"], gap["orders_not_examined"]) == (
        "klaviyo",
        "Klaviyo",
        "connection_failed",
        0,
    )
    assert gap["detail"] and "401" in gap["detail"] and "pk_revoked" not in gap["detail"]
    assert gap["why_en"] == f"the connection failed: {gap['detail']}"
    assert gap["why_sv"] == f"anslutningen misslyckades: {gap['detail']}"
    assert "klaviyo" not in log["planned"].payload["systems"]
    assert log["request_done"].payload["not_examined"] == ["klaviyo"]


class _Unreachable(RecordingAdapter):
    """A tool whose `find` always meets a temporary failure (its provider keeps answering 503)."""

    name = "unreachable"
    title = "Unreachable Tool"

    async def find(self, subject: Subject) -> list[Holding]:
        self.ledger.calls.append((self.name, "find", ""))
        raise TemporaryFailure(self.name, "the provider answered HTTP 503")


async def test_a_temporary_failure_is_retried_before_it_is_recorded_as_not_examined(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    sources.enabled = [RecordingAdapter, _Unreachable]
    sources.holdings["newsletter"] = [newsletter_holding()]
    request_id = await add_request(runtime, "customer_redact")

    await worker.drain(limit=60, settle=0.3)

    async with runtime.db.session() as session:
        request = await session.get(Request, request_id)
        log = {e.kind: e for e in await evidence.entries(session, DEMO, request_id)}
    assert request is not None and request.status == "done", request and request.last_error
    # Planning was tried again while attempts were left; the last attempt recorded the gap.
    tries = worker.config.max_attempts
    assert ledger.count("find", "unreachable") == {"": tries}
    # Once per planning attempt, and once more to see the erasure take effect.
    assert ledger.count("find", "newsletter") == {"anna@example.se": tries + 1}
    assert ledger.erasures("newsletter") == {"profile:1": 1}
    (gap,) = log["planned"].payload["not_examined"]
    assert (gap["system"], gap["title"], gap["reason"], gap["detail"]) == (
        "unreachable",
        "Unreachable Tool",
        "connection_failed",
        "the provider answered HTTP 503",
    )
    assert log["request_done"].payload["not_examined"] == ["unreachable"]


async def test_a_redact_for_a_purged_or_unknown_shop_erases_gallras_copy_and_lists_shopify(
    runtime: Runtime, shopify_fake: Any
) -> None:
    # A purged shop (shop/redact ran: no token, no connections), and one Gallra never had a row for:
    # no source could ever be asked, nothing failed, and a late or replayed redact must not leave
    # Gallra's own copy of the subject behind.
    async with runtime.db.transaction() as session:
        session.add(Shop(domain=SHOP, name=None, country="SE", status="redacted"))
    other = "never-here.myshopify.com"
    purged = await add_request(runtime, "customer_redact", email=EMAIL, orders=ORDERS, domain=SHOP)
    unknown = await add_request(runtime, "customer_redact", email=EMAIL, orders=ORDERS[:1], domain=other)

    await Worker(runtime, fast_config(), LiveSources(runtime)).drain(limit=40, settle=0.3)

    for domain, request_id, reason, orders in (
        (SHOP, purged, "shop_redacted", 2),
        (other, unknown, "not_installed", 1),
    ):
        async with runtime.db.session() as session:
            request = await session.get(Request, request_id)
            docs = {a.kind: a for a in await artifacts_of(session, domain, request_id)}
            found = await read_artifact(session, runtime.vault, domain, docs["certificate_json"].id)
            steps = (await session.execute(select(Step).where(Step.request_id == request_id))).scalars().all()
        assert request is not None and request.status == "done", request and request.last_error
        # Only Gallra's own copy was planned (here kept encrypted until its rule ends).
        assert [s.system for s in steps] == ["gallra"] and steps[0].state in ("done", "held")
        assert found is not None
        certificate = json.loads(found[1])
        assert certificate["summary"] == {
            "complete": False,
            "state": "done_with_gaps",
            "not_examined": ["shopify"],
        }
        assert [
            (g["system"], g["reason"], g["orders_not_examined"]) for g in certificate["not_examined"]
        ] == [("shopify", reason, orders)]


async def test_admin_api_refusing_the_token_is_not_examined_and_the_tool_still_erases(
    runtime: Runtime, shopify_fake: Any
) -> None:
    # Installed as far as Gallra knows, but the Admin API answers 401 to its token (revoked access).
    shopify_fake.add_shop(SHOP, country="SE", timezone="Europe/Stockholm", token="shpat_current")
    klaviyo = KlaviyoFake(router=shopify_fake.router)
    profile = klaviyo.add_profile(EMAIL)
    async with runtime.db.transaction() as session:
        session.add(
            Shop(
                domain=SHOP,
                name="Tokenless",
                country="SE",
                timezone="Europe/Stockholm",
                access_token_enc=runtime.vault.encrypt("shpat_revoked", shop_cell("access_token_enc", SHOP)),
            )
        )
        await configure(runtime, session, SHOP, "klaviyo", {"api_key": klaviyo.api_key})
    request_id = await add_request(runtime, "customer_redact", email=EMAIL, orders=ORDERS, domain=SHOP)

    await Worker(runtime, fast_config(), LiveSources(runtime)).drain(limit=40, settle=0.3)

    async with runtime.db.session() as session:
        request = await session.get(Request, request_id)
    assert request is not None and request.status == "done", request and request.last_error
    assert profile not in klaviyo.profiles and EMAIL in klaviyo.suppressed
    assert shopify_fake.mutations == []
    certificate = json.loads((await _documents(runtime, request_id))["certificate_json"])
    assert [(g["system"], g["reason"], g["orders_not_examined"]) for g in certificate["not_examined"]] == [
        ("shopify", "token_refused", 2)
    ]
