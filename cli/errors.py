"""Usage errors in one line, for every command: ``normsuite check: error: invalid value for
'--batch-size': 'abc' is not an integer`` (exit code 2), instead of Typer's 5-6 line box.

:class:`OneLineErrorGroup` is the Typer group class of the ``normsuite`` app: it runs Click
with ``standalone_mode=False`` so that Click's ``UsageError`` reaches it, and prints the
error the way ruff does. It works for ``main()`` and for ``CliRunner().invoke(app, ...)``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

# Typer >= 0.24 vendors Click (typer._click); older Typer uses click itself. Both raise
# typer.BadParameter, whose bases are that Click's UsageError and ClickException.
_BASES = {cls.__name__: cls for cls in typer.BadParameter.__mro__}
UsageError: type[Exception] = _BASES["UsageError"]
ClickException: type[Exception] = _BASES["ClickException"]

# pydantic error types (Typer >= 0.24 coerces with pydantic) -> what the value is not
_NOT_A = {
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "bool_parsing": "a boolean (true or false)",
}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _sentence(text: str) -> str:
    """Click's ``"No such option: --x."`` -> ``"no such option: --x"``."""
    text = _one_line(text).rstrip(".")
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def _option(param: Any) -> str:
    """The name a user typed for a parameter: its long option, else its first name."""
    opts = list(getattr(param, "opts", None) or [])
    longs = [o for o in opts if o.startswith("--")]
    if longs:
        return longs[0]
    return opts[0] if opts else str(getattr(param, "name", "value"))


def _bad_value(exc: Exception) -> str:
    """``invalid value for '--batch-size': 'abc' is not an integer``."""
    name = _option(getattr(exc, "param", None))
    cause = exc.__cause__
    errors = cause.errors() if hasattr(cause, "errors") else []  # pydantic ValidationError
    if errors:
        error = errors[0]
        value = error.get("input")
        what = _NOT_A.get(str(error.get("type")))
        if what is not None:
            return f"invalid value for '{name}': {value!r} is not {what}"
        reason = str(error.get("msg", "")).removeprefix("Value error, ")
        return f"invalid value for '{name}': {_sentence(reason)}"
    message = getattr(exc, "message", "") or str(exc)
    return f"invalid value for '{name}': {_sentence(message)}"


def reason(exc: Exception) -> str:
    """The one-line reason of a Click usage error, ruff's wording where ruff has one."""
    kind = type(exc).__name__
    if kind == "BadParameter" and getattr(exc, "param", None) is not None:
        return _bad_value(exc)
    if kind == "NoSuchOption":
        text = f"unknown option '{exc.option_name}'"  # type: ignore[attr-defined]
        close = list(getattr(exc, "possibilities", None) or [])
        if close:
            text += f" (did you mean {', '.join(repr(p) for p in close)}?)"
        return text
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    if kind == "UsageError" and message.startswith("No such command"):
        return f"unknown command {message.split(' ', 3)[-1].rstrip('.')}"
    return _sentence(message)


def error_line(exc: Exception, command: str | None = None) -> str:
    """``<command path>: error: <reason>`` plus where to look, in one line. ``command``
    names the sub-command when Click's error carries no context of its own."""
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None and ctx.command_path else "normsuite"
    if command and path == "normsuite":
        path = f"normsuite {command}"
    return f"{path}: error: {reason(exc)} (see '{path} --help')"


class OneLineErrorGroup(TyperGroup):
    """Typer's group, with Click usage errors printed as one line and exit code 2."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # `normsuite` alone: the help
                return super().main(args, prog_name, complete_var, standalone_mode, **extra)
            if not standalone_mode:
                raise
            args_list = list(sys.argv[1:] if args is None else args)
            command = next((a for a in args_list if a in self.commands), None)
            typer.echo(error_line(exc, command), err=True)
            sys.exit(2)
        except ClickException as exc:  # a file Click could not open, ...
            if not standalone_mode:
                raise
            typer.echo(f"normsuite: error: {_sentence(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        except typer.Abort:
            if not standalone_mode:
                raise
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)
