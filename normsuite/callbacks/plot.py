"""Plots of ActivationStats logs: per-layer statistics over steps, and histogram heatmaps.

Reads the ``metrics.csv`` that Lightning's ``CSVLogger`` writes. Needs matplotlib only (no
torch, no lightning), renders headless with the Agg canvas.

Example:
    >>> from normsuite.callbacks.plot import plot_stats
    >>> plot_stats("lightning_logs/version_0", "stats.png")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ActivationLog", "plot_stats", "read_stats"]

_TENSOR_KEY = re.compile(r"^act/(?P<layer>[^/]+)/(?P<io>in|out)/(?P<stat>[^/]+)$")
_HIST_KEY = re.compile(r"^act/(?P<layer>[^/]+)/(?P<io>in|out)/hist/(?P<bin>\d+|lo|hi)$")
_ORDER_KEY = re.compile(r"^act/(?P<layer>[^/]+)/order$")

Series = list[tuple[int, float]]


@dataclass
class ActivationLog:
    """ActivationStats metrics read back from a CSV log.

    ``series[(layer, io, stat)]`` is a list of ``(step, value)``; ``layers`` are in forward
    order; ``hist[(layer, io)]`` maps a step to its bin fractions, with ``hist_range`` its edges.
    """

    source: Path
    layers: list[str] = field(default_factory=list)
    series: dict[tuple[str, str, str], Series] = field(default_factory=dict)
    hist: dict[tuple[str, str], dict[int, list[float]]] = field(default_factory=dict)
    hist_range: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)


def find_metrics_csv(path: str | Path) -> Path:
    """``path`` itself if it is a file, else the newest ``metrics.csv`` below the run dir."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.exists():
        raise FileNotFoundError(f"no such file or directory: {path}")
    found = sorted(path.rglob("metrics.csv"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(
            f"no metrics.csv under {path}; train with a CSVLogger (lightning.pytorch.loggers)"
        )
    return found[-1]


def read_stats(path: str | Path) -> ActivationLog:
    """Read the ``act/...`` columns of a Lightning CSV log (a run dir or a metrics.csv)."""
    source = find_metrics_csv(path)
    try:
        with source.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{source} is not a readable CSV file ({err})") from None
    log = ActivationLog(source=source)
    order: dict[str, float] = {}
    series: dict[tuple[str, str, str], dict[int, float]] = defaultdict(dict)
    for row in rows:
        step = _number(row.get("step"))
        if step is None:
            continue
        for key, text in row.items():
            value = _number(text)
            if key is None or value is None or not key.startswith("act/"):
                continue
            if m := _ORDER_KEY.match(key):
                order.setdefault(m["layer"], value)
            elif m := _HIST_KEY.match(key):
                site = (m["layer"], m["io"])
                if m["bin"] in ("lo", "hi"):
                    lo, hi = log.hist_range.get(site, (math.nan, math.nan))
                    log.hist_range[site] = (value, hi) if m["bin"] == "lo" else (lo, value)
                else:
                    bins = log.hist.setdefault(site, {}).setdefault(int(step), [])
                    index = int(m["bin"])
                    bins.extend([math.nan] * (index + 1 - len(bins)))
                    bins[index] = value
            elif m := _TENSOR_KEY.match(key):
                series[(m["layer"], m["io"], m["stat"])][int(step)] = value
    if not series:
        raise ValueError(
            f"{source} has no act/<layer>/<in|out>/<stat> columns; "
            "train with normsuite.ActivationStats and a CSVLogger"
        )
    log.series = {k: sorted(v.items()) for k, v in series.items()}
    seen = {layer for layer, _, _ in series}
    log.layers = sorted(seen, key=lambda layer: (order.get(layer, math.inf), layer))
    return log


def plot_stats(
    source: str | Path | ActivationLog,
    output: str | Path = "stats.png",
    stats: Sequence[str] = ("mean", "std", "zero_frac"),
    io: Sequence[str] = ("in", "out"),
    max_heatmaps: int = 8,
    dpi: int = 100,
) -> Path:
    """Plot per-layer statistics over steps: one panel per statistic (rows) and per input /
    output (columns), layers coloured in forward order; plus a heatmap of histograms over
    steps for up to ``max_heatmaps`` layer outputs when histograms were logged.

    Returns the path written. Raises ``FileNotFoundError`` / ``ValueError`` with one line.
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    log = source if isinstance(source, ActivationLog) else read_stats(source)
    known = {stat for _, _, stat in log.series}
    missing = [s for s in stats if s not in known]
    if missing:
        raise ValueError(f"no statistic {missing[0]!r} in the log; choose from {sorted(known)}")
    bad_io = [side for side in io if side not in ("in", "out")]
    if bad_io or not io:
        raise ValueError(f"io must be 'in' and/or 'out', got {list(io)!r}")
    heat = [
        (layer, side)
        for layer in log.layers
        for side in ("out", "in")
        if (layer, side) in log.hist and (layer, side) in log.hist_range
    ][:max_heatmaps]

    rows, cols = len(stats), len(io)
    heat_rows = math.ceil(len(heat) / 4)
    width_in = max(5.0 * cols, 2.6 * min(len(heat), 4))
    fig = Figure(figsize=(width_in, 2.4 * rows + 2.4 * heat_rows), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(rows + heat_rows, 4 if heat else cols)  # 4 = 1 x 4 = 2 x 2
    colors = colormaps["viridis"]
    span = max(len(log.layers) - 1, 1)
    width = grid.ncols // cols
    for r, stat in enumerate(stats):
        for c, side in enumerate(io):
            ax = fig.add_subplot(grid[r, c * width : (c + 1) * width])
            for i, layer in enumerate(log.layers):
                points = log.series.get((layer, side, stat))
                if points:
                    steps, values = zip(*points, strict=True)
                    ax.plot(steps, values, color=colors(i / span), label=layer, lw=1.2)
            ax.set_title(f"{stat} of layer {'inputs' if side == 'in' else 'outputs'}", fontsize=9)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if r == rows - 1:
                ax.set_xlabel("step", fontsize=8)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=7, title="forward order")
    for k, (layer, side) in enumerate(heat):
        ax = fig.add_subplot(grid[rows + k // 4, k % 4])
        steps = sorted(log.hist[(layer, side)])
        matrix = [[max(v, 1e-6) for v in log.hist[(layer, side)][s]] for s in steps]
        lo, hi = log.hist_range[(layer, side)]
        columns = list(map(list, zip(*matrix, strict=True)))  # bins x steps
        extent = (steps[0], steps[-1] if len(steps) > 1 else steps[0] + 1, lo, hi)
        ax.imshow(
            [[math.log10(v) for v in row] for row in columns],
            aspect="auto",
            origin="lower",
            extent=extent,
            cmap="magma",
            interpolation="nearest",
        )
        ax.set_title(f"{layer} ({side}puts)\nlog10 share per bin", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("step", fontsize=7)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=dpi)
    return output


def _number(text: str | None) -> float | None:
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return None
