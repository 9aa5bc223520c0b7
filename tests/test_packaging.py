"""The wheel holds normsuite (with normsuite.cli) and no top-level `cli` package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.xdist_group("packaging")


@pytest.fixture(scope="module")
def wheel_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The built wheel and what the build printed on stderr."""
    # Build from a copy: setuptools writes build/ into the source tree, which races with
    # other builds and would leave clutter in the checkout.
    src = tmp_path_factory.mktemp("src") / "normsuite"
    junk = (".venv", ".git", "build", "dist", "runs", "*.egg-info", "__pycache__", ".*cache")
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*junk))
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (path,) = out.glob("normsuite-*.whl")
    return path, built.stderr


@pytest.fixture(scope="module")
def wheel(wheel_build: tuple[Path, str]) -> Path:
    return wheel_build[0]


def test_build_is_quiet_and_ships_the_rule_docs(wheel_build: tuple[Path, str]) -> None:
    # before: "Package would be ignored" (the rule docs folder) and a license deprecation
    path, stderr = wheel_build
    assert "Warning" not in stderr and "warning" not in stderr, stderr
    names = set(zipfile.ZipFile(path).namelist())
    docs = sorted((ROOT / "normsuite" / "analysis" / "docs").glob("NRM*.md"))
    assert docs and {f"normsuite/analysis/docs/{d.name}" for d in docs} <= names


def test_wheel_maps_cli_folder_to_normsuite_cli(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "normsuite/cli/main.py" in names
    assert "normsuite/__init__.py" in names
    assert not [n for n in names if n.startswith("cli/")], "a top-level cli package leaked"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "normsuite = normsuite.cli.main:main" in text


def test_every_source_package_is_in_the_wheel(wheel: Path) -> None:
    """A subpackage missing from pyproject's explicit list would silently vanish."""
    names = set(zipfile.ZipFile(wheel).namelist())
    for init in (ROOT / "normsuite").rglob("__init__.py"):
        rel = init.relative_to(ROOT).as_posix()
        assert rel in names, f"{rel} missing: add its package to [tool.setuptools] packages"


def test_version_and_help_are_fast_and_torch_free() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from normsuite.cli.main import app;"
        "r = CliRunner().invoke(app, ['--version']); assert r.exit_code == 0, r.output;"
        "assert 'normsuite 0.1.0' in r.output;"
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0;"
        "assert 'torch' not in sys.modules and 'lightning' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_console_script_runs() -> None:
    exe = Path(sys.executable).with_name("normsuite")
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "normsuite 0.1.0"
