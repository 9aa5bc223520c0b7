"""Which modules ActivationStats watches, and along which dim their channels lie."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from torch import nn

ModuleSelector = str | Sequence[str | type] | None

# torch's own norm families; normsuite's layers are added when normsuite.norms provides them.
_TORCH_NORMS: tuple[type, ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*, SyncBatchNorm, InstanceNorm*
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)
# Norms that normalize the trailing dims: their channels are the last dim, as in (N, L, C).
_LAST_DIM_TYPES: tuple[type, ...] = (
    nn.LayerNorm,
    nn.Linear,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)


def is_norm_layer(module: nn.Module) -> bool:
    """True for any normalization layer (torch's or normsuite's)."""
    try:  # normsuite.norms knows its own layer classes (channel LN, FrozenBN, ...)
        from normsuite.norms import is_norm_layer as _is_norm

        return bool(_is_norm(module))
    except ImportError:
        return isinstance(module, _TORCH_NORMS)


def channel_dim(module: nn.Module) -> int:
    """1 for channels-first modules (N, C, ...), -1 for last-dim ones (LayerNorm, Linear)."""
    try:
        from normsuite.norms import channel_dim as _channel_dim

        if is_norm_layer(module):
            return int(_channel_dim(module))
    except ImportError:
        pass
    return -1 if isinstance(module, _LAST_DIM_TYPES) else 1


def select_modules(root: nn.Module, modules: ModuleSelector) -> list[tuple[str, nn.Module]]:
    """Resolve a ``modules=`` selector to ``(name, module)`` pairs in definition order.

    ``None``: every norm layer; ``"all"``: every leaf module; a sequence mixing layer types
    (``nn.BatchNorm2d``) and name globs (``"layer1.*"``).

    Example:
        >>> select_modules(nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)), None)[0][0]
        '1'
    """
    named = [(n, m) for n, m in root.named_modules() if n]  # the root itself is never watched
    if modules is None:
        return [(n, m) for n, m in named if is_norm_layer(m)]
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
