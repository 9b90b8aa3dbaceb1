"""Which adapter holds a shipment (Shopify's carrier names as Nordic shops write them), and the
carriers that are only an e-mail channel (`EmailRequests`): address, language by country, one
message per subject, the shop owner's overrides."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.base import Adapter, Outcome, PermanentFailure
from adapters.bring import Bring
from adapters.carriers import carrier_adapter, unknown_carriers
from adapters.dhl import Dhl
from adapters.email_request import COUNTRY_LANGUAGE, TEMPLATES
from adapters.instabox import Instabox
from adapters.posti import Posti
from adapters.registry import catalogue
from adapters.schenker import Schenker
from tests.adapters.support import EMAIL, build, subject

SPELLINGS = {
    "PostNord": "postnord",
    "PostNord Sverige AB": "postnord",
    "PostNord SE": "postnord",
    "PostNord DK": "postnord",
    "PostNord NO": "postnord",
    "Portal PostNord": "postnord",
    "Postnord MyPack Collect": "postnord",
    "Post Danmark": "postnord",
    "Posti": "posti",
    "Posti Oy": "posti",
    "Itella Posti Oy": "posti",
    "Bring": "bring",
    "Posten Norge AS": "bring",
    "Bring Parcels AB": "bring",
    "DB Schenker": "schenker",
    "Schenker AB": "schenker",
    "DB SCHENKERparcel": "schenker",
    "Schenker Åkeri AB": "schenker",
    "Instabox": "instabox",
    "Budbee AB": "budbee",
    "DHL Express": "dhl",
    "DHL Freight Sweden": "dhl",
    "DHL eCommerce": "dhl",
    "DHL Parcel": "dhl",
    "Deutsche Post (DE)": "dhl",
    "DHL Paket GmbH": "dhl_parcel_de",
    "  postnord  ": "postnord",
}


@pytest.mark.parametrize(("written", "adapter"), SPELLINGS.items())
def test_real_spellings_map_to_adapters(written: str, adapter: str) -> None:
    assert carrier_adapter(written) == adapter


def test_every_mapped_name_is_an_adapter_in_the_catalogue() -> None:
    assert set(SPELLINGS.values()) <= set(catalogue())


def test_unknown_carriers_are_listed_once_never_dropped() -> None:
    assert (
        carrier_adapter("Early Bird") is None
        and carrier_adapter(None) is None
        and carrier_adapter(" ") is None
    )
    written = ["GLS", "PostNord", None, "Early Bird", "gls ", "Airmee", "DHL Express"]
    assert unknown_carriers(written) == ["Airmee", "Early Bird", "GLS"]


EMAIL_CARRIERS: list[tuple[type[Adapter], str, str | None, str]] = [
    (Posti, "Posti Oy", "tietosuoja@posti.com", "Henkilötietojen poistopyyntö"),
    (Schenker, "DB Schenker", "dataprotection@dbschenker.com", "Antrag auf Löschung"),
    (Bring, "Posten Norge AS", None, "Anmodning om sletting"),
    (Instabox, "Instabox", "info@instabox.se", "Begäran om radering"),
    (Dhl, "DHL Express", "datenschutz@dpdhl.com", "Antrag auf Löschung"),
]


@pytest.mark.parametrize(("cls", "written", "address", "opening"), EMAIL_CARRIERS)
async def test_email_carrier_requests_erasure_in_its_language(
    cls: type[Adapter], written: str, address: str | None, opening: str
) -> None:
    settings: dict[str, Any] = {} if address else {"privacy_email": "personvern@posten.example"}
    adapter, outbox, _ = build(cls, **settings)
    customer = subject(("#1001", written, "TRK-1"), ("#1002", written, "TRK-2"), ("#1003", "GLS", "G-3"))
    holdings = await adapter.find(customer)
    assert len(holdings) == 2 and all(h.system == cls.name for h in holdings)
    results = [await adapter.erase(customer, h) for h in holdings + holdings]  # erased twice
    assert {r.outcome for r in results} == {Outcome.REQUEST_SENT}
    assert len({r.provider_ref for r in results}) == 1
    [mail] = outbox.sent  # one message for all of the subject's shipments, however often asked
    assert mail["to"] == (address or "personvern@posten.example") and mail["subject"].startswith(opening)
    assert "TRK-1" in mail["body"] and "TRK-2" in mail["body"] and "G-3" not in mail["body"]
    assert EMAIL in mail["body"] and mail["reply_to"] == "dpo@butik.se"


@pytest.mark.parametrize(("cls", "written", "address", "opening"), EMAIL_CARRIERS)
async def test_email_carrier_with_no_shipments_holds_nothing(
    cls: type[Adapter], written: str, address: str | None, opening: str
) -> None:
    adapter, _, _ = build(cls)
    assert await adapter.find(subject(("#1", "GLS", "G-1"))) == []


async def test_bring_without_an_address_names_the_setting() -> None:
    adapter, _, _ = build(Bring)
    customer = subject(("#1001", "Bring", "370000000000"))
    [holding] = await adapter.find(customer)
    with pytest.raises(PermanentFailure, match="privacy_email"):
        await adapter.erase(customer, holding)


async def test_shop_owner_may_change_address_and_language() -> None:
    adapter, outbox, _ = build(Posti, privacy_email="dpo@posti.example", language="sv")
    customer = subject(("#1001", "Posti", "JJFI1"))
    [holding] = await adapter.find(customer)
    await adapter.erase(customer, holding)
    assert outbox.sent[0]["to"] == "dpo@posti.example" and outbox.sent[0]["subject"].startswith("Begäran")


@pytest.mark.parametrize("language", sorted(TEMPLATES))
def test_every_template_fills_every_placeholder(language: str) -> None:
    adapter, _, _ = build(Posti, language=language)
    customer = subject(("#1001", "Posti", "JJFI1"))
    title, body = adapter.mail.render(adapter, customer, list(customer.shipments))
    assert "{reference}" in title and "{reference}" in body
    leftover = body.replace("{reference}", "")
    assert "{" not in leftover and "JJFI1" in body and "#1001" in body and "2026-03-01" in body


def test_nordic_and_german_countries_have_templates() -> None:
    assert {COUNTRY_LANGUAGE[c] for c in ("SE", "FI", "NO", "DK", "DE")} <= set(TEMPLATES)
