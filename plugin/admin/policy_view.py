"""The retention policy as the shop owner reads and edits it: one line per rule with the day a
record made today would be kept until, and the form's values turned back into a `Policy`.

Validation is the engine's (`plugin.retention`): an override below a statutory minimum raises
`StatutoryMinimumError` unless forced with who and why; a forced change is recorded as evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from plugin.i18n import count
from plugin.models import Shop
from plugin.retention import (
    Anchor,
    Override,
    Period,
    Policy,
    PolicyError,
    StoredPolicyError,
    default_policy_for,
)
from plugin.retention import shop_policy as retention_shop_policy
from plugin.retention.dates import format_month_day, parse_month_day

# Which event "today" stands for in the timeline, per anchor.
START_KEY = {
    Anchor.ORDER_CREATED: "policy.start_order",
    Anchor.FISCAL_YEAR_END: "policy.start_order",
    Anchor.FISCAL_YEAR_CALENDAR_END: "policy.start_order",
    Anchor.CALENDAR_YEAR_END: "policy.start_order",
    Anchor.DELIVERED: "policy.start_delivered",
    Anchor.LAST_ACTIVITY: "policy.start_activity",
    Anchor.UNSUBSCRIBED: "policy.start_unsubscribed",
}


@dataclass(frozen=True)
class RuleLine:
    id: str
    category: str
    period: str  # "7y", as the form takes it
    period_words: str
    start_key: str
    keep_until: date
    reason: str
    reference: str
    statutory: bool
    preset_period: str | None  # set when the shop overrode the preset
    forced: bool
    width: int  # 5..100, the timeline bar's length in 5 % steps
    at_expiry: str


def shown_policy(shop: Shop | None) -> tuple[Policy, str | None]:
    """What the policy page shows: the shop's effective policy (`plugin.retention.shop_policy`),
    or, when its stored policy cannot be used (and nothing is done by it), the country default as
    the form's starting point and the problem for the page to show."""
    try:
        return retention_shop_policy(shop), None
    except StoredPolicyError as exc:
        return default_policy_for(shop.country if shop is not None else None), str(exc)


def lines(policy: Policy, today: date, lang: str) -> list[RuleLine]:
    forced = {item.rule_id for item in policy.forced_overrides}
    found = []
    for rule in policy.rules:
        if rule.anchor is Anchor.WHILE_FLAGGED:
            continue  # holds while a flag is set; no period to show on a timeline
        period = rule.period_on(today)
        keep_until = rule.keep_until(today, policy.fiscal_year_end, period)
        found.append(
            RuleLine(
                id=rule.id,
                category=str(rule.category),
                period=str(rule.period),
                period_words=period.words(lang) or count(0, "days", lang),
                start_key=START_KEY.get(rule.anchor, "policy.start_order"),
                keep_until=keep_until,
                reason=rule.reason_sv if lang == "sv" else rule.reason_en,
                reference=rule.reference,
                statutory=rule.statutory,
                preset_period=str(rule.preset_period) if rule.preset_period is not None else None,
                forced=rule.id in forced,
                width=0,
                at_expiry=str(rule.at_expiry),
            )
        )
    longest = max(((line.keep_until - today).days for line in found), default=1) or 1
    sized = []
    for line in found:
        share = max((line.keep_until - today).days, 0) / longest
        width = min(100, max(5, 5 * round(share * 20)))
        sized.append(RuleLine(**{**line.__dict__, "width": width}))
    sized.sort(key=lambda line: (line.category, line.keep_until))
    return sized


def from_form(form: Mapping[str, Any]) -> Policy:
    """Build a policy from the form: preset, fiscal-year end, one period field per rule (empty =
    the preset's), and one who/why pair that forces every override below a statutory minimum."""
    preset = str(form.get("preset") or "").strip().upper()
    if not preset:
        raise PolicyError("preset: choose a country")
    try:
        fye = parse_month_day(str(form.get("fiscal_year_end") or "12-31").strip())
    except ValueError as exc:
        raise PolicyError(f"fiscal_year_end: {exc}") from None
    minimise_text = str(form.get("minimise_requests_after") or "").strip()
    try:
        minimise = Period.parse(minimise_text) if minimise_text else None
    except ValueError as exc:
        raise PolicyError(f"minimise_requests_after: {exc}") from None
    base = {rule.id: rule for rule in Policy(preset, fye).rules}
    force = form.get("force") == "1"
    forced_by = str(form.get("forced_by") or "").strip() or None
    forced_reason = str(form.get("forced_reason") or "").strip() or None
    overrides: dict[str, Override] = {}
    for rule_id, rule in base.items():
        text = str(form.get(f"period.{rule_id}") or "").strip()
        if not text:
            continue
        try:
            period = Period.parse(text)
        except ValueError as exc:
            raise PolicyError(f"overrides.{rule_id}.period: {exc}") from None
        if period == rule.period:
            continue  # the preset's own period is no override
        below = rule.statutory and not period.never_shorter_than(rule.period)
        if below and force:
            overrides[rule_id] = Override(period, True, forced_by, forced_reason)
        else:
            overrides[rule_id] = Override(period)
    return Policy(preset, fye, overrides, minimise_after=minimise)


def describe(policy: Policy) -> dict[str, Any]:
    """The policy as JSON for the API (no personal data; who forced is the shop's own record)."""
    return {
        "preset": policy.preset,
        "country": policy.country,
        "fiscal_year_end": format_month_day(policy.fiscal_year_end),
        "overrides": {rule_id: str(o.period) for rule_id, o in policy.overrides.items()},
        "minimise_requests_after": str(policy.minimise_after),
        "forced_overrides": [
            {
                "rule_id": item.rule_id,
                "period": str(item.period),
                "statutory_period": str(item.statutory_period),
                "reference": item.reference,
                "forced_by": item.forced_by,
                "forced_reason": item.forced_reason,
            }
            for item in policy.forced_overrides
        ],
        "toml": policy.to_toml(),
    }
