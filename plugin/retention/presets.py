"""The country presets, read from the `[retention]` section of manifest.toml and validated."""

from __future__ import annotations

import tomllib
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from plugin.holdings import Category
from plugin.manifest import manifest_path
from plugin.retention.errors import PolicyError, describe_validation_error
from plugin.retention.rules import Action, Anchor, Period, Rule

FALLBACK_PRESET = "STRICTEST"


class _RuleDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    category: Category | None = None
    categories: list[Category] | None = None
    anchor: Anchor
    period: str
    reference: str = Field(min_length=1)
    reason_sv: str = Field(min_length=1)
    reason_en: str = Field(min_length=1)
    at_expiry: Action = Action.ERASE
    statutory: bool = False
    holds_on_request: bool = False
    reduce_fields: list[str] = []
    flag: str | None = None
    previous_period: str | None = None
    period_since: date | None = None
    sources: list[str] = []

    @field_validator("period", "previous_period")
    @classmethod
    def _period(cls, value: str | None) -> str | None:
        if value is not None:
            Period.parse(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> _RuleDoc:
        if (self.category is None) == (self.categories is None):
            raise ValueError("give exactly one of `category` or `categories`")
        if self.at_expiry is Action.KEEP:
            raise ValueError("at_expiry must be erase or reduce")
        if (self.at_expiry is Action.REDUCE) != bool(self.reduce_fields):
            raise ValueError("reduce_fields are required with at_expiry = reduce, and only then")
        if (self.anchor is Anchor.WHILE_FLAGGED) != (self.flag is not None):
            raise ValueError("anchor while_flagged needs a flag, and a flag needs anchor while_flagged")
        if (self.previous_period is None) != (self.period_since is None):
            raise ValueError("previous_period and period_since go together")
        if self.statutory and not self.holds_on_request:
            raise ValueError("a statutory minimum must also hold on request")
        return self

    def rules(self) -> list[Rule]:
        if self.category is not None:
            named = [(self.id, self.category)]
        else:
            named = [(f"{self.id}-{c.value.upper()}", c) for c in self.categories or ()]
        return [
            Rule(
                id=rule_id,
                category=category,
                period=Period.parse(self.period),
                anchor=self.anchor,
                reference=self.reference,
                reason_sv=self.reason_sv,
                reason_en=self.reason_en,
                at_expiry=self.at_expiry,
                statutory=self.statutory,
                holds_on_request=self.holds_on_request,
                reduce_fields=tuple(self.reduce_fields),
                flag=self.flag,
                previous_period=Period.parse(self.previous_period) if self.previous_period else None,
                period_since=self.period_since,
                sources=tuple(self.sources),
            )
            for rule_id, category in named
        ]


class _RetentionDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    countries: list[str]
    fallback: str
    common: list[_RuleDoc]
    presets: dict[str, list[_RuleDoc]]

    @model_validator(mode="after")
    def _complete(self) -> _RetentionDoc:
        if sorted(self.countries) != sorted(self.presets):
            raise ValueError("`countries` must list exactly the presets given")
        return self


def _rules_of(docs: list[_RuleDoc]) -> list[Rule]:
    return [rule for doc in docs for rule in doc.rules()]


def parse_presets(text: str) -> dict[str, tuple[Rule, ...]]:
    """Every preset (country code → rules, common rules included) from a manifest's text."""
    try:
        raw: dict[str, Any] = tomllib.loads(text).get("retention", {})
        doc = _RetentionDoc.model_validate(raw)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"manifest.toml: not valid TOML ({exc})") from None
    except ValidationError as exc:
        raise PolicyError(describe_validation_error(exc, prefix="retention")) from None
    common = _rules_of(doc.common)
    presets: dict[str, tuple[Rule, ...]] = {}
    for country in doc.countries:
        rules = common + _rules_of(doc.presets[country])
        ids = [r.id for r in rules]
        duplicate = next((i for i in ids if ids.count(i) > 1), None)
        if duplicate:
            raise PolicyError(f"retention.presets.{country}: rule id {duplicate!r} appears twice")
        presets[country] = tuple(rules)
    # The fallback: every rule of every preset, so the longest keep any covered law asks for wins.
    seen: dict[str, Rule] = {}
    for country in doc.countries:
        for rule in presets[country]:
            seen.setdefault(rule.id, rule)
    presets[doc.fallback] = tuple(seen.values())
    return presets


@lru_cache(maxsize=4)
def _load(path: Path) -> dict[str, tuple[Rule, ...]]:
    return parse_presets(path.read_text(encoding="utf-8"))


def presets(path: Path | None = None) -> dict[str, tuple[Rule, ...]]:
    return _load(path or manifest_path())


def preset_rules(name: str) -> tuple[Rule, ...]:
    found = presets().get(name.upper())
    if found is None:
        known = ", ".join(sorted(presets()))
        raise PolicyError(f"preset: unknown country {name!r} (known: {known})")
    return found


def countries() -> list[str]:
    return [name for name in presets() if name != FALLBACK_PRESET]
