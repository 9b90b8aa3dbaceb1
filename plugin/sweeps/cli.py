"""`gallra sweep [--shop DOMAIN] [--dry-run] [--json]`: run today's retention sweep now.

On a terminal it shows a progress bar (rich, which comes with typer) and prints the summary:
holdings seen per category, erased, reduced, kept with the earliest next expiry, and what could not
be decided. `--json` prints the stored reports instead (counts only, never personal data).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from plugin.settings import get_settings
from plugin.sweeps.report import summary_lines


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep_command)


def sweep_command(
    shop: str | None = typer.Option(
        None, "--shop", help="Sweep this shop only (default: every active shop)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only report what the sweep would do."),
    as_json: bool = typer.Option(False, "--json", help="Print the reports as JSON."),
) -> None:
    """Run today's retention sweep now and print what it erased, reduced, kept and could not decide."""
    reports, failed = asyncio.run(_run(shop, dry_run=dry_run, as_json=as_json))
    if as_json:
        if reports or not failed:
            typer.echo(json.dumps(reports[0] if shop is not None else reports, indent=2, sort_keys=True))
    else:
        for report in reports:
            for line in summary_lines(report):
                typer.echo(line)
            if report.get("already"):
                typer.echo("  (today's sweep had already run: nothing was done again)")
    if failed:
        raise typer.Exit(1)


async def _run(shop: str | None, *, dry_run: bool, as_json: bool) -> tuple[list[dict[str, Any]], int]:
    from sqlalchemy import select

    from plugin.models import Shop
    from plugin.runtime import Runtime
    from plugin.sweeps.run import SweepError, run_sweep

    runtime = Runtime.build(get_settings())
    try:
        if shop is None:
            async with runtime.db.session() as session:
                domains = list(
                    (
                        await session.execute(
                            select(Shop.domain).where(Shop.status == "active").order_by(Shop.domain)
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
                    reports.append(await _with_bar(runtime, domain, dry_run))
                else:
                    reports.append(await run_sweep(runtime, domain, dry_run=dry_run))
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


async def _with_bar(runtime: Any, domain: str, dry_run: bool) -> dict[str, Any]:
    from plugin.sweeps.run import run_sweep

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

        return await run_sweep(runtime, domain, dry_run=dry_run, on_progress=update)
