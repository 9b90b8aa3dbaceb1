"""DB Schenker: booking and tracking APIs only, so an Art. 17 request e-mailed to the Chief
Privacy Officer of Schenker AG in Essen (provider-apis.md §2.4). DSV bought DB Schenker in 2025:
if requests are redirected, the shop owner updates the address."""

from __future__ import annotations

from adapters.email_request import EmailRequestAdapter


class Schenker(EmailRequestAdapter):
    name = "schenker"
    title = "DB Schenker"
    description = "Erasure requests e-mailed to Schenker AG's data protection office."
    country = "DE"  # the address belongs to Schenker AG, Essen
    privacy_address = "dataprotection@dbschenker.com"
