"""A shop's effective policy has one owner, `plugin.retention.shop_policy`, with one failure rule."""

from __future__ import annotations

import pytest

from plugin.admin.policy_view import shown_policy
from plugin.models import Shop
from plugin.retention import Policy, StoredPolicyError, default_policy_for, shop_policy

STORED = 'preset = "SE"\n\n[overrides.SE-1]\nperiod = "10y"\n'
BROKEN = 'preset = "SE"\n\n[overrides.NO-SUCH-RULE]\nperiod = "10y"\n'


def test_without_a_stored_policy_the_country_default_is_in_force() -> None:
    assert shop_policy(Shop(domain="a.myshopify.com", country="FI")) == default_policy_for("FI")
    assert shop_policy(None) == default_policy_for(None)


def test_a_stored_policy_is_in_force() -> None:
    assert shop_policy(Shop(domain="a.myshopify.com", country="FI", policy_toml=STORED)) == Policy.from_toml(
        STORED
    )


def test_a_stored_policy_the_engine_refuses_is_an_error_for_everyone_and_the_admin_says_so() -> None:
    shop = Shop(domain="a.myshopify.com", country="SE", policy_toml=BROKEN)
    with pytest.raises(StoredPolicyError, match="nothing is planned, swept or minimised"):
        shop_policy(shop)
    # The policy page offers the country default as the starting point, with the problem beside it.
    shown, problem = shown_policy(shop)
    assert shown == default_policy_for("SE")
    assert problem is not None and "NO-SUCH-RULE" in problem
    assert shown_policy(Shop(domain="a.myshopify.com", country="SE", policy_toml=STORED)) == (
        Policy.from_toml(STORED),
        None,
    )
