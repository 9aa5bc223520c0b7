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

__all__ = ["ActivationLog", "PanelPlan", "plan_panels", "plot_stats", "read_stats"]

_TENSOR_KEY = re.compile(r"^act/(?P<layer>[^/]+)/(?P<io>in|out)/(?P<stat>[^/]+)$")
_HIST_KEY = re.compile(r"^act/(?P<layer>[^/]+)/(?P<io>in|out)/hist/(?P<bin>\d+|lo|hi)$")
_ORDER_KEY = re.compile(r"^act/(?P<layer>[^/]+)/order$")
#: per-layer statistics (not per input/output); bn_* only for BatchNorm layers
LAYER_STATS = ("bn_shift", "bn_lowvar_frac", "gamma_absmean", "gamma_small_frac")
_LAYER_KEY = re.compile(r"^act/(?P<layer>[^/]+)/(?P<stat>" + "|".join(LAYER_STATS) + r")$")
LAYER = "layer"
#: what plot_stats draws by default, those that were logged with data
DEFAULT_STATS = ("mean", "std", "zero_frac", "bn_shift")

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


def _read_rows(source: Path) -> list[dict[str, str]]:
    """Rows of a CSV log as dicts; a row with the wrong number of fields is an error that
    names the file and line (``metrics.csv:2: expected 2 fields, got 3``)."""
    try:
        with source.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise ValueError(f"{source} is empty; train with a CSVLogger")
            rows = []
            for row in reader:
                if not row:  # a blank line
                    continue
                if len(row) != len(header):
                    raise ValueError(
                        f"{source}:{reader.line_num}: expected {len(header)} fields, got {len(row)}"
                    )
                rows.append(dict(zip(header, row, strict=True)))
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{source} is not a readable CSV file ({err})") from None
    return rows


def read_stats(path: str | Path) -> ActivationLog:
    """Read the ``act/...`` columns of a Lightning CSV log (a run dir or a metrics.csv).

    Per-tensor statistics are keyed ``(layer, "in"|"out", stat)``; per-layer ones
    (``bn_shift``, ``bn_lowvar_frac``, ``gamma_absmean``, ``gamma_small_frac``) are keyed
    ``(layer, "layer", stat)``.
    """
    source = find_metrics_csv(path)
    rows = _read_rows(source)
    log = ActivationLog(source=source)
    order: dict[str, float] = {}
    series: dict[tuple[str, str, str], dict[int, float]] = defaultdict(dict)
    for row in rows:
        step = _number(row.get("step"))
        if step is None:
            continue
        for key, text in row.items():
            value = _number(text)
            if value is None or not key.startswith("act/"):
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
            elif m := _LAYER_KEY.match(key):
                series[(m["layer"], LAYER, m["stat"])][int(step)] = value
    if not series:
        raise ValueError(
            f"{source} has no act/<layer>/<in|out>/<stat> columns; "
            "train with normsuite.ActivationStats and a CSVLogger"
        )
    log.series = {k: sorted(v.items()) for k, v in series.items()}
    seen = {layer for layer, _, _ in series}
    log.layers = sorted(seen, key=lambda layer: (order.get(layer, math.inf), layer))
    return log


@dataclass
class PanelPlan:
    """What :func:`plot_stats` draws: one row per statistic with the sides (``in``/``out``,
    or ``layer`` for per-layer statistics) that have data, and a note per skipped panel."""

    rows: list[tuple[str, list[str]]]
    skipped: list[str]


def plan_panels(
    log: ActivationLog, stats: Sequence[str] | None = None, io: Sequence[str] = ("in", "out")
) -> PanelPlan:
    """Choose the panels: ``stats`` (default: those of :data:`DEFAULT_STATS` that were logged)
    for each side in ``io``; a panel with no data, or only zeros, is skipped with a note
    (zero fractions of a model without ReLU, say). Raises ``ValueError`` if nothing is left.
    """
    known = {stat for _, _, stat in log.series}
    if stats is None:
        stats = [s for s in DEFAULT_STATS if s in known]
    missing = [s for s in stats if s not in known]
    if missing:
        raise ValueError(f"no statistic {missing[0]!r} in the log; choose from {sorted(known)}")
    rows: list[tuple[str, list[str]]] = []
    skipped: list[str] = []
    for stat in stats:
        sides = [LAYER] if stat in LAYER_STATS else list(io)
        kept = []
        for side in sides:
            values = [
                v
                for (_, s, name), pts in log.series.items()
                if (s, name) == (side, stat)
                for _, v in pts
            ]
            if any(math.isfinite(v) and v != 0 for v in values):
                kept.append(side)
            else:
                what = "no values" if not values else "all zero"
                skipped.append(f"{stat} of {_side_label(side)}: {what}")
        if kept:
            rows.append((stat, kept))
    if not rows:
        raise ValueError(
            f"nothing to plot in {log.source}: " + "; ".join(skipped) + "; choose another --stat"
        )
    return PanelPlan(rows, skipped)


def _side_label(side: str) -> str:
    return {"in": "layer inputs", "out": "layer outputs"}.get(side, "BatchNorm layers")


def plot_stats(
    source: str | Path | ActivationLog,
    output: str | Path = "stats.png",
    stats: Sequence[str] | None = None,
    io: Sequence[str] = ("in", "out"),
    max_heatmaps: int = 8,
    dpi: int = 100,
) -> Path:
    """Plot per-layer statistics over steps: one panel per statistic (rows) and per input /
    output (columns), layers coloured in forward order; per-layer statistics such as
    ``bn_shift`` (BatchNorm's batch mean vs its running mean, in running stds) get one wide
    panel; plus a heatmap of histograms over steps for up to ``max_heatmaps`` layer outputs
    when histograms were logged.

    ``stats=None`` plots mean, std, zero_frac and bn_shift where logged; panels with no data
    or only zeros are skipped (:func:`plan_panels` says which).
    Returns the path written. Raises ``FileNotFoundError`` / ``ValueError`` with one line.
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    log = source if isinstance(source, ActivationLog) else read_stats(source)
    bad_io = [side for side in io if side not in ("in", "out")]
    if bad_io or not io:
        raise ValueError(f"io must be 'in' and/or 'out', got {list(io)!r}")
    plan = plan_panels(log, stats, io)
    heat = [
        (layer, side)
        for layer in log.layers
        for side in ("out", "in")
        if (layer, side) in log.hist and (layer, side) in log.hist_range
    ][:max_heatmaps]

    rows, cols = len(plan.rows), len(io)
    heat_rows = math.ceil(len(heat) / 4)
    width_in = max(5.0 * cols, 2.6 * min(len(heat), 4))
    fig = Figure(figsize=(width_in, 2.4 * rows + 2.4 * heat_rows), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(rows + heat_rows, 4 if heat else cols)  # 4 = 1 x 4 = 2 x 2
    colors = colormaps["viridis"]
    span = max(len(log.layers) - 1, 1)
    width = grid.ncols // cols
    for r, (stat, sides) in enumerate(plan.rows):
        for side in sides:
            if side == LAYER:  # one wide panel
                ax = fig.add_subplot(grid[r, :])
                title = f"{stat} per layer" + (
                    " (|batch mean - running mean| / running std)" if stat == "bn_shift" else ""
                )
            else:
                c = list(io).index(side)
                ax = fig.add_subplot(grid[r, c * width : (c + 1) * width])
                title = f"{stat} of layer {'inputs' if side == 'in' else 'outputs'}"
            for i, layer in enumerate(log.layers):
                points = log.series.get((layer, side, stat))
                if points:
                    steps, values = zip(*points, strict=True)
                    ax.plot(steps, values, color=colors(i / span), label=layer, lw=1.2)
            ax.set_title(title, fontsize=9)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if r == rows - 1:
                ax.set_xlabel("step", fontsize=8)
    # The legend from the panel with the most layers (bn_shift has BN layers only).
    handles, labels = max(
        (ax.get_legend_handles_labels() for ax in fig.axes), key=lambda hl: len(hl[1])
    )
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
