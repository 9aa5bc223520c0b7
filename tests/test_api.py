"""normsuite.analyze(): typed results equal to `recommend --format json`, argument checks,
and no torch import."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
from normsuite.cli.main import app
from typer.testing import CliRunner

import normsuite
from normsuite.analysis.types import FileResult, Finding, Recommendation

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "recipes" / "models"


def test_analyze_returns_what_json_prints() -> None:
    result = normsuite.analyze(MODELS, batch_size=8, project_config=False)
    res = CliRunner().invoke(
        app, ["recommend", str(MODELS), "-b", "8", "--format", "json", "--isolated"]
    )
    assert result.to_dict() == json.loads(res.output)
    assert all(isinstance(r, FileResult) for r in result)
    assert result.findings and all(isinstance(f, Finding) for f in result.findings)
    recs = [m.recommendation for m in result.models if m.recommendation is not None]
    assert recs and all(isinstance(r, Recommendation) for r in recs)
    assert result.complete and result.errors == {}
    # the flat views hold exactly the per-file items
    assert [asdict(f) for f in result.findings] == [
        f for entry in json.loads(res.output)["files"] for f in entry["findings"]
    ]


def test_batch_size_wins_and_select_filters(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "import torch.nn as nn\n\nclass N(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.c = nn.Conv2d(3, 8, 3)\n"
        "        self.b = nn.BatchNorm2d(8)\n    def forward(self, x):\n"
        "        return self.b(self.c(x))\n"
    )
    small = normsuite.analyze([tmp_path / "m.py"], batch_size=2, project_config=False)
    assert small.models[0].batch_size.per_device == 2
    assert small.models[0].recommendation.norm == "gn"
    only = normsuite.analyze(str(tmp_path), batch_size=2, select=["NRM001"], project_config=False)
    assert {f.code for f in only.findings} == {"NRM001"}


def test_errors_are_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("def f(:\n")
    result = normsuite.analyze(tmp_path, project_config=False)
    assert not result.complete
    assert result.errors[str(tmp_path / "bad.py")].startswith("syntax error at line 1")


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"paths": 3}, TypeError, "paths must be a path or an iterable of paths"),
        ({"paths": []}, ValueError, "paths is empty"),
        ({"paths": [1]}, TypeError, "paths must hold str"),
        ({"paths": ".", "batch_size": "8"}, TypeError, "batch_size must be an int"),
        ({"paths": ".", "batch_size": 0}, ValueError, "batch_size must be at least 1"),
        ({"paths": ".", "devices": True}, TypeError, "devices must be an int"),
        ({"paths": ".", "config": "nope.yaml"}, ValueError, "no such file"),
        ({"paths": ".", "select": ["NMR002"]}, ValueError, "unknown rule code 'NMR002'"),
    ],
)
def test_bad_arguments_say_what_was_expected(kwargs: dict, error: type, needle: str) -> None:
    with pytest.raises(error, match=needle):
        normsuite.analyze(**kwargs)


def test_analyze_never_imports_torch() -> None:
    code = (
        "import sys, normsuite\n"
        f"normsuite.analyze({str(MODELS)!r}, batch_size=8)\n"
        "print('torch' in sys.modules, 'lightning' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
    assert "analyze" in normsuite.__all__ and "Analysis" in dir(normsuite)
