"""`normsuite rule` (not implemented yet; see the open issues)."""

from __future__ import annotations

import typer


def rule() -> None:
    """Not implemented yet."""
    typer.echo("normsuite rule: not implemented yet", err=True)
    raise typer.Exit(2)
