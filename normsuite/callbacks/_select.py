"""Which modules ActivationStats watches, and along which dim their channels lie."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from torch import nn

from normsuite import norms

ModuleSelector = str | Sequence[str | type] | None

# Modules whose features are the last dim, as in (N, L, C): token and sequence layers.
_LAST_DIM_TYPES: tuple[type, ...] = (
    nn.Linear,
    nn.Bilinear,
    nn.LayerNorm,
    nn.RMSNorm,
    nn.Embedding,
    nn.RNNBase,
    nn.MultiheadAttention,
    nn.TransformerEncoderLayer,
    nn.TransformerDecoderLayer,
)


def is_norm_layer(module: nn.Module) -> bool:
    """True for any normalization layer, torch's or normsuite's."""
    return norms.is_norm_layer(module)


def has_inner_norms(module: nn.Module) -> bool:
    """True for modules that normalize inside and report it through a ``norm_observer``
    attribute (normsuite's LayerNormLSTM/GRU): their norms are not submodules to hook."""
    return hasattr(module, "norm_observer") and getattr(module, "norm", None) != "none"


def has_batch_statistics(module: nn.Module) -> bool:
    """BatchNorm-like: running mean/var buffers compared with batch statistics over N(,L...).

    Includes FrozenBatchNorm (the shift then shows how far the data drifted from the frozen
    statistics); excludes InstanceNorm, whose statistics are per sample.
    """
    if isinstance(module, nn.modules.instancenorm._InstanceNorm):
        return False
    return getattr(module, "running_mean", None) is not None and is_norm_layer(module)


def channel_dim(module: nn.Module) -> int:
    """1 for channels-first modules (N, C, ...), -1 for last-dim ones (LayerNorm, Linear,
    normsuite's ``channels_last`` layers). A LayerNorm over several trailing dims, which has
    no single channel dim, is read as channels-first."""
    if is_norm_layer(module):
        dim = norms.channel_dim(module)
        return 1 if dim is None else dim
    return -1 if isinstance(module, _LAST_DIM_TYPES) else 1


def select_modules(root: nn.Module, modules: ModuleSelector) -> list[tuple[str, nn.Module]]:
    """Resolve a ``modules=`` selector to ``(name, module)`` pairs in definition order.

    ``None``: every norm layer, and every module with norms inside (LN-RNNs); ``"all"``: every
    leaf module; a sequence mixing layer types (``nn.BatchNorm2d``) and name globs
    (``"layer1.*"``).

    Example:
        >>> select_modules(nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)), None)[0][0]
        '1'
    """
    named = [(n, m) for n, m in root.named_modules() if n]  # the root itself is never watched
    if modules is None:
        return [(n, m) for n, m in named if is_norm_layer(m) or has_inner_norms(m)]
    if isinstance(modules, str):
        if modules == "all":
            return [(n, m) for n, m in named if not any(True for _ in m.children())]
        modules = [modules]
    types = tuple(s for s in modules if isinstance(s, type))
    globs = [s for s in modules if isinstance(s, str)]
    bad = [s for s in modules if not isinstance(s, (str, type))]
    if bad:
        raise TypeError(
            f"ActivationStats(modules=...) takes None, 'all', layer types or name globs; "
            f"got {bad[0]!r}"
        )
    return [
        (n, m)
        for n, m in named
        if (types and isinstance(m, types)) or any(fnmatch.fnmatchcase(n, g) for g in globs)
    ]
