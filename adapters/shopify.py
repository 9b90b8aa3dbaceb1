"""Shopify, the shop's own store (provider-apis.md §1.7, shopify-platform.md §4.1-4.3): what it
holds about the customer (account, marketing consent, orders and their shipments), consent set to
UNSUBSCRIBED for e-mail and SMS, and Shopify's own customer data erasure.

The customer account is only erased when the plan says so (the executor calls `erase` for that
holding only then); Shopify's erasure is queued by Shopify and redacts the customer's personal data
while keeping what was sold for bookkeeping. Orders cannot be erased one by one through the API.
Calls go through Gallra's Admin client (`plugin.shopify`), which paces by query cost, so this
adapter declares no rate limits of its own; the executor hands it the shop's client through the
context (`AdapterContext.admin_client`). `find` also returns each order's shipments at the
carriers' adapters (refs as the carrier adapters give them), so nothing shipped is left unlisted.

Reduce applies to the marketing (newsletter) holding only: consent set to UNSUBSCRIBED, as erase
does for it; that state is Shopify's suppression entry. The personal fields a rule removes live on
the customer record, which the customer account's own step handles, and the result says so. Any
other holding is kept whole (the default `reduce`).

Verification (`verification`): Shopify carries out its customer data erasure later, 10 days after
the request when the customer has not ordered in the last 6 months, otherwise once 6 months have
passed (shopify-platform.md §1.1, §4.3). So the executor looks the customer up by its id 10 days
after the call, then every 14 days, until 6 months and 10 days have passed. Gone means the
customer account is no longer found; the order holdings the erasure covers are verified with it.
An unsubscribe keeps the consent state (Shopify's suppression entry): nothing to see gone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from pydantic import Field

from adapters.base import (
    Adapter,
    AdapterConfig,
    AuthFailed,
    ErasureCover,
    Outcome,
    PermanentFailure,
    Result,
    TemporaryFailure,
    Verification,
)
from adapters.recipients import Recipient, Safeguard, Transfer
from adapters.shopify_holdings import customer_holdings, order_holdings
from plugin.holdings import SHOPIFY, Category, Holding, Subject
from plugin.shopify import operations
from plugin.shopify.client import AdminClient, ShopifyAuthError, ShopifyError, ShopifyUnavailable
from plugin.shopify.records import CustomerRecord, OrderRecord
from plugin.shopify.tokens import ShopNotInstalled, TokenRequestFailed

ACTIVE = frozenset({"SUBSCRIBED", "PENDING"})  # states an unsubscribe changes
CHECK_QUERY = "query GallraConnectionCheck { shop { id } }"  # 1 point: proves the token works


class ShopifyConfig(AdapterConfig):
    unsubscribe_sms: bool = Field(
        default=True, description="Also set SMS marketing consent to UNSUBSCRIBED when erasing marketing."
    )


@asynccontextmanager
async def _mapped_errors() -> AsyncIterator[None]:
    """The Shopify client's errors as adapter errors; their messages carry no personal data."""
    try:
        yield
    except ShopifyAuthError:
        raise AuthFailed(
            SHOPIFY, "Shopify rejected the shop's access token (reinstall or reopen the app to renew it)"
        ) from None
    except ShopifyUnavailable as exc:
        raise TemporaryFailure(SHOPIFY, str(exc), retry_after=exc.retry_after) from None
    except ShopifyError as exc:
        raise PermanentFailure(SHOPIFY, str(exc)) from None


def _customer_id(ref: str) -> int | None:
    parts = ref.split(":")
    if len(parts) >= 2 and parts[0] == "customer" and parts[1].isdigit():
        return int(parts[1])
    return None


_TRANSFERS = (
    "https://help.shopify.com/en/manual/privacy-and-security/privacy/international-data-transfers/"
    "onward-transfers"
)


class Shopify(Adapter[ShopifyConfig]):
    name = SHOPIFY
    title = "Shopify"
    category = Category.CUSTOMER_ACCOUNT
    description = "The customer account, marketing consent and orders in the shop itself."
    can_reduce = True  # the marketing holding only (see `reduce`)
    # Shopify has no call that erases an order's personal data on its own: its customer data
    # erasure redacts it on every order of the customer.
    erasure_covers = ErasureCover(
        by=Category.CUSTOMER_ACCOUNT,
        refs=("order:",),
        why="Shopify's customer data erasure redacts the customer's orders",
    )
    recipient = Recipient(
        "Shopify International Limited",
        "IE",
        (
            "https://help.shopify.com/en/manual/privacy-and-security/privacy/international-data-transfers/"
            "contracting-entities",
            _TRANSFERS,
            "not confirmed: the United States as a named destination (the page names group "
            "companies and sub-processors, not their countries)",
        ),
        (Transfer("CA", (Safeguard.ADEQUACY,), _TRANSFERS), Transfer(None, (Safeguard.SCC,), _TRANSFERS)),
    )
    verification = Verification(
        after=timedelta(days=10),
        every=timedelta(days=14),
        within=timedelta(days=183 + 10),
        how="Shopify's Admin API no longer finds the customer by its id",
    )

    async def _client(self) -> AdminClient:
        factory = self.ctx.admin_client
        if factory is None:
            raise PermanentFailure(SHOPIFY, "no Shopify client for this shop (the app is not installed)")
        try:
            async with _mapped_errors():
                return await factory()
        except ShopNotInstalled:
            raise AuthFailed(
                SHOPIFY, "the shop has no usable access token (the merchant must open or reinstall the app)"
            ) from None
        except TokenRequestFailed as exc:
            if exc.status is None or exc.status >= 500:
                raise TemporaryFailure(SHOPIFY, "Shopify's token endpoint is unavailable") from None
            raise AuthFailed(
                SHOPIFY, f"Shopify refused to renew the access token (HTTP {exc.status})"
            ) from None

    async def _customer(self, client: AdminClient, customer_id: int | None) -> CustomerRecord | None:
        if customer_id is None:
            return None
        async with _mapped_errors():
            return await operations.fetch_customer(client, customer_id)

    async def check_api(self) -> None:
        client = await self._client()
        async with _mapped_errors():
            await client.execute(CHECK_QUERY)

    async def _records(self, subject: Subject) -> tuple[CustomerRecord | None, list[OrderRecord]]:
        client = await self._client()
        customer = await self._customer(client, subject.customer_id)
        orders = list(customer.orders) if customer is not None else []
        missing = [i for i in subject.order_ids if i not in {o.id for o in orders}]
        if missing:
            async with _mapped_errors():
                orders += list(await operations.fetch_orders(client, missing))
        return customer, orders

    async def find(self, subject: Subject) -> list[Holding]:
        customer, orders = await self._records(subject)
        timezone = self.ctx.shop.timezone
        held: list[Holding] = []
        if customer is not None:
            held += customer_holdings(customer, timezone)
        for order in orders:
            held += order_holdings(order, timezone)
        return held

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        customer_id = _customer_id(holding.ref)
        if holding.system != SHOPIFY or customer_id is None:
            raise PermanentFailure(
                SHOPIFY,
                f"{holding.category} cannot be erased through Shopify's API one by one; "
                "erase the customer account (Shopify redacts it on its orders)",
            )
        if holding.category is Category.NEWSLETTER:
            return await self._unsubscribe(customer_id)
        return await self._request_erasure(customer_id)

    async def reduce(self, subject: Subject, holding: Holding, fields: tuple[str, ...]) -> Result:
        customer_id = _customer_id(holding.ref)
        if holding.system != SHOPIFY or customer_id is None or holding.category is not Category.NEWSLETTER:
            return await super().reduce(subject, holding, fields)
        done = await self._unsubscribe(customer_id)
        if done.outcome is Outcome.ALREADY_ABSENT or not fields:
            return done
        # The consent state is Shopify's suppression entry; the listed fields live on the customer
        # record, which the customer account's own step erases (or keeps by its rule).
        held = f"; {', '.join(fields)} are on the customer account, handled by its own step"
        return Result(done.outcome, done.provider_ref, done.detail + held)

    async def _unsubscribe(self, customer_id: int) -> Result:
        client = await self._client()
        customer = await self._customer(client, customer_id)
        if customer is None:
            return Result(Outcome.ALREADY_ABSENT, detail="no such customer in Shopify")
        email = bool(customer.email) and customer.email_marketing_state in ACTIVE
        sms = self.config.unsubscribe_sms and bool(customer.phone) and customer.sms_marketing_state in ACTIVE
        if email or sms:
            async with _mapped_errors():
                await operations.set_marketing_unsubscribed(client, customer_id, email=email, sms=sms)
        channels = [name for name, done in (("e-mail", email), ("SMS", sms)) if done]
        detail = (
            f"{' and '.join(channels)} marketing consent set to UNSUBSCRIBED"
            if channels
            else ("marketing consent was already not subscribed")
        )
        return Result(Outcome.SUPPRESSED, provider_ref=f"gid://shopify/Customer/{customer_id}", detail=detail)

    async def _request_erasure(self, customer_id: int) -> Result:
        client = await self._client()
        async with _mapped_errors():
            requested = await operations.request_customer_erasure(client, customer_id)
        if requested is None:
            return Result(Outcome.ALREADY_ABSENT, detail="no such customer in Shopify")
        return Result(
            Outcome.ERASE_REQUESTED,
            provider_ref=f"gid://shopify/Customer/{customer_id}",
            detail="Shopify queued its customer data erasure",
        )

    async def export(self, subject: Subject) -> dict[str, Any]:
        """Everything the app's scopes read about the customer: the account, its addresses and
        marketing consent, every order with its line items, totals, addresses, notes and
        fulfilments with tracking (and any requested order that is not on the account)."""
        client = await self._client()
        async with _mapped_errors():
            data = await operations.export_customer_data(client, subject.customer_id, subject.order_ids)
        return {"provider": self.title, **data}
