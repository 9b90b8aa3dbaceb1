"""Third-party adapters as a plug-in package would ship them: one module each, loaded through an
entry point in tests/adapters/test_registry.py."""

from __future__ import annotations

from typing import Any

from adapters.base import Adapter, AdapterConfig, Result
from adapters.email_request import EmailRequestConfig, EmailRequests
from adapters.recipients import Recipient
from plugin.holdings import Category, Holding, Subject


class Exempel(Adapter[EmailRequestConfig]):
    """A carrier the catalogue does not ship: e-mail only, with its own spellings and facts."""

    name = "exempel_frakt"
    title = "Exempel Frakt"
    category = Category.SHIPMENT
    description = "Erasure requests e-mailed to Exempel Frakt's privacy contact."
    mail = EmailRequests(country="SE", address="dataskydd@exempelfrakt.example")
    carrier_aliases = ("exempel frakt", "exempel logistik")
    recipient = Recipient("Exempel Frakt AB", "SE", ("https://exempelfrakt.example/integritet",))


class NotPostNord(Adapter[EmailRequestConfig]):
    """A plug-in that would take a built-in adapter's name."""

    name = "postnord"
    title = "Not PostNord"
    category = Category.SHIPMENT
    mail = EmailRequests(country="SE", address="x@example.com")


class ClaimsBring(Adapter[EmailRequestConfig]):
    """A plug-in that claims a spelling a built-in carrier declares."""

    name = "posten_clone"
    title = "Posten clone"
    category = Category.SHIPMENT
    mail = EmailRequests(country="NO", address="x@example.com")
    carrier_aliases = ("posten norge",)


class Crm(Adapter[AdapterConfig]):
    """An API-less, e-mail-less system implementing the calls itself."""

    name = "acme_crm"
    title = "Acme CRM"
    category = Category.CUSTOMER_ACCOUNT

    async def find(self, subject: Subject) -> list[Holding]:
        return []

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        raise NotImplementedError

    async def export(self, subject: Subject) -> dict[str, Any]:
        return {}


NOT_AN_ADAPTER = object()
