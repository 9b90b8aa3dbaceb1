"""Instabox (Instabee group): no public erasure API; its privacy policy names info@instabox.se
as the channel for data subjects' rights (provider-apis.md §2.3)."""

from __future__ import annotations

from adapters.email_request import EmailRequestAdapter


class Instabox(EmailRequestAdapter):
    name = "instabox"
    title = "Instabox"
    description = "Erasure requests e-mailed to the address Instabox's privacy policy names."
    country = "SE"
    privacy_address = "info@instabox.se"
