"""Forward+backward time of each build_norm layer against plain PyTorch formulations.

For every spec and layout, each PyTorch formulation of the same computation is first
checked against the normsuite layer (same values), then all are timed in this one run with
``torch.utils.benchmark.Timer`` (median of blocked runs, one thread, so that a shared
machine disturbs the numbers less). The table prints ``ratio = normsuite / fastest
reference`` among the references that return the same memory layout as the normsuite
layer, which keeps the input's (the others are shown, marked ``*``); the goal is <= 1.1
everywhere. Where normsuite returns torch's own class, the ratio only shows timing noise.

Usage:
    .venv/bin/python bench/norm_layers.py            # ~3 min on a 2-core CPU
    .venv/bin/python bench/norm_layers.py --quick    # shorter runs, same table
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.benchmark import Timer
from torchvision.ops.misc import FrozenBatchNorm2d

from normsuite.norms import build_norm

Fn = Callable[[Tensor], Tensor]
OURS = "normsuite"
ROUNDS = 6  # interleaved timing rounds per case


@dataclass(frozen=True)
class Case:
    name: str
    shape: tuple[int, ...]
    ndim: int  # build_norm's ndim
    channels_last: bool  # build_norm's flag: channels are the last dim
    memory_format: torch.memory_format = torch.contiguous_format

    @property
    def channels(self) -> int:
        return self.shape[-1] if self.channels_last else self.shape[1]

    def make_input(self) -> Tensor:
        x = torch.randn(self.shape).to(memory_format=self.memory_format)
        return x.requires_grad_()


CASES = [
    Case("NCHW (32,64,56,56) contiguous", (32, 64, 56, 56), 4, False),
    Case("NCHW (32,64,56,56) channels_last", (32, 64, 56, 56), 4, False, torch.channels_last),
    Case("NLC (32,128,512) tokens", (32, 128, 512), 3, True),
    Case("NCL (32,512,128) channels-first", (32, 512, 128), 3, False),
]
SPECS = ["bn", "frozenbn", "gn", "ln", "rms", "in"]


def _last(fn: Fn) -> Fn:
    """Run a last-dim op on (N, C, *) by permuting to (N, *, C) and back (a view each way)."""
    return lambda x: fn(x.movedim(1, -1)).movedim(-1, 1)


def _first(fn: Fn) -> Fn:
    """Run a channels-first op on (N, *, C) by transposing to (N, C, *) and back."""
    return lambda x: fn(x.movedim(-1, 1)).movedim(1, -1)


def _frozen_ops(c: int, dims: int, last: bool, fused: bool = False) -> Fn:
    """torchvision's x * scale + shift, or (fused) one torch.addcmul(shift, x, scale)."""
    bn = FrozenBatchNorm2d(c)

    def run(x: Tensor) -> Tensor:
        shape = (c,) if last else (1, c) + (1,) * (dims - 2)
        scale = bn.weight * (bn.running_var + bn.eps).rsqrt()
        shift = bn.bias - bn.running_mean * scale
        if fused:
            return torch.addcmul(shift.view(shape), x, scale.view(shape))
        return x * scale.view(shape) + shift.view(shape)

    return run


def references(spec: str, case: Case) -> dict[str, Fn]:
    """Plain PyTorch formulations of what build_norm(spec) computes for this case."""
    c, dims, last = case.channels, len(case.shape), case.channels_last
    bn_cls = {3: nn.BatchNorm1d, 4: nn.BatchNorm2d}[dims]
    in_cls = {3: nn.InstanceNorm1d, 4: nn.InstanceNorm2d}[dims]
    if spec == "bn":
        if last:
            return {
                "transpose+BatchNorm1d": _first(nn.BatchNorm1d(c)),
                "reshape(-1,C)+BatchNorm1d": lambda x, m=nn.BatchNorm1d(c): m(
                    x.reshape(-1, c)
                ).view(x.shape),
            }
        return {f"nn.{bn_cls.__name__}": bn_cls(c)}
    if spec == "frozenbn":
        ref = {
            "x*scale+shift (torchvision)": _frozen_ops(c, dims, last),
            # One addcmul everywhere (normsuite before): shows where its CPU loop vectorizes.
            "addcmul": _frozen_ops(c, dims, last, fused=True),
        }
        if not last:
            bn = bn_cls(c).eval()
            ref[f"{bn_cls.__name__}.eval()"] = bn
        return ref
    if spec == "gn":
        gn = nn.GroupNorm(32, c)
        if last:
            return {
                "transpose+GroupNorm": _first(gn),
                "transpose+GroupNorm+contiguous": lambda x: _first(gn)(x).contiguous(),
            }
        return {"nn.GroupNorm": gn}
    if spec == "ln":
        ln = nn.LayerNorm(c)
        if last:
            return {"nn.LayerNorm": ln}

        def mean_var_ops(x: Tensor) -> Tensor:  # ConvNeXt's channels_first LayerNorm
            u = x.mean(1, keepdim=True)
            s = (x - u).pow(2).mean(1, keepdim=True)
            shape = (1, c) + (1,) * (dims - 2)
            return (x - u) / torch.sqrt(s + 1e-5) * ln.weight.view(shape) + ln.bias.view(shape)

        refs = {
            "permute+nn.LayerNorm+permute": _last(ln),
            "mean/var ops (ConvNeXt)": mean_var_ops,
        }
        if case.memory_format == torch.contiguous_format:  # same output layout as the input
            refs["permute+nn.LayerNorm+permute+contiguous"] = lambda x: _last(ln)(x).contiguous()
        return refs
    if spec == "rms":
        rms = nn.RMSNorm(c)
        if last:

            def vector_norm_ops(x: Tensor) -> Tensor:  # what ChannelRMSNorm does over dim 1
                norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
                eps = torch.finfo(x.dtype).eps
                return x * torch.rsqrt(norm.square() / c + eps) * rms.weight

            return {"nn.RMSNorm": rms, "vector_norm ops": vector_norm_ops}

        def rms_ops(x: Tensor) -> Tensor:
            shape = (1, c) + (1,) * (dims - 2)
            eps = torch.finfo(x.dtype).eps
            return x * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + eps) * rms.weight.view(shape)

        return {"permute+nn.RMSNorm+permute": _last(rms), "mean ops": rms_ops}
    if spec == "in":
        inorm = in_cls(c, affine=True)
        if last:
            return {f"transpose+{in_cls.__name__}": _first(inorm)}
        return {f"nn.{in_cls.__name__}": inorm}
    raise AssertionError(spec)


def _timer(fn: Fn, x: Tensor, grad: Tensor) -> Timer:
    """Times one forward + backward (input and parameter gradients)."""

    def step() -> None:
        x.grad = None
        fn(x).backward(grad)

    return Timer(stmt="step()", globals={"step": step}, num_threads=1)


def median_ms(fns: dict[str, Fn], x: Tensor, grad: Tensor, min_run_time: float) -> dict[str, float]:
    """Median ms per formulation; rounds interleave them so load drift hits all alike."""
    timers = {name: _timer(fn, x, grad) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    names = list(timers)
    for r in range(ROUNDS):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate who goes first
            m = timers[name].blocked_autorange(min_run_time=min_run_time / ROUNDS)
            samples[name].extend(m.times)
    return {name: statistics.median(times) * 1e3 for name, times in samples.items()}


def run(min_run_time: float) -> list[dict[str, str]]:
    rows = []
    for case in CASES:
        for spec in SPECS:
            ours = build_norm(spec, case.channels, ndim=case.ndim, channels_last=case.channels_last)
            x = case.make_input()
            with torch.no_grad():
                expected = ours(x)
            grad = torch.randn_like(expected)
            refs = references(spec, case)
            other_layout = set()
            for name, fn in refs.items():  # only correct formulations are compared
                with torch.no_grad():
                    out = fn(x)
                torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4, msg=name)
                if out.stride() != expected.stride():
                    other_layout.add(name)  # same values, other memory layout than ours
            ms = median_ms({OURS: ours, **refs}, x, grad, min_run_time)
            ours_ms = ms.pop(OURS)
            # normsuite's layers return the input's layout (torch's InstanceNorm does not);
            # the ratio is against the formulations that return the same layout as ours.
            fastest = min((k for k in ms if k not in other_layout), key=ms.__getitem__)
            rows.append(
                {
                    "case": case.name,
                    "spec": spec,
                    "normsuite layer": type(ours).__name__,
                    "ms": f"{ours_ms:.1f}",
                    "PyTorch formulations (ms)": "; ".join(
                        f"{k}{' *' if k in other_layout else ''} {v:.1f}" for k, v in ms.items()
                    ),
                    "ratio vs fastest": f"{ours_ms / ms[fastest]:.2f}",
                }
            )
            print(" | ".join(rows[-1].values()), flush=True)
    return rows


def markdown(rows: list[dict[str, str]]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r[h] for h in head) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing runs")
    args = parser.parse_args()
    torch.manual_seed(0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load {load:.2f}, 1 thread, forward+backward, median",
        flush=True,
    )
    rows = run(min_run_time=0.3 if args.quick else 1.5)
    print()
    print(markdown(rows))
    print("\n* returns another memory layout than the normsuite layer, so not in the ratio")


if __name__ == "__main__":
    main()
