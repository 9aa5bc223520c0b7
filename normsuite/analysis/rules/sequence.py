"""NRM007: BatchNorm on the recurrent path (inside a cell stepped over time, or on the state
fed back), or on the tokens inside a Transformer block.

Not on the recurrent path, so silent: a BatchNorm on the last step's ``(N, C)`` vector
(B11), on an ``nn.LSTM``'s outputs feeding the next layer (input-to-hidden, where BN can
help: Laurent et al. 2016), on the conv maps of a vision model with an RNN or attention
head, on the tokens of a conv + attention vision hybrid (BN chosen for export, D7), in the
CNN encoder of an agent whose features feed an ``LSTMCell``, or a BatchNorm
that is never used.
"""

from __future__ import annotations

from collections.abc import Iterator

from normsuite.advice import layer_code

from ..context import MAP_NORMS, FileContext, ModelContext
from ..ir import Layer
from ..shapes import Application
from ..sites import series_token_batchnorm
from ..types import Finding
from . import finding, rule


@rule("NRM007")
def batch_norm_in_sequence_model(ctx: FileContext) -> Iterator[Finding]:
    for model in ctx.models:
        flagged: set[int] = set()
        for app in model.apps:
            layer = app.layer
            if layer.norm_kind not in ("bn", "syncbn") or id(layer) in flagged:
                continue
            if model.recurrence.on_path(layer):
                where = "on the recurrent path (inside a cell stepped over time, or on the "
                where += "state fed back)"
                why = (
                    "BN on hidden-to-hidden transitions does not help (Laurent et al. 2016) "
                    "and its statistics differ per time step; LayerNorm works per step "
                    "(Ba et al. 2016)"
                )
                rule_id = "B6"
            elif (
                app.in_attention_block
                and _on_tokens(layer, app)
                and not _vision(model, ctx)
                and not series_token_batchnorm(model, layer, _owners(model, ctx))
            ):
                where = "on the tokens inside a Transformer block"
                why = "batch statistics mix positions and sequences and differ at inference"
                rule_id = "B7"
            else:
                continue
            flagged.add(id(layer))
            yield finding(
                "NRM007",
                layer,
                f"`{layer.code}` is {where}: {why}; use {_fix(layer, app, rule_id)} ({rule_id}).",
                model.name,
            )
        yield from _unapplied_cell_norms(model, flagged)


def _owners(model: ModelContext, ctx: FileContext) -> list[ModelContext]:
    """The model and the top model it is part of."""
    return [model, *(m for m in ctx.models if m.name == model.part_of)]


def _vision(model: ModelContext, ctx: FileContext) -> bool:
    """The model (or the model it is a block of) convolves 2D/3D maps: a vision hybrid,
    whose BatchNorm on tokens is chosen on purpose (LeViT, NextViT, EfficientFormer: it folds
    into the preceding linear layer at export, domain D7), not a Transformer mistake."""
    return any(
        layer.type in ("Conv2d", "Conv3d", "ConvTranspose2d", "ConvTranspose3d")
        for owner in _owners(model, ctx)
        for _, layer in owner.layers
    )


def _on_tokens(layer: Layer, app: Application) -> bool:
    """BatchNorm1d (or SyncBN) on (N, L, C) tokens or their (N, C, L) transpose; never a
    BatchNorm2d/3d, which only takes conv maps (a mobile hybrid's BN folds into its conv)."""
    if layer.type in MAP_NORMS:
        return False
    t = app.inp
    return t.kind == "seq" or (t.rank == 3 and t.kind != "map") or t.rank is None


def _fix(layer: Layer, app: Application | None, rule_id: str) -> str:
    """A LayerNorm that is valid at this site (layout and channels), or what to do."""
    c = layer.num_channels
    if c is None:
        return "a LayerNorm over the channels (channels unknown)"
    if app is not None and app.inp.rank is not None and 2 <= app.inp.rank <= 5:
        rank, last = app.inp.rank, bool(app.inp.last)
        return layer_code("ln", c, ndim=rank, channels_last=last and rank > 2)
    if rule_id == "B6" and layer.type == "BatchNorm1d":
        return layer_code("ln", c, ndim=2)  # a cell works on one step's (N, C) vector
    # Layout not known: both valid forms.
    return f"nn.LayerNorm({c}) on (N, L, C), or {layer_code('ln', c, ndim=3)} on (N, C, L)"


def _unapplied_cell_norms(model: ModelContext, flagged: set[int]) -> Iterator[Finding]:
    """Norms inside a recurrent cell whose forward the tracer did not reach."""
    for layer in model.recurrence.norms:
        if layer.norm_kind in ("bn", "syncbn") and id(layer) not in flagged:
            flagged.add(id(layer))
            yield finding(
                "NRM007",
                layer,
                f"`{layer.code}` is on the recurrent path (inside a cell stepped over time, "
                "or on the state fed back): BN on hidden-to-hidden transitions does not help "
                f"(Laurent et al. 2016); use {_fix(layer, model.first_app(layer), 'B6')} per "
                "time step (B6, Ba et al. 2016).",
                model.name,
            )
