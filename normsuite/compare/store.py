"""Where a comparison keeps its results: one JSON line per finished cell, appended atomically.

Layout of the output folder::

    OUT/manifest.json    # the settings and their fingerprint (written once, before any cell)
    OUT/results.jsonl    # one line per finished cell, written the moment the cell ends

An interrupted run keeps every finished line; ``resume=True`` reads them back and the runner
skips those cells. A torn last line (the process died mid-write) is ignored, so that cell
simply runs again. Reusing a folder whose manifest has another fingerprint is an error: its
results came from different settings and must not be mixed with new ones.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import CompareError

MANIFEST = "manifest.json"
RESULTS = "results.jsonl"


class StoreError(CompareError):
    """The output folder cannot be used as asked; the message says what to do."""


def fingerprint(settings: Mapping[str, Any]) -> str:
    """Short, order-independent hash of the settings that decide the results.

    >>> fingerprint({"a": 1, "b": [2]}) == fingerprint({"b": [2], "a": 1})
    True
    """
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [k for k in keys if _canon(old.get(k)) != _canon(new.get(k))]


def _canon(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


class ResultStore:
    """Append-only store of finished cells in ``out_dir``.

    Example:
        >>> store = ResultStore.open("runs/compare", settings, resume=True)  # doctest: +SKIP
        >>> done = store.finished()                                           # doctest: +SKIP
        >>> store.append({"key": "bn|2|0", "val_acc": 0.71})                  # doctest: +SKIP
    """

    def __init__(self, out_dir: Path, settings: Mapping[str, Any]) -> None:
        self.out_dir = out_dir
        self.settings = dict(settings)
        self.fingerprint = fingerprint(settings)

    @property
    def results_path(self) -> Path:
        return self.out_dir / RESULTS

    @classmethod
    def open(
        cls, out_dir: str | os.PathLike[str], settings: Mapping[str, Any], *, resume: bool
    ) -> ResultStore:
        """Open ``out_dir`` for a comparison with ``settings``.

        Without ``resume`` the folder must hold no results yet; with ``resume`` the stored
        fingerprint must match ``settings``.
        """
        store = cls(Path(out_dir), settings)
        manifest_path = store.out_dir / MANIFEST
        has_results = store.results_path.exists() and store.results_path.stat().st_size > 0
        if manifest_path.exists():
            try:
                stored = json.loads(manifest_path.read_text())
                stored_fp, stored_settings = stored["fingerprint"], stored["settings"]
            except (ValueError, KeyError, TypeError):
                raise StoreError(
                    f"{manifest_path} is not a normsuite compare manifest; "
                    "choose another --out folder"
                ) from None
            if has_results and not resume:
                raise StoreError(
                    f"{store.out_dir} already holds results; pass --resume to continue that "
                    "comparison or choose another --out folder"
                )
            if stored_fp != store.fingerprint and has_results:
                changed = ", ".join(_differences(stored_settings, store.settings))
                raise StoreError(
                    f"{store.out_dir} holds results of different settings (changed: {changed}); "
                    "use another --out folder, or rerun with the original settings to resume"
                )
        elif has_results:
            raise StoreError(
                f"{store.results_path} has no {MANIFEST} next to it; choose another --out folder"
            )
        store.out_dir.mkdir(parents=True, exist_ok=True)
        if has_results:
            _drop_torn_tail(store.results_path)
        _atomic_write(
            manifest_path,
            json.dumps(
                {"fingerprint": store.fingerprint, "settings": store.settings},
                indent=2,
                sort_keys=True,
                default=str,
            ),
        )
        return store

    def finished(self) -> dict[str, dict[str, Any]]:
        """Finished cells by key. Lines that do not parse (a torn write) are skipped."""
        records: dict[str, dict[str, Any]] = {}
        if not self.results_path.exists():
            return records
        for line in self.results_path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # torn last line of an interrupted run: that cell runs again
            if isinstance(record, dict) and record.get("fingerprint") == self.fingerprint:
                records[record["key"]] = record
        return records

    def append(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Append one finished cell as a single JSON line, durable when this returns."""
        line = dict(record, fingerprint=self.fingerprint)
        data = (json.dumps(line, sort_keys=True, default=str) + "\n").encode()
        # One write() on an O_APPEND descriptor: the line lands whole at the end of the file,
        # never interleaved with another writer's line; fsync makes it survive a crash.
        fd = os.open(self.results_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return line


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that has no newline (the process died mid-write), so that the next
    append starts on a line of its own instead of gluing onto the fragment."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
