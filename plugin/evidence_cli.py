"""`gallra evidence verify SHOP`: check a shop's hash chain and report the first broken entry."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from plugin import evidence
from plugin.db import Database
from plugin.settings import load_settings

evidence_app = typer.Typer(name="evidence", help="The per-shop evidence log.", no_args_is_help=True)


@evidence_app.command("verify")
def verify_command(shop: Annotated[str, typer.Argument(help="The shop (*.myshopify.com).")]) -> None:
    """Verify the shop's evidence chain; exit code 1 if an entry was altered or removed."""

    async def run() -> evidence.VerifyResult:
        db = Database(load_settings().database_url)
        try:
            async with db.session() as session:
                return await evidence.verify(session, shop)
        finally:
            await db.dispose()

    result = asyncio.run(run())
    typer.echo(result.describe(shop))
    if not result.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(evidence_app)
