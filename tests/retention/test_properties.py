"""Property tests: the planner's promises hold for any holdings, policy and day.

The oracles below recompute every rule from `Rule.keep_until` directly (no planner caches)."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.holdings import Category, Holding
from plugin.retention import Action, Mode, Policy, Rule, plan
from plugin.retention.rules import ANCHOR_FIELD, Anchor

DAYS = st.dates(min_value=date(2000, 1, 1), max_value=date(2045, 12, 31))
MAYBE_DAY = st.none() | DAYS
FLAGS = st.frozensets(st.sampled_from(["legal_hold", "open_return", "reduced", "bounced"]), max_size=2)


@st.composite
def fiscal_year_ends(draw: st.DrawFn) -> tuple[int, int]:
    month = draw(st.integers(1, 12))
    last = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return month, draw(st.sampled_from([last, draw(st.integers(1, last))]))


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    policy = Policy.from_preset(
        draw(st.sampled_from(["SE", "FI", "NO", "DK", "DE", "STRICTEST"])), draw(fiscal_year_ends())
    )
    # Shop overrides: longer periods anywhere, shorter ones only where no statutory minimum applies.
    for rule in draw(
        st.lists(st.sampled_from([r for r in policy.rules if r.flag is None]), max_size=3, unique=True)
    ):
        extra = draw(st.integers(-24, 60))
        if rule.statutory and extra < 0:
            extra = -extra
        months = rule.period.years * 12 + rule.period.months + extra
        policy = policy.override(rule.id, f"{max(months, 0)}m{rule.period.days}d")
    return policy


holdings = st.builds(
    Holding,
    system=st.just("shopify"),
    category=st.sampled_from(list(Category)),
    ref=st.just("order:1"),
    label=st.just("Order #1"),
    order_created=MAYBE_DAY,
    delivered=MAYBE_DAY,
    last_activity=MAYBE_DAY,
    unsubscribed=MAYBE_DAY,
    flags=FLAGS,
)


def _rules(policy: Policy, h: Holding) -> list[Rule]:
    return [r for r in policy.rules if r.category is h.category]


def _until(rule: Rule, policy: Policy, h: Holding, now: date, mode: Mode) -> date | None:
    """The rule's last day for this holding; None = held with no known end."""
    if rule.anchor is Anchor.WHILE_FLAGGED:
        return None if rule.flag in h.flags else date.min
    field = ANCHOR_FIELD[rule.anchor]
    assert field is not None
    anchor = getattr(h, field)
    if anchor is None and mode is Mode.REQUEST and rule.anchor is Anchor.UNSUBSCRIBED:
        anchor = now
    if anchor is None:
        return None
    return rule.keep_until(anchor, policy.fiscal_year_end, rule.period_on(now))


@settings(max_examples=300, deadline=None)
@given(policies(), st.lists(holdings, max_size=8), DAYS)
def test_request_never_erases_inside_a_mandatory_keep(policy: Policy, hs: list[Holding], now: date) -> None:
    for h, d in zip(hs, plan(hs, policy, now, Mode.REQUEST).decisions, strict=True):
        held = [
            r
            for r in _rules(policy, h)
            if r.holds_on_request
            and ((until := _until(r, policy, h, now, Mode.REQUEST)) is None or until >= now)
        ]
        if held:
            assert d.action is not Action.ERASE, (h, held)
            if d.keep_until is not None:
                assert d.keep_until >= now


@settings(max_examples=300, deadline=None)
@given(policies(), st.lists(holdings, max_size=8), DAYS)
def test_sweep_never_erases_anything_not_expired(policy: Policy, hs: list[Holding], now: date) -> None:
    for h, d in zip(hs, plan(hs, policy, now, Mode.SWEEP).decisions, strict=True):
        if d.action is Action.ERASE:
            rules = _rules(policy, h)
            assert rules
            for r in rules:
                until = _until(r, policy, h, now, Mode.SWEEP)
                assert until is not None and until < now, (h, r.id, until)
        elif d.keep_until is not None:
            assert d.keep_until >= now


@settings(max_examples=300, deadline=None)
@given(policies(), st.lists(holdings, max_size=8), DAYS, st.integers(0, 5000), st.sampled_from(list(Mode)))
def test_moving_now_later_never_turns_an_erase_into_a_keep(
    policy: Policy, hs: list[Holding], now: date, later: int, mode: Mode
) -> None:
    then = now + timedelta(days=later)
    first = plan(hs, policy, now, mode).decisions
    second = plan(hs, policy, then, mode).decisions
    for a, b in zip(first, second, strict=True):
        if a.action is Action.ERASE:
            assert b.action is Action.ERASE, (a, b)


@settings(max_examples=200, deadline=None)
@given(policies(), st.lists(holdings, max_size=8), DAYS, st.sampled_from(list(Mode)))
def test_plans_are_deterministic(policy: Policy, hs: list[Holding], now: date, mode: Mode) -> None:
    twin = Policy.from_toml(policy.to_toml())  # a fresh policy: no shared caches
    assert plan(hs, policy, now, mode) == plan(hs, twin, now, mode) == plan(hs, policy, now, mode)


@settings(max_examples=200, deadline=None)
@given(policies(), holdings, DAYS, st.sampled_from(list(Mode)))
def test_every_decision_explains_itself(policy: Policy, h: Holding, now: date, mode: Mode) -> None:
    d = plan([h], policy, now, mode).decisions[0]
    assert d.rule_id and d.reason_sv and d.reason_en
    for lang in ("sv", "en"):
        text = d.sentence(lang)
        assert text.startswith(h.label) and text.endswith(".")
        if d.keep_until is not None:
            assert d.keep_until.isoformat() in text
    assert (d.action is Action.REDUCE) == bool(d.reduce_fields)
