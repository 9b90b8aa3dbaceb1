"""The adapter interface. Reading one adapter module should teach you all of them.

An adapter is a class with a `name`, a pydantic `Config` (what the shop owner enters), the rate
limits its provider documents, and four calls: `check` the connection, `find` what the system holds
about a subject, `erase` one holding, `export` everything for an access report. Adapters whose
provider can keep a suppression entry while the rest goes also offer `reduce` (`can_reduce`). It
never retries by itself (the shared HTTP helper does, and the executor reschedules) and it never
logs personal data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Protocol, Self

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

from adapters.http import Endpoints, ProviderHttp, RateLimit, UrlPolicy, UrlRefused, custom_root, host_label
from plugin.holdings import Category, Holding, Subject


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
    # False when `find` lists what Shopify reports (a carrier's shipments), not what the provider
    # holds: a look-up would prove nothing, so the erasure is not verifiable.
    asks_provider: bool = True


class AdapterError(Exception):
    """A call failed. `retryable` tells the executor whether to try again, `retry_after` when."""

    retryable: bool = False

    def __init__(
        self, adapter: str, message: str, *, retry_after: float | None = None, remote: str = ""
    ) -> None:
        # `remote`: the provider's own words (an error code, a masked message), kept apart so that
        # a connection check can leave them out: from a URL that is not the provider's they would
        # be whatever answered there.
        super().__init__(f"{adapter}: {message}" + (f": {remote}" if remote else ""))
        self.adapter = adapter
        self.retry_after = retry_after
        self.summary = f"{adapter}: {message}"


class TemporaryFailure(AdapterError):
    retryable = True


class RateLimited(TemporaryFailure):
    pass


class PermanentFailure(AdapterError):
    retryable = False


class AuthFailed(PermanentFailure):
    """Credentials rejected; the message names the adapter and the setting to fix."""


class SettingsInvalid(PermanentFailure):
    """The connection's settings cannot be used (a stored value the server now refuses, a URL it
    will not call); the message names the setting and what is allowed, never its value."""


class EmailChannel(Protocol):
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


@dataclass
class AdapterContext:
    """What the executor hands an adapter: the shop, the HTTP helper, the e-mail channel, a clock."""

    shop: ShopInfo
    http: ProviderHttp
    email: EmailChannel | None = None
    now: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def iso_date(value: Any) -> date | None:
    """The date of a provider's ISO 8601 timestamp (`2026-01-02T10:00:00Z`), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None


class AdapterConfig(BaseModel):
    """Base for adapter settings. Secret fields are `SecretStr`."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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

    @property
    def custom(self) -> bool:
        """The calls go to the shop's own root (checked again at each call), not a declared one."""
        return self.base_url is not None

    def root(self) -> str:
        """Where the provider's API lives for this connection, without a trailing slash."""
        if self.base_url is not None:
            return self.base_url
        return self.endpoints.root(self.region, lambda name: getattr(self, name)).rstrip("/")


class Adapter(ABC):
    name: ClassVar[str]  # registry key, also the step's `system`
    title: ClassVar[str]  # shown to the shop owner
    category: ClassVar[Category]
    channel: ClassVar[Literal["api", "email"]] = "api"
    can_find: ClassVar[bool] = True
    can_erase: ClassVar[bool] = True
    can_export: ClassVar[bool] = True
    can_sweep: ClassVar[bool] = False  # offers `sweep_holdings()` (see there)
    can_reduce: ClassVar[bool] = False  # implements `reduce()` (see there)
    Config: ClassVar[type[AdapterConfig]]
    rate_limits: ClassVar[tuple[RateLimit, ...]] = ()
    description: ClassVar[str] = ""
    verification: ClassVar[Verification] = Verification()

    def __init__(self, config: AdapterConfig, ctx: AdapterContext) -> None:
        self.config = config
        self.ctx = ctx

    def credential_key(self) -> str:
        """Which credential the rate limits are counted against (a fingerprint, never the secret)."""
        return "default"

    @abstractmethod
    async def check(self) -> None:
        """Raise `AuthFailed` or another `AdapterError` if the connection does not work."""

    @abstractmethod
    async def find(self, subject: Subject) -> list[Holding]:
        """What this system holds about the subject; empty when nothing."""

    def gone(self, holding: Holding, found: Sequence[Holding]) -> bool:
        """Whether `find`'s answer after an erasure shows `holding` gone: by default, no holding
        with its ref. An adapter whose provider keeps a trace of an erased record says here what
        counts as gone."""
        return all(h.ref != holding.ref for h in found)

    @abstractmethod
    async def erase(self, subject: Subject, holding: Holding) -> Result:
        """Erase (or request erasure of) one holding. Must be safe to call twice."""

    @abstractmethod
    async def export(self, subject: Subject) -> dict[str, Any]:
        """Everything held about the subject, for the register extract."""

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
        yield  # an async generator that yields nothing
