"""What every API adapter in the catalogue shares, so that each provider module holds only what is
particular to its provider: the URLs, the shapes, the quirks.

`ApiAdapter.call` sends one request through the shared `ProviderHttp` (timeouts, rate limits,
retries, Retry-After) and maps the answer: 2xx is returned, the provider's "not found" becomes
`None`, 401/403 become `AuthFailed` naming the adapter and the setting, anything else becomes a
`PermanentFailure` whose message carries the provider's error code but never personal data.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, ClassVar

import httpx
from pydantic import SecretStr

from adapters.base import Adapter, Outcome, PermanentFailure, ProviderConfig, Result
from adapters.email_request import EmailRequestAdapter, shipment_ref
from adapters.http import RETRY_STATUSES, credential_fingerprint, safe_path
from plugin.holdings import Holding, Shipment, ShipmentRef, Subject

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


class ApiAdapter(Adapter):
    """Base for adapters that call a provider's HTTP API. Subclasses set `key_field` (the
    Config field holding the credential), and override `headers()` / `auth()`."""

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

    @property
    def where(self) -> ProviderConfig:
        """The settings that say where the provider's API lives (every API adapter's Config is a
        `ProviderConfig`)."""
        assert isinstance(self.config, ProviderConfig)
        return self.config

    def url(self, path: str) -> str:
        return self.where.root() + path

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
            custom=self.where.custom,
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


class ApiWithEmailAdapter(ApiAdapter, EmailRequestAdapter):
    """An API adapter whose provider keeps data its API cannot erase (printed labels, manifested
    shipments, delivered orders): that part is requested by e-mail with the carriers' templates,
    in the provider's language, to `privacy_email` or the provider's known `privacy_address`.
    Its Config extends `EmailRequestConfig`."""

    # EmailRequestAdapter's unannotated `channel = "email"` narrows the type; this one is an API.
    channel = "api"  # type: ignore[assignment]

    # `find` is EmailRequestAdapter's for carriers whose shipments Shopify reports: one holding
    # per shipment, ref `shipment:<order id>:<tracking number>`, the same ref the Shopify side
    # gives it, so the two meet in one step.

    async def received(self, subject: Subject, **own: Any) -> dict[str, Any]:
        """The export: the shipments the provider received from the shop (what an e-mail request
        names), with the provider's own records (`own`, those that are not empty) beside them."""
        exported = await EmailRequestAdapter.export(self, subject)
        exported.update({key: value for key, value in own.items() if value})
        return exported

    def own_shipment(self, subject: Subject, holding: Holding) -> Shipment:
        """The shipment a shipment holding (`plugin.holdings.ShipmentRef`) stands for."""
        for shipment in subject.shipments:
            if shipment_ref(shipment) == holding.ref:
                return shipment
        ref = ShipmentRef.parse(holding.ref) or ShipmentRef(0, None)
        return Shipment(
            order_id=ref.order_id,
            order_name=ShipmentRef.order_name_in(holding.label),
            carrier=self.name,
            tracking_number=ref.tracking_number,
        )

    def cited(self, subject: Subject, own: Shipment) -> list[Shipment]:
        """What one request names: all of the subject's shipments with this carrier, so that every
        holding's erase asks for the same message."""
        shipments = self.shipments(subject)
        return shipments if shipment_ref(own) in {shipment_ref(s) for s in shipments} else [*shipments, own]

    def subject_shipments(self, subject: Subject, *, tracking: str = "", order: str = "") -> list[Shipment]:
        """The subject's shipments with this tracking number or order number, or one made up from
        what the provider reported, so the request always cites what is to be erased."""
        found = [
            s
            for s in subject.shipments
            if (tracking and s.tracking_number == tracking) or (order and s.order_name.lstrip("#") == order)
        ]
        if found or not (tracking or order):
            return found
        order_id = int(order) if order.isdigit() else 0
        return [Shipment(order_id, f"#{order}" if order else "?", self.title, tracking or None)]

    async def request_by_email(self, subject: Subject, shipments: list[Shipment], *, done: str) -> Result:
        if self.ctx.email is None:
            raise PermanentFailure(
                self.name, f"{done}; the rest needs the e-mail channel, which this shop lacks"
            )
        to = self.address()
        subject_line, body = self.render(subject, shipments)
        who = subject.customer_id or subject.email or subject.phone or ""
        refs = ",".join(sorted(shipment_ref(s) for s in shipments))
        reference = await self.ctx.email.send(
            to=to,
            subject=subject_line,
            body=body,
            reply_to=self.ctx.shop.contact_email,
            dedupe_key=f"{self.name}:erase:{who}:{refs}",
        )
        return Result(
            Outcome.REQUEST_SENT,
            provider_ref=reference,
            detail=f"{done}; erasure request e-mailed to {self.title}'s privacy contact, awaiting reply",
        )
