"""``normsuite.analyze``: the static analyzer as a Python function, for notebooks and tools.

It returns what ``normsuite recommend --format json`` prints, as typed objects: one
:class:`~normsuite.analysis.types.FileResult` per file with its models (each with its
:class:`~normsuite.analysis.types.Recommendation`), findings, notices and error. Like the
CLI it never imports torch and never runs the analyzed code.

Example:
    >>> import normsuite
    >>> result = normsuite.analyze("recipes/models", batch_size=8)       # doctest: +SKIP
    >>> [(f.code, f.line) for f in result.findings]                       # doctest: +SKIP
    [('NRM001', 12), ...]
    >>> result.to_dict()["summary"]["files"]                              # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from normsuite.analysis.types import FileResult, Finding, ModelReport, Notice

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Analysis:
    """The result of :func:`analyze`: per-file results in order, plus flat views."""

    files: tuple[FileResult, ...]

    def __iter__(self) -> Iterator[FileResult]:
        return iter(self.files)

    @property
    def findings(self) -> list[Finding]:
        """Every finding of every file, in file order (``FileResult.path`` says where)."""
        return [f for r in self.files for f in r.findings]

    @property
    def models(self) -> list[ModelReport]:
        """Every model found, with its recommendation (``None`` where there is none)."""
        return [m for r in self.files for m in r.models]

    @property
    def errors(self) -> dict[str, str]:
        """path -> the one-line reason, for files that could not be analyzed."""
        return {r.path: r.error for r in self.files if r.error}

    @property
    def notices(self) -> list[tuple[str, Notice]]:
        """(path, notice) for caps hit (incomplete analysis) and mistyped noqa codes."""
        return [(r.path, n) for r in self.files for n in r.notices]

    @property
    def complete(self) -> bool:
        """True when every file was analyzed in full: no error, no cap hit."""
        return not any(r.error or r.incomplete for r in self.files)

    def to_dict(self) -> dict[str, Any]:
        """The document ``normsuite recommend --format json`` prints."""
        from normsuite.analysis.report import to_json_dict

        return to_json_dict(list(self.files), command="recommend")


def _paths(paths: PathLike | Iterable[PathLike]) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        return [os.fspath(paths)]
    if isinstance(paths, bytes) or not isinstance(paths, Iterable):
        raise TypeError(f"paths must be a path or an iterable of paths, got {type(paths).__name__}")
    out = []
    for p in paths:
        if not isinstance(p, (str, os.PathLike)):
            raise TypeError(f"paths must hold str or os.PathLike items, got {type(p).__name__}")
        out.append(os.fspath(p))
    if not out:
        raise ValueError("paths is empty; pass files or folders to analyze")
    return out


def _count(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


def analyze(
    paths: PathLike | Iterable[PathLike],
    batch_size: int | None = None,
    config: PathLike | None = None,
    *,
    devices: int | None = None,
    accumulate: int | None = None,
    select: Iterable[str] = (),
    ignore: Iterable[str] = (),
    project_config: bool = True,
    all_modules: bool = False,
) -> Analysis:
    """Analyze files and folders (searched for ``*.py``) statically.

    ``batch_size``/``devices``/``accumulate``: what ``--batch-size``/``--devices``/
    ``--accumulate`` say (they win over the files); ``config``: a LightningCLI YAML to read
    them from, like ``--config``; ``select``/``ignore``: rule codes or prefixes;
    ``project_config``: read ``[tool.normsuite]`` from the nearest pyproject.toml
    (``False`` is ``--isolated``); ``all_modules``: report every module class, blocks
    included (``--all-modules``; by default only top-level models, as ``recommend``
    prints them). Bad arguments raise ``TypeError``/``ValueError``; a bad
    ``[tool.normsuite]`` raises :class:`~normsuite.analysis.config.ConfigError`; a file
    that cannot be analyzed never raises: see ``Analysis.errors``.
    """
    from normsuite.analysis.config import known_code
    from normsuite.analysis.runner import RunSettings, analyze_paths
    from normsuite.analysis.types import AnalysisOptions
    from normsuite.analysis.usage import hide_blocks

    targets = _paths(paths)
    config_path = None
    if config is not None:
        if not isinstance(config, (str, os.PathLike)):
            raise TypeError(f"config must be a path or None, got {type(config).__name__}")
        config_path = os.fspath(config)
        if not os.path.isfile(config_path):
            raise ValueError(f"config {config_path!r}: no such file; pass a LightningCLI YAML")

    def codes(values: Iterable[str], name: str) -> tuple[str, ...]:
        if isinstance(values, str):
            values = [values]
        out = []
        for raw in values:
            code = known_code(raw) if isinstance(raw, str) else None
            if code is None:
                raise ValueError(f"{name}: unknown rule code {raw!r}; `normsuite rule` lists them")
            out.append(code)
        return tuple(out)

    options = AnalysisOptions(
        batch_size=_count(batch_size, "batch_size"),
        devices=_count(devices, "devices"),
        accumulate=_count(accumulate, "accumulate"),
        config_path=config_path,
        select=codes(select, "select"),
        ignore=codes(ignore, "ignore"),
        all_modules=bool(all_modules),
    )
    settings = RunSettings(use_config=project_config, strict_config=True)
    results = analyze_paths(targets, options, settings=settings, jobs=1)
    return Analysis(tuple(results if all_modules else hide_blocks(results)))
