"""ActivationStats on CUDA: no host sync on non-logging steps, and its step-time overhead.

Run by ``bench/gpu_check.sh`` on a machine with one GPU (``pip install -e .`` done); ~1 min.
A plain training loop drives the callback's hooks (the same calls Lightning makes), so that
``torch.cuda.set_sync_debug_mode("error")`` can wrap *whole* non-logging steps: forward,
backward, SGD step and every callback hook. Any host-device sync there raises and fails the
check. Then per-step times (CUDA events, no syncs) for: no callback, ActivationStats every 50
steps, every step, and a fastai-style callback (one ``.item()`` per value, every step), in
interleaved rounds. Also checks that one logging step's numbers equal a float64 reference.

Without CUDA it runs the same loop on the CPU with a few steps (the sync check is skipped,
with a message), so the script itself can be tested anywhere.

Usage: python bench/gpu_callback.py [--steps N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from callback_overhead import Loop

from normsuite.models.factory import build_module
from normsuite.norms import is_norm_layer

CONFIGS = ("baseline", "ours @50", "ours @50 watch", "ours @1", "fastai @1")


def timed_steps(loop: Loop, steps: int, sync_check: bool) -> list[tuple[int, float]]:
    """Per-step times in ms with CUDA events (on CPU: perf_counter)."""
    cuda = loop.device == "cuda"
    marks = []
    for _ in range(steps):
        step = loop.trainer.global_step
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            loop.step(sync_check)
            end.record()
            marks.append((step, start, end))
        else:
            t0 = time.perf_counter()
            loop.step(sync_check)
            marks.append((step, (time.perf_counter() - t0) * 1e3, None))
    if cuda:
        torch.cuda.synchronize()
        return [(s, a.elapsed_time(b)) for s, a, b in marks]
    return [(s, a) for s, a, _ in marks]


def check_reference(make: Callable[[], nn.Module], shape: tuple[int, ...], device: str) -> str:
    """One logging step: the callback's numbers against float64 statistics of the tensors."""
    loop = Loop(make, shape, device, "ours @1")
    name, module = next((n, m) for n, m in loop.model.named_modules() if is_norm_layer(m))
    seen: dict[str, torch.Tensor] = {}

    def keep(mod: nn.Module, args: Any, out: torch.Tensor) -> None:
        seen["out"] = out.detach().double().cpu()

    handle = module.register_forward_hook(keep)
    loop.step(sync_check=False)
    handle.remove()
    loop.close()
    got = loop.cb.last_metrics
    ref = seen["out"]
    worst = 0.0
    for stat, value in (
        ("mean", ref.mean()),
        ("std", ref.std()),
        ("min", ref.min()),
        ("max", ref.max()),
    ):
        err = abs(got[f"act/{name}/out/{stat}"] - value.item())
        worst = max(worst, err)
        if err > 1e-5 * max(1.0, abs(value.item())):
            return f"FAIL {name} out {stat}: {got[f'act/{name}/out/{stat}']} vs {value.item()}"
    return f"ok (layer {name}, max abs error {worst:.1e})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="timed steps per config/round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    if cuda:
        print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
        torch.backends.cudnn.benchmark = True
    else:
        print(
            "CUDA not available: running the CPU path only (few steps); the sync-debug "
            "check and the GPU timings need a GPU"
        )
        torch.set_num_threads(1)
    steps = args.steps or (200 if cuda else 3)
    rounds = args.rounds if cuda else 1
    models: list[tuple[str, Callable[[], nn.Module], tuple[int, ...]]] = [
        (
            "ConvNet1d MNIST-1D (512,1,40)",
            lambda: build_module("convnet1d", "bn", 10, in_channels=1),
            (512, 1, 40),
        ),
        (
            "resnet18 (32,3,64,64)",
            lambda: build_module("resnet18", "bn", 10, in_channels=3),
            (32, 3, 64, 64),
        ),
    ]
    failed = False
    rows = []
    for name, make, shape in models:
        print(f"reference check {name}: {(msg := check_reference(make, shape, device))}")
        failed |= msg.startswith("FAIL")
        times: dict[str, list[tuple[int, float]]] = {c: [] for c in CONFIGS}
        for _ in range(rounds):
            for config in CONFIGS:
                loop = Loop(make, shape, device, config)
                timed_steps(loop, 3, sync_check=False)  # warm-up: cudnn autotune, first pack
                try:
                    times[config] += timed_steps(loop, steps, sync_check=cuda and "ours" in config)
                except RuntimeError as err:  # raised by the sync debug mode
                    print(f"FAIL {name} {config}: host-device sync on a non-logging step: {err}")
                    failed = True
                    continue
                finally:
                    loop.close()
                if config.startswith("ours") and cuda:
                    assert loop.cb._host is not None and loop.cb._host.is_pinned()
        if any(not times[c] for c in CONFIGS):
            continue
        base = statistics.median(t for _, t in times["baseline"])
        other = statistics.median(t for s, t in times["ours @50"] if s % 50)
        watch = statistics.median(t for s, t in times["ours @50 watch"] if s % 50)
        every = statistics.median(t for _, t in times["ours @1"])
        fastai = statistics.median(t for _, t in times["fastai @1"])
        rows.append(
            (
                name,
                base,
                other / base,
                (49 * other + every) / 50 / base,
                watch / base,
                every / base,
                fastai / base,
            )
        )
    print(
        f"\n{'model':32} {'baseline ms':>11} {'@50 other':>10} {'@50 amort.':>10} "
        f"{'watch other':>11} {'ours @1':>8} {'fastai @1':>9}"
    )
    for name, base, other, amort, watch, every, fastai in rows:
        print(
            f"{name:32} {base:11.2f} {other:10.3f} {amort:10.3f} {watch:11.3f} {every:8.3f} "
            f"{fastai:9.3f}"
        )
        if cuda and (amort > 1.02 or every >= fastai):
            print(f"GOAL MISSED for {name}: @50 amortized <= 1.02 and ours @1 < fastai @1")
    print(
        "ratios: median step time / baseline; '@50 other' and 'watch other' are the "
        "non-logging steps (watch: check_nonfinite_every_step=True)"
    )
    if cuda and not failed:
        print("sync check: no host-device sync on any non-logging step (set_sync_debug_mode)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
