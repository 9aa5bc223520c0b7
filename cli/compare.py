"""`normsuite compare` (not implemented yet; see the open issues)."""

from __future__ import annotations

import typer


def compare() -> None:
    """Not implemented yet."""
    typer.echo("normsuite compare: not implemented yet", err=True)
    raise typer.Exit(2)
