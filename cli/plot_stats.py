"""`normsuite plot-stats` (not implemented yet; see the open issues)."""

from __future__ import annotations

import typer


def plot_stats() -> None:
    """Not implemented yet."""
    typer.echo("normsuite plot-stats: not implemented yet", err=True)
    raise typer.Exit(2)
