"""`gallra worker` (run the executor and the clocks, to scale out beside `gallra serve`) and
`gallra requests show ID [--json]` (a request's plan, steps and evidence, without personal data)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from typing import Annotated, Any

import typer
from sqlalchemy import select

from plugin import evidence, logs
from plugin.documents.certificate import CERTIFICATE_HTML, certificate_document
from plugin.documents.extract import EXTRACT_HTML
from plugin.documents.language import LANGUAGES, Lang
from plugin.executor.context import WorkerConfig, worker_id
from plugin.executor.steps import step_record
from plugin.models import Request, Step
from plugin.runtime import Runtime
from plugin.settings import load_settings


async def _run_worker(config: WorkerConfig, drain: bool, clocks: bool) -> None:
    from plugin.clocks import background
    from plugin.executor.worker import Worker

    runtime = Runtime.build(load_settings())
    try:
        if drain:
            await Worker(runtime, config).drain(limit=24 * 3600.0)
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with background(runtime, config=config, jobs=None if clocks else []):
            await stop.wait()
    finally:
        await runtime.close()


def worker(
    concurrency: Annotated[int, typer.Option(help="Steps in flight at once in this process.")] = 8,
    lease_seconds: Annotated[float, typer.Option(help="Lease length; renewed while a step runs.")] = 120.0,
    poll_seconds: Annotated[float, typer.Option(help="Idle wait between looks for due work.")] = 5.0,
    drain: Annotated[bool, typer.Option("--drain", help="Exit once nothing is due.")] = False,
    clocks: Annotated[bool, typer.Option(help="Also run the clocks (sweeps, deadlines, reclaim).")] = True,
) -> None:
    """Run an executor worker: claim due requests and steps, run them, record outcomes.

    Any number of workers (and `gallra serve` instances) can share one PostgreSQL database."""
    logs.configure(load_settings().log_level)
    config = WorkerConfig(
        owner=worker_id(), concurrency=concurrency, lease_seconds=lease_seconds, poll_seconds=poll_seconds
    )
    typer.echo(f"gallra worker {config.owner} started", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run_worker(config, drain, clocks))


async def request_details(
    runtime: Runtime, request_id: int, shop: str | None = None
) -> dict[str, Any] | None:
    """A request with its steps and evidence, as the CLI and tests see it: no personal data."""
    async with runtime.db.session() as session:
        statement = select(Request).where(Request.id == request_id)
        if shop is not None:
            statement = statement.where(Request.shop_domain == shop)
        request = (await session.execute(statement)).scalar_one_or_none()
        if request is None:
            return None
        steps = list(
            (
                await session.execute(
                    select(Step)
                    .where(Step.request_id == request.id, Step.shop_domain == request.shop_domain)
                    .order_by(Step.id)
                )
            ).scalars()
        )
        log = await evidence.entries(session, request.shop_domain, request.id)
    return {
        "id": request.id,
        "shop": request.shop_domain,
        "kind": request.kind,
        "status": request.status,
        "hold_reason": request.hold_reason,
        "next_attempt_at": request.next_attempt_at.isoformat() if request.next_attempt_at else None,
        "dry_run": request.dry_run,
        "received_at": request.received_at.isoformat(),
        "due_at": request.due_at.isoformat(),
        "completed_at": request.completed_at.isoformat() if request.completed_at else None,
        "last_error": request.last_error,
        "steps": [
            step_record(s)
            | {
                "id": s.id,
                "state": s.state,
                "next_attempt_at": s.next_attempt_at.isoformat() if s.next_attempt_at else None,
                "last_error": s.last_error,
                "verified_at": s.verified_at.isoformat() if s.verified_at else None,
                "verify_after": s.verify_after.isoformat() if s.verify_after else None,
            }
            for s in steps
        ],
        "evidence": [
            {
                "seq": e.seq,
                "at": e.at.isoformat(),
                "kind": e.kind,
                "hash": e.hash,
                "payload": evidence.readable(e),
            }
            for e in log
        ],
    }


def _print_details(details: dict[str, Any]) -> None:
    typer.echo(
        f"request {details['id']} · {details['kind']} · {details['shop']} · {details['status']}"
        f"{' · DRY RUN' if details['dry_run'] else ''}"
    )
    typer.echo(f"received {details['received_at'][:19]} · due {details['due_at'][:19]}")
    if details["hold_reason"]:
        from plugin.pipelines.shop_redact import HOLD_REASONS

        why = HOLD_REASONS.get(details["hold_reason"], details["hold_reason"])
        typer.echo(f"on hold: {why}; checked again {(details['next_attempt_at'] or '')[:19]}")
    if details["last_error"]:
        typer.echo(f"last error: {details['last_error']}")
    typer.echo("\nsteps:")
    for s in details["steps"]:
        extra = f" until {s['keep_until']}" if s["state"] == "held" else ""
        ref = f" ref {s['provider_ref']}" if s["provider_ref"] else ""
        error = f" ({s['last_error']})" if s["last_error"] and s["state"] != "done" else ""
        what = s["label"] or s["holding"] or ""
        typer.echo(
            f"  #{s['id']:<5} {s['state']:<22} {s['system']:<12} {s['action']:<7} {what}{extra}{ref}{error}"
        )
        if s.get("verification"):
            when = s["verified_at"] or s["verify_after"] or ""
            typer.echo(f"         verification: {s['verification']} {when[:19]} — {s['verification_detail']}")
    typer.echo("\nevidence:")
    for e in details["evidence"]:
        typer.echo(f"  {e['seq']:>5} {e['at'][:19]} {e['kind']:<20} {e['hash'][:16]}…")


def show(
    request_id: Annotated[int, typer.Argument(help="The request's id (see `gallra requests list`).")],
    shop: Annotated[str | None, typer.Option(help="Only if it belongs to this shop.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a request's plan, steps and evidence."""

    async def load() -> dict[str, Any] | None:
        runtime = Runtime.build(load_settings())
        try:
            return await request_details(runtime, request_id, shop)
        finally:
            await runtime.close()

    details = asyncio.run(load())
    if details is None:
        typer.echo(f"gallra: no request {request_id}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(details, indent=2, ensure_ascii=False))
    else:
        _print_details(details)


def document(
    request_id: Annotated[int, typer.Argument(help="The request's id.")],
    kind: Annotated[
        str,
        typer.Option(
            help="certificate_html, certificate_json, extract_json, extract_html (with --lang), "
            "extract_html_sv or extract_html_en."
        ),
    ] = "certificate_html",
    lang: Annotated[
        str | None,
        typer.Option(
            help="sv or en for an HTML document: the certificate in that language (default: the "
            "shop's), or the extract's language version (extract_html --lang sv)."
        ),
    ] = None,
    shop: Annotated[str | None, typer.Option(help="Only if it belongs to this shop.")] = None,
) -> None:
    """Print one of a request's documents (decrypted) to stdout, e.g. `> certificate.html`."""
    chosen: Lang | None = None
    if lang is not None:
        if lang not in LANGUAGES:
            typer.echo("gallra: --lang must be sv or en", err=True)
            raise typer.Exit(2)
        chosen = "sv" if lang == "sv" else "en"
        if kind == "extract_html":
            kind = EXTRACT_HTML[chosen]

    async def load() -> str | None:
        from plugin.documents.store import artifacts_of, read_artifact

        runtime = Runtime.build(load_settings())
        try:
            async with runtime.db.session() as session:
                request = (
                    await session.execute(select(Request).where(Request.id == request_id))
                ).scalar_one_or_none()
                if request is None or (shop is not None and request.shop_domain != shop):
                    return None
                if chosen is not None and kind == CERTIFICATE_HTML:
                    # The stored HTML is in the shop's language; any language renders from the JSON.
                    return await certificate_document(session, runtime.vault, request, chosen)
                for artifact in await artifacts_of(session, request.shop_domain, request_id):
                    if artifact.kind == kind:
                        found = await read_artifact(session, runtime.vault, request.shop_domain, artifact.id)
                        return found[1] if found else None
            return None
        finally:
            await runtime.close()

    text = asyncio.run(load())
    if text is None:
        typer.echo(f"gallra: request {request_id} has no {kind} (yet, or its link expired)", err=True)
        raise typer.Exit(1)
    typer.echo(text)


def register(app: typer.Typer) -> None:
    from plugin.ledger_cli import requests_app

    app.command("worker")(worker)
    requests_app.command("show")(show)
    requests_app.command("document")(document)
