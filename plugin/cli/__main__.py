"""`python -m plugin.cli`: the same as the `gallra` command."""

from plugin.cli import main

main()
