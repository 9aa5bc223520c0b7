"""NRM013: LayerNorm / InstanceNorm chosen for a CNN classifier (B5)."""

from __future__ import annotations

from collections.abc import Iterator

from normsuite.advice import default_groups

from ..context import FileContext
from ..sites import cnn_classifier_misfit
from ..types import Finding
from . import finding, rule

_CNN = ("cnn1d", "cnn2d", "cnn3d")


@rule("NRM013")
def ln_or_in_in_cnn_classifier(ctx: FileContext) -> Iterator[Finding]:
    """InstanceNorm, GroupNorm(1, C) (LN over C,H,W), channels-first LayerNorm in a CNN
    classifier. ConvNeXt-style LN on permuted maps is a deliberate design: not flagged."""
    for model in ctx.models:
        if model.architecture not in _CNN or not model.classifier:
            continue
        seen: set[int] = set()
        for _, layer in model.layers:
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            c = layer.num_channels
            what = cnn_classifier_misfit(model, layer)
            if what is None:
                continue
            alt = f"nn.GroupNorm({default_groups(c)}, {c})" if c else "GroupNorm(32, C)"
            yield finding(
                "NRM013",
                layer,
                f"{what} in a CNN classifier: at batch 32 ResNet-50 top-1 error is BN 23.6%, "
                f"GN 24.1%, LN 25.3%, IN 28.4% (GN paper Table 1). Prefer BatchNorm at a "
                f"per-device batch >= 16, else {alt} (B5).",
                model.name,
            )
