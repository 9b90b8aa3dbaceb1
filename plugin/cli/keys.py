"""`gallra keys ...`: rotating GALLRA_ENCRYPTION_KEY (see `plugin.keys` and the README)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from sqlalchemy.exc import OperationalError, ProgrammingError

from plugin import keys
from plugin.db import Database
from plugin.runtime import vault_of
from plugin.settings import load_settings

keys_app = typer.Typer(name="keys", help="Encryption keys: rotation and its progress.", no_args_is_help=True)


def _describe(found: keys.Status) -> list[str]:
    lines = []
    if found.pending:
        lines.append(f"{found.pending} value(s) or hash(es) still to rewrite under the current key:")
        lines += [f"  {where}: {count}" for where, count in sorted({**found.values, **found.hashes}.items())]
        if found.evidence_chains:
            lines.append(f"  evidence chains (shops): {found.evidence_chains}")
    else:
        lines.append("every encrypted value and re-computable hash is on the current key")
    if found.newest_old_business_key is not None:
        until = found.newest_old_business_key + keys.RETRY_WINDOW
        if found.redelivery_window_open:
            lines.append(
                f"a request keyed by a hash under the previous key arrived recently: Shopify may redeliver "
                f"it until {until.isoformat(timespec='minutes')}; keep the previous key until then"
            )
    if found.orphan_hashes:
        lines.append(
            f"note: {found.orphan_hashes} hash(es) of erased e-mails/phones stay under an earlier key "
            "(no request holds the value any more); without that key they no longer match the "
            "subject's later requests"
        )
    if found.open_outbox:
        lines.append(
            f"note: {found.open_outbox} open outbox message(s) are de-duplicated under an earlier key; "
            "without it, a later step asking the same processor the same thing queues a new e-mail"
        )
    if found.previous_removable:
        if found.previous_configured:
            lines.append("GALLRA_ENCRYPTION_KEY_PREVIOUS can be removed")
        else:
            lines.append("no previous key is configured; nothing is left to rotate")
    else:
        lines.append("GALLRA_ENCRYPTION_KEY_PREVIOUS is still needed: run `gallra keys rotate`")
    return lines


async def _status(url: str) -> keys.Status:
    db = Database(url)
    try:
        return await keys.status(db, vault_of(load_settings()))
    finally:
        await db.dispose()


async def _rotate(url: str, batch_size: int, max_batches: int | None) -> tuple[keys.Rotated, keys.Status]:
    db = Database(url)
    vault = vault_of(load_settings())

    def progress(table: str, written: int) -> None:
        typer.echo(f"{table}: {written} row(s) rewritten")

    try:
        rotated = await keys.rotate(
            db, vault, batch_size=batch_size, max_batches=max_batches, progress=progress
        )
        return rotated, await keys.status(db, vault)
    finally:
        await db.dispose()


def _no_ledger() -> typer.Exit:
    typer.echo("gallra: the database has no ledger yet; run `gallra db upgrade` first", err=True)
    return typer.Exit(1)


@keys_app.command("status")
def status_command() -> None:
    """Say what is still on an earlier key, and whether GALLRA_ENCRYPTION_KEY_PREVIOUS can be
    removed (exit status 0 when it can, 1 when not)."""
    settings = load_settings()
    try:
        found = asyncio.run(_status(settings.database_url))
    except (OperationalError, ProgrammingError):
        raise _no_ledger() from None
    for line in _describe(found):
        typer.echo(line)
    raise typer.Exit(0 if found.previous_removable else 1)


@keys_app.command("rotate")
def rotate_command(
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = keys.BATCH_SIZE,
    max_batches: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many batches (run again to go on).")
    ] = None,
) -> None:
    """Re-encrypt every encrypted value and re-hash every look-up hash under GALLRA_ENCRYPTION_KEY.
    Batched and resumable (rows already on the current key are skipped); safe while Gallra runs."""
    settings = load_settings()
    try:
        rotated, found = asyncio.run(_rotate(settings.database_url, batch_size, max_batches))
    except (OperationalError, ProgrammingError):
        raise _no_ledger() from None
    typer.echo(f"rewritten: {rotated.rewritten} row(s) in {rotated.batches} batch(es)")
    if rotated.changed_meanwhile:
        typer.echo(
            f"{rotated.changed_meanwhile} row(s) changed while being rewritten: run again to finish them"
        )
    if rotated.unreadable:
        typer.echo(f"{rotated.unreadable} row(s) cannot be read with the configured keys and were left alone")
    if rotated.chains_rechained:
        typer.echo(f"evidence chains re-written under the current key: {rotated.chains_rechained} shop(s)")
    if rotated.chains_unverified:
        typer.echo(
            f"{rotated.chains_unverified} shop(s)' evidence chain does not verify and was left as it is: "
            "see `gallra evidence verify SHOP`"
        )
    if not rotated.finished:
        typer.echo(f"stopped after {rotated.batches} batch(es): run again to go on")
    for line in _describe(found):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app)
