"""`gallra admin dev-login`: the development login link to the admin pages."""

from __future__ import annotations

import typer

from plugin.admin.dev_login import login_url
from plugin.settings import load_settings
from plugin.shopify.shop_domain import valid_shop_domain


def register(app: typer.Typer) -> None:
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
