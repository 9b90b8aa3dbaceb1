"""Which adapter holds a shipment: Shopify's free-text `trackingInfo.company` → adapter name.

Shops type carrier names by hand or through apps, so the same carrier arrives spelt many ways
("PostNord", "PostNord Sverige AB", "Postnord DK"). Shopify's own picker offers "PostNord SE",
"PostNord DK", "PostNord NO", "Portal PostNord", "Bring", "DHL", "DHL Express", "DHL eCommerce",
"DHL Parcel" and "Deutsche Post (DE)"; shipping apps write the carrier's legal name ("Posti Oy",
"Schenker AB", "Posten Norge AS"). Unknown names map to None and are listed for the shop owner
(`unknown_carriers`), never dropped.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

# Normalised spelling (see `_normalise`) → adapter name. Longest prefix wins for names not listed.
ALIASES: dict[str, str] = {
    "postnord": "postnord",
    "postnord sverige": "postnord",
    "postnord danmark": "postnord",
    "postnord dk": "postnord",
    "postnord se": "postnord",
    "postnord norge": "postnord",
    "postnord finland": "postnord",
    "portal postnord": "postnord",
    "post danmark": "postnord",  # PostNord's Danish brand until 2020
    "postnord mypack": "postnord",
    "posti": "posti",
    "posti group": "posti",
    "itella": "posti",
    "itella posti": "posti",
    "itella smartpost": "posti",
    "posti finland": "posti",
    "smartpost": "posti",
    "bring": "bring",
    "posten": "bring",
    "posten norge": "bring",
    "posten bring": "bring",
    "bring parcels": "bring",
    "bring express": "bring",
    "bring cargo": "bring",
    "db schenker": "schenker",
    "schenker": "schenker",
    "dsv schenker": "schenker",
    "db schenkerparcel": "schenker",
    "schenker sverige": "schenker",
    "instabox": "instabox",
    "instabee": "instabox",
    "budbee": "budbee",
    "dhl": "dhl",
    "dhl express": "dhl",
    "dhl freight": "dhl",
    "dhl paket": "dhl_parcel_de",
    "dhl parcel de": "dhl_parcel_de",
    "dhl parcel germany": "dhl_parcel_de",
    "dhl ecommerce": "dhl",
    "dhl e commerce": "dhl",
    "dhl parcel": "dhl",  # Shopify's "DHL Parcel" is DHL's UK/Benelux parcel arm, not Paket DE
    "dhl sweden": "dhl",
    "deutsche post": "dhl",
}

_LEGAL_SUFFIXES = re.compile(r"\b(ab|as|a s|oy|oyj|gmbh|ag|aps|asa|ltd|inc|group)\s*$")


def _normalise(company: str) -> str:
    # "Schenker Åkeri" → "schenker akeri": fold diacritics rather than drop the letters.
    folded = unicodedata.normalize("NFKD", company).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9]+", " ", folded.lower()).strip()
    while True:
        stripped = _LEGAL_SUFFIXES.sub("", text).strip()
        if stripped == text or not stripped:
            return text
        text = stripped


@lru_cache(maxsize=4096)
def carrier_adapter(company: str | None) -> str | None:
    if not company or not company.strip():
        return None
    name = _normalise(company)
    if name in ALIASES:
        return ALIASES[name]
    best = max((alias for alias in ALIASES if name.startswith(alias + " ")), key=len, default=None)
    return ALIASES[best] if best else None


def unknown_carriers(companies: Iterable[str | None]) -> list[str]:
    """Carrier names no adapter covers, as written, once each: shown to the shop owner so that a
    shipment's data is never silently left out of an erasure."""
    unknown: dict[str, str] = {}
    for company in companies:
        if company and company.strip() and carrier_adapter(company) is None:
            unknown.setdefault(_normalise(company), company.strip())
    return sorted(unknown.values(), key=str.lower)
