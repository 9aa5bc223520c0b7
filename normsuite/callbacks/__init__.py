"""normsuite.callbacks: the ActivationStats callback and its plots.

Names are imported lazily: ``normsuite.callbacks.plot_stats`` needs matplotlib but not
lightning, ``ActivationStats`` needs lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ActivationStats": "normsuite.callbacks.activation_stats",
    "NonFiniteActivationError": "normsuite.callbacks.activation_stats",
    "plot_stats": "normsuite.callbacks.plot",
    "read_stats": "normsuite.callbacks.plot",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'normsuite.callbacks' has no attribute {name!r}")
    return getattr(importlib.import_module(module_name), name)
