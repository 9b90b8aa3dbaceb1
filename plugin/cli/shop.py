"""`gallra shop add` (a shop with a given token, no install flow) and `gallra shopify-toml`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from plugin.controller import EMAIL, Details
from plugin.runtime import Runtime
from plugin.settings import load_settings
from plugin.shopify.app_toml import render_app_toml
from plugin.shopify.shop_domain import valid_shop_domain
from plugin.shopify.tokens import register_shop


async def _add(domain: str, token: str, country: str | None, timezone: str | None, details: Details) -> bool:
    """Registers the shop; whether Shopify told its details."""
    runtime = Runtime.build(load_settings())
    try:
        shop = await register_shop(
            runtime, domain, token, country=country, timezone=timezone, controller_details=details
        )
        return shop.shopify_shop_id is not None
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
        name: str | None = typer.Option(
            None, "--name", help="The shop's name on documents and e-mails (instead of Shopify's)."
        ),
        legal_name: str | None = typer.Option(
            None, "--legal-name", help="The business's legal name, e.g. 'Exempel Handel AB'."
        ),
        address: str | None = typer.Option(
            None, "--address", help="The business address on one line (instead of Shopify's)."
        ),
        contact_email: str | None = typer.Option(
            None, "--contact-email", help="Where data subjects and processors reply (instead of Shopify's)."
        ),
    ) -> None:
        """Register DOMAIN with a given token (self-hosting, tests), without the install flow.

        The shop's name, legal name, address and contact e-mail are read from Shopify with the
        token; --name, --legal-name, --address and --contact-email set them instead, and are kept
        when Shopify's details are read again."""
        if not valid_shop_domain(domain):
            typer.echo("gallra: DOMAIN must look like your-shop.myshopify.com", err=True)
            raise typer.Exit(2)
        if country is not None and (len(country) != 2 or not country.isalpha()):
            typer.echo("gallra: --country must be a two-letter ISO code such as SE", err=True)
            raise typer.Exit(2)
        if contact_email is not None and not EMAIL.match(contact_email.strip()):
            typer.echo("gallra: --contact-email must be an e-mail address", err=True)
            raise typer.Exit(2)
        given = [v for v in (name, legal_name, address, contact_email) if v is not None]
        if any(not v.strip() for v in given):
            typer.echo(
                "gallra: --name, --legal-name, --address and --contact-email cannot be empty", err=True
            )
            raise typer.Exit(2)
        details = Details(name=name, legal_name=legal_name, address=address, contact_email=contact_email)
        read = asyncio.run(_add(domain, token, country, timezone, details))
        typer.echo(f"registered {domain}" + (f" (country {country.upper()})" if country else ""))
        if not read:
            typer.echo(
                "gallra: could not read the shop's details from Shopify (see the log); documents say "
                "'not known' for what --name/--legal-name/--address/--contact-email did not set. "
                "Run this again to retry.",
                err=True,
            )

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
