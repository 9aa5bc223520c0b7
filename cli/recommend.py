"""`normsuite recommend`: which normalization to use, per model, with reasons.

Reads the files with ``ast`` and never runs them (unless ``--trace``, which runs them in a
subprocess). Never imports torch or lightning.
"""

from __future__ import annotations

from pathlib import Path

import typer

from .check import (
    ACCUMULATE,
    BATCH_SIZE,
    CONFIG,
    DEVICES,
    EXCLUDE,
    EXTEND_EXCLUDE,
    FORCE_EXCLUDE,
    FORMAT,
    IGNORE,
    INPUT_SHAPE,
    JOBS,
    MAX_FILE_SIZE,
    MODEL,
    NO_CONFIG,
    PATHS,
    SELECT,
    TRACE,
    OutputFormat,
    run_analysis,
)


def recommend(
    paths: list[str] | None = PATHS,
    batch_size: int | None = BATCH_SIZE,
    devices: int | None = DEVICES,
    accumulate: int | None = ACCUMULATE,
    config: list[Path] | None = CONFIG,
    output_format: OutputFormat = FORMAT,
    select: list[str] | None = SELECT,
    ignore: list[str] | None = IGNORE,
    max_file_size: int | None = MAX_FILE_SIZE,
    isolated: bool = NO_CONFIG,
    jobs: int | None = JOBS,
    trace: bool = TRACE,
    model: str | None = MODEL,
    input_shape: str | None = INPUT_SHAPE,
    all_modules: bool = typer.Option(
        False,
        "--all-modules",
        help="Show every module class, blocks included (by default only top-level models: "
        "classes no other analyzed class uses; blocks are judged in their model's context).",
    ),
    exclude: list[str] | None = EXCLUDE,
    extend_exclude: list[str] | None = EXTEND_EXCLUDE,
    force_exclude: bool = FORCE_EXCLUDE,
) -> None:
    """Recommend BatchNorm, GroupNorm, LayerNorm, ... for each model, with cited reasons.

    Says the concrete layer for every norm site, the batch size it assumed and where that
    came from, and what would change the answer. Exit code 0, or 2 when a file could not
    be analyzed (or only in part: a cap was hit).
    """
    run_analysis(
        "recommend",
        paths=paths,
        batch_size=batch_size,
        devices=devices,
        accumulate=accumulate,
        config=config,
        output_format=output_format,
        select=select,
        ignore=ignore,
        max_file_size=max_file_size,
        isolated=isolated,
        jobs=jobs,
        trace=trace,
        model=model,
        input_shape=input_shape,
        all_modules=all_modules,
        exclude=exclude,
        extend_exclude=extend_exclude,
        force_exclude=force_exclude,
    )
