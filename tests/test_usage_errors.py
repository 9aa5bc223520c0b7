"""Every usage error is one line, ``normsuite <command>: error: ...``, exit code 2, for every
command (Click's own errors included), and never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from normsuite.cli.main import app
from typer.testing import CliRunner

from normsuite.analysis import config as cfg

CASES = [
    (
        ["check", "x.py", "--batch-size", "abc"],
        "normsuite check: error: invalid value for '--batch-size': 'abc' is not an integer",
    ),
    (
        ["recommend", "x.py", "-b", "1.5"],
        "normsuite recommend: error: invalid value for '--batch-size': '1.5' is not an integer",
    ),
    (
        ["check", "x.py", "--format", "xml"],
        "normsuite check: error: invalid value for '--format': 'xml' is not one of 'text', "
        "'json', 'sarif', 'github'",
    ),
    (["check", "x.py", "--bogus"], "normsuite check: error: unknown option '--bogus'"),
    (["bogus"], "normsuite: error: unknown command 'bogus'"),
    (["check", "x.py", "-b"], "normsuite check: error: option '-b' requires an argument"),
    (
        ["check", "--isolated=3", "x.py"],
        "normsuite check: error: option '--isolated' does not take a value",
    ),
    (["rule", "a", "b"], "normsuite rule: error: got unexpected extra argument(s) (b)"),
    (["rule", "--zzz"], "normsuite rule: error: unknown option '--zzz'"),
    (["plot-stats"], "normsuite plot-stats: error: missing argument 'source'"),
    (["compare", "--epochs", "x"], "normsuite compare: error: invalid value for '--epochs': 'x'"),
    (
        ["advise", "--arch", "cnnx"],
        "normsuite advise: error: invalid value for '--arch': 'cnnx' is not one of",
    ),
    (["advise"], "normsuite advise: error: missing option '--arch'"),
    (["advise", "--arch", "cnn2d", "-b", "0"], "normsuite advise: error: --batch-size must be"),
    (
        ["check", "x.py", "--select", ""],
        "normsuite check: error: --select '' names no rule code",
    ),
    (["recommend", "x.py", "--ignore", " , "], "normsuite recommend: error: --ignore ' , '"),
    (["check", "x.py", "--exclude", ","], "normsuite check: error: --exclude ',' names no"),
]


@pytest.mark.parametrize(("args", "start"), CASES, ids=[" ".join(a) or "-" for a, _ in CASES])
def test_usage_error_is_one_line_exit_2(args: list[str], start: str) -> None:
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert lines[0].startswith(start), lines[0]
    assert "Traceback" not in res.output and "╭" not in res.output


def test_console_script_prints_the_same_line_on_stderr() -> None:
    """Through main() (the installed entry point), not only the test runner."""
    code = "from normsuite.cli.main import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "check", "x.py", "--batch-size", "abc"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "normsuite check: error: invalid value for '--batch-size': 'abc' is not an integer "
        "(see 'normsuite check --help')"
    ]


def test_help_and_version_still_exit_0() -> None:
    for args in (["--help"], ["check", "--help"], ["advise", "--help"], ["--version"]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, (args, res.output)


def test_every_problem_of_a_config_table_at_once(tmp_path: Path) -> None:
    cfg.clear_cache()
    (tmp_path / "pyproject.toml").write_text(
        '[tool.normsuite]\nselct = ["NRM002"]\nbatch-size = 0\nignore = ["NMR002"]\n'
        "extend-exclude = 3\n"
    )
    (tmp_path / "m.py").write_text("x = 1\n")
    res = CliRunner().invoke(app, ["check", str(tmp_path)])
    assert res.exit_code == 2
    (line,) = res.output.strip().splitlines()
    assert line.startswith(f"normsuite check: error: {tmp_path / 'pyproject.toml'} ")
    assert "4 problems: (1) unknown key 'selct'" in line
    for needle in (
        "unknown rule code 'NMR002' in `ignore`; did you mean 'NRM002'?",
        "`batch-size` must be a positive integer, got 0",
        "`extend-exclude` must be a list of glob patterns",
    ):
        assert needle in line
    cfg.clear_cache()
