"""`normsuite plot-stats`: plot the per-layer statistics that ActivationStats logged.

Needs matplotlib only; never imports torch or lightning.
"""

from __future__ import annotations

from pathlib import Path

import typer

SOURCE = typer.Argument(
    ...,
    help="A run directory (its newest metrics.csv is used) or a metrics.csv written by "
    "Lightning's CSVLogger.",
    show_default=False,
)
OUTPUT = typer.Option(
    Path("stats.png"), "--output", "-o", help="Image to write (.png, .svg, .pdf)."
)
STATS = typer.Option(
    None,
    "--stat",
    "-s",
    help="Statistic to plot, one panel row each (repeat the option): mean, std, min, max, "
    "absmax, zero_frac, nonfinite, chan_spread, and per layer bn_shift, bn_lowvar_frac, "
    "gamma_absmean, gamma_small_frac. Default: mean, std, zero_frac and bn_shift, those "
    "logged; panels with no data or only zeros are skipped.",
    show_default=False,
)
IO = typer.Option("both", "--io", help="Plot layer inputs, outputs, or both: in | out | both.")


def plot_stats(
    source: Path = SOURCE,
    output: Path = OUTPUT,
    stat: list[str] | None = STATS,
    io: str = IO,
) -> None:
    """Plot per-layer mean, std, zero fraction and BatchNorm drift (bn_shift) over steps
    (layers in forward order), and histogram heatmaps when ActivationStats logged them.

    Example: normsuite plot-stats lightning_logs/version_0 -o stats.png
    """
    from normsuite.callbacks.plot import plan_panels, read_stats
    from normsuite.callbacks.plot import plot_stats as _plot

    sides = {"in": ("in",), "out": ("out",), "both": ("in", "out")}.get(io)
    if sides is None:
        _fail(f"--io must be in, out or both, got {io!r}")
    if output.suffix.lower() not in (".png", ".svg", ".pdf", ".jpg", ".jpeg"):
        _fail(f"cannot write {output.name!r}: give -o a .png, .svg or .pdf file name")
    try:
        log = read_stats(source)
        plan = plan_panels(log, stat or None, sides)
        written = _plot(log, output, stats=stat or None, io=sides)
    except (FileNotFoundError, ValueError, IsADirectoryError, PermissionError) as err:
        _fail(str(err))
    for note in plan.skipped:
        typer.echo(f"skipped {note}")
    typer.echo(f"wrote {written}")


def _fail(message: str) -> None:
    typer.echo(f"normsuite plot-stats: error: {message}", err=True)
    raise typer.Exit(2)
