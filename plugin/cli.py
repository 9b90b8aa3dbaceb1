"""`gallra`: the command line. Each stage registers its own commands in its own module; this file
only assembles them and turns known errors into one readable line."""

from __future__ import annotations

import importlib
import logging
import sys

import typer

from plugin import logs
from plugin.settings import SettingsError, enable_dev

app = typer.Typer(
    name="gallra",
    help="Gallra: Shopify privacy webhooks, retention rules, erasure with evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules exposing `register(app: typer.Typer) -> None`, in the order `--help` lists them.
COMMAND_MODULES: list[str] = [
    "plugin.serve",
    "plugin.intake.cli",
    "plugin.ledger_cli",
    "plugin.executor.cli",
    "plugin.evidence_cli",
    "plugin.keys_cli",
    "plugin.connections_cli",
    "plugin.retention.cli",
    "plugin.sweeps.cli",
    "plugin.admin.cli",
    "plugin.legal_holds_cli",
    "plugin.shopify.cli",
    "plugin.shopify.erasures_cli",
]


@app.callback()
def _root(
    dev: bool = typer.Option(
        False,
        "--dev",
        help="Development mode for any command: the throwaway secrets in .gallra-dev.env "
        "(as `gallra serve --dev` writes them). Without it that file is never read.",
    ),
) -> None:
    if dev:
        enable_dev()


def _assemble() -> typer.Typer:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
    return app


def main() -> None:
    # Commands other than `serve` and `worker` (which use GALLRA_LOG_LEVEL) write their results
    # themselves; their logs are warnings and errors only.
    logs.configure(logging.WARNING)
    try:
        _assemble()(standalone_mode=True)
    except SettingsError as exc:
        print(f"gallra: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
