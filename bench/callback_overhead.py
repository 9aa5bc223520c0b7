"""Training-step overhead of ActivationStats, against no callback and a fastai-style callback.

Every configuration trains the same model with a Lightning Trainer in this one process;
rounds are interleaved (baseline, ours @50, ours @1, fastai-style @1, baseline, ...) so that a
shared machine disturbs all of them alike. A step is timed from the first callback's
``on_train_batch_start`` to the last callback's ``on_train_batch_end`` (forward, backward,
optimizer step and every callback hook; data loading excluded); the first steps of each run
are warm-up and dropped.

Configurations:
- ``baseline``: no statistics callback.
- ``ours @50``: ActivationStats(every_n_steps=50), the default interval. Its *amortized* step
  time is ``(49 * median non-logging step + median logging step) / 50``, the logging-step
  time taken from ``ours @1`` (where every step is a logging step).
- ``ours @1``: ActivationStats(every_n_steps=1): statistics on every step.
- ``fastai @1``: the same statistics on every step the way fastai / wandb-style hooks do it:
  one ``.item()`` per value per tensor (a host sync each).

Goals: ours @50 amortized <= 1.02 x baseline; ours @1 < fastai @1.

Usage:
    .venv/bin/python bench/callback_overhead.py            # ~3 min on a 2-core CPU
    .venv/bin/python bench/callback_overhead.py --quick    # a few steps: checks the script
    .venv/bin/python bench/callback_overhead.py --plot docs/activation_stats.png
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from normsuite.callbacks.activation_stats import ActivationStats
from normsuite.norms import is_norm_layer

WARMUP = 3


class _StepStart(L.Callback):
    def __init__(self, clock: dict[str, Any]) -> None:
        self.clock = clock

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self.clock["t0"] = time.perf_counter()
        self.clock["step"] = trainer.global_step


class _StepEnd(L.Callback):
    def __init__(self, clock: dict[str, Any]) -> None:
        self.clock = clock
        self.times: list[tuple[int, float]] = []

    def on_train_batch_end(self, *args: Any) -> None:
        self.times.append((self.clock["step"], time.perf_counter() - self.clock["t0"]))


class ItemPerValueStats(L.Callback):
    """fastai-style reference: the same per-tensor statistics on every step, each value read
    to the host with ``.item()`` (fastai's ActivationStats moves them with ``.cpu()``)."""

    def __init__(self) -> None:
        self.handles: list[Any] = []
        self.values: list[float] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for module in pl_module.modules():
            if is_norm_layer(module):
                self.handles.append(module.register_forward_hook(self._hook))

    def _hook(self, module: nn.Module, args: tuple[Any, ...], out: Tensor) -> None:
        if not module.training:
            return
        for x in (args[0], out):
            x = x.detach().float()
            chan = x.transpose(0, 1).reshape(x.shape[1], -1).mean(1)
            self.values += [
                x.mean().item(),
                x.std().item(),
                x.min().item(),
                x.max().item(),
                x.abs().max().item(),
                (x == 0).float().mean().item(),
                (~torch.isfinite(x)).sum().item(),
                chan.std().item(),
            ]
        self.values.clear()

    def teardown(self, *args: Any, **kwargs: Any) -> None:
        for handle in self.handles:
            handle.remove()


def convnet1d() -> L.LightningModule:
    from normsuite.models.factory import build_module

    return build_module("convnet1d", "bn", 10, in_channels=1, lr=0.01)


def resnet18() -> L.LightningModule:
    from normsuite.models.factory import build_module

    return build_module("resnet18", "bn", 10, in_channels=3, lr=0.01)


# (name, model factory, input shape of one batch)
MODELS: list[tuple[str, Callable[[], L.LightningModule], tuple[int, ...]]] = [
    ("ConvNet1d MNIST-1D (100,1,40)", convnet1d, (100, 1, 40)),
    ("resnet18 (32,3,64,64)", resnet18, (32, 3, 64, 64)),
]
CONFIGS: dict[str, Callable[[], L.Callback | None]] = {
    "baseline": lambda: None,
    "ours @50": lambda: ActivationStats(every_n_steps=50),
    "ours @1": lambda: ActivationStats(every_n_steps=1),
    "fastai @1": ItemPerValueStats,
}


def _loader(shape: tuple[int, ...], steps: int) -> torch.utils.data.DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn((shape[0] * 4, *shape[1:]), generator=g)
    y = torch.randint(0, 10, (shape[0] * 4,), generator=g)
    data = torch.utils.data.TensorDataset(x, y)
    # sample with replacement: any number of steps from 4 resident batches
    sampler = torch.utils.data.RandomSampler(data, replacement=True, num_samples=shape[0] * steps)
    return torch.utils.data.DataLoader(data, batch_size=shape[0], sampler=sampler)


def _run(
    make: Callable[[], L.LightningModule],
    shape: tuple[int, ...],
    config: str,
    steps: int,
    root: str,
) -> list[tuple[int, float]]:
    clock: dict[str, Any] = {}
    end = _StepEnd(clock)
    extra = CONFIGS[config]()
    callbacks = [_StepStart(clock), *([extra] if extra else []), end]
    torch.manual_seed(0)
    trainer = L.Trainer(
        max_steps=steps,
        callbacks=callbacks,
        logger=L.pytorch.loggers.CSVLogger(root),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
        devices=1,
        log_every_n_steps=50,
        limit_val_batches=0,
    )
    trainer.fit(make(), _loader(shape, steps))
    return end.times[WARMUP:]


def measure(steps: dict[str, int], rounds: int) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for name, make, shape in MODELS:
            n = steps[name]
            times: dict[str, list[tuple[int, float]]] = {c: [] for c in CONFIGS}
            for _ in range(rounds):
                for config in CONFIGS:
                    times[config] += _run(make, shape, config, n, root)
            base = statistics.median(t for _, t in times["baseline"])
            non_logging = statistics.median(t for s, t in times["ours @50"] if s % 50)
            every = statistics.median(t for _, t in times["ours @1"])
            fastai = statistics.median(t for _, t in times["fastai @1"])
            amortized = (49 * non_logging + every) / 50
            rows.append(
                {
                    "model": name,
                    "baseline_ms": base * 1e3,
                    "ours50_nonlog": non_logging / base,
                    "ours50_amortized": amortized / base,
                    "ours1": every / base,
                    "fastai1": fastai / base,
                    "samples": len(times["baseline"]),
                }
            )
    return rows


def print_table(rows: list[dict[str, Any]]) -> bool:
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    header = (
        f"{'model':32} {'baseline ms':>11} {'@50 other':>10} {'@50 amort.':>10} "
        f"{'ours @1':>8} {'fastai @1':>9} {'ours/fastai':>11}"
    )
    print(header)
    print("-" * len(header))
    ok = True
    for r in rows:
        print(
            f"{r['model']:32} {r['baseline_ms']:11.1f} {r['ours50_nonlog']:10.3f} "
            f"{r['ours50_amortized']:10.3f} {r['ours1']:8.3f} {r['fastai1']:9.3f} "
            f"{r['ours1'] / r['fastai1']:11.3f}"
        )
        ok &= r["ours50_amortized"] <= 1.02 and r["ours1"] < r["fastai1"]
    print(
        "ratios are step time / baseline step time (medians over "
        f"{rows[0]['samples']} steps per config); goals: @50 amortized <= 1.02, "
        "ours @1 < fastai @1"
    )
    print("goals met" if ok else "GOAL MISSED")
    return ok


def make_plot(output: Path, steps: int) -> None:
    """Train the MNIST-1D ConvNet1d with ActivationStats and plot what it logged."""
    from normsuite.callbacks.plot import plot_stats
    from normsuite.data import MNIST1DDataModule
    from normsuite.models.factory import build_module

    with tempfile.TemporaryDirectory() as root:
        torch.manual_seed(0)
        cb = ActivationStats(every_n_steps=10, histogram_bins=32, histogram_range=(-4, 4))
        trainer = L.Trainer(
            max_steps=steps,
            callbacks=[cb],
            logger=L.pytorch.loggers.CSVLogger(root, name="mnist1d"),
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            accelerator="cpu",
            limit_val_batches=0,
        )
        model = build_module("convnet1d", "bn", 10, in_channels=1, lr=0.05)
        trainer.fit(model, datamodule=MNIST1DDataModule(batch_size=100))
        print(f"wrote {plot_stats(Path(root) / 'mnist1d', output, io=['out'], max_heatmaps=4)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps: checks the script")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--plot", type=Path, help="also train MNIST-1D and write this plot")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.fabric"):
        import logging

        logging.getLogger(name).setLevel(logging.ERROR)
    if args.quick:
        steps = {MODELS[0][0]: WARMUP + 4, MODELS[1][0]: WARMUP + 2}
        rows = measure(steps, rounds=1)
    else:
        steps = {MODELS[0][0]: 60, MODELS[1][0]: 14}
        rows = measure(steps, rounds=args.rounds)
    print_table(rows)
    if args.plot:
        make_plot(args.plot, steps=40 if args.quick else 400)


if __name__ == "__main__":
    main()
