"""The server the intake benchmark drives: the real app, plus a bare endpoint that only verifies
the signature and answers 200, served by the same uvicorn process with the same settings.

Run by bench/intake.py; settings come from the environment it sets.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plugin.app import create_app
from plugin.intake.headers import WebhookHeaders
from plugin.intake.signature import verify
from plugin.serve import uvicorn_config
from plugin.settings import load_settings


async def bare(request: Request) -> Response:
    """The baseline: read the body, check the signature, answer. No parsing, no storage."""
    body = await request.body()
    secrets = request.app.state.runtime.settings.webhook_secrets()
    if not verify(body, WebhookHeaders.read(request.headers).signature, secrets):
        return JSONResponse({"status": "signature missing or invalid"}, status_code=401)
    return JSONResponse({"status": "ok"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = load_settings()
    app = create_app(settings=settings)
    # First in the router, so the baseline pays for no route matching at all; the intake route is
    # the fifth. (Appended last, it was matched after the app's 47 routes: ~30 us of regex per
    # request on the benchmark machine, which flattered the ratio.)
    app.router.routes.insert(0, Route("/bench/bare", bare, methods=["POST"]))
    # Served as `gallra serve` serves (GALLRA_LOG_LEVEL=WARNING keeps the access log quiet).
    uvicorn.Server(uvicorn_config(app, settings, "127.0.0.1", args.port)).run()


if __name__ == "__main__":
    main()
