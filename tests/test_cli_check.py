"""`normsuite check` end to end: exit codes, formats, noqa, select, stdin, folders, errors,
and that the static path never imports torch or lightning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from normsuite.cli.main import app
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
ARTICLE = ROOT / "recipes" / "models" / "article_nets.py"
SCHEMA = ROOT / "tests" / "fixtures" / "sarif-schema-2.1.0.json"

CLEAN = """\
from torch import nn


class Clean(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.gn = nn.GroupNorm(32, 64)

    def forward(self, x):
        return self.gn(self.conv(x)).relu()
"""

LBN = """\
import torch.nn as nn


class LBNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, padding=1, bias=False)
        self.ln1 = nn.LayerNorm(64)

    def forward(self, x):
        x = self.conv1(x)
        x = self.ln1(x)
        return x
"""


def invoke(*args: str, **kwargs) -> object:
    return CliRunner().invoke(app, list(args), **kwargs)


def _json(*args: str) -> dict:
    res = invoke(*args, "--format", "json")
    return json.loads(res.output)


def test_exit_codes_0_clean_1_findings_2_error(tmp_path: Path) -> None:
    clean, lbn = tmp_path / "clean.py", tmp_path / "lbn.py"
    clean.write_text(CLEAN)
    lbn.write_text(LBN)
    assert invoke("check", str(clean)).exit_code == 0
    res = invoke("check", str(lbn))
    assert res.exit_code == 1 and "NRM002" in res.output
    # an error wins over findings
    assert invoke("check", str(lbn), str(tmp_path / "missing.py")).exit_code == 2
    # ignoring the only findings makes it clean again
    codes = {f["code"] for f in _json("check", str(lbn))["files"][0]["findings"]}
    assert invoke("check", str(lbn), "--ignore", ",".join(codes)).exit_code == 0


def test_article_lbnnet_is_flagged_nrm002() -> None:
    doc = _json("check", str(ARTICLE))
    (entry,) = doc["files"]
    by_model = {}
    for f in entry["findings"]:
        by_model.setdefault(f["model"], set()).add(f["code"])
    assert "NRM002" in by_model["LBNNet"]
    assert "NRM002" not in by_model.get("BNNet", set())
    assert doc["summary"]["findings"] == len(entry["findings"])


def test_noqa_on_the_reported_line_suppresses_it(tmp_path: Path) -> None:
    lbn = tmp_path / "lbn.py"
    lbn.write_text(LBN)
    (finding,) = [
        f for f in _json("check", str(lbn))["files"][0]["findings"] if f["code"] == "NRM002"
    ]
    lines = LBN.splitlines()
    lines[finding["line"] - 1] += "  # noqa: NRM002"
    lbn.write_text("\n".join(lines) + "\n")
    after = _json("check", str(lbn))["files"][0]["findings"]
    assert "NRM002" not in {f["code"] for f in after}
    lines[finding["line"] - 1] = lines[finding["line"] - 1].replace("NRM002", "NRM001")
    lbn.write_text("\n".join(lines) + "\n")  # another code on the line: not suppressed
    assert "NRM002" in {f["code"] for f in _json("check", str(lbn))["files"][0]["findings"]}


def test_select_limits_the_codes(tmp_path: Path) -> None:
    res = invoke("check", str(ARTICLE), "--select", "NRM002")
    assert res.exit_code == 1
    lines = [line for line in res.output.splitlines() if ": NRM" in line]
    assert lines and all(": NRM002 " in line for line in lines)


def test_pyproject_ignore_and_cli_select_override(tmp_path: Path) -> None:
    from normsuite.analysis.config import clear_cache

    (tmp_path / "pyproject.toml").write_text('[tool.normsuite]\nignore = ["NRM002"]\n')
    (tmp_path / "lbn.py").write_text(LBN)
    clear_cache()
    try:
        codes = {f["code"] for f in _json("check", str(tmp_path))["files"][0]["findings"]}
        assert "NRM002" not in codes
        codes = {
            f["code"]
            for f in _json("check", str(tmp_path), "--select", "NRM002")["files"][0]["findings"]
        }
        assert codes == {"NRM002"}
        both = _json("check", str(tmp_path), "--isolated")["files"][0]["findings"]
        assert "NRM002" in {f["code"] for f in both}
    finally:
        clear_cache()


def test_plain_text_when_piped_rich_tables_on_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "lbn.py").write_text(LBN)
    plain = invoke("check", str(tmp_path / "lbn.py"))
    finding = next(line for line in plain.output.splitlines() if "NRM002" in line)
    assert finding.startswith(f"{tmp_path / 'lbn.py'}:") and " NRM002 [error] " in finding
    assert "\x1b[" not in plain.output and "┃" not in plain.output
    rich = invoke("check", str(tmp_path / "lbn.py"), env={"FORCE_COLOR": "1", "COLUMNS": "160"})
    assert rich.exit_code == 1
    assert "┃" in rich.output and "Code" in rich.output and "NRM002" in rich.output


def test_summary_counts_only_analyzed_files_next_to_exit_2(tmp_path: Path) -> None:
    (tmp_path / "clean.py").write_text(CLEAN)
    res = invoke("check", str(tmp_path / "missing.py"))
    assert res.exit_code == 2
    assert res.stdout.strip() == "1 file could not be analyzed; no findings in 0 files."
    res = invoke("check", str(tmp_path / "missing.py"), str(tmp_path / "clean.py"))
    assert res.exit_code == 2
    assert res.stdout.strip() == "1 file could not be analyzed; no findings in 1 file."
    assert "passed" not in res.output


def test_sarif_and_github_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "lbn.py").write_text(LBN)
    sarif = json.loads(invoke("check", str(tmp_path / "lbn.py"), "--format", "sarif").output)
    jsonschema.Draft4Validator(json.loads(SCHEMA.read_text())).validate(sarif)
    assert "NRM002" in {r["ruleId"] for r in sarif["runs"][0]["results"]}
    gh = invoke("check", str(tmp_path / "lbn.py"), "--format", "github")
    assert gh.exit_code == 1
    lines = gh.output.splitlines()
    assert lines and all(line.startswith(("::error ", "::warning ", "::notice ")) for line in lines)
    assert any(",title=NRM002::" in line for line in lines)


def test_stdin_and_folders(tmp_path: Path) -> None:
    res = invoke("check", "-", input=LBN)
    assert res.exit_code == 1 and any(line.startswith("-:") for line in res.output.splitlines())
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "lbn.py").write_text(LBN)
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "lbn.py").write_text(LBN)
    doc = _json("check", str(tmp_path))
    assert [Path(f["path"]).relative_to(tmp_path).as_posix() for f in doc["files"]] == ["a/lbn.py"]


def test_a_folder_without_python_files_warns_and_passes(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing to see")
    res = invoke("check", str(tmp_path))
    assert res.exit_code == 0
    assert "normsuite check: warning: no Python files found in the paths" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no paths given; pass files, folders or - for stdin"),
        (["x.py", "--batch-size", "0"], "--batch-size must be at least 1, got 0"),
        (["x.py", "--devices", "0"], "--devices must be at least 1, got 0"),
        (["x.py", "--accumulate", "-2"], "--accumulate must be at least 1, got -2"),
        (["x.py", "--max-file-size", "0"], "--max-file-size must be at least 1, got 0"),
        (["x.py", "--jobs", "0"], "--jobs must be at least 1, got 0"),
        (
            ["x.py", "--config", "nope.yaml"],
            "--config nope.yaml: no such file; pass a LightningCLI YAML file",
        ),
    ],
)
def test_usage_errors_are_one_line_exit_2(args: list[str], message: str) -> None:
    res = invoke("check", *args)
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [f"normsuite check: error: {message}"]


def test_bad_option_values_from_click_exit_2_without_traceback() -> None:
    for args in (["x.py", "--format", "xml"], ["x.py", "--batch-size", "many"]):
        res = invoke("check", *args)
        assert res.exit_code == 2 and "Traceback" not in res.output
        assert res.output.startswith("normsuite check: error: invalid value for")
        assert len(res.output.strip().splitlines()) == 1


def test_check_recommend_rule_never_import_torch_or_lightning() -> None:
    code = (
        "import sys\n"
        "from normsuite.cli.main import app\n"
        "runs = (['check', sys.argv[1]], ['recommend', sys.argv[1], '--format', 'json'],\n"
        "        ['rule', 'NRM002'])\n"
        "for args in runs:\n"
        "    try:\n"
        "        app(args)\n"
        "    except SystemExit as exc:\n"
        "        print('exit', exc.code)\n"
        "heavy = ('torch', 'lightning', 'pytorch_lightning', 'torchvision')\n"
        "print('loaded', sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(ARTICLE)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[-1] == "loaded []"
    exits = [line for line in out if line.startswith("exit ")]
    assert exits == ["exit 1", "exit 0", "exit 0"]  # check found LBNNet; recommend; rule


def test_piped_recommend_skips_imports_it_does_not_need() -> None:
    """Start-up: piped text output needs no rich, a serial run no process pool (the
    figures are in bench/analyzer_speed.py; no timed assertion here)."""
    code = (
        "import sys\n"
        "from normsuite.cli.main import app\n"
        "try:\n"
        "    app(['recommend', sys.argv[1]])\n"
        "except SystemExit as exc:\n"
        "    print('exit', exc.code)\n"
        "lazy = ('rich', 'multiprocessing', 'concurrent.futures')\n"
        "print('loaded', sorted(m for m in lazy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(ARTICLE)],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")},
    ).stdout.splitlines()
    assert out[-2:] == ["exit 0", "loaded []"]
    assert any("recommend:" in line for line in out)  # it did print the plain report


def test_nrm008_suggests_normsync_not_torch_syncbn(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(CLEAN.replace("nn.GroupNorm(32, 64)", "nn.BatchNorm2d(64)"))
    doc = _json("check", str(path), "--batch-size", "4", "--devices", "4", "--isolated")
    (message,) = [f["message"] for f in doc["files"][0]["findings"] if f["code"] == "NRM008"]
    assert "normsuite.NormSync()" in message and 'norm="syncbn"' in message
    assert "convert_sync_batchnorm" not in message and "sync_batchnorm=True" not in message
