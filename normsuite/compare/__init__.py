"""``normsuite compare``: train short runs of one recipe per norm, batch size and seed, and
show which norm wins where, next to what ``normsuite.advice`` recommends.

Importing this package does not import torch or lightning; ``run_compare`` loads them when
the first cell trains.

Example:
    >>> from normsuite.compare import run_compare
    >>> result = run_compare("recipes/compare_mnist1d_bn_gn.yaml")  # doctest: +SKIP
    >>> result.batches[0].winner, result.batches[0].verdict           # doctest: +SKIP
    ('gn', 'agrees')
"""

from __future__ import annotations

from .api import default_out_dir, run_compare
from .errors import CompareError
from .grid import Cell, expand_grid, scale_lr
from .results import CompareResult, summarize

__all__ = [
    "Cell",
    "CompareError",
    "CompareResult",
    "default_out_dir",
    "expand_grid",
    "run_compare",
    "scale_lr",
    "summarize",
]
