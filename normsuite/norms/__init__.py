"""normsuite.norms: norm spec strings, the norm layer zoo, and model conversion.

Names are exported lazily so that ``normsuite.norms.spec`` (pure Python, used by the
static analyzer) can be imported without importing torch.

Example:
    >>> from normsuite.norms import build_norm, convert_norms, is_norm_layer  # doctest: +SKIP
    >>> build_norm("ln", 64)          # channel LayerNorm for (N, 64, H, W)  # doctest: +SKIP
"""

from __future__ import annotations

from normsuite._lazy import lazy_exports

_LAZY: dict[str, str] = {
    "KINDS": "normsuite.norms.spec",
    "NormSpec": "normsuite.norms.spec",
    "build_norm": "normsuite.norms.layers",
    "ChannelLayerNorm": "normsuite.norms.layers",
    "ChannelRMSNorm": "normsuite.norms.layers",
    "FrozenBatchNorm": "normsuite.norms.layers",
    "BatchNormLastDim": "normsuite.norms.layers",
    "GroupNormLastDim": "normsuite.norms.layers",
    "InstanceNormLastDim": "normsuite.norms.layers",
    "BatchNormNd": "normsuite.norms.layers",
    "InstanceNormNd": "normsuite.norms.layers",
    "SyncBatchNorm": "normsuite.norms.sync",
    "convert_sync_batchnorm": "normsuite.norms.sync",
    "revert_sync_batchnorm": "normsuite.norms.sync",
    "is_sync_batchnorm": "normsuite.norms.sync",
    "SyncBatchNormLastDim": "normsuite.norms.sync_last_dim",
    "NORM_LAYER_TYPES": "normsuite.norms.registry",
    "is_norm_layer": "normsuite.norms.registry",
    "channel_dim": "normsuite.norms.registry",
    "convert_norms": "normsuite.norms.convert",
    "ConversionReport": "normsuite.norms.convert",
    "Swap": "normsuite.norms.convert",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
