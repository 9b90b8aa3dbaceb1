"""What the shop owner sees and does, through the pages and the JSON API."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
from sqlalchemy import select, update

from plugin import evidence
from plugin.models import AdapterConnection, Evidence, Shop, Step, artifact_cell, cell_of
from plugin.runtime import Runtime
from plugin.sweeps.schedule import run_queued_previews
from tests.admin.conftest import SHOP_A, SHOP_B
from tests.admin.helpers import bearer, csrf_of, get_page, post_form
from tests.admin.seed import Seeded


async def test_overview_shows_open_requests_overdue_sweeps_problems_and_chart(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    a, _ = shops
    html = (await get_page(client, runtime, SHOP_A, "/admin")).text
    assert "Open requests" in html
    assert 'class="overdue"' in html and "3 days overdue" in html
    assert "27 days left" in html
    assert "Brevo" in html  # the connection with a problem
    assert "<svg" in html and html.count('class="bar"') >= 8
    assert "10 requests received, 6 erasures done." in html
    assert "Next sweep:" in html and "03:00" in html
    data = (await client.get("/admin/api/overview", headers=bearer(runtime, SHOP_A))).json()
    assert data["problem_adapters"] == ["brevo"]
    assert len(data["chart"]) == 90
    assert sum(day["requests"] for day in data["chart"]) == 10
    overdue = [row for row in data["open_requests"] if row["overdue"]]
    assert [row["id"] for row in overdue] == [a.overdue_request]


async def test_swedish_shop_reads_swedish(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    html = (await get_page(client, runtime, SHOP_B, "/admin")).text
    assert '<html lang="sv">' in html
    assert "Öppna ärenden" in html and "dagar försenat" in html
    policy = (await get_page(client, runtime, SHOP_B, "/admin/policy")).text
    assert "En order som läggs i dag:" in policy and "Bokföringslagen" in policy


async def test_request_page_shows_plan_steps_timeline_and_downloads(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    a, _ = shops
    html = (await get_page(client, runtime, SHOP_A, f"/admin/requests/{a.open_request}")).text
    assert "kept until 2033-12-31 because accounting records, 7 years (Bokföringslagen" in html
    assert "reduced: personal details removed" in html
    assert "Request received" in html and "Plan made" in html
    assert f'action="/admin/steps/{a.failed_step}/retry"' in html
    # Every form carries the page's CSRF value (macros render with the page's context).
    assert html.count(f'name="csrf" value="{csrf_of(html)}"') == html.count("<form ")
    assert f'action="/admin/steps/{a.email_step}/confirm"' in html
    assert "GAL-7Q2" in html and "job-77" in html
    assert f'href="/admin/artifacts/{a.certificate}"' in html
    # The customer is recognisable, the address is not readable.
    assert "jane.doe@example.com" not in html and "j•••@example.com" in html
    detail = (
        await client.get(f"/admin/api/requests/{a.open_request}", headers=bearer(runtime, SHOP_A))
    ).json()
    assert detail["request"]["email"] == "j•••@example.com"
    assert {step["state"] for step in detail["steps"]} >= {"failed", "awaiting_confirmation", "held"}


async def test_retry_through_the_page_hands_the_step_back_to_the_executor(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    a, _ = shops
    response = await post_form(
        client, runtime, SHOP_A, f"/admin/steps/{a.failed_step}/retry", {}, csrf_from=SHOP_A
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"/admin/requests/{a.open_request}?")
    assert "done=retried" in response.headers["location"]
    async with runtime.db.session() as session:
        step = (await session.execute(select(Step).where(Step.id == a.failed_step))).scalar_one()
        kinds = list(
            (await session.execute(select(Evidence.kind).where(Evidence.shop_domain == SHOP_A))).scalars()
        )
    assert step.state == "pending" and step.attempts == 0
    assert "step_retried" in kinds
    again = await client.post(f"/admin/api/steps/{a.failed_step}/retry", headers=bearer(runtime, SHOP_A))
    assert again.status_code == 409


async def test_confirm_through_the_api_needs_a_note_and_marks_the_step_done(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    a, _ = shops
    path = f"/admin/api/steps/{a.email_step}/confirm"
    assert (await client.post(path, headers=bearer(runtime, SHOP_A), json={"note": "  "})).status_code == 409
    done = await client.post(path, headers=bearer(runtime, SHOP_A), json={"note": "PostNord replied 3 May"})
    assert done.status_code == 200
    async with runtime.db.session() as session:
        step = (await session.execute(select(Step).where(Step.id == a.email_step))).scalar_one()
        payloads = [
            evidence.readable(row)
            for row in (
                await session.execute(select(Evidence).where(Evidence.shop_domain == SHOP_A))
            ).scalars()
        ]
    assert (step.state, step.outcome) == ("done", "confirmed")
    assert "PostNord replied" not in json.dumps(payloads)  # the note never enters evidence


async def test_certificate_download(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    a, _ = shops
    response = await get_page(client, runtime, SHOP_A, f"/admin/artifacts/{a.certificate}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert "attachment" in response.headers["content-disposition"]
    assert response.json() == {"certificate": "erasure", "request": a.open_request}


async def test_audit_page_verifies_the_chain_and_exports(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    html = (await get_page(client, runtime, SHOP_A, "/admin/audit")).text
    assert "The evidence chain is intact (3 entries verified)." in html
    exported = (await get_page(client, runtime, SHOP_A, "/admin/audit/export.csv")).text
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [row["seq"] for row in rows] == ["1", "2", "3"]
    assert [row["kind"] for row in rows] == ["request_received", "plan_made", "step_done"]
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Evidence).where(Evidence.shop_domain == SHOP_A, Evidence.seq == 2).values(kind="altered")
        )
    html = (await get_page(client, runtime, SHOP_A, "/admin/audit")).text
    assert "The evidence chain is broken at entry 2." in html
    api = (await client.get("/admin/api/evidence", headers=bearer(runtime, SHOP_A))).json()
    assert api["verified"] == {"ok": False, "entries": 2, "first_broken_seq": 2}
    # Shop B's chain is its own and still whole.
    b_html = (await get_page(client, runtime, SHOP_B, "/admin/audit")).text
    assert "Beviskedjan är hel (3 poster kontrollerade)." in b_html


async def test_policy_edits_are_validated_by_the_engine_and_forcing_is_recorded(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    html = (await get_page(client, runtime, SHOP_A, "/admin/policy")).text
    assert "An order placed today:" in html and "legal minimum" in html
    base = {"preset": "SE", "fiscal_year_end": "06-30"}
    ok = await post_form(
        client, runtime, SHOP_A, "/admin/policy", {**base, "period.SE-1": "10y"}, csrf_from=SHOP_A
    )
    assert ok.status_code == 303
    short = {**base, "period.SE-1": "3y"}
    refused = await post_form(client, runtime, SHOP_A, "/admin/policy", short, csrf_from=SHOP_A)
    assert refused.status_code == 422
    assert "statutory minimum" in refused.text and "Bokföringslagen" in refused.text
    forced = {**short, "force": "1", "forced_by": "CFO Anna", "forced_reason": "auditor agreed in writing"}
    # Forcing needs who and why.
    half = await post_form(
        client, runtime, SHOP_A, "/admin/policy", {**short, "force": "1"}, csrf_from=SHOP_A
    )
    assert half.status_code == 422
    saved = await post_form(client, runtime, SHOP_A, "/admin/policy", forced, csrf_from=SHOP_A)
    assert saved.status_code == 303
    async with runtime.db.session() as session:
        shop = (await session.execute(select(Shop).where(Shop.domain == SHOP_A))).scalar_one()
        changes = [
            evidence.readable(row)
            for row in (
                await session.execute(
                    select(Evidence).where(Evidence.shop_domain == SHOP_A, Evidence.kind == "policy_changed")
                )
            ).scalars()
        ]
    assert 'fiscal_year_end = "06-30"' in (shop.policy_toml or "")
    assert len(changes) == 2
    assert changes[-1]["forced_overrides"][0]["rule_id"] == "SE-1"
    assert changes[-1]["forced_overrides"][0]["forced_reason"] == "auditor agreed in writing"
    page = (await get_page(client, runtime, SHOP_A, "/admin/policy")).text
    assert "forced below the legal minimum" in page and "SE-1 forced by CFO Anna" in page
    api = await client.put(
        "/admin/api/policy",
        headers=bearer(runtime, SHOP_A),
        json={"toml": 'preset = "SE"\n[overrides.SE-1]\nperiod = "1y"\n'},
    )
    assert api.status_code == 422 and api.json()["error"] == "statutory_minimum"


async def test_policy_page_states_and_edits_the_minimisation_period(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    html = (await get_page(client, runtime, SHOP_A, "/admin/policy")).text
    assert "Finished requests keep the customer&#39;s details for" in html
    assert "After 3 years, a finished request&#39;s e-mail, phone" in html and "The default: 3 years" in html
    form = {"preset": "SE", "fiscal_year_end": "12-31", "minimise_requests_after": "2y"}
    saved = await post_form(client, runtime, SHOP_A, "/admin/policy", form, csrf_from=SHOP_A)
    assert saved.status_code == 303
    async with runtime.db.session() as session:
        shop = (await session.execute(select(Shop).where(Shop.domain == SHOP_A))).scalar_one()
    assert 'minimise_requests_after = "2y"' in (shop.policy_toml or "")
    html = (await get_page(client, runtime, SHOP_A, "/admin/policy")).text
    assert "After 2 years, a finished request" in html and "The default: 3 years" not in html
    short = {**form, "minimise_requests_after": "1d"}
    refused = await post_form(client, runtime, SHOP_A, "/admin/policy", short, csrf_from=SHOP_A)
    assert refused.status_code == 422 and "minimise_requests_after" in refused.text


async def test_adapters_page_never_shows_credentials(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    html = (await get_page(client, runtime, SHOP_A, "/admin/adapters")).text
    assert "Brevo" in html and "Klaviyo" in html
    assert "xkeysib-secret" not in html and "voyado-secret" not in html
    assert 'type="password"' in html
    connect = await post_form(
        client,
        runtime,
        SHOP_A,
        "/admin/adapters/klaviyo/connect",
        {"api_key": "pk_live_123"},
        csrf_from=SHOP_A,
    )
    assert connect.status_code == 303
    async with runtime.db.session() as session:
        row = (
            await session.execute(
                select(AdapterConnection).where(
                    AdapterConnection.shop_domain == SHOP_A, AdapterConnection.adapter == "klaviyo"
                )
            )
        ).scalar_one()
    assert "pk_live_123" not in row.config_enc
    assert runtime.vault.decrypt_json(row.config_enc, cell_of(row, "config_enc"))["api_key"] == "pk_live_123"
    after = (await get_page(client, runtime, SHOP_A, "/admin/adapters")).text
    assert "pk_live_123" not in after
    invalid = await post_form(
        client, runtime, SHOP_A, "/admin/adapters/klaviyo/connect", {"base_url": "x"}, csrf_from=SHOP_A
    )
    assert invalid.status_code in (303, 422)
    listing = (await client.get("/admin/api/adapters", headers=bearer(runtime, SHOP_A))).json()
    assert "pk_live_123" not in json.dumps(listing)


async def test_sweeps_page_shows_report_counts(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    html = (await get_page(client, runtime, SHOP_A, "/admin/sweeps")).text
    assert "Recent runs" in html and "Preview now (dry run)" in html
    assert "<dt>checked</dt><dd>240</dd>" in html and "<dt>erase</dt><dd>3</dd>" in html
    data = (await client.get("/admin/api/sweeps", headers=bearer(runtime, SHOP_A))).json()
    assert data["sweeps"][0]["totals"]["keep"] == 228


async def test_a_shop_without_a_row_sees_defaults_and_cannot_save_settings(runtime: Runtime) -> None:
    """First open before the install stored anything (in development, where no token exchange
    runs): every page renders with defaults, and nothing can be saved for a shop that is not there."""
    from tests.admin.conftest import admin_app
    from tests.conftest import make_settings

    dev = Runtime(
        settings=make_settings(runtime.db.url, dev=True),
        db=runtime.db,
        vault=runtime.vault,
        http=runtime.http,
    )
    new = "shop-new.myshopify.com"
    transport = httpx.ASGITransport(app=admin_app(dev))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        for path in (
            "/admin",
            "/admin/requests",
            "/admin/policy",
            "/admin/adapters",
            "/admin/sweeps",
            "/admin/audit",
        ):
            response = await get_page(http, dev, new, path)
            assert response.status_code == 200, path
        assert "Strictest of all" in (await get_page(http, dev, new, "/admin/policy")).text
        assert (
            await http.post("/admin/api/shop", headers=bearer(dev, new), json={"dry_run": True})
        ).status_code == 404
        saved = await http.put(
            "/admin/api/policy", headers=bearer(dev, new), json={"toml": 'preset = "SE"\n'}
        )
        assert saved.status_code == 404


async def test_expired_and_internal_artifacts_are_not_downloads(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    from datetime import timedelta

    from plugin.models import Artifact, utcnow

    a, _ = shops
    async with runtime.db.transaction() as session:
        expired = Artifact(
            shop_domain=SHOP_A,
            request_id=a.open_request,
            kind="extract_json",
            content_type="application/json",
            content_enc=runtime.vault.encrypt("{}", artifact_cell(SHOP_A, a.open_request, "extract_json"))
            or "",
            expires_at=utcnow() - timedelta(minutes=1),
        )
        part = Artifact(
            shop_domain=SHOP_A,
            request_id=a.open_request,
            kind="export_part",
            content_type="application/json",
            content_enc=runtime.vault.encrypt("{}", artifact_cell(SHOP_A, a.open_request, "export_part"))
            or "",
        )
        session.add_all([expired, part])
    for row in (expired, part):
        assert (await get_page(client, runtime, SHOP_A, f"/admin/artifacts/{row.id}")).status_code == 404
        assert (
            await client.get(f"/admin/api/artifacts/{row.id}", headers=bearer(runtime, SHOP_A))
        ).status_code == 404
    html = (await get_page(client, runtime, SHOP_A, f"/admin/requests/{a.open_request}")).text
    assert f"/admin/artifacts/{expired.id}" not in html and f"/admin/artifacts/{part.id}" not in html
    assert f"/admin/artifacts/{a.certificate}" in html


async def test_testing_a_connection_records_the_outcome_without_secrets(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    import respx

    headers = bearer(runtime, SHOP_A)
    await client.put("/admin/api/adapters/brevo", headers=headers, json={"api_key": "xkeysib-good"})
    with respx.mock(assert_all_called=True) as mock:
        mock.get("https://api.brevo.com/v3/account").respond(200, json={"email": "x"})
        ok = await client.post("/admin/api/adapters/brevo/check", headers=headers)
    assert ok.json() == {"ok": True, "message": "ok"}
    with respx.mock(assert_all_called=True) as mock:
        mock.get("https://api.brevo.com/v3/account").respond(401, json={"code": "unauthorized"})
        page = await post_form(client, runtime, SHOP_A, "/admin/adapters/brevo/check", {}, csrf_from=SHOP_A)
    assert page.status_code == 303
    async with runtime.db.session() as session:
        rows = {
            row.shop_domain: row
            for row in (
                await session.execute(select(AdapterConnection).where(AdapterConnection.adapter == "brevo"))
            ).scalars()
        }
    assert rows[SHOP_A].status == "error" and "xkeysib-good" not in (rows[SHOP_A].last_error or "")
    assert rows[SHOP_B].last_error == "brevo: credentials rejected (check api_key)"  # untouched
    html = (await get_page(client, runtime, SHOP_A, "/admin/adapters")).text
    last_error = rows[SHOP_A].last_error
    assert "xkeysib-good" not in html and last_error is not None and last_error in html


async def test_policy_and_preview_through_the_api(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded], shopify_fake: Any
) -> None:
    shopify_fake.add_shop(SHOP_A)
    headers = bearer(runtime, SHOP_A)
    policy = (await client.get("/admin/api/policy", headers=headers)).json()
    assert policy["preset"] == "SE"
    se1 = next(line for line in policy["timeline"] if line["rule_id"] == "SE-1")
    assert se1["statutory"] and se1["period"] == "7y"
    # "Preview now" only queues the dry run and answers at once; nothing has run yet.
    preview = await client.post("/admin/api/sweeps/preview", headers=headers)
    assert preview.status_code == 202
    assert preview.json()["status"] == "preview queued"
    queued = preview.json()["sweep"]
    assert queued["dry_run"] is True and queued["status"] == "queued" and queued["report"] == {}
    assert shopify_fake.shops[SHOP_A].bulk == {}  # no bulk operation started within the request
    again = await client.post("/admin/api/sweeps/preview", headers=headers)
    assert again.status_code == 202 and again.json()["status"] == "preview already on its way"
    html = (await get_page(client, runtime, SHOP_A, "/admin/sweeps")).text
    assert "Queued" in html and "data-refresh" in html
    # The sweep clock runs it (claimed through the database); then the report is there.
    reports = await run_queued_previews(runtime)
    assert [report["shop"] for report in reports] == [SHOP_A]
    assert shopify_fake.shops[SHOP_A].bulk != {}
    assert await run_queued_previews(runtime) == []  # claimed once
    sweeps = (await client.get("/admin/api/sweeps", headers=headers)).json()["sweeps"]
    assert {sweep["dry_run"] for sweep in sweeps} == {True, False}
    done = next(sweep for sweep in sweeps if sweep["dry_run"])
    assert done["status"] == "done" and done["report"]["dry_run"] is True and "tally" in done["report"]
    html = (await get_page(client, runtime, SHOP_A, "/admin/sweeps")).text
    assert "data-refresh" not in html
    # Shop B saw no preview.
    b_sweeps = (await client.get("/admin/api/sweeps", headers=bearer(runtime, SHOP_B))).json()["sweeps"]
    assert [sweep["dry_run"] for sweep in b_sweeps] == [False]
