"""`gallra requests ...`: the ledger from the command line (the operator's view, all shops)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError

from plugin.db import Database
from plugin.ledger import days_left, list_requests
from plugin.models import Request, Shop, utcnow
from plugin.settings import load_settings

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


def register(app: typer.Typer) -> None:
    app.add_typer(requests_app)
