"""Every usage error is one line, ``normsuite <command>: error: ...``, exit code 2, for every
command (Click's own errors included), and never a traceback."""

from __future__ import annotations

import subprocess
import sys
from enum import Enum
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


def _options() -> list[tuple[str, str, object]]:
    """(command, long option, value type) for every option that takes a value, found from
    the app itself so that a new option is covered without editing this test."""
    import typer

    group = typer.main.get_command(app)
    found = []
    for name, command in group.commands.items():
        if name == "fit":  # its options belong to LightningCLI (tests/test_fit_cli.py)
            continue
        for param in command.params:
            longs = [o for o in param.opts if o.startswith("--")]
            if not longs or getattr(param, "is_flag", False) or param.name == "version":
                continue
            kind = getattr(param, "type", None)  # click < 8.2 / Typer < 0.24
            if kind is None and hasattr(param, "get_runtime_param"):
                kind = getattr(param.get_runtime_param(), "annotation", None)
            found.append((name, longs[0], kind))
    return found


OPTIONS = _options()
OPTION_IDS = [f"{c} {o}" for c, o, _ in OPTIONS]


@pytest.mark.parametrize(("command", "option", "kind"), OPTIONS, ids=OPTION_IDS)
def test_every_option_without_its_value_is_one_line(command: str, option: str, kind: object):
    res = CliRunner().invoke(app, [command, option])
    assert res.exit_code == 2, res.output
    (line,) = res.output.strip().splitlines()
    assert line.startswith(f"normsuite {command}: error: option '{option}' requires an argument")


TYPED = [
    (c, o, k)
    for c, o, k in OPTIONS
    if k in (int, float) or (isinstance(k, type) and issubclass(k, Enum))
]


@pytest.mark.parametrize(
    ("command", "option", "kind"), TYPED, ids=[f"{c} {o}" for c, o, _ in TYPED]
)
def test_every_typed_option_with_a_bad_value_is_one_line(command: str, option: str, kind: object):
    res = CliRunner().invoke(app, [command, option, "zz"])
    assert res.exit_code == 2, res.output
    (line,) = res.output.strip().splitlines()
    assert line.startswith(f"normsuite {command}: error: invalid value for '{option}': 'zz' ")
    want = {int: "is not an integer", float: "is not a number"}.get(kind, "is not one of")
    assert want in line


@pytest.mark.parametrize("command", sorted({c for c, _, _ in OPTIONS} | {"rule"}))
def test_every_command_rejects_an_unknown_option_in_one_line(command: str) -> None:
    res = CliRunner().invoke(app, [command, "--no-such-option"])
    assert res.exit_code == 2, res.output
    (line,) = res.output.strip().splitlines()
    assert line.startswith(f"normsuite {command}: error: unknown option '--no-such-option'")
