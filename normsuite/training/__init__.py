"""normsuite.training: Lightning plugins (NormSync) and fit-time guardrails (BatchSizeGuard).

Names are imported lazily so that ``import normsuite.training`` stays free of torch/lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "NormSync": "normsuite.training.sync_plugin",
    "BatchSizeGuard": "normsuite.training.guardrails",
    "BatchNormBatchSizeError": "normsuite.training.guardrails",
    "BatchSizeWarning": "normsuite.training.guardrails",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'normsuite.training' has no attribute {name!r}")
    return getattr(importlib.import_module(module_name), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
