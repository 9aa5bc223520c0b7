"""normsuite.training: Lightning plugins (NormSync, AtomicCheckpointIO), fit-time guardrails
(BatchSizeGuard) and resume support (RNGState, InterruptCheckpoint, verify_checkpoint).

Names are imported lazily so that ``import normsuite.training`` stays free of torch/lightning.
"""

from __future__ import annotations

from normsuite._lazy import lazy_exports

_LAZY: dict[str, str] = {
    "NormSync": "normsuite.training.sync_plugin",
    "BatchSizeGuard": "normsuite.training.guardrails",
    "BatchNormBatchSizeError": "normsuite.training.guardrails",
    "BatchSizeWarning": "normsuite.training.guardrails",
    "AtomicCheckpointIO": "normsuite.training.checkpoints",
    "CheckpointError": "normsuite.training.checkpoints",
    "find_last_checkpoint": "normsuite.training.checkpoints",
    "verify_checkpoint": "normsuite.training.checkpoints",
    "InterruptCheckpoint": "normsuite.training.interrupt",
    "RNGState": "normsuite.training.resume",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
