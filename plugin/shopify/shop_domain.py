"""The one rule for what a shop domain looks like: `name.myshopify.com`, lower case."""

from __future__ import annotations

import re

# Shopify/shopify_python_api shopify/utils/shop_url.py and shopify-app-js shop-validator.ts.
SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]\.myshopify\.com$")


def valid_shop_domain(domain: str | None) -> bool:
    return bool(domain) and len(domain or "") <= 255 and SHOP_DOMAIN.fullmatch(domain or "") is not None


class InvalidShopDomain(ValueError):
    """Not a `*.myshopify.com` domain."""


def require_shop_domain(domain: str | None) -> str:
    if not valid_shop_domain(domain):
        raise InvalidShopDomain("not a *.myshopify.com shop domain")
    assert domain is not None
    return domain
