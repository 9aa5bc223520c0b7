"""``NormSync``: Lightning's ``sync_batchnorm=True`` for every backend, CPU included.

Lightning's built-in ``TorchSyncBatchNorm`` converts to ``torch.nn.SyncBatchNorm``, which
only runs on CUDA; on CPU (gloo) the first forward pass fails. ``NormSync`` picks per run:
torch's SyncBatchNorm when the process group runs NCCL (its fused CUDA kernels), normsuite's
:class:`~normsuite.norms.sync.SyncBatchNorm` elsewhere (gloo, CPU, any other backend).
``revert`` restores each layer's original class (``BatchNorm2d``, ...), where Lightning's
``TorchSyncBatchNorm.revert`` gives torch's generic ``_BatchNormXd``; a layer that was built
as SyncBatchNorm has no original class and becomes normsuite's
:class:`~normsuite.norms.layers.BatchNormNd` (``BatchNormLastDim`` if channels-last).

Lightning calls ``apply`` in ``Strategy.setup`` (DDP, FSDP) when fitting, after the process
group exists and before the model moves to its device, and ``revert`` at teardown; single
device strategies never call it, so the plugin costs nothing there.

Example:
    >>> trainer = Trainer(strategy="ddp", devices=2, plugins=[NormSync()])  # doctest: +SKIP

or in a LightningCLI YAML config::

    trainer:
      strategy: ddp
      plugins: normsuite.NormSync
"""

from __future__ import annotations

from typing import Any

import torch.distributed as dist
from lightning.pytorch.plugins import LayerSync
from torch import nn

from normsuite.norms.sync import SyncBatchNorm, convert_sync_batchnorm, revert_sync_batchnorm

__all__ = ["NormSync"]


def _backend(process_group: Any) -> str | None:
    if not (dist.is_available() and dist.is_initialized()):
        return None
    return str(dist.get_backend(process_group))


class NormSync(LayerSync):
    """Synchronize BatchNorm statistics across processes, on any backend.

    Args:
        process_group: the group to sync over; ``None`` means all processes.
        implementation: ``"auto"`` (torch on NCCL, normsuite elsewhere), ``"torch"`` or
            ``"normsuite"``.
    """

    def __init__(self, process_group: Any = None, implementation: str = "auto") -> None:
        if implementation not in ("auto", "torch", "normsuite"):
            raise ValueError(
                f"implementation must be 'auto', 'torch' or 'normsuite', got {implementation!r}"
            )
        self.process_group = process_group
        self.implementation = implementation

    def choose(self) -> str:
        """``"torch"`` or ``"normsuite"``: the SyncBatchNorm ``apply`` will use now."""
        if self.implementation != "auto":
            return self.implementation
        return "torch" if _backend(self.process_group) == "nccl" else "normsuite"

    def apply(self, model: nn.Module) -> nn.Module:
        """Convert every BatchNorm*d of ``model`` to a SyncBatchNorm sharing its parameters."""
        sync_class = nn.SyncBatchNorm if self.choose() == "torch" else SyncBatchNorm
        return convert_sync_batchnorm(model, self.process_group, sync_class=sync_class)

    def revert(self, model: nn.Module) -> nn.Module:
        """Turn every SyncBatchNorm back into the BatchNorm class it came from."""
        return revert_sync_batchnorm(model)
