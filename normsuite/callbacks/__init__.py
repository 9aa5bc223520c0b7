"""normsuite.callbacks: the ActivationStats callback and its plots.

Names are imported lazily: ``normsuite.callbacks.plot_stats`` needs matplotlib but not
lightning, ``ActivationStats`` needs lightning.
"""

from __future__ import annotations

from normsuite._lazy import lazy_exports

_LAZY = {
    "ActivationStats": "normsuite.callbacks.activation_stats",
    "NonFiniteActivationError": "normsuite.callbacks.activation_stats",
    "plot_stats": "normsuite.callbacks.plot",
    "read_stats": "normsuite.callbacks.plot",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
