"""Retention: rules, country presets, shop policies and the pure planner.

Public API (other stages import only these names)::

    from plugin.retention import Mode, Action, Policy, PolicyError, StatutoryMinimumError
    from plugin.retention import default_policy_for, shop_policy, plan, Plan, Decision, local_date
"""

from plugin.retention.dates import local_date
from plugin.retention.errors import PolicyError, StatutoryMinimumError, StoredPolicyError
from plugin.retention.planner import Decision, DecisionLike, Plan, plan
from plugin.retention.policy import ForcedOverride, Override, Policy, default_policy_for, shop_policy
from plugin.retention.rules import Action, Anchor, Mode, Period, Rule

__all__ = [
    "Action",
    "Anchor",
    "Decision",
    "DecisionLike",
    "ForcedOverride",
    "Mode",
    "Override",
    "Period",
    "Plan",
    "Policy",
    "PolicyError",
    "Rule",
    "StatutoryMinimumError",
    "StoredPolicyError",
    "default_policy_for",
    "local_date",
    "plan",
    "shop_policy",
]
