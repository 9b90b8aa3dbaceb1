"""Planning once per distinct set of dates gives exactly the planner's own verdict per holding."""

from __future__ import annotations

from datetime import timedelta

from plugin.shopify.holdings import customer_holdings, order_holdings
from plugin.sweeps.memo import MemoPlanner, with_holding
from plugin.sweeps.wiring import shop_policy, sweep_planner
from tests.sweeps.shopdata import POLICY_TOML, TODAY, TZ, build_shop


def verdicts(decisions: list[object]) -> list[tuple[object, ...]]:
    return [(d.action, d.keep_until, d.rule_id, d.reason_en, d.reduce_fields) for d in decisions]  # type: ignore[attr-defined]


def test_memo_planner_matches_the_planner_holding_by_holding() -> None:
    shop = build_shop(n_orders=2000, n_customers=300, seed=11)
    holdings = [h for o in shop.orders for h in order_holdings(o, TZ)]
    holdings += [h for c in shop.customers for h in customer_holdings(c, TZ)]
    plain = sweep_planner(shop_policy(POLICY_TOML, "SE"))
    memo = MemoPlanner(plain, max_entries=500)  # small: the cache is cleared along the way too

    expected = list(plain(holdings, TODAY))
    got: list[object] = []
    for start in range(0, len(holdings), 700):
        got.extend(memo(holdings[start : start + 700], TODAY))

    assert verdicts(got) == verdicts(expected)
    assert memo.asked < len(holdings)  # the repeated dates were not planned again
    # A verdict re-targeted at its own holding is the planner's decision about that holding.
    for holding, decision in zip(holdings[:50], got[:50], strict=True):
        assert with_holding(decision, holding).holding is holding  # type: ignore[arg-type]
    # A new day clears the cache: verdicts are for the day asked about.
    later = memo(holdings[:100], TODAY + timedelta(days=4000))
    assert verdicts(list(later)) == verdicts(list(plain(holdings[:100], TODAY + timedelta(days=4000))))
