"""Bring / Posten Norge: no erasure API (the Mybring APIs book and track only), so an Art. 17
request e-mailed in Norwegian. Posten Bring AS publishes no privacy e-mail address
(bring.com/privacy-policy, posten.no/en/privacy-policy): the shop owner enters one."""

from __future__ import annotations

from adapters.email_request import EmailRequestAdapter


class Bring(EmailRequestAdapter):
    name = "bring"
    title = "Bring / Posten Norge"
    description = "Erasure requests e-mailed to Posten Bring (address from its privacy policy)."
    country = "NO"
    privacy_address = None  # unknown: see https://www.bring.com/privacy-policy
