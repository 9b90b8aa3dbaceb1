"""A shop's retention policy: a country preset, the shop's fiscal-year end, and its overrides.

Stored as TOML (`Shop.policy_toml`), for example::

    preset = "SE"
    fiscal_year_end = "06-30"
    minimise_requests_after = "3y"  # finished requests drop their subject data (the default)

    [overrides.SE-1]          # "order information is deleted after 10 years"
    period = "10y"

    [overrides.SE-3-SHIPMENT] # "deleted from the carriers within 36 months"
    period = "36m"

An override shorter than a statutory minimum is refused (`StatutoryMinimumError`) unless it says
`force = true` with `forced_by` and `forced_reason`; the policy then lists it in `forced_overrides`.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from plugin.retention.dates import format_month_day, parse_month_day
from plugin.retention.errors import (
    PolicyError,
    StatutoryMinimumError,
    StoredPolicyError,
    describe_validation_error,
)
from plugin.retention.presets import FALLBACK_PRESET, countries, preset_rules
from plugin.retention.rules import Anchor, Period, Rule

# How long a finished request keeps its subject's data (encrypted e-mail and phone, order ids,
# webhook bodies, step references, evidence identifiers) before `plugin.minimise` drops them,
# keeping what its certificate names the subject by (keyed hashes, the shop's customer id).
# 3 years: the general claims limitation in FI, NO, DK and DE, and in SE for a business's claims
# against a consumer, and the Swedish consumer-complaint window (retention-law.md FI-4, NO-4,
# DK-3, DE-7, SE-4, SE-3). Past it, a dispute about how a request was handled is answered from
# the certificate and the evidence chain, which stay; the readable e-mail and phone add nothing.
DEFAULT_MINIMISE_AFTER = Period(years=3)
# Not shorter than the month a request is worked on and answered in (APP-1, GDPR art. 12(3)).
MINIMISE_AT_LEAST = Period(days=30)


@dataclass(frozen=True, slots=True)
class Override:
    period: Period
    force: bool = False
    forced_by: str | None = None  # who decided; a role or name, kept in the policy only
    forced_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ForcedOverride:
    """An override below a statutory minimum, kept on record with who forced it and why."""

    rule_id: str
    period: Period
    statutory_period: Period
    reference: str
    forced_by: str
    forced_reason: str


class _OverrideDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: str
    force: bool = False
    forced_by: str | None = Field(default=None, min_length=1)
    forced_reason: str | None = Field(default=None, min_length=1)

    @field_validator("period")
    @classmethod
    def _period(cls, value: str) -> str:
        Period.parse(value)
        return value


class _PolicyDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    preset: str = Field(min_length=2)
    country: str | None = None
    fiscal_year_end: str = "12-31"
    minimise_requests_after: str | None = None
    overrides: dict[str, _OverrideDoc] = {}

    @field_validator("fiscal_year_end")
    @classmethod
    def _fye(cls, value: str) -> str:
        parse_month_day(value)
        return value

    @field_validator("minimise_requests_after")
    @classmethod
    def _minimise(cls, value: str | None) -> str | None:
        if value is not None:
            Period.parse(value)
        return value


class Policy:
    """Effective rules for one shop. Immutable; build new ones with `override()`."""

    def __init__(
        self,
        preset: str,
        fiscal_year_end: tuple[int, int] = (12, 31),
        overrides: Mapping[str, Override] | None = None,
        country: str | None = None,
        minimise_after: Period | None = None,
    ) -> None:
        self.preset = preset.upper()
        self.country = (
            country.upper() if country else (self.preset if self.preset != FALLBACK_PRESET else None)
        )
        try:
            parse_month_day(format_month_day(fiscal_year_end))
        except ValueError as exc:
            raise PolicyError(f"fiscal_year_end: {exc}") from None
        self.fiscal_year_end = fiscal_year_end
        if minimise_after is not None and not minimise_after.never_shorter_than(MINIMISE_AT_LEAST):
            raise PolicyError(
                f"minimise_requests_after: {minimise_after} is shorter than {MINIMISE_AT_LEAST}, "
                "the time a request is answered in"
            )
        # None: the default, which follows DEFAULT_MINIMISE_AFTER if that changes.
        self.minimise_setting = minimise_after
        self.minimise_after = minimise_after or DEFAULT_MINIMISE_AFTER
        self.overrides: dict[str, Override] = dict(overrides or {})
        self.rules, self.forced_overrides = self._apply(preset_rules(self.preset), self.overrides)
        # Filled by the planner: compiled rule tables per (mode, periods in force).
        self.compiled: dict[Any, Any] = {}

    @staticmethod
    def _apply(
        base: tuple[Rule, ...], overrides: Mapping[str, Override]
    ) -> tuple[tuple[Rule, ...], tuple[ForcedOverride, ...]]:
        by_id = {rule.id: rule for rule in base}
        forced: list[ForcedOverride] = []
        for rule_id, override in overrides.items():
            key = f"overrides.{rule_id}"
            rule = by_id.get(rule_id)
            if rule is None:
                raise PolicyError(f"{key}: no rule {rule_id!r} in this preset (known: {', '.join(by_id)})")
            if rule.anchor is Anchor.WHILE_FLAGGED:
                raise PolicyError(f"{key}: a rule held while a flag is set has no period to override")
            if override.force and not (override.forced_by and override.forced_reason):
                raise PolicyError(f"{key}: force = true needs forced_by and forced_reason")
            shorter = not override.period.never_shorter_than(rule.period)
            if rule.statutory and shorter:
                if not override.force:
                    raise StatutoryMinimumError(
                        f"{key}.period: {override.period} is shorter than the statutory minimum "
                        f"{rule.period} ({rule.reference}); set force = true with forced_by and forced_reason"
                    )
                forced.append(
                    ForcedOverride(
                        rule_id,
                        override.period,
                        rule.period,
                        rule.reference,
                        override.forced_by or "",
                        override.forced_reason or "",
                    )
                )
            by_id[rule_id] = dataclasses.replace(
                rule,
                period=override.period,
                previous_period=None,
                period_since=None,
                preset_period=rule.period,
            )
        return tuple(by_id.values()), tuple(forced)

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def from_preset(cls, country: str, fiscal_year_end: tuple[int, int] = (12, 31)) -> Policy:
        return cls(country, fiscal_year_end)

    @classmethod
    def from_toml(cls, text: str) -> Policy:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"policy: not valid TOML ({exc})") from None
        try:
            doc = _PolicyDoc.model_validate(raw)
        except ValidationError as exc:
            raise PolicyError(describe_validation_error(exc)) from None
        overrides = {
            rule_id: Override(Period.parse(o.period), o.force, o.forced_by, o.forced_reason)
            for rule_id, o in doc.overrides.items()
        }
        minimise = Period.parse(doc.minimise_requests_after) if doc.minimise_requests_after else None
        return cls(doc.preset, parse_month_day(doc.fiscal_year_end), overrides, doc.country, minimise)

    def override(
        self,
        rule_id: str,
        period: str | Period,
        *,
        forced_by: str | None = None,
        forced_reason: str | None = None,
    ) -> Policy:
        """A copy with one rule's period changed. Forcing needs both who and why."""
        try:
            value = period if isinstance(period, Period) else Period.parse(period)
        except ValueError as exc:
            raise PolicyError(f"overrides.{rule_id}.period: {exc}") from None
        force = forced_by is not None or forced_reason is not None
        overrides = {**self.overrides, rule_id: Override(value, force, forced_by, forced_reason)}
        return Policy(self.preset, self.fiscal_year_end, overrides, self.country, self.minimise_setting)

    def with_fiscal_year_end(self, fiscal_year_end: tuple[int, int]) -> Policy:
        return Policy(self.preset, fiscal_year_end, self.overrides, self.country, self.minimise_setting)

    def with_minimise_after(self, period: str | Period | None) -> Policy:
        """A copy whose finished requests drop their subject data after `period` (None: default)."""
        try:
            value = Period.parse(period) if isinstance(period, str) else period
        except ValueError as exc:
            raise PolicyError(f"minimise_requests_after: {exc}") from None
        return Policy(self.preset, self.fiscal_year_end, self.overrides, self.country, value)

    # --- output ---------------------------------------------------------------------------------

    def to_toml(self) -> str:
        doc: dict[str, Any] = {"preset": self.preset}
        if self.country and self.country != self.preset:
            doc["country"] = self.country
        doc["fiscal_year_end"] = format_month_day(self.fiscal_year_end)
        if self.minimise_setting is not None:
            doc["minimise_requests_after"] = str(self.minimise_setting)
        if self.overrides:
            doc["overrides"] = {
                rule_id: {
                    k: v
                    for k, v in (
                        ("period", str(o.period)),
                        ("force", o.force or None),
                        ("forced_by", o.forced_by),
                        ("forced_reason", o.forced_reason),
                    )
                    if v is not None
                }
                for rule_id, o in self.overrides.items()
            }
        return tomli_w.dumps(doc)

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Policy):
            return NotImplemented
        return (self.preset, self.country, self.fiscal_year_end, self.overrides, self.minimise_setting) == (
            other.preset,
            other.country,
            other.fiscal_year_end,
            other.overrides,
            other.minimise_setting,
        )

    def __hash__(self) -> int:
        return hash(
            (
                self.preset,
                self.country,
                self.fiscal_year_end,
                tuple(sorted(self.overrides.items())),
                self.minimise_setting,
            )
        )

    def __repr__(self) -> str:
        return (
            f"Policy(preset={self.preset!r}, country={self.country!r}, "
            f"fiscal_year_end={format_month_day(self.fiscal_year_end)!r}, overrides={sorted(self.overrides)})"
        )


def default_policy_for(country: str | None) -> Policy:
    """The preset for the shop's country; for any other country (or none), the STRICTEST preset:
    every rule of every preset at once, so the planner keeps each record for the longest period any
    covered law asks for. It is never shorter than SE/FI/NO/DK/DE law, but the shop should confirm
    it against its own country's law."""
    code = (country or "").strip().upper()
    if code in countries():
        return Policy.from_preset(code)
    return Policy(FALLBACK_PRESET, country=code or None)


class PolicySource(Protocol):
    """What a shop's policy is read from (a `plugin.models.Shop`)."""

    @property
    def policy_toml(self) -> str | None: ...

    @property
    def country(self) -> str | None: ...


def shop_policy(shop: PolicySource | None) -> Policy:
    """A shop's effective retention policy, the one the planner, the sweep, the minimiser, the
    admin and the CLI all read: the shop's stored policy, or its country's default
    (`default_policy_for`) when it has none (or is not installed here).

    The failure rule: a stored policy the engine no longer accepts raises `StoredPolicyError`.
    Nothing is planned, swept or minimised by a policy the shop did not set (falling back to the
    default could erase what the shop's own policy keeps): the request's planning fails and is
    retried, the sweep and the minimiser leave the shop alone, and the admin shows the problem
    with the country default as the starting point for saving a policy again.
    """
    if shop is None or not shop.policy_toml:
        return default_policy_for(shop.country if shop is not None else None)
    try:
        return Policy.from_toml(shop.policy_toml)
    except PolicyError as exc:
        raise StoredPolicyError(
            f"the shop's stored retention policy cannot be used ({exc}); nothing is planned, swept "
            "or minimised by it until a policy is saved again"
        ) from None
