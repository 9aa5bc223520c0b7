"""OpenMMLab-style Python configs, read with ``ast`` and never executed:
``train_dataloader = dict(batch_size=2, ...)`` (MMEngine), ``data = dict(samples_per_gpu=2)``
(MMCV 1.x), ``_base_ = [...]`` files merged first, ``norm_cfg = dict(type="SyncBN")``.

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> _ = open(os.path.join(d, "c.py"), "w").write("train_dataloader = dict(batch_size=2)\\n")
>>> read_python_config(os.path.join(d, "c.py")).batch
(2, 'config:c.py train_dataloader.batch_size=2')
"""

from __future__ import annotations

import ast
import os
from typing import Any

from .scan import ConfigScan, positive_int
from .yaml_config import merge
from .yaml_safe import ConfigReadError, read_text

MAX_BASES = 32


def _values(path: str, seen: set[str]) -> dict[str, Any]:
    """Module-level names of a config file merged over its ``_base_`` files."""
    from ..extract import ModuleIndex  # the side-effect free evaluator

    path = os.path.abspath(path)
    if path in seen or len(seen) > MAX_BASES:
        return {}
    seen.add(path)
    text = read_text(path)
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as exc:
        raise ConfigReadError(
            f"config {os.path.basename(path)} line {exc.lineno}: not valid Python; fix it"
        ) from None
    env = ModuleIndex(tree, text).env
    out: dict[str, Any] = {}
    bases = env.get("_base_")
    for base in [bases] if isinstance(bases, str) else bases if isinstance(bases, list) else []:
        if isinstance(base, str):
            file = os.path.join(os.path.dirname(path), base)
            if os.path.isfile(file):
                out = merge(out, _values(file, seen))
    return merge(out, {k: v for k, v in env.items() if isinstance(v, (dict, list, int, str))})


def read_python_config(path: str) -> ConfigScan:
    env = _values(path, set())
    name = os.path.basename(path)
    out = ConfigScan()
    loader = env.get("train_dataloader")
    data = env.get("data")
    if isinstance(loader, dict) and positive_int(loader.get("batch_size")):
        value = loader["batch_size"]
        out.batch = (value, f"config:{name} train_dataloader.batch_size={value}")
    elif isinstance(data, dict) and positive_int(data.get("samples_per_gpu")):
        value = data["samples_per_gpu"]
        out.batch = (value, f"config:{name} data.samples_per_gpu={value}")
    out.sync = _uses_syncbn(env, 0)
    return out


def _uses_syncbn(node: Any, depth: int) -> bool:
    if depth > 12:
        return False
    if isinstance(node, dict):
        if node.get("type") in ("SyncBN", "MMSyncBN", "SyncBatchNorm"):
            return True
        return any(_uses_syncbn(v, depth + 1) for v in node.values())
    if isinstance(node, list):
        return any(_uses_syncbn(v, depth + 1) for v in node[:256])
    return False
