"""Per-step cost of normsuite's SyncBatchNorm under 2-process gloo DDP, vs plain BatchNorm.

Both variants run in the same two processes, interleaved round by round so that load from
other programs hits both alike; the table prints the median step times and the median of
the per-round ratios (goal: SyncBN <= 1.3x BN).

SyncBN needs one collective per BN layer in forward and one in backward (as torch's does), so
its step can never be faster than BN's plus 2 x layers x one collective. The same processes
also time a bare gloo collective of the same size, and the ``floor`` column is that bound as a
ratio: what SyncBN would cost if its arithmetic were free. The ``arithmetic`` column is the
other half: SyncBN / BN in ONE process with every collective replaced by a local copy (as if a
second rank had the same batch), i.e. what SyncBN would cost if communication were free.
Models: the MNIST-1D ConvNet1d of the recipes at (N, 1, 40) and
ResNet-18 (CIFAR stem) at 32x32.

    .venv/bin/python bench/syncbn.py [--rounds 6] [--steps 3]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import time
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from normsuite.models.factory import build_backbone
from normsuite.norms.sync import SyncBatchNorm

WORLD = 2
# name -> (backbone kwargs, input shape per sample, per-device batch)
MODELS: dict[str, tuple[dict[str, Any], tuple[int, ...], int]] = {
    "convnet1d (MNIST-1D)": (
        {
            "backbone": "convnet1d",
            "in_channels": 1,
            "widths": [64, 64, 128, 128],
            "kernel_size": 5,
            "strides": [1, 2, 1, 2],
        },
        (1, 40),
        32,
    ),
    "resnet18 32x32": (
        {"backbone": "resnet18", "in_channels": 3, "small_input": True},
        (3, 32, 32),
        8,
    ),
}


def _model(kwargs: dict[str, Any], sync: bool) -> nn.Module:
    torch.manual_seed(0)
    backbone = build_backbone(norm="bn", **kwargs)
    model = nn.Sequential(backbone, nn.Linear(backbone.out_features, 10))
    return SyncBatchNorm.convert_sync_batchnorm(model) if sync else model


def _steps(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, n: int):
    times = []
    for _ in range(n):
        dist.barrier()  # both ranks start the step together: time the step, not the skew
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return times


def _collective_latency(numel: int, repeats: int = 200) -> float:
    """Median seconds of one bare gloo all_gather of ``numel`` floats (what a BN layer sends)."""
    row = torch.randn(numel)
    rows = [torch.empty_like(row) for _ in range(WORLD)]
    times = []
    for i in range(repeats + 20):
        if i % 20 == 0:
            dist.barrier()  # re-align the ranks now and then, as the training steps do
        start = time.perf_counter()
        dist.all_gather(rows, row)
        if i >= 20:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _paired_ratio(runs: dict, x: torch.Tensor, y: torch.Tensor, rounds: int, steps: int):
    """Median step times of the BN and SyncBN variants and the median paired per-round ratio."""
    times: dict[bool, list[float]] = {False: [], True: []}
    ratios = []  # paired per round: both variants ran back to back under the same load
    for _ in range(rounds):
        medians = {}
        for sync in (False, True):
            model, opt = runs[sync]
            step_times = _steps(model, opt, x, y, steps)
            times[sync] += step_times
            medians[sync] = statistics.median(step_times)
        ratios.append(medians[True] / medians[False])
    return (
        statistics.median(times[False]),
        statistics.median(times[True]),
        statistics.median(ratios),
    )


def _arithmetic_only(rounds: int, steps: int) -> dict[str, float]:
    """SyncBN / BN step ratio per model in one process, collectives replaced by local copies."""
    import normsuite.norms.sync as sync_module

    torch.set_num_threads(1)
    port = _free_port()
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    gather, world_size = sync_module._all_gather_rows, SyncBatchNorm._world_size
    # This rank's row twice: SyncBN runs its whole world-size-2 path, without communicating.
    sync_module._all_gather_rows = lambda row, group, size, backend: row.expand(size, -1)
    SyncBatchNorm._world_size = lambda self: WORLD
    try:
        out = {}
        for name, (kwargs, shape, batch) in MODELS.items():
            x, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
            runs = {}
            for sync in (False, True):
                model = _model(kwargs, sync)
                runs[sync] = (model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
                _steps(*runs[sync], x, y, 2)  # warm-up
            out[name] = _paired_ratio(runs, x, y, rounds, steps)[2]
        return out
    finally:
        sync_module._all_gather_rows, SyncBatchNorm._world_size = gather, world_size
        dist.destroy_process_group()


def _worker(rank: int, port: int, rounds: int, steps: int, queue: Any) -> None:
    torch.set_num_threads(1)  # 2 processes on 2 cores
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    rows = []
    for name, (kwargs, shape, batch) in MODELS.items():
        gen = torch.Generator().manual_seed(rank)
        x = torch.randn(batch, *shape, generator=gen)
        y = torch.randint(0, 10, (batch,), generator=gen)
        runs = {}
        for sync in (False, True):
            model = DDP(_model(kwargs, sync))
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            _steps(model, opt, x, y, 2)  # warm-up
            runs[sync] = (model, opt)
        bn, sb, ratio = _paired_ratio(runs, x, y, rounds, steps)
        layers = [m for m in runs[True][0].modules() if isinstance(m, SyncBatchNorm)]
        widest = max(m.num_features for m in layers)
        latency = _collective_latency(1 + 3 * widest)
        floor = (bn + 2 * len(layers) * latency) / bn
        rows.append((name, batch, len(layers), bn * 1e3, sb * 1e3, ratio, latency, floor))
    if rank == 0:
        queue.put(rows)
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    port = _free_port()
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.start_processes(
        _worker, args=(port, args.rounds, args.steps, queue), nprocs=WORLD, start_method="spawn"
    )
    rows = queue.get()
    arithmetic = _arithmetic_only(args.rounds, args.steps)
    print(
        f"2-process gloo DDP on CPU, 1 thread per process, torch {torch.__version__}; "
        f"median of {args.rounds} x {args.steps} steps per variant; ratio = median over "
        "rounds of the paired per-round ratio (variants interleaved round by round)"
    )
    header = f"{'model':<22} {'batch/dev':>9} {'BN layers':>9} {'BN ms':>9} {'SyncBN ms':>10}"
    print(
        header
        + f" {'ratio':>6} {'collective us':>13} {'floor':>6} {'arithmetic':>10}  goal <= 1.3x"
    )
    for name, batch, n_bn, bn, sb, ratio, latency, floor in rows:
        verdict = "ok" if ratio <= 1.3 else "MISSED"
        print(
            f"{name:<22} {batch:>9} {n_bn:>9} {bn:>9.2f} {sb:>10.2f} {ratio:>6.2f} "
            f"{latency * 1e6:>13.0f} {floor:>6.2f} {arithmetic[name]:>10.2f}  {verdict}"
        )
    print(
        "floor = (BN step + 2 x BN layers x one bare all_gather) / BN step: the ratio SyncBN "
        "would reach with free arithmetic (one collective per layer forward, one backward);\n"
        "arithmetic = SyncBN / BN in one process with the collectives replaced by local copies: "
        "the ratio with free communication"
    )


if __name__ == "__main__":
    main()
