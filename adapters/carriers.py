"""Which adapter holds a shipment: Shopify's free-text `trackingInfo.company` → adapter name.

Shops type carrier names by hand or through apps, so the same carrier arrives spelt many ways
("PostNord", "PostNord Sverige AB", "Postnord DK"). Shopify's own picker offers "PostNord SE",
"PostNord DK", "PostNord NO", "Portal PostNord", "Bring", "DHL", "DHL Express", "DHL eCommerce",
"DHL Parcel" and "Deutsche Post (DE)"; shipping apps write the carrier's legal name ("Posti Oy",
"Schenker AB", "Posten Norge AS"). Unknown names map to None and are listed for the shop owner
(`unknown_carriers`), never dropped.

Each carrier adapter declares its spellings (`Adapter.carrier_aliases`); an adapter that declares
any also matches its own name (the executor hands carrier adapters shipments under it). The table
is built from the catalogue, third-party adapters included; two adapters claiming one spelling is
an error, since a shipment must have one carrier.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from adapters.registry import CatalogueError, catalogue

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


@lru_cache(maxsize=1)
def aliases() -> dict[str, str]:
    """Normalised spelling (see `_normalise`) → adapter name, from the catalogue's declarations."""
    table: dict[str, str] = {}
    for name, cls in catalogue().items():
        declared = (name, *cls.carrier_aliases) if cls.carrier_aliases else ()
        for alias in map(_normalise, declared):
            if table.setdefault(alias, name) != name:
                raise CatalogueError(
                    f"adapters {table[alias]!r} and {name!r} both declare the carrier spelling {alias!r}"
                )
    return table


@lru_cache(maxsize=4096)
def carrier_adapter(company: str | None) -> str | None:
    """The adapter holding a shipment whose carrier is written `company`; longest prefix wins for
    names not declared ("postnord mypack collect" → "postnord mypack")."""
    if not company or not company.strip():
        return None
    name = _normalise(company)
    table = aliases()
    if name in table:
        return table[name]
    best = max((alias for alias in table if name.startswith(alias + " ")), key=len, default=None)
    return table[best] if best else None


def unknown_carriers(companies: Iterable[str | None]) -> list[str]:
    """Carrier names no adapter covers, as written, once each: shown to the shop owner so that a
    shipment's data is never silently left out of an erasure."""
    unknown: dict[str, str] = {}
    for company in companies:
        if company and company.strip() and carrier_adapter(company) is None:
            unknown.setdefault(_normalise(company), company.strip())
    return sorted(unknown.values(), key=str.lower)
