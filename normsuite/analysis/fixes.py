"""Fixes for findings, as ruff does them: ``normsuite check --diff`` / ``--fix``.

A fix is a set of text edits inside the constructor call a finding points at, never in
another file. Like ruff, a fix is *safe* when it keeps behaviour (a positional ``eps``
written as the keyword it already is) and *unsafe* when it changes numbers or
``state_dict`` keys (``bias=False`` drops a checkpoint key; ``momentum=1 - m``; eps read as
a Keras momentum): those need ``--unsafe-fixes``. :func:`fix_source` re-checks the fixed
text and keeps only fixes that leave it parseable and create no new finding.

>>> src = "import torch.nn as nn\\nbn = nn.BatchNorm2d(64, 0.8)\\n"
>>> from normsuite.analysis.types import Finding
>>> f = Finding("NRM014", "...", line=2, col=6)
>>> [apply_fixes(src, [x]) for x in fixes_for(src, [f], unsafe=False)]
['import torch.nn as nn\\nbn = nn.BatchNorm2d(64, eps=0.8)\\n']
>>> [apply_fixes(src, [x]) for x in fixes_for(src, [f], unsafe=True)]
['import torch.nn as nn\\nbn = nn.BatchNorm2d(64, momentum=0.2)\\n']
"""

from __future__ import annotations

import ast
import difflib
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .ir import SIGNATURES
from .rules.arguments import EPS_SECOND, SUSPICIOUS_EPS
from .types import Finding

_NEWLINE = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Edit:
    """Replace ``source[start:end]`` (character offsets) with ``text``."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Fix:
    code: str
    line: int
    safe: bool
    title: str  # what it does, e.g. "eps=0.8 by keyword"
    edits: tuple[Edit, ...]


class _Offsets:
    """(line, UTF-8 byte column) as ``ast`` gives them -> character offsets."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.starts = [0] + [m.end() for m in _NEWLINE.finditer(source)]

    def __call__(self, line: int, col: int) -> int:
        start = self.starts[line - 1]
        end = self.starts[line] if line < len(self.starts) else len(self.source)
        return start + len(self.source[start:end].encode()[:col].decode(errors="ignore"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        a = self(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        b = self(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return a, b

    def text(self, node: ast.AST) -> str:
        a, b = self.span(node)
        return self.source[a:b]


def _calls_at(tree: ast.AST) -> dict[tuple[int, int], ast.Call]:
    return {
        (n.lineno, n.col_offset + 1): n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)  # findings use 1-based columns, like ruff
    }


def _name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _plain(call: ast.Call) -> bool:
    """No ``*args``/``**kwargs``: every argument is where the text says."""
    return not any(isinstance(a, ast.Starred) for a in call.args) and all(
        k.arg is not None for k in call.keywords
    )


def _number(node: ast.expr) -> float | None:
    """A literal number (``0.8``, ``-1``), else None."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _fmt(value: float) -> str:
    return repr(round(value, 6))


def _keywordize(call: ast.Call, off: _Offsets, sig: tuple[str, ...], first: int) -> list[Edit]:
    """Write positional arguments ``first..`` as ``name=value`` (same meaning)."""
    edits = []
    for i, arg in enumerate(call.args[first:], start=first):
        if i >= len(sig):
            return []
        start, _ = off.span(arg)
        edits.append(Edit(start, start, f"{sig[i]}="))
    return edits


def _eps_fixes(call: ast.Call, off: _Offsets) -> list[Fix]:
    name = _name(call)
    sig = SIGNATURES.get(name)
    if name not in EPS_SECOND or sig is None or len(call.args) < 2 or not _plain(call):
        return []
    keywords = _keywordize(call, off, sig, 1)
    if not keywords:
        return []
    eps_node = call.args[1]
    eps_text = off.text(eps_node)
    fixes = [Fix("NRM014", call.lineno, True, f"eps={eps_text} by keyword", tuple(keywords))]
    start, end = off.span(eps_node)
    rest = keywords[1:]
    if isinstance(eps_node, ast.Constant) and isinstance(eps_node.value, bool):
        edit = Edit(start, end, f"affine={eps_text}")
        if len(call.args) == 2 and "affine" not in {k.arg for k in call.keywords}:
            fixes.append(Fix("NRM014", call.lineno, False, f"affine={eps_text}", (edit,)))
        return fixes
    eps = _number(eps_node)
    given = {k.arg for k in call.keywords}
    if eps is not None and SUSPICIOUS_EPS <= eps < 1 and len(call.args) == 2:
        if "momentum" not in given:  # Keras momentum m is PyTorch 1 - m
            edit = Edit(start, end, f"momentum={_fmt(1 - eps)}")
            fixes.append(Fix("NRM014", call.lineno, False, f"momentum={_fmt(1 - eps)}", (edit,)))
    elif (eps is not None and eps >= 1) or ast.dump(call.args[0]) == ast.dump(eps_node):
        # BatchNorm2d(n, n): drop the eps, keep what follows by keyword.
        prev_end = off.span(call.args[0])[1]
        edit = Edit(prev_end, end, "")
        fixes.append(Fix("NRM014", call.lineno, False, "drop eps", (edit, *rest)))
    return fixes


def _group_norm_fix(call: ast.Call, off: _Offsets, swapped: bool = False) -> list[Fix]:
    """Swap ``GroupNorm(C, G)``: when both are literals and G divides C the other way
    round, or when the finding already worked out, from the values the arguments take
    (``GroupNorm(c, 32)`` with c = 128), that they are swapped."""
    if _name(call) != "GroupNorm" or len(call.args) < 2 or not _plain(call):
        return []
    a, b = call.args[0], call.args[1]
    na, nb = _number(a), _number(b)
    literal = isinstance(na, int) and isinstance(nb, int) and na > nb > 0 and not na % nb
    if not literal and not swapped:
        return []
    ta, tb = off.text(a), off.text(b)
    sa, ea = off.span(a)
    sb, eb = off.span(b)
    edits = (Edit(sa, ea, tb), Edit(sb, eb, ta))
    return [Fix("NRM014", call.lineno, False, "swap the GroupNorm arguments", edits)]


def _momentum_fix(call: ast.Call, off: _Offsets) -> list[Fix]:
    sig = SIGNATURES.get(_name(call), ())
    node: ast.expr | None = None
    for k in call.keywords:
        if k.arg == "momentum":
            node = k.value
    if node is None and "momentum" in sig and sig.index("momentum") < len(call.args):
        node = call.args[sig.index("momentum")]
    m = _number(node) if node is not None else None
    if node is None or m is None or not 0.5 < m < 1:
        return []
    start, end = off.span(node)
    value = _fmt(1 - m)
    return [Fix("NRM009", call.lineno, False, f"momentum={value}", (Edit(start, end, value),))]


def _bias_fix(call: ast.Call, off: _Offsets, tree: ast.Module) -> list[Fix]:
    if not _plain(call):
        return []
    name = _name(call)
    sig = SIGNATURES.get(name)
    if sig is None:
        if not _class_takes_bias(tree, name):
            return []  # a wrapper without a bias parameter: the message says what to add
        sig = ()
    for k in call.keywords:
        if k.arg == "bias":
            start, end = off.span(k.value)
            return [Fix("NRM001", call.lineno, False, "bias=False", (Edit(start, end, "False"),))]
    if "bias" in sig and sig.index("bias") < len(call.args):
        start, end = off.span(call.args[sig.index("bias")])
        return [Fix("NRM001", call.lineno, False, "bias=False", (Edit(start, end, "False"),))]
    last = [*call.args, *call.keywords]
    if not last:
        return []
    end = max(off.span(n)[1] for n in last)
    return [Fix("NRM001", call.lineno, False, "bias=False", (Edit(end, end, ", bias=False"),))]


def _class_takes_bias(tree: ast.Module, name: str) -> bool:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    a = item.args
                    return any(p.arg == "bias" for p in [*a.args, *a.kwonlyargs])
    return False


def fixes_for(source: str, findings: Iterable[Finding], unsafe: bool) -> list[Fix]:
    """One fix per finding that has one: the unsafe one where allowed, else the safe one."""
    tree = ast.parse(source)
    calls = _calls_at(tree)
    off = _Offsets(source)
    out: list[Fix] = []
    for f in findings:
        call = calls.get((f.line, f.col))
        if call is None:
            continue
        if f.code == "NRM014":
            swapped = "look swapped" in f.message
            options = _eps_fixes(call, off) or _group_norm_fix(call, off, swapped)
        elif f.code == "NRM009":
            options = _momentum_fix(call, off)
        elif f.code == "NRM001" and re.search(r"pass bias=False (to the \w+|here)\.", f.message):
            # Not where the message asks for a conditional bias or a new parameter.
            options = _bias_fix(call, off, tree)
        else:
            options = []
        allowed = [x for x in options if x.safe or unsafe]
        if allowed:
            out.append(max(allowed, key=lambda x: not x.safe))  # the unsafe one, when allowed
    return out


def apply_fixes(source: str, fixes: Iterable[Fix]) -> str:
    """Apply the edits of ``fixes``; a fix overlapping one already taken is skipped."""
    taken: list[Edit] = []
    for fix in fixes:
        if any(_overlaps(e, t) for e in fix.edits for t in taken):
            continue
        taken.extend(fix.edits)
    out = source
    for e in sorted(taken, key=lambda e: (e.start, e.end), reverse=True):
        out = out[: e.start] + e.text + out[e.end :]
    return out


def _overlaps(a: Edit, b: Edit) -> bool:
    """Edits that touch the same text; an insertion touches an edit it sits in or at the
    edge of (``eps=`` before the ``0.8`` another fix replaces)."""
    if a.start == a.end:
        return b.start <= a.start <= b.end
    if b.start == b.end:
        return a.start <= b.start <= a.end
    return a.start < b.end and b.start < a.end


def _counts(findings: Iterable[Finding]) -> Counter[tuple[str, int]]:
    return Counter((f.code, f.line) for f in findings)


def fix_source(
    source: str,
    findings: list[Finding],
    check: Callable[[str], list[Finding]],
    unsafe: bool = False,
) -> tuple[str, list[Fix]]:
    """The fixed source and the fixes applied. ``check`` analyzes a text (with the same
    options, config and ``# noqa`` as the original): a fix is kept only when the result
    parses and has no finding the original did not have. Fixes never add or remove lines,
    so findings compare by (code, line)."""
    candidates = fixes_for(source, findings, unsafe)
    if not candidates:
        return source, []
    before = _counts(findings)

    def acceptable(chosen: list[Fix]) -> str | None:
        text = apply_fixes(source, chosen)
        try:
            ast.parse(text)
        except (SyntaxError, ValueError):
            return None
        after = _counts(check(text))
        return text if not (after - before) else None

    text = acceptable(candidates)
    if text is not None:
        return text, candidates
    kept: list[Fix] = []  # one at a time: drop the fixes that create a finding
    for fix in candidates:
        if acceptable([*kept, fix]) is not None:
            kept.append(fix)
    return apply_fixes(source, kept), kept


def _lines(text: str) -> list[str]:
    """Lines with their ends, split where ``patch`` splits (not at form feeds)."""
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def unified_diff(path: str, before: str, after: str) -> str:
    """A unified diff of one file that ``patch -p0`` (and ``git apply -p0``) apply."""
    lines = difflib.unified_diff(_lines(before), _lines(after), path, path)
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)
