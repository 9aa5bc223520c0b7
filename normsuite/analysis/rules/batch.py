"""Rules on BatchNorm and the batch it sees: NRM005 (batch 1), NRM006 (batch < 16),
NRM008 (several devices, small per-device batch, no SyncBN)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from normsuite.advice import BN_MIN_BATCH

from ..context import FileContext, ModelContext
from ..domains import detect, graph_network
from ..ir import Layer
from ..recommend import advice_for, site_architecture, suggest_layer
from ..types import Finding
from . import finding, rule


def _bn_sites(ctx: FileContext) -> Iterator[tuple[ModelContext, Layer, str]]:
    """Plain BatchNorm layers (and backbones built with BN) of models with a known batch,
    one per source position, with the replacement(s): a helper line such as
    ``nn.BatchNorm2d(cout)`` may build several widths."""
    groups: dict[tuple[int, int], list[tuple[ModelContext, Layer]]] = {}
    seen: set[int] = set()
    for model in ctx.models:
        if model.batch.per_device is None or model.sync:
            continue  # (inference-only loaders never give a batch: entrypoints.py)
        if model.architecture == "unknown":
            continue  # no guidance applies (recommend abstains): its callers are judged
        if graph_network(model) is not None:
            continue  # BN over the nodes of the batch's graphs: the batch is not its sample

        for _, layer in model.norm_layers():
            is_bn = layer.norm_kind == "bn" or (
                layer.backbone is not None and layer.backbone.norm == "bn"
            )
            if is_bn and id(layer) not in seen:
                seen.add(id(layer))
                groups.setdefault((layer.line, layer.col), []).append((model, layer))
    for members in groups.values():
        fixes = list(dict.fromkeys(_fix(model, layer) for model, layer in members))
        model, layer = members[0]
        yield model, layer, " / ".join(_without_vaguer(fixes))


_FAMILY = re.compile(
    r'^(\w+) \(channels unknown|nn\.(LayerNorm|GroupNorm|RMSNorm)|build_norm\("(\w+)"'
)
_SPECS = {"LayerNorm": "ln", "GroupNorm": "gn", "RMSNorm": "rms"}


def _family(fix: str) -> str | None:
    found = _FAMILY.search(fix)
    if found is None:
        return None
    return found.group(1) or _SPECS.get(found.group(2) or "") or found.group(3)


def _without_vaguer(fixes: list[str]) -> list[str]:
    """A "ln (channels unknown: ...)" beside a concrete LayerNorm for the same line (the
    models that build it know its width, or not) says nothing more: one fix per family."""
    concrete = {_family(f) for f in fixes if "channels unknown" not in f}
    return [f for f in fixes if "channels unknown" not in f or _family(f) not in concrete]


def _fix(model: ModelContext, layer: Layer) -> str:
    advice = advice_for(model, site_architecture(model, layer), layer.num_channels)
    norm = advice.norm if advice.norm not in ("bn", "syncbn") else "gn"
    if norm == "frozenbn" and layer.backbone is None:
        norm = "gn"  # a new layer beside the pretrained backbone: no statistics to freeze
    return suggest_layer(norm, layer, model)


def _batch_text(model: ModelContext) -> str:
    b = model.batch
    return f"per-device batch {b.per_device} ({b.source})"


_RAISES = "PyTorch raises 'Expected more than 1 value per channel when training'"
_NOISY = (
    "it runs, but normalizes the image by its own spatial statistics, which are noisy and "
    "not the running statistics used at evaluation"
)


def _batch_one_effect(model: ModelContext, layer: Layer) -> str:
    """What batch 1 does to this layer, by the rank of its input (B8)."""
    if layer.backbone is not None:
        return f"on its conv maps {_NOISY}; on its pooled features {_RAISES}"
    app = model.first_app(layer)
    t = app.inp if app is not None else None
    rank = t.rank if t is not None else None
    if rank == 2 or (t is not None and t.pooled):
        return _RAISES
    if rank is not None and rank >= 3:
        return _NOISY
    if layer.type in ("BatchNorm1d", "LazyBatchNorm1d", "SyncBatchNorm"):
        return f"on (N, C) input {_RAISES}; on (N, C, L) {_NOISY}"
    return _NOISY  # BatchNorm2d/3d: conv maps


@rule("NRM005")
def batch_norm_batch_one(ctx: FileContext) -> Iterator[Finding]:
    for model, layer, fix in _bn_sites(ctx):
        b = model.batch
        if b.per_device != 1:
            continue
        effect = _batch_one_effect(model, layer)
        if effect == _NOISY and _in_domain(model, ctx):
            # pix2pix trains its generator's BN at batch 1 on purpose (per-image statistics,
            # as InstanceNorm): the domain's practice, kept by recommend. A BN that raises
            # at batch 1 is still reported.
            continue
        sync = (
            f", or nn.SyncBatchNorm.convert_sync_batchnorm(model) for the global batch of "
            f"{b.per_device * b.devices} over {b.devices} devices (B3)"
            if b.per_device * b.devices >= BN_MIN_BATCH
            else ""
        )
        yield finding(
            "NRM005",
            layer,
            f"`{layer.code}` is trained with {_batch_text(model)}: "
            f"{effect} (B8). Use {fix}, with weight standardization "
            f"for micro-batches (B9){sync}.",
            model.name,
        )


def _small(model: ModelContext) -> bool:
    b = model.batch.per_device
    return b is not None and 1 < b < BN_MIN_BATCH


def _in_domain(model: ModelContext, ctx: FileContext) -> bool:
    """The model, or a model it is a block of (SRGAN's ResidualBlock in its generator), has
    a norm practice of its own (a domain, D1-D9)."""
    by_name = {m.name: m for m in ctx.models}
    seen: set[str] = set()
    current: ModelContext | None = model
    while current is not None and current.name not in seen:
        seen.add(current.name)
        if detect(current, ctx) is not None:
            return True
        current = by_name.get(current.part_of) if current.part_of else None
    return False


@rule("NRM006")
def batch_norm_small_batch(ctx: FileContext) -> Iterator[Finding]:
    for model, layer, fix in _bn_sites(ctx):
        b = model.batch
        if not _small(model) or (b.devices > 1 and b.per_device * b.devices >= BN_MIN_BATCH):
            continue  # several devices with a large global batch: NRM008 says SyncBN
        if _in_domain(model, ctx):
            # GANs, style transfer, super-resolution, diffusion...: the BN-vs-GN numbers
            # are ImageNet classification's; recommend keeps the domain's norms (D1-D9)
            continue
        accum = (
            f"; accumulation ({b.accumulate}) does not enlarge the batch BN sees"
            if b.accumulate > 1
            else ""
        )
        frozen = (
            " (fine-tuning a pretrained backbone: FrozenBatchNorm, B10)"
            if model.fine_tuning and layer.backbone is not None
            else ""
        )
        yield finding(
            "NRM006",
            layer,
            f"`{layer.code}` sees a {_batch_text(model)}{accum}: "
            f"{_small_batch_evidence(site_architecture(model, layer))} Use {fix}{frozen}.",
            model.name,
        )


def _small_batch_evidence(arch: str) -> str:
    """The rule and numbers that apply at this site (the fix comes from the same rule)."""
    if arch == "mlp":
        return (
            "below 16 the batch statistics of (N, C) features are noisy; BatchNorm1d is the "
            "choice only from a per-device batch of 16, LayerNorm below it (B11)."
        )
    if arch == "rnn":
        return (
            "batch statistics mix time steps and sequences; LayerNorm works per time step at "
            "any batch size (B6)."
        )
    if arch == "transformer":
        return "tokens take LayerNorm, which does not depend on the batch size (B7)."
    return (
        "ResNet-50 error with BN rises to 24.8% / 27.3% / 34.7% at batch 8 / 4 / 2 while GN "
        "stays at ~24.1% (B2)."
    )


@rule("NRM008")
def batch_norm_without_sync(ctx: FileContext) -> Iterator[Finding]:
    for model, layer, fix in _bn_sites(ctx):
        b = model.batch
        if b.devices <= 1 or not _small(model) or b.per_device * b.devices < BN_MIN_BATCH:
            continue
        yield finding(
            "NRM008",
            layer,
            f"`{layer.code}` normalizes each device's {b.per_device} samples separately on "
            f"{b.devices} devices ({b.source}): sync the statistics over the global batch "
            f"of {b.per_device * b.devices} with Trainer(plugins=[normsuite.NormSync()]) or "
            f'norm="syncbn" (both run on any backend, CPU/gloo included; torch\'s '
            f"nn.SyncBatchNorm needs CUDA), or use {fix} (B3).",
            model.name,
        )
