"""Entry point of the ``normsuite`` command: builds the Typer app from the command modules."""

from __future__ import annotations

import typer

from normsuite import __version__

from .advise import advise
from .check import check
from .compare import compare
from .errors import OneLineErrorGroup
from .fit import fit
from .help_format import apply_plain_flags
from .plot_stats import plot_stats
from .recommend import recommend
from .rule import rule

app = typer.Typer(
    name="normsuite",
    help="Choose, inject and watch normalization layers (BN, LN, GN, ...) in PyTorch models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=OneLineErrorGroup,  # usage errors of every command in one line, exit 2
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"normsuite {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version_callback,
        is_eager=True,
        help="Show the version and exit.",
    ),
) -> None:
    """Choose, inject and watch normalization layers (BN, LN, GN, ...) in PyTorch models."""


app.command("recommend")(recommend)
app.command("advise")(advise)
app.command("check")(check)
app.command("rule")(rule)
app.command(
    "fit",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)(fit)
app.command("compare")(compare)
app.command("plot-stats")(plot_stats)
apply_plain_flags(app)  # flags show no `<bool>` type in --help; keep after the commands


def main() -> None:
    """Console-script entry point."""
    app(prog_name="normsuite")  # the same name in errors whether run as a script or -m


if __name__ == "__main__":  # pragma: no cover
    main()
