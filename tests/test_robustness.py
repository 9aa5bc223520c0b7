"""Bad input never stops the run, never shows a traceback; user code is never executed;
every file of the installed torchvision package is analyzed without an internal error."""

from __future__ import annotations

import builtins
import importlib.util
import os
from pathlib import Path

import pytest
from normsuite.cli.main import app
from typer.testing import CliRunner

from normsuite.analysis import files, runner
from normsuite.analysis.types import AnalysisOptions, FileResult

GOOD = """\
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, padding=1)
        self.ln = nn.LayerNorm(64)

    def forward(self, x):
        return self.ln(self.conv(x))
"""


def _write_bad_inputs(root: Path) -> dict[str, str]:
    """Bad files next to a good one; returns name -> the expected start of its error."""
    (root / "good.py").write_text(GOOD)
    (root / "syntax.py").write_text("def broken(:\n    pass\n")
    (root / "latin1.py").write_bytes(b"x = '\xe9t\xe9'\n")
    (root / "binary.py").write_bytes(b"\x7fELF\x00\x00\x01")
    (root / "huge.py").write_text("x = 1\n" * 400_000)  # 2.4 MB
    (root / "nested.py").write_text("x = " + "1 + " * 100_000 + "1\n")
    (root / "cookie.py").write_text("# -*- coding: klingon -*-\nx = 1\n")
    return {
        "syntax.py": "syntax error at line 1, column 12",
        "latin1.py": "not valid utf-8 (byte 0xe9 at offset 5); save the file as UTF-8",
        "binary.py": "binary file (contains NUL bytes)",
        "huge.py": "file is 2.3 MB, over the 2.0 MB limit",
        "nested.py": "expression nested too deeply to analyze",
        "cookie.py": "unknown encoding: klingon",
    }


def test_each_bad_file_gets_one_error_and_the_others_are_analyzed(tmp_path: Path) -> None:
    expected = _write_bad_inputs(tmp_path)
    (tmp_path / "empty.py").write_text("")
    results = {Path(r.path).name: r for r in runner.analyze_paths([str(tmp_path)], jobs=1)}
    for name, start in expected.items():
        assert results[name].error is not None and results[name].error.startswith(start), name
        assert "\n" not in results[name].error
    # an empty file is valid Python: analyzed, nothing found, no error
    assert results["empty.py"].error is None and results["empty.py"].models == []
    good = results["good.py"]
    assert good.error is None and [m.name for m in good.models] == ["Net"]
    assert "NRM002" in {f.code for f in good.findings}


def test_cli_prints_one_line_per_bad_file_exit_2_no_traceback(tmp_path: Path) -> None:
    expected = _write_bad_inputs(tmp_path)
    missing = tmp_path / "missing.py"
    res = CliRunner().invoke(app, ["check", str(tmp_path), str(missing)])
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    errors = [line for line in res.output.splitlines() if ": error: " in line]
    assert len(errors) == len(expected) + 1
    for name in expected:
        assert sum(f"{tmp_path / name}: error: " in line for line in errors) == 1, name
    assert f"{missing}: error: no such file or directory" in res.output
    assert f"{tmp_path / 'good.py'}:" in res.output  # the good file's findings still print
    assert "NRM002" in res.output


def test_max_file_size_flag_raises_the_limit(tmp_path: Path) -> None:
    (tmp_path / "big.py").write_text("x = 1\n" * 1000)  # 6000 bytes
    small = CliRunner().invoke(app, ["check", str(tmp_path), "--max-file-size", "5000"])
    assert small.exit_code == 2 and "over the 4.9 kB limit" in small.output
    assert (
        CliRunner().invoke(app, ["check", str(tmp_path), "--max-file-size", "7000"]).exit_code == 0
    )


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """chmod 000 does not stop root (tests run as root), so open() is made to refuse."""
    locked = tmp_path / "locked.py"
    locked.write_text(GOOD)
    (tmp_path / "other.py").write_text(GOOD)
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if os.fspath(file) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    res = CliRunner().invoke(app, ["check", str(tmp_path)])
    assert res.exit_code == 2
    assert f"{locked}: error: permission denied; check the file's read permission" in res.output
    assert f"{tmp_path / 'other.py'}:" in res.output


def test_internal_error_is_isolated_to_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from normsuite.analysis.analyze import analyze_source

    def flaky(source: str, path: str, options: AnalysisOptions) -> FileResult:
        if path.endswith("boom.py"):
            raise KeyError("no such layer")
        return analyze_source(source, path, options)

    (tmp_path / "boom.py").write_text(GOOD)
    (tmp_path / "fine.py").write_text(GOOD)
    monkeypatch.setattr(runner, "_default_analyzer", lambda: flaky)
    res = CliRunner().invoke(app, ["check", str(tmp_path)])
    assert res.exit_code == 2
    assert (
        f"{tmp_path / 'boom.py'}: internal error: KeyError: 'no such layer' (please report)"
        in res.output
    )
    assert f"{tmp_path / 'fine.py'}:" in res.output and "Traceback" not in res.output


def test_a_broken_analyzer_install_is_an_internal_error_not_a_syntax_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_import() -> runner.Analyzer:
        raise IndentationError("unexpected indent")  # a SyntaxError subclass

    (tmp_path / "fine.py").write_text(GOOD)
    monkeypatch.setattr(runner, "_default_analyzer", broken_import)
    (result,) = runner.analyze_paths([str(tmp_path / "fine.py")])
    assert result.error == "internal error: IndentationError: unexpected indent (please report)"


def test_discovery_skips_hidden_venv_and_site_packages_unless_given(tmp_path: Path) -> None:
    for folder in (".hidden", ".venv", "venv", "site-packages", "__pycache__", "pkg/sub"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "m.py").write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("not python")
    (tmp_path / "top.py").write_text("x = 1\n")
    found = [Path(t.path).relative_to(tmp_path).as_posix() for t in files.discover([str(tmp_path)])]
    assert found == ["top.py", "pkg/sub/m.py"]
    explicit = files.discover([str(tmp_path / ".venv"), str(tmp_path / "notes.txt")])
    assert [Path(t.path).name for t in explicit] == ["m.py", "notes.txt"]
    # the same file twice (and through a folder) is analyzed once
    twice = files.discover([str(tmp_path / "top.py"), str(tmp_path), str(tmp_path / "top.py")])
    assert [Path(t.path).relative_to(tmp_path).as_posix() for t in twice] == [
        "top.py",
        "pkg/sub/m.py",
    ]


MARKER_FILE = """\
import pathlib
import torch.nn as nn

MARK = pathlib.Path({marker!r})
MARK.write_text("module level")


def mark(tag):
    MARK.write_text("decorator " + tag)
    return lambda cls: cls


@mark("class")
class Net(nn.Module):
    MARK.write_text("class body")

    def __init__(self, width=MARK.write_text("default argument")):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, padding=1)
        self.bn = nn.BatchNorm2d(64)

    def forward(self, x):
        MARK.write_text("forward")
        return self.bn(self.conv(x))
"""


@pytest.mark.parametrize("command", ["check", "recommend"])
def test_static_mode_never_runs_the_code(tmp_path: Path, command: str) -> None:
    marker = tmp_path / "marker.txt"
    model = tmp_path / "model.py"
    model.write_text(MARKER_FILE.format(marker=str(marker)))
    res = CliRunner().invoke(app, [command, str(model), "--format", "json"])
    assert res.exit_code in (0, 1), res.output
    assert '"name": "Net"' in res.output  # it was analyzed ...
    assert not marker.exists()  # ... and nothing in it ran
    # (tests/test_trace.py runs the same file with --trace and sees the marker appear)


def test_stdin_is_analyzed_and_named_dash() -> None:
    res = CliRunner().invoke(app, ["check", "-", "--format", "json"], input=GOOD)
    assert res.exit_code == 1
    assert '"path": "-"' in res.output and "NRM002" in res.output
    binary = CliRunner().invoke(app, ["check", "-"], input=b"\x00\x01")
    assert binary.exit_code == 2
    assert "-: error: binary file (contains NUL bytes)" in binary.output


# found, not imported: importing torchvision would pull torch into this process for nothing
TORCHVISION = Path(importlib.util.find_spec("torchvision").origin).parent


@pytest.fixture(scope="module")
def torchvision_results() -> list[FileResult]:
    return runner.analyze_paths([str(TORCHVISION)], jobs=1)


def test_torchvision_corpus_has_no_internal_errors(
    torchvision_results: list[FileResult], capsys: pytest.CaptureFixture[str]
) -> None:
    n_files = len(torchvision_results)
    n_models = sum(len(r.models) for r in torchvision_results)
    assert n_files > 150  # the whole package (185 files in 0.29), not an empty folder
    internal = [f"{r.path}: {r.error}" for r in torchvision_results if r.error]
    assert internal == []
    with capsys.disabled():
        print(f"\n[robustness] torchvision: {n_files} files, {n_models} models, 0 errors")


def test_parallel_equals_serial(torchvision_results: list[FileResult]) -> None:
    models_dir = TORCHVISION / "models"
    parallel = runner.analyze_paths([str(models_dir)], jobs=2)
    serial = [r for r in torchvision_results if Path(r.path).is_relative_to(models_dir)]
    assert len(parallel) == len(serial) > 40
    assert [r.to_dict() for r in parallel] == [r.to_dict() for r in serial]
