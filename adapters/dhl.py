"""DHL (Express, Freight, eCommerce, Deutsche Post): no erasure endpoint, so an Art. 17 request
e-mailed to DHL Group's data protection office (datenanfragen/data, provider-apis.md §2.7). Nordic
DHL Express and Freight companies publish country notices without an address: a shop shipping
with them can enter that company's address instead. Shipments booked through the Parcel DE API
are `dhl_parcel_de`."""

from __future__ import annotations

from adapters.base import Adapter
from adapters.email_request import EmailRequestConfig, EmailRequests
from adapters.recipients import NO_TRANSFER_LIST, Recipient
from plugin.holdings import Category


class Dhl(Adapter[EmailRequestConfig]):
    name = "dhl"
    title = "DHL"
    category = Category.SHIPMENT
    description = "Erasure requests e-mailed to DHL Group's data protection office."
    mail = EmailRequests(country="DE", address="datenschutz@dpdhl.com")
    # "DHL Parcel" is Shopify's entry for DHL's UK/Benelux parcel arm, not Paket DE (`dhl_parcel_de`).
    carrier_aliases = (
        "dhl",
        "dhl express",
        "dhl freight",
        "dhl ecommerce",
        "dhl e commerce",
        "dhl parcel",
        "dhl sweden",
        "deutsche post",
    )
    recipient = Recipient(
        "DHL Group (Deutsche Post AG and its companies)",
        "DE",
        (
            "https://dhl.de/en/toolbar/footer/datenschutz.html",
            "not confirmed: the DHL company (Express, Freight) and country that carries the parcel",
            NO_TRANSFER_LIST,
        ),
        unconfirmed=("legal_name", "transfers"),
    )
