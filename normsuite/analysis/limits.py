"""The analyzer's caps, and how a file that hits one is reported.

The static evaluator bounds its work per file (evaluation steps, call depth, unrolled loop
length): a pathological file must not take minutes. A cap that is hit is never silent: the
file gets a :class:`~normsuite.analysis.types.Notice` with the line where the cap was hit and
the cap's value, its result counts as *incomplete*, and ``check``/``recommend`` exit with 2
(like a file that could not be analyzed) instead of "All checks passed".

Example:
    >>> hits = LimitLog()
    >>> hits.hit("loop", 12)
    >>> [(n.cap, n.line, n.cap_value, n.incomplete) for n in hits.notices()]
    [('loop', 12, 512, True)]
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from normsuite.analysis.types import Notice

MAX_STEPS = 200_000  # evaluation budget per file: stops pathological files quickly
MAX_DEPTH = 24  # call depth for helpers / nested instantiation
MAX_LOOP = 512  # iterations of one statically unrolled loop
MAX_FOREIGN_STEPS = 20_000  # per analyzed file, in other files of the project (uncached)

# cap name -> (what was too big, the cap's value)
CAPS: dict[str, tuple[str, int]] = {
    "steps": ("the file needs more than {cap:,} evaluation steps", MAX_STEPS),
    "depth": ("calls or nested modules deeper than {cap} levels", MAX_DEPTH),
    "loop": ("a loop or sequence longer than {cap} items", MAX_LOOP),
    "foreign": ("the project files it imports need more than {cap:,} steps", MAX_FOREIGN_STEPS),
}
# caps whose fallback is what analysing the file alone gives (opaque blocks, silent rules):
# reported, but the result is not "incomplete"
NOT_INCOMPLETE = frozenset({"foreign"})

# what a user reads after the reason: the cap is fixed, so say what the result means
_CONSEQUENCE = {
    "steps": "what comes after this line (layers, later models of the file) is not seen, "
    "so findings and recommendations may be missing",
    "depth": "what the deeper calls build is not seen",
    "loop": "that value is treated as unknown, so layers built from it are not seen",
    "foreign": "blocks imported from them past this line are opaque, as when the file is "
    "analyzed alone, and the rules stay silent about them",
}


_HEAD = {True: "analysis incomplete", False: "analysis partly file-local"}


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
                    message=f"{_HEAD[cap not in NOT_INCOMPLETE]}: {what.format(cap=value)} "
                    f"(the cap); {_CONSEQUENCE[cap]}. Split the model or the file to analyze "
                    "it in full",
                    line=line,
                    incomplete=cap not in NOT_INCOMPLETE,
                    cap=cap,
                    cap_value=value,
                )
            )
        return out


def _size_text(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.1f} kB"
    return f"{n} bytes"


def deepest_nesting(source: str) -> tuple[int, int]:
    """(depth, line) of the deepest bracket nesting, counting ``([{`` (strings and comments
    are not skipped: this only sizes an error message).

    >>> deepest_nesting("x = [(1,\\n [2]), 3]")
    (3, 2)
    """
    import re

    depth = best = 0
    best_at = 0
    for match in re.finditer(r"[\[({]|[\])}]", source):
        if match.group() in "([{":
            depth += 1
            if depth > best:
                best, best_at = depth, match.start()
        else:
            depth = max(0, depth - 1)
    return best, source.count("\n", 0, best_at) + 1


def _longest_line(source: str) -> tuple[int, int]:
    """(length, line number) of the longest line."""
    best = (0, 1)
    for number, text in enumerate(source.splitlines(), start=1):
        if len(text) > best[0]:
            best = (len(text), number)
    return best


def too_big(exc: BaseException, source: str) -> str:
    """The one-line message for running out of memory or recursion depth on ``source``:
    it says what was too big (the file's size, its nesting, its longest line) instead of
    guessing."""
    size = len(source.encode("utf-8", "surrogatepass"))
    lines = len(source.splitlines())
    depth, depth_line = deepest_nesting(source)
    width, width_line = _longest_line(source)
    if isinstance(exc, RecursionError):
        if depth > 50:
            where = f"brackets nested {depth} deep at line {depth_line}"
        else:
            where = f"line {width_line} is one expression of {width:,} characters"
        return (
            f"expression nested too deeply to analyze: {where} (over Python's recursion "
            f"limit of {sys.getrecursionlimit()}); split the expression or exclude the file"
        )
    shape = f"{_size_text(size)}, {lines:,} lines, longest line {width:,} characters"
    if depth > 100:
        return (
            f"ran out of memory while parsing: brackets nested {depth} deep at line "
            f"{depth_line} ({shape}); simplify that expression or exclude the file"
        )
    return (
        f"ran out of memory while parsing a file this big ({shape}); exclude the file or "
        "lower --max-file-size (default 2 MB) to skip such files"
    )
