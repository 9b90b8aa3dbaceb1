"""Recipients of a subject's data (Art. 15(1)(c)) and transfers outside the EU/EEA with their
safeguards (Art. 15(2)): one entry per adapter in `adapters/`, plus Shopify itself.

Each entry names the processor's legal name, the country where it processes the shop's data, and
every transfer out of the EU/EEA with its safeguard, each fact with the public page it comes from.
Facts that could not be confirmed from a public source say "not confirmed: ..." in `sources` and
name the field in `unconfirmed`, so the extract can mark them instead of asserting them. Checked
2026 against the providers' own pages; a provider changing its set-up needs an edit here."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# EU member states plus Iceland, Liechtenstein and Norway: no safeguard is needed to send data here.
EEA = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IS IT LI LT LU LV MT NL NO PL PT RO SE SI SK".split()
)


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


_SHOPIFY_TRANSFERS = (
    "https://help.shopify.com/en/manual/privacy-and-security/privacy/international-data-transfers/"
    "onward-transfers"
)
_NO_TRANSFER_LIST = "not confirmed: the provider's own transfers outside the EU/EEA (none listed here)"

RECIPIENTS: dict[str, Recipient] = {
    "shopify": Recipient(
        "Shopify International Limited",
        "IE",
        (
            "https://help.shopify.com/en/manual/privacy-and-security/privacy/international-data-transfers/"
            "contracting-entities",
            _SHOPIFY_TRANSFERS,
            "not confirmed: the United States as a named destination (the page names group "
            "companies and sub-processors, not their countries)",
        ),
        (
            Transfer("CA", (Safeguard.ADEQUACY,), _SHOPIFY_TRANSFERS),
            Transfer(None, (Safeguard.SCC,), _SHOPIFY_TRANSFERS),
        ),
    ),
    "klaviyo": Recipient(
        "Klaviyo, Inc.",
        "US",
        (
            "https://www.klaviyo.com/legal/privacy-faqs",
            "https://www.klaviyo.com/uk/gdpr",
            "not confirmed: standard contractual clauses in Klaviyo's data processing agreement",
        ),
        (Transfer("US", (Safeguard.DPF,), "https://www.klaviyo.com/uk/gdpr"),),
    ),
    "mailchimp": Recipient(
        "The Rocket Science Group LLC d/b/a Mailchimp (Intuit)",
        "US",
        ("https://mailchimp.com/es/help/mailchimp-european-data-transfers",),
        (
            Transfer(
                "US",
                (Safeguard.DPF, Safeguard.SCC),
                "https://mailchimp.com/es/help/mailchimp-european-data-transfers",
            ),
        ),
    ),
    "brevo": Recipient(
        "Sendinblue SAS (Brevo)",
        "FR",
        ("https://www.brevo.com/legal/termsofuse/", _NO_TRANSFER_LIST),
        unconfirmed=("transfers",),
    ),
    "omnisend": Recipient(
        "UAB Omnisend",
        "LT",
        ("https://www.omnisend.lt/data-processing-agreement/",),
        (
            Transfer("US", (Safeguard.SCC,), "https://www.omnisend.lt/data-processing-agreement/"),
            Transfer("GB", (Safeguard.SCC,), "https://www.omnisend.lt/data-processing-agreement/"),
        ),
    ),
    "rule_io": Recipient(
        "Rule Communication – Nordic AB",
        "SE",
        ("https://rule.io/rule-data-processing-agreement", _NO_TRANSFER_LIST),
        unconfirmed=("transfers",),
    ),
    "voyado": Recipient(
        "Voyado AB",
        "SE",
        (
            "https://voyado.com/legal/dpa",
            "not confirmed: the legal name and Swedish seat (the DPA names the Swedish supervisory "
            "authority and provides for sub-processors certified under the EU-US DPF)",
        ),
        unconfirmed=("legal_name", "country", "transfers"),
    ),
    "postnord": Recipient(
        "PostNord Sverige AB",
        "SE",
        (
            "https://www.postnord.se/integritetspolicy",
            "https://postnord.com/privacy-policy",
            "not confirmed: which PostNord company carries outside Sweden (PostNord A/S, PostNord Oy)",
            _NO_TRANSFER_LIST,
        ),
        unconfirmed=("transfers",),
    ),
    "bring": Recipient(
        "Posten Bring AS",
        "NO",
        ("https://www.bring.com/privacy-policy", _NO_TRANSFER_LIST),
        unconfirmed=("transfers",),
    ),
    "posti": Recipient(
        "Posti Ltd (Posti Oy)",
        "FI",
        (
            "https://posti.fi/en/customer-service/terms-and-statements/data-protection/privacy-statements/"
            "posti-privacy-statement-for-electronic-consumer-services",
            _NO_TRANSFER_LIST,
        ),
        unconfirmed=("transfers",),
    ),
    "budbee": Recipient(
        "Budbee Group AB (Instabee)",
        "SE",
        (
            "https://instabee.com/general-terms-conditions/",
            "not confirmed: which Instabee company processes shipments for the shop",
            _NO_TRANSFER_LIST,
        ),
        unconfirmed=("legal_name", "transfers"),
    ),
    "instabox": Recipient(
        "Instabox Sweden AB",
        "SE",
        ("https://instabox.io/da-DK/legal/privacy-policy", _NO_TRANSFER_LIST),
        unconfirmed=("transfers",),
    ),
    "dhl": Recipient(
        "DHL Group (Deutsche Post AG and its companies)",
        "DE",
        (
            "https://dhl.de/en/toolbar/footer/datenschutz.html",
            "not confirmed: the DHL company (Express, Freight) and country that carries the parcel",
            _NO_TRANSFER_LIST,
        ),
        unconfirmed=("legal_name", "transfers"),
    ),
    "dhl_parcel_de": Recipient(
        "DHL Paket GmbH",
        "DE",
        ("https://dhl.de/en/toolbar/footer/datenschutz.html", _NO_TRANSFER_LIST),
        unconfirmed=("transfers",),
    ),
    "schenker": Recipient(
        "Schenker AG (DB Schenker)",
        "DE",
        (
            "not confirmed: the legal name and seat (the adapter's privacy address belongs to "
            "Schenker AG, Essen)",
            _NO_TRANSFER_LIST,
        ),
        unconfirmed=("legal_name", "transfers"),
    ),
    "nshift": Recipient(
        "nShift AB (nShift group)",
        "SE",
        (
            "https://nshift.com/privacy-policy-mina-paket-app",
            "not confirmed: the nShift company that contracts with the shop (nShift B.V. in the Netherlands "
            "for Webshipper)",
            _NO_TRANSFER_LIST,
        ),
        unconfirmed=("legal_name", "transfers"),
    ),
    "sendcloud": Recipient(
        "Sendcloud B.V.",
        "NL",
        ("https://sendcloud.com/privacy-policy", _NO_TRANSFER_LIST),
        unconfirmed=("transfers",),
    ),
    "shipmondo": Recipient(
        "Shipmondo ApS",
        "DK",
        ("https://shipmondo.com/se/saekerhet/villkor/", _NO_TRANSFER_LIST),
        unconfirmed=("transfers",),
    ),
}


def recipient_entry(system: str, title: str, category: str | None) -> dict[str, Any]:
    """One recipient for the extract's JSON: who, where, and each transfer's safeguard. A system
    not in the table (a third-party adapter) says so with nulls rather than a guess."""
    known = RECIPIENTS.get(system)
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
