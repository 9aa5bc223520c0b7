"""Training-step overhead of ActivationStats, against no callback and a fastai-style callback.

This machine is shared, so the load changes from second to second. The configurations are
therefore timed *paired*: one model per configuration, all built alike, and at every step
each of them trains one step in turn; each step time is divided by the baseline's step time
of the same round, and the table shows medians of these ratios. A step is forward, loss,
backward and an SGD step, with the callback's hooks called as Lightning calls them
(``on_train_batch_start``, ``on_before_backward``, ``on_train_batch_end``), and a real
CSVLogger receiving the metrics; Lightning's own per-step overhead, the same for every
configuration, is left out (which makes the ratios larger, not smaller).

Configurations:
- ``baseline``: no statistics callback.
- ``ours @50``: ActivationStats(every_n_steps=50), the default interval. ``@50 other`` is its
  non-logging steps; ``@50 amortized`` = (49 x other + one logging step) / 50, a logging step
  costing what ``ours @1`` costs.
- ``ours @1``: ActivationStats(every_n_steps=1): statistics on every step.
- ``fastai @1``: the same statistics on every step the way fastai / wandb-style hooks get
  them: one ``.item()`` per value per tensor (on a GPU, a host sync each).

Goals: ``@50 amortized`` <= 1.02; ``ours @1`` < ``fastai @1``.

The cost of a non-logging step is below what paired timing can resolve here (a few percent
of noise), so it is also measured directly: a BatchNorm1d(8) call on a tiny input with and
without ActivationStats' idle hooks (``torch.utils.benchmark``), times the number of watched
layers, as a share of the baseline step; ``@50 amort. (idle model)`` uses that share instead
of the paired ``@50 other``.

Usage:
    .venv/bin/python bench/callback_overhead.py            # ~4 min on a shared 2-core CPU
    .venv/bin/python bench/callback_overhead.py --quick    # a few steps: checks the script
    .venv/bin/python bench/callback_overhead.py --plot docs/activation_stats.png
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import tempfile
import time
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import Tensor, nn
from torch.utils.benchmark import Timer

from normsuite.callbacks.activation_stats import ActivationStats
from normsuite.models.factory import build_module
from normsuite.norms import is_norm_layer

WARMUP = 3
CONFIGS = ("baseline", "ours @50", "ours @1", "fastai @1")
INTERVAL = {"ours @50": 50, "ours @50 watch": 50, "ours @1": 1, "fastai @1": 1}


class ItemPerValueStats(L.Callback):
    """fastai-style reference: the same per-tensor statistics on every step, each value read
    to the host with ``.item()`` (fastai's ActivationStats moves them with ``.cpu()``)."""

    def __init__(self) -> None:
        self.handles: list[Any] = []
        self.values: list[float] = []

    def setup(self, trainer: Any, pl_module: nn.Module, stage: str) -> None:
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
        self.handles.clear()


class Loop:
    """One model and one callback configuration: a minimal stand-in for Lightning's fit loop
    that calls the callback hooks Lightning calls, in the same order."""

    def __init__(
        self,
        make: Callable[[], nn.Module],
        shape: tuple[int, ...],
        device: str,
        config: str,
        log_dir: str | None = None,
    ) -> None:
        torch.manual_seed(0)
        self.model = make().to(device)
        self.x = torch.randn(shape, device=device)
        self.y = torch.randint(0, 10, (shape[0],), device=device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9, foreach=True)
        loggers = [CSVLogger(log_dir, name=config.replace(" ", "_"))] if log_dir else []
        self.trainer = types.SimpleNamespace(
            global_step=0, log_every_n_steps=50, loggers=loggers, is_global_zero=True
        )
        self.config = config
        self.device = device
        self.cb: Any = None
        if config.startswith("ours"):
            self.cb = ActivationStats(
                every_n_steps=INTERVAL[config], check_nonfinite_every_step=config.endswith("watch")
            )
        elif config.startswith("fastai"):
            self.cb = ItemPerValueStats()
        if self.cb is not None:
            self.cb.setup(self.trainer, self.model, "fit")  # the order Lightning calls them in
            self.cb.on_fit_start(self.trainer, self.model)

    def is_logging_step(self) -> bool:
        every = INTERVAL.get(self.config)
        return every is not None and self.trainer.global_step % every == 0

    def step(self, sync_check: bool = False) -> None:
        """One training step; with ``sync_check`` (CUDA), any host-device sync in a
        non-logging step raises (``torch.cuda.set_sync_debug_mode("error")``)."""
        t, m, cb = self.trainer, self.model, self.cb
        ours = isinstance(cb, ActivationStats)
        strict = sync_check and not self.is_logging_step()
        if strict:
            torch.cuda.set_sync_debug_mode("error")
        try:
            if ours:
                cb.on_train_batch_start(t, m, None, 0)
            loss = nn.functional.cross_entropy(m(self.x), self.y)
            if ours:
                cb.on_before_backward(t, m, loss)
            loss.backward()
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
            if ours:
                cb.on_train_batch_end(t, m, None, None, 0)
        finally:
            if strict:
                torch.cuda.set_sync_debug_mode(0)
        t.global_step += 1

    def close(self) -> None:
        if isinstance(self.cb, ActivationStats):
            self.cb.on_train_end(self.trainer, self.model)
        if self.cb is not None:
            self.cb.teardown(self.trainer, self.model, "fit")


def convnet1d() -> nn.Module:
    return build_module("convnet1d", "bn", 10, in_channels=1)


def resnet18() -> nn.Module:
    return build_module("resnet18", "bn", 10, in_channels=3)


# (name, model factory, input shape of one batch)
MODELS: list[tuple[str, Callable[[], nn.Module], tuple[int, ...]]] = [
    ("ConvNet1d MNIST-1D (100,1,40)", convnet1d, (100, 1, 40)),
    ("resnet18 (32,3,64,64)", resnet18, (32, 3, 64, 64)),
]


def paired_ratios(
    make: Callable[[], nn.Module], shape: tuple[int, ...], steps: int, log_dir: str
) -> dict[str, list[tuple[int, float]]]:
    """Per config: (its global step, step time / baseline step time of the same round)."""
    loops = {c: Loop(make, shape, "cpu", c, log_dir) for c in CONFIGS}
    ratios: dict[str, list[tuple[int, float]]] = {c: [] for c in CONFIGS}
    base_ms: list[float] = []
    for i in range(WARMUP + steps):
        times = {}
        for config, loop in loops.items():
            step = loop.trainer.global_step
            t0 = time.perf_counter()
            loop.step()
            times[config] = (step, time.perf_counter() - t0)
        if i >= WARMUP:
            base = times["baseline"][1]
            base_ms.append(base * 1e3)
            for config, (step, t) in times.items():
                ratios[config].append((step, t / base))
    for loop in loops.values():
        loop.close()
    ratios["_base_ms"] = [(0, statistics.median(base_ms))]
    return ratios


def idle_hook_cost_us() -> float:
    """Extra time of one call of a watched layer on a non-logging step, in microseconds:
    ActivationStats' two idle hooks plus torch's hooked (slow) module-call path."""
    plain, hooked = nn.Sequential(nn.BatchNorm1d(8)), nn.Sequential(nn.BatchNorm1d(8))
    cb = ActivationStats(every_n_steps=50)
    cb.on_fit_start(types.SimpleNamespace(log_every_n_steps=50), hooked)  # type: ignore[arg-type]
    x = torch.randn(2, 8, 4)
    deltas = []
    for _ in range(7):  # interleaved pairs; the median difference
        a = Timer("m(x)", globals={"m": plain, "x": x}).blocked_autorange(min_run_time=0.3)
        b = Timer("m(x)", globals={"m": hooked, "x": x}).blocked_autorange(min_run_time=0.3)
        deltas.append(b.median - a.median)
    cb.teardown(None, hooked, "fit")  # type: ignore[arg-type]
    return max(statistics.median(deltas), 0.0) * 1e6


def measure(steps: dict[str, int]) -> list[dict[str, Any]]:
    rows = []
    idle_us = idle_hook_cost_us()
    with tempfile.TemporaryDirectory() as log_dir:
        for name, make, shape in MODELS:
            r = paired_ratios(make, shape, steps[name], log_dir)
            other = statistics.median(x for s, x in r["ours @50"] if s % 50)
            every = statistics.median(x for _, x in r["ours @1"])
            fastai = statistics.median(x for _, x in r["fastai @1"])
            layers = sum(1 for m in make().modules() if is_norm_layer(m))
            idle = 1 + layers * idle_us / (r["_base_ms"][0][1] * 1e3)
            rows.append(
                {
                    "model": name,
                    "baseline_ms": r["_base_ms"][0][1],
                    "other": other,
                    "amortized": (49 * other + every) / 50,
                    "idle": idle,
                    "amortized_idle": (49 * idle + every) / 50,
                    "layers": layers,
                    "idle_us": idle_us,
                    "every": every,
                    "fastai": fastai,
                    "samples": len(r["baseline"]),
                }
            )
    return rows


def print_table(rows: list[dict[str, Any]]) -> bool:
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs (shared), "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    )
    header = (
        f"{'model':32} {'baseline ms':>11} {'@50 other':>10} {'@50 amort.':>10} "
        f"{'idle model':>10} {'amort. (idle model)':>19} {'ours @1':>8} {'fastai @1':>9} "
        f"{'ours/fastai':>11}"
    )
    print(header)
    print("-" * len(header))
    ok = True
    for r in rows:
        print(
            f"{r['model']:32} {r['baseline_ms']:11.1f} {r['other']:10.3f} "
            f"{r['amortized']:10.3f} {r['idle']:10.4f} {r['amortized_idle']:19.3f} "
            f"{r['every']:8.3f} {r['fastai']:9.3f} {r['every'] / r['fastai']:11.3f}"
        )
        ok &= r["amortized_idle"] <= 1.02 and r["every"] < r["fastai"]
    print(
        "ratios: median over paired rounds of step time / baseline step time "
        f"({', '.join(str(r['samples']) for r in rows)} rounds); "
        "goals: @50 amortized <= 1.02, ours @1 < fastai @1"
    )
    print(
        f"idle model: {rows[0]['idle_us']:.1f} us per watched layer on a non-logging step "
        f"(hooks + torch's hooked call path) x {', '.join(str(r['layers']) for r in rows)} "
        "layers, as a share of the baseline step"
    )
    print("goals met" if ok else "GOAL MISSED")
    return ok


def make_plot(output: Path, steps: int) -> None:
    """Train the MNIST-1D ConvNet1d with ActivationStats and plot what it logged."""
    from normsuite.callbacks.plot import plot_stats
    from normsuite.data import MNIST1DDataModule

    with tempfile.TemporaryDirectory() as root:
        torch.manual_seed(0)
        cb = ActivationStats(every_n_steps=10, histogram_bins=32, histogram_range=(-4, 4))
        trainer = L.Trainer(
            max_steps=steps,
            callbacks=[cb],
            logger=CSVLogger(root, name="mnist1d"),
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            accelerator="cpu",
            limit_val_batches=0,
        )
        model = build_module("convnet1d", "bn", 10, in_channels=1, lr=0.01)
        trainer.fit(model, datamodule=MNIST1DDataModule(batch_size=100))
        written = plot_stats(Path(root) / "mnist1d", output, max_heatmaps=4, dpi=72)
        print(f"wrote {written}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps: checks the script")
    parser.add_argument("--plot", type=Path, help="also train MNIST-1D and write this plot")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if args.quick:
        steps = {MODELS[0][0]: 4, MODELS[1][0]: 2}
    else:
        steps = {MODELS[0][0]: 200, MODELS[1][0]: 24}
    print_table(measure(steps))
    if args.plot:
        make_plot(args.plot, steps=40 if args.quick else 300)


if __name__ == "__main__":
    main()
