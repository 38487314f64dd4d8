"""``python -m emotag`` runs the CLI."""

from emotag.cli import main

main()
