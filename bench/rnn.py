"""LN-LSTM / LN-GRU forward+backward time over nn.LSTM / nn.GRU, measured in the same run.

Shape: seq 100, batch 64, input 256, hidden 256, one layer, float32, CPU (override with
flags). The goal of issue 3 is <= 3x the un-normalized oneDNN/cuDNN module.

    .venv/bin/python bench/rnn.py [--seq 100 --batch 64 --hidden 256 --repeats 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import nn

from normsuite.models.rnn import LayerNormGRU, LayerNormLSTM


def _time(fn: Callable[[], None], repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``fn`` in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _fwd_bwd(module: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        module.zero_grad(set_to_none=True)
        out, _ = module(x)
        out.sum().backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq", type=int, default=100)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--input", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.seq, args.input)
    print(
        f"seq {args.seq}, batch {args.batch}, input {args.input}, hidden {args.hidden}, "
        f"CPU threads {torch.get_num_threads()}, forward+backward, median of {args.repeats}"
    )
    print(f"{'module':<40}{'ms':>9}{'x baseline':>12}")
    for plain_cls, ln_cls in ((nn.LSTM, LayerNormLSTM), (nn.GRU, LayerNormGRU)):
        plain = plain_cls(args.input, args.hidden, batch_first=True)
        base = _time(_fwd_bwd(plain, x), args.repeats)
        print(f"{plain_cls.__name__ + ' (oneDNN)':<40}{base * 1e3:>9.1f}{1.0:>12.2f}")
        rows = [
            ("ln, TorchScript loop", dict(norm="ln", script=True)),
            ("ln, eager loop", dict(norm="ln", script=False)),
            ("none (identity), eager loop", dict(norm="none", script=False)),
        ]
        for label, kwargs in rows:
            module = ln_cls(args.input, args.hidden, batch_first=True, **kwargs)
            t = _time(_fwd_bwd(module, x), args.repeats)
            print(f"{ln_cls.__name__ + ' ' + label:<40}{t * 1e3:>9.1f}{t / base:>12.2f}")


if __name__ == "__main__":
    main()
