"""`gallra`: the command line. One module per command group in this package, each with a
`register(app)`; this file assembles them, in the order `--help` lists them, and turns known errors
into one readable line. The command line sits on top of everything else: it may import any stage,
and nothing imports it."""

from __future__ import annotations

import logging
import sys

import typer

from plugin import logs
from plugin.cli import (
    adapters,
    admin,
    evidence,
    holds,
    keys,
    policy,
    requests,
    serve,
    shop,
    shopify_erasures,
    simulate,
    sweep,
    worker,
)
from plugin.settings import SettingsError, enable_dev

app = typer.Typer(
    name="gallra",
    help="Gallra: Shopify privacy webhooks, retention rules, erasure with evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# In the order `--help` lists them.
COMMAND_GROUPS = (
    serve,
    simulate,
    requests,
    worker,
    evidence,
    keys,
    adapters,
    policy,
    sweep,
    admin,
    holds,
    shop,
    shopify_erasures,
)


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
    if not app.registered_commands:
        for group in COMMAND_GROUPS:
            group.register(app)
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
