"""Training configs the analyzer reads for the batch: LightningCLI and Hydra YAML
(``yaml_config``), OpenMMLab Python configs (``openmmlab``), bounded reading
(``yaml_safe``). Never executes anything.

Several ``--config`` files: later files win, field by field (as LightningCLI does).
"""

from __future__ import annotations

import os
from functools import lru_cache

from .scan import ConfigScan
from .yaml_safe import ConfigReadError

__all__ = ["ConfigReadError", "ConfigScan", "read_configs"]


def read_configs(paths: tuple[str, ...]) -> ConfigScan:
    """The merged facts of ``paths``; :class:`ConfigReadError` (one line) when one
    cannot be read."""
    stamp = tuple((p, _mtime(p)) for p in paths)
    return _cached(stamp)


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return -1.0


@lru_cache(maxsize=32)
def _cached(stamp: tuple[tuple[str, float], ...]) -> ConfigScan:
    out = ConfigScan()
    for path, _ in stamp:
        out = out.merge(read_one(path))
    return out


def read_one(path: str) -> ConfigScan:
    if path.endswith(".py"):
        from .openmmlab import read_python_config

        return read_python_config(path)
    from .yaml_config import read_yaml_config

    return read_yaml_config(path)
