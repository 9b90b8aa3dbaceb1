"""The admin's routes: pages and form posts under /admin, the JSON API under /admin/api, the
development login, and the static files (which hold no shop data and need no token)."""

from __future__ import annotations

from pathlib import Path

from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from plugin.admin import api, dev_login, pages
from plugin.admin.api import authenticated_api as a
from plugin.admin.pages import authenticated_form as f
from plugin.admin.pages import authenticated_page as p

STATIC = Path(__file__).parent / "static"
# Every admin body is a form or a small JSON document (a policy, a connection's credentials, a
# note); 64 KiB is ample. Larger ones get 413: at once when Content-Length says so, otherwise as
# soon as the limit is passed, never read whole (a 150 MB JSON body used to be).
MAX_BODY = 64 * 1024


def limit_bodies(found: list[BaseRoute]) -> list[BaseRoute]:
    """Every admin route's request body, whoever reads it (form, JSON, authentication), limited to
    MAX_BODY: what `Route(max_body_size=...)` does, for all of them at once, routes added later too."""
    for route in found:
        if isinstance(route, Route):
            route.app = RequestBodyLimitMiddleware(route.app, max_body_size=MAX_BODY)
    return found


def routes() -> list[BaseRoute]:
    found: list[BaseRoute] = [
        Route("/admin", p(pages.overview)),
        Route("/admin/requests", p(pages.request_list)),
        Route("/admin/requests/{request_id:int}", p(pages.request_page)),
        Route("/admin/policy", p(pages.policy_page)),
        Route("/admin/policy", f(pages.policy_form), methods=["POST"]),
        Route("/admin/adapters", p(pages.adapters_page)),
        Route("/admin/adapters/{adapter:str}/connect", f(pages.connect_form), methods=["POST"]),
        Route("/admin/adapters/{adapter:str}/check", f(pages.check_form), methods=["POST"]),
        Route("/admin/adapters/{adapter:str}/flags", f(pages.connection_flags_form), methods=["POST"]),
        Route("/admin/shop/dry-run", f(pages.shop_dry_run_form), methods=["POST"]),
        Route("/admin/shop/controller", f(pages.controller_form), methods=["POST"]),
        Route("/admin/sweeps", p(pages.sweeps_page)),
        Route("/admin/sweeps/preview", f(pages.preview_form), methods=["POST"]),
        Route("/admin/erasures", p(pages.erasures_page)),
        Route("/admin/erasures/{erasure_id:int}/cancel", f(pages.cancel_erasure_form), methods=["POST"]),
        Route("/admin/holds", p(pages.holds_page)),
        Route("/admin/holds", f(pages.hold_place_form), methods=["POST"]),
        Route("/admin/holds/{hold_id:int}/release", f(pages.hold_release_form), methods=["POST"]),
        Route("/admin/audit", p(pages.audit_page)),
        Route("/admin/audit/export.{fmt:str}", p(pages.audit_export)),
        Route("/admin/steps/{step_id:int}/retry", f(pages.retry_form), methods=["POST"]),
        Route("/admin/steps/{step_id:int}/confirm", f(pages.confirm_form), methods=["POST"]),
        Route("/admin/artifacts/{artifact_id:int}", p(pages.artifact_download)),
        Route("/admin/api/overview", a(api.overview)),
        Route("/admin/api/requests", a(api.request_list)),
        Route("/admin/api/requests/{request_id:int}", a(api.request_detail)),
        Route("/admin/api/steps/{step_id:int}/retry", a(api.retry), methods=["POST"]),
        Route("/admin/api/steps/{step_id:int}/confirm", a(api.confirm), methods=["POST"]),
        Route("/admin/api/policy", a(api.policy)),
        Route("/admin/api/policy", a(api.policy_save), methods=["PUT"]),
        Route("/admin/api/adapters", a(api.connections)),
        Route("/admin/api/adapters/{adapter:str}", a(api.connect), methods=["PUT"]),
        Route("/admin/api/adapters/{adapter:str}/check", a(api.check), methods=["POST"]),
        Route("/admin/api/adapters/{adapter:str}/flags", a(api.connection_flags), methods=["POST"]),
        Route("/admin/api/shop", a(api.shop_settings), methods=["POST"]),
        Route("/admin/api/shop/controller", a(api.shop_controller), methods=["GET", "PUT"]),
        Route("/admin/api/shopify-erasures", a(api.shopify_erasures)),
        Route(
            "/admin/api/shopify-erasures/{erasure_id:int}/cancel",
            a(api.cancel_shopify_erasure),
            methods=["POST"],
        ),
        Route("/admin/api/sweeps", a(api.sweeps)),
        Route("/admin/api/sweeps/preview", a(api.preview), methods=["POST"]),
        Route("/admin/api/holds", a(api.holds)),
        Route("/admin/api/holds", a(api.hold_place), methods=["POST"]),
        Route("/admin/api/holds/{hold_id:int}/release", a(api.hold_release), methods=["POST"]),
        Route("/admin/api/evidence", a(api.evidence)),
        Route("/admin/api/evidence.{fmt:str}", a(api.evidence_export)),
        Route("/admin/api/artifacts/{artifact_id:int}", a(api.artifact)),
        Route("/admin/api/notifications", a(api.notifications_list)),
        Route("/documents/{artifact_id:int}", pages.signed_download),
        Route("/admin/dev-login", dev_login.dev_login),
        Route("/admin/dev/session-token", dev_login.dev_session_token, methods=["POST"]),
        Mount("/admin/static", StaticFiles(directory=STATIC), name="admin-static"),
    ]
    return limit_bodies(found)
