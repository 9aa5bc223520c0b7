"""`normsuite check`: flag normalization mistakes, the way ruff flags lint.

Also holds the option handling shared with `normsuite recommend`. Never imports torch or
lightning: ``--trace`` runs torch in a subprocess.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer

if TYPE_CHECKING:
    from normsuite.analysis.types import AnalysisOptions, FileResult


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"
    github = "github"


class UsageError(Exception):
    """A bad flag value; printed as one line, exit code 2."""


# ---------------------------------------------------------------- shared options

PATHS = typer.Argument(
    None, help="Files, folders (searched recursively for *.py) or - for stdin.", show_default=False
)
BATCH_SIZE = typer.Option(
    None, "--batch-size", "-b", help="Per-device batch size (wins over the file and config)."
)
DEVICES = typer.Option(None, "--devices", help="Number of devices (GPUs x nodes).")
ACCUMULATE = typer.Option(None, "--accumulate", help="Gradient accumulation steps.")
CONFIG = typer.Option(
    None,
    "--config",
    help="Training config to read batch size and devices from: LightningCLI or Hydra YAML, "
    "OpenMMLab Python config. Repeatable; later files win.",
)
FORMAT = typer.Option(OutputFormat.text, "--format", help="Output format.")
SELECT = typer.Option(
    None, "--select", help="Only these rule codes or prefixes (comma-separated, repeatable)."
)
IGNORE = typer.Option(
    None, "--ignore", help="Skip these rule codes or prefixes (comma-separated, repeatable)."
)
MAX_FILE_SIZE = typer.Option(
    None, "--max-file-size", help="Skip files larger than this many bytes (default 2 MB = 2097152)."
)
NO_CONFIG = typer.Option(False, "--isolated", help="Ignore \\[tool.normsuite] in pyproject.toml.")
JOBS = typer.Option(None, "--jobs", "-j", help="Worker processes (default: by file count).")
EXCLUDE = typer.Option(
    None,
    "--exclude",
    help="Glob patterns to leave out, replacing the defaults and `exclude` of "
    "\\[tool.normsuite] (comma-separated, repeatable).",
)
EXTEND_EXCLUDE = typer.Option(
    None,
    "--extend-exclude",
    help="Glob patterns to leave out in addition to the defaults and the config.",
)
FORCE_EXCLUDE = typer.Option(
    False,
    "--force-exclude",
    help="Apply the exclusions to paths given explicitly too (what pre-commit needs).",
)
TRACE = typer.Option(
    False,
    "--trace",
    help="RUNS YOUR CODE: import each file in a subprocess, build its models and run one "
    "forward pass to report the exact input shape of every norm layer.",
)
MODEL = typer.Option(None, "--model", help="With --trace: the model class to build.")
INPUT_SHAPE = typer.Option(None, "--input-shape", help="With --trace: input shape, e.g. 8,3,32,32.")
FIX = typer.Option(
    False, "--fix", help="Apply the fixes of the findings (safe ones only by default)."
)
DIFF = typer.Option(
    False, "--diff", help="Print the fixes as a unified diff (patch -p0) instead of applying them."
)
UNSAFE_FIXES = typer.Option(
    False,
    "--unsafe-fixes",
    help="With --fix/--diff: also fixes that change numbers or state_dict keys "
    "(bias=False, momentum=1-m).",
)


def _codes(values: list[str] | None, flag: str) -> tuple[str, ...]:
    from normsuite.analysis.config import closest_code, known_code

    codes: list[str] = []
    for value in values or []:
        for raw in value.split(","):
            if not raw.strip():
                continue
            code = known_code(raw)
            if code is None:
                raise UsageError(
                    f"unknown rule code {raw.strip()!r} in {flag}; did you mean "
                    f"{closest_code(raw)!r}? (`normsuite rule` lists the codes)"
                )
            codes.append(code)
    if values is not None and values and not codes:  # `--select ''` would run every rule
        raise UsageError(
            f"{flag} {','.join(values)!r} names no rule code; pass codes or prefixes like "
            f"NRM002 or NRM00, or leave {flag} out"
        )
    return tuple(codes)


def _positive(value: int | None, flag: str) -> int | None:
    if value is not None and value < 1:
        raise UsageError(f"{flag} must be at least 1, got {value}")
    return value


def _globs(values: list[str] | None, flag: str) -> tuple[str, ...] | None:
    """``--exclude build,dist --exclude '*.pyi'`` -> ``("build", "dist", "*.pyi")``."""
    if values is None:
        return None
    globs = tuple(g.strip() for value in values for g in value.split(",") if g.strip())
    if values and not globs:
        raise UsageError(f"{flag} {','.join(values)!r} names no pattern; pass globs like build")
    return globs


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """``"8,3,32,32"`` (or ``8x3x32x32``) -> ``(8, 3, 32, 32)``."""
    if text is None:
        return None
    parts = text.replace("x", ",").replace(" ", "").strip("()[]").split(",")
    try:
        shape = tuple(int(p) for p in parts if p)
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise UsageError(
            f"--input-shape {text!r} is not a shape; give positive integers like 8,3,32,32"
        )
    return shape


def run_analysis(
    command: Literal["check", "recommend"],
    *,
    paths: list[str] | None,
    batch_size: int | None,
    devices: int | None,
    accumulate: int | None,
    config: list[Path] | None,
    output_format: OutputFormat,
    select: list[str] | None,
    ignore: list[str] | None,
    max_file_size: int | None,
    isolated: bool,
    jobs: int | None,
    trace: bool,
    model: str | None,
    input_shape: str | None,
    fix: bool = False,
    diff: bool = False,
    unsafe_fixes: bool = False,
    all_modules: bool = False,
    exclude: list[str] | None = None,
    extend_exclude: list[str] | None = None,
    force_exclude: bool = False,
) -> None:
    """Parse the shared options, analyze, print, and exit with ruff's codes."""
    from normsuite.analysis.config import ConfigError
    from normsuite.analysis.runner import RunSettings, analyze_paths
    from normsuite.analysis.types import AnalysisOptions

    try:
        if not paths:
            raise UsageError("no paths given; pass files, folders or - for stdin")
        configs = _read_configs(config or [], command)
        if (model or input_shape) and not trace:
            raise UsageError("--model and --input-shape only apply with --trace")
        if trace and "-" in paths:
            raise UsageError("--trace needs files on disk, not stdin")
        if (fix or diff) and "-" in paths:
            raise UsageError("--fix and --diff need files on disk, not stdin")
        if unsafe_fixes and not (fix or diff):
            raise UsageError("--unsafe-fixes only applies with --fix or --diff")
        shape = parse_shape(input_shape)
        options = AnalysisOptions(
            batch_size=_positive(batch_size, "--batch-size"),
            devices=_positive(devices, "--devices"),
            accumulate=_positive(accumulate, "--accumulate"),
            config_paths=configs,
            select=_codes(select, "--select"),
            ignore=_codes(ignore, "--ignore"),
        )
        settings = RunSettings(
            max_file_size=_positive(max_file_size, "--max-file-size"),
            use_config=not isolated,
            strict_config=True,
            exclude=_globs(exclude, "--exclude"),
            extend_exclude=_globs(extend_exclude, "--extend-exclude") or (),
            force_exclude=force_exclude,
        )
        _positive(jobs, "--jobs")
        skipped: list[str] = []
        results = analyze_paths(paths, options, settings=settings, jobs=jobs, skipped=skipped)
        for line in skipped:  # fifos, devices, sockets: never opened
            typer.echo(f"normsuite {command}: warning: {line}", err=True)
        if command == "recommend" and not all_modules:
            from normsuite.analysis.usage import hide_blocks

            results = hide_blocks(results)  # advise models; blocks are judged in them
    except (UsageError, ConfigError) as exc:
        typer.echo(f"normsuite {command}: error: {exc}", err=True)
        raise typer.Exit(2) from None

    if not results:
        typer.echo(f"normsuite {command}: warning: no Python files found in the paths", err=True)
    if fix or diff:
        results, changed = _fix(results, options, settings, write=not diff, unsafe=unsafe_fixes)
        if diff:
            raise typer.Exit(2 if any(r.error for r in results) else int(changed > 0))
    traces = _run_traces(results, options, model, shape) if trace else None
    emit(results, command=command, output_format=output_format, traces=traces)
    raise typer.Exit(exit_code(results, command=command, traces=traces))


def _read_configs(paths: list[Path], command: str) -> tuple[str, ...]:
    """Check the --config files up front (one line, exit 2, on a bad one) and say so when
    they hold no batch or devices key instead of ignoring them silently."""
    from normsuite.analysis.configs import ConfigReadError, read_configs

    for path in paths:
        if not path.is_file():
            raise UsageError(f"--config {path}: no such file; pass a LightningCLI YAML file")
    names = tuple(str(p) for p in paths)
    if not names:
        return names
    try:
        scan = read_configs(names)
    except ConfigReadError as exc:
        raise UsageError(str(exc)) from None
    for note in scan.notes:
        typer.echo(f"normsuite {command}: note: {note}", err=True)
    if scan.empty:
        typer.echo(
            f"normsuite {command}: note: no batch size or devices key found in --config "
            f"{', '.join(names)}; the batch comes from the code or --batch-size",
            err=True,
        )
    return names


def _fix(
    results: list[FileResult],
    options: AnalysisOptions,
    settings: object,
    *,
    write: bool,
    unsafe: bool,
) -> tuple[list[FileResult], int]:
    """Fix each file's findings (``write``) or print the fixes as a diff; returns the
    results, every fixed file analyzed again, and how many files changed. A file is
    rewritten only when its fixed text parses and has no finding the original did not have
    (fixes.fix_source)."""
    from normsuite.analysis.config import FileConfig, find_config
    from normsuite.analysis.fixes import fix_source, fixes_for, unified_diff
    from normsuite.analysis.runner import analyze_text

    out: list[FileResult] = []
    diffs: list[str] = []
    fixed = hidden = 0
    for result in results:
        if result.error or not result.findings:
            out.append(result)
            continue
        path = Path(result.path)
        try:
            source = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            out.append(result)  # not UTF-8 (or gone): reported, never rewritten
            continue
        config = find_config(result.path) if getattr(settings, "use_config", True) else FileConfig()

        def check(text: str, _path: str = result.path, _config: FileConfig = config):
            return analyze_text(text, _path, options, config=_config).findings

        new, applied = fix_source(source, result.findings, check, unsafe=unsafe)
        if not unsafe:
            hidden += sum(not x.safe for x in fixes_for(source, result.findings, True))
        if not applied or new == source:
            out.append(result)
            continue
        if not write:
            fixed += len(applied)
            diffs.append(unified_diff(result.path, source, new))
            out.append(result)
            continue
        try:
            path.write_bytes(new.encode("utf-8"))
        except OSError as exc:  # read-only file or folder: say so, keep the others going
            reason = exc.strerror or type(exc).__name__
            error = f"cannot write fixes ({reason}); check the file's permissions"
            out.append(replace(result, error=error))
            continue
        fixed += len(applied)
        diffs.append(result.path)
        out.append(analyze_text(new, result.path, options, config=config))
    if not write:
        for text in diffs:
            typer.echo(text, nl=False)
    verb = "Fixed" if write else "Would fix"
    noun = "finding" if fixed == 1 else "findings"
    verb_have = "has" if hidden == 1 else "have"
    more = f"; {hidden} {verb_have} an unsafe fix (--unsafe-fixes)" if hidden > 0 else ""
    typer.echo(f"{verb} {fixed} {noun}{more}.", err=True)
    return out, len(diffs)


def _run_traces(
    results: list[FileResult],
    options: AnalysisOptions,
    model: str | None,
    shape: tuple[int, ...] | None,
) -> dict[str, dict]:
    from normsuite.analysis.trace import trace_file

    return {
        r.path: trace_file(
            r.path, static=r, options=options, model=model, input_shape=shape
        ).to_dict()
        for r in results
        if not r.error
    }


def exit_code(
    results: list[FileResult],
    *,
    command: Literal["check", "recommend"],
    traces: dict[str, dict] | None = None,
) -> int:
    """ruff's convention: 2 when a file could not be analyzed (or traced) or only in part
    (a cap was hit), else 1 when ``check`` has findings, else 0."""
    if any(r.error or r.incomplete for r in results) or any(
        t.get("error") for t in (traces or {}).values()
    ):
        return 2
    if command == "check" and any(r.findings for r in results):
        return 1
    return 0


def emit(
    results: list[FileResult],
    *,
    command: Literal["check", "recommend"],
    output_format: OutputFormat,
    traces: dict[str, dict] | None = None,
) -> None:
    """Print results in the chosen format; file errors also go to stderr, one line each."""
    from normsuite.analysis import report

    for result in results:
        if result.error:
            typer.echo(report.error_line(result), err=True)
        for notice in result.notices:
            typer.echo(report.notice_line(result, notice), err=True)
    for path, trace in (traces or {}).items():
        if trace.get("error"):
            typer.echo(f"{path}: trace error: {trace['error']}", err=True)
    if output_format is OutputFormat.json:
        typer.echo(report.render_json(results, command=command, traces=traces))
    elif output_format is OutputFormat.sarif:
        from normsuite.analysis.sarif import render_sarif

        typer.echo(render_sarif(results))
    elif output_format is OutputFormat.github:
        text = report.render_github(results, command=command)
        if text:
            typer.echo(text)
    elif not _may_be_terminal(sys.stdout):
        typer.echo(report.render_plain(results, command=command, traces=traces))
    else:
        from rich.console import Console

        console = Console(file=sys.stdout)
        if console.is_terminal:
            report.render_rich(results, console, command=command, traces=traces)
        else:
            typer.echo(report.render_plain(results, command=command, traces=traces))


def _may_be_terminal(stream: object) -> bool:
    """False only where rich's ``Console.is_terminal`` is sure to say False: no
    TTY_COMPATIBLE/FORCE_COLOR override and not a tty. Piped output then skips importing
    rich.console (~20 ms CPU of ~0.25 s start-up); anything else is left to rich."""
    if os.environ.get("TTY_COMPATIBLE") == "1" or "FORCE_COLOR" in os.environ:
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except ValueError:  # a closed stream (rich says False too)
        return False


def check(
    paths: list[str] | None = PATHS,
    batch_size: int | None = BATCH_SIZE,
    devices: int | None = DEVICES,
    accumulate: int | None = ACCUMULATE,
    config: list[Path] | None = CONFIG,
    output_format: OutputFormat = FORMAT,
    select: list[str] | None = SELECT,
    ignore: list[str] | None = IGNORE,
    max_file_size: int | None = MAX_FILE_SIZE,
    isolated: bool = NO_CONFIG,
    jobs: int | None = JOBS,
    trace: bool = TRACE,
    model: str | None = MODEL,
    input_shape: str | None = INPUT_SHAPE,
    fix: bool = FIX,
    diff: bool = DIFF,
    unsafe_fixes: bool = UNSAFE_FIXES,
    exclude: list[str] | None = EXCLUDE,
    extend_exclude: list[str] | None = EXTEND_EXCLUDE,
    force_exclude: bool = FORCE_EXCLUDE,
) -> None:
    """Flag normalization mistakes (rules NRM001-NRM014) without running the code.

    Exit code: 0 clean, 1 findings, 2 a file could not be analyzed (or only in part: a cap
    was hit) or bad options. --fix applies safe fixes (behaviour kept), --unsafe-fixes
    also those that change numbers or checkpoint keys; --diff prints them (exit 1 when
    there is one).
    Suppress a finding with `# noqa: NRM002` on its line; configure with \\[tool.normsuite]
    in pyproject.toml (select, ignore, batch-size, max-file-size, exclude, extend-exclude).
    """
    run_analysis(
        "check",
        paths=paths,
        batch_size=batch_size,
        devices=devices,
        accumulate=accumulate,
        config=config,
        output_format=output_format,
        select=select,
        ignore=ignore,
        max_file_size=max_file_size,
        isolated=isolated,
        jobs=jobs,
        trace=trace,
        model=model,
        input_shape=input_shape,
        fix=fix,
        diff=diff,
        unsafe_fixes=unsafe_fixes,
        exclude=exclude,
        extend_exclude=extend_exclude,
        force_exclude=force_exclude,
    )
