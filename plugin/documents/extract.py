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
from plugin.documents.language import LANGUAGES, Lang, country_name
from plugin.documents.recipients import recipient_entry
from plugin.documents.store import replace_artifacts, templates
from plugin.models import Artifact, Request, Shop, utcnow
from plugin.pipelines.gaps import not_examined_block, not_examined_of
from plugin.retention.sentences import retention_period

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
CATEGORY_NAMES: dict[str, dict[str, str]] = {
    "accounting_record": {"en": "Orders as accounting records", "sv": "Order som bokföringsunderlag"},
    "order_contact": {
        "en": "Contact details, addresses and notes on orders",
        "sv": "Kontaktuppgifter, adresser och anteckningar på order",
    },
    "shipment": {"en": "Delivery data at carriers", "sv": "Leveransuppgifter hos transportörer"},
    "newsletter": {
        "en": "Newsletter subscriptions and marketing consent",
        "sv": "Nyhetsbrevsprenumerationer och samtycke till marknadsföring",
    },
    "customer_account": {"en": "Customer account", "sv": "Kundkonto"},
    "app_request_data": {
        "en": "Your privacy requests to the shop",
        "sv": "Dina integritetsförfrågningar till butiken",
    },
}
# Art. 15(1)(e): the rights the subject has besides access; the JSON's `rights` lists them by name.
RIGHTS = {
    "en": (
        "You have the right to ask for rectification of inaccurate data, for erasure, or for "
        "restriction of processing, to object to processing, to receive data you provided in a "
        "machine-readable format (portability), and to withdraw consent at any time. Write to the "
        "shop to use them."
    ),
    "sv": (
        "Du har rätt att begära rättelse av felaktiga uppgifter, radering eller begränsning av "
        "behandlingen, att invända mot behandlingen, att få ut uppgifter du lämnat i ett "
        "maskinläsbart format (dataportabilitet) och att när som helst återkalla ett samtycke. "
        "Skriv till butiken för att använda dem."
    ),
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
        "purposes": {c: PURPOSES.get(c, {"en": c, "sv": c}) for c in categories},
        "categories": categories,
        "category_names": {c: CATEGORY_NAMES.get(c, {"en": c, "sv": c}) for c in categories},
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
        "rights_explained": RIGHTS,
        "complaint_authority": compact({"name": authority.name, "url": authority.url}),
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
LABELS: dict[str, dict[str, str]] = {
    "provider": {"en": "Provider", "sv": "Leverantör"},
    "processor": {"en": "Processor", "sv": "Biträde"},
    "channel": {"en": "How Gallra reaches it", "sv": "Hur Gallra når den"},
    "privacy_address": {"en": "Privacy contact", "sv": "Dataskyddskontakt"},
    "id": {"en": "ID", "sv": "ID"},
    "name": {"en": "Name", "sv": "Namn"},
    "display_name": {"en": "Name shown", "sv": "Visningsnamn"},
    "first_name": {"en": "First name", "sv": "Förnamn"},
    "last_name": {"en": "Last name", "sv": "Efternamn"},
    "company": {"en": "Company", "sv": "Företag"},
    "email": {"en": "E-mail", "sv": "E-post"},
    "email_address": {"en": "E-mail address", "sv": "E-postadress"},
    "phone": {"en": "Phone", "sv": "Telefon"},
    "phone_number": {"en": "Phone number", "sv": "Telefonnummer"},
    "address1": {"en": "Address", "sv": "Adress"},
    "address2": {"en": "Address, line 2", "sv": "Adress, rad 2"},
    "zip": {"en": "Postcode", "sv": "Postnummer"},
    "city": {"en": "City", "sv": "Ort"},
    "province": {"en": "Region", "sv": "Region"},
    "country": {"en": "Country", "sv": "Land"},
    "country_code": {"en": "Country code", "sv": "Landskod"},
    "customer": {"en": "Customer account", "sv": "Kundkonto"},
    "orders": {"en": "Orders", "sv": "Order"},
    "order": {"en": "Order", "sv": "Order"},
    "title": {"en": "Item", "sv": "Artikel"},
    "variant": {"en": "Variant", "sv": "Variant"},
    "sku": {"en": "Article number", "sv": "Artikelnummer"},
    "quantity": {"en": "Quantity", "sv": "Antal"},
    "unit_price": {"en": "Unit price", "sv": "Styckpris"},
    "total": {"en": "Total", "sv": "Summa"},
    "created_at": {"en": "Created", "sv": "Skapad"},
    "processed_at": {"en": "Processed", "sv": "Behandlad"},
    "updated_at": {"en": "Updated", "sv": "Uppdaterad"},
    "closed_at": {"en": "Closed", "sv": "Avslutad"},
    "cancelled_at": {"en": "Cancelled", "sv": "Annullerad"},
    "state": {"en": "State", "sv": "Status"},
    "status": {"en": "Status", "sv": "Status"},
    "financial_status": {"en": "Payment status", "sv": "Betalningsstatus"},
    "fulfillment_status": {"en": "Delivery status", "sv": "Leveransstatus"},
    "amount": {"en": "Amount", "sv": "Belopp"},
    "currency": {"en": "Currency", "sv": "Valuta"},
    "line_items": {"en": "Items", "sv": "Artiklar"},
    "line_items_incomplete": {
        "en": "More items than listed here (ask the shop for the full order)",
        "sv": "Fler artiklar än de som listas här (be butiken om hela ordern)",
    },
    "totals": {"en": "Totals", "sv": "Summor"},
    "subtotal": {"en": "Subtotal", "sv": "Delsumma"},
    "shipping": {"en": "Delivery", "sv": "Frakt"},
    "tax": {"en": "VAT", "sv": "Moms"},
    "discounts": {"en": "Discounts", "sv": "Rabatter"},
    "shipping_method": {"en": "Delivery method", "sv": "Leveranssätt"},
    "shipping_address": {"en": "Delivery address", "sv": "Leveransadress"},
    "billing_address": {"en": "Billing address", "sv": "Faktureringsadress"},
    "note": {"en": "Note", "sv": "Anteckning"},
    "tags": {"en": "Tags", "sv": "Taggar"},
    "attributes": {"en": "Attributes", "sv": "Egenskaper"},
    "locale": {"en": "Language", "sv": "Språk"},
    "number_of_orders": {"en": "Number of orders", "sv": "Antal order"},
    "amount_spent": {"en": "Amount spent", "sv": "Köpt för"},
    "addresses": {"en": "Addresses", "sv": "Adresser"},
    "marketing_consent": {"en": "Marketing consent", "sv": "Samtycke till marknadsföring"},
    "sms": {"en": "SMS", "sv": "SMS"},
    "opt_in_level": {"en": "Opt-in level", "sv": "Typ av samtycke"},
    "consent_updated_at": {"en": "Consent updated", "sv": "Samtycke ändrat"},
    "fulfillments": {"en": "Deliveries", "sv": "Leveranser"},
    "sent": {"en": "Sent", "sv": "Skickad"},
    "in_transit_at": {"en": "In transit", "sv": "Under transport"},
    "delivered_at": {"en": "Delivered", "sv": "Levererad"},
    "delivered": {"en": "Delivered", "sv": "Levererad"},
    "tracking": {"en": "Tracking", "sv": "Spårning"},
    "carrier": {"en": "Carrier", "sv": "Transportör"},
    "carrier_as_recorded": {"en": "Carrier (as the shop recorded it)", "sv": "Transportör (enligt butiken)"},
    "number": {"en": "Tracking number", "sv": "Kollinummer"},
    "tracking_number": {"en": "Tracking number", "sv": "Kollinummer"},
    "url": {"en": "Tracking link", "sv": "Spårningslänk"},
    "tracking_url": {"en": "Tracking link", "sv": "Spårningslänk"},
    "shipments": {"en": "Shipments it received", "sv": "Försändelser den fått"},
    "profiles": {"en": "Profiles", "sv": "Profiler"},
    "members": {"en": "Subscriptions", "sv": "Prenumerationer"},
    "lists": {"en": "Lists", "sv": "Listor"},
    "segments": {"en": "Segments", "sv": "Segment"},
}
YES_NO = {"en": ("Yes", "No"), "sv": ("Ja", "Nej")}


def label(key: Any, lang: str) -> str:
    names = LABELS.get(str(key))
    if names:
        return names[lang]
    text = str(key).replace("_", " ")
    return text[:1].upper() + text[1:]


_RANK = {key: n for n, key in enumerate(LABELS)}


def ordered(value: dict[str, Any]) -> list[tuple[str, Any]]:
    """A record's fields in reading order (as `LABELS` lists them: who, how to reach, what, when),
    the ones it does not name after them as they come."""
    return sorted(value.items(), key=lambda item: _RANK.get(item[0], len(_RANK)))


def shown(value: Any, lang: str) -> str:
    """A leaf of the copy of the data as text: booleans in words, the rest as it is."""
    if isinstance(value, bool):
        return YES_NO[lang][0 if value else 1]
    return str(value)


def request_word(kind: str, lang: str) -> str:
    """A request's kind or state in the reader's language, with the admin's words."""
    from plugin.admin.i18n import translate

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
