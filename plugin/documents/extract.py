"""The register extract (Art. 15 access report, Art. 20 portability): JSON (structured,
machine-readable) and HTML in Swedish and English, covering the checklist of
shared/reference/retention-law.md §4: confirmation, a copy of the data, purposes, categories,
recipients by name, transfers, retention per category from the shop's policy, rights, the
complaint authority of the shop's country, source and automated decision-making.

Recipients (15(1)(c)) are the ones the shop actually used for this subject: Shopify, and every
connected system that held or exported data about them; each is named with its legal name, where
it processes the data and the safeguard of every transfer outside the EU/EEA (15(2)), as its
adapter declares them (`Adapter.recipient`).

The copy of the data (15(3)) is each system's `export`, Shopify's first; what a system left empty
is left out rather than shown as None or null (`compact`), and each holding's retention reads as a
period ("kept until DATE under RULE") or, with no end date yet, the criterion that ends it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from plugin.controller import controller_document
from plugin.crypto import Vault
from plugin.documents.authorities import complaint_authority
from plugin.documents.gaps import not_examined_block, not_examined_of
from plugin.documents.recipients import recipient_entry
from plugin.documents.store import replace_artifacts, templates
from plugin.documents.words import country_name
from plugin.holdings import SHOPIFY
from plugin.i18n import LANGUAGES, Lang, translate
from plugin.models import Artifact, Request, Shop, utcnow
from plugin.retention.sentences import retention_period

EXTRACT_JSON = "extract_json"
EXTRACT_HTML = {"sv": "extract_html_sv", "en": "extract_html_en"}
LINK_LIFETIME = timedelta(days=30)

# Purpose, legal basis and source per category of data (`purpose.<category>`, `category_name.<category>`
# in the catalogue), and the rights besides access (Art. 15(1)(e)): what Gallra's categories mean in a
# web shop; shops can describe more in their own privacy policy. The JSON carries every language.


def in_every_language(key: str, default: str | None = None) -> dict[str, str]:
    return {lang: translate(lang, key, default=default) for lang in LANGUAGES}


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
    retention = [retention_entry(r) for r in planned.get("retention", [])]
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
        "request": compact(
            {
                "id": request.id,
                "received_at": request.received_at.isoformat(),
                "due_at": request.due_at.isoformat(),
                "data_request_id": request.data_request_id,
            }
        ),
        "confirmation": has_data,
        # Shopify first (the shop itself), then each connected system by name.
        "data": compact(dict(sorted(exports.items(), key=lambda item: (item[0] != SHOPIFY, item[0])))),
        "gallra_records": [compact(r) for r in own_records],
        **not_examined_block(not_examined_of(planned)),
        "purposes": {c: in_every_language(f"purpose.{c}", c) for c in categories},
        "categories": categories,
        "category_names": {c: in_every_language(f"category_name.{c}", c) for c in categories},
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
        "rights_explained": in_every_language("extract_json.rights"),
        "complaint_authority": compact({"name": authority.name, "url": authority.url}),
        "source": in_every_language("extract_json.source"),
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


def retention_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """One holding's retention as the subject reads it (Art. 15(1)(d)): the period in both
    languages ("kept until DATE under RULE", or the criterion of a record with no end date yet),
    and no empty fields."""
    period = {
        lang: retention_period(
            entry.get("action") or "keep",
            entry.get("keep_until"),
            entry.get(f"reason_{lang}") or "",
            entry.get("reference"),
            lang,
        )
        for lang in LANGUAGES
    }
    shown: dict[str, Any] = compact({**entry, "period": period})
    return shown


def compact(value: Any) -> Any:
    """`value` without None, empty strings and empty lists or mappings, at any depth: what a
    system left empty is not shown, rather than shown as "None" or null."""
    if isinstance(value, dict):
        kept = {k: compact(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if not _empty(v)}
    if isinstance(value, list):
        return [v for v in (compact(v) for v in value) if not _empty(v)]
    return value


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)


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


# The copy of the data (15(3)) is shown as labelled lists; a key not named here is shown as
# itself with spaces ("carrier_as_recorded" → "Carrier as recorded").
# The fields of the copy of the data in reading order (who, how to reach, what, when); their
# names are `label.<field>` in the catalogue.
LABELS: tuple[str, ...] = (
    "provider",
    "processor",
    "channel",
    "privacy_address",
    "id",
    "name",
    "display_name",
    "first_name",
    "last_name",
    "company",
    "email",
    "email_address",
    "phone",
    "phone_number",
    "address1",
    "address2",
    "zip",
    "city",
    "province",
    "country",
    "country_code",
    "customer",
    "orders",
    "order",
    "title",
    "variant",
    "sku",
    "quantity",
    "unit_price",
    "total",
    "created_at",
    "processed_at",
    "updated_at",
    "closed_at",
    "cancelled_at",
    "state",
    "status",
    "financial_status",
    "fulfillment_status",
    "amount",
    "currency",
    "line_items",
    "line_items_incomplete",
    "totals",
    "subtotal",
    "shipping",
    "tax",
    "discounts",
    "shipping_method",
    "shipping_address",
    "billing_address",
    "note",
    "tags",
    "attributes",
    "locale",
    "number_of_orders",
    "amount_spent",
    "addresses",
    "marketing_consent",
    "sms",
    "opt_in_level",
    "consent_updated_at",
    "fulfillments",
    "sent",
    "in_transit_at",
    "delivered_at",
    "delivered",
    "tracking",
    "carrier",
    "carrier_as_recorded",
    "number",
    "tracking_number",
    "url",
    "tracking_url",
    "shipments",
    "profiles",
    "members",
    "lists",
    "segments",
)


def label(key: Any, lang: str) -> str:
    text = str(key).replace("_", " ")
    return translate(lang, f"label.{key}", default=text[:1].upper() + text[1:])


_RANK = {key: n for n, key in enumerate(LABELS)}


def ordered(value: dict[str, Any]) -> list[tuple[str, Any]]:
    """A record's fields in reading order (as `LABELS` lists them: who, how to reach, what, when),
    the ones it does not name after them as they come."""
    return sorted(value.items(), key=lambda item: _RANK.get(item[0], len(_RANK)))


def shown(value: Any, lang: str) -> str:
    """A leaf of the copy of the data as text: booleans in words, the rest as it is."""
    if isinstance(value, bool):
        return translate(lang, "yes" if value else "no")
    return str(value)


def request_word(kind: str, lang: str) -> str:
    """A request's kind or state in the reader's language, with the admin's words."""
    return translate(lang, kind, default=kind.split(".", 1)[1].replace("_", " "))


def render_extract_html(extract: dict[str, Any], lang: Lang) -> str:
    return (
        templates()
        .get_template("extract.html")
        .render(
            x=extract,
            lang=lang,
            country=country_name,
            label=lambda key: label(key, lang),
            shown=lambda value: shown(value, lang),
            ordered=ordered,
            word=lambda key: request_word(key, lang),
            titles={r["system"]: r["title"] for r in extract["recipients"]},
        )
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
