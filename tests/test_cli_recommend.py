"""`normsuite recommend` end to end: the article's networks, where the batch size comes from
(CLI > file > --config > [tool.normsuite]), exit codes, formats and stdin.

Expected norms follow docs/design.md, "Selection rules": BN for a CNN at per-device
batch >= 16 (B1), GroupNorm below (B2), SyncBN named as the alternative with several devices (B3).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from normsuite.cli.main import app
from typer.testing import CliRunner

from normsuite.analysis.config import clear_cache

ROOT = Path(__file__).resolve().parents[1]
ARTICLE = ROOT / "recipes" / "models" / "article_nets.py"

NET = """\
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, bias=False)
        self.bn = nn.BatchNorm2d(64)

    def forward(self, x):
        return self.bn(self.conv(x))
"""


def recommend(*args: str, **kwargs) -> tuple[int, dict]:
    res = CliRunner().invoke(app, ["recommend", *args, "--format", "json"], **kwargs)
    return res.exit_code, json.loads(res.output)


def _model(doc: dict, name: str | None = None) -> dict:
    models = [m for f in doc["files"] for m in f["models"]]
    return next(m for m in models if name is None or m["name"] == name)


def test_article_networks() -> None:
    code, doc = recommend(str(ARTICLE))
    assert code == 0  # recommend exits 0 even though LBNNet has an NRM002 error
    bn = _model(doc, "BNNet")
    assert bn["architecture"] == "cnn2d"
    assert bn["batch_size"]["per_device"] == 32
    assert "DataLoader(batch_size=32)" in bn["batch_size"]["source"]
    assert bn["recommendation"]["norm"] == "bn" and "B1" in bn["recommendation"]["rules"]
    lbn = _model(doc, "LBNNet")
    assert lbn["recommendation"]["norm"] in ("bn", "gn")  # a CNN norm, not LayerNorm
    (site,) = lbn["recommendation"]["layers"]
    assert site["current"] == "nn.LayerNorm(64)" and site["suggested"] != "nn.LayerNorm(64)"
    assert "NRM002" in {f["code"] for f in doc["files"][0]["findings"] if f["model"] == "LBNNet"}
    assert _model(doc, "GroupLBNNet")["recommendation"]["norm"] == "gn"  # kept: it is fine


def test_cli_batch_size_wins_over_the_file() -> None:
    _, doc = recommend(str(ARTICLE), "--batch-size", "4")
    bn = _model(doc, "BNNet")
    assert bn["batch_size"] == {
        "per_device": 4,
        "devices": 1,
        "accumulate": 1,
        "source": "cli",
        "weak": False,
        "frozen_parts": [],
    }
    assert bn["recommendation"]["norm"] == "gn" and "B2" in bn["recommendation"]["rules"]
    assert bn["recommendation"]["layers"][0]["suggested"] == "nn.GroupNorm(32, 64)"


def test_devices_and_accumulation(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(NET)
    _, doc = recommend(str(tmp_path / "net.py"), "--batch-size", "4", "--devices", "4")
    rec = _model(doc)["recommendation"]
    assert "B3" in rec["rules"]  # global batch 16: SyncBN is the alternative
    assert "NRM008" in {f["code"] for f in doc["files"][0]["findings"]}
    # accumulation does not enlarge the batch BN sees: still the small-batch advice
    _, doc = recommend(str(tmp_path / "net.py"), "--batch-size", "4", "--accumulate", "8")
    m = _model(doc)
    assert m["batch_size"]["accumulate"] == 8
    assert m["recommendation"]["norm"] == "gn" and "B3" not in m["recommendation"]["rules"]


def test_config_yaml_then_pyproject_default(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(NET)
    (tmp_path / "recipe.yaml").write_text(
        "data:\n  init_args:\n    batch_size: 8\ntrainer:\n  devices: 1\n"
    )
    _, doc = recommend(str(tmp_path / "net.py"), "--config", str(tmp_path / "recipe.yaml"))
    b = _model(doc)["batch_size"]
    assert b["per_device"] == 8 and b["source"].startswith("config:")
    clear_cache()
    try:
        (tmp_path / "pyproject.toml").write_text("[tool.normsuite]\nbatch-size = 64\n")
        _, doc = recommend(str(tmp_path / "net.py"))
        m = _model(doc)
        assert m["batch_size"]["per_device"] == 64
        assert m["recommendation"]["norm"] == "bn"
        _, doc = recommend(str(tmp_path / "net.py"), "--batch-size", "2")  # CLI still wins
        assert _model(doc)["batch_size"]["per_device"] == 2
    finally:
        clear_cache()


def test_unknown_batch_says_what_it_assumed(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(NET)
    _, doc = recommend(str(tmp_path / "net.py"), "--isolated")
    m = _model(doc)
    assert m["batch_size"]["per_device"] is None
    assert m["recommendation"]["assumptions"] and m["recommendation"]["would_change"]


def test_errors_exit_2_but_good_files_are_still_recommended(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(NET)
    (tmp_path / "broken.py").write_text("class (:\n")
    res = CliRunner().invoke(app, ["recommend", str(tmp_path)])
    assert res.exit_code == 2
    assert f"{tmp_path / 'broken.py'}: error: syntax error at line 1" in res.output
    assert f"{tmp_path / 'net.py'}:4: Net [cnn2d]" in res.output
    assert "Traceback" not in res.output


def test_plain_and_rich_text(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(NET)
    plain = CliRunner().invoke(app, ["recommend", str(tmp_path / "net.py"), "-b", "8"])
    assert plain.exit_code == 0
    assert "  recommend: gn (confidence" in plain.output
    assert "    line 8 bn: nn.BatchNorm2d(64) -> nn.GroupNorm(32, 64)" in plain.output
    assert plain.output.rstrip().endswith("Analyzed 1 file: 1 model, 1 finding.")
    rich = CliRunner().invoke(
        app,
        ["recommend", str(tmp_path / "net.py"), "-b", "8"],
        env={"FORCE_COLOR": "1", "COLUMNS": "200"},
    )
    assert rich.exit_code == 0
    assert "┃" in rich.output and "Layer" in rich.output and "nn.GroupNorm(32, 64)" in rich.output
    assert f"{tmp_path / 'net.py'}:4" in re.sub(r"\x1b\[[0-9;]*m", "", rich.output)
    assert "\x1b[" in rich.output


def test_github_format_and_stdin() -> None:
    res = CliRunner().invoke(
        app, ["recommend", "-", "--format", "github", "-b", "32"], input=ARTICLE.read_text()
    )
    assert res.exit_code == 0
    notices = [line for line in res.output.splitlines() if line.startswith("::notice file=-,")]
    assert len(notices) >= 3 and any("title=normsuite%3A BNNet::" in n for n in notices)
    assert any(
        line.startswith("::error file=-,") and "title=NRM002::" in line
        for line in res.output.splitlines()
    )
