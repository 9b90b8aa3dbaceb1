"""DHL (Express, Freight, eCommerce, Deutsche Post): no erasure endpoint, so an Art. 17 request
e-mailed to DHL Group's data protection office (datenanfragen/data, provider-apis.md §2.7). Nordic
DHL Express and Freight companies publish country notices without an address: a shop shipping
with them can enter that company's address instead. Shipments booked through the Parcel DE API
are `dhl_parcel_de`."""

from __future__ import annotations

from adapters.email_request import EmailRequestAdapter


class Dhl(EmailRequestAdapter):
    name = "dhl"
    title = "DHL"
    description = "Erasure requests e-mailed to DHL Group's data protection office."
    country = "DE"
    privacy_address = "datenschutz@dpdhl.com"
