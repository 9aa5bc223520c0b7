"""`normsuite rule`: list all rules, print one doc page, refuse unknown codes."""

from __future__ import annotations

import re

import pytest
from normsuite.cli.main import app
from typer.testing import CliRunner

from normsuite.analysis.catalog import RULES
from normsuite.analysis.report import rule_doc


def test_rule_lists_every_rule_with_name_severity_summary() -> None:
    res = CliRunner().invoke(app, ["rule"])
    assert res.exit_code == 0
    rows = [line.split("\t") for line in res.output.splitlines()]
    assert rows == [[r.code, r.name, r.severity, r.summary] for r in RULES.values()]
    assert len(rows) == 14


def test_rule_prints_the_doc_page_case_insensitively() -> None:
    res = CliRunner().invoke(app, ["rule", "nrm002"])
    assert res.exit_code == 0
    assert res.output.rstrip("\n") == rule_doc("NRM002").rstrip("\n")
    assert res.output.startswith("# ln-on-conv-feature-map (NRM002)")
    assert "## Use instead" in res.output


def test_rule_on_a_terminal_renders_markdown() -> None:
    res = CliRunner().invoke(app, ["rule", "NRM003"], env={"FORCE_COLOR": "1", "COLUMNS": "100"})
    assert res.exit_code == 0
    assert "group-norm-indivisible (NRM003)" in res.output
    assert "## What it does" not in res.output  # headings rendered, not raw Markdown
    assert "\x1b[" in res.output


def test_unknown_rule_is_one_line_and_exit_2() -> None:
    res = CliRunner().invoke(app, ["rule", "NRM02"])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        "normsuite rule: error: unknown rule 'NRM02' (did you mean NRM012?); "
        "run `normsuite rule` to list the codes"
    ]
    res = CliRunner().invoke(app, ["rule", "E501"])
    assert res.exit_code == 2 and "unknown rule 'E501'" in res.output


def _section(doc: str, title: str) -> str:
    start = doc.index(f"## {title}")
    end = doc.find("\n## ", start + 1)
    return doc[start : end if end != -1 else None]


def test_no_doc_page_recommends_a_groupnorm_that_is_instancenorm() -> None:
    # NRM005 used to suggest nn.GroupNorm(32, 32): one channel per group, i.e. InstanceNorm;
    # NRM003 suggested nn.GroupNorm(16, 48), which NRM004 flags (3 channels per group)
    for code in RULES:
        fixes = _section(rule_doc(code), "Use instead")
        for groups, channels in re.findall(r"nn\.GroupNorm\((\d+),\s*(\d+)\)", fixes):
            g, c = int(groups), int(channels)
            # divisible (NRM003), and not so few channels per group that NRM004 fires
            assert c % g == 0 and (c // g >= 4 or g == 32 < c), f"{code}: nn.GroupNorm({g}, {c})"


def test_nrm005_batch_one_claims_match_pytorch() -> None:
    """What NRM005 says raises (and what does not) at batch 1, checked against torch."""
    torch = pytest.importorskip("torch")
    doc = rule_doc("NRM005")
    quoted = re.search(r"raises `ValueError: (Expected more than 1 value[^`]*)`", doc).group(1)
    for layer, shape in (
        (torch.nn.BatchNorm1d(4), (1, 4)),
        (torch.nn.BatchNorm2d(4), (1, 4, 1, 1)),
    ):
        with pytest.raises(ValueError, match=re.escape(quoted)):
            layer.train()(torch.randn(*shape))
    # an ordinary feature map at batch 1 runs (the doc must not claim it raises)
    assert torch.nn.BatchNorm2d(4).train()(torch.randn(1, 4, 8, 8)).shape == (1, 4, 8, 8)
    # the suggested replacement runs at batch 1 in training mode and normalizes per sample
    snippet = re.search(r"```python\n(.*?)```", _section(doc, "Use instead"), re.S).group(1)
    data = torch.utils.data
    scope = {"nn": torch.nn, "torch": torch, "DataLoader": data.DataLoader, "dataset": [0]}
    exec(snippet, scope)
    x = torch.randn(1, 3, 10, 10)
    out = scope["model"].train()(x)
    conv, norm = scope["model"][0], scope["model"][1]
    expected = torch.relu(
        torch.nn.functional.group_norm(conv(x), norm.num_groups, norm.weight, norm.bias)
    )
    torch.testing.assert_close(out, expected)
    assert norm.num_channels // norm.num_groups >= 2
