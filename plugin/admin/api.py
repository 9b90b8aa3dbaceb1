"""The JSON API under /admin/api: the same data and actions as the pages, Bearer session token only.

A bearer token is never sent by a browser on its own (unlike a cookie), so cross-site requests
cannot use it; no CSRF field is needed here. Errors carry a short reason and nothing personal.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import wraps
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adapters.registry import catalogue
from plugin.admin import actions, policy_view, queries
from plugin.admin.auth import AdminContext, NotAuthenticated, authenticate_api
from plugin.admin.headers import secure
from plugin.admin.render import counts, mask_email
from plugin.ledger import days_left
from plugin.models import Request as LedgerRequest
from plugin.models import Step, Sweep, cell_of, utcnow
from plugin.notifications import list_notifications
from plugin.retention import Policy, PolicyError, StatutoryMinimumError
from plugin.shopify import erasures
from plugin.states import RequestStatus

ApiHandler = Callable[[Request, AdminContext], Awaitable[Response]]


def answer(data: Any, status: int = 200, shop: str | None = None) -> JSONResponse:
    return secure(JSONResponse(data, status_code=status), shop)


def authenticated_api(handler: ApiHandler) -> Callable[[Request], Awaitable[Response]]:
    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            ctx = await authenticate_api(request)
        except NotAuthenticated as exc:
            response = answer({"error": "unauthorized", "reason": str(exc)}, 401)
            # Tells App Bridge to fetch a new token and retry (Shopify's convention).
            response.headers["X-Shopify-Retry-Invalid-Session-Request"] = "1"
            return response
        try:
            return await handler(request, ctx)
        except actions.NotFound:
            return answer({"error": "not_found"}, 404, ctx.shop_domain)
        except actions.InvalidSettings as exc:
            return answer({"error": "invalid_settings", "reason": str(exc)}, 400, ctx.shop_domain)
        except actions.Refused as exc:
            return answer({"error": "refused", "reason": str(exc)}, 409, ctx.shop_domain)

    return endpoint


def _request_json(row: LedgerRequest, now: datetime, timezone: str | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "hold_reason": row.hold_reason,
        "received_at": row.received_at.isoformat(),
        "due_at": row.due_at.isoformat(),
        "days_left": days_left(row.due_at, now, timezone),
        # A request waiting only to see its erasures take effect made its calls in time.
        "overdue": row.status not in (RequestStatus.DONE, RequestStatus.VERIFYING) and row.due_at < now,
        "dry_run": row.dry_run,
        "completed_at": row.completed_at.isoformat() if row.completed_at else None,
    }


def _timezone(ctx: AdminContext) -> str | None:
    return ctx.shop.timezone if ctx.shop is not None else None


def _step_json(step: Step) -> dict[str, Any]:
    return {
        "id": step.id,
        "system": step.system,
        "action": step.action,
        "category": step.category,
        "holding_ref": step.holding_ref,
        "state": step.state,
        "outcome": step.outcome,
        "provider_ref": step.provider_ref,
        "verification": step.verification,
        "verified_at": step.verified_at.isoformat() if step.verified_at else None,
        "verification_detail": step.verification_detail,
        "attempts": step.attempts,
        "decision": step.decision,
        "last_error": step.last_error,
        "finished_at": step.finished_at.isoformat() if step.finished_at else None,
    }


def _sweep_json(sweep: Sweep) -> dict[str, Any]:
    return {
        "id": sweep.id,
        "day": sweep.day,
        "dry_run": sweep.dry_run,
        "status": sweep.status,
        "totals": dict(counts(sweep.report or {})),
        "report": sweep.report,
        "started_at": sweep.started_at.isoformat(),
        "finished_at": sweep.finished_at.isoformat() if sweep.finished_at else None,
    }


async def notifications_list(request: Request, ctx: AdminContext) -> Response:
    """What Gallra told the shop owner, and whether it was e-mailed (or why not)."""
    async with ctx.runtime.db.session() as session:
        told = await list_notifications(session, ctx.shop_domain)
    return answer({"notifications": [row.as_json() for row in told]}, shop=ctx.shop_domain)


async def overview(request: Request, ctx: AdminContext) -> Response:
    now = utcnow()
    async with ctx.runtime.db.session() as session:
        data = await queries.overview(session, ctx.shop_domain, ctx.shop, now)
    return answer(
        {
            "shop": ctx.shop_domain,
            "dry_run": data.dry_run,
            "open_requests": [
                {
                    "id": row.id,
                    "kind": row.kind,
                    "status": row.status,
                    "due_at": row.due_at.isoformat(),
                    "days_left": row.days_left,
                    "overdue": row.overdue,
                }
                for row in data.open_requests
            ],
            "last_sweep": _sweep_json(data.last_sweep) if data.last_sweep else None,
            "next_sweep": data.next_sweep.isoformat() if data.next_sweep else None,
            "problem_adapters": [row.adapter for row in data.problem_adapters],
            "chart": [
                {"day": day.day.isoformat(), "requests": day.requests, "erasures": day.erasures}
                for day in data.chart
            ],
        },
        shop=ctx.shop_domain,
    )


async def request_list(request: Request, ctx: AdminContext) -> Response:
    now = utcnow()
    async with ctx.runtime.db.session() as session:
        rows = await queries.recent_requests(session, ctx.shop_domain)
    return answer(
        {"requests": [_request_json(row, now, _timezone(ctx)) for row in rows]}, shop=ctx.shop_domain
    )


async def request_detail(request: Request, ctx: AdminContext) -> Response:
    now = utcnow()
    async with ctx.runtime.db.session() as session:
        detail = await queries.request_detail(
            session, ctx.shop_domain, int(request.path_params["request_id"])
        )
    if detail is None:
        raise actions.NotFound("request")
    stored = detail.request.email_enc
    email = ctx.runtime.vault.decrypt(stored, cell_of(detail.request, "email_enc")) if stored else None
    return answer(
        {
            "request": {
                **_request_json(detail.request, now, _timezone(ctx)),
                "customer_id": detail.request.customer_id,
                "email": mask_email(email),
                "orders": len(detail.request.order_ids or []),
            },
            "steps": [_step_json(step) for step in detail.steps],
            "timeline": [
                {
                    "at": event["at"].isoformat(),
                    "what": event["what"],
                    "step": event["step"].id if event["step"] else None,
                }
                for event in detail.timeline
            ],
            "artifacts": [
                {
                    "id": a.id,
                    "kind": a.kind,
                    "content_type": a.content_type,
                    "url": f"/admin/api/artifacts/{a.id}",
                }
                for a in detail.artifacts
            ],
            "evidence": [
                {"seq": e.seq, "kind": e.kind, "at": e.at.isoformat(), "hash": e.hash}
                for e in detail.evidence
            ],
        },
        shop=ctx.shop_domain,
    )


async def retry(request: Request, ctx: AdminContext) -> Response:
    request_id = await actions.retry_step(ctx.runtime, ctx.shop_domain, int(request.path_params["step_id"]))
    return answer({"status": "retrying", "request_id": request_id}, shop=ctx.shop_domain)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise actions.Refused("the body is not JSON") from None
    if not isinstance(body, dict):
        raise actions.Refused("the body must be a JSON object")
    return body


async def confirm(request: Request, ctx: AdminContext) -> Response:
    body = await _json_body(request)
    request_id = await actions.confirm_step(
        ctx.runtime, ctx.shop_domain, int(request.path_params["step_id"]), str(body.get("note") or "")
    )
    return answer({"status": "confirmed", "request_id": request_id}, shop=ctx.shop_domain)


async def shopify_erasures(request: Request, ctx: AdminContext) -> Response:
    async with ctx.runtime.db.session() as session:
        rows = await erasures.erasures(session, ctx.shop_domain)
    now = utcnow()
    return answer({"erasures": [erasures.summary(row, now) for row in rows]}, shop=ctx.shop_domain)


async def cancel_shopify_erasure(request: Request, ctx: AdminContext) -> Response:
    body = await _json_body(request)
    erasure_id = await actions.cancel_shopify_erasure(
        ctx.runtime,
        ctx.shop_domain,
        int(request.path_params["erasure_id"]),
        actions.actor(ctx.claims.sub),
        str(body.get("reason") or ""),
    )
    return answer({"status": "cancelled", "erasure_id": erasure_id}, shop=ctx.shop_domain)


async def sweeps(request: Request, ctx: AdminContext) -> Response:
    async with ctx.runtime.db.session() as session:
        rows = await queries.sweeps(session, ctx.shop_domain)
    return answer({"sweeps": [_sweep_json(row) for row in rows]}, shop=ctx.shop_domain)


async def preview(request: Request, ctx: AdminContext) -> Response:
    """Queue today's dry run and answer at once (202): the sweep clock runs it; GET sweeps shows it
    queued, running, then done with its report."""
    try:
        queued = await actions.preview_sweep(ctx.runtime, ctx.shop_domain)
    except Exception as exc:  # class name only
        return answer({"error": "preview_failed", "reason": type(exc).__name__}, 502, ctx.shop_domain)
    async with ctx.runtime.db.session() as session:
        latest = await queries.last_sweep(session, ctx.shop_domain, dry_run=True)
    return answer(
        {
            "status": "preview queued" if queued else "preview already on its way",
            "sweep": _sweep_json(latest) if latest else None,
        },
        202,
        ctx.shop_domain,
    )


async def evidence(request: Request, ctx: AdminContext) -> Response:
    async with ctx.runtime.db.session() as session:
        rows = await queries.evidence_log(session, ctx.shop_domain)
        verified = await actions.verify_evidence(session, ctx.shop_domain)
    return answer(
        {
            "verified": {
                "ok": verified.ok,
                "entries": verified.entries,
                "first_broken_seq": verified.first_broken_seq,
            },
            "entries": actions.evidence_records(rows),
        },
        shop=ctx.shop_domain,
    )


async def evidence_export(request: Request, ctx: AdminContext) -> Response:
    media_type, body = await actions.export_evidence(ctx.runtime, ctx.shop_domain, request.path_params["fmt"])
    return secure(Response(body, media_type=media_type), ctx.shop_domain)


async def artifact(request: Request, ctx: AdminContext) -> Response:
    row, content = await actions.artifact(
        ctx.runtime, ctx.shop_domain, int(request.path_params["artifact_id"])
    )
    response = Response(
        content,
        media_type=row.content_type,
        headers={"Content-Disposition": f'attachment; filename="{actions.artifact_filename(row)}"'},
    )
    return secure(response, ctx.shop_domain)


async def connections(request: Request, ctx: AdminContext) -> Response:
    async with ctx.runtime.db.session() as session:
        connected = await queries.connections(session, ctx.shop_domain)
    return answer(
        {
            "adapters": [
                {
                    "name": name,
                    "title": cls.title,
                    "category": str(cls.category),
                    "channel": cls.channel,
                    "connected": name in connected,
                    # Never the credentials: only what the shop owner may see again.
                    "enabled": connected[name].enabled if name in connected else None,
                    "dry_run": connected[name].dry_run if name in connected else None,
                    "status": connected[name].status if name in connected else None,
                }
                for name, cls in catalogue().items()
            ]
        },
        shop=ctx.shop_domain,
    )


async def connection_flags(request: Request, ctx: AdminContext) -> Response:
    body = await _json_body(request)
    enabled = body.get("enabled")
    dry_run = body.get("dry_run")
    await actions.set_connection_flags(
        ctx.runtime,
        ctx.shop_domain,
        request.path_params["adapter"],
        enabled=enabled if isinstance(enabled, bool) else None,
        dry_run=dry_run if isinstance(dry_run, bool) else None,
    )
    return answer({"status": "saved"}, shop=ctx.shop_domain)


async def shop_settings(request: Request, ctx: AdminContext) -> Response:
    body = await _json_body(request)
    if not isinstance(body.get("dry_run"), bool):
        raise actions.Refused("dry_run (true or false) is required")
    await actions.set_shop_dry_run(ctx.runtime, ctx.shop_domain, body["dry_run"])
    return answer({"status": "saved", "dry_run": body["dry_run"]}, shop=ctx.shop_domain)


async def shop_controller(request: Request, ctx: AdminContext) -> Response:
    """GET: the controller documents and e-mails name; PUT {name, legal_name, address,
    contact_email}: set (a string) or give back to Shopify (null) each field given."""
    if request.method == "PUT":
        found = await actions.set_controller(ctx.runtime, ctx.shop_domain, await _json_body(request))
    else:
        found = await actions.controller_of(ctx.runtime, ctx.shop_domain)
    return answer({"controller": found}, shop=ctx.shop_domain)


async def policy(request: Request, ctx: AdminContext) -> Response:
    current, problem = policy_view.shown_policy(ctx.shop)
    today = utcnow().astimezone(queries.shop_zone(ctx.shop)).date()
    return answer(
        {
            **policy_view.describe(current),
            "problem": problem,
            "timeline": [
                {
                    "rule_id": line.id,
                    "category": line.category,
                    "period": line.period,
                    "keep_until_if_today": line.keep_until.isoformat(),
                    "reference": line.reference,
                    "statutory": line.statutory,
                    "forced": line.forced,
                }
                for line in policy_view.lines(current, today, ctx.lang)
            ],
        },
        shop=ctx.shop_domain,
    )


async def policy_save(request: Request, ctx: AdminContext) -> Response:
    """PUT {"toml": "..."}: validated by the engine; below a statutory minimum only when forced."""
    body = await _json_body(request)
    text = body.get("toml")
    if not isinstance(text, str):
        raise actions.Refused('send {"toml": "<policy>"}')
    try:
        new = Policy.from_toml(text)
    except StatutoryMinimumError as exc:
        return answer({"error": "statutory_minimum", "reason": str(exc)}, 422, ctx.shop_domain)
    except PolicyError as exc:
        return answer({"error": "invalid_policy", "reason": str(exc)}, 422, ctx.shop_domain)
    await actions.save_policy(ctx.runtime, ctx.shop_domain, new)
    return answer(policy_view.describe(new), shop=ctx.shop_domain)


async def connect(request: Request, ctx: AdminContext) -> Response:
    """PUT {settings}: stored encrypted; the answer never echoes them."""
    body = await _json_body(request)
    await actions.connect(ctx.runtime, ctx.shop_domain, request.path_params["adapter"], body)
    return answer({"status": "saved"}, shop=ctx.shop_domain)


async def check(request: Request, ctx: AdminContext) -> Response:
    ok, message = await actions.check(ctx.runtime, ctx.shop_domain, request.path_params["adapter"])
    return answer({"ok": ok, "message": message}, shop=ctx.shop_domain)


def _actor(ctx: AdminContext) -> str:
    """Who acted, as the hold records it (encrypted): the shop's admin user, by Shopify's id."""
    return f"admin user {ctx.claims.sub}"


async def holds(request: Request, ctx: AdminContext) -> Response:
    found = await actions.holds_of(ctx.runtime, ctx.shop_domain)
    return answer({"holds": [h.as_dict() for h in found]}, shop=ctx.shop_domain)


async def hold_place(request: Request, ctx: AdminContext) -> Response:
    hold_id = await actions.place_hold(
        ctx.runtime, ctx.shop, ctx.shop_domain, await _json_body(request), _actor(ctx)
    )
    return answer({"status": "placed", "id": hold_id}, 201, ctx.shop_domain)


async def hold_release(request: Request, ctx: AdminContext) -> Response:
    body = await _json_body(request)
    await actions.release_hold(
        ctx.runtime,
        ctx.shop_domain,
        int(request.path_params["hold_id"]),
        str(body.get("reason") or ""),
        _actor(ctx),
    )
    return answer({"status": "released"}, shop=ctx.shop_domain)
