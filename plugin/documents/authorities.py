"""Supervisory authorities a data subject can complain to (Art. 15(1)(f)), by the shop's country.
Names from shared/reference/retention-law.md §4 item 11; web addresses only where that reference
cites the authority's own site."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Authority:
    name: str
    url: str | None = None


AUTHORITIES: dict[str, Authority] = {
    "SE": Authority("Integritetsskyddsmyndigheten (IMY)", "https://www.imy.se"),
    "FI": Authority("Tietosuojavaltuutettu (Data Protection Ombudsman)", "https://tietosuoja.fi"),
    "NO": Authority("Datatilsynet (Norway)"),
    "DK": Authority("Datatilsynet (Denmark)"),
    "DE": Authority("the data protection authority of the German Land where the shop is established"),
}
FALLBACK = Authority("the data protection supervisory authority of the EU/EEA country where you live or work")


def complaint_authority(country: str | None) -> Authority:
    return AUTHORITIES.get((country or "").upper(), FALLBACK)
