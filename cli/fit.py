"""``normsuite fit --config recipes/X.yaml [LightningCLI overrides]``."""

from __future__ import annotations

import os
import re
from pathlib import Path

import typer


def _fail(message: str) -> typer.Exit:
    typer.echo(f"normsuite fit: {message}", err=True)
    return typer.Exit(2)


def _config_paths(args: list[str]) -> list[str]:
    paths = []
    for i, arg in enumerate(args):
        if arg in ("--config", "-c"):
            if i + 1 >= len(args):
                raise _fail(
                    "--config needs a file, e.g. --config recipes/mnist1d_convnet1d_bn.yaml"
                )
            paths.append(args[i + 1])
        elif arg.startswith("--config="):
            paths.append(arg.split("=", 1)[1])
    return paths


def _check_config(path: str) -> None:
    """Fail early, in one line, on a missing file, bad YAML or a config over a cap (size,
    aliases, expanded size): before importing lightning, and before jsonargparse expands it."""
    from normsuite._yaml_limits import YAMLLimitError, load_yaml, read_config_text

    if not Path(path).exists():
        raise _fail(f"config file {path!r} not found; pass an existing YAML, e.g. recipes/*.yaml")
    try:
        read_config_text(path)  # size cap and regular file first: nothing big is parsed
        content = load_yaml(path)
    except YAMLLimitError as exc:
        raise _fail(str(exc)) from None
    if content is not None and not isinstance(content, dict):
        raise _fail(f"{path} must hold a mapping (trainer:, model:, data:), not a list or value")


def _check_inline_yaml(args: list[str]) -> None:
    """Option values are YAML to jsonargparse too: hold them to the same alias caps."""
    from normsuite._yaml_limits import YAMLLimitError, check_yaml_text

    for i, arg in enumerate(args):
        value = arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg else arg
        if "&" in value and "*" in value:
            name = args[i - 1] if i and not arg.startswith("--") else arg.split("=", 1)[0]
            try:
                check_yaml_text(value, f"value of {name}")
            except YAMLLimitError as exc:
                if "cap" in str(exc) or "recursive" in str(exc):
                    raise _fail(str(exc)) from None


HELP = typer.Option(
    False,
    "--help",
    "-h",
    help="Show every LightningCLI option (trainer, model, data, ckpt_path, ...) and exit.",
)


def fit(ctx: typer.Context, show_help: bool = HELP) -> None:
    """Train with LightningCLI: normsuite fit --config recipes/X.yaml [--trainer.max_epochs 3 ...].

    Every LightningCLI option works (--help lists them, --print_config shows the full
    config). Logs and checkpoints go to runs/<config name>/version_N/ (printed at start and
    end). Resume with --ckpt_path PATH or --ckpt_path last; Ctrl+C or SIGTERM stop after the
    current batch, save last.ckpt and print the command that resumes.
    """
    args = list(ctx.args)
    if show_help:
        args.append("--help")  # LightningCLI's help, with the options of a given --config's classes
    for path in _config_paths(args):
        _check_config(path)
    _check_inline_yaml(args)
    if not args:
        raise _fail(
            "no config given; run e.g. normsuite fit --config recipes/mnist1d_convnet1d_bn.yaml"
        )

    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from normsuite.training.fit import run_fit  # lightning is imported only here (~7 s)

    try:
        run_fit(args)
    except SIGTERMException as exc:
        # InterruptCheckpoint printed the checkpoint and the resume command; 128 + signal, as
        # a shell reports a process stopped by it (SLURM and schedulers read this).
        code = 130 if getattr(exc, "normsuite_signal", "SIGTERM") == "SIGINT" else 143
        raise typer.Exit(code) from None
    except SystemExit as exc:
        # jsonargparse already printed --help / --print_config, or its one-line error.
        code = exc.code if isinstance(exc.code, int) else 2
        if code:
            raise typer.Exit(2) from None
        raise typer.Exit(0) from None
    except KeyboardInterrupt:
        raise _fail("interrupted") from None
    except Exception as exc:
        if os.environ.get("NORMSUITE_DEBUG"):
            raise
        name = type(exc).__name__
        if name == "FitConfigError":
            raise _fail(f"{_one_line(str(exc))}; see the valid keys with --help") from None
        if name == "CheckpointError":
            raise _fail(str(exc)) from None
        raise _fail(
            f"{name}: {_one_line(str(exc))} (set NORMSUITE_DEBUG=1 for the traceback)"
        ) from None


_KEY = re.compile(r'Parser key "([^"]+)"')
_VALUE = re.compile(r"(?:Given|Got) value: (.*)$", re.M)
_CLASS = re.compile(r"<class '(?:[\w.]+\.)?(\w+)'>")


def _type_names(text: str) -> str:
    """``[list[int], <class 'NoneType'>]`` -> ``list[int] or None``."""
    inner = text.strip().removeprefix("[").removesuffix("]")
    names = [
        _CLASS.sub(r"\1", part.strip()).replace("NoneType", "None") for part in inner.split(",")
    ]
    return " or ".join(dict.fromkeys(n for n in names if n))


def _one_line(message: str) -> str:
    """One line with the option and the reason from a (jsonargparse) error message.

    jsonargparse nests its reasons: ``Parser key "model": ... - Parser key "widths": ...
    Subtypes: [list[int], <class 'NoneType'>] ... Given value: x``. This keeps the option
    path, the class's own error where there is one ("unknown norm 'bnn'. Did you mean
    'bn'?"), else what was expected and what was given:
    ``model.init_args.widths: expected list[int] or None, got 'x'``.
    """
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "failed"
    keys = _KEY.findall(message)
    own = [
        line[2:]
        for line in lines
        if line.startswith("- ")
        and not line.startswith(("- Expected a <class", "- Parser key", "- Problem with given"))
    ]
    if not keys:
        return own[0] if own else lines[0]
    outer, inner = keys[0], keys[-1]
    where = f"{outer}.init_args.{inner}" if outer in ("model", "data") and inner != outer else inner
    if own:
        return f"{where}: {own[0]}"
    subtypes = [line.split(":", 1)[1] for line in lines if line.startswith("Subtypes:")]
    expected = re.findall(r"Expected a (<class '[\w.]+'>)", message)
    if len(subtypes) >= (2 if outer in ("model", "data") and inner != outer else 1):
        types = _type_names(subtypes[-1])
    elif expected:
        types = _type_names(", ".join(expected[:1]))
    else:
        rest = [line for line in lines[1:] if not line.startswith("Parser key")]
        return f"{where}: {rest[0] if rest else 'invalid value'}"
    values = [v.strip() for v in _VALUE.findall(message) if not v.startswith("NestedArg(")]
    got = f", got {values[0]!r}" if values else ""
    return f"{where}: expected {types}{got}"
