"""One GPU: normsuite's SyncBatchNorm vs torch's ``nn.SyncBatchNorm`` (run by bench/gpu_check.sh).

Two comparisons, forward + backward, baseline measured in the same run:

1. World size 1 (a 1-process NCCL group): both modules must take BatchNorm's own
   ``F.batch_norm`` path, so outputs must be bitwise equal and times alike.
2. The synchronizing kernel path, forced on the same 1-process group: normsuite's plain-op
   autograd function vs torch's fused CUDA kernels (``batch_norm_stats`` ... ``_elemt``),
   i.e. what normsuite's layer costs per step when it actually syncs. Checked against
   ``F.batch_norm`` (fp32, and bf16 with float32 statistics).

Exits 1 when a correctness check fails. Without CUDA it checks the same plumbing on a
1-process gloo group on CPU (normsuite only: torch's SyncBatchNorm is CUDA-only) and says so.

    python bench/gpu_syncbn.py
"""

from __future__ import annotations

import os
import socket
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.modules._functions import SyncBatchNorm as TorchSyncFn
from torch.utils.benchmark import Timer

from normsuite.norms.sync import SyncBatchNorm, _SyncBatchNormFunction

CUDA = torch.cuda.is_available()
SHAPES = [(32, 64, 56, 56), (128, 256, 14, 14)] if CUDA else [(8, 16, 8, 8)]
FAILED: list[str] = []


def _check(name: str, got: torch.Tensor, ref: torch.Tensor, atol: float) -> float:
    diff = (got.float() - ref.float()).abs().max().item()
    if not diff <= atol:
        FAILED.append(f"{name}: max abs diff {diff:.3g} > {atol:g}")
    return diff


def _time(fn, min_run_time: float = 0.5) -> float:
    """Median seconds per call (torch.utils.benchmark handles warm-up and CUDA sync)."""
    return (
        Timer(stmt="fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).median
    )


def _fwd_bwd(apply, x: torch.Tensor, grad: torch.Tensor):
    def step() -> tuple[torch.Tensor, torch.Tensor]:
        xi = x.detach().requires_grad_(True)
        y = apply(xi)
        y.backward(grad)
        return y, xi.grad

    return step


def _world_one_modules(shape: tuple[int, ...], device: str) -> None:
    c = shape[1]
    ours = SyncBatchNorm(c).to(device)
    x = torch.randn(*shape, device=device)
    g = torch.randn_like(x)
    y_ours, gx_ours = _fwd_bwd(ours, x, g)()
    if CUDA:
        theirs = nn.SyncBatchNorm(c).to(device)
        y_t, gx_t = _fwd_bwd(theirs, x, g)()
        exact = torch.equal(y_ours, y_t) and torch.equal(gx_ours, gx_t)
        if not exact:
            FAILED.append(f"world size 1 {shape}: outputs differ from torch's SyncBatchNorm")
        t_ours, t_theirs = _time(_fwd_bwd(ours, x, g)), _time(_fwd_bwd(theirs, x, g))
        print(
            f"{'world size 1 (F.batch_norm)':<30} {shape!s:<20} {'fp32':<5} "
            f"{t_theirs * 1e3:>9.3f} {t_ours * 1e3:>9.3f} {t_ours / t_theirs:>6.2f} "
            f"{'bitwise' if exact else 'DIFFER':>10}"
        )
    else:
        ref = nn.BatchNorm2d(c) if len(shape) == 4 else nn.BatchNorm1d(c)
        y_ref, gx_ref = _fwd_bwd(ref, x, g)()
        if not (torch.equal(y_ours, y_ref) and torch.equal(gx_ours, gx_ref)):
            FAILED.append(f"world size 1 {shape}: differs from nn.BatchNorm")
        print(f"world size 1 {shape}: bitwise equal to nn.BatchNorm on CPU/gloo")


def _kernel_path(shape: tuple[int, ...], dtype: torch.dtype, device: str) -> None:
    c = shape[1]
    group = dist.group.WORLD
    weight = torch.rand(c, device=device) + 0.5
    bias = torch.randn(c, device=device)
    x = (torch.randn(*shape, device=device) * 2 + 1).to(dtype)
    g = torch.randn_like(x)

    def ours(xi: torch.Tensor) -> torch.Tensor:
        rm, rv = torch.zeros(c, device=device), torch.ones(c, device=device)
        backend = dist.get_backend(group)
        return _SyncBatchNormFunction.apply(xi, weight, bias, rm, rv, 1e-5, 0.1, group, 1, backend)

    def reference(xi: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(xi.float(), None, None, weight, bias, True, 0.1, 1e-5).to(dtype)

    atol = 1e-4 if dtype == torch.float32 else 5e-2
    y, gx = _fwd_bwd(ours, x, g)()
    y_ref, gx_ref = _fwd_bwd(reference, x, g)()
    tag = f"{shape} {dtype}"
    d_y = _check(f"sync path output {tag}", y, y_ref, atol)
    d_g = _check(f"sync path input grad {tag}", gx, gx_ref, atol * 10)
    if not CUDA:
        print(f"sync path {tag}: matches F.batch_norm (max diff {max(d_y, d_g):.2g})")
        return

    def theirs(xi: torch.Tensor) -> torch.Tensor:
        # What nn.SyncBatchNorm passes: float32 parameters and running stats for any input.
        rm, rv = torch.zeros(c, device=device), torch.ones(c, device=device)
        return TorchSyncFn.apply(xi, weight, bias, rm, rv, 1e-5, 0.1, group, 1)

    t_ours = _time(_fwd_bwd(ours, x, g))
    try:
        t_theirs = _time(_fwd_bwd(theirs, x, g))
    except RuntimeError as exc:  # torch's kernels, not ours: report and go on
        print(f"torch's sync kernels failed for {tag}: {str(exc).splitlines()[0]}")
        return
    short = {torch.float32: "fp32", torch.bfloat16: "bf16"}[dtype]
    print(
        f"{'sync path, 1-proc NCCL':<30} {shape!s:<20} {short:<5} {t_theirs * 1e3:>9.3f} "
        f"{t_ours * 1e3:>9.3f} {t_ours / t_theirs:>6.2f} {max(d_y, d_g):>10.2g}"
    )


def main() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend, device = ("nccl", "cuda") if CUDA else ("gloo", "cpu")
    if CUDA:
        torch.cuda.set_device(0)
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        if CUDA:
            print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}; forward+backward")
            print(
                f"{'path':<30} {'shape':<20} {'dtype':<5} {'torch ms':>9} {'ours ms':>9} "
                f"{'ratio':>6} {'max diff':>10}"
            )
        else:
            print("CUDA not available: GPU comparisons skipped; checking the CPU/gloo path only.")
        for shape in SHAPES:
            _world_one_modules(shape, device)
        for shape in SHAPES:
            for dtype in (torch.float32, torch.bfloat16):
                _kernel_path(shape, dtype, device)
    finally:
        dist.destroy_process_group()
    for failure in FAILED:
        print(f"FAILED {failure}")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
