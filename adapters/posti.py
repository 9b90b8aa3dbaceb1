"""Posti (Finland): no erasure API, so an Art. 17 request e-mailed, in Finnish, to Posti's data
protection officer (provider-apis.md §2.5, Posti's privacy statements)."""

from __future__ import annotations

from adapters.email_request import EmailRequestAdapter


class Posti(EmailRequestAdapter):
    name = "posti"
    title = "Posti"
    description = "Erasure requests e-mailed to Posti's data protection officer."
    country = "FI"
    privacy_address = "tietosuoja@posti.com"
