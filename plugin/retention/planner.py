"""The planner: for every holding, erase now, keep until a date (by which rule), or reduce.

Pure and deterministic: no I/O, no clock (the caller passes `now`). Fast: each policy is compiled
once per mode into per-category rule tables whose `keep_until` results are cached per anchor date,
so planning a holding costs a few dict look-ups and one `Decision`.

How one holding is decided (`keep_until` is the last day kept; a rule has run out when now > it):
- A rule with a flag (legal hold, open return) that the holding carries keeps it, no end date.
- In `request` mode only rules that hold against an erasure request count; the others are treated
  as run out now. A missing unsubscribe date counts as today there: the request is the opt-out.
- A rule whose anchor date is missing never lets the holding go: keep, "date unknown (check)".
- Otherwise the longest running rule wins: keep until its date, naming it. Fields listed by run-out
  `reduce` rules are removed now (action reduce) while the record stays. A plain keep names the
  next expiry instead when a running `reduce` rule runs out first (the day to plan again).
- Nothing running: `request` erases; `sweep` erases once an erase rule has run out, and keeps
  anything no rule covers (never erase without a rule).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple, Protocol

from plugin.holdings import Category, Holding
from plugin.retention.policy import Policy
from plugin.retention.rules import ANCHOR_FIELD, Action, Anchor, Mode, Period, Rule
from plugin.retention.sentences import LANGS, rule_reason, unknown_reason, when

ERASURE_REQUEST_RULE = "GDPR-17"
ERASURE_REQUEST_REFERENCE = "GDPR art. 17(1)"
ERASURE_REQUEST_SV = "radering begärd; ingen regel som gäller mot en begäran håller kvar uppgifterna"
ERASURE_REQUEST_EN = "erasure requested; no rule that overrides a request keeps this"
NO_RULE = "NO-RULE"
NO_RULE_SV = "ingen gallringsregel för kategorin; sparas tills en regel finns (kontrollera)"
NO_RULE_EN = "no retention rule for this category; kept until one is set (check)"
# Set by whoever gathers holdings when the reducible fields are already gone: keep instead of reduce.
REDUCED_FLAG = "reduced"


class Decision(NamedTuple):
    """One holding's fate. Immutable; a NamedTuple because planning a million holdings makes one
    of these each, and a tuple is built about five times faster than a frozen dataclass."""

    holding: Holding
    action: Action
    keep_until: date | None  # last day kept; None with keep = no end date known yet
    rule_id: str
    reference: str  # statute and section
    reason_sv: str
    reason_en: str
    reduce_fields: tuple[str, ...] = ()
    expired_on: date | None = None  # for a sweep erase: the day the winning rule's keep ended

    def sentence(self, lang: str) -> str:
        """One sentence: "Order #1001 kept until 2031-12-31: Bokföringslagen … (accounting records, …)."."""
        if lang not in LANGS:
            raise ValueError(f"lang: expected one of {', '.join(LANGS)}, got {lang!r}")
        d = self
        label = d.holding.label
        reason = d.reason_sv if lang == "sv" else d.reason_en
        cited = f"{d.reference} ({reason})" if d.reference else reason
        if d.action is Action.ERASE:
            if d.expired_on is not None:
                if lang == "sv":
                    return (
                        f"{label} raderas nu: sparades till och med {d.expired_on} enligt {cited}, "
                        "som har löpt ut."
                    )
                return f"{label} erased now: kept until {d.expired_on} under {cited}, which has run out."
            return f"{label} raderas nu: {cited}." if lang == "sv" else f"{label} erased now: {cited}."
        if d.action is Action.REDUCE:
            fields = ", ".join(d.reduce_fields)
            if lang == "sv":
                return f"{label} reduceras nu ({fields} tas bort) och {when(d.keep_until, lang)}: {cited}."
            return f"{label} reduced now ({fields} removed), {when(d.keep_until, lang)}: {cited}."
        return f"{label} {when(d.keep_until, lang)}: {cited}."

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe; holdings carry no personal data (a reference and a label only)."""
        h = self.holding
        return {
            "system": h.system,
            "category": h.category.value,
            "ref": h.ref,
            "label": h.label,
            "action": self.action.value,
            "keep_until": self.keep_until.isoformat() if self.keep_until else None,
            "rule": self.rule_id,
            "reference": self.reference,
            "reason_sv": self.reason_sv,
            "reason_en": self.reason_en,
            "reduce_fields": list(self.reduce_fields),
            "expired_on": self.expired_on.isoformat() if self.expired_on else None,
        }


@dataclass(slots=True)
class Plan:
    mode: Mode
    now: date
    decisions: list[Decision] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "now": self.now.isoformat(),
            "decisions": [d.to_dict() for d in self.decisions],
        }


class _Compiled:
    """One rule ready for the hot loop: its anchor field, reasons and a keep-until cache."""

    __slots__ = (
        "anchor_field",
        "cache",
        "cache_get",
        "erase",
        "flag",
        "fye",
        "id",
        "period",
        "reason_en",
        "reason_sv",
        "reduce_fields",
        "reference",
        "rule",
        "unknown_en",
        "unknown_sv",
        "unsubscribed_is_now",
    )

    def __init__(self, rule: Rule, period: Period, fye: tuple[int, int], forced: bool, mode: Mode) -> None:
        self.rule = rule
        self.id = rule.id
        self.reference = rule.reference
        self.period = period
        self.fye = fye
        self.anchor_field = ANCHOR_FIELD[rule.anchor]
        self.erase = rule.at_expiry is Action.ERASE
        self.flag = rule.flag
        self.reduce_fields = rule.reduce_fields
        self.reason_sv = rule_reason(rule, "sv", period, forced)
        self.reason_en = rule_reason(rule, "en", period, forced)
        flagged = rule.anchor is Anchor.WHILE_FLAGGED
        self.unknown_sv = self.reason_sv if flagged else unknown_reason(rule, "sv", self.reason_sv)
        self.unknown_en = self.reason_en if flagged else unknown_reason(rule, "en", self.reason_en)
        self.unsubscribed_is_now = mode is Mode.REQUEST and rule.anchor is Anchor.UNSUBSCRIBED
        self.cache: dict[date, date] = {}
        self.cache_get = self.cache.get

    def keep_until(self, anchor_date: date) -> date:
        found = self.cache.get(anchor_date)
        if found is None:
            found = self.cache[anchor_date] = self.rule.keep_until(anchor_date, self.fye, self.period)
        return found


class _Table:
    """The rules of one category in one mode."""

    __slots__ = ("flag_rules", "request_reduce", "rules")

    def __init__(self, rules: list[_Compiled], mode: Mode, all_rules: list[_Compiled]) -> None:
        self.flag_rules = tuple(r for r in rules if r.flag is not None)
        self.rules = tuple(r for r in rules if r.flag is None)
        # In request mode the reduce rules that do not hold against a request have run out now.
        self.request_reduce: tuple[str, ...] = ()
        if mode is Mode.REQUEST:
            fields: dict[str, None] = {}
            for r in all_rules:
                if r.flag is None and not r.erase and not r.rule.holds_on_request:
                    fields.update(dict.fromkeys(r.reduce_fields))
            self.request_reduce = tuple(fields)


def _compile(policy: Policy, mode: Mode, now: date) -> dict[Category, _Table]:
    periods = tuple(rule.period_on(now) for rule in policy.rules)
    key = (mode, periods)
    found: dict[Category, _Table] | None = policy.compiled.get(key)
    if found is not None:
        return found
    forced = {f.rule_id for f in policy.forced_overrides}
    by_category: dict[Category, list[_Compiled]] = {c: [] for c in Category}
    considered: dict[Category, list[_Compiled]] = {c: [] for c in Category}
    for rule, period in zip(policy.rules, periods, strict=True):
        compiled = _Compiled(rule, period, policy.fiscal_year_end, rule.id in forced, mode)
        by_category[rule.category].append(compiled)
        if mode is Mode.SWEEP or rule.holds_on_request:
            considered[rule.category].append(compiled)
    tables = {c: _Table(considered[c], mode, by_category[c]) for c in Category}
    policy.compiled[key] = tables
    return tables


# Bound once: module globals and bound methods are cheaper than attribute look-ups in the hot loop.
_KEEP, _REDUCE, _ERASE = Action.KEEP, Action.REDUCE, Action.ERASE
_getattr = getattr


def _decide(h: Holding, now: date, table: _Table, request: bool) -> Decision:
    flags = h.flags
    if flags:
        for r in table.flag_rules:
            if r.flag in flags:
                return Decision(h, _KEEP, None, r.id, r.reference, r.reason_sv, r.reason_en)
    best: _Compiled | None = None
    best_until: date | None = None
    unknown: _Compiled | None = None
    last: _Compiled | None = None
    last_until: date | None = None
    reduce_rules: list[_Compiled] | None = None
    soonest: _Compiled | None = None  # the running reduce rule that runs out first
    soonest_until: date | None = None
    for r in table.rules:
        anchor = _getattr(h, r.anchor_field)  # type: ignore[arg-type]
        if anchor is None:
            if not r.unsubscribed_is_now:
                if unknown is None or (r.erase and not unknown.erase):
                    unknown = r
                continue
            anchor = now
        until = r.cache_get(anchor)
        if until is None:
            until = r.keep_until(anchor)
        if until >= now:
            if best_until is None or until > best_until:
                best, best_until = r, until
            if not r.erase and (soonest_until is None or until < soonest_until):
                soonest, soonest_until = r, until
        elif r.erase:
            if last_until is None or until > last_until:
                last, last_until = r, until
        elif reduce_rules is None:
            reduce_rules = [r]
        else:
            reduce_rules.append(r)

    if unknown is not None and (unknown.erase or best is None):
        return Decision(h, _KEEP, None, unknown.id, unknown.reference, unknown.unknown_sv, unknown.unknown_en)
    if best is not None:
        fields = table.request_reduce if request else ()
        if reduce_rules is not None:
            fields = _union(fields, reduce_rules)
        if fields and REDUCED_FLAG not in flags:
            return Decision(
                h, _REDUCE, best_until, best.id, best.reference, best.reason_sv, best.reason_en, fields
            )
        if (
            soonest is not None
            and soonest_until is not None
            and best_until is not None
            and soonest_until < best_until
            and REDUCED_FLAG not in flags
        ):
            # Kept as it is only until a reduce rule runs out: that is the next date to plan again.
            return Decision(
                h, _KEEP, soonest_until, soonest.id, soonest.reference, soonest.reason_sv, soonest.reason_en
            )
        return Decision(h, _KEEP, best_until, best.id, best.reference, best.reason_sv, best.reason_en)
    if request:
        return Decision(
            h,
            _ERASE,
            None,
            ERASURE_REQUEST_RULE,
            ERASURE_REQUEST_REFERENCE,
            ERASURE_REQUEST_SV,
            ERASURE_REQUEST_EN,
        )
    if last is not None:
        return Decision(
            h, _ERASE, None, last.id, last.reference, last.reason_sv, last.reason_en, (), last_until
        )
    if reduce_rules is not None:
        # Only reduce rules, all run out: strip their fields; nothing says when the rest may go.
        r = reduce_rules[0]
        fields = _union((), reduce_rules)
        action = _KEEP if REDUCED_FLAG in flags else _REDUCE
        return Decision(
            h,
            action,
            None,
            r.id,
            r.reference,
            r.reason_sv,
            r.reason_en,
            () if action is _KEEP else fields,
        )
    return Decision(h, _KEEP, None, NO_RULE, "", NO_RULE_SV, NO_RULE_EN)


def _union(first: tuple[str, ...], rules: list[_Compiled]) -> tuple[str, ...]:
    if not first and len(rules) == 1:
        return rules[0].reduce_fields
    fields = dict.fromkeys(first)
    for r in rules:
        fields.update(dict.fromkeys(r.reduce_fields))
    return tuple(fields)


def plan(holdings: Iterable[Holding], policy: Policy, now: date, mode: Mode) -> Plan:
    """One decision per holding, in input order. Same inputs, same plan."""
    mode = Mode(mode)
    tables = _compile(policy, mode, now)
    request = mode is Mode.REQUEST
    return Plan(mode, now, [_decide(h, now, tables[h.category], request) for h in holdings])


class DecisionLike(Protocol):
    """What the step rows need of a decision: `Decision`, or the sweep's compact one."""

    @property
    def holding(self) -> Holding: ...
    @property
    def action(self) -> Any: ...
    @property
    def keep_until(self) -> date | None: ...
    @property
    def rule_id(self) -> str | None: ...
    @property
    def reference(self) -> str | None: ...
    @property
    def reason_sv(self) -> str: ...
    @property
    def reason_en(self) -> str: ...
    @property
    def reduce_fields(self) -> Any: ...
