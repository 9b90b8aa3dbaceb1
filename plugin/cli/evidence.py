"""`gallra evidence verify SHOP`: check a shop's chain, its head record and its certificates'
anchors, and report the first broken entry. `gallra evidence rechain SHOP`: re-write a verified
chain under the current key (entries from before keying, or after a key rotation)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from plugin import evidence
from plugin.documents.certificate import anchor_of, stored_anchors
from plugin.runtime import Runtime
from plugin.settings import load_settings

evidence_app = typer.Typer(name="evidence", help="The per-shop evidence log.", no_args_is_help=True)


async def verify_shop(
    runtime: Runtime, shop: str, extra: list[evidence.Anchor] | None = None
) -> evidence.VerifyResult:
    """The chain, its head record, the stored certificates' anchors and any `extra` ones."""
    async with runtime.db.session() as session:
        anchors = await stored_anchors(session, runtime.vault, shop) + list(extra or [])
        return await evidence.verify(session, shop, anchors)


@evidence_app.command("verify")
def verify_command(
    shop: Annotated[str, typer.Argument(help="The shop (*.myshopify.com).")],
    certificate: Annotated[
        list[Path] | None,
        typer.Option(
            help="A certificate's JSON kept outside Gallra: its anchor is checked too (repeatable)."
        ),
    ] = None,
) -> None:
    """Verify the shop's evidence chain; exit code 1 if an entry was altered or removed."""
    extra: list[evidence.Anchor] = []
    for path in certificate or []:
        try:
            extra += anchor_of(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            typer.echo(f"{path}: not a readable certificate JSON", err=True)
            raise typer.Exit(2) from None

    async def run() -> evidence.VerifyResult:
        runtime = Runtime.build(load_settings())
        try:
            return await verify_shop(runtime, shop, extra)
        finally:
            await runtime.close()

    result = asyncio.run(run())
    typer.echo(result.describe(shop))
    if not result.ok:
        raise typer.Exit(1)


@evidence_app.command("rechain")
def rechain_command(shop: Annotated[str, typer.Argument(help="The shop (*.myshopify.com).")]) -> None:
    """Re-write the shop's chain under the current key once it verifies (after a key rotation,
    before the previous key is removed). Certificates issued before still match: each entry keeps
    its earlier hashes under the new MAC."""

    async def run() -> bool:
        runtime = Runtime.build(load_settings())
        try:
            async with runtime.db.transaction() as session:
                return await evidence.rechain(session, shop)
        finally:
            await runtime.close()

    if not asyncio.run(run()):
        typer.echo(f"{shop}: the chain does not verify; not re-written (see `gallra evidence verify`)")
        raise typer.Exit(1)
    typer.echo(f"{shop}: evidence chain re-written under the current key")


def register(app: typer.Typer) -> None:
    app.add_typer(evidence_app)
