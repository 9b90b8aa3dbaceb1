"""Where the pipelines get their data and decisions: the shop's adapters, Shopify's orders, and the
retention planner. One small protocol, so the executor is tested with doubles and runs with
`LiveSources` (the real stages) in production."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import Adapter, TemporaryFailure
from adapters.registry import UnknownAdapter
from plugin import connections, retention
from plugin.holdings import Holding
from plugin.models import Shop
from plugin.pipelines.gaps import SHOPIFY, ShopifyNotExamined, shopify_reason
from plugin.pipelines.steps import DecisionLike
from plugin.runtime import Runtime
from plugin.shopify import operations, tokens
from plugin.shopify.client import ShopifyAuthError, ShopifyUnavailable
from plugin.shopify.records import OrderRecord
from plugin.states import ShopStatus


class Sources(Protocol):
    async def adapters(
        self, session: AsyncSession, shop: Shop, *, step_id: int | None = None
    ) -> list[Adapter]:
        """Every enabled adapter of the shop, Shopify's included."""
        ...

    async def adapter(
        self, session: AsyncSession, shop: Shop, name: str, *, step_id: int | None = None
    ) -> Adapter | None:
        """The named adapter if the shop has it enabled, else None."""
        ...

    async def shopify_orders(self, shop: Shop, order_ids: Sequence[int]) -> list[OrderRecord]:
        """The orders (with fulfillments and tracking) that Shopify still has; missing ones left out.
        Raises `ShopifyNotExamined` when Shopify cannot be read for the shop (no token, the token
        refused), an `AdapterError` when it may answer later."""
        ...

    def plan(self, shop: Shop, holdings: Sequence[Holding], today: date, mode: str) -> Sequence[DecisionLike]:
        """The retention planner with the shop's policy, in `request` or `sweep` mode."""
        ...


class LiveSources:
    """The real stages: `plugin.connections`, `plugin.shopify.operations`, `plugin.retention`."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def adapters(
        self, session: AsyncSession, shop: Shop, *, step_id: int | None = None
    ) -> list[Adapter]:
        return await connections.build_adapters(self.runtime, session, shop, step_id=step_id)

    async def adapter(
        self, session: AsyncSession, shop: Shop, name: str, *, step_id: int | None = None
    ) -> Adapter | None:
        try:
            return await connections.build_adapter(self.runtime, session, shop, name, step_id=step_id)
        except (connections.NotConfigured, UnknownAdapter):
            return None

    async def shopify_orders(self, shop: Shop, order_ids: Sequence[int]) -> list[OrderRecord]:
        if not shop.access_token_enc or shop.status != ShopStatus.ACTIVE:
            # No way to ask (after an uninstall Shopify revoked the token): the customer and any
            # order named in the request are not examined, which the documents then say.
            raise ShopifyNotExamined(shopify_reason(shop.status))
        if not order_ids:
            return []  # the shop disabled Shopify's adapter; nothing named to look at
        try:
            client = await tokens.admin_client(self.runtime, shop.domain)
            return list(await operations.fetch_orders(client, list(order_ids)))
        except (tokens.ShopNotInstalled, ShopifyAuthError):
            raise ShopifyNotExamined("token_refused") from None
        except tokens.TokenRequestFailed as exc:
            if exc.status is None or exc.status >= 500:
                raise TemporaryFailure(SHOPIFY, "Shopify's token endpoint is unavailable") from None
            raise ShopifyNotExamined("token_refused") from None
        except ShopifyUnavailable as exc:
            raise TemporaryFailure(SHOPIFY, str(exc), retry_after=exc.retry_after) from None

    def plan(self, shop: Shop, holdings: Sequence[Holding], today: date, mode: str) -> Sequence[DecisionLike]:
        result = retention.plan(list(holdings), retention.shop_policy(shop), today, retention.Mode(mode))
        return list(result.decisions)
