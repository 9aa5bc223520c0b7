"""``normsuite fit --config recipes/X.yaml [LightningCLI overrides]``."""

from __future__ import annotations

import os
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
    """Fail early, in one line, on a missing file or bad YAML (before importing lightning)."""
    import yaml

    file = Path(path)
    if not file.is_file():
        raise _fail(f"config file {path!r} not found; pass an existing YAML, e.g. recipes/*.yaml")
    try:
        content = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise _fail(f"{path}: {problem}{where}; fix the YAML syntax") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot read {path}: {exc}") from None
    if content is not None and not isinstance(content, dict):
        raise _fail(f"{path} must hold a mapping (trainer:, model:, data:), not a list or value")


def fit(ctx: typer.Context) -> None:
    """Train with LightningCLI: normsuite fit --config recipes/X.yaml [--trainer.max_epochs 3 ...].

    Every LightningCLI option works (run with --print_config to see the full config).
    Logs and checkpoints go to runs/<config name>/version_N/ (printed at the end).
    """
    args = list(ctx.args)
    for path in _config_paths(args):
        _check_config(path)
    if not args:
        raise _fail(
            "no config given; run e.g. normsuite fit --config recipes/mnist1d_convnet1d_bn.yaml"
        )

    from normsuite.training.fit import run_fit  # lightning is imported only here (~7 s)

    try:
        run_fit(args)
    except SystemExit as exc:
        # jsonargparse already printed its one-line error (and usage) for bad options.
        code = exc.code if isinstance(exc.code, int) else 2
        if code:
            raise typer.Exit(2) from None
        raise typer.Exit(0) from None
    except KeyboardInterrupt:
        raise _fail("interrupted") from None
    except Exception as exc:
        if os.environ.get("NORMSUITE_DEBUG"):
            raise
        message = _one_line(str(exc))
        if type(exc).__name__ == "FitConfigError":
            raise _fail(f"{message}; see the valid keys with --print_config") from None
        raise _fail(
            f"{type(exc).__name__}: {message} (set NORMSUITE_DEBUG=1 for the traceback)"
        ) from None


def _one_line(message: str) -> str:
    """The most specific line of a (jsonargparse) error message.

    jsonargparse wraps a class's own error ("unknown norm 'bnn'. Did you mean 'bn'?") in
    "Does not validate against any of the Union subtypes ... Errors: - ..."; show that one.
    """
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    bullets = [
        line[2:] for line in lines if line.startswith("- ") and "Expected a <class" not in line
    ]
    if bullets:
        return bullets[0]
    return lines[0] if lines else "failed"
