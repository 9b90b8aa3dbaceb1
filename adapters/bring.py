"""Bring / Posten Norge: no erasure API (the Mybring APIs book and track only), so an Art. 17
request e-mailed in Norwegian. Posten Bring AS publishes no privacy e-mail address
(bring.com/privacy-policy, posten.no/en/privacy-policy): the shop owner enters one."""

from __future__ import annotations

from adapters.base import Adapter
from adapters.email_request import EmailRequestConfig, EmailRequests
from adapters.recipients import NO_TRANSFER_LIST, Recipient
from plugin.holdings import Category


class Bring(Adapter[EmailRequestConfig]):
    name = "bring"
    title = "Bring / Posten Norge"
    category = Category.SHIPMENT
    description = "Erasure requests e-mailed to Posten Bring (address from its privacy policy)."
    mail = EmailRequests(country="NO", address=None)  # unknown: see https://www.bring.com/privacy-policy
    carrier_aliases = (
        "bring",
        "bring parcels",
        "bring express",
        "bring cargo",
        "posten",
        "posten norge",
        "posten bring",
    )
    recipient = Recipient(
        "Posten Bring AS",
        "NO",
        ("https://www.bring.com/privacy-policy", NO_TRANSFER_LIST),
        unconfirmed=("transfers",),
    )
