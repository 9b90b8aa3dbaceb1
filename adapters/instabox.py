"""Instabox (Instabee group): no public erasure API; its privacy policy names info@instabox.se
as the channel for data subjects' rights (provider-apis.md §2.3)."""

from __future__ import annotations

from adapters.base import Adapter
from adapters.email_request import EmailRequestConfig, EmailRequests
from adapters.recipients import NO_TRANSFER_LIST, Recipient
from plugin.holdings import Category


class Instabox(Adapter[EmailRequestConfig]):
    name = "instabox"
    title = "Instabox"
    category = Category.SHIPMENT
    description = "Erasure requests e-mailed to the address Instabox's privacy policy names."
    mail = EmailRequests(country="SE", address="info@instabox.se")
    carrier_aliases = ("instabox", "instabee")
    recipient = Recipient(
        "Instabox Sweden AB",
        "SE",
        ("https://instabox.io/da-DK/legal/privacy-policy", NO_TRANSFER_LIST),
        unconfirmed=("transfers",),
    )
