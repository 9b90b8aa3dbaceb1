"""Turning rows into HTML: the Jinja environment, date formats in the shop's zone, plan sentences."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from plugin.admin.auth import AdminContext, make_csrf
from plugin.admin.headers import APP_BRIDGE_URL, secure
from plugin.admin.queries import shop_zone
from plugin.i18n import translate
from plugin.legal_holds import decision_hold_ids, is_hold_rule
from plugin.models import Step
from plugin.states import ConnectionStatus, RequestStatus, StepState

TEMPLATES = Path(__file__).parent / "templates"
NAV = (
    ("overview", "/admin"),
    ("requests", "/admin/requests"),
    ("policy", "/admin/policy"),
    ("adapters", "/admin/adapters"),
    ("sweeps", "/admin/sweeps"),
    ("erasures", "/admin/erasures"),
    ("holds", "/admin/holds"),
    ("audit", "/admin/audit"),
)
FLASHES = {
    "retried",
    "confirmed",
    "preview_queued",
    "policy_saved",
    "connected",
    "checked",
    "toggled",
    "erasure_cancelled",
    "hold_placed",
    "hold_released",
}

env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
# The templates compare states by their enums, as the code does (`plugin.states`).
env.globals.update(RequestStatus=RequestStatus, StepState=StepState, ConnectionStatus=ConnectionStatus)


def counts(report: dict[str, Any]) -> list[tuple[str, int]]:
    """A sweep report's totals by outcome, summed over its categories (counts only)."""
    categories = (report.get("tally") or {}).get("categories") or report.get("categories") or {}
    totals: dict[str, int] = {}
    for tally in categories.values():
        if isinstance(tally, dict):
            for key in ("seen", "erase", "reduce", "keep", "undecided", "actioned_before"):
                value = tally.get(key)
                if isinstance(value, int):
                    totals[key] = totals.get(key, 0) + value
    return [(key, value) for key, value in totals.items() if value or key == "seen"]


def mask_email(email: str | None) -> str | None:
    """Enough to recognise a customer, not enough to copy the address off a screenshot."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.partition("@")
    return f"{local[:1]}{'•' * 3}@{domain}"


def plan_sentence(step: Step, lang: str, holds: dict[int, dict[str, Any]] | None = None) -> str:
    """`holds`: the legal holds the steps name (`plugin.legal_holds.kept_lines`)."""
    decision = step.decision or {}
    action = str(decision.get("action") or step.action)
    reason = decision.get(f"reason_{lang}") or decision.get("reason_en") or decision.get("rule_id") or ""
    reference = decision.get("reference")
    because = f"{reason} ({reference})" if reference else str(reason)
    keep_until = decision.get("keep_until")
    if step.outcome and step.outcome.startswith("would_"):
        return translate(lang, f"outcome.{step.outcome}")
    hold = next((holds[i] for i in decision_hold_ids(decision) if i in holds), None) if holds else None
    if action == "keep" and hold is not None and is_hold_rule(decision.get("rule_id")):
        until = hold["until"] or translate(lang, "holds.no_end")
        return translate(lang, "plan.legal_hold", reason=hold["reason"], since=hold["since"], until=until)
    if action == "keep":
        return translate(lang, "plan.keep", date=keep_until or "—", reason=because)
    if action == "reduce":
        if keep_until:
            return translate(lang, "plan.reduce_until", date=keep_until, reason=because)
        return translate(lang, "plan.reduce")
    if action == "erase":
        return translate(lang, "plan.erase" if step.state == StepState.DONE else "plan.erase_pending")
    return translate(lang, f"action.{action}")


def plan_rows(
    steps: list[Step], lang: str, titles: dict[str, str], holds: dict[int, dict[str, Any]] | None = None
) -> list[dict[str, str]]:
    rows = []
    for step in steps:
        if step.action not in {"erase", "keep", "reduce"} and not (step.decision or {}).get("action"):
            continue
        label = (step.decision or {}).get("label") or step.holding_ref or step.key
        rows.append(
            {
                "holding": f"{titles.get(step.system, step.system)} · {label}",
                "action": str((step.decision or {}).get("action") or step.action),
                "sentence": plan_sentence(step, lang, holds),
            }
        )
    return rows


def page(
    request: Request,
    ctx: AdminContext,
    template: str,
    *,
    page_name: str,
    title_key: str,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    zone = shop_zone(ctx.shop)
    lang = ctx.lang

    def t(key: str, default: str | None = None, **kw: Any) -> str:
        return translate(lang, key, default, **kw)

    flash = request.query_params.get("done")
    local = env.overlay()
    local.filters["date"] = lambda value: _local(value, zone, "%Y-%m-%d")
    # The zone's abbreviation (CET, EEST, UTC) says whose clock the time is on.
    local.filters["datetime"] = lambda value: _local(value, zone, "%Y-%m-%d %H:%M %Z")
    local.filters["counts"] = counts
    html = local.get_template(template).render(
        t=t,
        lang=lang,
        page=page_name,
        title=t(title_key),
        nav=NAV,
        csrf=make_csrf(ctx.runtime, ctx.claims),
        api_key=ctx.runtime.settings.shopify_api_key,
        dev=ctx.runtime.settings.dev,
        app_bridge=APP_BRIDGE_URL,
        shop_domain=ctx.shop_domain,
        flash=flash if flash in FLASHES else None,
        dry_run_banner=bool(ctx.shop is not None and ctx.shop.dry_run),
        **values,
    )
    return secure(HTMLResponse(html, status_code=status_code), ctx.shop_domain)


def bounce(request: Request, shop: str | None, lang: str, api_key: str, dev: bool) -> HTMLResponse:
    """A page without data that fetches a session token and reloads with it (Shopify's "bounce")."""
    html = env.get_template("bounce.html").render(
        t=lambda key, default=None, **kw: translate(lang, key, default, **kw),
        lang=lang,
        page="bounce",
        title="Gallra",
        bounce=True,
        api_key=api_key,
        dev=dev,
        app_bridge=APP_BRIDGE_URL,
    )
    return secure(HTMLResponse(html), shop)


def _local(value: datetime | date | None, zone: ZoneInfo, fmt: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.astimezone(zone).strftime(fmt)
    return value.strftime("%Y-%m-%d")
