"""``python -m cargohold``: the command-line tool."""

from .cli import main

main()
