"""The Shopify part of manifest.toml: API version, access scopes, webhook subscriptions."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from plugin.manifest import manifest_text
from plugin.settings import Settings


@dataclass(frozen=True)
class AppConfig:
    name: str
    handle: str
    embedded: bool
    application_path: str
    api_version: str
    scopes: tuple[str, ...]
    webhooks_api_version: str
    subscriptions: tuple[dict[str, Any], ...]


def parse_app_config(text: str) -> AppConfig:
    data = tomllib.loads(text)
    app = data["app"]
    webhooks = data.get("webhooks", {})
    return AppConfig(
        name=str(app["name"]),
        handle=str(app.get("handle", app["name"]).lower()),
        embedded=bool(app.get("embedded", True)),
        application_path=str(app.get("application_path", "/")),
        api_version=str(app["api_version"]),
        scopes=tuple(data["access_scopes"]["scopes"]),
        webhooks_api_version=str(webhooks.get("api_version", app["api_version"])),
        subscriptions=tuple(webhooks.get("subscriptions", ())),
    )


@lru_cache(maxsize=1)
def app_config() -> AppConfig:
    return parse_app_config(manifest_text())


def api_version(settings: Settings) -> str:
    """SHOPIFY_API_VERSION when set, else the version manifest.toml pins."""
    return settings.shopify_api_version or app_config().api_version
