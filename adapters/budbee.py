"""Budbee (Instabee group): the delivery order is cancelled through the API when it is not yet
picked up, and erasure of what Budbee keeps as controller is requested by e-mail.

API: https://api.budbee.com, HMAC-SHA1 request signing with the API key and secret, version in a
vendor media type (official budbee/budbee-php SDK, 2023). `DELETE /multiple/orders/{id}` removes an
order before pickup; `GET /multiple/orders?keyword=` searches names, addresses and the cart id,
which is the shop's order number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Generator
from email.utils import formatdate
from typing import Any

import httpx
from pydantic import Field, SecretStr

from adapters._rest import ApiAdapter
from adapters.base import Outcome, ProviderConfig, Result
from adapters.email_request import EmailRequestConfig, EmailRequests
from adapters.http import Endpoints, RateLimit
from adapters.recipients import NO_TRANSFER_LIST, Recipient
from plugin.holdings import Category, Holding, Subject

MEDIA_TYPE = "application/vnd.budbee.multiple.orders-v1+json"


class BudbeeHmac(httpx.Auth):
    """`Authorization: HmacSHA1 <key> <signature>` over method, date, nonce, URL and body."""

    def __init__(self, key: str, secret: str) -> None:
        self.key, self.secret = key, secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        date, nonce = formatdate(usegmt=True), secrets.token_hex(16)
        lines = [request.method, f"date:{date}", f"nonce:{nonce}", str(request.url)]
        if request.content:
            lines.append(request.content.decode())
        digest = hmac.new(self.secret.encode(), "\n".join(lines).encode(), hashlib.sha1).digest()
        request.headers["Authorization"] = f"HmacSHA1 {self.key} {base64.b64encode(digest).decode()}"
        request.headers["X-HMAC-Date"], request.headers["X-HMAC-Nonce"] = date, nonce
        yield request


class BudbeeConfig(EmailRequestConfig, ProviderConfig):
    api_key: str = Field(min_length=1, description="Budbee API key (from your Budbee integration contact).")
    api_secret: SecretStr = Field(description="Budbee API secret used to sign requests.")
    endpoints = Endpoints(production="https://api.budbee.com", sandbox="https://sandbox.api.budbee.com")


class Budbee(ApiAdapter[BudbeeConfig]):
    name = "budbee"
    title = "Budbee"
    category = Category.SHIPMENT
    description = "Cancels orders not yet picked up and asks Budbee by e-mail to erase the delivery data."
    mail = EmailRequests(country="SE", address=None)  # Instabee's External Privacy Notice names none
    carrier_aliases = ("budbee",)
    recipient = Recipient(
        "Budbee Group AB (Instabee)",
        "SE",
        (
            "https://instabee.com/general-terms-conditions/",
            "not confirmed: which Instabee company processes shipments for the shop",
            NO_TRANSFER_LIST,
        ),
        unconfirmed=("legal_name", "transfers"),
    )
    key_field = "api_secret"
    auth_settings = ("api_key", "api_secret")
    rate_limits = (RateLimit(5, 1.0),)  # no published quota

    def headers(self) -> dict[str, str]:
        return {"Accept": MEDIA_TYPE, "Content-Type": MEDIA_TYPE}

    def auth(self) -> httpx.Auth:
        return BudbeeHmac(self.config.api_key, self._secret())

    async def check_api(self) -> None:
        await self.call("GET", "/multiple/orders", absent=(), params={"num": 1})

    async def _orders(self, order_number: str) -> list[dict[str, Any]]:
        """Budbee's orders for one shop order, found by the cart id the shop gave Budbee (the
        keyword search also matches names and addresses, so compare exactly)."""
        number = order_number.lstrip("#")
        orders = await self.call_json("GET", "/multiple/orders", params={"keyword": number}) or []
        return [o for o in orders if str((o.get("cart") or {}).get("cartId", "")).lstrip("#") == number]

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        own = self.mail.own_shipment(self, subject, holding)
        if self.ctx.email is not None:
            self.mail.to(self)  # fail before cancelling when no privacy address is set
        cancelled = 0
        for order in await self._orders(own.order_name):
            # 404: gone; 400/409: already picked up or delivered, Budbee still holds the data.
            response = await self.call("DELETE", f"/multiple/orders/{order['id']}", accept=(400, 409))
            cancelled += response is not None and response.is_success
        done = (
            f"{cancelled} Budbee order(s) cancelled before pickup" if cancelled else "nothing left to cancel"
        )
        if self.ctx.email is None and cancelled:
            return Result(Outcome.CANCELLED, provider_ref=own.order_name, detail=done)
        return await self.mail.request(self, subject, self.mail.cited(self, subject, own), done=done)

    async def export(self, subject: Subject) -> dict[str, Any]:
        """The shipments Budbee received from the shop (what the e-mail request names), and
        Budbee's own order records where its API still has them."""
        names = dict.fromkeys(s.order_name for s in self.mail.shipments(self, subject))
        orders = [order for name in names for order in await self._orders(name)]
        return await self.mail.received(self, subject, orders=orders)
