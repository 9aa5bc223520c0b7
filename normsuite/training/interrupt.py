"""Stop cleanly on SIGINT / SIGTERM: checkpoint at a batch boundary and say how to resume.

Lightning already turns SIGTERM into a stop at the next batch boundary (and, under SLURM with
auto-requeue, saves an ``hpc_ckpt`` and requeues the job). :class:`InterruptCheckpoint` adds:

- the first Ctrl+C (SIGINT) is handled the same way: the current batch finishes, then the run
  stops (a second Ctrl+C interrupts at once, as usual);
- on such a stop, a checkpoint with the full training state (weights, optimizer, LR
  scheduler, loop counters, RNG) is written atomically over ``last.ckpt``;
- one line says where it is and gives the exact command that resumes the run.

Example:
    >>> trainer = Trainer(callbacks=[InterruptCheckpoint("normsuite fit --config x.yaml")])
    ... # doctest: +SKIP
"""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

__all__ = ["InterruptCheckpoint", "resume_command"]


def resume_command(base: list[str], ckpt: str | Path) -> str:
    """``base`` (a command as argv) without any ``--ckpt_path`` option, plus ``--ckpt_path ckpt``.

    >>> resume_command(["normsuite", "fit", "--config", "a.yaml", "--ckpt_path", "x"], "y")
    'normsuite fit --config a.yaml --ckpt_path y'
    """
    kept: list[str] = []
    skip = False
    for arg in base:
        if skip:
            skip = False
            continue
        if arg == "--ckpt_path":
            skip = True
            continue
        if arg.startswith("--ckpt_path="):
            continue
        kept.append(arg)
    return shlex.join([*kept, "--ckpt_path", str(ckpt)])


class InterruptCheckpoint(pl.Callback):
    """On SIGINT/SIGTERM during ``fit``: finish the batch, write ``last.ckpt``, print how to resume.

    Args:
        command: the command that started the run, as argv (``["normsuite", "fit", ...]``);
            the printed resume command is this with ``--ckpt_path <checkpoint>``.
        stream: where the line goes (stderr by default).
    """

    def __init__(self, command: list[str] | None = None, stream: Any = None) -> None:
        self.command = list(command or [])
        self.stream = stream
        self.signal_name: str | None = None
        self.checkpoint: Path | None = None
        self._previous: Any = None
        self._trainer: pl.Trainer | None = None

    # -- SIGINT: the same batch-boundary stop Lightning gives SIGTERM --------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._trainer = trainer
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return  # someone (a launcher, a notebook) handles Ctrl+C: leave it to them
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        connector = getattr(self._trainer, "_signal_connector", None)
        if connector is None or self.signal_name is not None:
            self._restore()
            raise KeyboardInterrupt  # second Ctrl+C: stop now, as Python would
        self.signal_name = "SIGINT"
        # Lightning's loops check this flag after every batch and raise SIGTERMException.
        connector.received_sigterm = True
        self._write("normsuite fit: Ctrl+C: stopping after this batch (press again to abort now)")

    def _restore(self) -> None:
        if self._previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._previous)
        self._previous = None

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._restore()

    # -- the checkpoint and the line ---------------------------------------------------------
    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._restore()
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != TrainerFn.FITTING:
            return
        self.signal_name = self.signal_name or "SIGTERM"
        # The command line reports 128 + the signal number (130 for Ctrl+C, 143 for SIGTERM).
        exception.normsuite_signal = self.signal_name  # type: ignore[attr-defined]
        path = _last_path(trainer)
        # Raised at a batch boundary: the state is consistent. Every rank calls this (it
        # ends in a barrier); rank 0 writes.
        trainer.save_checkpoint(path)
        self.checkpoint = path
        if trainer.is_global_zero:
            where = f"epoch {trainer.current_epoch}, step {trainer.global_step}"
            resume = (
                resume_command(self.command, path)
                if self.command
                else f"trainer.fit(..., ckpt_path={str(path)!r})"
            )
            self._write(
                f"normsuite fit: {self.signal_name}: stopped at {where}; checkpoint {path}; "
                f"resume with: {resume}"
            )

    def _write(self, line: str) -> None:
        stream = self.stream or sys.stderr
        print(line, file=stream, flush=True)


def _last_path(trainer: pl.Trainer) -> Path:
    callback = trainer.checkpoint_callback
    if isinstance(callback, ModelCheckpoint) and callback.dirpath:
        name = callback.CHECKPOINT_NAME_LAST + callback.FILE_EXTENSION
        return Path(callback.dirpath) / name
    return Path(trainer.default_root_dir) / "interrupted.ckpt"
