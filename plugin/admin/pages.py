"""The server-rendered pages. Each handler gets the verified caller and reads only its shop."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from urllib.parse import urlencode

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from adapters.base import Adapter
from adapters.registry import catalogue, systems
from plugin import controller, legal_holds, notifications
from plugin.admin import actions, policy_view, queries
from plugin.admin.auth import (
    AdminContext,
    CsrfRejected,
    NotAuthenticated,
    authenticate_form,
    authenticate_page,
    runtime_of,
    shop_hint,
)
from plugin.admin.chart import render as render_chart
from plugin.admin.headers import secure
from plugin.admin.render import bounce, mask_email, page, plan_rows
from plugin.documents.gaps import not_examined_of
from plugin.documents.links import verify_link
from plugin.documents.store import read_artifact
from plugin.holdings import SHOPIFY
from plugin.i18n import language_of, months, translate
from plugin.ledger import days_left
from plugin.models import cell_of, utcnow
from plugin.retention import PolicyError, StatutoryMinimumError
from plugin.retention.dates import format_month_day
from plugin.retention.presets import countries
from plugin.shopify import erasures
from plugin.states import RequestStatus, ShopStatus

log = logging.getLogger("gallra.admin")

PageHandler = Callable[[Request, AdminContext], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def _plain(status: int, text: str, shop: str | None) -> Response:
    return secure(HTMLResponse(f"<!doctype html><p>{text}</p>", status_code=status), shop)


def authenticated_page(handler: PageHandler) -> Endpoint:
    """No token, or an expired one: answer the bounce page, which fetches a fresh token and comes
    back. A forged or foreign token: 401 with nothing of any shop in it."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            ctx = await authenticate_page(request)
        except NotAuthenticated as exc:
            settings = runtime_of(request).settings
            has_token = "id_token" in request.query_params or "authorization" in request.headers
            if has_token and not exc.expired:
                return _plain(401, "Not authenticated.", None)
            lang = language_of(request.query_params.get("locale"))
            return bounce(request, shop_hint(request), lang, settings.shopify_api_key, settings.dev)
        return await handler(request, ctx)

    return endpoint


def authenticated_form(handler: PageHandler) -> Endpoint:
    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            ctx = await authenticate_form(request)
        except NotAuthenticated:
            return _plain(401, "Not authenticated.", None)
        except CsrfRejected:
            lang = language_of(request.query_params.get("locale"))
            return _plain(403, translate(lang, "error.forbidden"), None)
        return await handler(request, ctx)

    return endpoint


def back_to(path: str, ctx: AdminContext, done: str) -> RedirectResponse:
    """Post/redirect/get; the next page load fetches its own token (bounce)."""
    query = urlencode({"shop": ctx.shop_domain, "done": done})
    return RedirectResponse(f"{path}?{query}", status_code=303)


def not_found(ctx: AdminContext) -> Response:
    return _plain(404, translate(ctx.lang, "error.not_found"), ctx.shop_domain)


# Shopify appears in steps even in a build without its adapter.
BUILT_IN_TITLES = {SHOPIFY: "Shopify"}


def adapter_titles() -> dict[str, str]:
    """Each system's title, as steps name it: the connectable adapters and Gallra's own records."""
    return {**BUILT_IN_TITLES, **{name: cls.title for name, cls in systems().items()}}


async def overview(request: Request, ctx: AdminContext) -> Response:
    now = utcnow()
    async with ctx.runtime.db.session() as session:
        data = await queries.overview(session, ctx.shop_domain, ctx.shop, now)
        told = await notifications.list_notifications(session, ctx.shop_domain, limit=20)
    svg = render_chart(
        data.chart,
        title=translate(ctx.lang, "overview.chart_title"),
        month_names=months(ctx.lang),
        legend=(
            translate(ctx.lang, "overview.legend_requests"),
            translate(ctx.lang, "overview.legend_erasures"),
        ),
    )
    return page(
        request,
        ctx,
        "overview.html",
        page_name="overview",
        title_key="nav.overview",
        ov=data,
        overdue_count=sum(1 for row in data.open_requests if row.overdue),
        chart_svg=svg,
        chart_requests=sum(day.requests for day in data.chart),
        chart_erasures=sum(day.erasures for day in data.chart),
        titles=adapter_titles(),
        notifications=[
            (
                row,
                translate(
                    ctx.lang, f"notification.{row.kind}", **notifications.title_values(row.details, ctx.lang)
                ),
            )
            for row in told
        ],
    )


async def request_list(request: Request, ctx: AdminContext) -> Response:
    async with ctx.runtime.db.session() as session:
        rows = await queries.recent_requests(session, ctx.shop_domain)
    return page(
        request, ctx, "requests.html", page_name="requests", title_key="nav.requests", rows=rows, now=utcnow()
    )


async def request_page(request: Request, ctx: AdminContext) -> Response:
    request_id = int(request.path_params["request_id"])
    now = utcnow()
    async with ctx.runtime.db.session() as session:
        detail = await queries.request_detail(session, ctx.shop_domain, request_id, now)
        if detail is None:
            return not_found(ctx)
        holds = await legal_holds.kept_lines(
            session,
            ctx.runtime.vault,
            ctx.shop_domain,
            (i for step in detail.steps for i in legal_holds.decision_hold_ids(step.decision or {})),
        )
    req = detail.request
    open_row = None
    if req.status != RequestStatus.DONE:
        open_row = queries.OpenRequest(
            req.id, req.kind, req.status, req.received_at, req.due_at,
            days_left(req.due_at, now, ctx.shop.timezone if ctx.shop else None), req.due_at < now,
        )  # fmt: skip
    titles = adapter_titles()
    email = ctx.runtime.vault.decrypt(req.email_enc, cell_of(req, "email_enc")) if req.email_enc else None
    return page(
        request,
        ctx,
        "request.html",
        page_name="requests",
        title_key="nav.requests",
        detail=detail,
        req=req,
        open_row=open_row,
        subject={"email": mask_email(email)},
        plan=plan_rows(detail.steps, ctx.lang, titles, holds),
        titles=titles,
        gaps=next((not_examined_of(e.payload) for e in reversed(detail.evidence) if e.kind == "planned"), []),
    )


async def sweeps_page(request: Request, ctx: AdminContext, *, problem: str | None = None) -> Response:
    async with ctx.runtime.db.session() as session:
        rows = await queries.sweeps(session, ctx.shop_domain)
    return page(
        request,
        ctx,
        "sweeps.html",
        page_name="sweeps",
        title_key="nav.sweeps",
        rows=rows,
        next_sweep=queries.next_sweep_at(ctx.shop, utcnow()),
        problem=problem,
    )


async def erasures_page(request: Request, ctx: AdminContext) -> Response:
    async with ctx.runtime.db.session() as session:
        rows = await erasures.erasures(session, ctx.shop_domain)
    now = utcnow()
    return page(
        request,
        ctx,
        "erasures.html",
        page_name="erasures",
        title_key="nav.erasures",
        rows=[(row, erasures.cancellable(row, now)) for row in rows],
    )


async def cancel_erasure_form(request: Request, ctx: AdminContext) -> Response:
    reason = await _form_text(request, "reason")
    try:
        await actions.cancel_shopify_erasure(
            ctx.runtime,
            ctx.shop_domain,
            int(request.path_params["erasure_id"]),
            actions.actor(ctx.claims.sub),
            reason,
        )
    except actions.NotFound:
        return not_found(ctx)
    except actions.Refused as exc:
        return _refused(ctx, exc)
    return back_to("/admin/erasures", ctx, "erasure_cancelled")


async def audit_page(request: Request, ctx: AdminContext) -> Response:
    async with ctx.runtime.db.session() as session:
        rows = await queries.evidence_log(session, ctx.shop_domain, limit=500)
        verified = await actions.verify_evidence(session, ctx.shop_domain)
    return page(
        request, ctx, "audit.html", page_name="audit", title_key="nav.audit", rows=rows, verified=verified
    )


def _refused(ctx: AdminContext, exc: Exception) -> Response:
    return _plain(409, str(exc), ctx.shop_domain)


async def _form_text(request: Request, name: str) -> str:
    value = (await request.form()).get(name)
    return value if isinstance(value, str) else ""


async def retry_form(request: Request, ctx: AdminContext) -> Response:
    try:
        request_id = await actions.retry_step(
            ctx.runtime, ctx.shop_domain, int(request.path_params["step_id"])
        )
    except actions.NotFound:
        return not_found(ctx)
    except actions.Refused as exc:
        return _refused(ctx, exc)
    return back_to(f"/admin/requests/{request_id}", ctx, "retried")


async def confirm_form(request: Request, ctx: AdminContext) -> Response:
    note = await _form_text(request, "note")
    try:
        request_id = await actions.confirm_step(
            ctx.runtime, ctx.shop_domain, int(request.path_params["step_id"]), note
        )
    except actions.NotFound:
        return not_found(ctx)
    except actions.Refused as exc:
        return _refused(ctx, exc)
    return back_to(f"/admin/requests/{request_id}", ctx, "confirmed")


async def preview_form(request: Request, ctx: AdminContext) -> Response:
    try:
        await actions.preview_sweep(ctx.runtime, ctx.shop_domain)
    except Exception as exc:  # the page says it failed and why, by class name only
        log.warning("sweep preview failed for a shop: %s", type(exc).__name__)
        response = await sweeps_page(
            request, ctx, problem=translate(ctx.lang, "error.preview", what=type(exc).__name__)
        )
        response.status_code = 502
        return response
    return back_to("/admin/sweeps", ctx, "preview_queued")


async def shop_dry_run_form(request: Request, ctx: AdminContext) -> Response:
    try:
        await actions.set_shop_dry_run(ctx.runtime, ctx.shop_domain, await _form_text(request, "on") == "1")
    except actions.NotFound:
        return not_found(ctx)
    return back_to("/admin/adapters", ctx, "toggled")


async def controller_form(request: Request, ctx: AdminContext) -> Response:
    """The shop's details as documents name them. The form shows the current values, so only a
    field whose value changed becomes the owner's; a field the owner had set and now empties goes
    back to Shopify's value."""
    try:
        current = await actions.controller_of(ctx.runtime, ctx.shop_domain)
        changes: dict[str, str | None] = {}
        for name in controller.FIELDS:
            value = (await _form_text(request, name)).strip()
            known = None if name in current["not_known"] else current[name]
            if value and value != known:
                changes[name] = value
            elif not value and name in current["overridden"]:
                changes[name] = None
        if changes:
            await actions.set_controller(ctx.runtime, ctx.shop_domain, changes)
    except actions.NotFound:
        return not_found(ctx)
    except actions.InvalidSettings as exc:
        return await adapters_page(request, ctx, problem=str(exc))
    return back_to("/admin/adapters", ctx, "controller_saved")


async def connection_flags_form(request: Request, ctx: AdminContext) -> Response:
    enabled = await _form_text(request, "enabled")
    dry_run = await _form_text(request, "dry_run")
    try:
        await actions.set_connection_flags(
            ctx.runtime,
            ctx.shop_domain,
            request.path_params["adapter"],
            enabled=(enabled == "1") if enabled else None,
            dry_run=(dry_run == "1") if dry_run else None,
        )
    except actions.NotFound:
        return not_found(ctx)
    return back_to("/admin/adapters", ctx, "toggled")


async def artifact_download(request: Request, ctx: AdminContext) -> Response:
    try:
        row, content = await actions.artifact(
            ctx.runtime, ctx.shop_domain, int(request.path_params["artifact_id"])
        )
    except actions.NotFound:
        return not_found(ctx)
    response = Response(
        content,
        media_type=row.content_type,
        headers={"Content-Disposition": f'attachment; filename="{actions.artifact_filename(row)}"'},
    )
    return secure(response, ctx.shop_domain)


async def signed_download(request: Request) -> Response:
    """A document through the signed, expiring link of an e-mail (`plugin.documents.links`): no
    session token, so the link itself is the authority, for that one document until it expires."""
    runtime = runtime_of(request)
    shop = request.query_params.get("shop", "")
    artifact_id = int(request.path_params["artifact_id"])
    signed = verify_link(
        runtime.settings,
        shop,
        artifact_id,
        request.query_params.get("expires", ""),
        request.query_params.get("sig", ""),
        utcnow(),
    )
    if not signed:
        return _plain(
            403, "This link is not valid or has expired. / Länken är ogiltig eller har gått ut.", None
        )
    async with runtime.db.session() as session:
        found = await read_artifact(session, runtime.vault, shop, artifact_id)
    if found is None:
        return _plain(404, "This document is no longer available. / Dokumentet finns inte längre.", None)

    row, content = found
    response = Response(
        content,
        media_type=row.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{actions.artifact_filename(row)}"',
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )
    return secure(response, None)


async def audit_export(request: Request, ctx: AdminContext) -> Response:
    fmt = request.path_params["fmt"]
    try:
        media_type, body = await actions.export_evidence(ctx.runtime, ctx.shop_domain, fmt)
    except actions.NotFound:
        return not_found(ctx)
    filename = f"gallra-evidence-{ctx.shop_domain.split('.')[0]}.{fmt}"
    response = Response(
        body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
    return secure(response, ctx.shop_domain)


def config_fields(cls: type[Adapter], custom_urls: bool = False) -> list[dict[str, object]]:
    """The connect form's fields from the adapter's pydantic Config: secrets as password inputs,
    the region as a choice among the provider's documented addresses, and a base URL only where
    the server allows custom provider URLs (tucked away as an advanced field)."""
    regions = cls.Config.regions()
    fields = []
    for name, info in cls.Config.model_fields.items():
        if name == "base_url" and not custom_urls:
            continue
        secret = info.annotation is SecretStr or "SecretStr" in str(info.annotation)
        fields.append(
            {
                "name": name,
                "label": name.replace("_", " ").capitalize(),
                "help": info.description or "",
                "secret": secret,
                "required": info.is_required(),
                "advanced": name == "base_url",
                "choices": list(regions) if name == "region" else [],
                "default": "" if info.is_required() or secret else (info.default or ""),
            }
        )
    return fields


async def adapters_page(request: Request, ctx: AdminContext, *, problem: str | None = None) -> Response:
    async with ctx.runtime.db.session() as session:
        connected = await queries.connections(session, ctx.shop_domain)
    cards = [
        {
            "name": name,
            "title": cls.title,
            "category": str(cls.category),
            "channel": cls.channel,
            "description": cls.description,
            "fields": config_fields(cls, ctx.runtime.settings.allow_custom_provider_urls),
            "connection": connected.get(name),
        }
        for name, cls in catalogue().items()
    ]
    # Connected ones first, then by title: what the shop already uses is what it checks most.
    cards.sort(key=lambda card: (card["connection"] is None, str(card["title"]).lower()))
    return page(
        request,
        ctx,
        "adapters.html",
        page_name="adapters",
        title_key="nav.adapters",
        cards=cards,
        shop_dry_run=bool(ctx.shop is not None and ctx.shop.dry_run),
        has_shop=ctx.shop is not None,
        controller=await actions.controller_of(ctx.runtime, ctx.shop_domain)
        if ctx.shop is not None
        else None,
        # Shopify itself is connected by the install (its token), not by settings entered here.
        shopify_connected=bool(
            ctx.shop is not None and ctx.shop.access_token_enc and ctx.shop.status == ShopStatus.ACTIVE
        ),
        problem=problem,
    )


async def policy_page(
    request: Request, ctx: AdminContext, *, problem: str | None = None, status_code: int = 200,
    form: dict[str, str] | None = None,
) -> Response:  # fmt: skip

    policy, stored_problem = policy_view.shown_policy(ctx.shop)
    today = utcnow().astimezone(queries.shop_zone(ctx.shop)).date()
    return page(
        request,
        ctx,
        "policy.html",
        page_name="policy",
        title_key="nav.policy",
        status_code=status_code,
        policy=policy,
        fye=format_month_day(policy.fiscal_year_end),
        minimise_words=policy.minimise_after.words(ctx.lang),
        lines=policy_view.lines(policy, today, ctx.lang),
        countries=countries(),
        problem=problem or stored_problem,
        form=form or {},
        has_shop=ctx.shop is not None,
    )


async def policy_form(request: Request, ctx: AdminContext) -> Response:
    form = {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
    try:
        policy = policy_view.from_form(form)
        await actions.save_policy(ctx.runtime, ctx.shop_domain, policy)
    except StatutoryMinimumError as exc:
        problem = translate(ctx.lang, "policy.refused_minimum", reason=str(exc))
        return await policy_page(request, ctx, problem=problem, status_code=422, form=form)
    except PolicyError as exc:
        # Re-show the form with the engine's reason (it names the rule and the law, no values).
        problem = translate(ctx.lang, "policy.refused", reason=str(exc))
        return await policy_page(request, ctx, problem=problem, status_code=422, form=form)
    except actions.NotFound:
        return not_found(ctx)
    return back_to("/admin/policy", ctx, "policy_saved")


async def connect_form(request: Request, ctx: AdminContext) -> Response:
    name = request.path_params["adapter"]
    if name not in catalogue():
        return not_found(ctx)
    allowed = set(catalogue()[name].Config.model_fields)
    form = await request.form()
    # Empty fields are left out: a secret not re-entered keeps its stored value.
    values = {
        key: value for key, value in form.items() if key in allowed and isinstance(value, str) and value
    }
    try:
        await actions.connect(ctx.runtime, ctx.shop_domain, name, values)
    except actions.NotFound:
        return not_found(ctx)
    except actions.Refused as exc:
        # The adapter's Config refused the settings: the message names keys, never values.
        response = await adapters_page(request, ctx, problem=str(exc))
        response.status_code = 422
        return response
    return back_to("/admin/adapters", ctx, "connected")


async def check_form(request: Request, ctx: AdminContext) -> Response:
    try:
        await actions.check(ctx.runtime, ctx.shop_domain, request.path_params["adapter"])
    except actions.NotFound:
        return not_found(ctx)
    return back_to("/admin/adapters", ctx, "checked")


async def holds_page(request: Request, ctx: AdminContext) -> Response:
    rows = await actions.holds_of(ctx.runtime, ctx.shop_domain)
    return page(
        request,
        ctx,
        "holds.html",
        page_name="holds",
        title_key="nav.holds",
        active=[h for h in rows if h.active],
        released=[h for h in rows if not h.active],
    )


async def hold_place_form(request: Request, ctx: AdminContext) -> Response:
    form = await request.form()
    values = {k: form.get(k) for k in ("customer", "reason", "ends_on")}
    try:
        await actions.place_hold(
            ctx.runtime, ctx.shop, ctx.shop_domain, values, f"admin user {ctx.claims.sub}"
        )
    except actions.Refused as exc:
        return _refused(ctx, exc)
    return back_to("/admin/holds", ctx, "hold_placed")


async def hold_release_form(request: Request, ctx: AdminContext) -> Response:
    try:
        await actions.release_hold(
            ctx.runtime,
            ctx.shop_domain,
            int(request.path_params["hold_id"]),
            await _form_text(request, "reason"),
            f"admin user {ctx.claims.sub}",
        )
    except actions.NotFound:
        return not_found(ctx)
    except actions.Refused as exc:
        return _refused(ctx, exc)
    return back_to("/admin/holds", ctx, "hold_released")
