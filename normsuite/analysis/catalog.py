"""The analyzer's rule catalogue: codes, names, severities, summaries.

The catalogue is described in docs/design.md, "Rule catalogue".

The long doc pages (``normsuite rule NRM002``) are written from this table; the checks
themselves live in ``normsuite.analysis.rules``.

>>> RULES["NRM002"].name
'ln-on-conv-feature-map'
"""

from __future__ import annotations

from dataclasses import dataclass

from .types import Severity


@dataclass(frozen=True)
class RuleInfo:
    """One analyzer rule: stable code, kebab-case name (ruff style), severity, one line."""

    code: str
    name: str
    severity: Severity
    summary: str
    source: str = ""  # where the rule comes from (paper section, API contract, advice rule)


def _rule(code: str, name: str, severity: Severity, summary: str, source: str) -> RuleInfo:
    return RuleInfo(code=code, name=name, severity=severity, summary=summary, source=source)


RULES: dict[str, RuleInfo] = {
    r.code: r
    for r in (
        _rule(
            "NRM001",
            "bias-before-batch-norm",
            "warning",
            "Conv/Linear with bias feeding BatchNorm or InstanceNorm: the mean subtraction "
            "cancels the bias; pass bias=False.",
            "Ioffe & Szegedy 2015 (arXiv:1502.03167), section 3.2",
        ),
        _rule(
            "NRM002",
            "ln-on-conv-feature-map",
            "error",
            "nn.LayerNorm(C) applied to an (N, C, H, W) or (N, C, L) feature map normalizes "
            "the last dimension, not the C channels.",
            "PyTorch LayerNorm semantics; the source article's LBNNet",
        ),
        _rule(
            "NRM003",
            "group-norm-indivisible",
            "error",
            "GroupNorm(G, C) with C not divisible by G raises at construction.",
            "torch.nn.GroupNorm contract",
        ),
        _rule(
            "NRM004",
            "group-norm-too-few-channels",
            "warning",
            "GroupNorm with fewer than 4 channels per group (G != 32, G != C) drifts towards "
            "InstanceNorm and loses accuracy.",
            "Wu & He 2018 (arXiv:1803.08494), Table 3",
        ),
        _rule(
            "NRM005",
            "batch-norm-batch-one",
            "error",
            "BatchNorm trained with per-device batch 1: an error on (N, C) features, "
            "meaningless one-sample statistics on conv maps.",
            "advice rule B8",
        ),
        _rule(
            "NRM006",
            "batch-norm-small-batch",
            "warning",
            "BatchNorm with per-device batch < 16: ResNet-50 error rises from 23.6% to 34.7% "
            "at batch 2; use GroupNorm.",
            "advice rule B2; Wu & He 2018, Figure 1",
        ),
        _rule(
            "NRM007",
            "batch-norm-in-sequence-model",
            "warning",
            "BatchNorm on RNN hidden states or inside a Transformer block; use LayerNorm.",
            "advice rules B6, B7",
        ),
        _rule(
            "NRM008",
            "batch-norm-without-sync",
            "warning",
            "Several devices, small per-device batch and plain BatchNorm: each device "
            "normalizes its own few samples; use SyncBatchNorm or GroupNorm.",
            "advice rule B3; Wu & Johnson 2021",
        ),
        _rule(
            "NRM009",
            "batch-norm-momentum-inverted",
            "warning",
            "BatchNorm momentum > 0.5: PyTorch momentum is 1 - TensorFlow/Keras momentum "
            "(0.99 there is 0.01 here).",
            "PyTorch BatchNorm documentation",
        ),
        _rule(
            "NRM010",
            "weight-decay-on-norm",
            "info",
            "Weight decay applied to all parameters, norm weights and biases included; put "
            "norm parameters in a group with weight_decay=0.",
            "detectron2 SOLVER.WEIGHT_DECAY_NORM = 0",
        ),
        _rule(
            "NRM011",
            "norm-channel-mismatch",
            "error",
            "num_features / num_channels / normalized_shape differs from the channels the "
            "preceding layer produces.",
            "shape inference",
        ),
        _rule(
            "NRM012",
            "batch-norm-1d-on-sequence",
            "error",
            "BatchNorm1d(C) applied to an (N, L, C) tensor: it expects (N, C, L); transpose "
            "first or use LayerNorm.",
            "torch.nn.BatchNorm1d contract",
        ),
        _rule(
            "NRM013",
            "ln-or-in-in-cnn-classifier",
            "info",
            "LayerNorm or InstanceNorm in a CNN classifier: at batch 32 BN 23.6%, GN 24.1%, "
            "LN 25.3%, IN 28.4% error; prefer BN or GN.",
            "advice rule B5; Wu & He 2018, Table 1",
        ),
        _rule(
            "NRM014",
            "norm-positional-argument",
            "warning",
            "A norm's positional argument that does not mean what it looks like: "
            "BatchNorm2d(C, 0.8) is eps=0.8 (not momentum), GroupNorm(C, G) has its two "
            "arguments swapped, GroupNorm(0, C) has no groups.",
            "torch.nn.BatchNorm2d / torch.nn.GroupNorm signatures",
        ),
    )
}
