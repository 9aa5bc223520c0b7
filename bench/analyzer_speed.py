"""How fast is the static analyzer? Baselines are measured in the same run.

1. All ``.py`` files of the installed torchvision package (and timm, the second robustness
   corpus): ``analyze_paths`` (read, parse, extract, shapes, rules, noqa) vs bare read +
   ``ast.parse`` of the same files. Goal: <= 1.5x the parse time.
2. The same tree through the CLI: ``normsuite check`` vs TorchFix (``torchfix``), when
   installed (``pip install torchfix``; not a dependency). Goal: >= 5x faster.
3. ``normsuite recommend recipes/models/article_nets.py`` end to end (new process, console
   script) vs ``python -c pass``. Goal: <= 0.5 s wall.
4. Serial vs process pool by file count, to place ``runner.PARALLEL_MIN_FILES``.

Run: ``.venv/bin/python bench/analyzer_speed.py [--repeat 3] [--skip-torchfix]``
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import importlib.util
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from normsuite.analysis import project
from normsuite.analysis.files import discover, read_source
from normsuite.analysis.runner import analyze_paths

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SMALL = ROOT / "recipes" / "models" / "article_nets.py"


def parse_each(paths: list[str]) -> None:
    """The baseline: read and ``ast.parse`` each file, dropping each tree before the next.
    (Keeping every tree in a list, as the timm and 2,000-file rows did before 2026-12-07,
    makes the garbage collector walk them all again and again: timm's baseline went from
    0.86 s to 2.6 s, which made those rows' ratios look three times better than they are.)"""
    for p in paths:
        ast.parse(read_source(p), p)


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    """Minimum wall time of ``repeat`` runs: the least disturbed by the shared machine.
    Each run starts with an empty project index (as a new ``normsuite`` process does)."""
    times = []
    for _ in range(repeat):
        project.clear()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def median_wall(repeat: int, cmd: list[str]) -> tuple[float, float]:
    """Median wall time and median CPU time (user + sys) of a command, ``repeat`` runs.

    CPU time is the figure to trust on a shared machine: waiting for a core adds wall
    time but no CPU time.
    """
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def _cold(paths: list[str], **kwargs: object) -> None:
    """One timed analysis as a new process would run it: the project index keeps parsed
    dependency files per process, so a warm second run would flatter the ratio."""
    from normsuite.analysis import project

    project.clear()
    analyze_paths(paths, **kwargs)


def corpus_row(package: str, repeat: int) -> tuple[str, float, float, str] | None:
    """The robustness corpus of a second package (timm): errors, and time vs parse."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        print(f"{package} not installed: its corpus row is skipped")
        return None
    paths = [t.path for t in discover([str(Path(spec.origin).parent)])]
    results = analyze_paths(paths, jobs=1)
    errors = [f"{r.path}: {r.error}" for r in results if r.error]
    print(
        f"{package}: {len(paths)} files, {sum(len(r.models) for r in results)} models, "
        f"{len(errors)} errors" + "".join(f"\n  {e}" for e in errors)
    )
    parse_s = best_of(repeat, lambda: parse_each(paths))
    ours_s = best_of(repeat, lambda: _cold(paths, jobs=1))
    return (f"{package}: analyze_paths serial vs read+ast.parse", ours_s, parse_s, "<= 1.5x")


def tree_row(repeat: int) -> tuple[str, float, float, str] | None:
    """A tree of 2,000+ files with the project index on: transformers from the corpus
    (``NORMSUITE_CORPUS``, see bench/build_corpus.py), or any folder in NORMSUITE_BIG_TREE."""
    big = os.environ.get("NORMSUITE_BIG_TREE")
    corpus = os.environ.get("NORMSUITE_CORPUS")
    tree = Path(big) if big else Path(corpus) / "src" / "transformers" if corpus else None
    if tree is None or not tree.is_dir():
        print("no NORMSUITE_CORPUS / NORMSUITE_BIG_TREE: the 2,000+ file row is skipped")
        return None
    paths = [t.path for t in discover([str(tree)]) if t.path.endswith(".py")]
    results = analyze_paths(paths, jobs=1)
    internal = sum(1 for r in results if r.error and r.error.startswith("internal"))
    print(
        f"{tree.name}: {len(paths)} files, {sum(len(r.models) for r in results)} models, "
        f"{internal} internal errors"
    )
    parse_s = best_of(repeat, lambda: parse_each(paths))
    ours_s = best_of(repeat, lambda: _cold(paths, jobs=1))
    return (
        f"{tree.name} ({len(paths)} files) serial vs read+ast.parse",
        ours_s,
        parse_s,
        "<= 1.5x",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-torchfix", action="store_true")
    args = parser.parse_args()
    # Found, not imported: the CLI never imports torch, and torch's heap in this process
    # made the bare ast.parse baseline ~1.5x slower (the collector walks it), flattering
    # every ratio (figures before 2026-12-07 were taken that way).
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        raise SystemExit("torchvision is not installed: pip install -e .[dev]")
    tree = Path(spec.origin).parent
    paths = [t.path for t in discover([str(tree)])]
    n_bytes = sum(Path(p).stat().st_size for p in paths)
    rows: list[tuple[str, float, float, str]] = []  # name, a, b, goal on a / b

    parse_s = best_of(args.repeat, lambda: parse_each(paths))
    serial_s = best_of(args.repeat, lambda: _cold(paths, jobs=1))
    auto_s = best_of(args.repeat, lambda: _cold(paths))
    results = analyze_paths(paths, jobs=1)
    internal = sum(1 for r in results if r.error and r.error.startswith("internal"))
    print(
        f"torchvision {importlib.metadata.version('torchvision')}: {len(paths)} files, "
        f"{n_bytes / 1e6:.1f} MB, "
        f"{sum(len(r.models) for r in results)} models, "
        f"{sum(len(r.findings) for r in results)} findings, {internal} internal errors"
    )
    rows.append(("analyze_paths serial vs read+ast.parse", serial_s, parse_s, "<= 1.5x"))
    timm_row = corpus_row("timm", args.repeat)
    if timm_row:
        rows.append(timm_row)
    rows.append(("analyze_paths auto jobs vs read+ast.parse", auto_s, parse_s, "<= 1.5x"))
    big_row = tree_row(args.repeat)
    if big_row:
        rows.append(big_row)

    normsuite = str(BIN / "normsuite")
    check_cmd = [normsuite, "check", str(tree), "--format", "json"]
    torchfix = shutil.which("torchfix", path=str(BIN)) or shutil.which("torchfix")
    if torchfix and not args.skip_torchfix:
        check_wall, check_cpu = median_wall(args.repeat, check_cmd)
        # TorchFix (libcst) takes minutes here: one run, both tools with their default jobs
        tf_wall, tf_cpu = median_wall(1, [torchfix, str(tree)])
        name = "torchfix / normsuite check, same tree (speedup)"
        rows.append((f"{name}, wall", tf_wall, check_wall, ">= 5x"))
        rows.append((f"{name}, CPU", tf_cpu, check_cpu, ">= 5x"))
    else:
        print("torchfix not installed or skipped (pip install torchfix): TorchFix rows skipped")

    py_wall, py_cpu = median_wall(5, [sys.executable, "-c", "pass"])
    rec_wall, rec_cpu = median_wall(5, [normsuite, "recommend", str(SMALL)])
    rows.append(("normsuite recommend small file vs python -c pass, wall", rec_wall, py_wall, ""))
    rows.append(("normsuite recommend small file vs python -c pass, CPU", rec_cpu, py_cpu, ""))

    print()
    print(f"{'measurement':62} {'a':>9} {'b':>9} {'a/b':>7}  goal")
    for name, a, b, goal in rows:
        print(f"{name:62} {a:8.3f}s {b:8.3f}s {a / b:6.2f}x  {goal}")
    print(
        f"\nrecommend end to end: {rec_wall:.3f} s wall, {rec_cpu:.3f} s CPU (goal <= 0.5 s wall)"
    )

    print("\nserial vs process pool (jobs=2) by file count (placing PARALLEL_MIN_FILES):")
    print(f"{'files':>6} {'serial':>9} {'jobs=2':>9} {'pool/serial':>12}")
    for n in (8, 16, 32, 64, 128, len(paths)):
        subset = paths[:n]
        s = best_of(args.repeat, lambda subset=subset: analyze_paths(subset, jobs=1))
        p = best_of(args.repeat, lambda subset=subset: analyze_paths(subset, jobs=2))
        print(f"{len(subset):6d} {s:8.3f}s {p:8.3f}s {p / s:11.2f}x")


if __name__ == "__main__":
    main()
