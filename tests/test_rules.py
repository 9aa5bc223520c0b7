"""Rule fixtures, TorchFix style: ``tests/fixtures/rules/NRM0xx_{positive,negative}.py``.

Each ``# expect: NRM0xx`` comment marks a line where exactly that finding must appear; every
finding of the file must be expected (so a positive fixture also proves the other rules stay
silent on it) and a negative fixture expects nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from normsuite.analysis.analyze import analyze_source
from normsuite.analysis.catalog import RULES
from normsuite.analysis.types import AnalysisOptions

FIXTURES = Path(__file__).parent / "fixtures" / "rules"
EXPECT = re.compile(r"#\s*expect:\s*(?P<codes>NRM\d{3}(?:\s*,\s*NRM\d{3})*)")


def expected(source: str) -> set[tuple[int, str]]:
    out = set()
    for lineno, line in enumerate(source.splitlines(), start=1):
        m = EXPECT.search(line)
        if m:
            out |= {(lineno, c.strip()) for c in m.group("codes").split(",")}
    return out


def findings(path: Path) -> set[tuple[int, str]]:
    result = analyze_source(path.read_text(), str(path), AnalysisOptions())
    return {(f.line, f.code) for f in result.findings}


@pytest.mark.parametrize("code", sorted(RULES))
def test_positive_fixture(code: str) -> None:
    path = FIXTURES / f"{code}_positive.py"
    want = expected(path.read_text())
    assert any(c == code for _, c in want), f"{path.name} must expect at least one {code}"
    assert findings(path) == want


@pytest.mark.parametrize("code", sorted(RULES))
def test_negative_fixture(code: str) -> None:
    path = FIXTURES / f"{code}_negative.py"
    assert expected(path.read_text()) == set()
    assert findings(path) == set()


def test_every_rule_has_both_fixtures() -> None:
    names = {p.name for p in FIXTURES.glob("NRM*.py")}
    for code in RULES:
        assert {f"{code}_positive.py", f"{code}_negative.py"} <= names


def test_findings_carry_catalog_severity_and_a_fix() -> None:
    for path in sorted(FIXTURES.glob("*_positive.py")):
        result = analyze_source(path.read_text(), str(path), AnalysisOptions())
        for f in result.findings:
            if f.code == "NRM011" and f.message.startswith("built with its default arguments"):
                # widths computed from defaults the analyzer filled in: never an error from
                # an assumed width (test_nrm011_severity_follows_where_the_widths_came_from)
                assert f.severity == "warning"
            else:
                assert f.severity == RULES[f.code].severity
            assert f.col >= 1
            # Every message says what to do.
            assert re.search(r"\b(use|pass|put|prefer|convert)\b", f.message, re.I), f.message


def test_every_catalog_rule_has_exactly_one_check() -> None:
    from normsuite.analysis.rules import CHECKS, _load

    _load()
    assert set(CHECKS) == set(RULES)
    for code, info in RULES.items():
        assert info.code == code
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", info.name)
        assert info.severity in ("error", "warning", "info")
        assert info.summary and "\n" not in info.summary


def test_opaque_kwargs_silence_default_based_rules() -> None:
    src = (
        "import torch.nn as nn\n"
        "class M(nn.Module):\n"
        "    def __init__(self, cfg):\n"
        "        super().__init__()\n"
        "        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, **cfg.conv), nn.BatchNorm2d(8))\n"
    )
    assert analyze_source(src, "m.py", AnalysisOptions()).findings == []
    known = src.replace("**cfg.conv)", "**{'padding': 1})")
    codes = [f.code for f in analyze_source(known, "m.py", AnalysisOptions()).findings]
    assert codes == ["NRM001"]


def _messages(src: str, code: str) -> list[str]:
    result = analyze_source(src, "m.py", AnalysisOptions())
    return [f.message for f in result.findings if f.code == code]


def test_one_call_building_several_layers_keeps_every_message() -> None:
    src = (
        "import torch.nn as nn\n"
        "class M(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.n = nn.ModuleList([nn.GroupNorm(g, 30) for g in (4, 7)])\n"
    )
    (message,) = _messages(src, "NRM003")
    assert "GroupNorm(4, 30)" in message and "GroupNorm(7, 30)" in message


def test_nrm004_names_g32_only_where_it_keeps_channels_per_group() -> None:
    head = "import torch.nn as nn\nclass M(nn.Module):\n    def __init__(self):\n"
    head += "        super().__init__()\n"
    (narrow,) = _messages(head + "        self.n = nn.GroupNorm(16, 32)\n", "NRM004")
    assert "nn.GroupNorm(8, 32)" in narrow and "G=32" not in narrow.split("error).")[1]
    (wide,) = _messages(head + "        self.n = nn.GroupNorm(64, 128)\n", "NRM004")
    assert "nn.GroupNorm(32, 128), the paper's G=32" in wide


def test_merged_messages_put_differing_fixes_side_by_side() -> None:
    from normsuite.analysis.rules import merge_messages

    assert merge_messages("a GroupNorm(8, 32) b.", "a GroupNorm(32, 64) b.") == (
        "a GroupNorm(8, 32) / GroupNorm(32, 64) b."
    )
    assert merge_messages("x 1 y 2", "x 3 y 4") == "x 1 y 2 Also: x 3 y 4"


def test_merged_messages_never_cut_through_code() -> None:
    # One Conv2d line built twice (a wrapper used before two different norms): one finding,
    # both norms named whole, backticks balanced.
    src = (
        "import torch.nn as nn\n"
        "class Up(nn.Module):\n"
        "    def __init__(self, cin, cout):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(cin, cout, 3)\n"
        "    def forward(self, x):\n"
        "        return self.conv(x)\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.u1, self.n1 = Up(8, 64), nn.InstanceNorm2d(64, affine=True)\n"
        "        self.u2, self.n2 = Up(64, 32), nn.InstanceNorm2d(32, affine=True)\n"
        "    def forward(self, x):\n"
        "        return self.n2(self.u2(self.n1(self.u1(x))))\n"
    )
    (message,) = _messages(src, "NRM001")
    assert "`nn.InstanceNorm2d(64, affine=True)` / `nn.InstanceNorm2d(32, affine=True)`" in (
        message
    )
    assert message.count("`") % 2 == 0 and "Also:" not in message


def test_nrm001_conv_shared_by_a_norm_and_a_plain_branch_asks_for_a_conditional_bias() -> None:
    src = (
        "import torch.nn as nn\n"
        "class D(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        def block(cin, cout, normalize=True):\n"
        "            layers = [nn.Conv2d(cin, cout, 4, 2, 1)]\n"
        "            if normalize:\n"
        "                layers.append(nn.BatchNorm2d(cout))\n"
        "            layers.append(nn.LeakyReLU(0.2))\n"
        "            return layers\n"
        "        self.net = nn.Sequential(*block(3, 64, normalize=False), *block(64, 128))\n"
        "    def forward(self, x):\n"
        "        return self.net(x)\n"
    )
    (message,) = _messages(src, "NRM001")
    assert "also feeds `nn.LeakyReLU(0.2)` (line 9)" in message
    assert "bias=not normalize" in message and "pass bias=False" not in message
    # no automatic fix: bias=False would break the un-normalized first block
    from normsuite.analysis.fixes import fixes_for

    result = analyze_source(src, "m.py", AnalysisOptions())
    assert fixes_for(src, result.findings, unsafe=True) == []


def test_nrm011_severity_follows_where_the_widths_came_from() -> None:
    head = "import torch.nn as nn\n\n\nclass Net(nn.Module):\n"
    body = "        super().__init__()\n        self.c = nn.Conv2d(3, {w}, 3, bias=False)\n"
    body += "        self.b = nn.BatchNorm2d({n})\n\n    def forward(self, x):\n"
    body += "        return self.b(self.c(x))\n"
    literal = head + "    def __init__(self):\n" + body.format(w=64, n=32)
    (f,) = analyze_source(literal, "m.py", AnalysisOptions()).findings
    assert (f.code, f.severity) == ("NRM011", "error")
    assert f.message.startswith("BatchNorm2d(32) receives 64 channels")
    # HunyuanDiT's class: hidden_size=1152 but heads * head_dim = 1408 by default; real
    # configs pass consistent values, so the defaults are what is wrong, if anything
    defaulted = head + "    def __init__(self, hidden=64, heads=4, head_dim=8):\n"
    defaulted += body.format(w="hidden", n="heads * head_dim")
    (f,) = analyze_source(defaulted, "m.py", AnalysisOptions()).findings
    assert (f.code, f.severity) == ("NRM011", "warning")
    assert "Net(hidden=64, heads=4, head_dim=8)" in f.message
    assert "BatchNorm2d(32) receives 64 channels" in f.message and "defaults agree" in f.message


def test_nrm004_is_silent_when_no_grouping_is_better() -> None:
    """3 channels cannot have 4 per group: GroupNorm(1, 3) is already the best GN (NRM004
    used to tell it to use nn.GroupNorm(1, 3), and fired on recommend's own suggestion)."""
    head = "import torch.nn as nn\nclass M(nn.Module):\n    def __init__(self):\n"
    head += "        super().__init__()\n"
    assert _messages(head + "        self.n = nn.GroupNorm(1, 3)\n", "NRM004") == []
    (two,) = _messages(head + "        self.n = nn.GroupNorm(3, 6)\n", "NRM004")
    assert "nn.GroupNorm(1, 6)" in two  # 2 per group -> 6 per group: still said
