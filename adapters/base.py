"""The adapter interface. Reading one adapter module should teach you all of them.

An adapter is one class on `Adapter[Config]`: a `name`, a pydantic `Config` (what the shop owner
enters; taken from the type parameter), what it declares about its provider (`recipient`: legal
name, country, transfers; `carrier_aliases`: how shops spell the carrier; `rate_limits`), and four
calls: `check` the connection, `find` what the system holds about a subject, `erase` one holding,
`export` everything for an access report. Adapters whose provider can keep a suppression entry
while the rest goes also offer `reduce` (`can_reduce`). It never retries by itself (the shared
HTTP helper does, and the executor reschedules) and it never logs personal data.

An adapter reaches its provider through its API (`adapters._rest.ApiAdapter` gives the calls),
through an e-mail channel it *has* (`mail = EmailRequests(...)`, `adapters.email_request`), or
both. `check` is the base's: it checks the API (`check_api`, the adapter's own) and then every
other channel the adapter declares, so a connection is never "OK" with a channel that would fail.

This module is the interface's one import point: the errors (`adapters.errors`) are named here too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Generic, Literal, Protocol, Self, final, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypeVar

from adapters.errors import (
    AdapterError,
    AuthFailed,
    PermanentFailure,
    RateLimited,
    SettingsInvalid,
    TemporaryFailure,
)
from adapters.http import Endpoints, ProviderHttp, RateLimit, UrlPolicy, UrlRefused, custom_root, host_label
from adapters.recipients import Recipient
from plugin.holdings import Category, Holding, Subject
from plugin.shopify.client import AdminClient

__all__ = [
    "URL_POLICY",
    "Adapter",
    "AdapterConfig",
    "AdapterContext",
    "AdapterError",
    "AdminClientFactory",
    "AuthFailed",
    "Channel",
    "EmailChannel",
    "EmailOverrides",
    "HostLabel",
    "Outcome",
    "OwnHeld",
    "OwnRecords",
    "PermanentFailure",
    "ProviderConfig",
    "RateLimited",
    "Result",
    "SettingsInvalid",
    "ShopInfo",
    "TemporaryFailure",
    "iso_date",
    "reduced",
    "suppressed_only",
]


class Outcome(StrEnum):
    ERASED = "erased"  # gone at the provider, synchronously
    ERASE_REQUESTED = "erase_requested"  # accepted by an asynchronous erasure job
    # Unsubscribed/suppressed only: the provider has no deletion API, or a `reduce` could not remove
    # the fields it was given (`Result.still_held` names them).
    SUPPRESSED = "suppressed"
    # `reduce`: the fields are gone (or an accepted deletion job removes them); the provider keeps
    # only its suppression entry for the address.
    REDUCED = "reduced"
    CANCELLED = "cancelled"  # a shipment cancelled at the provider (kept by it, no longer active)
    ALREADY_ABSENT = "already_absent"  # "not found" counts as done
    REQUEST_SENT = "request_sent"  # e-mail channel: awaiting the processor's confirmation


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    provider_ref: str | None = None  # the provider's job or request id, or the e-mail reference
    detail: str = ""  # for the certificate; never personal data
    # `reduce` only, the planner's field names: what the provider no longer holds, and what it still
    # holds. A field is listed as removed only when the provider's documented call removes it.
    removed: tuple[str, ...] = ()
    still_held: tuple[str, ...] = ()


def reduced(fields: tuple[str, ...], provider_ref: str | None, detail: str) -> Result:
    """A `reduce` that left only the provider's suppression entry: every field in `fields` went."""
    return Result(Outcome.REDUCED, provider_ref, detail, removed=tuple(fields))


def suppressed_only(fields: tuple[str, ...], provider_ref: str | None, done: str, why: str) -> Result:
    """A `reduce` that stopped the marketing but could not remove `fields`: the detail names each
    field still held at the provider and why, so the evidence and the certificate say so too."""
    held = f"; still held at the provider: {', '.join(fields)} ({why})" if fields else ""
    return Result(Outcome.SUPPRESSED, provider_ref, done + held, still_held=tuple(fields))


@dataclass(frozen=True)
class Verification:
    """How the executor sees an erasure take effect: it asks the adapter's own `find` again, with
    the identifiers the erasure used, and `Adapter.gone` judges the answer. An asynchronous erasure
    (the provider accepted a job) is looked at `after` its call, then every `every` while the
    holding is still found, until `within` after the call; found after that, it is still present
    and the erasure is made again. `how` says in plain words how the look-up is made (it goes on
    the certificate). A synchronous erasure is looked at once, right after its call."""

    after: timedelta = timedelta(0)
    every: timedelta = timedelta(hours=1)
    within: timedelta = timedelta(0)
    how: str = "looked up again with the provider's search for the subject"


class EmailChannel(Protocol):
    """The outbox an adapter's e-mail channel sends through (`plugin.outbox.Outbox`)."""

    async def send(
        self,
        *,
        to: str,
        subject: str,
        body: str,
        reply_to: str | None = None,
        dedupe_key: str | None = None,
    ) -> str:
        """Queue an e-mail and return its reference. `{reference}` in subject or body is filled in.
        Idempotent per step; calls with the same `dedupe_key` (for one shop) share one message."""
        ...


@dataclass(frozen=True)
class ShopInfo:
    domain: str
    name: str
    contact_email: str | None = None  # the controller's: where processors reply
    country: str | None = None
    locale: str = "en"
    timezone: str | None = None  # IANA name; dates of Shopify records are the shop's local dates
    legal_name: str | None = None  # the business's registered name, when known
    address: str | None = None  # the business address on one line, when known


# The shop's Admin API client, made on demand (a token may need renewing first).
AdminClientFactory = Callable[[], Awaitable[AdminClient]]


@dataclass(frozen=True)
class OwnHeld:
    """What Gallra's own database still holds of a request's personal data."""

    contact: bool  # the request's encrypted e-mail or phone
    webhook_bodies: int  # raw webhook bodies not yet redacted
    export_parts: int  # adapters' exports not yet built into an extract

    @property
    def anything(self) -> bool:
        return self.contact or self.webhook_bodies > 0 or self.export_parts > 0


class OwnRecords(Protocol):
    """Gallra's own database, for the shop of the context (`plugin.executor.own_data`): the
    request rows, their webhook deliveries and export parts. Only the Gallra adapter uses it."""

    async def held(self, request_id: int) -> OwnHeld | None:
        """What the request still holds; None when the shop has no such request."""
        ...

    async def erase(self, request_id: int) -> OwnHeld | None:
        """Erase the request's personal data (keyed hashes stay: the evidence names the subject by
        them), in one transaction; what it held just before. Safe to repeat."""
        ...


@dataclass
class AdapterContext:
    """What the executor hands an adapter: the shop, the HTTP helper, the outbox its e-mail
    channel sends through, a clock, the shop's own Admin API client (the platform every shop
    is on, not a vendor among others; only the Shopify adapter calls it), and Gallra's own
    database (only the Gallra adapter reads it)."""

    shop: ShopInfo
    http: ProviderHttp
    email: EmailChannel | None = None
    now: datetime | None = None
    admin_client: AdminClientFactory | None = None
    own_records: OwnRecords | None = None


def iso_date(value: Any) -> date | None:
    """The date of a provider's ISO 8601 timestamp (`2026-01-02T10:00:00Z`), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None


@dataclass(frozen=True)
class EmailOverrides:
    """The shop owner's own choices for an e-mail channel: where requests go, in which language."""

    address: str | None = None
    language: str | None = None


class AdapterConfig(BaseModel):
    """Base for adapter settings. Secret fields are `SecretStr`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def email_overrides(self) -> EmailOverrides:
        """What the shop set for the adapter's e-mail channel; settings with no e-mail fields
        (`adapters.email_request.EmailRequestConfig` has them) set nothing."""
        return EmailOverrides()

    @classmethod
    def regions(cls) -> dict[str, str]:
        """The provider's documented API roots a connection picks from (`region=`), by name; none
        for settings of an adapter that calls no API (`ProviderConfig` has them)."""
        return {}


# Key of the server's `UrlPolicy` in the validation context (`Config.model_validate(values,
# context={URL_POLICY: policy})`); without it no custom URL is accepted.
URL_POLICY = "url_policy"

HostLabel = Annotated[str, AfterValidator(host_label)]


class ProviderConfig(AdapterConfig):
    """Base for the settings of an adapter that calls its provider's HTTP API. Each declares its
    provider's documented roots (`endpoints`); the shop picks a `region`, never a URL. `base_url`
    is accepted only where the server's `UrlPolicy` allows custom provider URLs."""

    endpoints: ClassVar[Endpoints]
    region: str | None = Field(
        default=None,
        description="Which of the provider's documented API addresses to use; empty for the first.",
    )
    base_url: str | None = Field(
        default=None,
        description="A custom API root instead of a region, only where the server's operator allows "
        "custom provider URLs (self-hosting, tests); leave empty.",
    )

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return cls.endpoints.check_region(value)
        except UrlRefused as exc:
            raise PydanticCustomError("provider_region", str(exc)) from None

    @field_validator("base_url")
    @classmethod
    def _custom(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or not value.strip():
            return None
        context = info.context if isinstance(info.context, dict) else {}
        policy = context.get(URL_POLICY) or UrlPolicy()
        try:
            return custom_root(value, policy, cls.endpoints.choices())
        except UrlRefused as exc:
            raise PydanticCustomError("provider_url", str(exc)) from None

    @model_validator(mode="after")
    def _root(self) -> Self:
        try:
            self.root()
        except UrlRefused as exc:
            raise PydanticCustomError("provider_url", str(exc)) from None
        return self

    @classmethod
    def regions(cls) -> dict[str, str]:
        return dict(cls.endpoints.regions)

    @property
    def custom(self) -> bool:
        """The calls go to the shop's own root (checked again at each call), not a declared one."""
        return self.base_url is not None

    def root(self) -> str:
        """Where the provider's API lives for this connection, without a trailing slash."""
        if self.base_url is not None:
            return self.base_url
        return self.endpoints.root(self.region, lambda name: getattr(self, name)).rstrip("/")


C = TypeVar("C", bound=AdapterConfig, covariant=True, default=AdapterConfig)


class Channel(ABC):
    """A way besides its API through which an adapter reaches its provider: the e-mail channel
    (`adapters.email_request.EmailRequests`). Declared once on the adapter class (`mail = ...`)
    and shared by its instances, so each call is given the adapter it works for."""

    @abstractmethod
    async def check(self, adapter: Adapter) -> None:
        """Raise `PermanentFailure` when this channel could not carry a request for the shop."""

    @abstractmethod
    async def find(self, adapter: Adapter, subject: Subject) -> list[Holding]:
        """What the provider received through the shop, as far as the shop's records show."""

    @abstractmethod
    async def erase(self, adapter: Adapter, subject: Subject, holding: Holding) -> Result:
        """Ask the provider to erase the holding (and the rest of what it holds of the subject)."""

    @abstractmethod
    async def export(self, adapter: Adapter, subject: Subject) -> dict[str, Any]:
        """What the provider received, for the register extract; empty when it received nothing."""


@dataclass(frozen=True)
class ErasureCover:
    by: Category  # the holding whose erasure erases the others
    refs: tuple[str, ...]  # the holdings it erases with it, by the start of their `ref`
    why: str  # for evidence and certificates; no personal data


_CALLS = ("find", "erase", "export")


class Adapter(ABC, Generic[C]):
    """The one base of every adapter, generic over its settings: `class Brevo(ApiAdapter[BrevoConfig])`
    makes `self.config` a `BrevoConfig` and `Brevo.Config` the model the shop owner fills in."""

    name: ClassVar[str]  # registry key, also the step's `system`; never rename it
    title: ClassVar[str]  # shown to the shop owner
    category: ClassVar[Category]
    description: ClassVar[str] = ""
    # "email" for an adapter whose only channel is e-mail (set from `mail` unless declared).
    channel: ClassVar[Literal["api", "email"]] = "api"
    can_find: ClassVar[bool] = True
    can_erase: ClassVar[bool] = True
    can_export: ClassVar[bool] = True
    can_sweep: ClassVar[bool] = False  # offers `sweep_holdings()` (see there)
    can_reduce: ClassVar[bool] = False  # implements `reduce()` (see there)
    Config: ClassVar[type[AdapterConfig]]  # from the type parameter, `Adapter[ItsConfig]`
    rate_limits: ClassVar[tuple[RateLimit, ...]] = ()
    # Who the provider is as a recipient of the shop's data (the register extract lists it).
    recipient: ClassVar[Recipient | None] = None
    # How shops write this carrier in Shopify's free-text `trackingInfo.company` (see
    # `adapters.carriers`): lower case, words only; the adapter's own name always matches.
    carrier_aliases: ClassVar[tuple[str, ...]] = ()
    # The e-mail channel, for what the provider's API cannot erase (or for a provider without one).
    mail: ClassVar[Channel | None] = None
    # How an erasure is seen to take effect (`Verification`); `gone` judges what `find` answers.
    verification: ClassVar[Verification] = Verification()
    # When the provider erases some of a subject's holdings only through another holding's erasure
    # (it has no call for them on their own): the executor then counts a planned erase or reduce of
    # those as done by that erasure, when the request has it, and verified with it.
    erasure_covers: ClassVar[ErasureCover | None] = None
    # False for a system every shop has without connecting it (Gallra's own records): it is not
    # in the catalogue the shop owner picks from, configures, checks or sees as a recipient.
    configurable: ClassVar[bool] = True
    # Erased only once every other step of the request has settled (and, for a data request, the
    # extract is built): the other systems' look-ups need the identifiers this system keeps.
    erased_last: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        config = _config_parameter(cls)
        if config is not None and "Config" not in vars(cls):
            cls.Config = config
        if cls.mail is not None and not any("channel" in vars(k) for k in cls.__mro__ if k is not Adapter):
            cls.channel = "email"
        if "name" in vars(cls) and cls.mail is None:
            missing = [call for call in _CALLS if getattr(cls, call) is getattr(Adapter, call)]
            if missing:
                raise TypeError(
                    f"adapter {cls.name!r} has no e-mail channel (`mail`), so it must implement "
                    + ", ".join(missing)
                )

    def __init__(self, config: C, ctx: AdapterContext) -> None:
        self.config = config
        self.ctx = ctx

    def credential_key(self) -> str:
        """Which credential the rate limits are counted against (a fingerprint, never the secret)."""
        return "default"

    @final
    async def check(self) -> None:
        """Raise `AuthFailed` or another `AdapterError` if any channel the adapter uses would not
        work: its API first (`check_api`), then its e-mail channel (a privacy address and an
        outbox for the shop). Adapters never override this; they supply `check_api`."""
        await self.check_api()
        if self.mail is not None:
            await self.mail.check(self)

    async def check_api(self) -> None:
        """Raise `AuthFailed` or another `AdapterError` if the provider's API does not accept the
        settings. An adapter without an API has nothing to check here."""

    async def find(self, subject: Subject) -> list[Holding]:
        """What this system holds about the subject; empty when nothing. Without an override,
        what the e-mail channel covers: the subject's shipments with this carrier."""
        return await self._mail().find(self, subject)

    def gone(self, holding: Holding, found: Sequence[Holding]) -> bool:
        """Whether `find`'s answer after an erasure shows `holding` gone: by default, no holding
        with its ref. An adapter whose provider keeps a trace of an erased record says here what
        counts as gone."""
        return all(h.ref != holding.ref for h in found)

    def lookup_subject(self, subject: Subject, holding: Holding) -> Subject | None:
        """Whom a verification look-up of `holding` asks `find` about: the subject its erasure was
        made for, when that identifies anyone; None when nothing does (a retention sweep names
        records by the provider's own ids), so no look-up could show the holding gone."""
        return subject if subject.identifies() else None

    def verifiable(self) -> bool:
        """Whether a look-up can show an erasure took effect: not when `find` is the e-mail
        channel's, which lists the shipments Shopify reports for this carrier, not what the carrier
        holds (a look-up would prove nothing)."""
        return type(self).find is not Adapter.find

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        """Erase (or request erasure of) one holding. Must be safe to call twice. Without an
        override, the e-mail channel asks the provider."""
        return await self._mail().erase(self, subject, holding)

    async def export(self, subject: Subject) -> dict[str, Any]:
        """Everything held about the subject, for the register extract. Without an override, what
        the e-mail channel's provider received."""
        return await self._mail().export(self, subject)

    def _mail(self) -> Channel:
        if self.mail is None:  # prevented when the class is made (`__init_subclass__`)
            raise PermanentFailure(self.name, "has neither this call nor an e-mail channel")
        return self.mail

    async def reduce(self, subject: Subject, holding: Holding, fields: tuple[str, ...]) -> Result:
        """Optional (`can_reduce = True`): carry out a retention rule that keeps only a suppression
        entry (retention-law.md MK-1). Afterwards the provider holds no more than that entry for
        the address (address or hash, date, channel), and the address is never mailed again.

        `fields` are the planner's `Decision.reduce_fields` (e.g. `name, phone, address,
        profile_properties, activity_history`). Stop all marketing first (unsubscribe, suppress or
        blocklist), then remove the fields with the provider's documented call: an update that
        clears them, or a deletion where the provider documents that its suppression entry
        survives it (Klaviyo keeps a record of deleted profiles' contact information, Mailchimp
        blocks re-importing a permanently deleted address). Return `reduced(fields, …)` only then;
        a field the provider still holds must be named: `suppressed_only(fields, …, why)`. "Not
        found" is `ALREADY_ABSENT`. Like `erase` it must be safe to repeat and must work for a
        Subject without e-mail or phone when the holding's ref carries the provider's ids (the
        retention sweep has no address).

        The default refuses: the record is kept whole and the executor never falls back to
        `erase`, which would also remove the suppression entry the rule keeps."""
        raise PermanentFailure(
            self.name, "cannot remove only part of this record; it is kept whole until its rule ends"
        )

    async def sweep_holdings(self) -> AsyncIterator[Holding]:
        """Optional (`can_sweep = True`): what the provider keeps on its own, for the daily
        retention sweep, e.g. a newsletter tool's unsubscribed and bounced addresses with the date
        they stopped (`unsubscribed`). A sweep has no customer, so each holding's `ref` must be one
        that `erase` accepts with a Subject that has neither e-mail nor phone (provider ids or
        hashes, never personal data), and its label must carry no personal data either. Yield page
        by page so memory stays bounded whatever the account's size. The default holds nothing."""
        return
        yield  # noqa: V201 - an async generator that yields nothing


def _config_parameter(cls: type) -> type[AdapterConfig] | None:
    """The settings model a class names as its type parameter (`Adapter[XConfig]`), if concrete."""
    for base in getattr(cls, "__orig_bases__", ()):
        origin = get_origin(base)
        if isinstance(origin, type) and issubclass(origin, Adapter):
            for arg in get_args(base):
                if isinstance(arg, type) and issubclass(arg, AdapterConfig):
                    return arg
    return None
