"""`gallra shop add` (a shop with a given token, no install flow) and `gallra shopify-toml`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from plugin.runtime import Runtime
from plugin.settings import load_settings
from plugin.shopify.app_toml import render_app_toml
from plugin.shopify.shop_domain import valid_shop_domain
from plugin.shopify.tokens import register_shop


async def _add(domain: str, token: str, country: str | None, timezone: str | None) -> None:
    runtime = Runtime.build(load_settings())
    try:
        await register_shop(runtime, domain, token, country=country, timezone=timezone)
    finally:
        await runtime.close()


def register(app: typer.Typer) -> None:
    shop = typer.Typer(help="Shops Gallra works for.", no_args_is_help=True)

    @shop.command("add")
    def add(
        domain: str = typer.Argument(..., help="The shop's *.myshopify.com domain."),
        token: str = typer.Option(..., "--token", help="An Admin API access token for the shop."),
        country: str | None = typer.Option(
            None, "--country", help="ISO country code; picks the retention preset."
        ),
        timezone: str | None = typer.Option(
            None, "--timezone", help="IANA time zone, e.g. Europe/Stockholm."
        ),
    ) -> None:
        """Register DOMAIN with a given token (self-hosting, tests), without the install flow."""
        if not valid_shop_domain(domain):
            typer.echo("gallra: DOMAIN must look like your-shop.myshopify.com", err=True)
            raise typer.Exit(2)
        if country is not None and (len(country) != 2 or not country.isalpha()):
            typer.echo("gallra: --country must be a two-letter ISO code such as SE", err=True)
            raise typer.Exit(2)
        asyncio.run(_add(domain, token, country, timezone))
        typer.echo(f"registered {domain}" + (f" (country {country.upper()})" if country else ""))

    app.add_typer(shop, name="shop")

    @app.command("shopify-toml")
    def shopify_toml(
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
        ] = None,
    ) -> None:
        """Render shopify.app.toml for the Shopify CLI from manifest.toml and the settings."""
        text = render_app_toml(load_settings())
        if output is None:
            typer.echo(text, nl=False)
        else:
            output.write_text(text)
            typer.echo(f"wrote {output}")
