"""Facts about one norm site that both the rules and the recommender use, so that a layer a
rule flags is never "kept" by ``recommend`` (and the other way round).

>>> from normsuite.analysis.ir import Layer
>>> from normsuite.analysis.shapes import T
>>> bn = Layer("BatchNorm1d", 1, 0, "nn.BatchNorm1d(64)", args=(64,))
>>> normalizes_length(bn, T(rank=3, cdim=2, channels=64, kind="seq"))
True
>>> normalizes_length(bn, T(rank=3, cdim=1, channels=64, kind="map"))
False
"""

from __future__ import annotations

from .context import ModelContext
from .ir import Layer
from .shapes import T

_CNN = ("cnn1d", "cnn2d", "cnn3d")
_CHANNEL_FIRST = frozenset(
    {
        "BatchNorm1d",
        "BatchNorm2d",
        "BatchNorm3d",
        "SyncBatchNorm",
        "FrozenBatchNorm2d",
        "InstanceNorm1d",
        "InstanceNorm2d",
        "InstanceNorm3d",
        "GroupNorm",
        "LayerNorm2d",
        "RMSNorm2d",
    }
)
_BN1D = ("BatchNorm1d", "InstanceNorm1d", "LazyBatchNorm1d")


def normalizes_length(layer: Layer, t: T) -> bool:
    """BatchNorm1d/InstanceNorm1d on an (N, L, C) tensor: it normalizes L, not C (NRM012).

    Rank known: channels last on a rank-3 tensor. Rank unknown (token embeddings of an
    input whose rank the tracer cannot see): a token sequence whose channel count is known
    and equals the layer's, so the layer was evidently meant for those channels.
    """
    if layer.type not in _BN1D:
        return False
    if t.rank == 3 and t.last is True:
        return True
    c = layer.num_channels
    return t.rank is None and t.cdim == -1 and t.kind == "seq" and c is not None and t.channels == c


def received_channels(model: ModelContext, layer: Layer, t: T) -> int | None:
    """The channel count the norm receives when it differs from the one it was built for
    (NRM011), else None."""
    expected = layer.num_channels
    if expected is None or t.channels is None or t.channels == expected:
        return None
    if t.rank is None:
        # Rank unknown: only (N, C) features of an MLP, channels last with a known count
        # (Linear(20, 64) -> BatchNorm1d(32)); on a sequence BatchNorm1d(L) may be meant.
        mlp = model.architecture == "mlp" and t.kind != "seq" and t.cdim == -1
        return t.channels if mlp and layer.type == "BatchNorm1d" else None
    if layer.type in _CHANNEL_FIRST:
        if t.cdim != 1 or (t.rank == 3 and t.kind == "seq"):
            return None
    elif layer.type in ("LayerNorm", "RMSNorm"):
        if t.last is not True:
            return None
    else:
        return None
    return t.channels


def cnn_classifier_misfit(model: ModelContext, layer: Layer) -> str | None:
    """What is wrong with this norm in a CNN classifier (B5, NRM013), or None: InstanceNorm,
    GroupNorm(1, C) (LayerNorm over C, H, W) or a channels-first LayerNorm over (C, H, W).
    ConvNeXt-style LayerNorm on permuted maps is a deliberate design: not a misfit."""
    if model.architecture not in _CNN or not model.classifier:
        return None
    if layer.norm_kind == "in":
        return "InstanceNorm"
    if layer.type == "GroupNorm" and layer.arg("num_groups") == 1:
        return "GroupNorm(1, C), i.e. LayerNorm over (C, H, W),"
    if layer.type in ("LayerNorm", "RMSNorm"):
        app = model.first_app(layer)
        shape = layer.arg("normalized_shape")
        multi = isinstance(shape, (list, tuple)) and len(shape) > 1
        if app is not None and app.inp.kind == "map" and app.inp.cdim == 1 and multi:
            return "LayerNorm over (C, H, W)"
    return None


def pre_norm(model: ModelContext, path: str) -> bool:
    """The norm is the first layer of its block (``Sequential(GroupNorm(1, C), mixer)``, a
    ``pre_norm`` applied before the block's convs): a MetaFormer / Transformer-style
    pre-norm, chosen on purpose (PoolFormer, LowFormer, SHViT, MobileViTv2). B5's ResNet
    numbers are about norms that follow a conv."""
    if "." not in path:
        return False
    parent = path.rsplit(".", 1)[0] + "."
    first = next((p for p, _ in model.layers if p.startswith(parent)), None)
    return first == path


__all__ = ["cnn_classifier_misfit", "normalizes_length", "pre_norm", "received_channels"]
