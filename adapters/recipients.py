"""What an adapter declares about its provider as a recipient of the shop's data (Art. 15(1)(c))
and its transfers outside the EU/EEA with their safeguards (Art. 15(2)).

Each adapter names the processor's legal name, the country where it processes the shop's data,
and every transfer out of the EU/EEA with its safeguard, each fact with the public page it comes
from (`Adapter.recipient`). Facts that could not be confirmed from a public source say "not
confirmed: ..." in `sources` and name the field in `unconfirmed`, so the register extract can mark
them instead of asserting them. A provider changing its set-up needs an edit in its adapter."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# EU member states plus Iceland, Liechtenstein and Norway: no safeguard is needed to send data here.
EEA = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IS IT LI LT LU LV MT NL NO PL PT RO SE SI SK".split()
)

# For a provider that lists no transfers of its own.
NO_TRANSFER_LIST = "not confirmed: the provider's own transfers outside the EU/EEA (none listed here)"


class Safeguard(StrEnum):
    ADEQUACY = "adequacy"  # Art. 45: a Commission adequacy decision for the country
    DPF = "adequacy_dpf"  # Art. 45: EU-US Data Privacy Framework, the company is certified
    SCC = "scc"  # Art. 46(2)(c): the Commission's standard contractual clauses


@dataclass(frozen=True)
class Transfer:
    # ISO 3166-1 alpha-2; None where the provider names the kind of importer but not the countries.
    country: str | None
    safeguards: tuple[Safeguard, ...]
    source: str


@dataclass(frozen=True)
class Recipient:
    legal_name: str
    country: str  # where it processes the shop's data (its own country where it says no more)
    sources: tuple[str, ...]
    transfers: tuple[Transfer, ...] = ()
    # Field names whose value could not be confirmed: "legal_name", "country", "transfers".
    unconfirmed: tuple[str, ...] = ()

    @property
    def in_eea(self) -> bool:
        return self.country in EEA
