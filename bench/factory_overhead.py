"""Training-step time of ``build_module("resnet18", "bn")`` vs torchvision ``resnet18()``.

Both run the same plain PyTorch loop (forward, cross-entropy, backward, AdamW step) on the
same batch, interleaved round by round so that load on a shared machine hits both alike.
A third row times the full Lightning ``Trainer.fit`` step of the NormClassifier (logging,
metrics, hooks included) for reference. Goal of issue 3: factory / torchvision <= 1.05.

    .venv/bin/python bench/factory_overhead.py [--batch 16 --size 64 --rounds 7 --steps 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18

from normsuite import build_module
from normsuite.data import FakeDataModule


def _step_fn(
    model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
) -> Callable[[], None]:
    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def _time(step: Callable[[], None], steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


class _StepTimer(pl.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_start(self, *args) -> None:
        self._t = time.perf_counter()

    def on_train_batch_end(self, *args) -> None:
        self.times.append(time.perf_counter() - self._t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, 10, (args.batch,))

    ref = resnet18(num_classes=10)
    ref_step = _step_fn(ref, torch.optim.AdamW(ref.parameters(), lr=1e-3), x, y)
    ours = build_module("resnet18", "bn", 10, scheduler="none", guard=False)
    ours_step = _step_fn(ours, ours.configure_optimizers(), x, y)
    for step in (ref_step, ours_step):  # warm-up
        step()
    t_ref, t_ours = [], []
    for _ in range(args.rounds):
        t_ref.append(_time(ref_step, args.steps))
        t_ours.append(_time(ours_step, args.steps))
    base = statistics.median(t_ref)

    timer = _StepTimer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = pl.Trainer(
            max_steps=args.rounds * args.steps + 1,
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            callbacks=[timer],
        )
        dm = FakeDataModule(
            shape=[3, args.size, args.size],
            num_samples=args.batch * (args.rounds * args.steps + 1),
            batch_size=args.batch,
        )
        trainer.fit(build_module("resnet18", "bn", 10, scheduler="none"), datamodule=dm)
    t_fit = statistics.median(timer.times[1:])

    print(
        f"ResNet-18 training step, batch {args.batch}, {args.size}x{args.size}, CPU threads "
        f"{torch.get_num_threads()}, median of {args.rounds} rounds x {args.steps} steps"
    )
    print(f"{'variant':<48}{'ms/step':>10}{'ratio':>8}")
    print(f"{'torchvision resnet18(), plain loop':<48}{base * 1e3:>10.1f}{1.0:>8.3f}")
    rows = [
        ('build_module("resnet18", "bn"), plain loop', statistics.median(t_ours)),
        ("NormClassifier in Lightning Trainer.fit", t_fit),
    ]
    for label, t in rows:
        print(f"{label:<48}{t * 1e3:>10.1f}{t / base:>8.3f}")


if __name__ == "__main__":
    main()
