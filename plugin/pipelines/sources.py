"""`LiveSources`: the real stages behind `plugin.executor.context.Sources` (the shop's adapters,
Shopify's orders, the retention planner); tests hand the executor doubles instead."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import Adapter, TemporaryFailure
from adapters.registry import UnknownAdapter
from plugin import connections, retention
from plugin.documents.gaps import ShopifyNotExamined, shopify_reason
from plugin.holdings import SHOPIFY, Holding
from plugin.models import Shop
from plugin.retention import DecisionLike
from plugin.runtime import Runtime
from plugin.shopify import operations, tokens
from plugin.shopify.client import ShopifyAuthError, ShopifyUnavailable
from plugin.shopify.records import OrderRecord
from plugin.states import ShopStatus


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
