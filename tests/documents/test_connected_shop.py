"""The register extract and the certificate of erasure of a fully connected test shop
(tests/documents/connected_shop.py), asserted field by field, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from typing import Any

from plugin.db import Database
from tests.documents import connected_shop as shop


def _nulls(value: Any, path: str = "") -> list[str]:
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nulls(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for n, v in enumerate(value) for p in _nulls(v, f"{path}[{n}]")]
    return []


async def test_connected_shop_extract_and_certificate(db: Database, shopify_fake: Any) -> None:
    documents = await shop.run(db, shopify_fake)
    x = documents.extract

    assert x["confirmation"] is True
    assert list(x["data"]) == ["shopify", "budbee", "klaviyo", "mailchimp", "postnord"]
    # Shopify: the account, its addresses and consent with its dates.
    customer = x["data"]["shopify"]["customer"]
    assert (customer["id"], customer["first_name"], customer["last_name"]) == (
        shop.CUSTOMER,
        "Anna",
        "Svensson",
    )
    assert (customer["email"], customer["phone"]) == (shop.EMAIL, shop.PHONE)
    assert customer["note"] == "Vill ha leverans före kl. 12" and customer["tags"] == ["stamkund"]
    assert customer["created_at"] == "2024-05-01T07:55:00+00:00" and customer["updated_at"]
    assert [a["address1"] for a in customer["addresses"]] == ["Storgatan 1", "Kungsgatan 10"]
    assert customer["addresses"][1]["company"] == "Exempel AB"
    assert customer["marketing_consent"]["email"] == {
        "email_address": shop.EMAIL,
        "state": "SUBSCRIBED",
        "opt_in_level": "CONFIRMED_OPT_IN",
        "consent_updated_at": "2024-05-01T08:00:00+00:00",
    }
    assert customer["marketing_consent"]["sms"] == {"phone_number": shop.PHONE, "state": "NOT_SUBSCRIBED"}
    assert customer["amount_spent"] == {"amount": "1104.00", "currency": "SEK"}
    # Every order with line items, prices, totals, addresses, notes, fulfilments and tracking.
    first, second = x["data"]["shopify"]["orders"]
    assert (first["id"], first["name"], second["id"], second["name"]) == (8001, "#1001", 8002, "#1002")
    assert [(i["title"], i["quantity"], i["unit_price"]["amount"]) for i in first["line_items"]] == [
        ("Ullsockor", 2, "149.00"),
        ("Mössa", 1, "299.00"),
    ]
    assert first["line_items"][0]["variant"] == "38-40" and first["line_items"][0]["sku"] == "US-38"
    assert first["line_items"][0]["total"] == {"amount": "298.00", "currency": "SEK"}
    assert first["currency"] == "SEK"
    assert {k: v["amount"] for k, v in first["totals"].items()} == {
        "subtotal": "597.00",
        "shipping": "49.00",
        "tax": "129.20",
        "discounts": "0.00",
        "total": "646.00",
    }
    assert first["note"] == "Paketet får lämnas vid dörren" and "note" not in second
    assert first["shipping_address"]["address1"] == "Storgatan 1"
    assert second["shipping_address"]["address1"] == "Kungsgatan 10"
    assert second["billing_address"]["address1"] == "Storgatan 1"
    assert first["shipping_method"] == "PostNord MyPack Collect"
    assert first["fulfillments"][0]["tracking"] == [
        {
            "carrier": "PostNord",
            "number": shop.POSTNORD_TRACKING,
            "url": f"https://tracking.postnord.com/se/?id={shop.POSTNORD_TRACKING}",
        }
    ]
    assert first["fulfillments"][0]["status"] == "DELIVERED" and first["fulfillments"][0]["delivered_at"]
    assert second["fulfillments"][0]["tracking"] == [{"carrier": "Budbee", "number": shop.BUDBEE_TRACKING}]
    # The carriers list the shipments they received: the ones Shopify's part shows.
    postnord = x["data"]["postnord"]
    assert (
        postnord["channel"] == "email" and postnord["privacy_address"] == "dataprotectionofficer@postnord.com"
    )
    assert [(s["order"], s["tracking_number"]) for s in postnord["shipments"]] == [
        ("#1001", shop.POSTNORD_TRACKING)
    ]
    budbee = x["data"]["budbee"]
    assert [(s["order"], s["tracking_number"]) for s in budbee["shipments"]] == [
        ("#1002", shop.BUDBEE_TRACKING)
    ]
    assert budbee["orders"] == [shop.BUDBEE_ORDER]
    # The newsletter tools' own records.
    (profile,) = x["data"]["klaviyo"]["profiles"]
    assert profile["attributes"]["email"] == shop.EMAIL and profile["lists"] == ["Nyhetsbrev"]
    (member,) = x["data"]["mailchimp"]["members"]
    assert (member["email_address"], member["status"], member["list_id"]) == (
        shop.EMAIL,
        "subscribed",
        "list1",
    )
    # Gallra's own records: the request, with its dates and state.
    (own,) = x["gallra_records"]
    assert own["kind"] == "data_request" and own["received_at"] and own["due_at"] and own["status"]
    # Art. 15(1): purposes, categories, recipients, retention, rights, complaint, source, no ADM.
    assert set(x["categories"]) == {
        "accounting_record",
        "app_request_data",
        "customer_account",
        "newsletter",
        "order_contact",
        "shipment",
    }
    assert set(x["purposes"]) == set(x["categories"]) == set(x["category_names"])
    recipients = {r["system"]: r for r in x["recipients"]}
    assert set(recipients) == {"budbee", "klaviyo", "mailchimp", "postnord", "shopify"}
    assert recipients["postnord"]["legal_name"] == "PostNord Sverige AB"
    assert recipients["klaviyo"]["legal_name"] and recipients["mailchimp"]["legal_name"]
    assert len(x["retention"]) == 11  # 3 subscriptions, account, 2 × (order, contact, shipment), Gallra
    for entry in x["retention"]:
        for lang in ("sv", "en"):
            assert entry["period"][lang] and "None" not in entry["period"][lang]
        if entry.get("keep_until"):
            assert f"kept until {entry['keep_until']} under {entry['reference']}" in entry["period"]["en"]
            assert f"sparas till och med {entry['keep_until']} enligt" in entry["period"]["sv"]
    subscriptions = [r for r in x["retention"] if r["category"] == "newsletter"]
    assert {r["system"] for r in subscriptions} == {"shopify", "klaviyo", "mailchimp"}
    for entry in subscriptions:  # active: no end date, the criterion instead
        assert "keep_until" not in entry
        assert "kept while subscribed" in entry["period"]["en"]
        assert "sparas medan prenumerationen gäller" in entry["period"]["sv"]
    shipments = [r for r in x["retention"] if r["category"] == "shipment"]
    assert {r["system"] for r in shipments} == {"postnord", "budbee"}
    assert x["rights"][:5] == ["access", "rectification", "erasure", "restriction", "objection"]
    assert "rättelse" in x["rights_explained"]["sv"] and "rectification" in x["rights_explained"]["en"]
    assert x["complaint_authority"] == {
        "name": "Integritetsskyddsmyndigheten (IMY)",
        "url": "https://www.imy.se",
    }
    assert x["source"]["en"] and x["automated_decisions"]["en"].startswith("Gallra makes no automated")
    # No null where a value is expected (recipients keep theirs: a transfer to "the group").
    for section in ("data", "gallra_records", "retention", "request", "purposes", "complaint_authority"):
        assert _nulls(x[section]) == [], section

    for lang, html in documents.extract_html.items():
        text = re.sub(r"<[^>]+>", " ", html)
        assert not re.search(r"\bNone\b|\bnull\b", text), lang
        for needle in ("Storgatan 1", "Ullsockor", "646.00", shop.POSTNORD_TRACKING, shop.BUDBEE_TRACKING):
            assert needle in text, (lang, needle)
        assert "Integritetsskyddsmyndigheten" in text and "PostNord Sverige AB" in text
    sv, en = documents.extract_html["sv"], documents.extract_html["en"]
    assert (
        "Kategorier av personuppgifter" in sv
        and "Leveransadress" in sv
        and "sparas medan prenumerationen" in sv
    )
    assert "Categories of personal data" in en and "Delivery address" in en and "kept while subscribed" in en
    assert "Registerutdrag" in sv and "Register extract" in en

    # The certificate of erasure of the same customer.
    certificate = documents.certificate
    assert shop.EMAIL not in json.dumps(certificate)
    done = {(d["system"], d["outcome"]) for d in certificate["done"]}
    assert ("postnord", "confirmed") in done and ("shopify", "erase_requested") in done
    assert {r["system"] for r in certificate["reduced"]} == {"klaviyo", "mailchimp", "shopify"}
    kept = {(k["system"], k["category"]) for k in certificate["kept"]}
    assert {("budbee", "shipment"), ("shopify", "accounting_record"), ("gallra", "app_request_data")} <= kept
    assert [body for body in documents.sent if shop.POSTNORD_TRACKING in body]
    assert not [body for body in documents.sent if shop.BUDBEE_TRACKING in body]
    for lang, html in documents.certificate_html.items():
        assert html and shop.EMAIL not in html, lang
