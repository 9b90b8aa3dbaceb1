"""Worked examples per country preset, from shared/reference/retention-law.md. Each test names the
law it checks."""

from __future__ import annotations

from datetime import date

import pytest

from plugin.holdings import Category, Holding
from plugin.manifest import manifest_path
from plugin.retention import Action, Decision, Mode, Policy, plan
from plugin.retention.presets import parse_presets, presets


def _one(policy: Policy, holding: Holding, now: date, mode: Mode = Mode.SWEEP) -> Decision:
    return plan([holding], policy, now, mode).decisions[0]


def order(
    ordered: date, delivered: date | None = None, category: Category = Category.ACCOUNTING_RECORD
) -> Holding:
    return Holding(
        "shopify", category, "order:1001", "Order #1001", order_created=ordered, delivered=delivered
    )


# --- Sweden ---------------------------------------------------------------------------------------


def test_se_bokforingslagen_7_kap_2_par_counts_from_the_calendar_year_the_fiscal_year_ended() -> None:
    # Reference example: FYE 31 Jul 2024 → keep to 31 Dec 2031.
    policy = Policy.from_preset("SE", (7, 31))
    decision = _one(policy, order(date(2024, 3, 15)), date(2030, 1, 1))
    assert (decision.action, decision.keep_until, decision.rule_id) == (
        Action.KEEP,
        date(2031, 12, 31),
        "SE-1",
    )
    assert "7 kap. 2 §" in decision.reference
    # An order after the fiscal-year end belongs to the fiscal year ending 31 Jul 2025 → 31 Dec 2032.
    assert _one(policy, order(date(2024, 8, 1)), date(2030, 1, 1)).keep_until == date(2032, 12, 31)
    # Kept through the last day, erased from the day after.
    assert _one(policy, order(date(2024, 3, 15)), date(2031, 12, 31)).action is Action.KEEP
    gone = _one(policy, order(date(2024, 3, 15)), date(2032, 1, 1))
    assert (gone.action, gone.expired_on, gone.rule_id) == (Action.ERASE, date(2031, 12, 31), "SE-1")


def test_se_bokforingslagen_sentence_matches_the_issue_example() -> None:
    fresh = Holding(
        "shopify", Category.ACCOUNTING_RECORD, "order:1001", "Order #1001", order_created=date(2024, 11, 2)
    )
    decision = _one(Policy.from_preset("SE"), fresh, date(2026, 1, 1), Mode.REQUEST)
    assert decision.sentence("en") == (
        "Order #1001 kept until 2031-12-31: Bokföringslagen (1999:1078) 7 kap. 2 § (accounting records "
        "(voucher), 7 years after the end of the calendar year in which the fiscal year ended)."
    )
    assert decision.sentence("sv") == (
        "Order #1001 sparas till och med 2031-12-31: Bokföringslagen (1999:1078) 7 kap. 2 § "
        "(räkenskapsinformation (verifikation), 7 år efter utgången av det kalenderår "
        "då räkenskapsåret slutade)."
    )


def test_se_konsumentkoplagen_three_year_complaint_window_from_delivery() -> None:
    # SE-3: DEL + 3 years, plus the 2-month margin of the preset (reference §1.7).
    policy = Policy.from_preset("SE")
    contact = order(date(2024, 3, 1), date(2024, 3, 5), Category.ORDER_CONTACT)
    decision = _one(policy, contact, date(2025, 1, 1))
    assert (decision.action, decision.keep_until, decision.rule_id) == (
        Action.KEEP,
        date(2027, 5, 5),
        "SE-3-CONTACT",
    )
    assert "Konsumentköplagen (2022:260)" in decision.reference
    assert _one(policy, contact, date(2027, 5, 6)).action is Action.ERASE
    # The customer asking is enough for contact data: the complaint window does not hold against it.
    assert _one(policy, contact, date(2025, 1, 1), Mode.REQUEST).action is Action.ERASE


# --- Finland --------------------------------------------------------------------------------------


def test_fi_kirjanpitolaki_2_luku_10_par_vouchers_six_years_after_the_calendar_year() -> None:
    # Reference example: FYE 30 Apr 2017 → vouchers to 31 Dec 2023.
    policy = Policy.from_preset("FI", (4, 30))
    decision = _one(policy, order(date(2017, 1, 10)), date(2020, 1, 1))
    assert (decision.keep_until, decision.rule_id) == (date(2023, 12, 31), "FI-2")
    assert decision.reference == "Kirjanpitolaki 2 luku 10 §"
    assert _one(policy, order(date(2017, 1, 10)), date(2024, 1, 1)).action is Action.ERASE


def test_fi_kuluttajansuojalaki_5_luku_defect_liability_default_four_years() -> None:
    policy = Policy.from_preset("FI")
    decision = _one(policy, order(date(2024, 1, 1), date(2024, 1, 3), Category.SHIPMENT), date(2025, 1, 1))
    assert (decision.keep_until, decision.rule_id) == (date(2028, 3, 3), "FI-3-SHIPMENT")
    assert "Kuluttajansuojalaki 5 luku" in decision.reference


# --- Norway ---------------------------------------------------------------------------------------


def test_no_bokforingsloven_13_primary_documentation_five_years_after_the_fiscal_year() -> None:
    policy = Policy.from_preset("NO", (6, 30))
    decision = _one(policy, order(date(2024, 5, 10)), date(2025, 1, 1))
    assert (decision.keep_until, decision.rule_id) == (date(2029, 6, 30), "NO-1")
    assert decision.reference.startswith("Bokføringsloven § 13")


def test_no_bokforingsloven_13_packing_slips_three_and_a_half_years() -> None:
    # NO-2: FYE + 3y6m; the preset's complaint hold (forbrukerkjøpsloven § 27, 5 years) is longer.
    policy = Policy.from_preset("NO")
    shipment = order(date(2024, 5, 10), None, Category.SHIPMENT)
    assert policy.rule("NO-2-SHIPMENT").period.after(date(2024, 12, 31)) == date(2028, 6, 30)
    # No delivery date: the complaint rule cannot be counted, so the shipment is kept, to be checked.
    unknown = _one(policy, shipment, date(2030, 1, 1))
    assert (unknown.action, unknown.keep_until, unknown.rule_id) == (Action.KEEP, None, "NO-3-SHIPMENT")
    assert "delivery date unknown" in unknown.reason_en


def test_no_forbrukerkjopsloven_27_five_years_for_durable_goods() -> None:
    policy = Policy.from_preset("NO")
    shipment = order(date(2024, 5, 10), date(2024, 5, 14), Category.SHIPMENT)
    decision = _one(policy, shipment, date(2025, 1, 1))
    assert (decision.keep_until, decision.rule_id) == (date(2029, 7, 14), "NO-3-SHIPMENT")
    assert decision.reference == "Forbrukerkjøpsloven § 27"
    # A shop selling only short-lived goods may use the 2-year limit (not a statutory minimum).
    short = policy.override("NO-3-SHIPMENT", "2y2m")
    assert _one(short, shipment, date(2025, 1, 1)).keep_until == date(2028, 6, 30)  # NO-2 now wins


# --- Denmark --------------------------------------------------------------------------------------


def test_dk_bogforingsloven_10_five_years_from_the_end_of_the_fiscal_year() -> None:
    policy = Policy.from_preset("DK", (9, 30))
    decision = _one(policy, order(date(2024, 10, 1)), date(2026, 1, 1))
    assert (decision.keep_until, decision.rule_id) == (date(2030, 9, 30), "DK-1")
    assert decision.reference.startswith("Bogføringsloven § 10")


def test_dk_kobeloven_81_83_two_years_anniversary_day_included() -> None:
    policy = Policy.from_preset("DK")
    contact = order(date(2024, 6, 1), date(2024, 6, 10), Category.ORDER_CONTACT)
    decision = _one(policy, contact, date(2025, 1, 1))
    assert (decision.keep_until, decision.rule_id) == (date(2026, 8, 10), "DK-2-CONTACT")
    assert decision.reference == "Købeloven §§ 81, 83"


# --- Germany --------------------------------------------------------------------------------------


def test_de_ao_147_hgb_257_invoice_of_march_2025_kept_to_2033() -> None:
    # Reference example: invoice of 15 Mar 2025 → kept to 31 Dec 2033 (8 years, BEG IV).
    policy = Policy.from_preset("DE")
    decision = _one(policy, order(date(2025, 3, 15)), date(2026, 1, 1))
    assert (decision.keep_until, decision.rule_id) == (date(2033, 12, 31), "DE-2")
    assert (
        "§ 147" in decision.reference and "§ 257" in decision.reference and "§ 14b UStG" in decision.reference
    )


def test_de_beg_iv_2016_belege_become_destroyable_on_1_january_2025() -> None:
    policy = Policy.from_preset("DE")
    beleg = order(date(2016, 6, 1))
    before = _one(policy, beleg, date(2024, 12, 31))  # the 10-year rule still applied in 2024
    assert (before.action, before.keep_until) == (Action.KEEP, date(2026, 12, 31))
    after = _one(policy, beleg, date(2025, 1, 1))
    assert (after.action, after.expired_on) == (Action.ERASE, date(2024, 12, 31))


def test_de_bgb_438_477_two_year_warranty_from_delivery() -> None:
    policy = Policy.from_preset("DE")
    decision = _one(policy, order(date(2025, 2, 1), date(2025, 2, 3), Category.SHIPMENT), date(2025, 6, 1))
    assert (decision.keep_until, decision.rule_id) == (date(2027, 4, 3), "DE-6-SHIPMENT")
    assert decision.reference == "§§ 438, 477 BGB"


# --- All presets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("country", ["SE", "FI", "NO", "DK", "DE"])
def test_every_preset_covers_every_category_and_cites_its_sources(country: str) -> None:
    rules = Policy.from_preset(country).rules
    assert {r.category for r in rules if r.flag is None} == set(Category)
    for rule in rules:
        assert rule.reference and rule.reason_sv and rule.reason_en
    bookkeeping = [r for r in rules if r.category is Category.ACCOUNTING_RECORD and r.statutory]
    assert len(bookkeeping) == 1 and bookkeeping[0].holds_on_request and bookkeeping[0].sources


def test_the_manifest_is_where_the_presets_live() -> None:
    assert manifest_path().name == "manifest.toml"
    assert set(presets()) == {"SE", "FI", "NO", "DK", "DE", "STRICTEST"}


def test_a_broken_preset_is_refused_with_the_key_named() -> None:
    text = manifest_path().read_text(encoding="utf-8").replace('period = "7y"', 'period = "seven"', 1)
    with pytest.raises(ValueError, match=r"retention\.presets\.SE\.\d+\.period: .*expected a period"):
        parse_presets(text)


def test_29_february_anchors_and_february_fiscal_years() -> None:
    # DK-1 (Bogføringsloven § 10) with a fiscal year ending on the last day of February:
    # FYE 29 Feb 2024 + 5 years → 28 Feb 2029; FYE 28 Feb 2027 + 5 years → 29 Feb 2032.
    dk = Policy.from_preset("DK", (2, 28))
    assert _one(dk, order(date(2024, 2, 29)), date(2025, 1, 1)).keep_until == date(2029, 2, 28)
    assert _one(dk, order(date(2026, 3, 1)), date(2027, 1, 1)).keep_until == date(2032, 2, 29)
    # DK-2 (Købeloven): delivered 29 Feb 2024 + 2 years 2 months → 29 Apr 2026.
    contact = order(date(2024, 2, 20), date(2024, 2, 29), Category.ORDER_CONTACT)
    assert _one(dk, contact, date(2025, 1, 1)).keep_until == date(2026, 4, 29)
    # FI-2 (Kirjanpitolaki 2:10): an order on 29 Feb 2024 in a fiscal year ending 30 Apr 2024 → 31 Dec 2030.
    fi = Policy.from_preset("FI", (4, 30))
    assert _one(fi, order(date(2024, 2, 29)), date(2025, 1, 1)).keep_until == date(2030, 12, 31)
    # DE-2 (§ 147 AO): a Beleg of 29 Feb 2028 → 31 Dec 2036.
    assert _one(Policy.from_preset("DE"), order(date(2028, 2, 29)), date(2029, 1, 1)).keep_until == date(
        2036, 12, 31
    )
