"""Art. 15(1)(c) and 15(2): every adapter, Shopify's included, declares its provider as a
recipient with legal name, location and transfer safeguard; the extract lists the recipients the
shop actually used for the subject, in JSON and in both HTML languages."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from adapters.recipients import EEA, Safeguard
from adapters.registry import catalogue, recipients
from plugin.documents.extract import build_extract, render_extract_html, used_recipients
from plugin.models import Request, Shop


def test_every_adapter_has_an_entry_with_a_source() -> None:
    RECIPIENTS = recipients()
    assert set(RECIPIENTS) == set(catalogue()), "an adapter that declares no recipient"
    for system, r in RECIPIENTS.items():
        assert r.legal_name and len(r.country) == 2, system
        assert r.sources, system
        for source in r.sources:
            assert source.startswith("https://") or source.startswith("not confirmed"), (system, source)
        for t in r.transfers:
            assert t.safeguards and t.source.startswith("https://"), system
            # A transfer is a move out of the EU/EEA; none is listed to a member state.
            assert t.country not in EEA, system
        # A recipient outside the EU/EEA needs a safeguard for the disclosure itself.
        if not r.in_eea:
            assert any(t.country == r.country for t in r.transfers), system
        assert set(r.unconfirmed) <= {"legal_name", "country", "transfers"}, system
        if r.unconfirmed:
            assert any(s.startswith("not confirmed") for s in r.sources), system


def test_the_checked_facts() -> None:
    RECIPIENTS = recipients()
    assert RECIPIENTS["shopify"].legal_name == "Shopify International Limited"
    assert RECIPIENTS["shopify"].country == "IE"
    assert [(t.country, t.safeguards) for t in RECIPIENTS["shopify"].transfers] == [
        ("CA", (Safeguard.ADEQUACY,)),
        (None, (Safeguard.SCC,)),
    ]
    assert RECIPIENTS["klaviyo"].country == "US" and RECIPIENTS["mailchimp"].country == "US"
    assert RECIPIENTS["klaviyo"].transfers[0].safeguards == (Safeguard.DPF,)
    assert RECIPIENTS["mailchimp"].transfers[0].safeguards == (Safeguard.DPF, Safeguard.SCC)
    for carrier in ("postnord", "bring", "posti", "budbee", "instabox"):
        assert RECIPIENTS[carrier].in_eea and not RECIPIENTS[carrier].transfers, carrier


PLANNED = [
    {"system": "klaviyo", "title": "Klaviyo", "category": "newsletter"},
    {"system": "mailchimp", "title": "Mailchimp", "category": "newsletter"},  # connected, knew nothing
    {"system": "postnord", "title": "PostNord", "category": "shipment"},
    {"system": "acme_crm", "title": "Acme CRM", "category": "customer_account"},  # a third-party adapter
]
RETENTION = [
    {
        "system": "postnord",
        "category": "shipment",
        "label": "Shipment 1",
        "action": "erase",
        "keep_until": None,
        "rule_id": None,
        "reference": None,
        "reason_sv": "",
        "reason_en": "",
    },
]
EXPORTS: dict[str, Any] = {"klaviyo": {"profile": {"id": "p1"}}, "mailchimp": {}, "acme_crm": {"id": 3}}


def extract() -> dict[str, Any]:
    request = Request(
        id=9,
        shop_domain="demo.myshopify.com",
        kind="data_request",
        business_key="k",
        received_at=datetime(2026, 3, 2, tzinfo=UTC),
        due_at=datetime(2026, 4, 2, tzinfo=UTC),
    )
    return build_extract(
        request,
        Shop(domain="demo.myshopify.com", name="Demo", country="SE"),
        EXPORTS,
        [],
        {"retention": RETENTION, "recipients": PLANNED},
        expires_at=datetime(2026, 5, 1, tzinfo=UTC),
    )


def test_only_the_recipients_used_for_the_subject_plus_shopify() -> None:
    chosen = used_recipients(PLANNED, RETENTION, EXPORTS)
    assert [r["system"] for r in chosen] == ["acme_crm", "klaviyo", "postnord", "shopify"]


def test_extract_json_names_location_and_safeguard() -> None:
    found = {r["system"]: r for r in extract()["recipients"]}
    assert "transfers" not in extract()  # the privacy-policy pointer is gone: listed per recipient
    assert found["klaviyo"]["legal_name"] == "Klaviyo, Inc."
    assert (found["klaviyo"]["country"], found["klaviyo"]["in_eea"]) == ("US", False)
    assert found["klaviyo"]["transfers"] == [
        {"country": "US", "safeguards": ["adequacy_dpf"], "source": "https://www.klaviyo.com/uk/gdpr"}
    ]
    assert found["postnord"]["in_eea"] is True and found["postnord"]["transfers"] == []
    assert found["shopify"]["legal_name"] == "Shopify International Limited"
    assert [t["safeguards"] for t in found["shopify"]["transfers"]] == [["adequacy"], ["scc"]]
    assert found["acme_crm"]["legal_name"] is None and found["acme_crm"]["in_eea"] is None
    assert all(s.startswith("https://") for r in found.values() for s in r["sources"])


def _recipients_section(html: str) -> str:
    start = html.index("<table>")
    return re.sub(r"<[^>]+>", " ", html[start : html.index("</table>", start)])


def test_both_languages_list_each_recipient() -> None:
    x = extract()
    sv, en = render_extract_html(x, "sv"), render_extract_html(x, "en")
    for page in (sv, en):
        for name in ("Klaviyo, Inc.", "PostNord Sverige AB", "Shopify International Limited"):
            assert name in page
        assert "https://www.klaviyo.com/uk/gdpr" in page
    assert "USA" in sv and "the United States" in en
    assert "EU–US Data Privacy Framework" in sv and "EU-US Data Privacy Framework" in en
    assert "Kanada: EU-kommissionens beslut om adekvat skyddsnivå" in sv
    assert "Canada: European Commission adequacy decision" in en
    assert "standardavtalsklausuler" in sv and "standard contractual clauses" in en
    assert "behövs inte (inom EU/EES)" in sv and "none needed (within the EU/EEA)" in en
    assert "finns inte i Gallras mottagartabell" in sv and "recipient table; ask the shop" in en
    assert "ej bekräftat" in sv and "not confirmed" in en
    english = (
        "Recipient",
        "Legal name",
        "Where the data is processed",
        "Safeguard",
        "Sources",
        "none needed",
        "not confirmed",
        "the United States",
        "Canada",
        "adequacy",
        "contractual",
    )
    section = _recipients_section(sv)
    for word in english:
        assert word not in section, f"English {word!r} in the Swedish recipients table"
    assert "stated in the shop" not in en and "anges i butikens integritetspolicy" not in sv
