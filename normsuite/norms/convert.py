"""Swap every norm layer of a built (possibly pretrained) model for another norm family.

Example:
    >>> import torchvision
    >>> model = torchvision.models.resnet18()
    >>> report = convert_norms(model, "gn", exclude=["layer4.*"])   # doctest: +SKIP
    >>> print(report)                                                # doctest: +SKIP
    converted 15 norm layers to gn
      bn1            BatchNorm2d(64) -> GroupNorm(32, 64)
      ...
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.parameter import is_lazy
from torchvision.ops.misc import FrozenBatchNorm2d as TorchvisionFrozenBatchNorm2d

from normsuite.norms.layers import (
    DEFAULT_EPS,
    BatchNormNd,
    InstanceNormNd,
    build_norm,
)
from normsuite.norms.registry import is_norm_layer
from normsuite.norms.spec import NormSpec

__all__ = ["ConversionReport", "Swap", "convert_norms"]

Selector = type[nn.Module] | str
Selectors = Selector | Iterable[Selector] | None

# Input ranks (channels-first) that the layers' classes accept. Checked in order, so
# subclasses must precede their bases. Other channels-first layers take any (N, C, *).
# BatchNorm1d takes both (N, C) features and (N, C, L) sequences: which one a given layer
# sees cannot be told from the module, so targets whose class depends on it are refused.
_RANKS_OF_CLASS: tuple[tuple[type[nn.Module], tuple[int, ...]], ...] = (
    (nn.BatchNorm1d, (2, 3)),
    (nn.BatchNorm2d, (4,)),
    (nn.BatchNorm3d, (5,)),
    (nn.InstanceNorm1d, (3,)),
    (nn.InstanceNorm2d, (4,)),
    (nn.InstanceNorm3d, (5,)),
    (TorchvisionFrozenBatchNorm2d, (4,)),
)
# Packages whose norm classes normsuite knows the forward of. A subclass defined elsewhere
# with its own forward (timm's BatchNormAct2d fuses an activation) is skipped, not mangled.
_KNOWN_PACKAGES = ("torch.", "torchvision.", "normsuite.")


class Swap(NamedTuple):
    """One replaced layer: its qualified name, the old module and the new one."""

    name: str
    old: nn.Module
    new: nn.Module


@dataclass
class ConversionReport:
    """What :func:`convert_norms` did: iterate it for :class:`Swap` s, ``len()`` counts them.

    ``not_carried`` maps a layer name to what its replacement could not take over
    (e.g. running statistics when going BN -> GN); ``skipped`` maps a layer name to why it
    was left alone.
    """

    target: NormSpec
    swaps: list[Swap] = field(default_factory=list)
    not_carried: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Swap]:
        return iter(self.swaps)

    def __len__(self) -> int:
        return len(self.swaps)

    def __str__(self) -> str:
        lines = [f"converted {len(self.swaps)} norm layer(s) to {self.target}"]
        width = max((len(s.name) for s in self.swaps), default=0)
        lines += [f"  {s.name:<{width}}  {_short(s.old)} -> {_short(s.new)}" for s in self.swaps]
        # Group identical notes: a ResNet has 20 layers that all lose their running stats.
        by_note: dict[str, list[str]] = {}
        for name, notes in self.not_carried.items():
            for note in notes:
                by_note.setdefault(note, []).append(name)
        if by_note:
            lines.append("not carried:")
            lines += [f"  {note}: {_name_list(names)}" for note, names in by_note.items()]
        if self.skipped:
            lines.append("skipped:")
            lines += [f"  {name}: {why}" for name, why in self.skipped.items()]
        return "\n".join(lines)


def _short(module: nn.Module) -> str:
    # Positional part of the repr only: "BatchNorm2d(64)", "GroupNorm(32, 64)".
    args = [a for a in module.extra_repr().split(", ") if "=" not in a]
    return f"{type(module).__name__}({', '.join(args)})"


def _name_list(names: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    more = len(names) - limit
    return f"{shown} (+{more} more)" if more > 0 else shown


# --------------------------------------------------------------------------- selection
def _as_selectors(value: Selectors, arg: str) -> list[Selector] | None:
    if value is None:
        return None
    if isinstance(value, (str, type)):
        items: list = [value]
    elif isinstance(value, Iterable):
        items = list(value)
    else:
        items = [value]  # reported below
    for item in items:
        if not (isinstance(item, str) or (isinstance(item, type) and issubclass(item, nn.Module))):
            raise TypeError(
                f"{arg} takes module types or name globs such as 'layer4.*', got {item!r}"
            )
    return items


def _matches(name: str, module: nn.Module, selectors: list[Selector]) -> bool:
    # A glob also matches through an ancestor, so exclude="layer4" skips all of layer4.
    parts = name.split(".")
    prefixes = [".".join(parts[: i + 1]) for i in range(len(parts))]
    for sel in selectors:
        if isinstance(sel, type):
            if isinstance(module, sel):
                return True
        elif any(fnmatch.fnmatchcase(p, sel) for p in prefixes):
            return True
    return False


def _included_by_type(module: nn.Module, selectors: list[Selector] | None) -> bool:
    return selectors is not None and any(
        isinstance(s, type) and isinstance(module, s) for s in selectors
    )


# --------------------------------------------------------------------------- layout
@dataclass(frozen=True)
class _Layout:
    channels: int
    channels_last: bool
    ranks: tuple[int, ...] | None  # channels-first input ranks it takes, None for any


def _ranks_of(cls: type) -> tuple[int, ...] | None:
    for base, ranks in _RANKS_OF_CLASS:
        if issubclass(cls, base):
            return ranks
    return None


def _layout_of(name: str, module: nn.Module, spec: NormSpec) -> _Layout:
    if isinstance(module, (nn.LayerNorm, nn.RMSNorm)):
        shape = tuple(module.normalized_shape)
        if len(shape) != 1:
            raise ValueError(
                f"cannot convert {name!r} ({_short(module)}) to {spec}: it normalizes over the "
                f"trailing dims {shape}, so which dim holds the channels cannot be told; "
                f"pass exclude=[{name!r}] and replace it by hand with build_norm()."
            )
        return _Layout(shape[0], channels_last=True, ranks=None)
    channels = getattr(module, "num_features", None) or getattr(module, "num_channels", None)
    if channels is None:  # torchvision's FrozenBatchNorm2d keeps only its buffers
        channels = module.weight.shape[0]
    if getattr(module, "channels_last", False) is True:
        return _Layout(channels, channels_last=True, ranks=None)
    # A layer normsuite built remembers the class it replaced; that class may know the rank.
    source: type = type(module)
    ranks = _ranks_of(source)
    original = getattr(module, "_normsuite_original_class", None)
    original_ranks = _ranks_of(original) if isinstance(original, type) else None
    if original_ranks is not None and (ranks is None or set(original_ranks) < set(ranks)):
        # e.g. a BatchNorm1d that replaced an InstanceNorm1d sees (N, C, L), not (N, C).
        source, ranks = original, original_ranks
    if ranks is not None and 2 in ranks and spec.kind == "in":
        raise ValueError(
            f"cannot convert {name!r} ({_short(module)}) to {spec}: a {source.__name__} takes "
            "both (N, C) features and (N, C, L) sequences, and InstanceNorm needs positions (L) "
            f"to normalize over, so which layout it sees cannot be told; pass "
            f"exclude=[{name!r}], and for (N, C, L) input replace it by hand with "
            f"build_norm({str(spec)!r}, {channels}, ndim=3)."
        )
    return _Layout(channels, channels_last=False, ranks=ranks)


@dataclass(frozen=True)
class _Options:
    """The replaced layer's settings that the new one keeps (None: the class default)."""

    eps: float | None
    affine: bool
    bias: bool
    track_running_stats: bool | None


def _build(spec: NormSpec, layout: _Layout, opts: _Options) -> nn.Module:
    kw = {
        "eps": opts.eps,
        "affine": opts.affine,
        "bias": opts.bias,
        "track_running_stats": opts.track_running_stats,
    }
    if layout.channels_last:
        return build_norm(spec, layout.channels, ndim=3, channels_last=True, **kw)
    ranks = layout.ranks
    if ranks is not None and len(ranks) == 1:
        return build_norm(spec, layout.channels, ndim=ranks[0], **kw)
    e = DEFAULT_EPS if opts.eps is None else opts.eps
    cls_kw: dict = {} if opts.bias else {"bias": False}
    if opts.track_running_stats is not None:
        cls_kw["track_running_stats"] = opts.track_running_stats
    if spec.kind == "bn":
        # BatchNorm1d itself takes (N, C) and (N, C, L): keeping the class keeps round trips
        # exact (BN1d -> gn -> bn). A layer of unknown rank gets a BN for any (N, C, *).
        cls = nn.BatchNorm1d if ranks == (2, 3) else BatchNormNd
        return cls(layout.channels, eps=e, affine=opts.affine, **cls_kw)
    if spec.kind == "in":  # ranks is None here: the layer took any (N, C, *)
        return InstanceNormNd(layout.channels, eps=e, affine=opts.affine, **cls_kw)
    # gn, ln, rms, frozenbn and syncbn: the channels-first classes build_norm picks for rank 4
    # (GroupNorm, ChannelLayerNorm, ...) take any (N, C, *), (N, C) included.
    return build_norm(spec, layout.channels, ndim=4, **kw)


# --------------------------------------------------------------------------- carrying state
def _tensor(module: nn.Module, name: str) -> Tensor | None:
    value = getattr(module, name, None)
    return value if isinstance(value, Tensor) else None


def _affine_of(module: nn.Module) -> bool:
    for attr in ("affine", "elementwise_affine"):
        flag = getattr(module, attr, None)
        if isinstance(flag, bool):
            return flag
    return _tensor(module, "weight") is not None


_FAMILIES = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)


def _same_family(old: nn.Module, kind: str) -> bool:
    """Whether ``old`` is of the family ``kind`` builds, whose settings then carry over."""
    if kind in ("bn", "syncbn"):
        return isinstance(old, nn.modules.batchnorm._BatchNorm)
    return kind == "in" and isinstance(old, nn.modules.instancenorm._InstanceNorm)


def _options_of(old: nn.Module, spec: NormSpec) -> _Options:
    """What the new layer keeps: eps, affine, a bias only where the old layer had one, and
    BatchNorm's/InstanceNorm's ``track_running_stats`` within the family."""
    eps = getattr(old, "eps", None)
    affine = _affine_of(old)
    # No shift before, none after (BatchNorm(bias=False), RMSNorm, LayerNorm(bias=False)):
    # a new trainable bias would silently change what the model can learn.
    bias = affine and _tensor(old, "bias") is not None
    track = getattr(old, "track_running_stats", None) if _same_family(old, spec.kind) else None
    return _Options(
        eps if isinstance(eps, float) else None,
        affine,
        bias,
        track if isinstance(track, bool) else None,
    )


@torch.no_grad()
def _carry(old: nn.Module, new: nn.Module) -> list[str]:
    """Copy what the new layer can hold; return what it could not."""
    lost: list[str] = []
    kind = type(new).__name__
    for attr in ("weight", "bias"):
        src, dst = _tensor(old, attr), _tensor(new, attr)
        if src is None:
            continue
        if dst is None or dst.shape != src.shape:
            lost.append(f"{attr} ({kind} has none of shape {tuple(src.shape)})")
            continue
        dst.copy_(src)
        if isinstance(src, nn.Parameter) and isinstance(dst, nn.Parameter):
            dst.requires_grad_(src.requires_grad)  # keep a user's freezing
    stats = [s for s in ("running_mean", "running_var") if _tensor(old, s) is not None]
    if stats:
        if all(_tensor(new, s) is not None for s in stats):
            for s in stats:
                _tensor(new, s).copy_(_tensor(old, s))  # type: ignore[union-attr]
        else:
            lost.append(f"running statistics ({kind} keeps none)")
    elif _tensor(new, "running_mean") is not None:
        # Not a loss but a trap worth a line: a FrozenBatchNorm with mean 0 / var 1 does not
        # normalize at all, and a fresh BatchNorm evaluates wrongly until it has trained.
        lost.append(
            f"running statistics ({type(old).__name__} has none; {kind} starts at mean 0, var 1)"
        )
    src_steps, dst_steps = _tensor(old, "num_batches_tracked"), _tensor(new, "num_batches_tracked")
    if src_steps is not None and dst_steps is not None:
        dst_steps.copy_(src_steps)
    if any(isinstance(old, f) and isinstance(new, f) for f in _FAMILIES):
        new.momentum = old.momentum
    return lost


def _device_dtype(module: nn.Module, recurse: bool) -> tuple[torch.device, torch.dtype] | None:
    for t in (*module.parameters(recurse=recurse), *module.buffers(recurse=recurse)):
        if not is_lazy(t) and t.is_floating_point():
            return t.device, t.dtype
    return None


def _replacement(
    name: str, old: nn.Module, spec: NormSpec, model: nn.Module
) -> tuple[nn.Module, list[str]]:
    if any(is_lazy(t) for t in (*old.parameters(recurse=False), *old.buffers(recurse=False))):
        raise ValueError(
            f"cannot convert {name!r} ({type(old).__name__}): its parameters are not "
            "initialized yet; run one forward pass before convert_norms()."
        )
    layout = _layout_of(name, old, spec)
    new = _build(spec, layout, _options_of(old, spec))
    # A layer with no tensors of its own (LayerNorm(elementwise_affine=False), GroupNorm(
    # affine=False), ...) tells no device or dtype: its input comes from its neighbours, so
    # take the nearest ones, the parent's, then the model's.
    parent_name = name.rpartition(".")[0]
    placement = (
        _device_dtype(old, recurse=False)
        or _device_dtype(model.get_submodule(parent_name), recurse=True)
        or _device_dtype(model, recurse=True)
    )
    if placement is not None:
        device, dtype = placement
        new.to(device=device, dtype=dtype)  # before copying: the old layer may live on "meta"
    lost = _carry(old, new)
    new.train(old.training)
    # Lets SyncBN's revert (and a later conversion) restore e.g. BatchNorm2d, not a generic BN.
    new._normsuite_original_class = type(old)
    return new, lost


# --------------------------------------------------------------------------- entry point
def convert_norms(
    model: nn.Module,
    to: str | NormSpec,
    *,
    include: Selectors = None,
    exclude: Selectors = None,
) -> ConversionReport:
    """Replace the norm layers of ``model`` in place by the norm that ``to`` names.

    Each new layer takes the layout of the layer it replaces (BatchNorm2d -> channel LN for
    ``"ln"``; LayerNorm(C) over tokens -> LayerNorm(C)), its device, dtype and train/eval
    mode, its eps, ``affine`` and bias (a layer without a bias gets none), within BatchNorm
    and InstanceNorm its ``track_running_stats`` and momentum, and its affine weight/bias (and
    running statistics) where the new layer has them; the report lists what was not carried.
    A layer with no tensors of its own (``LayerNorm(C, elementwise_affine=False)``) takes the
    device and dtype of its parent module, else of the model. Where a layer's input rank
    cannot be told (``BatchNorm1d`` takes (N, C) and (N, C, L)), the new layer is one that
    takes any rank; ``"in"`` needs positions, so converting such a layer to it raises.
    Nothing is changed if any selected layer cannot be converted.

    Args:
        model: a built model; the norm layers anywhere inside it are swapped.
        to: target spec (``"gn"``, ``"gn:16"``, ``"frozenbn"``, ``"ln"``, ...).
        include: only these: module types and/or name globs (``"layer4.*"``). A glob that
            matches a parent module's name takes all of it: ``exclude="layer4"``.
        exclude: not these: module types and/or name globs.

    Returns:
        A :class:`ConversionReport` (iterable of ``(name, old, new)``; ``print`` it).

    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
    >>> [(s.name, type(s.new).__name__) for s in convert_norms(net, "gn:4")]
    [('1', 'GroupNorm')]
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            "convert_norms takes the model (a torch.nn.Module) whose norm layers to swap, "
            f"got {type(model).__name__}: {model!r:.60}"
        )
    if to is None:
        raise TypeError(
            "convert_norms(model, None): the target norm is None; write 'none' (or "
            "'identity') to remove the norm layers, or a norm such as 'gn' or 'frozenbn'"
        )
    if not isinstance(to, (str, NormSpec)):
        raise TypeError(
            f"the target norm must be a spec string such as 'gn' or 'gn:16', got {to!r:.60}"
        )
    spec = NormSpec.parse(to)
    include_sel = _as_selectors(include, "include")
    exclude_sel = _as_selectors(exclude, "exclude")
    if is_norm_layer(model):
        raise ValueError(
            f"convert_norms swaps the norm layers inside a model, but the model itself is a "
            f"{type(model).__name__}; build the new layer with build_norm() instead."
        )
    report = ConversionReport(spec)

    # Collect first, mutate after: never change a module dict while iterating over it.
    # remove_duplicate=False so that a layer shared under two names is replaced at both.
    selected: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules(remove_duplicate=False):
        if not name or not is_norm_layer(module):
            continue
        if include_sel is not None and not _matches(name, module, include_sel):
            continue
        if exclude_sel is not None and _matches(name, module, exclude_sel):
            continue
        forward_module = getattr(type(module).forward, "__module__", "") or ""
        if not forward_module.startswith(_KNOWN_PACKAGES) and not _included_by_type(
            module, include_sel
        ):
            report.skipped[name] = (
                f"{type(module).__name__} has its own forward ({forward_module}), which may do "
                "more than normalize; pass include=[its type] to convert it anyway"
            )
            continue
        selected.append((name, module))

    new_by_id: dict[int, nn.Module] = {}
    for name, old in selected:
        if id(old) in new_by_id:
            continue
        new, lost = _replacement(name, old, spec, model)  # may raise: nothing swapped yet
        new_by_id[id(old)] = new
        report.swaps.append(Swap(name, old, new))
        if lost:
            report.not_carried[name] = lost

    for name, old in selected:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        # setattr registers into parent._modules: works for Sequential, ModuleList, ModuleDict.
        setattr(parent, child, new_by_id[id(old)])
    return report
