"""`normsuite fit` (not implemented yet; see the open issues)."""

from __future__ import annotations

import typer


def fit() -> None:
    """Not implemented yet."""
    typer.echo("normsuite fit: not implemented yet", err=True)
    raise typer.Exit(2)
