"""`gallra shopify-erasures list|cancel`: the Shopify erasures Gallra requested for a shop, and
cancelling one within Shopify's window (`plugin.shopify.erasures`)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from plugin.models import utcnow
from plugin.runtime import Runtime
from plugin.settings import load_settings
from plugin.shopify import erasures
from plugin.shopify.shop_domain import valid_shop_domain
from plugin.states import ErasureState

erasures_app = typer.Typer(
    name="shopify-erasures",
    help="Customer data erasures Gallra asked Shopify for: list them, cancel one within Shopify's window.",
    no_args_is_help=True,
)


def _shop(domain: str) -> str:
    if not valid_shop_domain(domain):
        typer.echo("gallra: SHOP must look like your-shop.myshopify.com", err=True)
        raise typer.Exit(2)
    return domain.strip().lower()


async def _list(shop: str, state: str | None) -> list[dict[str, Any]]:
    runtime = Runtime.build(load_settings())
    try:
        async with runtime.db.session() as session:
            rows = await erasures.erasures(session, shop, state=state)
        now = utcnow()
        return [erasures.summary(row, now) for row in rows]
    finally:
        await runtime.close()


async def _cancel(shop: str, erasure_id: int, by: str, why: str) -> erasures.Cancelled:
    runtime = Runtime.build(load_settings())
    try:
        return await erasures.cancel(runtime, shop, erasure_id, by=by, why=why)
    finally:
        await runtime.close()


def _table(rows: list[dict[str, Any]]) -> str:
    columns = ["id", "customer_id", "state", "requested_at", "expected_at", "cancellable"]
    cells = [[str(row[c])[:16] if c.endswith("_at") else str(row[c]) for c in columns] for row in rows]
    widths = [max([len(c), *(len(line[i]) for line in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(lines)


@erasures_app.command("list")
def list_command(
    shop: Annotated[str, typer.Argument(help="The shop's *.myshopify.com domain.")],
    state: Annotated[
        str | None, typer.Option(help="Only this state: requested, cancelled or verified.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The shop's tracked Shopify erasures, soonest expected first, and whether each can still be
    cancelled (requested, and Shopify's expected erasure date not reached)."""
    domain = _shop(shop)
    if state is not None and state not in set(ErasureState):
        typer.echo(f"gallra: --state must be one of {', '.join(ErasureState)}", err=True)
        raise typer.Exit(2)
    rows = asyncio.run(_list(domain, state))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif rows:
        typer.echo(_table(rows))
    else:
        typer.echo("no Shopify erasures")


@erasures_app.command("cancel")
def cancel_command(
    shop: Annotated[str, typer.Argument(help="The shop's *.myshopify.com domain.")],
    erasure_id: Annotated[int, typer.Argument(help="The erasure's id (from `list`).")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why it is cancelled (stored encrypted, in evidence).")
    ],
    by: Annotated[str, typer.Option("--by", help="Who cancels (kept with the evidence).")] = "cli",
) -> None:
    """Cancel a requested erasure within Shopify's window (`customerCancelDataErasure`). Refused,
    with nothing changed, once the window has ended or when Shopify refuses."""
    domain = _shop(shop)
    try:
        done = asyncio.run(_cancel(domain, erasure_id, by, reason))
    except erasures.UnknownErasure:
        typer.echo(f"gallra: no Shopify erasure {erasure_id} for {domain}", err=True)
        raise typer.Exit(1) from None
    except erasures.CancelRefused as exc:
        typer.echo(f"gallra: not cancelled: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"cancelled Shopify erasure {done.erasure_id} of customer {done.customer_id}")


def register(app: typer.Typer) -> None:
    app.add_typer(erasures_app)
