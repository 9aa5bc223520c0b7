"""`normsuite rule`: list all rules, print one doc page, refuse unknown codes."""

from __future__ import annotations

from normsuite.cli.main import app
from typer.testing import CliRunner

from normsuite.analysis.catalog import RULES
from normsuite.analysis.report import rule_doc


def test_rule_lists_every_rule_with_name_severity_summary() -> None:
    res = CliRunner().invoke(app, ["rule"])
    assert res.exit_code == 0
    rows = [line.split("\t") for line in res.output.splitlines()]
    assert rows == [[r.code, r.name, r.severity, r.summary] for r in RULES.values()]
    assert len(rows) == 13


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
