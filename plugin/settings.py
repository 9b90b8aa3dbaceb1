"""Settings from the environment (12-factor) and `.env`.

Every variable is documented in `.env.example`. Development mode (`--dev`, which sets `GALLRA_DEV=1`
for the process and the ones it starts) fills in throwaway secrets and keeps them in `.gallra-dev.env`,
so `gallra --dev simulate` in a second terminal signs with the same secret the server verifies with.
That file is read only in development mode: a copy left behind in a production directory must not
switch its secrets in, nor turn on development-only helpers such as the admin's dev login.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_ENV_FILE = ".gallra-dev.env"


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    # Empty values count as unset, so a copied .env.example with blanks reports what is missing.
    # `.env` only: `load_settings` adds DEV_ENV_FILE in development mode.
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    shopify_api_key: str = Field(validation_alias=_env("SHOPIFY_API_KEY"))
    shopify_api_secret: SecretStr = Field(validation_alias=_env("SHOPIFY_API_SECRET"))
    shopify_api_secret_previous: SecretStr | None = Field(
        default=None, validation_alias=_env("SHOPIFY_API_SECRET_PREVIOUS")
    )
    shopify_api_version: str | None = Field(default=None, validation_alias=_env("SHOPIFY_API_VERSION"))
    # Where the Admin API lives; `{shop}` is replaced by the shop domain. Tests and local fakes
    # point this at themselves.
    shopify_admin_url: str = Field(default="https://{shop}", validation_alias=_env("SHOPIFY_ADMIN_URL"))
    database_url: str = Field(
        default="sqlite+aiosqlite:///./gallra.db", validation_alias=_env("DATABASE_URL")
    )
    encryption_key: SecretStr = Field(validation_alias=_env("GALLRA_ENCRYPTION_KEY"))
    encryption_key_previous: SecretStr | None = Field(
        default=None, validation_alias=_env("GALLRA_ENCRYPTION_KEY_PREVIOUS")
    )
    app_url: str = Field(default="http://127.0.0.1:8000", validation_alias=_env("GALLRA_APP_URL"))
    host: str = Field(default="127.0.0.1", validation_alias=_env("GALLRA_HOST"))
    port: int = Field(default=8000, validation_alias=_env("GALLRA_PORT"))
    dev: bool = Field(default=False, validation_alias=_env("GALLRA_DEV"))
    # Workers run inside `gallra serve` unless this is off (then run `gallra worker` processes).
    run_workers: bool = Field(default=True, validation_alias=_env("GALLRA_RUN_WORKERS"))
    log_level: str = Field(default="INFO", validation_alias=_env("GALLRA_LOG_LEVEL"))
    # Where adapters may call (see adapters.http.UrlPolicy): only their providers' declared hosts
    # unless the operator allows connections to name their own URL, and even then no loopback,
    # private, link-local or unspecified address unless that is allowed too (local fakes, tests).
    allow_custom_provider_urls: bool = Field(
        default=False, validation_alias=_env("GALLRA_ALLOW_CUSTOM_PROVIDER_URLS")
    )
    allow_private_provider_urls: bool = Field(
        default=False, validation_alias=_env("GALLRA_ALLOW_PRIVATE_PROVIDER_URLS")
    )
    smtp_host: str | None = Field(default=None, validation_alias=_env("SMTP_HOST"))
    smtp_port: int = Field(default=587, validation_alias=_env("SMTP_PORT"))
    smtp_username: str | None = Field(default=None, validation_alias=_env("SMTP_USERNAME"))
    smtp_password: SecretStr | None = Field(default=None, validation_alias=_env("SMTP_PASSWORD"))
    smtp_starttls: bool = Field(default=True, validation_alias=_env("SMTP_STARTTLS"))
    smtp_from: str = Field(default="gallra@localhost", validation_alias=_env("SMTP_FROM"))

    def webhook_secrets(self) -> list[str]:
        found = [self.shopify_api_secret.get_secret_value()]
        if self.shopify_api_secret_previous:
            found.append(self.shopify_api_secret_previous.get_secret_value())
        return found


class SettingsError(Exception):
    """A setting is missing or invalid; the message names the variable and nothing secret."""


def _alias_of(field_name: str) -> str:
    field = Settings.model_fields.get(field_name)
    alias = field.validation_alias if field else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return field_name.upper()


def ensure_dev_secrets(path: Path | None = None) -> Path:
    """Write throwaway secrets for development once; later runs reuse them."""
    path = path or Path(DEV_ENV_FILE)
    if not path.exists():
        path.write_text(
            "# Throwaway development secrets written by `gallra serve --dev`. Never use in production.\n"
            f"SHOPIFY_API_KEY=dev-{secrets.token_hex(8)}\n"
            f"SHOPIFY_API_SECRET={secrets.token_hex(32)}\n"
            f"GALLRA_ENCRYPTION_KEY={Fernet.generate_key().decode()}\n"
        )
        path.chmod(0o600)
    return path


def dev_mode() -> bool:
    """Development mode was asked for: `--dev`, or GALLRA_DEV set in the environment (never by a
    file: `.gallra-dev.env` is read because of it, not the other way round)."""
    return os.environ.get("GALLRA_DEV", "").strip().lower() in {"1", "true", "yes", "on"}


def enable_dev() -> None:
    """`--dev`: throwaway secrets (written once) for this process and every process it starts."""
    ensure_dev_secrets()
    os.environ["GALLRA_DEV"] = "1"


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning validation errors into one readable line per variable."""
    env_files: tuple[str, ...] = (".env",)
    if dev_mode():
        ensure_dev_secrets()
        env_files = (".env", DEV_ENV_FILE)
    try:
        return Settings(_env_file=env_files, **overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = _alias_of(str(error["loc"][0])) if error["loc"] else "?"
            what = "is missing" if error["type"] == "missing" else "is invalid"
            problems.append(f"{name} {what}")
        raise SettingsError(
            "; ".join(problems) + " (see .env.example, or run with --dev for throwaway secrets)"
        ) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
