"""`--trace` runs the file in a subprocess and reports what every norm layer really sees.

Expected shapes are computed by hand from the layer arithmetic (a 3x3 conv with padding 1
keeps H and W; a 3-tap Conv1d without padding shortens L by 2), and the failing LayerNorm
message is PyTorch's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from normsuite.cli.main import app
from typer.testing import CliRunner

from normsuite.analysis.trace import _compare_static, trace_file

MODELS = """\
import torch.nn as nn


class LBNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, padding=1)
        self.ln1 = nn.LayerNorm(64)

    def forward(self, x):
        return self.ln1(self.conv1(x))


class SeqNet(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.conv = nn.Conv1d(4, width, 3)
        self.bn = nn.BatchNorm1d(width)
        self.unused = nn.GroupNorm(2, width)

    def forward(self, x):
        return self.bn(self.conv(x))


class NeedsArgs(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)


class Block(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return self.fc(self.norm(x))


class Stack(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([Block() for _ in range(3)])

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x
"""
BLOCK_NORM_LINE = MODELS.splitlines().index("        self.norm = nn.LayerNorm(width)") + 1


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trace") / "models.py"
    path.write_text(MODELS)
    return path


@pytest.fixture(scope="module")
def traced_json(model_file: Path) -> dict:
    res = CliRunner().invoke(app, ["check", str(model_file), "--trace", "--format", "json"])
    assert res.exit_code in (0, 1), res.output  # findings are fine; a trace failure is not
    (entry,) = json.loads(res.output)["files"]
    return entry


def test_trace_reports_exact_norm_input_shapes(traced_json: dict) -> None:
    models = {m["name"]: m for m in traced_json["trace"]["models"]}
    assert set(models) == {"LBNNet", "SeqNet", "NeedsArgs", "Block", "Stack"}
    seq = models["SeqNet"]
    assert seq["input_shape"] == [2, 4, 64] and seq["error"] is None
    (bn,) = seq["layers"]  # `unused` never runs: no hook fired for it
    assert (bn["name"], bn["type"], bn["input_shape"], bn["output_shape"]) == (
        "bn",
        "BatchNorm1d",
        [2, 8, 62],
        [2, 8, 62],
    )
    assert bn["static"] == "rank 3, 8 channels at dim 1"  # the static view agrees ...
    assert not [d for d in seq["differences"] if d.startswith("bn:")]  # ... so no difference
    assert "unused (line 19) was not called in forward()" in seq["differences"]
    assert models["NeedsArgs"]["skipped"] == "its constructor needs arguments: channels"


def test_layers_built_in_a_comprehension_match_their_static_site(traced_json: dict) -> None:
    # The static view has one site, blocks.0.norm, for the three blocks the comprehension
    # builds; matching by path alone called blocks.1/2.norm "not seen by the static analysis".
    stack = next(m for m in traced_json["trace"]["models"] if m["name"] == "Stack")
    assert [(layer["name"], layer["line"]) for layer in stack["layers"]] == [
        (f"blocks.{i}.norm", BLOCK_NORM_LINE) for i in range(3)
    ]
    # every block gets the static belief of the one site (the input comes from forward's
    # argument, so the rank is unknown statically)
    assert [layer.get("static") for layer in stack["layers"]] == [
        "rank ?, 8 channels at dim -1"
    ] * 3
    assert stack["differences"] == []


def test_trace_shows_the_article_layernorm_failing(traced_json: dict) -> None:
    lbn = next(m for m in traced_json["trace"]["models"] if m["name"] == "LBNNet")
    assert lbn["input_shape"] == [2, 3, 32, 32]
    (ln,) = lbn["layers"]
    assert ln["input_shape"] == [2, 64, 32, 32] and ln["output_shape"] is None
    assert lbn["failed_at"] == "ln1"
    assert lbn["error"].startswith(
        "RuntimeError: Given normalized_shape=[64], expected input with shape [*, 64]"
    )
    assert "input has [32], layer expects [64]" in ln["layout"]
    static_codes = {f["code"] for f in traced_json["findings"]}
    assert "NRM002" in static_codes
    assert "ln1: the layer is built for 64 channels, the input's last dim is 32" in "".join(
        lbn["differences"]
    )
    assert "forward failed at ln1: confirms NRM002 (line 8)" in lbn["differences"]


def test_static_view_disagreement_is_listed() -> None:
    believed = {"rank": 4, "channel_dim": 1, "channels": 64, "kind": "map"}
    assert _compare_static("ln", [2, 64, 32, 32], believed) is None
    assert _compare_static("ln", [2, 16, 64], believed) == (
        "ln: static view rank 4, 64 channels at dim 1, trace saw [2, 16, 64]"
    )
    assert _compare_static("bn", [2, 32, 8, 8], believed) == (
        "bn: static view rank 4, 64 channels at dim 1, trace saw [2, 32, 8, 8] (dim 1 is 32)"
    )


def test_model_and_input_shape_flags(model_file: Path) -> None:
    result = trace_file(str(model_file), model="SeqNet", input_shape=(5, 4, 20))
    (seq,) = result.models
    assert seq["input_shape"] == [5, 4, 20]
    assert seq["layers"][0]["input_shape"] == [5, 8, 18]
    missing = trace_file(str(model_file), model="Nope")
    assert (
        missing.error
        == "no nn.Module class 'Nope' in the file (found: LBNNet, SeqNet, NeedsArgs, Block, Stack)"
    )


def test_trace_runs_the_code_that_static_mode_does_not(tmp_path: Path) -> None:
    """Positive control for tests/test_robustness.py::test_static_mode_never_runs_the_code."""
    from test_robustness import MARKER_FILE

    marker = tmp_path / "marker.txt"
    model = tmp_path / "model.py"
    model.write_text(MARKER_FILE.format(marker=str(marker)))
    res = CliRunner().invoke(app, ["recommend", str(model), "--trace"])
    assert res.exit_code == 0, res.output
    assert marker.read_text() == "forward"  # import, class body, default, decorator, forward
    assert "trace Net: input [2, 3, 32, 32]" in res.output
    assert "bn BatchNorm2d: input [2, 64, 32, 32]" in res.output


def test_import_failure_is_a_trace_error_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("raise ImportError('needs a GPU build')\n")
    res = CliRunner().invoke(app, ["recommend", str(bad), "--trace"])
    assert res.exit_code == 2
    assert (
        f"{bad}: trace error: importing the file failed: ImportError: needs a GPU build"
        in res.output
    )
    assert "Traceback" not in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "Net"], "--model and --input-shape only apply with --trace"),
        (["--input-shape", "8,3"], "--model and --input-shape only apply with --trace"),
        (["--trace", "--input-shape", "8,a"], "--input-shape '8,a' is not a shape"),
        (["--trace", "--input-shape", "8,0"], "--input-shape '8,0' is not a shape"),
    ],
)
def test_trace_usage_errors(model_file: Path, args: list[str], message: str) -> None:
    res = CliRunner().invoke(app, ["recommend", str(model_file), *args])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        f"normsuite recommend: error: {message}"
        + ("; give positive integers like 8,3,32,32" if "not a shape" in message else "")
    ]


def test_trace_refuses_stdin() -> None:
    res = CliRunner().invoke(app, ["check", "-", "--trace"], input="x = 1\n")
    assert res.exit_code == 2
    assert "normsuite check: error: --trace needs files on disk, not stdin" in res.output
