"""An independent review of the fifth round's fixes (tests/fixtures/review5b): each snippet
got a wrong answer from a fix that reached too far or not far enough."""

from __future__ import annotations

from pathlib import Path

import pytest

from normsuite.analysis.analyze import analyze_source
from normsuite.analysis.types import AnalysisOptions, FileResult, ModelReport

CASES = Path(__file__).parent / "fixtures" / "review5b"


def analyze(name: str, batch_size: int | None = None) -> FileResult:
    path = CASES / name
    return analyze_source(path.read_text(), str(path), AnalysisOptions(batch_size=batch_size))


def model(result: FileResult, name: str) -> ModelReport:
    return next(m for m in result.models if m.name == name)


def codes(result: FileResult) -> list[str]:
    return [f.code for f in result.findings]


@pytest.mark.parametrize(
    ("name", "top", "statistic"),
    [
        ("mbstd.py", "Discriminator", "MinibatchStdDev"),
        ("vicreg.py", "Model", "VarianceLoss"),
        ("statspool.py", "Net", "MeanStdPool"),
        ("rmspool.py", "Net", "RMSPool"),
    ],
)
def test_statistics_that_do_not_rescale_their_input_are_no_norm(name, top, statistic) -> None:
    """A minibatch std feature (ProGAN), a variance loss (VICReg), mean/std or RMS pooling:
    statistics reduced away (no keepdim), not a norm that rescales its input."""
    result = analyze(name, batch_size=4)
    assert all(statistic not in site.code for site in model(result, top).norms_found)
    assert "NRM013" not in codes(result)
    assert not any(statistic in f.message for f in result.findings)


@pytest.mark.parametrize("name", ["kwargs_update.py", "kwargs_update2.py"])
def test_a_kwargs_dict_changed_before_the_loader_leaves_the_batch_unknown(name) -> None:
    """``loader_args["batch_size"] = cfg.batch_size`` or ``.update(batch_size=...)`` in a
    branch: the dict's literal 1 is not the training batch (no NRM005)."""
    result = analyze(name)
    assert model(result, "Net").batch_size.per_device is None
    assert "NRM005" not in codes(result)


@pytest.mark.parametrize("name", ["tok_pos_bn.py", "tok_pos_mlp.py"])
def test_gpt_style_wte_wpe_embeddings_are_a_sequence_model(name) -> None:
    result = analyze(name, batch_size=32)
    assert result.models[0].architecture == "transformer"
    if name == "tok_pos_bn.py":
        assert codes(result).count("NRM012") == 2


def test_pos_items_of_a_recommender_are_no_positions() -> None:
    """BPR's ``pos_items`` / ``pos_scores`` name positive items: an MLP on (N, C) features,
    BN kept at batch 64, no NRM012, NRM001 once."""
    result = analyze("bpr_ncf.py", batch_size=64)
    assert model(result, "NCF").architecture == "mlp"
    assert "NRM012" not in codes(result)
    assert codes(result).count("NRM001") == 1


@pytest.mark.parametrize("name", ["finetune_head.py", "finetune_layer4.py"])
def test_weight_decay_on_norms_left_trainable_after_a_freeze_is_still_nrm010(name) -> None:
    """A new head with a BatchNorm1d assigned after the freeze loop, or ``if "layer4" not in
    name and "fc" not in name`` (layer4's BNs stay trained): the norms are decayed."""
    assert "NRM010" in codes(analyze(name))


def test_a_gate_norm_at_a_small_known_batch_follows_the_batch_rules() -> None:
    """At batch 2 a BN in a sigmoid gate has the noisy statistics NRM006 warns about:
    recommend agrees with check (GroupNorm), instead of keeping it under a 'bn' headline."""
    result = analyze("gated_conv.py", batch_size=2)
    rec = model(result, "InpaintNet").recommendation
    assert rec is not None and rec.norm == "gn"
    assert "NRM006" in codes(result)


def test_an_instancenorm_after_adding_noise_is_no_ibn_residual() -> None:
    """``x = x + noise`` (a second input) before an IN is no residual add: IBN-Net is not
    cited, B5 applies (IN -> BN at batch 32) and NRM013 stands."""
    result = analyze("ibn_stylegan.py", batch_size=32)
    rec = model(result, "Classifier").recommendation
    assert rec is not None and not any("IBN" in line for line in rec.rationale)
    assert "NRM013" in codes(result)


def test_norm_parameters_frozen_through_modules_are_not_decayed() -> None:
    """``for m in model.modules(): if isinstance(m, nn.BatchNorm2d): for p in
    m.parameters(): p.requires_grad = False``: no gradient, no decay (NRM010 silent); the
    same loop over convs leaves the norms decayed."""
    assert "NRM010" not in codes(analyze("freeze_bn_modules.py"))
    path = CASES / "freeze_bn_modules.py"
    convs = path.read_text().replace("nn.BatchNorm2d)", "nn.Conv2d)")
    assert "nn.Conv2d)" in convs
    assert "NRM010" in [
        f.code for f in analyze_source(convs, str(path), AnalysisOptions()).findings
    ]
