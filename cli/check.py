"""`normsuite check` (not implemented yet; see the open issues)."""

from __future__ import annotations

import typer


def check() -> None:
    """Not implemented yet."""
    typer.echo("normsuite check: not implemented yet", err=True)
    raise typer.Exit(2)
