"""Which files and folders to leave out, with ruff's ``exclude`` / ``extend-exclude`` semantics.

- ``exclude`` replaces the default exclusions (hidden folders, ``venv``, ``site-packages``,
  ``__pycache__``, ``node_modules``); ``extend-exclude`` adds patterns to whatever
  ``exclude`` is. Both come from ``[tool.normsuite]`` (relative to that pyproject.toml's
  folder) and from ``--exclude`` / ``--extend-exclude`` (relative to the current folder);
  the command line wins: ``--exclude`` replaces the table's ``exclude``.
- A pattern without ``/`` matches a file or folder name anywhere (``build``, ``*_pb2.py``);
  a pattern with ``/`` matches a path relative to its root (``scripts/*.py``,
  ``src/legacy``), and everything below a matched folder.
- Like ruff, a path given explicitly on the command line is analyzed even when a pattern
  matches it, unless ``--force-exclude`` is given (pre-commit passes every staged file
  explicitly, so its hook uses ``--force-exclude``).

Example:
    >>> rules = Excludes.build(extend=("legacy",), root="/p")
    >>> [rules.excluded(p, "/p") for p in ("/p/src/legacy/a.py", "/p/.venv", "/p/m.py")]
    [True, True, False]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import PurePath

from normsuite.analysis.files import SKIP_DIRS

# what the walker skips without patterns: hidden folders and SKIP_DIRS (one source of truth)
DEFAULT_EXCLUDE = (".*", *sorted(SKIP_DIRS))


@dataclass(frozen=True)
class Pattern:
    glob: str
    root: str  # absolute folder the pattern is relative to

    def matches(self, path: str, base: str) -> bool:
        """Whether ``path`` (absolute) or one of its folders below ``base`` matches (a name
        pattern never looks above ``base``: a project inside ``~/.local`` is not hidden)."""
        glob = self.glob.rstrip("/")
        if "/" not in glob:
            rel = _relative(path, base)
            parts = rel.parts if rel is not None else (PurePath(path).name,)
            return any(fnmatchcase(part, glob) for part in parts)
        rel = _relative(path, self.root)
        if rel is None:
            return False
        glob = glob.removeprefix("./")
        # the path itself or any folder above it: `src/legacy` excludes src/legacy/a.py
        candidates = [rel, *rel.parents[:-1]]
        return any(fnmatchcase(c.as_posix(), glob) for c in candidates)


@dataclass(frozen=True)
class Excludes:
    """The exclusion patterns in force for one run."""

    patterns: tuple[Pattern, ...] = tuple(Pattern(g, "/") for g in DEFAULT_EXCLUDE)

    @classmethod
    def build(
        cls,
        *,
        exclude: tuple[str, ...] | None = None,
        extend: tuple[str, ...] = (),
        root: str = ".",
        config_exclude: tuple[str, ...] | None = None,
        config_extend: tuple[str, ...] = (),
        config_root: str = ".",
    ) -> Excludes:
        """Combine the command line (``exclude``/``extend`` relative to ``root``) and a
        ``[tool.normsuite]`` table (relative to ``config_root``), ruff's way."""
        root, config_root = os.path.abspath(root), os.path.abspath(config_root)
        if exclude is not None:
            base = [Pattern(g, root) for g in exclude]
        elif config_exclude is not None:
            base = [Pattern(g, config_root) for g in config_exclude]
        else:
            base = [Pattern(g, "/") for g in DEFAULT_EXCLUDE]
        extra = [Pattern(g, config_root) for g in config_extend]
        extra += [Pattern(g, root) for g in extend]
        return cls(tuple(base + extra))

    @property
    def is_default(self) -> bool:
        """Only the default exclusions (the walker then uses its cheaper name check)."""
        return self == Excludes()

    def excluded(self, path: str, base: str | None = None) -> bool:
        """Whether ``path`` (a file or a folder) is left out; name patterns look at the
        parts of ``path`` below ``base`` (default: the current folder)."""
        absolute = os.path.abspath(path)
        base = os.path.abspath(base or os.getcwd())
        return any(p.matches(absolute, base) for p in self.patterns)


def _relative(path: str, root: str) -> PurePath | None:
    """``path`` relative to ``root``, or None when it is not below it."""
    try:
        rel = PurePath(os.path.relpath(path, root))
    except ValueError:  # another drive (Windows)
        return None
    if rel.parts and rel.parts[0] == "..":
        return None
    return rel
