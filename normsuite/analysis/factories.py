"""Layers built through factories and wrappers the analyzer sees through.

- norm factories: mmcv/mmengine ``build_norm_layer(dict(type="GN", num_groups=32), C)``
  (returns ``(name, layer)``), detectron2 ``get_norm("BN", C)``, timm
  ``get_norm_layer("layernorm2d")`` / ``create_norm_layer("batchnorm", C)``;
- normsuite's own ``build_norm("gn", C, ndim=4, channels_last=False)`` (so a suggested
  layer is checked like any other);
- conv factories: mmcv ``build_conv_layer(None, cin, cout, k)``;
- weight reparametrizations: ``spectral_norm(conv)`` / ``weight_norm(linear)`` (and their
  ``nn.utils.parametrizations`` forms) return the wrapped layer; the wrapper is noted in
  :data:`REPARAM` of the index memo so that "norms found" can list it (it is kept: it is
  not a feature normalization).

A type the table does not know (a config read at run time, a plugin layer) stays UNKNOWN.

>>> norm_type("GN"), norm_type("SyncBN"), norm_type("layernorm2d"), norm_type("DCNv2")
('GroupNorm', 'SyncBatchNorm', 'LayerNorm2d', None)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .ir import UNKNOWN, Layer, LayerClass

REPARAM = "reparametrized"  # index.memo key: {id(layer): (wrapper name, layer)}

# mmcv NORM_LAYERS / detectron2 get_norm / timm create_norm names -> torch layer type.
_NORM_NAMES = {
    "bn": "BatchNorm2d",
    "bn1d": "BatchNorm1d",
    "bn2d": "BatchNorm2d",
    "bn3d": "BatchNorm3d",
    "batchnorm": "BatchNorm2d",
    "batchnorm1d": "BatchNorm1d",
    "batchnorm2d": "BatchNorm2d",
    "batchnorm3d": "BatchNorm3d",
    "syncbn": "SyncBatchNorm",
    "nnsyncbn": "SyncBatchNorm",
    "naivesyncbn": "SyncBatchNorm",
    "mmsyncbn": "SyncBatchNorm",
    "frozenbn": "FrozenBatchNorm2d",
    "frozenbatchnorm2d": "FrozenBatchNorm2d",
    "gn": "GroupNorm",
    "groupnorm": "GroupNorm",
    "ln": "LayerNorm",
    "layernorm": "LayerNorm",
    "layernorm2d": "LayerNorm2d",
    "rmsnorm": "RMSNorm",
    "in": "InstanceNorm2d",
    "in1d": "InstanceNorm1d",
    "in2d": "InstanceNorm2d",
    "in3d": "InstanceNorm3d",
    "instancenorm": "InstanceNorm2d",
}
_CONV_NAMES = {"conv": "Conv2d", "conv1d": "Conv1d", "conv2d": "Conv2d", "conv3d": "Conv3d"}
NORM_FACTORIES = frozenset({"build_norm_layer", "get_norm", "create_norm_layer"})
CLASS_FACTORIES = frozenset({"get_norm_layer"})
CONV_FACTORIES = frozenset({"build_conv_layer"})
REPARAMS = frozenset({"spectral_norm", "weight_norm", "SpectralNorm"})
FACTORY_NAMES = NORM_FACTORIES | CLASS_FACTORIES | CONV_FACTORIES | REPARAMS | {"build_norm"}

MakeLayer = Callable[[str, tuple[Any, ...], dict[str, Any]], Layer]


def norm_type(name: Any) -> str | None:
    """The torch layer type of a factory's norm name (case and ``_`` insensitive)."""
    if isinstance(name, LayerClass):
        return name.type
    if not isinstance(name, str):
        return None
    return _NORM_NAMES.get(name.lower().replace("_", ""))


def call_factory(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any], make: MakeLayer, memo: dict
) -> Any:
    """What the factory call ``name(*args, **kwargs)`` returns, or UNKNOWN."""
    if name in REPARAMS:
        module = args[0] if args else kwargs.get("module")
        if isinstance(module, Layer):
            memo.setdefault(REPARAM, {})[id(module)] = (name, module)
            return module
        return UNKNOWN
    if name in CLASS_FACTORIES:
        layer_type = norm_type(args[0] if args else kwargs.get("layer_name"))
        return LayerClass(layer_type) if layer_type else UNKNOWN
    if name in CONV_FACTORIES:
        return _conv(args, kwargs, make)
    if name == "build_norm":
        return _build_norm(args, kwargs, make)
    if name == "build_norm_layer":
        layer = _from_cfg(args[0] if args else kwargs.get("cfg"), args[1:2], make)
        if layer is UNKNOWN:
            return UNKNOWN
        postfix = args[2] if len(args) > 2 else kwargs.get("postfix", "")
        abbr = {"GroupNorm": "gn", "LayerNorm": "ln"}.get(layer.type, "bn")
        if "In" in layer.type[:2]:
            abbr = "in"
        return (f"{abbr}{postfix}", layer)
    # get_norm("BN", C) / create_norm_layer("batchnorm", C, ...)
    layer_type = norm_type(args[0] if args else kwargs.get("norm"))
    channels = args[1] if len(args) > 1 else kwargs.get("out_channels", kwargs.get("num_features"))
    if layer_type is None or channels is None:
        return UNKNOWN
    if layer_type == "GroupNorm":
        return make("GroupNorm", (32, channels), {})  # detectron2: GroupNorm(32, C)
    return make(layer_type, (channels,), {})


def _from_cfg(cfg: Any, channels: tuple[Any, ...], make: MakeLayer) -> Any:
    """mmcv: ``build_norm_layer(dict(type="GN", num_groups=32), C)``."""
    if not isinstance(cfg, dict) or not channels:
        return UNKNOWN
    layer_type = norm_type(cfg.get("type"))
    if layer_type is None:
        return UNKNOWN
    rest = {str(k): v for k, v in cfg.items() if k not in ("type", "requires_grad")}
    if layer_type == "GroupNorm":
        return make("GroupNorm", (), {**rest, "num_channels": channels[0]})
    if layer_type == "LayerNorm":
        return make("LayerNorm", (channels[0],), rest)
    return make(layer_type, (channels[0],), rest)


_BY_RANK = {
    "bn": {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d", 5: "BatchNorm3d"},
    "in": {3: "InstanceNorm1d", 4: "InstanceNorm2d", 5: "InstanceNorm3d"},
}


def _build_norm(args: tuple[Any, ...], kwargs: dict[str, Any], make: MakeLayer) -> Any:
    """normsuite ``build_norm(spec, C, ndim=4, channels_last=False)``: the layer it builds.

    >>> make = lambda t, a, k: (t, a)
    >>> _build_norm(("ln", 64), {}, make), _build_norm(("gn:8", 64), {"ndim": 3}, make)
    (('LayerNorm2d', (64,)), ('GroupNorm', (8, 64)))
    """
    spec = args[0] if args else kwargs.get("spec")
    channels = args[1] if len(args) > 1 else kwargs.get("num_channels")
    ndim, last = kwargs.get("ndim", 4), kwargs.get("channels_last", False)
    if not isinstance(spec, str) or not isinstance(ndim, int) or not isinstance(last, bool):
        return UNKNOWN
    kind, _, groups = spec.lower().partition(":")
    per_position = ndim == 2 or last
    if kind in ("ln", "rms"):
        torch_type = "LayerNorm" if kind == "ln" else "RMSNorm"
        return make(torch_type if per_position else f"{torch_type}2d", (channels,), {})
    if last:
        return UNKNOWN  # normsuite's channels-last BN/GN wrappers: no torch type to name
    if kind == "gn":
        from normsuite.advice import default_groups

        g = int(groups) if groups.isdigit() else None
        if g is None and isinstance(channels, int) and channels > 0:
            g = default_groups(channels)
        return make("GroupNorm", (g if g is not None else UNKNOWN, channels), {})
    if kind in _BY_RANK and ndim in _BY_RANK[kind]:
        return make(_BY_RANK[kind][ndim], (channels,), {})
    types = {"syncbn": "SyncBatchNorm", "frozenbn": "FrozenBatchNorm2d", "none": "Identity"}
    return make(types[kind], (channels,), {}) if kind in types else UNKNOWN


def _conv(args: tuple[Any, ...], kwargs: dict[str, Any], make: MakeLayer) -> Any:
    """mmcv: ``build_conv_layer(cfg, *args, **kwargs)``; cfg None means Conv2d."""
    cfg = args[0] if args else kwargs.pop("cfg", None)
    if cfg is None:
        conv = "Conv2d"
    elif isinstance(cfg, dict) and isinstance(cfg.get("type"), str):
        conv = _CONV_NAMES.get(cfg["type"].lower())
        if conv is None:
            return UNKNOWN  # DCN, SAC, ...: not a plain conv
    else:
        return UNKNOWN
    return make(conv, tuple(args[1:]), {k: v for k, v in kwargs.items() if k != "cfg"})


__all__ = ["FACTORY_NAMES", "REPARAM", "call_factory", "norm_type"]
