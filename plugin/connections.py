"""A shop's adapter connections: settings validated by each adapter's `Config`, stored encrypted,
never shown again (only `describe()`'s masked view), and turned into ready adapters for a step.

The executor calls `build_adapters()` / `build_adapter()`; the CLI and the admin page call
`configure()`, `describe()` and `check_connections()`. Every query is scoped to one shop.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters import registry
from adapters.base import Adapter, AdapterConfig, AdapterContext, AdapterError, ShopInfo
from adapters.http import ProviderHttp
from plugin.models import AdapterConnection, Shop, cell_of, connection_cell, utcnow
from plugin.outbox import Outbox
from plugin.runtime import Runtime

log = logging.getLogger("gallra.connections")

SHOPIFY = "shopify"  # built for every shop with a token, configured or not
MASK = "********"


class ConnectionProblem(Exception):
    """Base for connection problems; messages name adapters and settings, never values."""


class ConfigInvalid(ConnectionProblem):
    def __init__(self, adapter: str, problems: list[tuple[str, str]]) -> None:
        self.adapter = adapter
        self.problems = problems
        listed = "; ".join(f"{key}: {message}" for key, message in problems)
        super().__init__(f"{adapter}: invalid settings: {listed}")


class NotConfigured(ConnectionProblem):
    pass


def validate_config(cls: type[Adapter], values: Mapping[str, Any]) -> AdapterConfig:
    """Validate values with the adapter's `Config`; errors name each key, never its value."""
    try:
        return cls.Config.model_validate(dict(values))
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            key = ".".join(str(part) for part in error["loc"]) or "(settings)"
            message = "unknown setting" if error["type"] == "extra_forbidden" else error["msg"]
            problems.append((key, message))
        raise ConfigInvalid(cls.name, problems) from None


def _plain(config: AdapterConfig) -> dict[str, Any]:
    """Only the values the shop owner set (defaults may improve between releases), secrets revealed
    for encryption."""
    values = config.model_dump(mode="python", exclude_unset=True)
    return {key: _reveal(value) for key, value in values.items()}


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_reveal(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)  # URLs, e-mail types and the like


def describe(config: AdapterConfig) -> dict[str, Any]:
    """The settings as the shop owner may see them again: secrets masked."""
    shown: dict[str, Any] = {}
    for key in type(config).model_fields:
        value = getattr(config, key)
        if isinstance(value, SecretStr):
            shown[key] = MASK if value.get_secret_value() else ""
        else:
            shown[key] = _reveal(value)
    return shown


async def get_connection(session: AsyncSession, shop_domain: str, adapter: str) -> AdapterConnection | None:
    return await session.scalar(
        select(AdapterConnection).where(
            AdapterConnection.shop_domain == shop_domain, AdapterConnection.adapter == adapter
        )
    )


async def list_connections(session: AsyncSession, shop_domain: str) -> list[AdapterConnection]:
    rows = await session.scalars(
        select(AdapterConnection)
        .where(AdapterConnection.shop_domain == shop_domain)
        .order_by(AdapterConnection.adapter)
    )
    return list(rows)


async def configure(
    runtime: Runtime,
    session: AsyncSession,
    shop_domain: str,
    adapter: str,
    values: Mapping[str, Any],
    *,
    replace: bool = False,
    enabled: bool | None = None,
) -> AdapterConnection:
    """Create or update a shop's connection. New values are merged into the stored ones unless
    `replace`; the result is validated as a whole before anything is stored."""
    cls = registry.get(adapter)
    row = await get_connection(session, shop_domain, adapter)
    merged: dict[str, Any] = {}
    if row is not None and not replace:
        merged.update(runtime.vault.decrypt_json(row.config_enc, cell_of(row, "config_enc")) or {})
    merged.update(values)
    config = validate_config(cls, merged)
    if row is None:
        row = AdapterConnection(shop_domain=shop_domain, adapter=adapter, enabled=True)
        session.add(row)
    row.config_enc = runtime.vault.encrypt_json(_plain(config), connection_cell(shop_domain, adapter))
    if enabled is not None:
        row.enabled = enabled
    row.status = "unchecked"
    row.last_error = None
    row.updated_at = utcnow()
    await session.flush()
    return row


async def set_enabled(session: AsyncSession, shop_domain: str, adapter: str, enabled: bool) -> None:
    row = await get_connection(session, shop_domain, adapter)
    if row is None:
        raise NotConfigured(f"{adapter}: not configured for this shop")
    row.enabled = enabled
    await session.flush()


async def remove(session: AsyncSession, shop_domain: str, adapter: str) -> bool:
    row = await get_connection(session, shop_domain, adapter)
    if row is None:
        return False
    await session.delete(row)
    await session.flush()
    return True


def load_config(runtime: Runtime, row: AdapterConnection) -> AdapterConfig:
    stored = runtime.vault.decrypt_json(row.config_enc, cell_of(row, "config_enc"))
    return validate_config(registry.get(row.adapter), stored or {})


# --- building adapters for the executor -----------------------------------------------------------


def shop_info(runtime: Runtime, shop: Shop) -> ShopInfo:
    return ShopInfo(
        domain=shop.domain,
        name=shop.name or shop.domain,
        contact_email=runtime.vault.decrypt(shop.contact_email_enc, cell_of(shop, "contact_email_enc")),
        country=shop.country,
        locale=shop.locale or "en",
        timezone=shop.timezone,
    )


def adapter_context(runtime: Runtime, shop: Shop, *, step_id: int | None = None) -> AdapterContext:
    info = shop_info(runtime, shop)
    domain = shop.domain

    async def shopify_client() -> Any:
        # Imported late: the Shopify client needs the whole plugin, adapters only need this hook.
        tokens = importlib.import_module("plugin.shopify.tokens")
        return await tokens.admin_client(runtime, domain)

    return AdapterContext(
        shop=info,
        http=ProviderHttp(runtime.http, runtime.limiter),
        email=Outbox(runtime, domain, step_id=step_id, reply_to=info.contact_email),
        extra={"shopify_client": shopify_client},
    )


def _has_shopify_token(shop: Shop) -> bool:
    return bool(shop.access_token_enc) and shop.status == "active"


async def build_adapters(
    runtime: Runtime, session: AsyncSession, shop: Shop, *, step_id: int | None = None
) -> list[Adapter]:
    """Every enabled adapter of the shop, plus Shopify's when the shop has a token (unless the shop
    disabled it). Adapters whose module is gone (an uninstalled plug-in) are skipped and logged."""
    rows = await list_connections(session, shop.domain)
    ctx = adapter_context(runtime, shop, step_id=step_id)
    built: list[Adapter] = []
    configured = {row.adapter for row in rows}
    catalogue = registry.catalogue()
    if SHOPIFY not in configured and SHOPIFY in catalogue and _has_shopify_token(shop):
        cls = catalogue[SHOPIFY]
        built.append(cls(cls.Config(), ctx))
    for row in rows:
        if not row.enabled:
            continue
        if row.adapter not in catalogue:
            log.warning("shop %s has a connection to unknown adapter %s; skipped", shop.domain, row.adapter)
            continue
        if row.adapter == SHOPIFY and not _has_shopify_token(shop):
            continue
        built.append(catalogue[row.adapter](load_config(runtime, row), ctx))
    return built


async def build_adapter(
    runtime: Runtime, session: AsyncSession, shop: Shop, name: str, *, step_id: int | None = None
) -> Adapter:
    """One adapter of the shop; `NotConfigured` when the shop has not set it up (or disabled it)."""
    cls = registry.get(name)
    row = await get_connection(session, shop.domain, name)
    ctx = adapter_context(runtime, shop, step_id=step_id)
    if name == SHOPIFY:
        if not _has_shopify_token(shop):
            raise NotConfigured(f"{name}: the shop has no Shopify access token (reinstall the app)")
        if row is None:
            return cls(cls.Config(), ctx)
    if row is None:
        raise NotConfigured(f"{name}: not configured for this shop; run `gallra adapters configure`")
    if not row.enabled:
        raise NotConfigured(f"{name}: disabled for this shop")
    return cls(load_config(runtime, row), ctx)


# --- checking -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    adapter: str
    ok: bool
    message: str


async def check_connections(runtime: Runtime, session: AsyncSession, shop: Shop) -> list[CheckResult]:
    """Call every enabled adapter's `check()` and record the outcome on its connection. Every call
    is made before the first write: on SQLite a write holds the database's only write lock, which
    the calls' rate limiter (`plugin.rate_limits`) needs too."""
    results: list[CheckResult] = []
    adapters = await build_adapters(runtime, session, shop)
    for adapter in adapters:
        try:
            await adapter.check()
        except AdapterError as exc:
            result = CheckResult(adapter.name, False, str(exc))
        except Exception as exc:  # one broken adapter must not hide the others' results
            log.warning("checking %s for %s failed: %s", adapter.name, shop.domain, type(exc).__name__)
            result = CheckResult(adapter.name, False, f"{adapter.name}: unexpected {type(exc).__name__}")
        else:
            result = CheckResult(adapter.name, True, "ok")
        results.append(result)
    for adapter, result in zip(adapters, results, strict=True):
        row = await get_connection(session, shop.domain, adapter.name)
        if row is not None:
            row.status = "ok" if result.ok else "error"
            row.last_checked_at = utcnow()
            row.last_error = None if result.ok else result.message
    await session.flush()
    return results


async def get_shop(session: AsyncSession, domain: str) -> Shop | None:
    return await session.scalar(select(Shop).where(Shop.domain == domain))
