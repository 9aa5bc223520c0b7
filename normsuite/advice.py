"""THE selection guidance of normsuite (DESIGN.md section 4). Pure Python: no torch import.

Used by the analyzer, by ``build_module(norm="auto")``, by the fit-time guardrails and by
``normsuite compare``.
"""

from __future__ import annotations

GN_DEFAULT_GROUPS = 32  # GN paper (Wu & He 2018) default
MIN_CHANNELS_PER_GROUP = 4  # below this GN degrades towards IN (GN paper Table 3)


def default_groups(num_channels: int) -> int:
    """Group count for ``gn`` without an explicit G.

    32 when it divides C (the GN paper's default), else the largest divisor of C that is
    <= 32 and keeps >= 4 channels per group, else 1.

    >>> default_groups(64), default_groups(48), default_groups(3)
    (32, 12, 1)
    """
    if num_channels < 1:
        raise ValueError(f"num_channels must be >= 1, got {num_channels}")
    if num_channels % GN_DEFAULT_GROUPS == 0:
        return GN_DEFAULT_GROUPS
    for groups in range(min(GN_DEFAULT_GROUPS, num_channels), 0, -1):
        if num_channels % groups == 0 and num_channels // groups >= MIN_CHANNELS_PER_GROUP:
            return groups
    return 1
