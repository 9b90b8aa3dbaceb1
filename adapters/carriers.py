"""Which adapter holds a shipment: Shopify's free-text `trackingInfo.company` → adapter name.

Shops type carrier names by hand or through apps, so the same carrier arrives spelt many ways
("PostNord", "PostNord Sverige AB", "Postnord DK"). Unknown names map to None and are listed for
the shop owner, never dropped.
"""

from __future__ import annotations

import re
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
    "posti": "posti",
    "posti group": "posti",
    "itella": "posti",
    "bring": "bring",
    "posten": "bring",
    "posten norge": "bring",
    "posten bring": "bring",
    "db schenker": "schenker",
    "schenker": "schenker",
    "dsv schenker": "schenker",
    "instabox": "instabox",
    "budbee": "budbee",
    "dhl": "dhl",
    "dhl express": "dhl",
    "dhl freight": "dhl",
    "dhl paket": "dhl_parcel_de",
    "dhl parcel de": "dhl_parcel_de",
    "dhl parcel germany": "dhl_parcel_de",
    "dhl ecommerce": "dhl",
}

_LEGAL_SUFFIXES = re.compile(r"\b(ab|as|a s|oy|oyj|gmbh|ag|aps|asa|ltd|inc|group)\s*$")


def _normalise(company: str) -> str:
    text = re.sub(r"[^a-z0-9]+", " ", company.lower()).strip()
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
