"""normsuite.advice: every rule id B1-B11, the threshold edges, citations, layer_code."""

from __future__ import annotations

import re

import pytest

from normsuite.advice import RULES, Advice, advise, default_groups, layer_code


def test_rules_b1_to_b11_with_correct_citations() -> None:
    assert sorted(RULES, key=lambda r: int(r[1:])) == [f"B{i}" for i in range(1, 12)]
    text = " ".join(RULES.values())
    # The article cites "Sutskever et al., 2013" and "Yan et al., 2018": the true sources.
    assert "Ioffe & Szegedy 2015, arXiv:1502.03167" in text
    assert "Wu & He 2018, arXiv:1803.08494" in text
    assert "Ba, Kiros & Hinton 2016, arXiv:1607.06450" in text
    assert "Sutskever" not in text and "Yan et al" not in text


@pytest.mark.parametrize(
    ("rule", "numbers"),
    [
        ("B1", ["23.6", "23.7", "24.1", "24.2"]),
        ("B2", ["24.8", "27.3", "34.7", "24.0"]),
        ("B4", ["24.1", "24.8", "25.6", "28.4", "25.3"]),
        ("B5", ["23.6", "24.1", "25.3", "28.4"]),
        ("B7", ["7%-64%"]),
    ],
)
def test_rule_statements_carry_the_design_numbers(rule: str, numbers: list[str]) -> None:
    for n in numbers:
        assert n in RULES[rule]


def test_batch_threshold_15_16_for_cnn() -> None:
    big, small = advise("cnn2d", 16), advise("cnn2d", 15)
    assert (big.norm, big.rules[0]) == ("bn", "B1")
    assert (small.norm, small.rules[0]) == ("gn", "B2")
    assert "B4" in small.rules
    assert "gn" in big.alternatives


@pytest.mark.parametrize(
    ("batch", "confidence"),
    [
        (1, "high"),
        (2, "high"),
        (3, "medium"),
        (8, "medium"),
        (16, "medium"),
        (31, "medium"),
        (32, "high"),
        (256, "high"),
    ],
)
def test_cnn_confidence_is_high_only_far_from_the_crossover(batch: int, confidence: str) -> None:
    adv = advise("cnn2d", batch)
    assert adv.confidence == confidence
    compare = [w for w in adv.would_change if "normsuite compare" in w]
    assert bool(compare) == (confidence == "medium")
    if compare:
        assert f"--batch-sizes {batch}" in compare[0]


def test_no_high_without_direct_evidence_and_mlp_at_most_medium() -> None:
    assert advise("cnn2d", 64, direct_evidence=False).confidence == "medium"
    assert advise("transformer", None, direct_evidence=False).confidence == "medium"
    assert advise("mlp", 64).confidence == "medium"
    assert advise("rnn", None).confidence == "high"  # LN for RNNs does not depend on batch


def test_batch_one_is_b8_and_micro_batch_b9() -> None:
    one = advise("cnn2d", 1)
    assert one.norm == "gn"
    assert one.rules[:2] == ("B8", "B2") and "B9" in one.rules
    two = advise("cnn2d", 2)
    assert "B9" in two.rules and "B8" not in two.rules
    assert any("Weight Standardization" in r for r in two.rationale)
    three = advise("cnn2d", 3)
    assert "B9" not in three.rules


def test_syncbn_alternative_needs_devices_and_global_batch_16() -> None:
    multi = advise("cnn2d", 4, devices=4)  # global 16
    assert multi.norm == "gn" and multi.alternatives == ("syncbn",) and "B3" in multi.rules
    short = advise("cnn2d", 4, devices=3)  # global 12: SyncBN would still be small
    assert short.alternatives == () and "B3" not in short.rules
    single = advise("cnn2d", 4)
    assert "B3" not in single.rules


def test_accumulation_does_not_enlarge_the_bn_batch() -> None:
    a = advise("cnn2d", 8, accumulate=4)  # 32 samples per optimizer step, 8 per BN call
    assert a.norm == "gn"
    assert any("does NOT enlarge" in r for r in a.rationale)
    assert "accumulation 4" in a.assumptions[0]


def test_fine_tuning_pretrained_bn_small_batch_is_frozenbn() -> None:
    a = advise("cnn2d", 4, fine_tuning_pretrained_bn=True)
    assert a.norm == "frozenbn" and a.rules == ("B10",) and "gn" in a.alternatives
    assert advise("cnn2d", 32, fine_tuning_pretrained_bn=True).norm == "bn"


def test_mlp_b11() -> None:
    assert advise("mlp", 16).norm == "bn"
    assert advise("mlp", 15).norm == "ln"
    one = advise("mlp", 1)
    assert one.norm == "ln" and "B8" in one.rules
    assert all("B11" in advise("mlp", b).rules for b in (1, 15, 16, None))


def test_rnn_b6_and_transformer_b7() -> None:
    rnn = advise("rnn", 2)
    assert (rnn.norm, rnn.rules) == ("ln", ("B6",))
    assert "1607.06450" in rnn.rationale[0]
    tr = advise("transformer", 64)
    assert (tr.norm, tr.rules, tr.alternatives) == ("ln", ("B7",), ("rms",))


def test_unknown_batch_says_what_it_assumed_and_what_would_change() -> None:
    a = advise("cnn2d", None)
    assert a.norm == "bn" and a.confidence == "low"
    assert any("unknown" in s for s in a.assumptions)
    assert any("below 16" in s and "gn" in s for s in a.would_change)
    unknown_arch = advise("unknown", 32)
    assert unknown_arch.confidence == "low"
    assert any("treated as a CNN" in s for s in unknown_arch.assumptions)


def test_unknown_batch_assumes_no_batch_and_states_both_answers() -> None:
    """Issue 11: never assume >= 16 when the batch is unknown; say what it is at a small
    and at a large batch (CNN: bn / gn, MLP: bn / ln)."""
    for arch, small in (("cnn2d", "gn"), ("mlp", "ln")):
        a = advise(arch, None)
        assert a.below_bn_batch == small
        assert not any("assumed per-device batch" in s for s in a.assumptions)
        assert any(f"bn at >= 16 per device, {small} below" in s for s in a.assumptions)
    assert advise("cnn2d", 32).below_bn_batch is None
    assert advise("rnn", None).below_bn_batch is None  # LN whatever the batch


def test_hybrid_is_cnn_advice_with_a_note() -> None:
    a = advise("hybrid", 8)
    assert a.norm == "gn" and any("Hybrid" in r for r in a.rationale)


def test_every_rule_id_is_reachable() -> None:
    cases = [
        advise("cnn2d", 32),
        advise("cnn2d", 1, devices=32),
        advise("cnn2d", 4, fine_tuning_pretrained_bn=True),
        advise("rnn", 8),
        advise("transformer", 8),
        advise("mlp", 8),
    ]
    used = {r for a in cases for r in a.rules}
    assert used == set(RULES)


def test_rationale_cites_rule_ids() -> None:
    a = advise("cnn2d", 8, channels=64)
    for rid in a.rules:
        assert any(r.startswith(f"{rid}:") for r in a.rationale)
    assert any("nn.GroupNorm(32, 64)" in r for r in a.rationale)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("cnn4d", 8), "unknown architecture"),
        (("cnn2d", 0), "per_device_batch"),
    ],
)
def test_bad_input_one_line_error(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        advise(*args)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="devices"):
        advise("cnn2d", 8, devices=0)
    with pytest.raises(ValueError, match="accumulate"):
        advise("cnn2d", 8, accumulate=0)


def test_advice_is_frozen_and_typed() -> None:
    a = advise("cnn2d", 8)
    assert isinstance(a, Advice)
    with pytest.raises(AttributeError):
        a.norm = "bn"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("norm", "c", "kw", "code"),
    [
        ("gn", 64, {}, "nn.GroupNorm(32, 64)"),
        ("gn", 48, {}, "nn.GroupNorm(12, 48)"),
        ("gn:16", 64, {}, "nn.GroupNorm(16, 64)"),
        ("bn", 64, {}, "nn.BatchNorm2d(64)"),
        ("bn", 64, {"ndim": 2}, "nn.BatchNorm1d(64)"),
        ("bn", 64, {"ndim": 3}, "nn.BatchNorm1d(64)"),
        ("bn", 64, {"ndim": 5}, "nn.BatchNorm3d(64)"),
        ("syncbn", 64, {}, "nn.SyncBatchNorm(64)"),
        ("frozenbn", 64, {}, "torchvision.ops.FrozenBatchNorm2d(64)"),
        ("ln", 64, {"ndim": 3, "channels_last": True}, "nn.LayerNorm(64)"),
        ("ln", 64, {"ndim": 2}, "nn.LayerNorm(64)"),
        ("ln", 64, {}, 'normsuite.build_norm("ln", 64)'),  # never nn.LayerNorm(C) on NCHW
        ("rms", 64, {"ndim": 3, "channels_last": True}, "nn.RMSNorm(64)"),
        ("in", 64, {}, "nn.InstanceNorm2d(64, affine=True)"),
        ("ln", 64, {"ndim": 3}, 'normsuite.build_norm("ln", 64, ndim=3)'),
        (
            "bn",
            64,
            {"ndim": 3, "channels_last": True},
            'normsuite.build_norm("bn", 64, ndim=3, channels_last=True)',
        ),
        (
            "gn",
            64,
            {"channels_last": True},
            'normsuite.build_norm("gn:32", 64, channels_last=True)',
        ),
    ],
)
def test_layer_code(norm: str, c: int, kw: dict, code: str) -> None:
    assert layer_code(norm, c, **kw) == code


def test_layer_code_gn_matches_default_groups() -> None:
    for c in (3, 8, 24, 48, 64, 96, 100, 2048):
        g = default_groups(c)
        assert layer_code("gn", c) == f"nn.GroupNorm({g}, {c})"
        assert c % g == 0


def test_layer_code_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown norm"):
        layer_code("batchy", 64)
    with pytest.raises(ValueError, match="num_channels"):
        layer_code("bn", 0)


def test_rationale_sentences_are_single_lines() -> None:
    for a in (advise("cnn2d", 8, devices=4, accumulate=2), advise("mlp", 1)):
        for s in (*a.rationale, *a.assumptions, *a.would_change):
            assert "\n" not in s and not re.search(r"\s{2,}", s)
