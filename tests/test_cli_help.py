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


def test_plain_flags_compose_with_custom_group_and_command_classes() -> None:
    """Other helpers set their own Typer classes (one-line errors, LightningCLI help): the
    flag display must wrap them, not replace them."""
    from normsuite.cli.help_format import apply_plain_flags
    from typer.core import TyperCommand, TyperGroup

    calls: list[str] = []

    class LoudGroup(TyperGroup):
        def invoke(self, ctx):  # type: ignore[no-untyped-def]
            calls.append("group")
            return super().invoke(ctx)

    class LoudCommand(TyperCommand):
        def invoke(self, ctx):  # type: ignore[no-untyped-def]
            calls.append("command")
            return super().invoke(ctx)

    app = typer.Typer(cls=LoudGroup)

    @app.command(cls=LoudCommand)
    def run(force: bool = typer.Option(False, "--force", help="Do it.")) -> None:
        calls.append(f"force={force}")

    @app.command()
    def other(dry: bool = typer.Option(False, "--dry", help="Dry run.")) -> None:
        calls.append(f"dry={dry}")

    apply_plain_flags(app)
    runner = CliRunner()
    for name in ("run", "other"):
        out = runner.invoke(app, [name, "--help"], env={"COLUMNS": "120"}).output
        assert "<bool>" not in out and "--help" in out
    calls.clear()
    assert runner.invoke(app, ["run", "--force"]).exit_code == 0
    assert calls == ["group", "command", "force=True"]  # the custom classes still run
