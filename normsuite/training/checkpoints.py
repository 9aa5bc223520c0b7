"""Checkpoints you can trust: atomic writes, a check before loading, and ``last`` resolution.

- :class:`AtomicCheckpointIO` writes every checkpoint to a temporary file in the same folder,
  ``fsync``\\ s it and renames it over the target (``os.replace``), so a crash or a full disk
  mid-write never leaves half a ``last.ckpt``: the old file stays until the new one is whole.
- :func:`verify_checkpoint` checks a file before Lightning loads it and raises
  :class:`CheckpointError` with one line naming the file and what is wrong (missing, empty,
  not a checkpoint, truncated, bytes changed on disk, not a Lightning checkpoint). A
  checkpoint written by ``torch.save`` is a zip archive that stores a CRC-32 of every member;
  checking them finds any changed byte of the data (e.g. a block zeroed in the middle).
- :func:`find_last_checkpoint` is what ``--ckpt_path last`` means for ``normsuite fit``: the
  ``last.ckpt`` of the newest ``version_N`` of a run folder.

Example:
    >>> trainer = Trainer(plugins=[AtomicCheckpointIO()])  # doctest: +SKIP
    >>> verify_checkpoint("runs/x/version_0/checkpoints/last.ckpt")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

__all__ = ["AtomicCheckpointIO", "CheckpointError", "find_last_checkpoint", "verify_checkpoint"]

_ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message is one line and names the file."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """:class:`TorchCheckpointIO` that never leaves a partly written checkpoint behind.

    Local paths are written as temp file + ``fsync`` + ``os.replace`` (+ ``fsync`` of the
    folder, so the rename itself survives a power cut); remote (``fsspec``) paths fall back
    to Lightning's own writer.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def verify_checkpoint(path: str | Path) -> dict[str, Any]:
    """Check ``path`` is a whole, unchanged Lightning checkpoint; return its top-level keys.

    Reads the file once to check every member's CRC-32, then unpickles the small
    ``data.pkl`` with tensors memory-mapped (``weights_only=True``: nothing is executed).
    Returns the checkpoint with ``state_dict`` etc. (tensors memory-mapped, not read).

    Raises:
        CheckpointError: one line, ``"<path>: <what is wrong>; <what to do>"``.
    """
    file = Path(path)
    where = str(path)
    if not file.exists():
        raise CheckpointError(f"{where}: no such checkpoint file; give an existing .ckpt or 'last'")
    if not file.is_file():
        raise CheckpointError(f"{where}: not a regular file; give a .ckpt file or 'last'")
    try:
        size = file.stat().st_size
        with file.open("rb") as handle:
            head = handle.read(4)
    except OSError as err:
        raise CheckpointError(f"{where}: cannot be read ({err.strerror or err})") from None
    if size == 0:
        raise CheckpointError(f"{where}: empty file (0 bytes); use an earlier checkpoint")
    if head != _ZIP_MAGIC:
        raise CheckpointError(
            f"{where}: not a PyTorch checkpoint (torch.save writes a zip archive; this file "
            "starts with other bytes); give a .ckpt written by Lightning"
        )
    try:
        with zipfile.ZipFile(file) as archive:
            bad = archive.testzip()  # reads every member and checks its CRC-32
            names = archive.namelist()
    except zipfile.BadZipFile:
        raise CheckpointError(
            f"{where}: truncated or damaged ({size} bytes; the zip directory at the end is "
            "missing, as after an interrupted copy or write); use an earlier checkpoint"
        ) from None
    except (zlib.error, EOFError, OSError, ValueError, NotImplementedError) as err:
        raise CheckpointError(
            f"{where}: damaged archive ({err}); use an earlier checkpoint"
        ) from None
    if bad is not None:
        raise CheckpointError(
            f"{where}: corrupt: member {bad!r} fails its CRC-32 check (bytes changed on disk "
            "or a partial copy); use an earlier checkpoint"
        )
    if not any(name.endswith("/data.pkl") or name == "data.pkl" for name in names):
        raise CheckpointError(
            f"{where}: a zip archive but not a PyTorch checkpoint (no data.pkl inside); give a "
            ".ckpt written by Lightning"
        )
    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # any unpickling failure means "cannot load"
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{where}: cannot be loaded ({type(err).__name__}: {reason[:200]}); use a checkpoint "
            "written by Lightning"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"{where}: a torch file but not a Lightning checkpoint (no 'state_dict' entry; a "
            "plain model.state_dict()? load it with model.load_state_dict instead)"
        )
    return checkpoint


def find_last_checkpoint(run_root: str | Path) -> Path:
    """The ``checkpoints/last.ckpt`` of the newest ``version_N`` under ``run_root`` that has one.

    Raises:
        CheckpointError: no run folder, or no version with a ``last.ckpt``.
    """
    root = Path(run_root)
    versions = sorted(
        (
            (int(m.group(1)), p)
            for p in (root.iterdir() if root.is_dir() else [])
            if (m := re.fullmatch(r"version_(\d+)", p.name))
        ),
        reverse=True,
    )
    for _, folder in versions:
        last = folder / "checkpoints" / "last.ckpt"
        if last.is_file():
            return last
    raise CheckpointError(
        f"--ckpt_path last: no {root}/version_*/checkpoints/last.ckpt; train first, pass the "
        "same --run_name/--runs_dir as the run to resume, or give the checkpoint's path"
    )
