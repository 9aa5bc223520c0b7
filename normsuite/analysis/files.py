"""Finding the files to analyze and reading them safely.

Reading never executes anything: bytes are checked (size, NUL bytes, encoding) and
decoded; any problem becomes a one-line :class:`SourceError` message for that file only.
"""

from __future__ import annotations

import io
import os
import stat
import tokenize
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from normsuite.analysis.exclude import Excludes

STDIN = "-"
DEFAULT_MAX_FILE_SIZE = 2 * 1024 * 1024  # 2 MB: far above any hand-written model file

# Folder names skipped while walking a directory (unless the folder itself is given).
# Hidden folders (".git", ".tox", ".venv", ...) are skipped by their leading dot.
SKIP_DIRS = frozenset({"venv", "site-packages", "__pycache__", "node_modules"})


class SourceError(Exception):
    """A file that cannot be analyzed; ``str()`` is the one-line reason (without the path)."""


@dataclass(frozen=True)
class Target:
    """One thing to analyze: a path on disk, or stdin (``path == "-"``)."""

    path: str
    error: str | None = None  # set when discovery already knows it cannot be read


def _skipped(name: str) -> bool:
    return name.startswith(".") or name in SKIP_DIRS


SOURCE_SUFFIXES = (".py", ".ipynb")
NOT_REGULAR = "not a regular file (a fifo, device or socket); skipped"


def _walk(
    root: Path, skipped: list[str] | None, excludes: Excludes | None = None
) -> Iterator[Path]:
    """Every ``*.py`` / ``*.ipynb`` below ``root`` in sorted order, pruning skipped (or
    excluded) folders. A fifo, device or socket with such a name is left out (reading it
    could block forever) and reported in ``skipped``."""
    base = str(root)

    def left_out(entry: os.DirEntry[str]) -> bool:
        if excludes is None:
            return entry.is_dir() and _skipped(entry.name)
        return excludes.excluded(entry.path, base)

    stack = [base]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for entry in entries:
            try:
                if entry.is_dir():
                    if not left_out(entry):
                        subdirs.append(entry.path)
                elif entry.name.endswith(SOURCE_SUFFIXES) and not left_out(entry):
                    if entry.is_file():  # is_file() is S_ISREG: False for fifos and devices
                        yield Path(entry.path)
                    elif skipped is not None and os.path.exists(entry.path):
                        skipped.append(f"{entry.path}: {NOT_REGULAR}")
            except OSError:
                continue
        stack.extend(reversed(subdirs))


def discover(
    paths: Iterable[str],
    skipped: list[str] | None = None,
    excludes: Callable[[str], Excludes] | None = None,
    *,
    force_exclude: bool = False,
) -> list[Target]:
    """Expand files, directories (recursively) and ``-`` into targets, in a stable order.

    A path given explicitly is always used, even a hidden folder or a file without
    ``.py``; only folders found *while walking* are skipped. Duplicates are dropped.
    Fifos, devices and sockets are never opened: they go to ``skipped`` with the reason
    (without a ``skipped`` list, a fifo given by name is an error target).
    ``excludes(path)``: the exclusion patterns for a given path (default: hidden folders and
    :data:`SKIP_DIRS`); ``force_exclude`` applies them to the given paths too.

    >>> [t.path for t in discover(["-"])]
    ['-']
    """
    targets: list[Target] = []
    seen: set[str] = set()

    def add(target: Target) -> None:
        # abspath, not realpath: one lstat per path component per file is measurable
        key = target.path if target.path == STDIN else os.path.abspath(target.path)
        if key not in seen:
            seen.add(key)
            targets.append(target)

    for raw in paths:
        if raw == STDIN:
            add(Target(STDIN))
            continue
        path = Path(raw)
        rules = excludes(raw) if excludes is not None else None
        if force_exclude and rules is not None and rules.excluded(raw):
            continue
        if path.is_dir():
            walk_rules = None if rules is None or rules.is_default else rules
            for file in _walk(path, skipped, walk_rules):
                add(Target(str(file)))
        elif path.exists() and not path.is_file():
            if skipped is not None:
                skipped.append(f"{raw}: {NOT_REGULAR}")
            else:
                add(Target(raw, error=NOT_REGULAR))
        elif path.exists():
            add(Target(raw))
        else:
            add(Target(raw, error="no such file or directory"))
    return targets


def decode_source(data: bytes, *, max_size: int = DEFAULT_MAX_FILE_SIZE) -> str:
    """Bytes -> source text, or :class:`SourceError` with a reason a user can act on.

    Honours a PEP 263 coding cookie; otherwise the source must be UTF-8.

    >>> decode_source(b"x = 1\\n")
    'x = 1\\n'
    """
    if len(data) > max_size:
        raise SourceError(_too_big(len(data), max_size))
    if b"\x00" in data:
        raise SourceError("binary file (contains NUL bytes), not Python source; leave it out")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        if "unknown encoding" in str(exc):  # a coding cookie naming no codec
            raise SourceError(f"{exc.msg}; save the file as UTF-8") from None
        encoding = "utf-8"  # undecodable first lines: let the decode below say where
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"not valid {encoding} (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8"
        ) from None
    return text.removeprefix("\ufeff")


def read_source(path: str, *, max_size: int = DEFAULT_MAX_FILE_SIZE) -> str:
    """Read and decode one file; every OS or decoding problem becomes a :class:`SourceError`."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):  # opening a fifo blocks until a writer comes
            raise SourceError(NOT_REGULAR)
        size = st.st_size
        if size > max_size:  # refuse before reading a huge file into memory
            raise SourceError(_too_big(size, max_size))
        with open(path, "rb") as handle:
            data = handle.read(max_size + 1)
    except FileNotFoundError:
        raise SourceError("no such file or directory") from None
    except PermissionError:
        raise SourceError("permission denied; check the file's read permission") from None
    except IsADirectoryError:
        raise SourceError("is a directory") from None
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror or exc}") from None
    return decode_source(data, max_size=max_size)


def _too_big(size: int, max_size: int) -> str:
    return (
        f"file is {_size(size)}, over the {_size(max_size)} limit; "
        "raise it with --max-file-size or `max-file-size` in [tool.normsuite]"
    )


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.1f} kB"
    return f"{n} bytes"
