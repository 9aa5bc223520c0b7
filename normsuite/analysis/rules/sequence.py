"""NRM007: BatchNorm on RNN hidden states, inside a recurrent cell or a Transformer block."""

from __future__ import annotations

from collections.abc import Iterator

from ..context import FileContext
from ..ir import RNN_CELLS
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
            if app.inp.rnn:
                where = "on RNN outputs / hidden states"
                rule_id = "B6"
            elif app.in_attention_block:
                where = "inside a Transformer block"
                rule_id = "B7"
            else:
                continue
            flagged.add(id(layer))
            c = layer.num_channels or "C"
            yield finding(
                "NRM007",
                layer,
                f"`{layer.code}` is {where}: batch statistics mix time steps and sequences and "
                f"differ between training and inference; use nn.LayerNorm({c}) ({rule_id}).",
                model.name,
            )
        # A module that owns a recurrent cell and a BatchNorm: BN inside the cell.
        for layer in [model.root, *(layer for _, layer in model.layers)]:
            inst = layer.instance if layer.type == "Custom" else None
            if inst is None:
                continue
            owned = [child for _, child in inst.layers()]
            if not any(child.type in RNN_CELLS for child in owned):
                continue
            for child in owned:
                if child.norm_kind in ("bn", "syncbn") and id(child) not in flagged:
                    flagged.add(id(child))
                    c = child.num_channels or "C"
                    yield finding(
                        "NRM007",
                        child,
                        f"`{child.code}` sits inside a recurrent cell: BN on hidden-to-hidden "
                        f"transitions does not help (Laurent et al. 2016); use "
                        f"nn.LayerNorm({c}) per time step (B6, Ba et al. 2016).",
                        model.name,
                    )
