"""Response headers for every admin response: who may frame it, what it may load, no caching.

`frame-ancestors` names the one shop the response belongs to plus Shopify's unified admin, so the
page can be embedded in that shop's admin and nowhere else (Shopify's iframe-protection rule).
"""

from __future__ import annotations

from typing import TypeVar

from starlette.responses import Response

R = TypeVar("R", bound=Response)

APP_BRIDGE_URL = "https://cdn.shopify.com/shopifycloud/app-bridge.js"


def content_security_policy(shop: str | None) -> str:
    ancestors = f"https://{shop} https://admin.shopify.com" if shop else "'none'"
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' https://cdn.shopify.com",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self' https://*.shopify.com",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {ancestors}",
        ]
    )


def secure(response: R, shop: str | None) -> R:
    response.headers["Content-Security-Policy"] = content_security_policy(shop)
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Page URLs carry a one-minute session token; never hand it to another site.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response
