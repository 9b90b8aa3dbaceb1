"""`gallra policy show` and `gallra policy explain`: the effective rules, and what they decide for one
order of one customer. Both interfaces are stable: other checks parse their `--json` output."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import date
from typing import Annotated, Any

import typer

from plugin.holdings import SHOPIFY, Category, Holding
from plugin.ledger import load_shop
from plugin.retention.dates import format_month_day, parse_month_day
from plugin.retention.errors import PolicyError
from plugin.retention.planner import plan
from plugin.retention.policy import Policy, shop_policy
from plugin.retention.rules import Mode
from plugin.retention.sentences import rule_reason
from plugin.runtime import Runtime
from plugin.settings import load_settings

policy_app = typer.Typer(
    help="Retention policies: the effective rules, and what they decide.", no_args_is_help=True
)

# What `explain` plans for one order of one customer (Gallra's own request data is not about an order).
EXPLAIN_HOLDINGS: tuple[tuple[Category, str, str], ...] = (
    (Category.ACCOUNTING_RECORD, SHOPIFY, "Order (accounting record)"),
    (Category.ORDER_CONTACT, SHOPIFY, "Order contact data"),
    (Category.SHIPMENT, "carrier", "Shipment"),
    (Category.NEWSLETTER, "newsletter", "Newsletter subscription"),
    (Category.CUSTOMER_ACCOUNT, SHOPIFY, "Customer account"),
)


def _fail(message: str) -> typer.Exit:
    print(f"gallra: {message}", file=sys.stderr)
    return typer.Exit(2)


def _date(name: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _fail(f"{name}: expected YYYY-MM-DD, got {value!r}") from None


def _fye(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        return parse_month_day(value)
    except ValueError as exc:
        raise _fail(f"--fiscal-year-end: {exc}") from None


async def _shop_policy(domain: str) -> Policy:

    runtime = Runtime.build(load_settings())
    try:
        async with runtime.db.session() as session:
            shop = await load_shop(session, domain)
    finally:
        await runtime.close()
    if shop is None:
        raise _fail(f"--shop: no shop {domain!r} in the database")
    return shop_policy(shop)


def policy_json(policy: Policy) -> dict[str, Any]:
    forced = {f.rule_id for f in policy.forced_overrides}
    return {
        "preset": policy.preset,
        "country": policy.country,
        "fiscal_year_end": format_month_day(policy.fiscal_year_end),
        # Finished requests drop their subject data after this (plugin.minimise).
        "minimise_requests_after": str(policy.minimise_after),
        "minimise_is_default": policy.minimise_setting is None,
        "rules": [
            {
                "id": r.id,
                "category": r.category.value,
                "period": str(r.period),
                "anchor": r.anchor.value,
                "at_expiry": r.at_expiry.value,
                "statutory": r.statutory,
                "holds_on_request": r.holds_on_request,
                "flag": r.flag,
                "reduce_fields": list(r.reduce_fields),
                "previous_period": str(r.previous_period) if r.previous_period else None,
                "period_since": r.period_since.isoformat() if r.period_since else None,
                "preset_period": str(r.preset_period) if r.preset_period else None,
                "reference": r.reference,
                "reason_sv": rule_reason(r, "sv", forced=r.id in forced),
                "reason_en": rule_reason(r, "en", forced=r.id in forced),
            }
            for r in policy.rules
        ],
        "forced_overrides": [
            {
                "rule": f.rule_id,
                "period": str(f.period),
                "statutory_period": str(f.statutory_period),
                "reference": f.reference,
                "forced_by": f.forced_by,
                "forced_reason": f.forced_reason,
            }
            for f in policy.forced_overrides
        ],
    }


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _policy_text(policy: Policy) -> str:
    doc = policy_json(policy)
    head = (
        f"Retention policy: preset {doc['preset']}, country {doc['country'] or '-'}, "
        f"fiscal year ends {doc['fiscal_year_end']}"
    )
    rows = [["RULE", "CATEGORY", "KEEP", "COUNTED FROM", "THEN", "STATUTORY", "ON REQUEST", "REFERENCE"]]
    for r in doc["rules"]:
        keep = f"while {r['flag']}" if r["flag"] else r["period"]
        if r["preset_period"]:
            keep += f" (preset {r['preset_period']})"
        if r["previous_period"]:
            keep += f" ({r['previous_period']} before {r['period_since']})"
        then = r["at_expiry"] + (f" {','.join(r['reduce_fields'])}" if r["reduce_fields"] else "")
        rows.append(
            [
                r["id"],
                r["category"],
                keep,
                "-" if r["flag"] else r["anchor"],
                then,
                "yes" if r["statutory"] else "no",
                "holds" if r["holds_on_request"] else "erased",
                r["reference"],
            ]
        )
    lines = [head, "", _table(rows)]
    default = " (the default: the general claims limitation)" if doc["minimise_is_default"] else ""
    lines.append(
        f"\nFinished requests drop their subject's e-mail, phone, order ids and references after "
        f"{doc['minimise_requests_after']}{default}; their certificate and evidence stay."
    )
    for f in doc["forced_overrides"]:
        lines.append(
            f"\nFORCED: {f['rule']} set to {f['period']}, below the statutory {f['statutory_period']} "
            f"({f['reference']}) by {f['forced_by']}: {f['forced_reason']}"
        )
    return "\n".join(lines)


@policy_app.command("show")
def show(
    country: Annotated[
        str | None, typer.Option("--country", help="Country preset: SE, FI, NO, DK, DE.")
    ] = None,
    shop: Annotated[str | None, typer.Option("--shop", help="A shop's stored policy, by domain.")] = None,
    fiscal_year_end: Annotated[str | None, typer.Option("--fiscal-year-end", help="MM-DD")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The effective retention rules as a table."""
    if (country is None) == (shop is None):
        raise _fail("give exactly one of --country or --shop")
    fye = _fye(fiscal_year_end)
    try:
        policy = asyncio.run(_shop_policy(shop)) if shop else Policy.from_preset(country or "")
        if fye is not None:
            policy = policy.with_fiscal_year_end(fye)
    except PolicyError as exc:
        raise _fail(str(exc)) from None
    print(json.dumps(policy_json(policy), ensure_ascii=False, indent=2) if as_json else _policy_text(policy))


@policy_app.command("explain")
def explain(
    country: Annotated[str, typer.Option("--country", help="Country preset: SE, FI, NO, DK, DE.")],
    order_date: Annotated[str, typer.Option("--order-date", help="YYYY-MM-DD")],
    now: Annotated[str, typer.Option("--now", help="YYYY-MM-DD")],
    fiscal_year_end: Annotated[str | None, typer.Option("--fiscal-year-end", help="MM-DD")] = None,
    delivered: Annotated[str | None, typer.Option("--delivered", help="YYYY-MM-DD")] = None,
    last_activity: Annotated[str | None, typer.Option("--last-activity", help="YYYY-MM-DD")] = None,
    unsubscribed: Annotated[str | None, typer.Option("--unsubscribed", help="YYYY-MM-DD")] = None,
    mode: Annotated[Mode, typer.Option("--mode", help="request or sweep")] = Mode.SWEEP,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """What the policy decides for one order of one customer, one decision per category."""
    fye = _fye(fiscal_year_end) or (12, 31)
    try:
        policy = Policy.from_preset(country, fye)
    except PolicyError as exc:
        raise _fail(str(exc)) from None
    ordered = _date("--order-date", order_date)
    shipped = _date("--delivered", delivered)
    active = _date("--last-activity", last_activity)
    opted_out = _date("--unsubscribed", unsubscribed)
    today = _date("--now", now)
    assert today is not None  # a required option
    holdings = [
        Holding(
            system,
            category,
            f"explain:{category.value}",
            label,
            order_created=ordered,
            delivered=shipped,
            last_activity=active,
            unsubscribed=opted_out,
        )
        for category, system, label in EXPLAIN_HOLDINGS
    ]
    result = plan(holdings, policy, today, mode)
    if as_json:
        decisions = [
            {
                "category": d.holding.category.value,
                "action": d.action.value,
                "keep_until": d.keep_until.isoformat() if d.keep_until else None,
                "rule": d.rule_id,
                "reference": d.reference,
                "reason_sv": d.reason_sv,
                "reason_en": d.reason_en,
            }
            for d in result.decisions
        ]
        print(json.dumps({"decisions": decisions}, ensure_ascii=False, indent=2))
        return
    for d in result.decisions:
        print(f"{d.holding.category.value}: {d.action.value}")
        print(f"  en: {d.sentence('en')}")
        print(f"  sv: {d.sentence('sv')}")


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
