"""Recipients of a subject's data (Art. 15(1)(c)) and transfers outside the EU/EEA with their
safeguards (Art. 15(2)), as the register extract shows them.

The facts are the adapters' own: each adapter declares its provider's legal name, country and
transfers (`Adapter.recipient`, types in `adapters.recipients`), and the catalogue gathers them
(`adapters.registry.recipients`), third-party adapters included."""

from __future__ import annotations

from typing import Any

from adapters.registry import recipients


def recipient_entry(system: str, title: str, category: str | None) -> dict[str, Any]:
    """One recipient for the extract's JSON: who, where, and each transfer's safeguard. A system
    whose adapter declares no recipient (or is gone) says so with nulls rather than a guess."""
    known = recipients().get(system)
    if known is None:
        return {
            "system": system,
            "title": title,
            "category": category,
            "legal_name": None,
            "country": None,
            "in_eea": None,
            "transfers": [],
            "sources": [],
            "unconfirmed": ["legal_name", "country", "transfers"],
        }
    return {
        "system": system,
        "title": title,
        "category": category,
        "legal_name": known.legal_name,
        "country": known.country,
        "in_eea": known.in_eea,
        "transfers": [
            {"country": t.country, "safeguards": [s.value for s in t.safeguards], "source": t.source}
            for t in known.transfers
        ],
        "sources": [s for s in known.sources if s.startswith("https://")],
        "unconfirmed": list(known.unconfirmed),
    }
