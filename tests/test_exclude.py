"""exclude / extend-exclude / --force-exclude with ruff's semantics, and the pre-commit hook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from normsuite.cli.main import app
from typer.testing import CliRunner

from normsuite.analysis import config as cfg

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for rel in ("build/a.py", "src/legacy/b.py", "src/c.py", ".hidden/d.py", "e.py", "venv/f.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    monkeypatch.chdir(tmp_path)
    cfg.clear_cache()
    yield tmp_path
    cfg.clear_cache()


def _files(*args: str) -> list[str]:
    res = CliRunner().invoke(app, ["check", *args, "--format", "json"])
    assert res.exit_code == 0, res.output
    return sorted(f["path"] for f in json.loads(res.stdout)["files"])


def test_defaults_skip_hidden_and_venv(project: Path) -> None:
    assert _files(".") == ["build/a.py", "e.py", "src/c.py", "src/legacy/b.py"]


def test_extend_exclude_adds_names_and_relative_paths(project: Path) -> None:
    assert _files(".", "--extend-exclude", "build,src/legacy") == ["e.py", "src/c.py"]
    assert _files(".", "--extend-exclude", "build", "--extend-exclude", "c.py") == [
        "e.py",
        "src/legacy/b.py",
    ]


def test_exclude_replaces_the_defaults(project: Path) -> None:
    # hidden folders and venv are no longer skipped: only `src` is
    assert _files(".", "--exclude", "src") == [".hidden/d.py", "build/a.py", "e.py", "venv/f.py"]


def test_config_exclude_and_extend_exclude(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.normsuite]\nextend-exclude = ["src/legacy"]\n')
    assert _files(".") == ["build/a.py", "e.py", "src/c.py"]
    (project / "pyproject.toml").write_text('[tool.normsuite]\nexclude = ["build"]\n')
    cfg.clear_cache()
    assert "venv/f.py" in _files(".") and "build/a.py" not in _files(".")
    # the command line's --exclude replaces the table's exclude
    assert "build/a.py" in _files(".", "--exclude", "src")


def test_explicit_paths_need_force_exclude(project: Path) -> None:
    assert _files("build/a.py", "e.py", "--extend-exclude", "build") == ["build/a.py", "e.py"]
    forced = _files("build/a.py", "e.py", "--extend-exclude", "build", "--force-exclude")
    assert forced == ["e.py"]


def test_pre_commit_hook_definition() -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "normsuite-check"
    assert hook["entry"].split() == ["normsuite", "check", "--force-exclude"]
    assert hook["language"] == "python" and hook["types_or"] == ["python", "jupyter"]
    # the entry is a valid command line: its options parse
    res = CliRunner().invoke(app, [*hook["entry"].split()[1:], "--help"])
    assert res.exit_code == 0
