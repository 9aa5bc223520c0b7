"""Accuracy vs batch size, one line per norm with seed error bars (GN paper Figure 1 shape)."""

from __future__ import annotations

import os
from pathlib import Path

from .results import CompareResult


def plot_accuracy(
    result: CompareResult, path: str | os.PathLike[str], *, title: str | None = None
) -> Path:
    """Write a PNG of validation accuracy (%) vs batch size (log2 axis) to ``path``.

    Error bars are one standard deviation over seeds (none with a single seed). Like the
    GN paper's Figure 1 the batch size shrinks to the right, where BN is expected to fall.

    Example:
        >>> plot_accuracy(result, "docs/compare_mnist1d.png")  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")  # headless: never needs a display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    try:
        for norm in result.norms:
            xs, ys, errs = [], [], []
            for batch in result.batch_sizes:
                cell = result.cell(norm, batch)
                if cell is None or "val_acc" not in cell.stats:
                    continue
                stat = cell.stats["val_acc"]
                xs.append(batch)
                ys.append(stat.mean * 100)
                errs.append((stat.std or 0.0) * 100)
            ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, label=norm)
        ax.set_xscale("log", base=2)
        ax.set_xticks(result.batch_sizes, [str(b) for b in result.batch_sizes])
        ax.minorticks_off()
        ax.invert_xaxis()
        ax.set_xlabel("batch size per device")
        ax.set_ylabel("validation accuracy (%)")
        seeds = max((c.acc.n for c in result.cells if "val_acc" in c.stats), default=0)
        noun = "seed" if seeds == 1 else "seeds"
        ax.set_title(title or f"normsuite compare (mean ± std over {seeds} {noun})")
        ax.grid(True, alpha=0.3)
        ax.legend(title="norm")
        fig.tight_layout()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out)
    finally:
        plt.close(fig)
    return out
