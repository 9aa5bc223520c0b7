"""The NRM rule checks, one function per rule (TorchFix style), registered by code.

Each check takes the :class:`~normsuite.analysis.context.FileContext` and yields
:class:`~normsuite.analysis.types.Finding` objects; :func:`run_rules` runs them all,
drops duplicates (a block class analyzed alone and inside its parent), merges the messages of
one constructor call that builds several layers, and sorts them.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import replace
from difflib import SequenceMatcher

from ..catalog import RULES
from ..context import FileContext
from ..ir import Layer
from ..types import Finding

Check = Callable[[FileContext], Iterable[Finding]]
CHECKS: dict[str, Check] = {}


def rule(code: str) -> Callable[[Check], Check]:
    """Register ``fn`` as the check for ``code`` (which must be in the catalogue)."""
    if code not in RULES:
        raise ValueError(f"{code} is not in normsuite.analysis.catalog.RULES")

    def register(fn: Check) -> Check:
        CHECKS[code] = fn
        return fn

    return register


_ELSEWHERE = " (the layer is `"  # how finding() names a layer built in another file


def finding(code: str, layer: Layer, message: str, model: str | None = None) -> Finding:
    """A finding at ``layer``'s constructor call (1-based column, like ruff); for a layer
    built in another file, at the call in this file that builds it, naming the other place."""
    where = layer.anchor if layer.file is not None and layer.anchor is not None else layer
    layer_at = None
    if where is not layer:
        layer_at = f"{layer.file}:{layer.line}"
        message = f"{message}{_ELSEWHERE}{layer.code}` at {layer_at})"
    return Finding(
        code=code,
        message=message,
        line=where.line,
        col=where.col + 1,
        severity=RULES[code].severity,
        end_line=where.end_line,
        end_col=None if where.end_col is None else where.end_col + 1,
        model=model,
        layer_at=layer_at,
    )


def short(code: str, limit: int = 60) -> str:
    """A constructor call short enough for a message: ``ConvNorm(a, b, kernel_size=...)``."""
    if len(code) <= limit:
        return code
    cut = code[: limit - 5].rsplit(",", 1)[0]
    return f"{cut}, ...)"


def _phrases(text: str) -> list[str]:
    """Words, with bracketed and backticked spans kept whole: ``nn.GroupNorm(8, 32)`` and
    `` `nn.Conv2d(c, c, 3)` `` are one phrase each, so a merge never cuts through code."""
    out: list[str] = []
    depth, ticks = 0, 0
    for word in text.split(" "):
        if out and (depth > 0 or ticks % 2):
            out[-1] += " " + word
        else:
            out.append(word)
        depth = max(
            0, depth + sum(word.count(c) for c in "([{") - sum(word.count(c) for c in ")]}")
        )
        ticks += word.count("`")
    return out


def merge_messages(a: str, b: str) -> str:
    """One message for two findings at one place: the differing phrases side by side when
    only one stretch differs, else both messages.

    >>> merge_messages("use nn.GroupNorm(8, 32) (B5).", "use nn.GroupNorm(32, 64) (B5).")
    'use nn.GroupNorm(8, 32) / nn.GroupNorm(32, 64) (B5).'
    >>> merge_messages("`a(1, 2)` feeds `bn(2)`.", "`a(1, 2)` feeds `bn(4, x)`.")
    '`a(1, 2)` feeds `bn(2)` / `bn(4, x)`.'
    """
    wa, wb = _phrases(a), _phrases(b)
    blocks = [op for op in SequenceMatcher(None, wa, wb, autojunk=False).get_opcodes()]
    changed = [op for op in blocks if op[0] != "equal"]
    if len(changed) == 1 and changed[0][0] == "replace":
        _, i1, i2, j1, j2 = changed[0]
        tail = ""
        left, right = " ".join(wa[i1:i2]), " ".join(wb[j1:j2])
        # "`x`," / "`y`,": keep the shared punctuation once, after both.
        while left and right and left[-1] == right[-1] and left[-1] in ".,;:":
            tail, left, right = left[-1] + tail, left[:-1], right[:-1]
        middle = f"{left} / {right}{tail}"
        return " ".join([*wa[:i1], middle, *wa[i2:]])
    return f"{a} Also: {b}"


_UNKNOWN_WIDTH = "(channels unknown)"


def _load() -> None:
    # Imported for their @rule registrations.
    from . import arguments, batch, choice, layers, optim, sequence  # noqa: F401


def run_rules(ctx: FileContext, codes: Iterable[str] | None = None) -> list[Finding]:
    """All findings of the file (every rule, or ``codes``), deduplicated and sorted."""
    _load()
    wanted = set(codes) if codes is not None else set(CHECKS)
    merged: dict[tuple[str, int, int], Finding] = {}
    for code in sorted(wanted & set(CHECKS)):
        for f in CHECKS[code](ctx):
            key = (f.code, f.line, f.col)
            first = merged.get(key)
            if first is None:
                merged[key] = f
            elif _UNKNOWN_WIDTH in first.message and _UNKNOWN_WIDTH not in f.message:
                merged[key] = f  # a cell judged alone: its parent knows the width
            elif _UNKNOWN_WIDTH in f.message and _UNKNOWN_WIDTH not in first.message:
                continue
            elif f.message not in first.message:
                # One constructor call that builds several layers, e.g.
                # [nn.GroupNorm(g, 30) for g in (4, 7)]: one finding, every message.
                merged[key] = replace(first, message=merge_messages(first.message, f.message))
    inherited = _inherited_only(ctx)
    kept = [
        f
        for f in merged.values()
        if not (f.code in _STRUCTURAL and f.layer_at and (f.line, f.col) in inherited)
    ]
    return sorted(kept, key=lambda f: (f.line, f.col, f.code))


# Rules whose finding depends only on the layers as built, not on the batch, the devices,
# the training script or how the model is used: the base's own file reports the same.
_STRUCTURAL = frozenset(
    {"NRM001", "NRM002", "NRM003", "NRM004", "NRM009", "NRM011", "NRM012", "NRM014"}
)


def _inherited_only(ctx: FileContext) -> set[tuple[int, int]]:
    """The class statements of the file's models that only rename another class
    (``class V6(V5Model): pass``, a docstring at most): a structural finding about another
    file's layer that lands on one is about that file's code, built with that file's
    defaults, and that file reports it, once, where the fix goes (transformers' modular
    files inherit whole models). A subclass with anything of its own (an ``__init__``, a
    ``forward``, a hook its base calls, a class attribute) keeps its findings."""
    out = set()
    for model in ctx.models:
        inst = model.root.instance
        if inst is not None and all(_inert(stmt) for stmt in inst.cls.node.body):
            out.add((inst.cls.node.lineno, inst.cls.node.col_offset + 1))
    return out


def _inert(stmt: ast.stmt) -> bool:
    """``pass``, ``...`` or a docstring."""
    return isinstance(stmt, ast.Pass) or (
        isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
    )
