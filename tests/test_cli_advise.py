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


def test_task_is_passed_to_advice_that_takes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}
    real = normsuite.advice.advise

    def with_task(arch, batch, *, devices=1, accumulate=1, channels=None, task=None):
        seen["task"] = task
        return real(arch, batch, devices=devices, accumulate=accumulate, channels=channels)

    monkeypatch.setattr(normsuite.advice, "advise", with_task)
    res = _invoke("advise", "--arch", "cnn2d", "-b", "8", "--task", "detection")
    assert res.exit_code == 0 and seen == {"task": "detection"}


def test_task_without_support_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = normsuite.advice.advise

    def no_task(arch, batch, *, devices=1, accumulate=1, channels=None):
        return real(arch, batch, devices=devices, accumulate=accumulate, channels=channels)

    monkeypatch.setattr(normsuite.advice, "advise", no_task)
    res = _invoke("advise", "--arch", "cnn2d", "-b", "8", "--task", "detection")
    assert res.exit_code == 2
    (line,) = res.output.strip().splitlines()
    assert line.startswith("normsuite advise: error: --task is not used")
