"""`normsuite advise` gives the advice `recommend` gives for a model file, from the same
function (normsuite.advice.advise)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from normsuite.cli.main import app
from typer.testing import CliRunner

import normsuite.advice

MODEL = """\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(64)

    def forward(self, x):
        return self.bn(self.conv(x)).relu()
"""


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize(("batch", "devices"), [("8", "4"), ("32", "1"), ("2", "1"), (None, "1")])
def test_advise_equals_recommend_for_a_cnn(tmp_path: Path, batch: str | None, devices: str):
    (tmp_path / "m.py").write_text(MODEL)
    batch_args = ["--batch-size", batch] if batch else []
    rec = _invoke(
        "recommend",
        str(tmp_path / "m.py"),
        *batch_args,
        "--devices",
        devices,
        "--format",
        "json",
        "--isolated",
    )
    (model,) = json.loads(rec.output)["files"][0]["models"]
    assert model["architecture"] == "cnn2d"
    adv = _invoke(  # the same inputs: the model's norm has 64 channels
        "advise",
        "--arch",
        "cnn2d",
        *batch_args,
        "--devices",
        devices,
        "--channels",
        "64",
        "--format",
        "json",
    )
    assert adv.exit_code == 0, adv.output
    advice = json.loads(adv.output)["advice"]
    want = model["recommendation"]
    for key in ("norm", "rules", "rationale", "would_change", "confidence", "alternatives"):
        assert advice[key] == want[key], key


def test_text_output_names_the_norm_rules_and_reasons() -> None:
    res = _invoke("advise", "--arch", "cnn2d", "--batch-size", "8", "--devices", "4")
    assert res.exit_code == 0
    direct = normsuite.advice.advise("cnn2d", 8, devices=4)
    lines = res.output.splitlines()
    assert lines[0] == "cnn2d, batch 8/device x 4 devices (cli)"
    assert (
        lines[1]
        == f"  recommend: {direct.norm} (confidence {direct.confidence}; rules "
        + ", ".join(direct.rules)
        + ")"
    )
    for sentence in direct.rationale:
        assert f"    - {sentence}" in lines
    assert "  also good: syncbn" in lines


def test_recognition_tasks_get_the_recognition_advice() -> None:
    plain = _invoke("advise", "--arch", "cnn2d", "-b", "2", "--format", "json")
    args = ["advise", "--arch", "cnn2d", "-b", "2", "--format", "json"]
    task = _invoke(*args, "--task", "Detection")
    assert task.exit_code == 0
    assert json.loads(task.output)["advice"] == json.loads(plain.output)["advice"]
    assert json.loads(task.output)["task"] == "detection"
    text = _invoke("advise", "--arch", "cnn2d", "-b", "2", "--task", "detection").output
    assert text.splitlines()[-1] == (
        "  task: detection (the recognition rules B1-B11 apply as they are)"
    )


def test_a_domain_task_asks_advise_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where normsuite.advice has domains with their own norm practice, --task names one (by
    id or a word of its name) and gets advise_domain's advice, as recommend does."""
    from types import SimpleNamespace

    calls = []
    canned = normsuite.advice.advise("rnn", 4)

    def advise_domain(domain_id: str, batch: int | None):
        calls.append((domain_id, batch))
        return canned

    domains = {"D4": SimpleNamespace(name="diffusion U-Net")}
    monkeypatch.setattr(normsuite.advice, "DOMAINS", domains, raising=False)
    monkeypatch.setattr(normsuite.advice, "advise_domain", advise_domain, raising=False)
    for task in ("diffusion", "d4"):
        res = _invoke("advise", "--arch", "cnn2d", "-b", "8", "--task", task, "--format", "json")
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["advice"]["norm"] == canned.norm
    assert calls == [("D4", 8), ("D4", 8)]
    res = _invoke("advise", "--arch", "cnn2d", "--task", "poetry")
    assert res.exit_code == 2
    (line,) = res.output.strip().splitlines()
    assert line.startswith("normsuite advise: error: unknown task 'poetry'; use one of: ")
    assert "D4 (diffusion U-Net)" in line


def test_unknown_task_is_a_one_line_error() -> None:
    res = _invoke("advise", "--arch", "cnn2d", "-b", "8", "--task", "zzz")
    assert res.exit_code == 2
    (line,) = res.output.strip().splitlines()
    assert line.startswith("normsuite advise: error: unknown task 'zzz'; use one of: ")
    assert "detection" in line
