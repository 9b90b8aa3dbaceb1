"""`gallra adapters ...`: the adapter catalogue and a shop's connections from the command line
(for self-hosters and tests; the admin page does the same for shop owners)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer

from adapters import registry
from adapters.base import Adapter, ProviderConfig
from plugin import connections
from plugin.models import Shop
from plugin.outbox import list_messages
from plugin.runtime import Runtime
from plugin.settings import load_settings

adapters_app = typer.Typer(
    name="adapters", help="The adapter catalogue and each shop's connections.", no_args_is_help=True
)

T = TypeVar("T")


def catalogue_rows() -> list[dict[str, Any]]:
    return [describe_adapter(cls) for cls in registry.catalogue().values()]


def describe_adapter(cls: type[Adapter]) -> dict[str, Any]:
    return {
        "name": cls.name,
        "title": cls.title,
        "category": str(cls.category),
        "channel": cls.channel,
        "find": cls.can_find,
        "erase": cls.can_erase,
        "export": cls.can_export,
        "sweep": cls.can_sweep,
        "reduce": cls.can_reduce,
        "settings": {
            key: {"required": field.is_required(), "help": field.description or ""}
            for key, field in cls.Config.model_fields.items()
        },
        # The provider's documented API addresses a connection picks from with `region=`.
        "regions": dict(cls.Config.endpoints.regions) if issubclass(cls.Config, ProviderConfig) else {},
    }


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    """`key=value` arguments; a malformed one is named by position, never echoed (it may be a key)."""
    values: dict[str, str] = {}
    for position, pair in enumerate(pairs, start=1):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"setting {position} is not key=value")
        values[key.strip()] = value
    return values


def _run(work: Callable[[Runtime], Awaitable[T]]) -> T:
    async def main() -> T:
        runtime = Runtime.build(load_settings())
        try:
            return await work(runtime)
        finally:
            await runtime.close()

    return asyncio.run(main())


def _fail(message: str) -> typer.Exit:
    typer.echo(f"gallra: {message}", err=True)
    return typer.Exit(1)


async def _shop(runtime: Runtime, domain: str) -> Shop:
    async with runtime.db.session() as session:
        shop = await connections.get_shop(session, domain)
    if shop is None:
        raise _fail(f"no shop {domain} (install the app or run `gallra simulate` first)")
    return shop


@adapters_app.command("list")
def list_command(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every adapter Gallra knows (built in and plug-ins): what it can find, erase and export."""
    rows = catalogue_rows()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    mark = {True: "yes", False: "-"}
    header = f"{'NAME':<16}{'TITLE':<22}{'CATEGORY':<18}{'CHANNEL':<9}FIND ERASE EXPORT SWEEP REDUCE"
    typer.echo(header)
    for row in rows:
        typer.echo(
            f"{row['name']:<16}{row['title'][:21]:<22}{row['category']:<18}{row['channel']:<9}"
            f"{mark[row['find']]:<5}{mark[row['erase']]:<6}{mark[row['export']]:<7}{mark[row['sweep']]:<6}{mark[row['reduce']]}"
        )


@adapters_app.command("configure")
def configure_command(
    shop: Annotated[str, typer.Argument(help="The shop (*.myshopify.com).")],
    adapter: Annotated[str, typer.Argument(help="Adapter name from `gallra adapters list`.")],
    settings: Annotated[list[str] | None, typer.Argument(help="key=value settings.")] = None,
    replace: Annotated[bool, typer.Option(help="Drop settings not given here.")] = False,
    enable: Annotated[bool | None, typer.Option("--enable/--disable", help="Switch it on or off.")] = None,
) -> None:
    """Set a shop's adapter settings (validated; secrets are stored encrypted and shown masked)."""
    values = parse_pairs(settings or [])

    async def work(runtime: Runtime) -> dict[str, Any]:
        await _shop(runtime, shop)
        async with runtime.db.transaction() as session:
            row = await connections.configure(
                runtime, session, shop, adapter, values, replace=replace, enabled=enable
            )
            return {"enabled": row.enabled, **connections.describe(connections.load_config(runtime, row))}

    try:
        shown = _run(work)
    except registry.UnknownAdapter as exc:
        raise _fail(str(exc.args[0])) from None
    except connections.ConfigInvalid as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{adapter} configured for {shop}:")
    for key, value in shown.items():
        typer.echo(f"  {key} = {value}")


@adapters_app.command("show")
def show_command(
    shop: Annotated[str, typer.Argument(help="The shop (*.myshopify.com).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A shop's connections with their settings (secrets masked) and last check."""

    async def work(runtime: Runtime) -> list[dict[str, Any]]:
        await _shop(runtime, shop)
        async with runtime.db.session() as session:
            rows = await connections.list_connections(session, shop)
            return [
                {
                    "adapter": row.adapter,
                    "enabled": row.enabled,
                    "status": row.status,
                    "last_checked_at": row.last_checked_at.isoformat() if row.last_checked_at else None,
                    "last_error": row.last_error,
                    "settings": connections.shown_settings(runtime, row),
                }
                for row in rows
            ]

    rows = _run(work)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif not rows:
        typer.echo(f"no adapters configured for {shop}")
    for row in [] if as_json else rows:
        state = "enabled" if row["enabled"] else "disabled"
        typer.echo(f"{row['adapter']} ({state}, {row['status']}): {json.dumps(row['settings'])}")


@adapters_app.command("check")
def check_command(shop: Annotated[str, typer.Argument(help="The shop (*.myshopify.com).")]) -> None:
    """Test every enabled connection of the shop now; exits 1 when any fails."""

    async def work(runtime: Runtime) -> list[connections.CheckResult]:
        found = await _shop(runtime, shop)
        async with runtime.db.transaction() as session:
            return await connections.check_connections(runtime, session, found)

    results = _run(work)
    if not results:
        typer.echo(f"no adapters enabled for {shop}")
    for result in results:
        typer.echo(
            f"{result.adapter}: {'ok' if result.ok else 'FAILED'}"
            + ("" if result.ok else f" - {result.message}")
        )
    if any(not result.ok for result in results):
        raise typer.Exit(1)


@adapters_app.command("outbox")
def outbox_command(
    shop: Annotated[str, typer.Argument(help="The shop (*.myshopify.com).")],
    status: Annotated[str | None, typer.Option(help="queued, sent, confirmed or failed.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The shop's e-mailed requests to processors: reference, state, reminders (no addresses)."""

    async def work(runtime: Runtime) -> list[dict[str, Any]]:
        await _shop(runtime, shop)
        async with runtime.db.session() as session:
            found = await list_messages(session, shop, status=status)
        return [
            {
                key: value.isoformat() if isinstance(value, datetime) else value
                for key, value in asdict(m).items()
            }
            for m in found
        ]

    rows = _run(work)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(f"no e-mailed requests for {shop}")
    for row in rows:
        sent = (row["sent_at"] or "not yet")[:16]
        typer.echo(
            f"{row['reference']}  {row['status']:<10} step {row['step_id']}  sent {sent}  "
            f"reminders {row['reminders']}"
            + (f"  last error: {row['last_error']}" if row["last_error"] else "")
        )


def register(app: typer.Typer) -> None:
    app.add_typer(adapters_app)
