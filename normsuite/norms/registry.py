"""Which modules are norm layers, and where their channels are.

Used by :func:`normsuite.norms.convert.convert_norms` and by the ActivationStats callback.

Example:
    >>> from torch import nn
    >>> is_norm_layer(nn.GroupNorm(4, 8)), channel_dim(nn.GroupNorm(4, 8))
    (True, 1)
    >>> channel_dim(nn.LayerNorm(8)), channel_dim(nn.Linear(2, 2))
    (-1, None)
"""

from __future__ import annotations

from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d as TorchvisionFrozenBatchNorm2d

from normsuite.norms.layers import (
    BatchNormLastDim,
    ChannelLayerNorm,
    ChannelRMSNorm,
    FrozenBatchNorm,
    GroupNormLastDim,
    InstanceNormLastDim,
)

__all__ = ["NORM_LAYER_TYPES", "channel_dim", "is_norm_layer"]

#: Every norm layer class normsuite knows. ``_NormBase`` covers BatchNorm{1,2,3}d,
#: SyncBatchNorm (torch's and normsuite's), InstanceNorm{1,2,3}d and their lazy variants.
NORM_LAYER_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.RMSNorm,
    TorchvisionFrozenBatchNorm2d,
    FrozenBatchNorm,
    ChannelLayerNorm,
    ChannelRMSNorm,
    BatchNormLastDim,
    GroupNormLastDim,
    InstanceNormLastDim,
)


def is_norm_layer(module: nn.Module) -> bool:
    """True for BatchNorm*, SyncBatchNorm, GroupNorm, LayerNorm, InstanceNorm*, RMSNorm,
    torchvision's FrozenBatchNorm2d and normsuite's own norm layers."""
    return isinstance(module, NORM_LAYER_TYPES)


def channel_dim(module: nn.Module) -> int | None:
    """The input dim a norm layer treats as channels: 1 for (N, C, *), -1 for (N, *, C).

    None when ``module`` is not a norm layer, or is a LayerNorm/RMSNorm over several trailing
    dims (e.g. ``nn.LayerNorm((C, H, W))``), which has no single channel dim.
    """
    if not is_norm_layer(module):
        return None
    if isinstance(module, (nn.LayerNorm, nn.RMSNorm)):
        return -1 if len(module.normalized_shape) == 1 else None
    # normsuite's layers (and subclasses such as SyncBatchNormLastDim) say it themselves.
    return -1 if getattr(module, "channels_last", False) is True else 1
