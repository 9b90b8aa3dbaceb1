"""A shop's adapter connections: settings validated by each adapter's `Config`, stored encrypted,
never shown again (only `describe()`'s masked view), and turned into ready adapters for a step.

The executor calls `build_adapters()` / `build_adapter()`; the CLI and the admin page call
`configure()`, `describe()` and `check_connections()`. Every query is scoped to one shop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, ClassVar

from pydantic import SecretStr, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters import registry
from adapters.base import (
    URL_POLICY,
    Adapter,
    AdapterConfig,
    AdapterContext,
    AdapterError,
    Result,
    SettingsInvalid,
    ShopInfo,
)
from adapters.http import ProviderHttp, UrlPolicy
from plugin.controller import details_of
from plugin.holdings import SHOPIFY, Holding, Subject
from plugin.models import AdapterConnection, Shop, cell_of, connection_cell, utcnow
from plugin.outbox import Outbox
from plugin.runtime import Runtime
from plugin.shopify.tokens import admin_client
from plugin.states import ConnectionStatus, ShopStatus

log = logging.getLogger("gallra.connections")

MASK = "********"


class ConnectionProblem(Exception):
    """Base for connection problems; messages name adapters and settings, never values."""


UNKNOWN_SETTING = "unknown setting"


class ConfigInvalid(ConnectionProblem):
    """`valid` are the adapter's setting names, listed when a given one is not among them (a typo
    is then fixed from the message alone)."""

    def __init__(self, adapter: str, problems: list[tuple[str, str]], valid: Sequence[str] = ()) -> None:
        self.adapter = adapter
        self.problems = problems
        self.valid = list(valid)
        listed = "; ".join(
            f"{UNKNOWN_SETTING} {key!r}" if message == UNKNOWN_SETTING else f"{key}: {message}"
            for key, message in problems
        )
        if self.valid and any(message == UNKNOWN_SETTING for _, message in problems):
            listed += f" (valid settings: {', '.join(self.valid)})"
        super().__init__(f"{adapter}: invalid settings: {listed}")


class NotConfigured(ConnectionProblem):
    pass


def url_policy(runtime: Runtime) -> UrlPolicy:
    """Where the server lets adapters call: the operator's settings, never a shop's."""
    settings = runtime.settings
    return UrlPolicy(custom=settings.allow_custom_provider_urls, private=settings.allow_private_provider_urls)


def validate_config(cls: type[Adapter], values: Mapping[str, Any], policy: UrlPolicy) -> AdapterConfig:
    """Validate values with the adapter's `Config` under the server's URL policy; errors name each
    key and what is allowed, never its value."""
    try:
        return cls.Config.model_validate(dict(values), context={URL_POLICY: policy})
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            key = ".".join(str(part) for part in error["loc"]) or "(settings)"
            message = UNKNOWN_SETTING if error["type"] == "extra_forbidden" else error["msg"]
            problems.append((key, message))
        raise ConfigInvalid(cls.name, problems, valid=list(cls.Config.model_fields)) from None


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
    policy = url_policy(runtime)
    merged: dict[str, Any] = {}
    if row is not None and not replace:
        merged.update(runtime.vault.decrypt_json(row.config_enc, cell_of(row, "config_enc")) or {})
        if not policy.custom:
            # A URL stored while the server allowed them: saving again returns to the provider's
            # declared host instead of failing on a value the shop owner can no longer see.
            merged.pop("base_url", None)
    merged.update(values)
    # In a thread: a custom URL's host is resolved while validating.
    config = await asyncio.to_thread(validate_config, cls, merged, policy)
    if row is None:
        row = AdapterConnection(shop_domain=shop_domain, adapter=adapter, enabled=True)
        session.add(row)
    row.config_enc = runtime.vault.encrypt_json(_plain(config), connection_cell(shop_domain, adapter))
    if enabled is not None:
        row.enabled = enabled
    row.status = ConnectionStatus.UNCHECKED
    row.last_error = None
    row.updated_at = utcnow()
    await session.flush()
    return row


def load_config(runtime: Runtime, row: AdapterConnection) -> AdapterConfig:
    """The stored settings, validated again: a value stored before the server's policy (or the
    adapter's declared hosts) changed is refused now (`ConfigInvalid`)."""
    # Not resolved again here (this runs for every step): each call checks the address it connects to.
    policy = dataclasses.replace(url_policy(runtime), resolve=False)
    return validate_config(
        registry.get(row.adapter),
        runtime.vault.decrypt_json(row.config_enc, cell_of(row, "config_enc")) or {},
        policy,
    )


def shown_settings(runtime: Runtime, row: AdapterConnection) -> dict[str, Any]:
    """`describe()` of the stored settings, or the reason they cannot be used."""
    try:
        return describe(load_config(runtime, row))
    except ConfigInvalid as exc:
        return {"invalid": str(exc)}


class Unusable(Adapter):
    """Stands in for a connection whose stored settings no longer validate: every call fails with
    the settings error, so the step or request names the connection to fix while the shop's other
    connections keep working. `unusable()` gives it the adapter's name and abilities."""

    problem: ClassVar[str] = ""

    async def check_api(self) -> None:
        raise SettingsInvalid(self.name, self.problem)

    async def find(self, subject: Subject) -> list[Holding]:
        raise SettingsInvalid(self.name, self.problem)

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        raise SettingsInvalid(self.name, self.problem)

    async def export(self, subject: Subject) -> dict[str, Any]:
        raise SettingsInvalid(self.name, self.problem)

    async def reduce(self, subject: Subject, holding: Holding, fields: tuple[str, ...]) -> Result:
        raise SettingsInvalid(self.name, self.problem)

    async def sweep_holdings(self) -> AsyncIterator[Holding]:
        raise SettingsInvalid(self.name, self.problem)
        yield  # noqa: V201 - an async generator, like the method it replaces


def unusable(cls: type[Adapter], error: ConfigInvalid, ctx: AdapterContext) -> Adapter:
    listed = "; ".join(f"{key}: {message}" for key, message in error.problems)
    problem = f"its stored settings are no longer accepted ({listed}); set them again"
    attributes = ("name", "title", "category", "channel", "Config", "description")
    abilities = ("can_find", "can_erase", "can_export", "can_sweep", "can_reduce")
    stand_in: type[Adapter] = type(
        f"Unusable{cls.__name__}",
        (Unusable,),
        {key: getattr(cls, key) for key in attributes + abilities} | {"problem": problem},
    )
    return stand_in(AdapterConfig(), ctx)


def _built(cls: type[Adapter], runtime: Runtime, row: AdapterConnection, ctx: AdapterContext) -> Adapter:
    try:
        return cls(load_config(runtime, row), ctx)
    except ConfigInvalid as exc:
        log.warning("stored settings of %s for %s no longer validate", row.adapter, row.shop_domain)
        return unusable(cls, exc, ctx)


# --- building adapters for the executor -----------------------------------------------------------


def shop_info(runtime: Runtime, shop: Shop) -> ShopInfo:
    who = details_of(runtime.vault, shop)
    return ShopInfo(
        domain=shop.domain,
        name=who.name or shop.domain,
        contact_email=who.contact_email,
        country=shop.country,
        locale=shop.locale or "en",
        timezone=shop.timezone,
        legal_name=who.legal_name,
        address=who.address,
    )


def adapter_context(runtime: Runtime, shop: Shop, *, step_id: int | None = None) -> AdapterContext:
    info = shop_info(runtime, shop)
    return AdapterContext(
        shop=info,
        http=ProviderHttp(
            runtime.http, runtime.limiter, sleep=runtime.clock.sleep, policy=url_policy(runtime)
        ),
        email=Outbox(runtime, shop.domain, step_id=step_id, reply_to=info.contact_email),
        admin_client=partial(admin_client, runtime, shop.domain),
    )


def _has_shopify_token(shop: Shop) -> bool:
    return bool(shop.access_token_enc) and shop.status == ShopStatus.ACTIVE


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
        built.append(_built(catalogue[row.adapter], runtime, row, ctx))
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
    return _built(cls, runtime, row, ctx)


# --- checking -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    adapter: str
    ok: bool
    message: str


async def run_check(adapter: Adapter, shop_domain: str) -> CheckResult:
    """One adapter's `check()`. The message says what failed (status code, reason, setting) but
    never what the other end answered: from a URL that is not the provider's that would be
    whatever answered there."""
    try:
        await adapter.check()
    except AdapterError as exc:
        return CheckResult(adapter.name, False, exc.summary)
    except Exception as exc:  # one broken adapter must not hide the others' results
        log.warning("checking %s for %s failed: %s", adapter.name, shop_domain, type(exc).__name__)
        return CheckResult(adapter.name, False, f"{adapter.name}: unexpected {type(exc).__name__}")
    return CheckResult(adapter.name, True, "ok")


async def check_connections(runtime: Runtime, session: AsyncSession, shop: Shop) -> list[CheckResult]:
    """Call every enabled adapter's `check()` and record the outcome on its connection. Every call
    is made before the first write: on SQLite a write holds the database's only write lock, which
    the calls' rate limiter (`plugin.rate_limits`) needs too."""
    adapters = await build_adapters(runtime, session, shop)
    results = [await run_check(adapter, shop.domain) for adapter in adapters]
    for adapter, result in zip(adapters, results, strict=True):
        row = await get_connection(session, shop.domain, adapter.name)
        if row is not None:
            record_check(row, result.ok, result.message, utcnow())
    await session.flush()
    return results


def record_check(row: AdapterConnection, ok: bool, message: str, now: datetime) -> None:
    """A check's outcome on its connection: status, time, error (never secrets) and the run of
    failures that `plugin.notifications` watches."""
    row.status = ConnectionStatus.OK if ok else ConnectionStatus.ERROR
    row.last_checked_at = now
    row.last_error = None if ok else message[:500]
    if ok:
        row.failures, row.failing_since = 0, None
    else:
        row.failures = (row.failures or 0) + 1
        row.failing_since = row.failing_since or now
