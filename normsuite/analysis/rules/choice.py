"""NRM013: LayerNorm / InstanceNorm chosen for a CNN classifier (B5)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from normsuite.advice import default_groups

from ..context import FileContext, ModelContext
from ..domains import input_standardization, inside_recognition_net
from ..ir import Layer
from ..sites import cnn_classifier_misfit, metaformer_norm
from ..types import Finding
from . import finding, rule

_CNN = ("cnn1d", "cnn2d", "cnn3d")


@rule("NRM013")
def ln_or_in_in_cnn_classifier(ctx: FileContext) -> Iterator[Finding]:
    """InstanceNorm, GroupNorm(1, C) (LN over C,H,W), channels-first LayerNorm in a CNN
    classifier. ConvNeXt-style LN on permuted maps is a deliberate design: not flagged."""
    for model in ctx.models:
        if model.architecture not in _CNN or not model.classifier or not _classifies(model):
            continue
        if _linears_only_in_held_nets(model):
            continue  # a vocoder holding a speaker encoder: the classifier is the encoder
        seen: set[int] = set()
        for path, layer in model.layers:
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            c = layer.num_channels
            what = cnn_classifier_misfit(model, layer)
            if what is None or metaformer_norm(model, path):
                continue
            if layer.norm_kind == "in" and input_standardization(model, layer):
                continue  # standardizes the raw input before any conv: preprocessing
            alt = f"nn.GroupNorm({default_groups(c)}, {c})" if c else "GroupNorm(32, C)"
            yield finding(
                "NRM013",
                layer,
                f"{what} in a CNN classifier: at batch 32 ResNet-50 top-1 error is BN 23.6%, "
                f"GN 24.1%, LN 25.3%, IN 28.4% (GN paper Table 1). Prefer BatchNorm at a "
                f"per-device batch >= 16, else {alt} (B5).",
                model.name,
            )


def _linears_only_in_held_nets(model: ModelContext) -> bool:
    """Every Linear of the model is inside a sub-network that pools and classifies (or
    embeds) on its own: the model is not the classifier."""
    by_path = dict(model.layers)
    linears = [p for p, layer in model.layers if layer.type in ("Linear", "LazyLinear")]
    return bool(linears) and all(inside_recognition_net(p, by_path) for p in linears)


def _aliases(init: ast.FunctionDef, names: set[str]) -> set[str]:
    """``names`` and the locals of ``init`` computed from them (``out = num_classes``)."""
    out = set(names)
    for node in ast.walk(init):
        if isinstance(node, ast.Assign) and any(
            isinstance(n, ast.Name) and n.id in out for n in ast.walk(node.value)
        ):
            out |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return out


def _class_scores(model: ModelContext, layer: Layer) -> bool:
    """The layer outputs one score per class for the whole input: a Linear, or a conv
    applied to pooled (N, C, 1, 1) features."""
    if layer.type in ("Linear", "LazyLinear"):
        return True
    app = model.first_app(layer)
    return app is not None and app.inp.pooled


def _classifies(model: ModelContext) -> bool:
    """Evidence of a classifier, not just a Linear somewhere (a regression head of a dense
    prediction model has Linears too): a layer built from a ``num_classes``-like parameter
    or name, or a forward that ends in a Linear with a constant width above 1. A
    ``num_classes`` the model only stores (CPC v2 keeps it for an online evaluator outside
    the model, a self-supervised encoder) is not evidence."""
    root = model.root.instance
    init = root.cls.method("__init__") if root is not None else None
    if init is not None:
        names = [a.arg for a in [*init.args.args, *init.args.kwonlyargs]]
        wanted = _aliases(init, {n for n in names if "class" in n or n == "num_labels"})
        if wanted:
            used = re.compile(r"\b(" + "|".join(map(re.escape, sorted(wanted))) + r")\b")
            # a Linear (or a conv on pooled features) over the classes; a conv writing
            # per-pixel class maps is a segmentation head (nnU-Net), not a classifier
            if any(
                used.search(layer.code) and _class_scores(model, layer) for _, layer in model.layers
            ):
                return True
    for _, layer in model.layers:
        if layer.type in ("Linear", "LazyLinear") and "class" in layer.code:
            return True
    # One output is a score or a regression (a scale, a depth), not evidence of classes.
    last = model.apps[-1].layer if model.apps else None
    width = last.out_channels if last is not None and last.type == "Linear" else None
    return width is not None and width > 1
