"""SyncBatchNorm for (N, *, C) input (tokens), built on normsuite's SyncBatchNorm.

Its own module because ``normsuite.norms.sync`` pulls in torch.distributed machinery that
``build_norm`` should only import when ``syncbn`` is asked for.
"""

from __future__ import annotations

from torch import Tensor

from normsuite.norms.sync import SyncBatchNorm

__all__ = ["SyncBatchNormLastDim"]


class SyncBatchNormLastDim(SyncBatchNorm):
    """SyncBatchNorm over the last dim of (N, *, C) input; statistics over batch*time."""

    channels_last = True

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        # (N, L, C) -> (N*L, C) is a free view with the same per-channel statistics.
        out = self._sync_batch_norm(input.reshape(-1, input.shape[-1]))
        return out.view(input.shape)
