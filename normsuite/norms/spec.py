"""Norm spec strings: ``"bn"``, ``"gn:16"``, ``"LayerNorm"`` -> :class:`NormSpec`.

Pure Python (no torch import), so the static analyzer and the CLI can parse specs without
paying for torch. The grammar is in docs/design.md, "Norm spec grammar".

Example:
    >>> NormSpec.parse("GroupNorm:16")
    NormSpec(kind='gn', groups=16)
    >>> str(NormSpec.parse("batch_norm"))
    'bn'
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from normsuite.advice import default_groups

#: The canonical kinds, in the order they are listed to users.
KINDS: tuple[str, ...] = ("bn", "syncbn", "frozenbn", "gn", "ln", "in", "rms", "none")

KIND_DESCRIPTIONS: dict[str, str] = {
    "bn": "BatchNorm (batch statistics, running averages for eval)",
    "syncbn": "SyncBatchNorm (batch statistics across processes)",
    "frozenbn": "FrozenBatchNorm (fixed statistics and affine, for fine-tuning)",
    "gn": "GroupNorm (gn picks G automatically, gn:G sets it)",
    "ln": "LayerNorm over the channels at each position",
    "in": "InstanceNorm (affine)",
    "rms": "RMSNorm over the channels at each position",
    "none": "no normalization (Identity)",
}

# Aliases are matched after lower-casing and dropping "_", "-" and spaces, so
# "batch_norm", "Batch-Norm" and "BatchNorm" are all "batchnorm".
_ALIASES: dict[str, str] = {
    **dict.fromkeys(
        ["bn", "bn1d", "bn2d", "bn3d", "batchnorm", "batchnorm1d", "batchnorm2d", "batchnorm3d"],
        "bn",
    ),
    **dict.fromkeys(["syncbn", "syncbatchnorm", "sbn"], "syncbn"),
    **dict.fromkeys(
        ["frozenbn", "frozenbatchnorm", "frozenbatchnorm2d", "frozenbn2d", "fbn"], "frozenbn"
    ),
    **dict.fromkeys(["gn", "groupnorm"], "gn"),
    **dict.fromkeys(["ln", "layernorm", "layernorm2d", "channellayernorm"], "ln"),
    **dict.fromkeys(
        ["in", "instancenorm", "instancenorm1d", "instancenorm2d", "instancenorm3d"], "in"
    ),
    **dict.fromkeys(["rms", "rmsnorm", "channelrmsnorm"], "rms"),
    **dict.fromkeys(["none", "identity", "noop", "off"], "none"),
}

# Names shown in error messages and used for "did you mean" (readable spellings).
_DISPLAY_NAMES: tuple[str, ...] = (
    *KINDS,
    "gn:G",
    "BatchNorm",
    "BatchNorm2d",
    "SyncBatchNorm",
    "FrozenBatchNorm2d",
    "GroupNorm",
    "LayerNorm",
    "InstanceNorm2d",
    "RMSNorm",
    "identity",
)

_SEPARATORS = re.compile(r"[\s_\-]+")


def _canonical_name(name: str) -> str:
    return _SEPARATORS.sub("", name.strip().lower())


def _unknown_name_error(text: str) -> ValueError:
    # Readable spellings win over the squashed alias keys ("GroupNorm", not "groupnorm").
    candidates = {alias: alias for alias in _ALIASES} | {
        _canonical_name(n): n for n in _DISPLAY_NAMES
    }
    close = difflib.get_close_matches(_canonical_name(text), list(candidates), n=1, cutoff=0.5)
    hint = f" Did you mean {candidates[close[0]]!r}?" if close else ""
    return ValueError(
        f"unknown norm {text!r}.{hint} Valid names: {', '.join(KINDS)}, gn:G "
        "(aliases such as BatchNorm2d, group_norm, LayerNorm, RMSNorm are accepted)."
    )


@dataclass(frozen=True)
class NormSpec:
    """A parsed norm choice: one of :data:`KINDS`, plus the group count for ``gn``.

    ``groups=None`` for ``gn`` means "pick per layer" (see :meth:`groups_for`).

    >>> NormSpec.parse("gn:8").groups_for(64)
    8
    >>> NormSpec.parse("gn").groups_for(48)
    12
    """

    kind: str
    groups: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise _unknown_name_error(str(self.kind))
        if self.groups is not None:
            if self.kind != "gn":
                raise ValueError(
                    f"only gn takes a group count, got {self.kind}:{self.groups}; "
                    f"write {self.kind!r} or 'gn:{self.groups}'."
                )
            if isinstance(self.groups, bool) or not isinstance(self.groups, int):
                raise ValueError(f"gn groups must be an int, got {self.groups!r}; e.g. 'gn:32'.")
            if self.groups < 1:
                raise ValueError(f"gn groups must be >= 1, got {self.groups}; e.g. 'gn:32'.")

    @classmethod
    def parse(cls, spec: str | NormSpec) -> NormSpec:
        """Parse ``"bn"``, ``"gn:16"``, an alias such as ``"BatchNorm2d"``, or pass a spec through.

        ``None`` (a YAML ``null``, a forgotten argument) is a ``TypeError``, not "no norm":
        removing every norm layer must be asked for by name, ``"none"`` or ``"identity"``.

        >>> NormSpec.parse("RMSNorm"), NormSpec.parse("gn:4")
        (NormSpec(kind='rms', groups=None), NormSpec(kind='gn', groups=4))
        """
        if isinstance(spec, NormSpec):
            return spec
        if spec is None:
            raise TypeError(
                "norm spec is None; write 'none' (or 'identity') for no normalization, "
                "or a norm such as 'bn' or 'gn:16'"
            )
        if not isinstance(spec, str):
            raise TypeError(
                f"norm spec must be a string such as 'bn' or 'gn:16', got {type(spec).__name__}"
            )
        name, sep, group_text = spec.partition(":")
        kind = _ALIASES.get(_canonical_name(name))
        if kind is None:
            raise _unknown_name_error(spec)
        if not sep:
            return cls(kind)
        group_text = group_text.strip()
        if not group_text.isdigit():
            raise ValueError(
                f"bad group count in {spec!r}: expected a positive integer after ':', e.g. 'gn:32'."
            )
        return cls(kind, int(group_text))

    def groups_for(self, num_channels: int) -> int:
        """The group count this spec gives a layer with ``num_channels`` channels (gn only)."""
        if self.kind != "gn":
            raise ValueError(f"{self} has no groups; only gn does.")
        return self.groups if self.groups is not None else default_groups(num_channels)

    def __str__(self) -> str:
        return self.kind if self.groups is None else f"{self.kind}:{self.groups}"
