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
    yamls: list[str] = []  # consecutive YAML files merge key by key (LightningCLI)
    for path, _ in stamp:
        if path.endswith(".py"):
            out = out.merge(_read_yamls(yamls)).merge(read_one(path))
            yamls = []
        else:
            yamls.append(path)
    return out.merge(_read_yamls(yamls))


def _read_yamls(paths: list[str]) -> ConfigScan:
    if not paths:
        return ConfigScan()
    if len(paths) == 1:
        return read_one(paths[0])
    from .yaml_config import read_yaml_configs

    return read_yaml_configs(paths)


def read_one(path: str) -> ConfigScan:
    if path.endswith(".py"):
        from .openmmlab import read_python_config

        return read_python_config(path)
    from .yaml_config import read_yaml_config

    return read_yaml_config(path)
