"""``run_compare``: the whole comparison from Python (the CLI is a thin wrapper around it)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import CompareError
from .grid import Cell, expand_grid
from .recipe import CompareSettings, load_recipe, resolve_settings
from .results import AdviceView, CompareResult, summarize
from .store import ResultStore

PLOT_NAME = "accuracy_vs_batch.png"


def default_out_dir(config: str | os.PathLike[str] | Mapping[str, Any]) -> Path:
    """``runs/compare/<recipe name>`` for a recipe file, ``runs/compare/python`` for a dict."""
    name = Path(config).stem if not isinstance(config, Mapping) else "python"
    return Path("runs") / "compare" / name


def advice_by_batch(settings: CompareSettings) -> dict[int, AdviceView]:
    """What ``normsuite.advice.advise`` recommends at each batch size of the grid.

    The architecture family comes from the recipe's ``backbone`` (normsuite's factory);
    a model compare cannot classify gets no advice (the verdict then says "no advice").
    """
    from normsuite.advice import advise

    family = _architecture(settings)
    if family is None:
        return {}
    trainer = settings.recipe.get("trainer") or {}
    accumulate = int(trainer.get("accumulate_grad_batches") or 1)
    views = {}
    for batch in settings.batch_sizes:
        advice = advise(family, batch, devices=1, accumulate=accumulate)
        views[batch] = AdviceView(advice.norm, tuple(advice.rules), " ".join(advice.rationale))
    return views


def _architecture(settings: CompareSettings) -> str | None:
    try:
        from normsuite.models.factory import BACKBONES
    except ImportError:
        return None
    model = settings.recipe["model"]
    backbone = (model.get("init_args") or {}).get("backbone")
    if backbone is None and model.get("class_path", "").endswith("NormClassifier"):
        from .recipe import _class_default

        backbone = _class_default(model["class_path"], "backbone")
    return BACKBONES.get(str(backbone)) if backbone is not None else None


def run_compare(
    config: str | os.PathLike[str] | Mapping[str, Any],
    *,
    norms: str | Sequence[str] | None = None,
    batch_sizes: str | Sequence[int] | None = None,
    seeds: int | None = None,
    max_steps: int | None = None,
    epochs: float | None = None,
    lr_scaling: str | None = None,
    lrs: str | Mapping[int, float] | None = None,
    threads: int | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    plot: bool = True,
    progress: bool | Any = False,
    on_cell_end: Callable[[dict[str, Any]], None] | None = None,
) -> CompareResult:
    """Train every (norm, batch size, seed) cell of ``config`` and summarize the evidence.

    ``config`` is a LightningCLI recipe (path or dict); options left ``None`` come from its
    ``compare:`` block, then from the defaults (3 seeds; LR scaling by the optimizer, see
    :func:`~normsuite.compare.grid.default_lr_scaling`). ``threads`` sets
    ``torch.set_num_threads`` for the run (restored afterwards). Finished cells are appended
    to ``out_dir/results.jsonl`` as they end; ``resume=True`` skips the cells already there.
    ``on_cell_end`` is called with each new record (after it is stored). ``progress=True``
    shows a progress bar with an ETA on stderr (or pass a Rich ``Console`` to draw it there).

    Example:
        >>> result = run_compare("recipes/compare_mnist1d_bn_gn.yaml", seeds=1)  # doctest: +SKIP
        >>> [(b.batch_size, b.winner, b.verdict) for b in result.batches]         # doctest: +SKIP
    """
    if threads is not None and (type(threads) is not int or threads < 1):  # bool is no count
        raise CompareError(f"--threads must be an integer >= 1, got {threads!r}")
    recipe = load_recipe(config)
    settings = resolve_settings(
        recipe,
        norms=norms,
        batch_sizes=batch_sizes,
        seeds=seeds,
        max_steps=max_steps,
        epochs=epochs,
        lr_scaling=lr_scaling,
        lrs=lrs,
    )
    cells = expand_grid(
        settings.norms,
        settings.batch_sizes,
        settings.seeds,
        base_lr=settings.base_lr if settings.base_lr is not None else 0.0,
        base_batch=settings.base_batch or 1,
        lr_scaling=settings.lr_scaling,
        lrs=settings.lrs,
    )
    out = Path(out_dir) if out_dir is not None else default_out_dir(config)
    store = ResultStore.open(out, settings.fingerprint_fields(), resume=resume)

    # Heavy imports only now that every option is known to be good.
    import torch

    from .runner import plan_steps, preflight

    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        preflight(settings)
        done = store.finished()
        todo = [cell for cell in cells if cell.key not in done]
        bar = _Progress(progress)
        plan = plan_steps(settings) if bar.enabled and todo else {}
        _train(settings, cells, todo, done, plan, store, bar, on_cell_end)
    finally:
        torch.set_num_threads(previous_threads)

    records = [done[cell.key] for cell in cells]
    result = summarize(
        records, advice_by_batch(settings), settings=_public(settings), out_dir=str(out)
    )
    if plot:
        from .plot import plot_accuracy

        plot_accuracy(result, out / PLOT_NAME)
    return result


def _train(
    settings: CompareSettings,
    cells: Sequence[Cell],
    todo: Sequence[Cell],
    done: dict[str, dict[str, Any]],
    plan: Mapping[int, int],
    store: ResultStore,
    bar: _Progress,
    on_cell_end: Callable[[dict[str, Any]], None] | None,
) -> None:
    """Run the cells still to do, store each record as it ends and drive the progress bar."""
    from .runner import refused_record, run_cell

    # A refusal (BN at batch 1) does not depend on the seed: the other seeds of that
    # (norm, batch size) are recorded as refused without building and training again.
    refused = {(r["norm"], r["batch_size"]): r for r in done.values() if r.get("refused")}
    steps = {cell.key: plan.get(cell.batch_size, 1) for cell in cells}
    finished = sum(steps[cell.key] for cell in cells if cell.key in done)
    with bar.start(total=sum(steps.values()), completed=finished):
        for number, cell in enumerate(todo, start=len(cells) - len(todo) + 1):
            bar.describe(
                f"cell {number}/{len(cells)}: {cell.norm} batch {cell.batch_size} seed {cell.seed}"
            )
            earlier = refused.get((cell.norm, cell.batch_size))
            if earlier is not None:
                new = refused_record(cell, earlier["refused"], earlier.get("reason", ""))
            else:
                new = run_cell(settings, cell, on_step=bar.step if bar.enabled else None)
            record = store.append(new)
            done[cell.key] = record
            if record.get("refused"):
                refused[(cell.norm, cell.batch_size)] = record
            finished += steps[cell.key]
            bar.reach(finished)  # a refused or shorter cell still completes its share
            if on_cell_end is not None:
                on_cell_end(record)


def _public(settings: CompareSettings) -> dict[str, Any]:
    """The settings shown in the JSON output (the recipe itself stays in manifest.json)."""
    fields = settings.fingerprint_fields()
    fields.pop("recipe")
    fields["lr_scaling_why"] = settings.lr_scaling_why
    return fields


class _Progress:
    """A Rich progress bar over the training steps of all cells, with an ETA, or nothing.

    ``enabled`` is ``True`` (draw on stderr), a Rich ``Console`` (draw there) or falsy. A
    console that is not a terminal (a log file) gets no bar: one frame at the end says
    nothing. The ETA is Rich's: remaining steps over the recent step rate, so it follows the
    current cell's speed (small batches take more, cheaper steps).
    """

    def __init__(self, enabled: bool | Any) -> None:
        self._bar: Any = None
        self._task: Any = None
        self._console: Any = None
        if enabled:
            from rich.console import Console

            self._console = Console(stderr=True) if enabled is True else enabled
        self.enabled = self._console is not None and self._console.is_terminal

    @contextlib.contextmanager
    def start(self, *, total: int, completed: int) -> Iterator[_Progress]:
        if not self.enabled:
            yield self
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = [
            TextColumn("[bold]compare[/bold] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        ]
        with Progress(*columns, console=self._console) as bar:
            self._bar = bar
            self._task = bar.add_task("", total=total, completed=completed)
            try:
                yield self
            finally:
                self._bar = None

    def describe(self, text: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=text)

    def step(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=n)

    def reach(self, completed: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=completed)


__all__ = ["CompareError", "default_out_dir", "run_compare"]
