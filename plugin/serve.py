"""`gallra serve` and `gallra db upgrade`."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn
from starlette.types import ASGIApp

from plugin import logs
from plugin.db import describe_url
from plugin.http_server import READ_TIMEOUT, QuietDisconnects, connection_bound, guarded_protocol
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
    from plugin.app import create_app

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


def uvicorn_config(
    app: ASGIApp,
    settings: Settings,
    host: str,
    port: int,
    *,
    read_timeout: float = READ_TIMEOUT,
    max_connections: int | None = None,
) -> uvicorn.Config:
    """How `serve` runs the app; tests and bench/slow_clients.py use exactly this."""
    return uvicorn.Config(
        QuietDisconnects(app),
        host=host,
        port=port,
        loop="uvloop",
        http=guarded_protocol(read_timeout, max_connections or connection_bound()),
        **logs.UVICORN,
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(db_app)
