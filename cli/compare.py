"""`normsuite compare`: short fits per norm x batch size x seed, and which norm wins where."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


class LrRule(str, Enum):
    linear = "linear"
    sqrt = "sqrt"
    none = "none"


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
    seeds: int | None = typer.Option(None, "--seeds", help="Seeds per cell (0..N-1)."),
    max_steps: int | None = typer.Option(
        None, "--max-steps", help="Training steps per cell (same for every batch size)."
    ),
    epochs: float | None = typer.Option(
        None,
        "--epochs",
        help="Epochs per cell instead of --max-steps: every batch size sees the same samples "
        "(the GN paper's protocol).",
    ),
    lr_rule: LrRule | None = typer.Option(
        None,
        "--lr-rule",
        help="Scale the recipe's LR with batch size: linear (Goyal et al. 2017, default), "
        "sqrt, or none.",
    ),
    lrs: str | None = typer.Option(
        None, "--lrs", help="Explicit LR per batch size, e.g. 2:0.01,8:0.02 (wins over the rule)."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder [default: runs/compare/<recipe name>]."
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
    winner per batch size with what `normsuite recommend` would advise.
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
            lr_rule=lr_rule.value if lr_rule is not None else None,
            lrs=lrs,
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
