"""customers/data_request: exports from every adapter become a register extract (JSON, HTML sv
and en) with the Art. 15 items, stored encrypted behind an expiring link."""

from __future__ import annotations

import json

from sqlalchemy import select

from plugin import evidence
from plugin.documents.store import artifacts_of, read_artifact
from plugin.ledger import load_shop
from plugin.models import Artifact, Request, shop_cell
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from tests.executor.doubles import SHOP, FakeSources, Ledger, add_request, newsletter_holding, order


async def test_extract_covers_the_article_15_checklist(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    sources.holdings["newsletter"] = [newsletter_holding()]
    sources.orders[1001] = order(1001, tracking="RR1SE")
    request_id = await add_request(runtime, "data_request", orders=[1001])
    await worker.drain(limit=20)

    async with runtime.db.session() as session:
        request = await session.get(Request, request_id)
        docs = {a.kind: a for a in await artifacts_of(session, SHOP, request_id)}
        texts = {k: (await read_artifact(session, runtime.vault, SHOP, a.id)) for k, a in docs.items()}
        log = [e.kind for e in await evidence.entries(session, SHOP, request_id)]
    assert request is not None and request.status == "done"
    assert set(docs) == {"extract_json", "extract_html_sv", "extract_html_en"}
    assert all(a.expires_at is not None for a in docs.values())
    assert ("newsletter", "export", "anna@example.se") in ledger.calls
    found = texts["extract_json"]
    assert found is not None
    extract = json.loads(found[1])
    assert extract["confirmation"] is True
    assert extract["data"]["newsletter"]["profile"]["email"] == "anna@example.se"
    assert extract["complaint_authority"]["name"].startswith("Integritetsskyddsmyndigheten")
    recipients = {r["system"]: r for r in extract["recipients"]}
    assert {r["title"] for r in recipients.values()} >= {"Newsletter Tool", "PostNord"}
    assert recipients["postnord"]["legal_name"] == "PostNord Sverige AB" and recipients["postnord"]["in_eea"]
    assert recipients["shopify"]["legal_name"] == "Shopify International Limited"
    assert recipients["newsletter"]["legal_name"] is None  # a test adapter: not in the table
    kept = [r for r in extract["retention"] if r["action"] == "keep"]
    assert kept and kept[0]["keep_until"] == "2031-12-31" and kept[0]["reference"]
    assert set(extract["purposes"]) >= {"accounting_record", "newsletter", "shipment"}
    assert extract["rights"][:4] == ["access", "rectification", "erasure", "restriction"]
    assert extract["gallra_records"][0]["id"] == request_id
    sv, en = texts["extract_html_sv"], texts["extract_html_en"]
    assert sv is not None and "Registerutdrag" in sv[1] and "Integritetsskyddsmyndigheten" in sv[1]
    assert en is not None and "Register extract" in en[1] and "kept until 2031-12-31" in en[1]
    assert "PostNord Sverige AB" in sv[1] and "Shopify International Limited" in en[1]
    assert "Kanada: EU-kommissionens beslut om adekvat skyddsnivå" in sv[1]
    assert log[0] == "planned" and "extract_built" in log and log[-1] == "request_done"
    # The adapters' raw exports are gone once the extract is built, and the e-mail copy too.
    async with runtime.db.session() as session:
        kinds = (
            (await session.execute(select(Artifact.kind).where(Artifact.request_id == request_id)))
            .scalars()
            .all()
        )
    assert "export_part" not in kinds


async def test_expired_extract_cannot_be_read(runtime: Runtime, worker: Worker, sources: FakeSources) -> None:
    from datetime import timedelta

    from plugin.models import utcnow

    request_id = await add_request(runtime, "data_request")
    await worker.drain(limit=20)
    async with runtime.db.transaction() as session:
        docs = await artifacts_of(session, SHOP, request_id)
        for doc in docs:
            doc.expires_at = utcnow() - timedelta(seconds=1)
    async with runtime.db.session() as session:
        assert await read_artifact(session, runtime.vault, SHOP, docs[0].id) is None
        assert await read_artifact(session, runtime.vault, "other.myshopify.com", docs[0].id) is None


async def test_shop_owner_is_e_mailed_once_with_an_expiring_link_in_the_shops_language(
    runtime: Runtime, sources: FakeSources
) -> None:
    import dataclasses
    from datetime import timedelta
    from types import SimpleNamespace
    from unittest import mock
    from urllib.parse import parse_qs, urlsplit

    import httpx

    from plugin.app import create_app
    from plugin.models import Shop, utcnow
    from plugin.outbox import deliver_queued
    from plugin.pipelines.data_request import notify_owner
    from plugin.pipelines.worker import Worker
    from tests.conftest import make_settings
    from tests.executor.conftest import fast_config
    from tests.fakes.smtp import SmtpSink

    async with runtime.db.transaction() as session:
        session.add(
            Shop(
                domain=SHOP,
                name="Demo",
                country="SE",
                contact_email_enc=runtime.vault.encrypt(
                    "owner@shop.se", shop_cell("contact_email_enc", SHOP)
                ),
            )
        )
    request_id = await add_request(runtime, "data_request")
    with SmtpSink() as sink:
        mailing = dataclasses.replace(
            runtime,
            settings=make_settings(runtime.db.url, **sink.settings(), app_url="https://gallra.example"),
        )
        await Worker(mailing, fast_config(), sources).drain(limit=20)
        async with runtime.db.session() as session:
            shop = await load_shop(session, SHOP)
            request = await session.get(Request, request_id)
        assert request is not None
        await notify_owner(SimpleNamespace(runtime=mailing), shop, request)  # type: ignore[arg-type]
        assert await deliver_queued(mailing) == 1
        (message,) = sink.messages
    assert message["To"] == "owner@shop.se"
    assert message["Subject"] == f"Gallra: registerutdraget för ärende {request_id} är klart"
    text = message.get_content()
    link = next(line for line in text.splitlines() if line.startswith("https://gallra.example/documents/"))
    assert "30 dagar" in text

    app = create_app(mailing)
    path = link.removeprefix("https://gallra.example")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        opened = await http.get(path)
        assert opened.status_code == 200 and "<html" in opened.text.lower() and 'lang="sv"' in opened.text
        query = parse_qs(urlsplit(link).query)
        other_doc = path.replace(f"/documents/{urlsplit(link).path.rsplit('/', 1)[1]}", "/documents/999999")
        assert (await http.get(other_doc)).status_code == 403
        forged = path.replace(f"expires={query['expires'][0]}", f"expires={int(query['expires'][0]) + 86400}")
        assert (await http.get(forged)).status_code == 403
        other_shop = path.replace("shop=", "shop=x")
        assert (await http.get(other_shop)).status_code == 403
        later = utcnow() + timedelta(days=31)
        with mock.patch("plugin.admin.pages.utcnow", return_value=later):
            assert (await http.get(path)).status_code == 403


async def test_gallra_records_list_the_subjects_requests_with_dates_and_states(
    runtime: Runtime, worker: Worker, sources: FakeSources
) -> None:
    """Gallra's own records (Art. 15): every request about the subject, by e-mail or by the same
    Shopify customer (an earlier one sent under another address), each with its dates and state;
    another customer's request is not listed."""
    earlier = await add_request(runtime, "data_request", email="old-address@example.se", key="earlier")
    async with runtime.db.transaction() as session:
        other = await session.get(Request, await add_request(runtime, email="bo@example.se", key="bo"))
        assert other is not None
        other.customer_id = 8
    request_id = await add_request(runtime, "data_request", key="now")
    await worker.drain(limit=40)

    async with runtime.db.session() as session:
        docs = {a.kind: a for a in await artifacts_of(session, SHOP, request_id)}
        found = await read_artifact(session, runtime.vault, SHOP, docs["extract_json"].id)
        html = await read_artifact(session, runtime.vault, SHOP, docs["extract_html_sv"].id)
    assert found is not None and html is not None
    records = json.loads(found[1])["gallra_records"]
    assert [r["id"] for r in records] == [earlier, request_id]
    first = records[0]
    # The earlier request may still be finishing when this one's extract is built.
    assert first["kind"] == "data_request" and first["status"] in {"in_progress", "finalizing", "done"}
    assert first["received_at"] < first["due_at"]
    assert ("completed_at" in first) == (first["status"] == "done")
    assert all(value is not None for r in records for value in r.values())
    assert f"<tr><td>{earlier}</td><td>Registerutdrag</td>" in html[1]
