"""Fit-time guardrail: BatchNorm with a batch too small to give it useful statistics.

The guidance itself lives in :mod:`normsuite.advice`; this callback only measures the batch
BatchNorm will really see and acts on it before the first optimizer step.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.data import extract_batch_size
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.hooks import RemovableHandle

from normsuite.advice import BN_MIN_BATCH, advise
from normsuite.norms.sync import is_sync_batchnorm

__all__ = ["BatchNormBatchSizeError", "BatchSizeGuard", "BatchSizeWarning"]

# Duck-typed by class name (any class in the MRO), so that normsuite.models.rnn's LayerNormLSTM
# / LayerNormGRU and other libraries' blocks count without this module importing them.
_RECURRENT_NAME = re.compile(r"(LSTM|GRU|RNN)(Cell)?$")
_ATTENTION_NAME = re.compile(r"(Attention|Transformer(Encoder|Decoder)?(Layer|Block)?)$")
_ATTENTION_TYPES = (
    nn.MultiheadAttention,
    nn.Transformer,
    nn.TransformerEncoderLayer,
    nn.TransformerDecoderLayer,
)
_CONV_ARCH = {nn.Conv1d: "cnn1d", nn.Conv2d: "cnn2d", nn.Conv3d: "cnn3d"}


class BatchNormBatchSizeError(ValueError):
    """BatchNorm would train on one sample (or one value per channel) per forward pass."""


class BatchSizeWarning(UserWarning):
    """BatchNorm trains on a per-device batch below 16 without synchronization."""


def _named(module: nn.Module, pattern: re.Pattern[str]) -> bool:
    return any(pattern.search(cls.__name__) for cls in type(module).__mro__)


def _architecture(model: nn.Module) -> str:
    """The advice.py architecture name of ``model``.

    Attention -> "transformer" (a single convolution is taken as a patch embedding), recurrent
    layers -> "rnn" ("hybrid" next to convolutions), else the first convolution's cnn1d/2d/3d,
    else "mlp" if any Linear.
    """
    modules = list(model.modules())
    convs = [m for m in modules if isinstance(m, tuple(_CONV_ARCH))]
    if any(isinstance(m, _ATTENTION_TYPES) or _named(m, _ATTENTION_NAME) for m in modules):
        return "transformer" if len(convs) <= 1 else "hybrid"
    if any(
        isinstance(m, (nn.RNNBase, nn.RNNCellBase)) or _named(m, _RECURRENT_NAME) for m in modules
    ):
        return "hybrid" if convs else "rnn"
    if convs:
        return next(arch for cls, arch in _CONV_ARCH.items() if isinstance(convs[0], cls))
    if any(isinstance(m, nn.Linear) for m in modules):
        return "mlp"
    return "unknown"


def _sequence(module: nn.Module) -> bool:
    """BN over the last dim of (N, *, C): statistics over batch x positions."""
    return getattr(module, "channels_last", False) is True


def _training_bn(model: nn.Module) -> list[tuple[str, _BatchNorm]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _BatchNorm) and m.training]


class BatchSizeGuard(pl.Callback):
    """Stop or warn when BatchNorm layers train on too small a batch.

    Before the first optimizer step it computes per-device batch x devices x gradient
    accumulation. Per-device batch comes from the first batch (else the datamodule's
    ``batch_size``), devices from ``trainer.world_size``, accumulation from
    ``trainer.accumulate_grad_batches``. Then, for BatchNorm layers in training mode:

    - feature-map BN (channels first, (N, C, *)) at a batch of 1 (per device, or globally for
      synced BN) raises :class:`BatchNormBatchSizeError` naming the first such layer and the
      options: its statistics would be one image's (rule B8);
    - sequence BN (channels last, (N, L, C): ``BatchNormLastDim``, ``SyncBatchNormLastDim``)
      normalizes each channel over batch x positions, so it raises only where that is a single
      value, as PyTorch would; the guard measures it from the layer's input in the first
      forward pass (a one-shot forward pre-hook), before BatchNorm itself runs;
    - unsynced BN with a per-device batch below 16, or synced BN with a global batch below
      16, warns once (:class:`BatchSizeWarning`) with the advice of ``normsuite.advice``. The
      batch, not the number of positions, is what counts here (positions of one sample are
      correlated, and the GroupNorm paper's numbers are per-image batches); for sequence BN
      the warning also says how many values per channel it sees;
    - synced BN with a global batch of 16 or more, or no BN at all: silent.

    Gradient accumulation is reported but does not count: BN normalizes each forward pass.

    Example:
        >>> trainer = pl.Trainer(callbacks=[BatchSizeGuard()])  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._checked = False
        self._hooks: list[RemovableHandle] = []
        self._seen: dict[str, int] = {}
        self._pending: tuple[nn.Module, int, pl.Trainer] | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._checked = False
        self._reset()

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._checked:
            return
        self._checked = True
        per_device_batch = self._per_device_batch(trainer, batch)
        if per_device_batch is None:
            return
        sequence = [(name, m) for name, m in _training_bn(pl_module) if _sequence(m)]
        # Feature-map layers are judged now; sequence layers once their input has been seen.
        self.check(pl_module, per_device_batch, trainer, warn=not sequence)
        if sequence:
            self._pending = (pl_module, per_device_batch, trainer)
            for name, module in sequence:
                hook = functools.partial(self._measure, name)
                self._hooks.append(module.register_forward_pre_hook(hook))

    def _measure(self, name: str, module: nn.Module, args: tuple[Any, ...]) -> None:
        """Forward pre-hook: record the values per channel the layer normalizes over."""
        x = args[0] if args else None
        if isinstance(x, Tensor) and x.dim() >= 1 and x.shape[-1] > 0:
            self._seen[name] = x.numel() // x.shape[-1]
        if self._pending is not None:
            model, per_device_batch, trainer = self._pending
            try:  # raises before BatchNorm does, with the options
                self.check(model, per_device_batch, trainer, seen=self._seen, warn=False)
            except BatchNormBatchSizeError:
                self._reset()
                raise

    def _finish(self) -> None:
        if self._pending is None:
            return
        model, per_device_batch, trainer = self._pending
        seen = dict(self._seen)
        self._reset()
        self.check(model, per_device_batch, trainer, seen=seen)

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: Tensor
    ) -> None:
        self._finish()  # after the first forward pass, before any optimizer step

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self._finish()  # manual optimization without a backward: still judge, drop the hooks

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._reset()

    def _reset(self) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks, self._seen, self._pending = [], {}, None

    @staticmethod
    def _per_device_batch(trainer: pl.Trainer, batch: Any) -> int | None:
        try:
            return int(extract_batch_size(batch))
        except Exception:  # batch of an unknown structure: fall back to the datamodule
            size = getattr(getattr(trainer, "datamodule", None), "batch_size", None)
            return int(size) if isinstance(size, int) else None

    def check(
        self,
        model: nn.Module,
        per_device_batch: int | None,
        trainer: pl.Trainer | None = None,
        *,
        seen: Mapping[str, int] | None = None,
        warn: bool = True,
    ) -> None:
        """Apply the rules to ``model`` (also usable without a Trainer: devices=1, accumulate=1).

        ``seen`` maps a sequence BN layer's name to the values per channel of its input on one
        device (N x positions); a sequence layer missing from it is not judged for the error.
        ``warn=False`` only raises.
        """
        if per_device_batch is None:
            return
        seen = seen or {}
        devices = int(trainer.world_size) if trainer is not None else 1
        accumulate = int(trainer.accumulate_grad_batches) if trainer is not None else 1
        bn = _training_bn(model)
        if not bn:
            return
        for name, layer in bn:
            self._raise_if_one_value(name, layer, per_device_batch, devices, seen)
        unsynced = [(name, m) for name, m in bn if not is_sync_batchnorm(m)]
        name, layer = unsynced[0] if unsynced else bn[0]
        synced = not unsynced
        bn_batch = per_device_batch * devices if synced else per_device_batch
        if not warn or bn_batch >= BN_MIN_BATCH:
            return
        where = (
            f"per-device batch {per_device_batch} x {devices} device(s) x accumulation "
            f"{accumulate} (= {per_device_batch * devices * accumulate} samples per optimizer "
            f"step); BatchNorm{' (synced)' if synced else ''} normalizes over {bn_batch}"
        )
        values = seen.get(name)
        if _sequence(layer) and values is not None and values % per_device_batch == 0:
            positions = values // per_device_batch
            where += (
                f" sample(s) x {positions} position(s) = {bn_batch * positions} values per "
                "channel, but positions of one sequence are correlated, so the batch counts"
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
            f"BatchNorm layer {_label(name, layer)} trains on small batches ({where}). normsuite "
            f"advises norm={advice.norm!r}"
            + (f" (alternatives: {', '.join(advice.alternatives)})" if advice.alternatives else "")
            + f". Why: {reasons}",
            category=BatchSizeWarning,
        )

    @staticmethod
    def _raise_if_one_value(
        name: str, layer: _BatchNorm, per_device_batch: int, devices: int, seen: Mapping[str, int]
    ) -> None:
        scale = devices if is_sync_batchnorm(layer) else 1  # synced: every device's values
        if _sequence(layer):
            values = seen.get(name)
            if values is None or values * scale != 1:
                return
            what = (
                f"1 value per channel per forward pass (per-device batch {per_device_batch} x "
                f"1 position x {devices} device(s){' synced' if scale > 1 else ''}; PyTorch "
                'raises "Expected more than 1 value per channel when training")'
            )
        else:
            if per_device_batch * scale != 1:
                return
            what = (
                f"1 sample per forward pass (per-device batch 1 x {devices} device(s)"
                f"{', synced' if scale > 1 else ', not synced'}): its statistics would be one "
                "sample's"
            )
        raise BatchNormBatchSizeError(
            f"BatchNorm layer {_label(name, layer)} would train on {what}. "
            + ("Use LayerNorm (norm='ln'), " if _sequence(layer) else "Use ")
            + "GroupNorm (norm='gn'), SyncBatchNorm (norm='syncbn' or "
            f"plugins=[normsuite.NormSync()]) with a global batch >= {BN_MIN_BATCH}, "
            "or FrozenBatchNorm (norm='frozenbn') to fine-tune a pretrained BN model."
        )


def _label(name: str, layer: _BatchNorm) -> str:
    return f"{name or '<root>'} ({type(layer).__name__}({layer.num_features}))"
