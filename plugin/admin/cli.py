"""`gallra admin …` (the development login link) and the admin page's actions on a request's steps
from the command line, for self-hosters: `gallra requests confirm` and `gallra requests retry` call
the same functions as the page (`plugin.admin.actions`), so they check, record and refuse alike."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from sqlalchemy import select

from plugin.admin.dev_login import login_url
from plugin.models import OutboxMessage, Request, Step
from plugin.runtime import Runtime
from plugin.settings import load_settings
from plugin.shopify.shop_domain import valid_shop_domain

STEP_HELP = "The step's id (`gallra requests show ID` lists them)"


class _Missing(Exception):
    pass


class _Refused(Exception):
    pass


async def _locate(runtime: Runtime, step: str, shop: str | None) -> tuple[str, int]:
    """(shop, step id) of a step given by id, or by the reference of its e-mail (the processor's
    reply quotes it); `_Missing` when there is none (in `shop`, when given)."""
    async with runtime.db.session() as session:
        found: tuple[str, int | None] | None = None
        if step.strip().isdigit():
            by_id = select(Step.shop_domain, Step.id).where(Step.id == int(step))
            row = (await session.execute(by_id)).one_or_none()
            found = (row[0], row[1]) if row is not None else None
        else:
            by_reference = select(OutboxMessage.shop_domain, OutboxMessage.step_id).where(
                OutboxMessage.reference == step.strip().upper()
            )
            sent = (await session.execute(by_reference)).one_or_none()
            found = (sent[0], sent[1]) if sent is not None else None
    if found is None or found[1] is None or (shop is not None and found[0] != shop):
        raise _Missing
    return str(found[0]), int(found[1])


async def _status(runtime: Runtime, request_id: int) -> str:
    async with runtime.db.session() as session:
        return str(await session.scalar(select(Request.status).where(Request.id == request_id)))


def _act(step: str, shop: str | None, action: str, note: str = "") -> tuple[int, int, str]:
    """Run the admin's action on the step: (step id, request id, the request's status after)."""

    async def main() -> tuple[int, int, str]:
        # Imported here: the actions pull in most of the app, which `gallra --help` need not load.
        from plugin.admin import actions

        runtime = Runtime.build(load_settings())
        try:
            domain, step_id = await _locate(runtime, step, shop)
            if action == "confirm":
                request_id = await actions.confirm_step(runtime, domain, step_id, note)
            else:
                request_id = await actions.retry_step(runtime, domain, step_id)
            return step_id, request_id, await _status(runtime, request_id)
        except actions.NotFound:
            raise _Missing from None
        except actions.Refused as exc:
            raise _Refused(str(exc)) from None
        finally:
            await runtime.close()

    try:
        return asyncio.run(main())
    except _Missing:
        where = f" in {shop}" if shop else ""
        typer.echo(f"gallra: no step {step}{where}", err=True)
        raise typer.Exit(1) from None
    except _Refused as exc:
        typer.echo(f"gallra: step {step}: {exc}", err=True)
        raise typer.Exit(1) from None


def confirm(
    step: Annotated[str, typer.Argument(help=f"{STEP_HELP}, or its e-mail's reference.")],
    by: Annotated[
        str,
        typer.Option("--by", help="Who confirmed the erasure, and how (kept encrypted, not in evidence)."),
    ],
    shop: Annotated[str | None, typer.Option(help="Only if the step belongs to this shop.")] = None,
) -> None:
    """Record that a processor confirmed an e-mailed erasure request (as the admin page does):
    the step, and every step the same e-mail covered, is done, with an evidence entry each."""
    step_id, request_id, status = _act(step, shop, "confirm", by)
    typer.echo(f"step {step_id} confirmed; request {request_id} is {status}")


def retry(
    step: Annotated[str, typer.Argument(help=f"{STEP_HELP}; it must have failed.")],
    shop: Annotated[str | None, typer.Option(help="Only if the step belongs to this shop.")] = None,
) -> None:
    """Hand a failed step back to the executor (as the admin page does), recorded in evidence. A
    running `gallra serve` or `gallra worker` picks it up."""
    step_id, request_id, status = _act(step, shop, "retry")
    typer.echo(f"step {step_id} handed back to the workers; request {request_id} is {status}")


def register(app: typer.Typer) -> None:
    from plugin.ledger_cli import requests_app

    requests_app.command("confirm")(confirm)
    requests_app.command("retry")(retry)

    admin = typer.Typer(help="The shop owner's admin pages.", no_args_is_help=True)

    @admin.command("dev-login")
    def dev_login(shop: str = typer.Argument(..., help="The shop's *.myshopify.com domain.")) -> None:
        """Print a ten-minute link that opens the admin for SHOP outside Shopify (GALLRA_DEV only)."""
        settings = load_settings()
        if not settings.dev:
            typer.echo("gallra: the dev login needs GALLRA_DEV=1 (on the server too)", err=True)
            raise typer.Exit(2)
        if not valid_shop_domain(shop):
            typer.echo("gallra: SHOP must look like your-shop.myshopify.com", err=True)
            raise typer.Exit(2)
        typer.echo(login_url(shop, settings))

    app.add_typer(admin, name="admin")
