"""Help screens: flags look like flags (no `<bool>` type), on every command."""

from __future__ import annotations

import pytest
import typer.main
from normsuite.cli.main import app
from typer.core import TyperOption
from typer.testing import CliRunner

COMMANDS = ["recommend", "check", "rule", "fit", "compare", "plot-stats"]


def _flags(command: str | None) -> list[str]:
    group = typer.main.get_command(app)
    cmd = group if command is None else group.commands[command]  # type: ignore[attr-defined]
    params = cmd.params
    return [p.opts[0] for p in params if isinstance(p, TyperOption) and p.is_flag]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_shows_flags_without_a_type(command: str | None) -> None:
    args = ["--help"] if command is None else [command, "--help"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output  # before: every flag and --help showed <bool>
    for flag in [*_flags(command), "--help"]:
        line = next(line for line in result.output.splitlines() if f"{flag} " in line)
        assert "<bool>" not in line


def test_options_that_take_values_keep_their_type() -> None:
    out = CliRunner().invoke(app, ["compare", "--help"], env={"COLUMNS": "200"}).output
    seeds = next(line for line in out.splitlines() if "--seeds" in line)
    assert "<int>" in seeds
    assert "[default: runs/compare/RECIPE_NAME]" in out  # not eaten as Rich markup


def test_flags_still_parse() -> None:
    # --version is a flag of the group; with the empty metavar it still works as a flag
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("normsuite ")
