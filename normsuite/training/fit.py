"""``normsuite fit``: a thin :class:`~lightning.pytorch.cli.LightningCLI` with normsuite defaults.

Everything LightningCLI accepts works (``--config``, ``--trainer.max_epochs 3``,
``--model.init_args.norm gn``, ``--print_config``, ...). What normsuite adds, each only
when the config does not set it itself:

- a Rich progress bar;
- CSV and TensorBoard logs and checkpoints (best by ``val/acc``, and ``last.ckpt`` written
  after every epoch) in
  ``<runs_dir>/<run_name>/version_N/``, where ``run_name`` defaults to the config's stem;
- :class:`normsuite.BatchSizeGuard` (BatchNorm at per-device batch 1 stops the run);
- a test pass on the best checkpoint after fitting when the datamodule has a test split
  (``--test_after_fit false`` turns it off);
- resume: ``--ckpt_path PATH`` or ``--ckpt_path last`` (the newest ``last.ckpt`` of the run
  folder); the file is checked first (:func:`~normsuite.training.checkpoints.verify_checkpoint`)
  and the RNG states travel in the checkpoint (:class:`~normsuite.training.resume.RNGState`);
- checkpoints written atomically (:class:`~normsuite.training.checkpoints.AtomicCheckpointIO`);
- SIGINT/SIGTERM stop after the current batch, write ``last.ckpt`` and print the command that
  resumes (:class:`~normsuite.training.interrupt.InterruptCheckpoint`);
- a quiet first screen: one line saying what trains where, none of Lightning's tips, and no
  model summary table (``--trainer.enable_model_summary true`` brings it back);
- the run folder printed at the end.

Example:
    >>> run_fit(["--config", "recipes/mnist1d_convnet1d_bn.yaml", "--trainer.max_epochs", "1"])
    ... # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ProgressBar, RichProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.plugins.io import CheckpointIO

from normsuite.training.checkpoints import (
    AtomicCheckpointIO,
    find_last_checkpoint,
    verify_checkpoint,
)
from normsuite.training.guardrails import BatchSizeGuard
from normsuite.training.interrupt import InterruptCheckpoint
from normsuite.training.resume import RNGState

# Children of a multi-process launch (DDP) re-run this CLI; they reuse the parent's version
# so every rank agrees on one run folder.
_VERSION_ENV = "NORMSUITE_RUN_VERSION"


def run_name_from_args(args: list[str]) -> str:
    """The default run name: the stem of the last ``--config`` file, else ``"run"``."""
    name = "run"
    for i, arg in enumerate(args):
        if arg in ("--config", "-c") and i + 1 < len(args):
            name = Path(args[i + 1]).stem
        elif arg.startswith("--config="):
            name = Path(arg.split("=", 1)[1]).stem
    return name


def _next_version(root: Path) -> int:
    versions = [
        int(m.group(1))
        for p in (root.iterdir() if root.is_dir() else [])
        if (m := re.fullmatch(r"version_(\d+)", p.name))
    ]
    return max(versions, default=-1) + 1


class FitConfigError(ValueError):
    """A bad option or config value, reported by the argument parser."""


class _Parser(LightningArgumentParser):
    """Raises :class:`FitConfigError` instead of printing usage and exiting, so the command
    can report one line."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        raise FitConfigError(message) from ex


class NormsuiteCLI(LightningCLI):
    """LightningCLI for ``normsuite fit``: any LightningModule/DataModule by ``class_path``."""

    def __init__(
        self,
        *args: Any,
        default_run_name: str = "run",
        command: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self._default_run_name = default_run_name
        self._command = list(command or [])
        self.run_dir: Path | None = None
        self.resumed_from: Path | None = None
        super().__init__(*args, **kwargs)

    def _run_root(self) -> Path:
        sub = self.config.get(str(self.config.get("subcommand")), self.config)
        name = sub.get("run_name") or self._default_run_name
        return Path(sub.get("runs_dir") or "runs") / name

    def _parse_ckpt_path(self) -> None:
        """Resolve ``--ckpt_path last`` and check the file before anything loads it.

        LightningCLI's own step then reads the model's hyperparameters from the checkpoint, so
        the resumed model is the one that was trained (its resolved norm included).
        """
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        sub = self.config[subcommand]
        ckpt_path = sub.get("ckpt_path")
        if ckpt_path:
            path = (
                find_last_checkpoint(self._run_root())
                if str(ckpt_path) == "last"
                else Path(ckpt_path)
            )
            verify_checkpoint(path)
            sub["ckpt_path"] = str(path)
            self.resumed_from = path
        super()._parse_ckpt_path()

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--run_name", type=str, default=None, help="run folder name (default: config stem)"
        )
        parser.add_argument("--runs_dir", type=str, default="runs", help="root of run folders")
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=True,
            help="test the best checkpoint after fit when the datamodule has a test split",
        )

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> Trainer:
        root = self._run_root()
        name = root.name
        if config.get("logger") in (None, True):
            inherited = os.environ.get(_VERSION_ENV)
            if inherited is not None and int(os.environ.get("LOCAL_RANK", "0")) > 0:
                version = int(inherited)  # a child of Lightning's launcher: the parent chose
            else:
                # Lightning's launcher starts children after this and they inherit the choice.
                # Under torchrun/SLURM every process picks for itself; harmless, since only
                # global rank 0 writes and Lightning broadcasts its log and checkpoint folder.
                version = _next_version(root)
                os.environ[_VERSION_ENV] = str(version)
            save_dir = str(root.parent)
            config["logger"] = [
                CSVLogger(save_dir, name=name, version=version),
                TensorBoardLogger(save_dir, name=name, version=version, default_hp_metric=False),
            ]
            self.run_dir = root / f"version_{version}"
            if config.get("default_root_dir") is None:
                config["default_root_dir"] = str(root)
        present = list(config.get("callbacks") or []) + list(callbacks)
        extra: list[Callback] = []
        if config.get("enable_progress_bar") is not False and not any(
            isinstance(c, ProgressBar) for c in present
        ):
            extra.append(RichProgressBar())
        if config.get("enable_checkpointing") is not False and not any(
            isinstance(c, ModelCheckpoint) for c in present
        ):
            # Best by val/acc, and last.ckpt after EVERY epoch from a second, unmonitored
            # callback: since Lightning 2.6 a monitored callback's save_last writes last.ckpt
            # only when a top-k checkpoint is saved at the same step, so it goes stale on a
            # plateau and "resume from last" would lose the epochs since the best one.
            extra.append(
                ModelCheckpoint(
                    monitor="val/acc",
                    mode="max",
                    filename="epoch{epoch}-step{step}",
                    auto_insert_metric_name=False,
                )
            )
            extra.append(
                ModelCheckpoint(
                    filename=ModelCheckpoint.CHECKPOINT_NAME_LAST,
                    save_top_k=1,
                    enable_version_counter=False,
                )
            )
        # A model that returns its own guard (NormClassifier) keeps it; others get ours.
        own = self.model.configure_callbacks() if self.model is not None else []
        own = own if isinstance(own, list | tuple) else [own]
        if not any(isinstance(c, BatchSizeGuard) for c in [*present, *own]):
            extra.append(BatchSizeGuard())
        if not any(isinstance(c, RNGState) for c in present):
            extra.append(RNGState())
        if not any(isinstance(c, InterruptCheckpoint) for c in present):
            extra.append(InterruptCheckpoint(self._command))
        plugins = config.get("plugins")
        plugins = (
            list(plugins) if isinstance(plugins, list) else [] if plugins is None else [plugins]
        )
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            config["plugins"] = [*plugins, AtomicCheckpointIO()]
        return super()._instantiate_trainer(config, [*callbacks, *extra])

    def before_fit(self) -> None:
        """One line before training: what trains, where it goes, how to stop it."""
        if not self.trainer.is_global_zero:
            return
        model, data = type(self.model).__name__, type(self.datamodule).__name__
        norm = getattr(self.model, "hparams", {}).get("norm")
        what = f"{model}" + (f" (norm {norm})" if norm else "") + f" on {data}"
        limit = self.trainer.max_epochs
        length = f"{limit} epoch(s)" if limit not in (None, -1) else "until max_steps"
        start = f", resuming {self.resumed_from}" if self.resumed_from else ""
        folder = f"; logs and checkpoints in {self.run_dir}" if self.run_dir else ""
        _say(f"normsuite fit: training {what} for {length}{start}{folder}; Ctrl+C stops and saves")

    def after_fit(self) -> None:
        trainer = self.trainer
        sub = self.config.get(str(self.subcommand), self.config)
        if sub.get("test_after_fit") and getattr(self.datamodule, "test_set", None) is not None:
            best = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
            trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best, verbose=True)
        if trainer.is_global_zero:
            run_dir = self.run_dir or (Path(trainer.log_dir) if trainer.log_dir else None)
            if run_dir is not None:
                _say(f"normsuite fit: logs and checkpoints in {run_dir}")
            ckpt = trainer.checkpoint_callback
            if ckpt is not None and getattr(ckpt, "best_model_path", ""):
                _say(f"normsuite fit: best checkpoint {ckpt.best_model_path}")


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# Lightning's info lines a newcomer does not need on the first screen. Everything else
# (warnings, the guard's advice, errors) still shows; NORMSUITE_DEBUG=1 shows all.
_NOISE = re.compile(
    r"^(💡 Tip|GPU available|TPU available|HPU available|`weights_only` was not set|"
    r"Restoring states from the checkpoint|Loaded model weights from the checkpoint|"
    r"Restored all states from the checkpoint|You are using a CUDA device .* Tensor Cores|"
    r"Seed set to|Loading `train_dataloader` to estimate|`Trainer\(limit_\w+=.*\)` was configured)"
)


class _QuietLightning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _NOISE.match(record.getMessage().lstrip())


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    if os.environ.get("NORMSUITE_DEBUG"):
        yield
        return
    quiet = _QuietLightning()
    # Lightning logs through module loggers that propagate to "lightning.pytorch" /
    # "lightning.fabric" (its own stream handlers) or to the root logger's handlers: a filter
    # on those handlers sees every record.
    handlers = {
        handler
        for name in ("lightning.pytorch", "lightning.fabric", "")
        for handler in logging.getLogger(name).handlers
    }
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        with warnings.catch_warnings():
            # In-memory tensor datasets gain nothing from loader workers.
            warnings.filterwarnings("ignore", message=r".*does not have many workers")
            # Lightning 2.6's own use of a torch API that newer torch deprecates.
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)`")
            # A resumed run writes to a new version folder; the old folder's top-k list
            # (which this warning is about) stays where it was.
            warnings.filterwarnings("ignore", message=r".*dirpath has changed from")
            yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)


def run_fit(args: list[str]) -> NormsuiteCLI:
    """Run ``normsuite fit`` with command-line ``args`` (without the ``fit`` word)."""
    # sys.argv stays as it is (a DDP launch re-runs it in the child processes), so silence
    # LightningCLI's warning about getting both ``args`` and a command line.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    with _quiet_lightning():
        return NormsuiteCLI(
            args=["fit", *args],
            subclass_mode_model=True,
            subclass_mode_data=True,
            default_run_name=run_name_from_args(args),
            command=["normsuite", "fit", *args],
            save_config_kwargs={"overwrite": True},
            parser_class=_Parser,
            parser_kwargs={"prog": "normsuite"},
            trainer_defaults={"enable_model_summary": False},
            auto_configure_optimizers=False,
        )
