"""Shop policies: TOML in and out, overrides, statutory minimums, forced overrides, fallbacks."""

from __future__ import annotations

from datetime import date

import pytest

from plugin.holdings import Category, Holding
from plugin.retention import (
    Action,
    Mode,
    Period,
    Policy,
    PolicyError,
    StatutoryMinimumError,
    default_policy_for,
    plan,
)

SHOP_PROMISES = """
preset = "SE"
fiscal_year_end = "06-30"

[overrides.SE-1]
period = "10y"

[overrides.SE-3-SHIPMENT]
period = "36m"

[overrides.SE-4-ACCOUNT]
period = "24m"
"""


def test_the_promises_real_shops_make() -> None:
    # "Order information is deleted after 10 years", "deleted from the carriers within 36 months",
    # "customer data is deleted within 24 months after the relationship ends".
    policy = Policy.from_toml(SHOP_PROMISES)
    assert policy.fiscal_year_end == (6, 30)
    assert policy.rule("SE-1").period == Period(10) and policy.rule("SE-1").preset_period == Period(7)
    holdings = [
        Holding("shopify", Category.ACCOUNTING_RECORD, "order:1", "Order #1", order_created=date(2024, 7, 1)),
        Holding("postnord", Category.SHIPMENT, "shipment:1", "Shipment 1", delivered=date(2024, 7, 3)),
        Holding(
            "shopify", Category.CUSTOMER_ACCOUNT, "customer:1", "Customer 1", last_activity=date(2024, 7, 3)
        ),
    ]
    account, shipment, customer = plan(holdings, policy, date(2025, 1, 1), Mode.SWEEP).decisions
    assert account.keep_until == date(2035, 12, 31)  # FY ends 30 Jun 2025 → 31 Dec 2025 + 10 years
    assert "shop policy (preset 7 years)" in account.reason_en
    assert "10 years after" in account.reason_en
    assert shipment.keep_until == date(2027, 7, 3)
    assert customer.keep_until == date(2026, 7, 3)


def test_toml_round_trip() -> None:
    policy = Policy.from_toml(SHOP_PROMISES)
    assert Policy.from_toml(policy.to_toml()) == policy
    assert Policy.from_toml(policy.to_toml()).to_toml() == policy.to_toml()
    plain = Policy.from_preset("DE", (3, 31))
    assert Policy.from_toml(plain.to_toml()) == plain


def test_override_below_a_statutory_minimum_is_refused() -> None:
    with pytest.raises(
        StatutoryMinimumError, match=r"overrides\.SE-1\.period: 5y is shorter than the statutory minimum 7y"
    ):
        Policy.from_toml('preset = "SE"\n[overrides.SE-1]\nperiod = "5y"\n')
    with pytest.raises(StatutoryMinimumError):
        Policy.from_preset("DE").override("DE-2", "95m")  # 7 years 11 months
    # Equal or longer is fine, also in other units.
    assert Policy.from_preset("DE").override("DE-2", "96m").rule("DE-2").period == Period(0, 96)


def test_a_forced_override_is_recorded_with_who_and_why() -> None:
    text = (
        'preset = "SE"\n[overrides.SE-1]\nperiod = "5y"\nforce = true\n'
        'forced_by = "CFO"\nforced_reason = "Skatteverket decision 2026-123"\n'
    )
    policy = Policy.from_toml(text)
    (forced,) = policy.forced_overrides
    assert (forced.rule_id, forced.period, forced.statutory_period) == ("SE-1", Period(5), Period(7))
    assert (forced.forced_by, forced.forced_reason) == ("CFO", "Skatteverket decision 2026-123")
    assert Policy.from_toml(policy.to_toml()).forced_overrides == policy.forced_overrides
    decision = plan(
        [
            Holding(
                "shopify", Category.ACCOUNTING_RECORD, "order:1", "Order #1", order_created=date(2024, 1, 1)
            )
        ],
        policy,
        date(2025, 1, 1),
        Mode.SWEEP,
    ).decisions[0]
    assert decision.keep_until == date(2029, 12, 31)
    assert "below the statutory minimum of 7 years, forced" in decision.reason_en
    # The forcing person is kept in the policy, never in the decision.
    assert "CFO" not in str(decision.to_dict())


def test_forcing_needs_who_and_why() -> None:
    with pytest.raises(PolicyError, match=r"overrides\.SE-1: force = true needs forced_by and forced_reason"):
        Policy.from_toml('preset = "SE"\n[overrides.SE-1]\nperiod = "5y"\nforce = true\n')
    with pytest.raises(PolicyError, match="forced_by and forced_reason"):
        Policy.from_preset("SE").override("SE-1", "5y", forced_by="CFO")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('preset = "XX"\n', r"preset: unknown country 'XX'"),
        ('preset = "SE"\nfiscal_year_end = "02-30"\n', r"fiscal_year_end: '02-30' is not a day of the year"),
        ('preset = "SE"\n[overrides.SE-9]\nperiod = "1y"\n', r"overrides\.SE-9: no rule 'SE-9'"),
        (
            'preset = "SE"\n[overrides.SE-1]\nperiod = "ten years"\n',
            r"overrides\.SE-1\.period: expected a period",
        ),
        ('preset = "SE"\n[overrides.SE-1]\nlength = "10y"\n', r"overrides\.SE-1\.length: Extra inputs"),
        (
            'preset = "SE"\n[overrides.HOLD-SHIPMENT]\nperiod = "1y"\n',
            r"overrides\.HOLD-SHIPMENT: a rule held while",
        ),
        ('preset = "SE"\nretention = 3\n', r"retention: Extra inputs are not permitted"),
        ("fiscal_year_end = '12-31'\n", r"preset: Field required"),
        ('preset = "SE"\n[overrides\n', r"policy: not valid TOML"),
    ],
)
def test_errors_name_the_key_and_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        Policy.from_toml(text)


def test_policy_error_is_a_value_error() -> None:
    assert issubclass(PolicyError, ValueError) and issubclass(StatutoryMinimumError, PolicyError)


@pytest.mark.parametrize("country", ["SE", "fi", "NO", "DK", "DE"])
def test_default_policy_for_a_covered_country_is_its_preset(country: str) -> None:
    assert default_policy_for(country) == Policy.from_preset(country.upper())


@pytest.mark.parametrize("country", [None, "", "AT", "US"])
def test_other_countries_fall_back_to_the_longest_keep_of_every_preset(country: str | None) -> None:
    policy = default_policy_for(country)
    assert policy.preset == "STRICTEST"
    assert policy.country == (country or None)
    order = Holding(
        "shopify", Category.ACCOUNTING_RECORD, "order:1", "Order #1", order_created=date(2025, 3, 15)
    )
    decision = plan([order], policy, date(2026, 1, 1), Mode.SWEEP).decisions[0]
    # DE-2 (31 Dec 2033) outlasts SE-1 (31 Dec 2032), FI-2, NO-1 and DK-1.
    assert (decision.rule_id, decision.keep_until) == ("DE-2", date(2033, 12, 31))
    for preset in ("SE", "FI", "NO", "DK", "DE"):
        single = plan([order], Policy.from_preset(preset), date(2026, 1, 1), Mode.SWEEP).decisions[0]
        assert single.keep_until is not None and single.keep_until <= date(2033, 12, 31)
    assert Policy.from_toml(policy.to_toml()) == policy


def test_fiscal_year_end_can_be_changed_and_is_validated() -> None:
    assert Policy.from_preset("SE").with_fiscal_year_end((6, 30)).fiscal_year_end == (6, 30)
    with pytest.raises(PolicyError, match="fiscal_year_end"):
        Policy.from_preset("SE", (2, 30))


def test_request_mode_ignores_rules_that_do_not_hold_against_a_request() -> None:
    policy = Policy.from_toml(SHOP_PROMISES)
    account = Holding(
        "shopify", Category.CUSTOMER_ACCOUNT, "customer:1", "Customer 1", last_activity=date(2025, 1, 1)
    )
    assert plan([account], policy, date(2025, 2, 1), Mode.REQUEST).decisions[0].action is Action.ERASE


def test_minimisation_period_defaults_to_three_years_and_round_trips() -> None:
    default = Policy.from_preset("SE")
    assert default.minimise_after == Period(years=3) and default.minimise_setting is None
    assert "minimise_requests_after" not in default.to_toml()
    own = Policy.from_toml('preset = "SE"\nminimise_requests_after = "18m"\n')
    assert own.minimise_after == Period(months=18)
    assert Policy.from_toml(own.to_toml()) == own and own != default
    # Kept through other edits, and back to the default with None.
    assert own.override("SE-1", "10y").minimise_after == Period(months=18)
    assert own.with_minimise_after(None) == default


@pytest.mark.parametrize("text", ['"7d"', '"soon"'])
def test_minimisation_period_shorter_than_a_month_or_unreadable_is_refused(text: str) -> None:
    with pytest.raises(PolicyError, match="minimise_requests_after"):
        Policy.from_toml(f'preset = "SE"\nminimise_requests_after = {text}\n')
