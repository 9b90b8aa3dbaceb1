"""Posti (Finland): no erasure API, so an Art. 17 request e-mailed, in Finnish, to Posti's data
protection officer (provider-apis.md §2.5, Posti's privacy statements)."""

from __future__ import annotations

from adapters.base import Adapter
from adapters.email_request import EmailRequestConfig, EmailRequests
from adapters.recipients import NO_TRANSFER_LIST, Recipient
from plugin.holdings import Category


class Posti(Adapter[EmailRequestConfig]):
    name = "posti"
    title = "Posti"
    category = Category.SHIPMENT
    description = "Erasure requests e-mailed to Posti's data protection officer."
    mail = EmailRequests(country="FI", address="tietosuoja@posti.com")
    carrier_aliases = (
        "posti",
        "posti group",
        "posti finland",
        "itella",
        "itella posti",
        "itella smartpost",
        "smartpost",
    )
    recipient = Recipient(
        "Posti Ltd (Posti Oy)",
        "FI",
        (
            "https://posti.fi/en/customer-service/terms-and-statements/data-protection/privacy-statements/"
            "posti-privacy-statement-for-electronic-consumer-services",
            NO_TRANSFER_LIST,
        ),
        unconfirmed=("transfers",),
    )
