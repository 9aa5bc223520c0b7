"""Running comparison cells: each (norm, batch size, seed) is a short in-process Lightning fit.

The recipe's model, data and optimizer are kept; the trainer is compare's own (one device,
no logger, no checkpoints, no progress bar, no validation loop during the fit). After the fit
the cell is evaluated on the datamodule's validation set in eval mode.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import LightningCLI
from torch.nn import functional as F
from torch.utils.data import DataLoader

from .errors import CompareError
from .grid import Cell
from .recipe import KEPT_TRAINER_KEYS, CompareSettings

WARMUP_STEPS = 3  # first steps pay for allocator warm-up and lazy init; not timed
EVAL_BATCH = 256  # eval mode makes the result independent of the evaluation batch size
TORCH_ONE_VALUE = "Expected more than 1 value per channel when training"  # torch's BN error


class CellMeter(L.Callback):
    """Train time per step and memory of one cell.

    Time: wall time from ``on_train_batch_start`` to ``on_train_batch_end`` (CUDA is
    synchronized so the GPU work is inside the window), median over steps after warm-up.

    Memory: on CUDA, ``torch.cuda.max_memory_allocated`` over the fit (not the evaluation).
    On CPU there is no allocator peak to read (the process RSS only grows and mixes every
    cell of the run), so the cell reports what the model needs: parameter and gradient
    bytes plus the bytes of the tensors autograd saves for backward in one training step
    (counted once per storage, parameters excluded), captured with
    ``torch.autograd.graph.saved_tensors_hooks``. Optimizer state is not included.
    """

    def __init__(self) -> None:
        self.step_times: list[float] = []
        self.saved_bytes = 0
        self.mem_kind = "params_grads_saved"
        self._start = 0.0
        self._hooks: contextlib.ExitStack | None = None
        self._param_storages: set[int] = set()
        self._seen: set[int] = set()
        self._measured = False  # saved tensors are counted on the first micro-batch only
        self._cuda_peak = 0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            self.mem_kind = "cuda_max_allocated"
            torch.cuda.reset_peak_memory_stats(pl_module.device)

    def _sync(self, pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not self._measured and self.mem_kind == "params_grads_saved":
            self._measured = True
            self._param_storages = {p.untyped_storage().data_ptr() for p in pl_module.parameters()}
            self._hooks = contextlib.ExitStack()
            self._hooks.enter_context(
                torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
            )
        self._sync(pl_module)
        self._start = time.perf_counter()

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in self._param_storages and ptr not in self._seen:
            self._seen.add(ptr)
            self.saved_bytes += storage.nbytes()
        return tensor

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self._close_hooks()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._sync(pl_module)
        self.step_times.append(time.perf_counter() - self._start)
        self._close_hooks()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # read the peak here: the evaluation that follows the fit must not count
        if self.mem_kind == "cuda_max_allocated":
            self._cuda_peak = torch.cuda.max_memory_allocated(pl_module.device)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        # a refused cell (BN at batch 1) raises inside the step, between batch start and
        # backward: the saved-tensor hook is process-global and must not outlive the cell
        self._close_hooks()

    def teardown(self, trainer, pl_module, stage: str) -> None:
        self._close_hooks()

    def _close_hooks(self) -> None:
        if self._hooks is not None:
            self._hooks.close()
            self._hooks = None
            self._seen.clear()

    def step_ms(self) -> float | None:
        times = self.step_times[WARMUP_STEPS:] or self.step_times
        return statistics.median(times) * 1e3 if times else None

    def memory_mb(self, module: torch.nn.Module) -> float:
        if self.mem_kind == "cuda_max_allocated":
            return self._cuda_peak / 2**20
        param_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
        grad_bytes = sum(
            p.numel() * p.element_size() for p in module.parameters() if p.requires_grad
        )
        return (param_bytes + grad_bytes + self.saved_bytes) / 2**20


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's per-fit banners and hints (one line each, per cell, is noise)."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
        warnings.filterwarnings("ignore", message=".*treespec.*deprecated.*")
        # compare passes each cell's config as args=; its own CLI options are in sys.argv
        warnings.filterwarnings("ignore", message=".*args parameter is intended to run.*")
        with contextlib.suppress(ImportError):
            # The guard repeats the advice for every BN cell; the verdict table shows it once.
            from normsuite.training.guardrails import BatchSizeWarning

            warnings.filterwarnings("ignore", category=BatchSizeWarning)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


def _set_path(config: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = config
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def cell_config(settings: CompareSettings, cell: Cell) -> dict[str, Any]:
    """The recipe with this cell's norm, batch size, LR and seed, and compare's trainer."""
    config = copy.deepcopy(settings.recipe)
    config["model"].setdefault("init_args", {})["norm"] = cell.norm
    config["data"].setdefault("init_args", {})["batch_size"] = cell.batch_size
    if settings.lr_path:
        _set_path(config, settings.lr_path, cell.lr)
    recipe_trainer = config.get("trainer") or {}
    config["trainer"] = {k: recipe_trainer[k] for k in KEPT_TRAINER_KEYS if k in recipe_trainer}
    config["seed_everything"] = cell.seed
    return config


def _instantiate(config: dict[str, Any], *, with_data: bool = True) -> LightningCLI:
    """Build model, datamodule and trainer from a LightningCLI config dict, running nothing."""
    config = dict(config)
    if not with_data:
        config.pop("data", None)
    config["trainer"] = {
        **config.get("trainer", {}),
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "devices": 1,
    }
    return LightningCLI(
        args=config,
        run=False,
        save_config_callback=None,
        parser_kwargs={"exit_on_error": False},
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def preflight(settings: CompareSettings) -> None:
    """Build the model once per norm (no data, no training) so a norm that cannot be built
    for this model (``gn:7`` on 64 channels, a misspelt name) fails before any training."""
    for norm in settings.norms:
        cell = Cell(norm=norm, batch_size=settings.batch_sizes[0], seed=0, lr=1e-3)
        config = cell_config(settings, cell)
        config["seed_everything"] = 0  # no training here; a fixed seed keeps Lightning quiet
        with quiet_lightning():
            try:
                _instantiate(config, with_data=False)
            except (Exception, SystemExit) as exc:
                cause = exc.__cause__ or exc.__context__ or exc
                raise CompareError(
                    f"cannot build the model with norm {norm!r}: {_first_line(cause)}"
                ) from None


def _evaluate(model: L.LightningModule, datamodule: L.LightningDataModule) -> tuple[float, float]:
    """Validation accuracy and mean cross-entropy, eval mode, over the whole validation set."""
    loader = datamodule.val_dataloader()
    if not isinstance(loader, DataLoader):
        raise CompareError("the datamodule's val_dataloader must return one DataLoader")
    loader = DataLoader(loader.dataset, batch_size=EVAL_BATCH, collate_fn=loader.collate_fn)
    model.eval()
    correct, total, loss_sum = 0, 0, 0.0
    with torch.inference_mode():
        for x, y in loader:
            x, y = x.to(model.device), y.to(model.device)
            logits = model(x)
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(dim=-1) == y).sum().item()
            total += y.numel()
    if total == 0:
        raise CompareError("the validation set is empty; compare needs validation data")
    return correct / total, loss_sum / total


def _max_steps(settings: CompareSettings, cli: LightningCLI) -> int:
    if settings.max_steps is not None:
        return settings.max_steps
    assert settings.epochs is not None
    cli.datamodule.setup("fit")
    per_epoch = len(cli.datamodule.train_dataloader())
    return max(1, math.ceil(settings.epochs * per_epoch))


def plan_steps(settings: CompareSettings) -> dict[int, int]:
    """Training steps of a cell at each batch size (for the progress bar and its ETA).

    With ``--max-steps`` that is the same number everywhere; with ``--epochs`` it takes one
    datamodule setup per batch size (no training).
    """
    if settings.max_steps is not None:
        return dict.fromkeys(settings.batch_sizes, settings.max_steps)
    plan = {}
    for batch in settings.batch_sizes:
        cell = Cell(norm=settings.norms[0], batch_size=batch, seed=0, lr=1e-3)
        config = cell_config(settings, cell)
        with quiet_lightning():
            plan[batch] = _max_steps(settings, _instantiate(config))
    return plan


class _StepProgress(L.Callback):
    """Reports each optimizer step to ``on_step`` (the progress bar)."""

    def __init__(self, on_step: Callable[[int], None]) -> None:
        self.on_step = on_step
        self.seen = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step > self.seen:
            self.on_step(trainer.global_step - self.seen)
            self.seen = trainer.global_step


def refusal(exc: BaseException, batch_size: int) -> str | None:
    """The table label of a cell that BatchNorm refuses to train, or None for other errors.

    Two sources: normsuite's ``BatchSizeGuard`` (BN at per-device batch 1, before the first
    step) and PyTorch's own "Expected more than 1 value per channel" (a BN layer that sees a
    single value per channel, e.g. after global pooling). Both are rule NRM005; neither says
    anything about the other cells, so the comparison goes on.
    """
    from normsuite.training.guardrails import BatchNormBatchSizeError

    if isinstance(exc, BatchNormBatchSizeError):
        return f"BN at batch {batch_size}, see NRM005"
    if isinstance(exc, ValueError) and str(exc).startswith(TORCH_ONE_VALUE):
        return f"BN saw 1 value per channel at batch {batch_size}, see NRM005"
    return None


def refused_record(cell: Cell, label: str, reason: str, wall_s: float = 0.0) -> dict[str, Any]:
    """The stored line of a refused cell: no metrics, the label and the error's first line."""
    return {
        "key": cell.key,
        **cell.to_dict(),
        "refused": label,
        "reason": reason,
        "steps": 0,
        "val_acc": None,
        "val_loss": None,
        "step_ms": None,
        "mem_mb": None,
        "wall_s": wall_s,
    }


def run_cell(
    settings: CompareSettings,
    cell: Cell,
    *,
    on_step: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train and evaluate one cell; returns its record (the line stored in results.jsonl).

    ``on_step(n)`` is called as optimizer steps finish. A cell that BatchNorm refuses (see
    :func:`refusal`) returns a record with ``refused`` set instead of raising; any other
    error propagates.
    """
    started = time.perf_counter()
    with quiet_lightning():
        cli = _instantiate(cell_config(settings, cell))
        steps = _max_steps(settings, cli)
        meter = CellMeter()
        callbacks: list[L.Callback] = [meter]
        if on_step is not None:
            callbacks.append(_StepProgress(on_step))
        kept = cell_config(settings, cell)["trainer"]
        trainer = L.Trainer(
            **kept,
            devices=1,
            max_steps=steps,
            max_epochs=-1,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=callbacks,
        )
        try:
            trainer.fit(cli.model, datamodule=cli.datamodule)
        except SystemExit:
            # Lightning turns Ctrl-C inside fit() into a graceful shutdown and sys.exit(1);
            # give the caller the interrupt back so it can say how to resume.
            if trainer.interrupted:
                raise KeyboardInterrupt from None
            raise
        except ValueError as exc:
            label = refusal(exc, cell.batch_size)
            if label is None:
                raise
            return refused_record(cell, label, _first_line(exc), time.perf_counter() - started)
        val_acc, val_loss = _evaluate(cli.model, cli.datamodule)
    return {
        "key": cell.key,
        **cell.to_dict(),
        "steps": trainer.global_step,
        "val_acc": val_acc,
        "val_loss": val_loss,
        "step_ms": meter.step_ms(),
        "mem_mb": meter.memory_mb(cli.model),
        "mem_kind": meter.mem_kind,
        "device": str(cli.model.device),
        "threads": torch.get_num_threads(),
        "wall_s": time.perf_counter() - started,
    }
