"""The source article's three networks (tests/fixtures/article/), as users copy them."""

from __future__ import annotations

from pathlib import Path

import pytest

from normsuite.analysis.analyze import analyze_source
from normsuite.analysis.types import AnalysisOptions, FileResult

ARTICLE = Path(__file__).parent / "fixtures" / "article" / "article_models.py"


@pytest.fixture(scope="module")
def result() -> FileResult:
    return analyze_source(ARTICLE.read_text(encoding="utf-8"), str(ARTICLE), AnalysisOptions())


def line_of(text: str) -> int:
    lines = ARTICLE.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if text in line)


def test_models_and_batch_from_the_training_loop(result: FileResult) -> None:
    assert [m.name for m in result.models] == ["BNNet", "LBNNet", "GroupLBNNet"]
    for m in result.models:
        assert m.architecture == "cnn2d"
        assert m.batch_size.per_device == 32
        # train_loader (shuffle=True) wins over test_loader.
        line = line_of("train_loader = DataLoader")
        assert m.batch_size.source == f"file:{line} DataLoader(batch_size=32)"


def test_lbnnet_gets_nrm002_on_its_layernorm(result: FileResult) -> None:
    ln_line = line_of("self.ln1 = nn.LayerNorm(64)")
    nrm002 = [f for f in result.findings if f.code == "NRM002"]
    assert [(f.line, f.model) for f in nrm002] == [(ln_line, "LBNNet")]
    assert "normalizes the last dim (W), not the 64 channels" in nrm002[0].message
    lbn = next(m for m in result.models if m.name == "LBNNet")
    assert lbn.recommendation.norm == "bn"
    assert lbn.recommendation.layers[0].suggested == "nn.BatchNorm2d(64)"


def test_bnnet_at_batch_32_gets_bn(result: FileResult) -> None:
    bn = next(m for m in result.models if m.name == "BNNet")
    rec = bn.recommendation
    assert rec.norm == "bn" and rec.rules[0] == "B1" and rec.confidence == "high"
    assert any("23.6" in r and "24.1" in r for r in rec.rationale)
    assert any("file:" in a for a in rec.assumptions)


def test_grouplbnnet_keeps_gn_with_a_note(result: FileResult) -> None:
    gn = next(m for m in result.models if m.name == "GroupLBNNet")
    assert gn.norms_found[0].kind == "gn" and gn.norms_found[0].num_channels == 64
    assert gn.recommendation.norm == "gn"
    assert gn.recommendation.rationale[0].startswith("Kept gn: GroupNorm is fine here")
    assert gn.recommendation.rules == ["B1", "B5", "B2"]
    assert gn.recommendation.would_change == ["needing the last ~0.5 points at this batch size: bn"]
    # GroupNorm(8, 64): 8 channels per group, so neither NRM003 nor NRM004.
    assert not [f for f in result.findings if f.model == "GroupLBNNet" and f.code != "NRM001"]


def test_conv_bias_before_bn_is_nrm001_only_for_bnnet(result: FileResult) -> None:
    nrm001 = [(f.model, f.line) for f in result.findings if f.code == "NRM001"]
    assert nrm001 == [("BNNet", line_of("self.conv1 = nn.Conv2d"))]


def test_small_batch_turns_the_advice() -> None:
    source = ARTICLE.read_text(encoding="utf-8")
    small = analyze_source(source, "a.py", AnalysisOptions(batch_size=4))
    bn = next(m for m in small.models if m.name == "BNNet")
    assert bn.recommendation.norm == "gn"
    assert bn.recommendation.layers[0].suggested == "nn.GroupNorm(32, 64)"
    assert bn.batch_size.source == "cli"
    assert "NRM006" in {f.code for f in small.findings}
