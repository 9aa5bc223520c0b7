"""No silent limit: a cap the analyzer hits is reported with its line and value, the file
counts as incomplete in every format, and check/recommend exit 2 (never "All checks
passed"); memory and recursion errors say what was too big."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from normsuite.cli.main import app
from typer.testing import CliRunner

from normsuite.analysis import limits, report, runner
from normsuite.analysis.sarif import to_sarif_dict
from normsuite.analysis.types import AnalysisOptions

ROOT = Path(__file__).resolve().parents[1]


def _sequential(pairs: int) -> str:
    body = "".join(
        "            nn.Conv2d(64, 64, 3, padding=1),\n            nn.BatchNorm2d(64),\n"
        for _ in range(pairs)
    )
    return (
        "import torch.nn as nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n"
        f"        super().__init__()\n        self.body = nn.Sequential(\n{body}        )\n\n"
        "    def forward(self, x):\n        return self.body(x)\n"
    )


def _invoke(*args: str):
    return CliRunner().invoke(app, [*args, "--isolated"])


def test_small_sequential_is_complete_and_reports_each_pair(tmp_path: Path) -> None:
    path = tmp_path / "ten.py"
    path.write_text(_sequential(10))
    doc = json.loads(_invoke("check", str(path), "--format", "json").stdout)
    assert doc["summary"]["by_code"] == {"NRM001": 10}
    assert doc["summary"]["incomplete"] == 0 and doc["files"][0]["notices"] == []


def test_huge_sequential_is_incomplete_never_all_checks_passed(tmp_path: Path) -> None:
    path = tmp_path / "huge.py"
    path.write_text(_sequential(20_000))
    res = _invoke("check", str(path))
    assert res.exit_code == 2
    assert "All checks passed" not in res.output
    assert "1 file analyzed only in part (a cap was hit)" in res.output
    (notice,) = [line for line in res.output.splitlines() if ": warning: " in line]
    line_no = int(notice.split(":")[1])
    assert 7 <= line_no <= 40_008  # a line inside the Sequential, where the budget ran out
    assert f"more than {limits.MAX_STEPS:,} evaluation steps (the cap)" in notice

    # the other formats, from one analysis (the 20,000 pairs take ~1.5 s per run)
    results = runner.analyze_paths([str(path)], settings=runner.RunSettings(use_config=False))
    doc = json.loads(report.render_json(results, command="recommend"))
    (n,) = doc["files"][0]["notices"]
    assert (n["kind"], n["cap"], n["cap_value"], n["incomplete"]) == (
        "limit",
        "steps",
        limits.MAX_STEPS,
        True,
    )
    assert doc["summary"]["incomplete"] == 1
    model = doc["files"][0]["models"][0]
    # the cap hits before the Sequential is built: no advice, and the reason is the cap (not
    # "no layers a norm would follow", which would be a wrong claim about the model)
    assert model["recommendation"] is None and "cut short by a cap" in model["abstain"]

    sarif = to_sarif_dict(results)
    schema = json.loads((ROOT / "tests" / "fixtures" / "sarif-schema-2.1.0.json").read_text())
    jsonschema.validate(sarif, schema)
    invocation = sarif["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"][0]["level"] == "warning"

    github = report.render_github(results, command="check")
    assert f"::warning file={path},line={line_no},title=normsuite::analysis incomplete" in github


def test_loop_cap_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "loop.py"
    path.write_text(
        "import torch.nn as nn\n\n\nclass Deep(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        layers = []\n"
        f"        for _ in range({limits.MAX_LOOP + 1}):\n"
        "            layers += [nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8)]\n"
        "        self.body = nn.Sequential(*layers)\n\n    def forward(self, x):\n"
        "        return self.body(x)\n"
    )
    (result,) = runner.analyze_paths([str(path)], settings=runner.RunSettings(use_config=False))
    assert result.incomplete
    (notice,) = result.notices
    assert (notice.cap, notice.line, notice.cap_value) == ("loop", 8, limits.MAX_LOOP)
    # one fewer iteration: analyzed in full, no notice
    path.write_text(path.read_text().replace(f"range({limits.MAX_LOOP + 1})", "range(4)"))
    (result,) = runner.analyze_paths([str(path)], settings=runner.RunSettings(use_config=False))
    assert not result.incomplete and result.notices == []


@pytest.mark.parametrize(
    "expression",
    [f"[64] * {limits.MAX_LOOP + 1}", f"[c for c in range({limits.MAX_LOOP + 1})]"],
)
def test_long_values_are_a_loop_cap_at_their_line(expression: str) -> None:
    source = (
        f"import torch.nn as nn\nW = {expression}\n\n\nclass M(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.bn = nn.BatchNorm2d(W[0])\n"
    )
    result = runner.analyze_text(source, "m.py", AnalysisOptions())
    assert [(n.cap, n.line) for n in result.notices] == [("loop", 2)]
    short = source.replace(str(limits.MAX_LOOP + 1), str(limits.MAX_LOOP))
    assert runner.analyze_text(short, "m.py", AnalysisOptions()).notices == []


def test_depth_cap_is_reported(tmp_path: Path) -> None:
    chain = "".join(
        f"def f{i}(c):\n    return f{i + 1}(c)\n\n" for i in range(limits.MAX_DEPTH + 2)
    )
    chain += f"def f{limits.MAX_DEPTH + 2}(c):\n    return nn.BatchNorm2d(c)\n\n"
    source = (
        f"import torch.nn as nn\n\n{chain}\nclass M(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.bn = f0(8)\n"
    )
    result = runner.analyze_text(source, "deep.py", AnalysisOptions())
    assert [n.cap for n in result.notices] == ["depth"]
    assert result.notices[0].line is not None


@pytest.mark.parametrize("kind", [MemoryError, RecursionError])
def test_memory_and_recursion_errors_say_what_was_too_big(kind: type[BaseException]) -> None:
    def boom(*_: object) -> None:
        raise kind

    flat = "x = 1\n" * 50_000
    error = runner.analyze_text(flat, "flat.py", AnalysisOptions(), analyzer=boom).error
    assert error is not None and "\n" not in error
    if kind is MemoryError:  # a flat file: blame the size, not nesting
        assert error.startswith("ran out of memory while parsing a file this big (293.0 kB, ")
        assert "50,000 lines" in error
    deep = "x = " + "[" * 300 + "]" * 300 + "\n"
    error = runner.analyze_text(deep, "deep.py", AnalysisOptions(), analyzer=boom).error
    assert "brackets nested 300 deep at line 1" in error


def test_real_recursion_error_names_the_long_expression() -> None:
    source = "x = " + "1 + " * 100_000 + "1\n"
    error = runner.analyze_text(source, "chain.py", AnalysisOptions()).error
    assert error.startswith("expression nested too deeply to analyze: line 1 is one expression")
    assert "400,005 characters" in error


def test_cross_file_budget_is_a_notice_not_silence(tmp_path: Path) -> None:
    # blocks imported from another file are evaluated on a budget of their own; past it
    # they are opaque (as when the file is analyzed alone), and the notice says so
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "blocks.py").write_text(
        "import torch.nn as nn\n\n\nclass Busy(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        total = 0\n        for i in range(150):\n"
        "            for j in range(150):\n                total = total + i * j\n"
        "        self.conv = nn.Conv2d(3, 8, 3)\n\n\n"
        "class ConvBN(nn.Module):\n    def __init__(self, c):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(c, c, 3)\n        self.bn = nn.BatchNorm2d(c)\n\n"
        "    def forward(self, x):\n        return self.bn(self.conv(x))\n"
    )
    (tmp_path / "model.py").write_text(
        "import torch.nn as nn\nfrom blocks import Busy, ConvBN\n\n\nclass Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.busy = Busy()\n"
        "        self.block = ConvBN(8)\n\n    def forward(self, x):\n"
        "        return self.block(self.busy(x))\n"
    )
    (result,) = runner.analyze_paths([str(tmp_path / "model.py")])
    (notice,) = result.notices
    assert (notice.cap, notice.line, notice.incomplete) == ("foreign", 9, False)
    assert "opaque" in notice.message and f"{limits.MAX_FOREIGN_STEPS:,}" in notice.message
    assert not result.incomplete  # the fallback is the file-local analysis: not "in part"
