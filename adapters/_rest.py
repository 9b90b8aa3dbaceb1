"""What every API adapter in the catalogue shares, so that each provider module holds only what is
particular to its provider: the URLs, the shapes, the quirks. `ApiAdapter` is `Adapter` with the
calls: it adds no other shape, and an API adapter that also e-mails its provider declares an
e-mail channel (`mail = EmailRequests(...)`) like any adapter.

`ApiAdapter.call` sends one request through the shared `ProviderHttp` (timeouts, rate limits,
retries, Retry-After) and maps the answer: 2xx is returned, the provider's "not found" becomes
`None`, 401/403 become `AuthFailed` naming the adapter and the setting, anything else becomes a
`PermanentFailure` whose message carries the provider's error code but never personal data.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Collection
from typing import Any, ClassVar, Literal

import httpx
from pydantic import SecretStr
from typing_extensions import TypeVar

from adapters.base import Adapter, PermanentFailure, ProviderConfig
from adapters.http import RETRY_STATUSES, credential_fingerprint, safe_path
from plugin.holdings import Subject

_EMAIL = re.compile(r"[^\s@\"'<>]+@[^\s@\"'<>]+")
_DIGITS = re.compile(r"\+?\d[\d \-]{6,}\d")


def safe_reason(response: httpx.Response) -> str:
    """A short reason from a provider's error body (JSON:API, RFC 7807, `{"error"}`, `{"code"}`),
    with e-mail addresses and phone-like numbers masked: error texts sometimes echo the input."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]  # Sendcloud: {"error": {"code", "message", "request"}}
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            body = errors[0]
        parts = [str(body[key]) for key in ("code", "title", "error", "message", "detail") if body.get(key)]
        text = "; ".join(dict.fromkeys(parts))
    else:
        text = str(body)
    text = _DIGITS.sub("…", _EMAIL.sub("…", text)).strip()
    return text[:160] or httpx.codes.get_reason_phrase(response.status_code)


def order_numbers(subject: Subject, *, shipped_only: bool = False) -> list[str]:
    """The shop's order numbers for the subject's orders ("#1001" → "1001"), as shipping platforms
    store them; `shipped_only` keeps orders with a tracking number (a printed label)."""
    names = (s.order_name for s in subject.shipments if s.tracking_number or not shipped_only)
    return list(
        dict.fromkeys(name.lstrip("#").strip() for name in names if name and name.lstrip("#").strip())
    )


P = TypeVar("P", bound=ProviderConfig, covariant=True, default=ProviderConfig)


class ApiAdapter(Adapter[P]):
    """An adapter that calls its provider's HTTP API: its Config is a `ProviderConfig` (where the
    API lives). Subclasses set `key_field` (the Config field holding the credential), override
    `headers()` / `auth()`, and implement `check_api()` with one cheap authenticated call."""

    channel: ClassVar[Literal["api", "email"]] = "api"
    key_field: ClassVar[str] = "api_key"
    # The settings a 401/403 points the shop owner to (defaults to `key_field`).
    auth_settings: ClassVar[tuple[str, ...]] = ()
    retry_statuses: ClassVar[frozenset[int]] = RETRY_STATUSES

    def _secret(self) -> str:
        value = getattr(self.config, self.key_field)
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)

    def credential_key(self) -> str:
        return credential_fingerprint(self._secret())

    def headers(self) -> dict[str, str]:
        return {"Accept": "application/json"}

    def retry_after(self, response: httpx.Response) -> float | None:
        """Seconds to wait when a 429 or 5xx has no Retry-After header; None: back off."""
        return None

    def auth(self) -> httpx.Auth | None:
        return None

    def url(self, path: str) -> str:
        return self.config.root() + path

    @abstractmethod
    async def check_api(self) -> None:
        """One cheap call that needs the credentials (`absent=()`: a wrong URL is an error)."""

    async def call(
        self,
        method: str,
        path: str,
        *,
        absent: Collection[int] = (404,),
        accept: Collection[int] = (),
        scope: str = "all",
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response | None:
        """One request. Returns None when the provider answers with a status in `absent`; hands
        back non-2xx answers in `accept` for the adapter to read (per-item statuses, "too late")."""
        settings = self.auth_settings or (self.key_field,)
        auth = self.auth()
        if auth is not None:
            kwargs["auth"] = auth
        response = await self.ctx.http.request(
            self.name,
            method,
            self.url(path),
            credential=self.credential_key(),
            limits=self.rate_limits,
            scope=scope,
            retry_statuses=self.retry_statuses,
            auth_hint="the setting " + " / ".join(f"`{name}`" for name in settings),
            retry_after=self.retry_after,
            custom=self.config.custom,
            headers={**self.headers(), **(headers or {})},
            **kwargs,
        )
        if response.status_code in absent:
            return None
        if response.is_success or response.status_code in accept:
            return response
        raise PermanentFailure(
            self.name,
            f"HTTP {response.status_code} from {method} {safe_path(self.url(path))}",
            remote=safe_reason(response),
        )

    async def call_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """`call` returning the decoded body (None when absent, {} for an empty 2xx body)."""
        response = await self.call(method, path, **kwargs)
        if response is None:
            return None
        return response.json() if response.content else {}
