"""normsuite: choose, inject and watch normalization layers.

The top-level names are imported lazily so that ``import normsuite`` (and the
``normsuite recommend`` / ``check`` commands built on it) never pulls in torch or
lightning. Touching ``normsuite.build_norm`` imports the torch-backed part on demand.

Example:
    >>> import normsuite
    >>> layer = normsuite.build_norm("gn", 64)            # doctest: +SKIP
    >>> report = normsuite.convert_norms(model, "gn")      # doctest: +SKIP
"""

from __future__ import annotations

from normsuite._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    "NormSpec": "normsuite.norms.spec",
    "build_norm": "normsuite.norms.layers",
    "convert_norms": "normsuite.norms.convert",
    "ConversionReport": "normsuite.norms.convert",
    "SyncBatchNorm": "normsuite.norms.sync",
    "build_module": "normsuite.models.factory",
    "NormClassifier": "normsuite.models.factory",
    "ActivationStats": "normsuite.callbacks.activation_stats",
    "NormSync": "normsuite.training.sync_plugin",
    "BatchSizeGuard": "normsuite.training.guardrails",
    "advise": "normsuite.advice",
    "Advice": "normsuite.advice",
    "analyze": "normsuite.analysis.api",  # the static analyzer; never imports torch
    "Analysis": "normsuite.analysis.api",
}

__all__ = ["__version__", *sorted(_LAZY)]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
