"""`gallra sweep [--shop DOMAIN] [--dry-run | --first-live] [--json]`: run today's retention sweep now.

On a terminal it shows a progress bar (rich, which comes with typer) and prints what was done, in
words first (a live sweep or a preview, run now or found already run, and why no live sweep ran
when none did), then the summary: holdings seen per category, erased, reduced, kept with the
earliest next expiry, and what could not be decided. `--json` prints the reports instead (counts
only, never personal data).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy import select

from plugin.models import Shop
from plugin.runtime import Runtime
from plugin.settings import get_settings
from plugin.states import ShopStatus, SweepStatus
from plugin.sweeps.report import summary_lines
from plugin.sweeps.run import DRY_NEW_SHOP, DRY_SHOP_MODE, SweepError, run_sweep


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep_command)


def sweep_command(
    shop: str | None = typer.Option(
        None, "--shop", help="Sweep this shop only (default: every active shop)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only report what the sweep would do."),
    first_live: bool = typer.Option(
        False,
        "--first-live",
        help="Run a new shop's first sweep live (by default its first day is a preview only). "
        "Needs --shop; recorded in the shop's evidence log.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the reports as JSON."),
) -> None:
    """Run today's retention sweep now and say what it did: live or a preview, run now or already
    run today, and what it erased, reduced, kept and could not decide."""
    if first_live and shop is None:
        typer.echo("gallra sweep: --first-live needs --shop (one shop, named)", err=True)
        raise typer.Exit(2)
    if first_live and dry_run:
        typer.echo("gallra sweep: --first-live runs live; it cannot be a --dry-run", err=True)
        raise typer.Exit(2)
    reports, failed = asyncio.run(_run(shop, dry_run=dry_run, first_live=first_live, as_json=as_json))
    if as_json:
        if reports or not failed:
            typer.echo(json.dumps(reports[0] if shop is not None else reports, indent=2, sort_keys=True))
    elif not reports and not failed:
        typer.echo("no active shop to sweep")
    else:
        for report in reports:
            for line in what_happened(report, asked_live=not dry_run, first_live=first_live):
                typer.echo(line)
            for line in summary_lines(report):
                typer.echo(line)
    if failed:
        raise typer.Exit(1)


def what_happened(report: dict[str, Any], *, asked_live: bool, first_live: bool = False) -> list[str]:
    """What one `run_sweep` call did, in words: whether a live sweep or a preview is shown, whether
    it ran now or had already run today (or is running elsewhere), and why no live sweep ran."""
    shop, day = report.get("shop"), report.get("day")
    dry, reason, status = bool(report.get("dry_run")), report.get("dry_reason"), report.get("status")
    kind = "preview (dry run: nothing sent, nothing queued)" if dry else "live sweep"
    lines: list[str] = []
    if dry and asked_live:
        if reason == DRY_NEW_SHOP:
            lines.append(
                f"{shop}: no live sweep ran: a new shop's first day is a preview only. To run it"
                f" live today: gallra sweep --shop {shop} --first-live"
            )
        elif reason == DRY_SHOP_MODE:
            lines.append(
                f"{shop}: no live sweep ran: the shop is in dry-run mode (its owner switches that"
                " off in the admin)"
            )
    if report.get("already"):
        if status == SweepStatus.RUNNING:
            lines.append(
                f"{shop}: today's ({day}) {kind} is running in another process (started"
                f" {_hhmm(report.get('started_at'))}); nothing was started here. Its progress so far:"
            )
        else:
            lines.append(
                f"{shop}: today's ({day}) {kind} had already run ({status}, finished"
                f" {_hhmm(report.get('finished_at'))}); nothing was run again. Its report:"
            )
    else:
        lines.append(f"{shop}: ran today's ({day}) {kind} now ({status}).")
        if first_live and not dry and not report.get("first_live"):
            lines.append(f"{shop}: --first-live changed nothing: the shop's first sweep day has passed")
    return lines


def _hhmm(stamp: Any) -> str:
    """An ISO time as `YYYY-MM-DD HH:MM UTC` (the report's stamps are UTC)."""
    return f"{str(stamp)[:16].replace('T', ' ')} UTC" if stamp else "at an unknown time"


async def _run(
    shop: str | None, *, dry_run: bool, first_live: bool, as_json: bool
) -> tuple[list[dict[str, Any]], int]:
    runtime = Runtime.build(get_settings())
    try:
        if shop is None:
            async with runtime.db.session() as session:
                domains = list(
                    (
                        await session.execute(
                            select(Shop.domain).where(Shop.status == ShopStatus.ACTIVE).order_by(Shop.domain)
                        )
                    ).scalars()
                )
        else:
            domains = [shop]
        reports = []
        failed = 0
        show_bar = sys.stderr.isatty() and not as_json
        for domain in domains:
            try:
                if show_bar:
                    reports.append(await _with_bar(runtime, domain, dry_run, first_live))
                else:
                    reports.append(await run_sweep(runtime, domain, dry_run=dry_run, first_live=first_live))
            except SweepError as exc:
                typer.echo(f"gallra sweep: {exc}", err=True)
                failed += 1
            except Exception as exc:
                # One shop's failure does not stop the others; only the error's type is shown, as
                # messages may quote data. The sweep resumes on the next run.
                typer.echo(
                    f"gallra sweep: {domain}: failed ({type(exc).__name__}); it resumes next time", err=True
                )
                failed += 1
        return reports, failed
    finally:
        await runtime.close()


async def _with_bar(runtime: Any, domain: str, dry_run: bool, first_live: bool) -> dict[str, Any]:
    # The bulk stream does not say how many records are coming, so the bar counts up with a
    # spinner rather than pretending to know a total.
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(f"sweep {domain}", detail="claiming", total=None)

        def update(progress: dict[str, Any]) -> None:
            tally = progress.get("tally", {})
            position = progress.get("position", {})
            detail = (
                f"{progress.get('phase')}: {position.get('orders_done', 0)} orders, "
                f"{position.get('customers_done', 0)} customers, {tally.get('holdings', 0)} holdings"
            )
            bar.update(task, detail=detail)

        return await run_sweep(runtime, domain, dry_run=dry_run, first_live=first_live, on_progress=update)
