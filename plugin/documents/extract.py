"""The register extract (Art. 15 access report, Art. 20 portability): JSON (structured,
machine-readable) and HTML in Swedish and English, covering the checklist of
shared/reference/retention-law.md §4: confirmation, a copy of the data, purposes, categories,
recipients by name, transfers, retention per category from the shop's policy, rights, the
complaint authority of the shop's country, source and automated decision-making.

Recipients (15(1)(c)) are the ones the shop actually used for this subject: Shopify, and every
connected system that held or exported data about them; each is named with its legal name, where
it processes the data and the safeguard of every transfer outside the EU/EEA (15(2)), from
`recipients.RECIPIENTS`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from plugin.controller import controller_document
from plugin.crypto import Vault
from plugin.documents.authorities import complaint_authority
from plugin.documents.language import LANGUAGES, Lang, country_name
from plugin.documents.recipients import recipient_entry
from plugin.documents.store import replace_artifacts, templates
from plugin.models import Artifact, Request, Shop, utcnow
from plugin.pipelines.gaps import not_examined_block, not_examined_of

SHOPIFY = "shopify"
EXTRACT_JSON = "extract_json"
EXTRACT_HTML = {"sv": "extract_html_sv", "en": "extract_html_en"}
LINK_LIFETIME = timedelta(days=30)

# Default purpose, legal basis and source per category of data. Shops can describe more in their
# own privacy policy; these are what Gallra's categories mean in a web shop.
PURPOSES: dict[str, dict[str, str]] = {
    "accounting_record": {
        "en": "Bookkeeping: the order as an accounting voucher (legal obligation, GDPR Art. 6(1)(c)).",
        "sv": "Bokföring: ordern som verifikation (rättslig förpliktelse, GDPR art. 6.1 c).",
    },
    "order_contact": {
        "en": "Delivering your order and customer service (contract, Art. 6(1)(b)).",
        "sv": "Leverans av din order och kundtjänst (avtal, art. 6.1 b).",
    },
    "shipment": {
        "en": "Delivery of your parcel by the carrier (contract, Art. 6(1)(b)).",
        "sv": "Leverans av ditt paket via transportören (avtal, art. 6.1 b).",
    },
    "newsletter": {
        "en": "Newsletters and marketing e-mail (consent, Art. 6(1)(a)).",
        "sv": "Nyhetsbrev och marknadsföring via e-post (samtycke, art. 6.1 a).",
    },
    "customer_account": {
        "en": "Your customer account (contract, Art. 6(1)(b)).",
        "sv": "Ditt kundkonto (avtal, art. 6.1 b).",
    },
    "app_request_data": {
        "en": "Handling your privacy requests and proving it (legal obligation, Art. 6(1)(c), Art. 5(2)).",
        "sv": (
            "Hantering av dina integritetsförfrågningar och bevis om det (rättslig "
            "förpliktelse, art. 6.1 c, art. 5.2)."
        ),
    },
}
SOURCES = {
    "en": (
        "From you when you ordered or subscribed; delivery status from the carrier; "
        "engagement data from the e-mail tool."
    ),
    "sv": (
        "Från dig när du beställde eller prenumererade; leveransstatus från "
        "transportören; engagemangsdata från e-postverktyget."
    ),
}


def build_extract(
    request: Request,
    shop: Shop | None,
    exports: dict[str, Any],
    own_records: list[dict[str, Any]],
    planned: dict[str, Any],
    *,
    expires_at: datetime,
    controller: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`controller`: `plugin.controller.controller_document` of the shop (see build_certificate)."""
    retention = planned.get("retention", [])
    recipients = used_recipients(planned.get("recipients", []), retention, exports)
    categories = sorted(
        {r["category"] for r in retention} | {r["category"] for r in recipients if r.get("category")}
    )
    authority = complaint_authority(shop.country if shop else None)
    has_data = bool(any(exports.values()) or retention)
    return {
        "document": "register_extract",
        "version": 1,
        "issued_at": utcnow().replace(microsecond=0).isoformat(),
        "available_until": expires_at.isoformat(),
        # Art. 15 and 13(1)(a): who the controller is and how to reach them.
        "controller": controller or controller_document(None, shop, request.shop_domain),
        "request": {
            "id": request.id,
            "received_at": request.received_at.isoformat(),
            "due_at": request.due_at.isoformat(),
            "data_request_id": request.data_request_id,
        },
        "confirmation": has_data,
        "data": exports,
        "gallra_records": own_records,
        **not_examined_block(not_examined_of(planned)),
        "purposes": {c: PURPOSES.get(c, {"en": c, "sv": c}) for c in categories},
        "categories": categories,
        "recipients": recipients,
        "retention": retention,
        "rights": [
            "access",
            "rectification",
            "erasure",
            "restriction",
            "objection",
            "portability",
            "withdraw_consent",
        ],
        "complaint_authority": {"name": authority.name, "url": authority.url},
        "source": SOURCES,
        "automated_decisions": {
            "en": (
                "Gallra makes no automated decisions about you. Ask the shop whether its other "
                "tools do (for example fraud checks)."
            ),
            "sv": (
                "Gallra fattar inga automatiserade beslut om dig. Fråga butiken om dess andra "
                "verktyg gör det (till exempel bedrägerikontroller)."
            ),
        },
    }


def used_recipients(
    planned: list[dict[str, Any]], retention: list[dict[str, Any]], exports: dict[str, Any]
) -> list[dict[str, Any]]:
    """Shopify plus every planned recipient that held or exported data about the subject: a
    connected tool that knew nothing of them received nothing about them."""
    held = {r["system"] for r in retention} | {system for system, data in exports.items() if data}
    chosen = {r["system"]: r for r in planned if r["system"] in held or r["system"] == SHOPIFY}
    chosen.setdefault(SHOPIFY, {"system": SHOPIFY, "title": "Shopify", "category": None})
    return [
        recipient_entry(r["system"], r.get("title") or r["system"], r.get("category"))
        for r in sorted(chosen.values(), key=lambda r: r["system"])
    ]


def render_extract_html(extract: dict[str, Any], lang: Lang) -> str:
    return (
        templates()
        .get_template("extract.html")
        .render(x=extract, lang=lang, data_json=_pretty(extract["data"]), country=country_name)
    )


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


async def store_extract(
    vault: Vault, session: Any, request: Request, extract: dict[str, Any], *, expires_at: datetime
) -> list[Artifact]:
    documents = [(EXTRACT_JSON, "application/json", _pretty(extract))]
    for lang in LANGUAGES:
        kind = EXTRACT_HTML[lang]
        documents.append((kind, "text/html; charset=utf-8", render_extract_html(extract, lang)))
    return await replace_artifacts(
        session, vault, request.shop_domain, request.id, documents, expires_at=expires_at
    )


def link_expiry(now: datetime | None = None) -> datetime:
    return (now or utcnow()) + LINK_LIFETIME
