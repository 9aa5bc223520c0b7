"""The analyzer's caps, and how a file that hits one is reported.

The static evaluator bounds its work per file (evaluation steps, call depth, unrolled loop
length): a pathological file must not take minutes. A cap that is hit is never silent: the
file gets a :class:`~normsuite.analysis.types.Notice` with the line where the cap was hit and
the cap's value, its result counts as *incomplete*, and ``check``/``recommend`` exit with 2
(like a file that could not be analyzed) instead of "All checks passed".

Example:
    >>> hits = LimitLog()
    >>> hits.hit("loop", 12)
    >>> [n.message for n in hits.notices()]  # doctest: +ELLIPSIS
    ['analysis incomplete: a loop or sequence longer than 512 items ... (the cap)...']
"""

from __future__ import annotations

from dataclasses import dataclass, field

from normsuite.analysis.types import Notice

MAX_STEPS = 200_000  # evaluation budget per file: stops pathological files quickly
MAX_DEPTH = 24  # call depth for helpers / nested instantiation
MAX_LOOP = 512  # iterations of one statically unrolled loop

# cap name -> (what was too big, the cap's value)
CAPS: dict[str, tuple[str, int]] = {
    "steps": ("the file needs more than {cap:,} evaluation steps", MAX_STEPS),
    "depth": ("calls or nested modules deeper than {cap} levels", MAX_DEPTH),
    "loop": ("a loop or sequence longer than {cap} items", MAX_LOOP),
}

# what a user reads after the reason: the cap is fixed, so say what the result means
_CONSEQUENCE = {
    "steps": "layers built after this point are not seen, so findings and "
    "recommendations for this file may be missing",
    "depth": "what the deeper calls build is not seen",
    "loop": "the items past the cap are not seen",
}


@dataclass
class LimitLog:
    """The caps hit while analyzing one file, once per (cap, line)."""

    hits: dict[tuple[str, int | None], None] = field(default_factory=dict)

    def hit(self, cap: str, line: int | None) -> None:
        if cap not in CAPS:
            raise KeyError(f"unknown cap {cap!r}")
        self.hits.setdefault((cap, line), None)

    def notices(self) -> list[Notice]:
        """One incomplete-analysis notice per cap and line, in line order."""
        out = []
        for cap, line in sorted(self.hits, key=lambda k: (k[1] or 0, k[0])):
            what, value = CAPS[cap]
            out.append(
                Notice(
                    kind="limit",
                    message=f"analysis incomplete: {what.format(cap=value)} (the cap); "
                    f"{_CONSEQUENCE[cap]}. Split the model or the file to analyze it in full",
                    line=line,
                    incomplete=True,
                    cap=cap,
                    cap_value=value,
                )
            )
        return out
