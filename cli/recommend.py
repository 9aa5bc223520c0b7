"""`normsuite recommend` (not implemented yet; see the open issues)."""

from __future__ import annotations

import typer


def recommend() -> None:
    """Not implemented yet."""
    typer.echo("normsuite recommend: not implemented yet", err=True)
    raise typer.Exit(2)
