"""`gallra adapters ...`: the adapter catalogue and a shop's connections from the command line
(for self-hosters and tests; the admin page does the same for shop owners)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from enum import Enum
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import typer
from pydantic import SecretStr

from adapters import registry
from adapters.base import Adapter
from plugin import connections
from plugin.ledger import load_shop
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
        "description": cls.description,
        "find": cls.can_find,
        "erase": cls.can_erase,
        "export": cls.can_export,
        "sweep": cls.can_sweep,
        "reduce": cls.can_reduce,
        "settings": setting_specs(cls),
        # The provider's documented API addresses a connection picks from with `region=`.
        "regions": cls.Config.regions(),
    }


def setting_specs(cls: type[Adapter]) -> dict[str, dict[str, Any]]:
    """Each setting of the adapter with its meaning, read from its `Config` model's fields (so a
    field added or changed in the adapter shows here as it is): its type, whether it is required,
    its default, its choices (a `Literal` or an `Enum`), its bounds, whether it is a secret, and
    its description. In the model's order."""
    specs: dict[str, dict[str, Any]] = {}
    for key, field in cls.Config.model_fields.items():
        kind, choices, secret = _kind(field.annotation)
        required = field.is_required()
        default = None if required else field.get_default(call_default_factory=True)
        specs[key] = {
            "type": kind,
            "required": required,
            "default": ("********" if secret and default else _plain(default)),
            "choices": choices,
            "secret": secret,
            "bounds": _bounds(field.metadata),
            "help": field.description or "",
        }
    return specs


def _kind(annotation: Any) -> tuple[str, list[Any] | None, bool]:
    """(type in words, choices or None, secret?) of a field's annotation."""
    args = [arg for arg in get_args(annotation) if arg is not type(None)]
    if get_origin(annotation) in (Union, UnionType) and len(args) == 1:
        return _kind(args[0])  # optional: the default (None, "leave empty") says so
    if get_origin(annotation) is Literal:
        return "choice", [_plain(arg) for arg in get_args(annotation)], False
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "choice", [_plain(member) for member in annotation], False
    if annotation is SecretStr:
        return "secret", None, True
    if get_origin(annotation) in (list, tuple, set, frozenset) and args:
        inner, _, secret = _kind(args[0])
        return f"list of {inner}", None, secret
    words = {bool: "true/false", int: "integer", float: "number", str: "text", dict: "mapping"}
    if annotation in words:
        return words[annotation], None, False
    return getattr(annotation, "__name__", str(annotation)), None, False


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    """Constraints declared on the field (`ge=1, le=10`, `min_length=1`, a pattern)."""
    found: dict[str, Any] = {}
    for item in metadata:
        for name in ("gt", "ge", "lt", "le", "min_length", "max_length", "multiple_of", "pattern"):
            value = getattr(item, name, None)
            if value is not None:
                found[name] = _plain(value)
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    return str(value)


BOUND_WORDS = {
    "gt": "above",
    "ge": "at least",
    "lt": "below",
    "le": "at most",
    "min_length": "length at least",
    "max_length": "length at most",
    "multiple_of": "a multiple of",
    "pattern": "matching",
}


def setting_lines(row: dict[str, Any]) -> list[str]:
    """`gallra adapters show NAME` as text: one block per setting."""
    lines = [f"{row['name']}: {row['title']} ({row['category']}, {row['channel']})"]
    if row["description"]:
        lines.append(f"  {row['description']}")
    if not row["settings"]:
        lines.append("  no settings")
    for key, spec in row["settings"].items():
        what = [spec["type"]]
        if spec["choices"] is not None:
            what = [f"one of {', '.join(str(choice) for choice in spec['choices'])}"]
        bounds = ", ".join(f"{BOUND_WORDS.get(name, name)} {value}" for name, value in spec["bounds"].items())
        if bounds:
            what.append(bounds)
        if spec["required"]:
            what.append("required")
        elif spec["default"] is None:
            what.append("optional, empty by default")
        else:
            default = spec["default"]
            shown = str(default).lower() if isinstance(default, bool) else str(default)
            what.append(f"default {shown if shown != '' else '(empty)'}")
        if spec["secret"]:
            what.append("stored encrypted, shown masked")
        lines.append(f"  {key}: {'; '.join(what)}")
        if spec["help"]:
            lines.append(f"      {spec['help']}")
    lines.append(f"Set them with `gallra adapters configure SHOP {row['name']} key=value ...`.")
    return lines


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
        shop = await load_shop(session, domain)
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
    name: Annotated[str, typer.Argument(help="Adapter name from `gallra adapters list`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One adapter: what it does, and each setting with its meaning (type, required, default,
    choices, description)."""
    try:
        row = describe_adapter(registry.get(name))
    except registry.UnknownAdapter as exc:
        raise _fail(str(exc.args[0])) from None
    if as_json:
        typer.echo(json.dumps(row, indent=2))
        return
    for line in setting_lines(row):
        typer.echo(line)


@adapters_app.command("connections")
def connections_command(
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
