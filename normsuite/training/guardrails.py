"""Fit-time guardrail: BatchNorm with a batch too small to give it useful statistics.

The guidance itself lives in :mod:`normsuite.advice`; this callback only measures the batch
BatchNorm will really see and acts on it before the first optimizer step.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.data import extract_batch_size
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from normsuite.advice import BN_MIN_BATCH, advise
from normsuite.norms.sync import is_sync_batchnorm

__all__ = ["BatchNormBatchSizeError", "BatchSizeGuard", "BatchSizeWarning"]


class BatchNormBatchSizeError(ValueError):
    """BatchNorm would train on one sample per forward pass."""


class BatchSizeWarning(UserWarning):
    """BatchNorm trains on a per-device batch below 16 without synchronization."""


def _architecture(model: nn.Module) -> str:
    """The advice.py architecture name, from the first convolution (else MLP if any Linear)."""
    for module in model.modules():
        if isinstance(module, nn.Conv1d):
            return "cnn1d"
        if isinstance(module, nn.Conv2d):
            return "cnn2d"
        if isinstance(module, nn.Conv3d):
            return "cnn3d"
    if any(isinstance(m, nn.Linear) for m in model.modules()):
        return "mlp"
    return "unknown"


class BatchSizeGuard(pl.Callback):
    """Stop or warn when BatchNorm layers train on too small a batch.

    Before the first training step it computes per-device batch x devices x gradient
    accumulation. Per-device batch comes from the first batch (else the datamodule's
    ``batch_size``), devices from ``trainer.world_size``, accumulation from
    ``trainer.accumulate_grad_batches``. Then, for BatchNorm layers in training mode:

    - a BatchNorm batch of 1 (per device, or globally for synced BN) raises
      :class:`BatchNormBatchSizeError` naming the first such layer and the options;
    - unsynced BN with a per-device batch below 16, or synced BN with a global batch below
      16, warns once (:class:`BatchSizeWarning`) with the advice of ``normsuite.advice``;
    - synced BN with a global batch of 16 or more, or no BN at all: silent.

    Gradient accumulation is reported but does not count: BN normalizes each forward pass.

    Example:
        >>> trainer = pl.Trainer(callbacks=[BatchSizeGuard()])  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._checked = False

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._checked = False

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._checked:
            return
        self._checked = True
        self.check(pl_module, self._per_device_batch(trainer, batch), trainer)

    @staticmethod
    def _per_device_batch(trainer: pl.Trainer, batch: Any) -> int | None:
        try:
            return int(extract_batch_size(batch))
        except Exception:  # batch of an unknown structure: fall back to the datamodule
            size = getattr(getattr(trainer, "datamodule", None), "batch_size", None)
            return int(size) if isinstance(size, int) else None

    def check(
        self, model: nn.Module, per_device_batch: int | None, trainer: pl.Trainer | None = None
    ) -> None:
        """Apply the rules to ``model`` (also usable without a Trainer: devices=1, accumulate=1)."""
        if per_device_batch is None:
            return
        devices = int(trainer.world_size) if trainer is not None else 1
        accumulate = int(trainer.accumulate_grad_batches) if trainer is not None else 1
        bn = [
            (name, m)
            for name, m in model.named_modules()
            if isinstance(m, _BatchNorm) and m.training
        ]
        if not bn:
            return
        unsynced = [(name, m) for name, m in bn if not is_sync_batchnorm(m)]
        name, layer = unsynced[0] if unsynced else bn[0]
        synced = not unsynced
        bn_batch = per_device_batch * devices if synced else per_device_batch
        where = (
            f"per-device batch {per_device_batch} x {devices} device(s) x accumulation "
            f"{accumulate} (= {per_device_batch * devices * accumulate} samples per optimizer "
            f"step); BatchNorm{' (synced)' if synced else ''} normalizes over {bn_batch}"
        )
        if bn_batch >= BN_MIN_BATCH:
            return
        label = f"{name or '<root>'} ({type(layer).__name__}({layer.num_features}))"
        if bn_batch == 1:
            raise BatchNormBatchSizeError(
                f"BatchNorm layer {label} would train on 1 sample per forward pass ({where}). "
                "Use GroupNorm (norm='gn'), SyncBatchNorm (norm='syncbn' or "
                f"plugins=[normsuite.NormSync()]) with a global batch >= {BN_MIN_BATCH}, "
                "or FrozenBatchNorm (norm='frozenbn') to fine-tune a pretrained BN model."
            )
        advice = advise(
            _architecture(model),
            per_device_batch,
            devices=devices,
            accumulate=accumulate,
            channels=layer.num_features,
        )
        reasons = " ".join(advice.rationale)
        rank_zero_warn(
            f"BatchNorm layer {label} trains on small batches ({where}). normsuite advises "
            f"norm={advice.norm!r}"
            + (f" (alternatives: {', '.join(advice.alternatives)})" if advice.alternatives else "")
            + f". Why: {reasons}",
            category=BatchSizeWarning,
        )
