"""`gallra serve` and `gallra db upgrade`."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from plugin import logs
from plugin.app import create_app
from plugin.db import describe_url
from plugin.http_server import uvicorn_config
from plugin.migrate import upgrade
from plugin.settings import Settings, enable_dev, load_settings

db_app = typer.Typer(name="db", help="Database schema commands.", no_args_is_help=True)


def _settings(dev: bool) -> Settings:
    if dev:
        # Throwaway secrets in .gallra-dev.env; `gallra --dev simulate` reads the same file.
        enable_dev()
    return load_settings()


@db_app.command("upgrade")
def db_upgrade(
    dev: Annotated[
        bool, typer.Option("--dev", help="Use the development secrets (see serve --dev).")
    ] = False,
) -> None:
    """Apply the Alembic migrations to DATABASE_URL (SQLite or PostgreSQL)."""
    settings = _settings(dev)
    upgrade(settings.database_url)
    typer.echo(f"database {describe_url(settings.database_url)} is up to date")


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default GALLRA_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default GALLRA_PORT).")] = None,
    dev: Annotated[
        bool,
        typer.Option("--dev", help="Development mode: generate throwaway secrets in .gallra-dev.env."),
    ] = False,
) -> None:
    """Run the app: migrate the database, then serve webhooks, the admin UI and the workers."""
    settings = _settings(dev)
    host = host or settings.host
    port = port or settings.port
    logs.configure(settings.log_level)
    upgrade(settings.database_url)
    typer.echo(f"Gallra listening on http://{host}:{port}")
    typer.echo(f"database: {describe_url(settings.database_url)}")
    if dev:
        typer.echo("development mode: throwaway secrets in .gallra-dev.env (never use them in production)")
    uvicorn.Server(uvicorn_config(create_app(settings=settings), settings, host, port)).run()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(db_app)
