"""The comparison grid: (norm, batch size, seed) cells and the learning-rate scaling rule.

Pure Python (no torch import), so option parsing fails fast before any heavy import.

Example:
    >>> cells = expand_grid(["bn", "gn"], [2, 32], seeds=1, base_lr=0.1, base_batch=32)
    >>> [(c.norm, c.batch_size, c.lr) for c in cells]
    [('bn', 2, 0.00625), ('gn', 2, 0.00625), ('bn', 32, 0.1), ('gn', 32, 0.1)]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from .errors import CompareError

LrScaling = Literal["none", "linear", "sqrt"]
LR_SCALINGS: tuple[str, ...] = ("none", "linear", "sqrt")
DEFAULT_SEEDS = 3  # the fewest seeds for which Welch's t-test can tell a win from noise

# Optimizers whose step is normalized by a running second moment: the square-root rule.
ADAPTIVE_OPTIMIZERS = frozenset(
    {"adam", "adamw", "nadam", "radam", "adamax", "adagrad", "adadelta", "rmsprop", "lamb"}
)


class GridError(CompareError):
    """A malformed grid option; the message is one line that says what to do."""


@dataclass(frozen=True)
class Cell:
    """One short training run of the comparison."""

    norm: str
    batch_size: int
    seed: int
    lr: float

    @property
    def key(self) -> str:
        """Stable identity of the cell inside one comparison (used by ``--resume``)."""
        return f"{self.norm}|{self.batch_size}|{self.seed}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def scale_lr(base_lr: float, base_batch: int, batch_size: int, rule: str = "linear") -> float:
    """Learning rate for ``batch_size`` given the recipe's ``base_lr`` at ``base_batch``.

    - ``linear``: ``base_lr * batch_size / base_batch``, for SGD (Goyal et al. 2017,
      "Accurate, Large Minibatch SGD", arXiv:1706.02677; the GN paper trains every batch size
      this way).
    - ``sqrt``: ``base_lr * sqrt(batch_size / base_batch)``, for Adam-family optimizers
      (Malladi et al. 2022, "On the SDEs and Scaling Rules for Adaptive Gradient Algorithms",
      arXiv:2205.10287; first proposed for SGD by Hoffer et al. 2017, arXiv:1705.08741).
    - ``none``: ``base_lr`` for every batch size.

    >>> scale_lr(0.1, 32, 8), scale_lr(0.1, 32, 128, "sqrt"), scale_lr(0.1, 32, 2, "none")
    (0.025, 0.2, 0.1)
    """
    if rule not in LR_SCALINGS:
        raise GridError(f"--lr-scaling must be one of {', '.join(LR_SCALINGS)}, got {rule!r}")
    if base_batch < 1 or batch_size < 1:
        raise GridError(f"batch sizes must be >= 1, got base {base_batch} and {batch_size}")
    ratio = batch_size / base_batch
    if rule == "linear":
        return base_lr * ratio
    if rule == "sqrt":
        return base_lr * math.sqrt(ratio)
    return base_lr


def default_lr_scaling(optimizer: str | None) -> tuple[str, str]:
    """The LR scaling rule for an optimizer name, and why (shown with the results).

    SGD (with or without momentum) -> ``linear``; Adam-family -> ``sqrt``; an optimizer
    compare cannot name -> ``none`` (no assumption; the output says to choose one).

    >>> default_lr_scaling("AdamW")[0], default_lr_scaling("sgd")[0], default_lr_scaling(None)[0]
    ('sqrt', 'linear', 'none')
    """
    name = (optimizer or "").rsplit(".", 1)[-1].lower()
    if name == "sgd":
        return "linear", "the default for SGD, after Goyal et al. 2017"
    if name in ADAPTIVE_OPTIMIZERS:
        return (
            "sqrt",
            f"the default for {optimizer}, an Adam-family optimizer, after Malladi et al. 2022",
        )
    what = f"optimizer {optimizer}" if optimizer else "an optimizer compare cannot name"
    return "none", f"not scaled by default for {what}; pass --lr-scaling to choose"


def parse_norms(text: str) -> list[str]:
    """``"bn,gn:16, ln"`` -> ``["bn", "gn:16", "ln"]`` (spelling is checked later by NormSpec)."""
    norms = [part.strip() for part in text.split(",") if part.strip()]
    if not norms:
        raise GridError(f"--norms needs a comma-separated list such as bn,gn,ln; got {text!r}")
    if len(set(norms)) != len(norms):
        raise GridError(f"--norms lists a norm twice: {text!r}; give each norm once")
    return norms


def parse_batch_sizes(text: str) -> list[int]:
    """``"2,8,32"`` -> ``[2, 8, 32]`` (sorted, unique, each >= 1)."""
    sizes: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise GridError(
                f"--batch-sizes takes positive integers separated by commas, e.g. 2,8,32; "
                f"{part!r} in {text!r} is not one"
            )
        sizes.append(int(part))
    if len(set(sizes)) != len(sizes):
        raise GridError(f"--batch-sizes lists a batch size twice: {text!r}")
    return sorted(sizes)


def parse_lrs(text: str) -> dict[int, float]:
    """``"2:0.01,8:0.02"`` -> ``{2: 0.01, 8: 0.02}``: explicit learning rates per batch size."""
    lrs: dict[int, float] = {}
    for part in text.split(","):
        batch, sep, value = part.strip().partition(":")
        try:
            if not sep:
                raise ValueError
            batch_size, lr = int(batch), float(value)
            if batch_size < 1 or not (lr > 0 and math.isfinite(lr)):
                raise ValueError
        except ValueError:
            raise GridError(
                f"--lrs takes BATCH:LR pairs separated by commas, e.g. 2:0.01,8:0.02; "
                f"{part.strip()!r} is not one"
            ) from None
        lrs[batch_size] = lr
    return lrs


def expand_grid(
    norms: Sequence[str],
    batch_sizes: Sequence[int],
    seeds: int | Sequence[int],
    *,
    base_lr: float,
    base_batch: int,
    lr_scaling: str = "linear",
    lrs: Mapping[int, float] | None = None,
) -> list[Cell]:
    """Every (norm, batch size, seed) cell, in the order they run (seed, batch size, norm).

    ``seeds`` is a count (seeds 0..n-1) or an explicit list. ``lrs`` overrides the scaling
    rule for the batch sizes it names; a name in ``lrs`` that is not in the grid is an error
    (it is almost always a typo).
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list:
        raise GridError("--seeds must be >= 1")
    lrs = dict(lrs or {})
    unknown = sorted(set(lrs) - set(batch_sizes))
    if unknown:
        raise GridError(
            f"--lrs names batch sizes {unknown} that are not in --batch-sizes "
            f"{list(batch_sizes)}; add them or drop them"
        )
    lr_at = {
        b: lrs[b] if b in lrs else scale_lr(base_lr, base_batch, b, lr_scaling) for b in batch_sizes
    }
    # Seed-major: after the first pass every (norm, batch) has one result, so an interrupted
    # run already shows the whole picture; later seeds add the noise estimate.
    return [
        Cell(norm=norm, batch_size=batch, seed=seed, lr=lr_at[batch])
        for seed in seed_list
        for batch in batch_sizes
        for norm in norms
    ]
