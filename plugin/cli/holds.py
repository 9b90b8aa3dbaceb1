"""`gallra holds ...`: the shop owner's legal holds from the command line, for self-hosters. The
commands call the admin page's actions (`plugin.admin.actions`), so they check, record in evidence
and refuse alike; every command names its shop, and sees only that shop's holds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from sqlalchemy import select

from plugin.admin import actions
from plugin.legal_holds import HoldView
from plugin.models import Shop
from plugin.runtime import Runtime
from plugin.settings import load_settings
from plugin.shopify.shop_domain import valid_shop_domain

holds_app = typer.Typer(
    name="holds",
    help="Legal holds: keep a customer's data from every erasure until released.",
    no_args_is_help=True,
)
T = TypeVar("T")
ShopOption = Annotated[str, typer.Option("--shop", help="The shop (*.myshopify.com).")]


def _run(shop: str, call: Callable[[Runtime], Awaitable[T]]) -> T:
    if not valid_shop_domain(shop):
        typer.echo("gallra: --shop must look like your-shop.myshopify.com", err=True)
        raise typer.Exit(2)

    async def main() -> T:
        runtime = Runtime.build(load_settings())
        try:
            return await call(runtime)
        finally:
            await runtime.close()

    # Imported here: the actions pull in most of the app, which `gallra --help` need not load.

    try:
        return asyncio.run(main())
    except actions.NotFound:
        typer.echo(f"gallra: no such hold in {shop}", err=True)
        raise typer.Exit(1) from None
    except actions.Refused as exc:
        typer.echo(f"gallra: {exc}", err=True)
        raise typer.Exit(1) from None


@holds_app.command("place")
def place_command(
    shop: ShopOption,
    customer: Annotated[str, typer.Option(help="The Shopify customer id, or the customer's e-mail.")],
    reason: Annotated[str, typer.Option(help="Why the data is kept (stored encrypted, not in evidence).")],
    by: Annotated[str, typer.Option(help="Who places the hold (stored encrypted).")],
    until: Annotated[
        str | None, typer.Option(help="The last day held, YYYY-MM-DD; released the day after.")
    ] = None,
) -> None:
    """Place a legal hold: nothing of the customer's is erased, by requests or sweeps, until it ends."""

    async def call(runtime: Runtime) -> int:
        async with runtime.db.session() as session:
            row = (await session.execute(select(Shop).where(Shop.domain == shop))).scalar_one_or_none()
        values = {"customer": customer, "reason": reason, "ends_on": until}
        return await actions.place_hold(runtime, row, shop, values, by)

    hold_id = _run(shop, call)
    typer.echo(f"hold {hold_id} placed in {shop}")


@holds_app.command("release")
def release_command(
    shop: ShopOption,
    hold: Annotated[int, typer.Argument(help="The hold's id (`gallra holds list` shows them).")],
    by: Annotated[str, typer.Option(help="Who releases the hold (stored encrypted).")],
    reason: Annotated[str, typer.Option(help="Why it is released (stored encrypted).")] = "",
) -> None:
    """Release a hold; what it kept is planned again by the workers (a running serve or worker)."""

    async def call(runtime: Runtime) -> None:
        await actions.release_hold(runtime, shop, hold, reason, by)

    _run(shop, call)
    typer.echo(f"hold {hold} released in {shop}")


@holds_app.command("list")
def list_command(
    shop: ShopOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (with reasons and e-mails).")] = False,
) -> None:
    """The shop's holds, newest first. The table leaves out reasons and e-mails; --json shows them."""

    async def call(runtime: Runtime) -> list[HoldView]:
        return await actions.holds_of(runtime, shop)

    found = _run(shop, call)
    if as_json:
        typer.echo(json.dumps([h.as_dict() for h in found], indent=2, ensure_ascii=False))
        return
    if not found:
        typer.echo("no holds")
        return
    typer.echo("ID  CUSTOMER  PLACED      UNTIL       STATE")
    for h in found:
        customer = str(h.customer_id) if h.customer_id is not None else "(by e-mail)"
        state = "active" if h.active else f"released {h.released_at:%Y-%m-%d} ({h.released_how})"
        until = h.ends_on.isoformat() if h.ends_on else "-"
        typer.echo(f"{h.id:<3} {customer:<9} {h.placed_at:%Y-%m-%d}  {until:<10}  {state}")


def register(app: typer.Typer) -> None:
    app.add_typer(holds_app)
