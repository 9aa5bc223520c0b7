"""Resume the same schedule: the random number generators travel in the checkpoint.

Lightning restores weights, optimizer, LR scheduler, epoch/step counters and loop progress,
but not the RNGs. A resumed run would then shuffle its next epoch differently from the run
it continues (the sampler draws its seed from torch's global generator). :class:`RNGState`
saves the torch (CPU and CUDA), NumPy and ``random`` states with every checkpoint and puts
them back when training starts from one, so 1 epoch + resume equals 2 epochs in one run.

Example:
    >>> trainer = Trainer(callbacks=[RNGState()])  # doctest: +SKIP
"""

from __future__ import annotations

import random
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

__all__ = ["RNGState"]


def _collect() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        # As plain values and a tensor: checkpoints load with weights_only=True, which
        # refuses NumPy arrays.
        "numpy": _numpy_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _numpy_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "name": str(name),
        "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached": float(cached),
    }


def _set_numpy_state(state: dict[str, Any]) -> None:
    keys = state["keys"].numpy().astype(np.uint32)
    np.random.set_state((state["name"], keys, state["pos"], state["has_gauss"], state["cached"]))


class RNGState(pl.Callback):
    """Save the RNG states in each checkpoint; restore them when ``fit`` resumes from one.

    The states are restored as the checkpoint is loaded: after the model is built and before
    Lightning creates the train loader's iterator (which draws from torch's RNG), so the
    draws after a resume are the draws the uninterrupted run made after the save. Under DDP
    the checkpoint holds rank 0's states (every rank draws the same shuffle seed after
    ``seed_everything``).
    """

    def state_dict(self) -> dict[str, Any]:
        return _collect()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        if not state:
            return
        torch.set_rng_state(state["torch"])
        _set_numpy_state(state["numpy"])
        random.setstate(state["python"])
        if "cuda" in state and torch.cuda.is_available():
            states = state["cuda"][: torch.cuda.device_count()]
            torch.cuda.set_rng_state_all(states)
