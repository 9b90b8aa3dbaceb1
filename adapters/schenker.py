"""DB Schenker: booking and tracking APIs only, so an Art. 17 request e-mailed to the Chief
Privacy Officer of Schenker AG in Essen (provider-apis.md §2.4). DSV bought DB Schenker in 2025:
if requests are redirected, the shop owner updates the address."""

from __future__ import annotations

from adapters.base import Adapter
from adapters.email_request import EmailRequestConfig, EmailRequests
from adapters.recipients import NO_TRANSFER_LIST, Recipient
from plugin.holdings import Category


class Schenker(Adapter[EmailRequestConfig]):
    name = "schenker"
    title = "DB Schenker"
    category = Category.SHIPMENT
    description = "Erasure requests e-mailed to Schenker AG's data protection office."
    # The address belongs to Schenker AG, Essen: German.
    mail = EmailRequests(country="DE", address="dataprotection@dbschenker.com")
    carrier_aliases = ("schenker", "db schenker", "dsv schenker", "db schenkerparcel", "schenker sverige")
    recipient = Recipient(
        "Schenker AG (DB Schenker)",
        "DE",
        (
            "not confirmed: the legal name and seat (the adapter's privacy address belongs to "
            "Schenker AG, Essen)",
            NO_TRANSFER_LIST,
        ),
        unconfirmed=("legal_name", "transfers"),
    )
