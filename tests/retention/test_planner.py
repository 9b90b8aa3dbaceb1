"""The planner's rules of decision: several rules on one holding, missing dates, flags, reductions,
both modes, and the sentence and JSON forms of a decision."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from plugin.holdings import Category, Holding
from plugin.retention import Action, Mode, Policy, plan

SE = Policy.from_preset("SE")
NOW = date(2026, 6, 1)


def holding(category: Category, **fields: object) -> Holding:
    return Holding("shopify", category, f"{category.value}:1", f"{category.value} #1", **fields)  # type: ignore[arg-type]


def decide(h: Holding, mode: Mode = Mode.SWEEP, policy: Policy = SE, now: date = NOW):  # type: ignore[no-untyped-def]
    return plan([h], policy, now, mode).decisions[0]


def test_the_longest_mandatory_keep_wins_and_the_reason_names_it() -> None:
    # NO shipments: packing slips (FYE + 3y6m) against complaints (DEL + 5y2m).
    policy = Policy.from_preset("NO")
    early = holding(Category.SHIPMENT, order_created=date(2024, 1, 10), delivered=date(2024, 1, 12))
    d = decide(early, Mode.REQUEST, policy)
    assert (d.action, d.keep_until, d.rule_id) == (Action.KEEP, date(2029, 3, 12), "NO-3-SHIPMENT")
    short = policy.override("NO-3-SHIPMENT", "1y")
    d = decide(early, Mode.REQUEST, short)
    assert (d.keep_until, d.rule_id) == (date(2028, 6, 30), "NO-2-SHIPMENT")
    assert "Bokføringsloven § 13" in d.reference


def test_a_missing_date_never_leads_to_erasure() -> None:
    for mode in Mode:
        d = decide(holding(Category.ACCOUNTING_RECORD), mode)
        assert (d.action, d.keep_until, d.rule_id) == (Action.KEEP, None, "SE-1")
        assert d.reason_en.startswith("order date unknown") and "(check)" in d.reason_en
        assert d.reason_sv.startswith("orderdatum saknas")
    d = decide(holding(Category.ORDER_CONTACT, order_created=date(2010, 1, 1)))
    assert (d.action, d.keep_until) == (Action.KEEP, None)
    assert "delivery date unknown" in d.reason_en


def test_sweep_only_erases_what_has_expired() -> None:
    contact = holding(Category.ORDER_CONTACT, delivered=date(2023, 3, 31))
    assert decide(contact, now=date(2026, 5, 31)).action is Action.KEEP
    gone = decide(contact, now=date(2026, 6, 1))
    assert (gone.action, gone.expired_on, gone.keep_until) == (Action.ERASE, date(2026, 5, 31), None)
    assert "which has run out" in gone.sentence("en") and "som har löpt ut" in gone.sentence("sv")


def test_request_erases_what_no_rule_holds() -> None:
    d = decide(holding(Category.CUSTOMER_ACCOUNT, last_activity=date(2026, 5, 1)), Mode.REQUEST)
    assert (d.action, d.rule_id, d.reference) == (Action.ERASE, "GDPR-17", "GDPR art. 17(1)")
    assert d.sentence("en") == (
        "customer_account #1 erased now: GDPR art. 17(1) "
        "(erasure requested; no rule that overrides a request keeps this)."
    )


def test_an_order_under_bookkeeping_is_kept_whole_even_on_request() -> None:
    # Archived räkenskapsinformation is not edited (reference §2.2); Shopify's own customer erasure
    # redacts the name and address on orders while keeping the voucher.
    d = decide(holding(Category.ACCOUNTING_RECORD, order_created=date(2026, 5, 1)), Mode.REQUEST)
    assert (d.action, d.keep_until, d.rule_id, d.reduce_fields) == (
        Action.KEEP,
        date(2033, 12, 31),
        "SE-1",
        (),
    )


def test_a_keep_names_the_next_expiry_when_a_reduce_rule_runs_out_first() -> None:
    unsubscribed_today = holding(Category.NEWSLETTER, unsubscribed=NOW)
    d = decide(unsubscribed_today)
    assert (d.action, d.keep_until, d.rule_id) == (Action.KEEP, NOW, "MK-1-PROFILE")
    tomorrow = decide(unsubscribed_today, now=NOW + timedelta(days=1))
    assert (tomorrow.action, tomorrow.keep_until, tomorrow.rule_id) == (
        Action.REDUCE,
        date(2029, 6, 1),
        "MK-1-SUPPRESSION",
    )
    # Once reduced, it is plainly kept until the suppression entry runs out.
    done = holding(Category.NEWSLETTER, unsubscribed=NOW, flags=frozenset({"reduced"}))
    assert decide(done, now=NOW + timedelta(days=1))[1:3] == (Action.KEEP, date(2029, 6, 1))


def test_newsletter_becomes_a_suppression_entry() -> None:
    subscribed = holding(Category.NEWSLETTER)
    d = decide(subscribed)
    assert (d.action, d.keep_until) == (Action.KEEP, None)
    assert "still subscribed" in d.reason_en and "(check)" not in d.reason_en
    # The request is the opt-out: the profile goes, the suppression entry stays 3 years.
    d = decide(subscribed, Mode.REQUEST)
    assert (d.action, d.keep_until, d.rule_id) == (Action.REDUCE, date(2029, 6, 1), "MK-1-SUPPRESSION")
    assert "name" in d.reduce_fields and "phone" in d.reduce_fields
    unsubscribed = holding(Category.NEWSLETTER, unsubscribed=date(2024, 1, 15))
    d = decide(unsubscribed)
    assert (d.action, d.keep_until) == (Action.REDUCE, date(2027, 1, 15))
    assert decide(unsubscribed, now=date(2027, 1, 16)).action is Action.ERASE


@pytest.mark.parametrize("mode", list(Mode))
def test_a_legal_hold_keeps_everything(mode: Mode) -> None:
    for category in Category:
        h = holding(
            category,
            order_created=date(2000, 1, 1),
            delivered=date(2000, 1, 2),
            last_activity=date(2000, 1, 3),
            unsubscribed=date(2000, 1, 4),
            flags=frozenset({"legal_hold"}),
        )
        d = decide(h, mode)
        assert (d.action, d.keep_until, d.rule_id) == (Action.KEEP, None, f"HOLD-{category.value.upper()}")


def test_an_open_return_keeps_the_order_data() -> None:
    h = holding(Category.ORDER_CONTACT, delivered=date(2026, 5, 20), flags=frozenset({"open_return"}))
    d = decide(h, Mode.REQUEST)
    assert (d.action, d.rule_id) == (Action.KEEP, "RETURN-ORDER_CONTACT")
    assert "open return" in d.sentence("en")


def test_app_request_data_stays_while_the_request_runs() -> None:
    running = holding(Category.APP_REQUEST_DATA)
    assert decide(running, Mode.REQUEST).action is Action.KEEP
    done = holding(Category.APP_REQUEST_DATA, last_activity=date(2026, 4, 1))
    assert decide(done).action is Action.ERASE
    assert decide(done, now=date(2026, 5, 1)).keep_until == date(2026, 5, 1)


def test_a_category_without_rules_is_kept_in_a_sweep() -> None:
    from plugin.retention.presets import preset_rules

    bare = Policy.from_preset("SE")
    bare.rules = tuple(r for r in preset_rules("SE") if r.category is not Category.SHIPMENT)
    bare.compiled.clear()
    h = holding(Category.SHIPMENT, delivered=date(2000, 1, 1))
    assert (decide(h, Mode.SWEEP, bare).action, decide(h, Mode.SWEEP, bare).rule_id) == (
        Action.KEEP,
        "NO-RULE",
    )
    assert decide(h, Mode.REQUEST, bare).action is Action.ERASE


def test_decisions_keep_input_order_and_render_in_both_languages() -> None:
    hs = [holding(c, order_created=date(2025, 1, 1), delivered=date(2025, 1, 3)) for c in Category]
    result = plan(hs, SE, NOW, Mode.SWEEP)
    assert [d.holding for d in result.decisions] == hs
    for d in result.decisions:
        assert d.sentence("sv") != d.sentence("en")
        assert d.sentence("en").startswith(d.holding.label)
    with pytest.raises(ValueError, match="lang"):
        result.decisions[0].sentence("de")


def test_to_dict_is_json_safe_and_carries_no_personal_data() -> None:
    h = holding(Category.NEWSLETTER, unsubscribed=date(2026, 1, 15))
    payload = plan([h], SE, NOW, Mode.SWEEP).to_dict()
    assert json.loads(json.dumps(payload))["decisions"][0] == {
        "system": "shopify",
        "category": "newsletter",
        "ref": "newsletter:1",
        "label": "newsletter #1",
        "action": "reduce",
        "keep_until": "2029-01-15",
        "rule": "MK-1-SUPPRESSION",
        "reference": "GDPR art. 21(3), art. 30(1)(f)",
        "reason_sv": "spärrpost (nyckelhashad e-post, datum, kanal) så att personen inte läggs till igen, "
        "3 år efter avregistrering eller studs",
        "reason_en": "suppression entry (keyed hash of the e-mail, date, channel) so the person is not "
        "re-added, 3 years after unsubscribing or bouncing",
        "reduce_fields": ["name", "phone", "address", "profile_properties", "activity_history"],
        "expired_on": None,
    }
    assert payload["mode"] == "sweep" and payload["now"] == "2026-06-01"
    gone = plan([h], SE, date(2029, 1, 16), Mode.SWEEP).decisions[0].to_dict()
    assert (gone["action"], gone["keep_until"], gone["expired_on"]) == ("erase", None, "2029-01-15")


def test_mode_accepts_its_string_value() -> None:
    h = holding(Category.CUSTOMER_ACCOUNT, last_activity=date(2026, 5, 1))
    assert plan([h], SE, NOW, "request").decisions[0].action is Action.ERASE  # type: ignore[arg-type]


def test_planning_leaves_the_garbage_collector_as_it_found_it() -> None:
    import gc

    h = holding(Category.CUSTOMER_ACCOUNT, last_activity=date(2026, 5, 1))
    assert gc.isenabled()
    plan([h], SE, NOW, Mode.SWEEP)
    assert gc.isenabled()
    gc.disable()
    try:
        plan([h], SE, NOW, Mode.SWEEP)
        assert not gc.isenabled()
    finally:
        gc.enable()
