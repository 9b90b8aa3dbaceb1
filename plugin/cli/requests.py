"""`gallra requests ...`: the ledger from the command line (the operator's view, all shops):
`list`, `show ID` (a request's plan, steps and evidence, without personal data), `document ID`,
and the admin page's actions on a request's steps, `confirm` and `retry`, which call the same
functions as the page (`plugin.admin.actions`), so they check, record and refuse alike."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError

from plugin import evidence
from plugin.admin import actions
from plugin.db import Database
from plugin.documents.certificate import CERTIFICATE_HTML, certificate_document
from plugin.documents.extract import EXTRACT_HTML
from plugin.documents.store import artifacts_of, read_artifact
from plugin.executor.records import step_record
from plugin.i18n import LANGUAGES, Lang
from plugin.ledger import days_left, list_requests
from plugin.models import OutboxMessage, Request, Shop, Step, utcnow
from plugin.pipelines.shop_redact import HOLD_REASONS
from plugin.runtime import Runtime
from plugin.settings import load_settings
from plugin.states import StepState

requests_app = typer.Typer(name="requests", help="Privacy requests in the ledger.", no_args_is_help=True)


def request_summary(request: Request, now: datetime, timezone: str | None = None) -> dict[str, Any]:
    """A request without its personal data (no e-mail, no phone), as the CLI shows it; `timezone`
    is its shop's, which the days left are counted in (as in the admin)."""
    return {
        "id": request.id,
        "shop": request.shop_domain,
        "kind": request.kind,
        "status": request.status,
        "hold_reason": request.hold_reason,
        "customer_id": request.customer_id,
        "orders": len(request.order_ids or []),
        "received_at": request.received_at.isoformat(),
        "due_at": request.due_at.isoformat(),
        "days_left": days_left(request.due_at, now, timezone),
        "attempts": request.attempts,
    }


async def _load(
    url: str, shop: str | None, status: str | None, kind: str | None, limit: int
) -> tuple[list[Request], dict[str, str | None]]:
    """The requests, and the time zone of each of their shops."""
    db = Database(url)
    try:
        async with db.session() as session:
            found = await list_requests(session, shop, status=status, kind=kind, limit=limit)
            domains = {request.shop_domain for request in found}
            zones = await session.execute(select(Shop.domain, Shop.timezone).where(Shop.domain.in_(domains)))
            return found, {domain: timezone for domain, timezone in zones}
    finally:
        await db.dispose()


def _cell(row: dict[str, Any], column: str) -> str:
    if column == "received_at":
        return str(row[column])[:16]
    if column == "status" and row.get("hold_reason"):
        return f"{row['status']} ({row['hold_reason']})"  # why it waits, e.g. on_hold (shop_installed)
    return str(row[column])


def _table(rows: list[dict[str, Any]]) -> str:
    columns = ["id", "kind", "shop", "status", "received_at", "days_left"]
    cells = [[_cell(row, c) for c in columns] for row in rows]
    widths = [max([len(c), *(len(line[i]) for line in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(lines)


@requests_app.command("list")
def list_command(
    shop: Annotated[str | None, typer.Option(help="Only this shop (*.myshopify.com).")] = None,
    status: Annotated[
        str | None, typer.Option(help="Only this status (received, in_progress, done, ...).")
    ] = None,
    kind: Annotated[
        str | None, typer.Option(help="data_request, customer_redact, shop_redact or sweep.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List privacy requests, newest first, with the days left until their 30-day deadline."""
    settings = load_settings()
    try:
        found, zones = asyncio.run(_load(settings.database_url, shop, status, kind, limit))
    except (OperationalError, ProgrammingError):
        typer.echo("gallra: the database has no ledger yet; run `gallra db upgrade` first", err=True)
        raise typer.Exit(1) from None
    now = utcnow()
    rows = [request_summary(request, now, zones.get(request.shop_domain)) for request in found]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif rows:
        typer.echo(_table(rows))
    else:
        typer.echo("no requests")


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
        why = HOLD_REASONS.get(details["hold_reason"], details["hold_reason"])
        typer.echo(f"on hold: {why}; checked again {(details['next_attempt_at'] or '')[:19]}")
    if details["last_error"]:
        typer.echo(f"last error: {details['last_error']}")
    typer.echo("\nsteps:")
    for s in details["steps"]:
        extra = f" until {s['keep_until']}" if s["state"] == StepState.HELD else ""
        ref = f" ref {s['provider_ref']}" if s["provider_ref"] else ""
        error = f" ({s['last_error']})" if s["last_error"] and s["state"] != StepState.DONE else ""
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


STEP_HELP = "The step's id (`gallra requests show ID` lists them)"


class _Missing(Exception):
    pass


class _Refused(Exception):
    pass


async def _locate(runtime: Runtime, step: str, shop: str | None) -> tuple[str, int]:
    """(shop, step id) of a step given by id, or by the reference of its e-mail (the processor's
    reply quotes it); `_Missing` when there is none (in `shop`, when given)."""
    async with runtime.db.session() as session:
        found: tuple[str, int | None] | None = None
        if step.strip().isdigit():
            by_id = select(Step.shop_domain, Step.id).where(Step.id == int(step))
            row = (await session.execute(by_id)).one_or_none()
            found = (row[0], row[1]) if row is not None else None
        else:
            by_reference = select(OutboxMessage.shop_domain, OutboxMessage.step_id).where(
                OutboxMessage.reference == step.strip().upper()
            )
            sent = (await session.execute(by_reference)).one_or_none()
            found = (sent[0], sent[1]) if sent is not None else None
    if found is None or found[1] is None or (shop is not None and found[0] != shop):
        raise _Missing
    return str(found[0]), int(found[1])


async def _status(runtime: Runtime, request_id: int) -> str:
    async with runtime.db.session() as session:
        return str(await session.scalar(select(Request.status).where(Request.id == request_id)))


def _act(step: str, shop: str | None, action: str, note: str = "") -> tuple[int, int, str]:
    """Run the admin's action on the step: (step id, request id, the request's status after)."""

    async def main() -> tuple[int, int, str]:
        # Imported here: the actions pull in most of the app, which `gallra --help` need not load.

        runtime = Runtime.build(load_settings())
        try:
            domain, step_id = await _locate(runtime, step, shop)
            if action == "confirm":
                request_id = await actions.confirm_step(runtime, domain, step_id, note)
            else:
                request_id = await actions.retry_step(runtime, domain, step_id)
            return step_id, request_id, await _status(runtime, request_id)
        except actions.NotFound:
            raise _Missing from None
        except actions.Refused as exc:
            raise _Refused(str(exc)) from None
        finally:
            await runtime.close()

    try:
        return asyncio.run(main())
    except _Missing:
        where = f" in {shop}" if shop else ""
        typer.echo(f"gallra: no step {step}{where}", err=True)
        raise typer.Exit(1) from None
    except _Refused as exc:
        typer.echo(f"gallra: step {step}: {exc}", err=True)
        raise typer.Exit(1) from None


def confirm(
    step: Annotated[str, typer.Argument(help=f"{STEP_HELP}, or its e-mail's reference.")],
    by: Annotated[
        str,
        typer.Option("--by", help="Who confirmed the erasure, and how (kept encrypted, not in evidence)."),
    ],
    shop: Annotated[str | None, typer.Option(help="Only if the step belongs to this shop.")] = None,
) -> None:
    """Record that a processor confirmed an e-mailed erasure request (as the admin page does):
    the step, and every step the same e-mail covered, is done, with an evidence entry each."""
    step_id, request_id, status = _act(step, shop, "confirm", by)
    typer.echo(f"step {step_id} confirmed; request {request_id} is {status}")


def retry(
    step: Annotated[str, typer.Argument(help=f"{STEP_HELP}; it must have failed.")],
    shop: Annotated[str | None, typer.Option(help="Only if the step belongs to this shop.")] = None,
) -> None:
    """Hand a failed step back to the executor (as the admin page does), recorded in evidence. A
    running `gallra serve` or `gallra worker` picks it up."""
    step_id, request_id, status = _act(step, shop, "retry")
    typer.echo(f"step {step_id} handed back to the workers; request {request_id} is {status}")


def register(app: typer.Typer) -> None:
    requests_app.command("show")(show)
    requests_app.command("document")(document)
    requests_app.command("confirm")(confirm)
    requests_app.command("retry")(retry)
    app.add_typer(requests_app)
