"""`normsuite compare`: short fits per norm x batch size x seed, and which norm wins where."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


class LrScaling(str, Enum):
    none = "none"
    linear = "linear"
    sqrt = "sqrt"


def compare(
    config: Path = typer.Option(
        ...,
        "--config",
        "-c",
        help="LightningCLI recipe (YAML); an optional compare: block holds the grid defaults.",
    ),
    norms: str | None = typer.Option(
        None, "--norms", help="Comma-separated norm specs, e.g. bn,gn,ln or bn,gn:16."
    ),
    batch_sizes: str | None = typer.Option(
        None, "--batch-sizes", help="Comma-separated per-device batch sizes, e.g. 2,8,32."
    ),
    seeds: int | None = typer.Option(
        None,
        "--seeds",
        help="Seeds per cell (0..N-1): mean ± std over them, Welch's t-test from 3 on. "
        "\\[default: the recipe's compare.seeds, else 3]",
    ),
    max_steps: int | None = typer.Option(
        None, "--max-steps", help="Training steps per cell (same for every batch size)."
    ),
    epochs: float | None = typer.Option(
        None,
        "--epochs",
        help="Epochs per cell instead of --max-steps: every batch size sees the same samples "
        "(the GN paper's protocol).",
    ),
    lr_scaling: LrScaling | None = typer.Option(
        None,
        "--lr-scaling",
        help="Scale the recipe's LR from its batch size to each batch size: linear (for SGD, "
        "Goyal et al. 2017), sqrt (for Adam-family, Malladi et al. 2022) or none. "
        "\\[default: the recipe's compare.lr_scaling, else linear for SGD, sqrt for "
        "Adam-family, none for other optimizers]",
    ),
    lrs: str | None = typer.Option(
        None, "--lrs", help="Explicit LR per batch size, e.g. 2:0.01,8:0.02 (wins over the rule)."
    ),
    threads: int | None = typer.Option(
        None,
        "--threads",
        help="CPU threads per cell (torch.set_num_threads). "
        "\\[default: torch's, usually one per core]",
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder. \\[default: runs/compare/RECIPE_NAME]"
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Keep the finished cells in --out and run only the missing ones."
    ),
    output_format: OutputFormat = typer.Option(
        OutputFormat.text, "--format", help="text (Rich tables) or json (on stdout)."
    ),
    plot: bool = typer.Option(
        True, "--plot/--no-plot", help="Write accuracy_vs_batch.png into the output folder."
    ),
) -> None:
    """Train the recipe with each norm at each batch size and seed; show who wins where.

    Each cell is a short in-process fit; finished cells are written to OUT/results.jsonl as
    they end, so an interrupted run resumes with --resume. The verdict table compares the
    winner per batch size with what `normsuite recommend` would advise. A cell BatchNorm
    cannot train (BN at batch 1, rule NRM005) is a row of the table; the others still run.
    """
    from normsuite.compare import CompareError, run_compare

    try:
        result = run_compare(
            config,
            norms=norms,
            batch_sizes=batch_sizes,
            seeds=seeds,
            max_steps=max_steps,
            epochs=epochs,
            lr_scaling=lr_scaling.value if lr_scaling is not None else None,
            lrs=lrs,
            threads=threads,
            out_dir=out,
            resume=resume,
            plot=plot,
            progress=True,
        )
    except CompareError as exc:
        typer.echo(f"normsuite compare: error: {exc}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        from normsuite.compare import default_out_dir

        folder = out if out is not None else default_out_dir(config)
        typer.echo(
            f"normsuite compare: interrupted; finished cells are kept in {folder}, "
            "rerun the same command with --resume to run only the missing ones",
            err=True,
        )
        raise typer.Exit(130) from None

    from rich.console import Console

    from normsuite.compare.render import render_json, render_text

    if output_format is OutputFormat.json:
        typer.echo(render_json(result))
        return
    render_text(result, Console())
    if plot and result.out_dir:
        from normsuite.compare.api import PLOT_NAME

        typer.echo(f"Plot: {Path(result.out_dir) / PLOT_NAME}")
