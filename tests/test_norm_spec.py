"""NormSpec: the spec grammar, aliases, round-trips and error messages (pure Python)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from normsuite.norms.spec import KINDS, NormSpec


@pytest.mark.parametrize(
    ("text", "kind", "groups"),
    [
        ("bn", "bn", None),
        ("BatchNorm", "bn", None),
        ("BatchNorm2d", "bn", None),
        ("batch_norm", "bn", None),
        ("BN2d", "bn", None),
        ("  batchnorm1d ", "bn", None),
        ("SyncBatchNorm", "syncbn", None),
        ("sync_bn", "syncbn", None),
        ("FrozenBatchNorm2d", "frozenbn", None),
        ("frozen-bn", "frozenbn", None),
        ("GroupNorm", "gn", None),
        ("group_norm", "gn", None),
        ("gn:16", "gn", 16),
        ("GroupNorm:8", "gn", 8),
        ("GN: 4", "gn", 4),
        ("LayerNorm", "ln", None),
        ("layer_norm", "ln", None),
        ("LN", "ln", None),
        ("InstanceNorm2d", "in", None),
        ("instance_norm", "in", None),
        ("RMSNorm", "rms", None),
        ("rms_norm", "rms", None),
        ("identity", "none", None),
        ("None", "none", None),
    ],
)
def test_parse_aliases_case_insensitive(text: str, kind: str, groups: int | None) -> None:
    assert NormSpec.parse(text) == NormSpec(kind, groups)


@pytest.mark.parametrize("text", [*KINDS, "gn:1", "gn:32"])
def test_str_round_trips(text: str) -> None:
    spec = NormSpec.parse(text)
    assert str(spec) == text
    assert NormSpec.parse(str(spec)) == spec


def test_parse_passes_specs_through_and_none_is_an_error() -> None:
    spec = NormSpec("gn", 4)
    assert NormSpec.parse(spec) is spec
    with pytest.raises(TypeError, match="norm spec is None; write 'none'"):
        NormSpec.parse(None)  # type: ignore[arg-type]  # a YAML null is not "no norm"


def test_spec_is_frozen_and_hashable() -> None:
    spec = NormSpec.parse("gn:8")
    with pytest.raises(AttributeError):
        spec.kind = "bn"  # type: ignore[misc]
    assert {spec, NormSpec("gn", 8)} == {spec}


def test_groups_for_uses_explicit_or_advice_default() -> None:
    assert NormSpec.parse("gn:8").groups_for(64) == 8
    assert NormSpec.parse("gn").groups_for(64) == 32  # GN paper default
    assert NormSpec.parse("gn").groups_for(48) == 12  # largest divisor <= 32 with >= 4 ch/group
    with pytest.raises(ValueError, match="only gn does"):
        NormSpec.parse("bn").groups_for(64)


def test_unknown_name_lists_choices_and_closest_match() -> None:
    with pytest.raises(ValueError, match=r"unknown norm 'GroupNrom'.*Did you mean 'GroupNorm'"):
        NormSpec.parse("GroupNrom")
    with pytest.raises(ValueError, match=r"Valid names: bn, syncbn, frozenbn, gn, ln, in, rms"):
        NormSpec.parse("batchnrm")


def test_unknown_name_without_close_match_still_lists_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown norm 'zzzzzz'\. Valid names"):
        NormSpec.parse("zzzzzz")


def test_unknown_kind_in_constructor() -> None:
    with pytest.raises(ValueError, match="unknown norm 'batch'"):
        NormSpec("batch")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gn:x", r"bad group count in 'gn:x'.*'gn:32'"),
        ("gn:", r"bad group count in 'gn:'"),
        ("gn:-2", r"bad group count"),
        ("gn:0", r"gn groups must be >= 1, got 0"),
        ("ln:4", r"only gn takes a group count, got ln:4"),
    ],
)
def test_bad_groups(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NormSpec.parse(text)


def test_bad_groups_type_and_spec_type() -> None:
    with pytest.raises(ValueError, match="gn groups must be an int"):
        NormSpec("gn", 2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="norm spec must be a string"):
        NormSpec.parse(3)  # type: ignore[arg-type]


def test_spec_module_does_not_import_torch() -> None:
    code = "import sys, normsuite.norms.spec; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
