"""Analyze many paths: discovery, per-file isolation, config, suppression, parallelism.

Each file is analyzed on its own: whatever goes wrong in one file becomes a one-line
``FileResult.error`` for that file and the others are still analyzed.

Example:
    >>> from normsuite.analysis.runner import analyze_paths
    >>> results = analyze_paths(["recipes/models"])            # doctest: +SKIP
    >>> [f.code for r in results for f in r.findings]         # doctest: +SKIP
    ['NRM001', 'NRM002']
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

from normsuite.analysis.config import ConfigError, FileConfig, find_config, rule_enabled
from normsuite.analysis.exclude import Excludes
from normsuite.analysis.files import (
    DEFAULT_MAX_FILE_SIZE,
    STDIN,
    SourceError,
    Target,
    decode_source,
    discover,
    read_source,
)
from normsuite.analysis.limits import too_big
from normsuite.analysis.noqa import filter_findings, unknown_noqa_codes
from normsuite.analysis.types import AnalysisOptions, FileResult

if TYPE_CHECKING:
    import multiprocessing.context

Analyzer = Callable[[str, str, AnalysisOptions], FileResult]

# Below this many files a process pool costs more than it saves. bench/analyzer_speed.py
# measures the crossover; on the 2-core shared CI box the pool (jobs=2) took 2.9x / 2.3x /
# 1.7x the serial time at 16 / 32 / 64 files and 0.95x / 0.83x at 128 / 185 (the torchvision
# tree): one file takes ~2-10 ms, a fork-started worker pool ~0.2 s. More cores move it down.
PARALLEL_MIN_FILES = 120


@dataclass(frozen=True)
class RunSettings:
    """How to run, as opposed to what the analysis assumes (that is AnalysisOptions)."""

    max_file_size: int | None = None  # None: [tool.normsuite] max-file-size, else 2 MB
    use_config: bool = True  # read [tool.normsuite] from the nearest pyproject.toml
    # True: a bad [tool.normsuite] raises ConfigError before any file is analyzed (the CLI:
    # one line, exit 2, like ruff); False: it becomes the error of each file it applies to
    strict_config: bool = False
    # ruff's --exclude (replaces the defaults and the table's `exclude`), --extend-exclude
    # and --force-exclude (apply them to paths given explicitly); see analysis/exclude.py
    exclude: tuple[str, ...] | None = None
    extend_exclude: tuple[str, ...] = ()
    force_exclude: bool = False


def _default_analyzer() -> Analyzer:
    from normsuite.analysis.analyze import analyze_source

    return analyze_source


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _error_for(exc: BaseException) -> str:
    """The one-line message for an exception raised while analyzing a file."""
    if isinstance(exc, SyntaxError):
        where = f" at line {exc.lineno}" if exc.lineno else ""
        if exc.lineno and exc.offset:
            where += f", column {exc.offset}"
        return f"syntax error{where}: {_one_line(exc.msg)}; fix the syntax or exclude the file"
    if isinstance(exc, RecursionError):
        return "expression nested too deeply to analyze; simplify it or exclude the file"
    if isinstance(exc, MemoryError):  # the parser's stack overflow on absurd nesting
        return "ran out of memory (nesting too deep to parse?); exclude the file"
    if isinstance(exc, (ValueError, UnicodeError)):
        return f"cannot analyze: {_one_line(str(exc))}"
    return f"internal error: {type(exc).__name__}: {_one_line(str(exc))} (please report)"


def _error_location(exc: BaseException) -> tuple[int | None, int | None]:
    """(line, column), 1-based, of a syntax error; (None, None) for errors without a place."""
    if isinstance(exc, SyntaxError) and exc.lineno:
        return exc.lineno, exc.offset if exc.offset and exc.offset > 0 else None
    return None, None


def analyze_text(
    source: str,
    path: str,
    options: AnalysisOptions,
    *,
    config: FileConfig = FileConfig(),
    analyzer: Analyzer | None = None,
) -> FileResult:
    """Analyze one source text; never raises for bad input (the error goes in the result)."""
    if config.batch_size is not None and options.default_batch_size is None:
        options = replace(options, default_batch_size=config.batch_size)
    try:
        analyze = analyzer or _default_analyzer()
    except Exception as exc:  # a broken install is our bug, never the user's syntax error
        message = f"{type(exc).__name__}: {_one_line(str(exc))}"
        return FileResult(path=path, error=f"internal error: {message} (please report)")
    try:
        result = analyze(source, path, options)
    except Exception as exc:  # per-file isolation: one file never stops the others
        line, col = _error_location(exc)
        if isinstance(exc, (MemoryError, RecursionError)):  # say what was too big
            return FileResult(path=path, error=too_big(exc, source))
        return FileResult(path=path, error=_error_for(exc), error_line=line, error_col=col)
    findings = [
        f
        for f in result.findings
        if rule_enabled(f.code, cli_select=options.select, cli_ignore=options.ignore, config=config)
    ]
    findings = filter_findings(findings, source)
    findings.sort(key=lambda f: (f.line, f.col, f.code))
    return FileResult(
        path=path,
        models=result.models,
        findings=findings,
        error=result.error,
        notices=[*result.notices, *unknown_noqa_codes(source)],
    )


def _analyze_target(
    target: Target,
    options: AnalysisOptions,
    settings: RunSettings,
    stdin_text: str | None,
    analyzer: Analyzer | None = None,
) -> list[FileResult]:
    """The results of one target: one, or one per cell of a notebook with findings."""
    if not target.path.endswith(".ipynb"):
        return [_analyze_one(target, options, settings, stdin_text, analyzer)]
    from normsuite.analysis.notebook import NotebookError, read_notebook, split_result

    try:
        nb = read_notebook(read_source(target.path), target.path)
    except (SourceError, NotebookError) as exc:
        return [FileResult(path=target.path, error=str(exc))]
    as_text = Target(target.path)
    return split_result(_analyze_one(as_text, options, settings, nb.text, analyzer), nb)


def _analyze_one(
    target: Target,
    options: AnalysisOptions,
    settings: RunSettings,
    stdin_text: str | None,
    analyzer: Analyzer | None = None,
) -> FileResult:
    if target.error:
        return FileResult(path=target.path, error=target.error)
    try:
        config = find_config(target.path) if settings.use_config else FileConfig()
    except ConfigError as exc:
        return FileResult(path=target.path, error=str(exc))
    max_size = settings.max_file_size or config.max_file_size or DEFAULT_MAX_FILE_SIZE
    try:
        if target.path == STDIN or target.path.endswith(".ipynb"):
            source = stdin_text or ""  # stdin, or a notebook's code cells
            if len(source) > max_size:
                raise SourceError(f"stdin is over the {max_size} byte limit; raise --max-file-size")
        else:
            source = read_source(target.path, max_size=max_size)
    except SourceError as exc:
        return FileResult(path=target.path, error=str(exc))
    if source[:1] in ("{", " ", "\n", "\ufeff") and not target.path.endswith(".ipynb"):
        from normsuite.analysis.notebook import is_notebook_json

        if is_notebook_json(source):
            return FileResult(
                path=target.path,
                error="a Jupyter notebook's JSON, not Python: name it .ipynb to have its "
                "code cells analyzed",
            )
    return analyze_text(source, target.path, options, config=config, analyzer=analyzer)


def _worker(args: tuple[Target, AnalysisOptions, RunSettings]) -> list[FileResult]:
    target, options, settings = args
    return _analyze_target(target, options, settings, None)


def _pool_context() -> multiprocessing.context.BaseContext:
    import multiprocessing  # lazy, like the pool: most runs are serial

    # fork: workers start in ~ms and inherit the already imported analyzer; they never
    # import torch (the analysis package does not). Elsewhere use the platform default.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def default_jobs(n_files: int) -> int:
    """Worker count for ``n_files``: 1 (serial) below :data:`PARALLEL_MIN_FILES`."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if n_files < PARALLEL_MIN_FILES or not cpus or cpus < 2:
        return 1
    return min(cpus, 8, n_files // (PARALLEL_MIN_FILES // 2))


@contextmanager
def _few_full_collections() -> Iterator[None]:
    """Keep the garbage collector's full passes rare while analyzing: the project index
    keeps the parsed trees of dependencies alive, and each full pass walks all of them
    again (on the torchvision tree this alone doubled the time: 1.23 s -> 0.63 s). The
    objects are freed as usual; the thresholds are restored afterwards."""
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], 700), max(old[1], 50), max(old[2], 1000))
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _excludes(path: str, *, settings: RunSettings) -> Excludes:
    """The exclusion patterns for one given path: the command line's and its config's."""
    config = FileConfig()
    if settings.use_config and path != STDIN:
        try:
            config = find_config(path if os.path.isfile(path) else os.path.join(path, "x.py"))
        except ConfigError:
            if settings.strict_config:
                raise
    return Excludes.build(
        exclude=settings.exclude,
        extend=settings.extend_exclude,
        config_exclude=config.exclude,
        config_extend=config.extend_exclude,
        config_root=os.path.dirname(config.path) if config.path else ".",
    )


def analyze_paths(
    paths: Sequence[str],
    options: AnalysisOptions = AnalysisOptions(),
    *,
    settings: RunSettings = RunSettings(),
    stdin: bytes | str | None = None,
    jobs: int | None = None,
    analyzer: Analyzer | None = None,
    skipped: list[str] | None = None,
) -> list[FileResult]:
    """Analyze files, folders (recursively) and ``-`` (stdin); one result per file, in order.

    ``jobs``: worker processes; ``None`` picks serial or parallel by the file count.
    ``analyzer``: replaces ``analyze_source`` (serial only; for tests and embedding).
    Findings are filtered by ``options.select``/``ignore``, ``[tool.normsuite]`` and
    ``# noqa`` comments; errors never raise, except ConfigError with
    ``settings.strict_config``. ``skipped`` receives "path: reason" for fifos, devices and
    sockets, which are never opened (without it they are error results).
    """
    with _few_full_collections():
        results = _analyze_paths(paths, options, settings, stdin, jobs, analyzer, skipped)
    return drop_repeats(results)


def drop_repeats(results: list[FileResult]) -> list[FileResult]:
    """A finding about a layer of another file (``layer_at``), made again at the call that
    builds it, is dropped when that file is in the same run and reports it itself: one
    finding, as when both were one file. Analysing ``model.py`` alone keeps it."""
    own: dict[str, set[tuple[str, int]]] = {}
    for r in results:
        if r.findings and not r.error:
            own[os.path.abspath(r.path)] = {(f.code, f.line) for f in r.findings if not f.layer_at}

    def reported(layer_at: str, code: str) -> bool:
        label, _, line = layer_at.rpartition(":")
        if not line.isdigit():
            return False
        suffix = os.sep + os.path.normpath(label)
        return any(
            (path == os.path.abspath(label) or path.endswith(suffix)) and (code, int(line)) in seen
            for path, seen in own.items()
        )

    out = []
    for r in results:
        repeats = [f for f in r.findings if f.layer_at and reported(f.layer_at, f.code)]
        if repeats:
            r = replace(r, findings=[f for f in r.findings if f not in repeats])
        out.append(r)
    return out


def _analyze_paths(
    paths: Sequence[str],
    options: AnalysisOptions,
    settings: RunSettings,
    stdin: bytes | str | None,
    jobs: int | None,
    analyzer: Analyzer | None,
    skipped: list[str] | None,
) -> list[FileResult]:
    targets = discover(
        paths,
        skipped,
        partial(_excludes, settings=settings),
        force_exclude=settings.force_exclude,
    )
    if settings.use_config and settings.strict_config:
        for target in targets:  # cached per folder, so this is one read per pyproject.toml
            if not target.error:
                find_config(target.path)
    stdin_text: str | None = None
    if any(t.path == STDIN for t in targets):
        raw = stdin if stdin is not None else sys.stdin.buffer.read()
        if isinstance(raw, bytes):
            try:
                stdin_text = decode_source(
                    raw, max_size=settings.max_file_size or DEFAULT_MAX_FILE_SIZE
                )
            except SourceError as exc:
                targets = [
                    Target(t.path, error=str(exc)) if t.path == STDIN else t for t in targets
                ]
        else:
            stdin_text = raw
    n_jobs = default_jobs(len(targets)) if jobs is None else max(1, jobs)
    if n_jobs == 1 or analyzer is not None or len(targets) < 2:
        return [
            r for t in targets for r in _analyze_target(t, options, settings, stdin_text, analyzer)
        ]
    on_disk = [t for t in targets if t.path != STDIN]
    chunk = max(1, len(on_disk) // (n_jobs * 8))
    from concurrent.futures import ProcessPoolExecutor  # lazy: ~10 ms of start-up otherwise

    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=_pool_context()) as pool:
        done = iter(pool.map(_worker, [(t, options, settings) for t in on_disk], chunksize=chunk))
        return [
            r
            for t in targets
            for r in (
                _analyze_target(t, options, settings, stdin_text) if t.path == STDIN else next(done)
            )
        ]
