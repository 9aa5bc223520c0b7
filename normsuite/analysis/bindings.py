"""What a name inside a function stands for: its local assignments and the calls that
pass it, as the batch scanner reads them.

Training scripts keep the batch in locals (``bs = 4``, ``cfg = TrainConfig()``,
``batch_size = cfg.train.batch_size``) or pass it down (``train(model, batch_size=8)``);
:class:`Bindings` records those while the scanner walks the file, and
:meth:`Bindings.substitute` rewrites ``cfg.batch_size`` into ``TrainConfig().batch_size``
so the readers of constants, configs and dataclass defaults see what the name holds.

Only what surely holds at the use is taken: the last assignment in a block around the use,
with no later assignment in a branch that may or may not run (``if debug: bs = 1``), no
loop or tuple target, no augmented assignment. Anything else leaves the name unknown.

>>> import ast
>>> tree = ast.parse("def main():\\n    bs = 4\\n    load(batch_size=bs)\\n")
>>> b = Bindings()
>>> fn = tree.body[0]
>>> b.assign(fn, fn.body[0], ())
>>> use = fn.body[1].value.keywords[0].value
>>> ast.unparse(b.substitute(use, [fn], 3, ()))
'4'
"""

from __future__ import annotations

import ast
from typing import Any

# (line, the value bound, or None where it is not readable, the branches around it)
_Binding = tuple[int, ast.expr | None, tuple]
MAX_DEPTH = 6  # bs = n -> n = cfg.bs -> cfg = Config(): chains deeper than this are unknown


class Bindings:
    """Assignments to names inside functions, and calls of module-level functions."""

    def __init__(self, tree: ast.Module | None = None) -> None:
        self._tree = tree  # the file: helpers that change a config handed to them
        self._helpers: set[str] | None = None
        self._sets: dict[tuple[int, str], list[_Binding]] = {}
        # function name -> (call, the functions around it, its branches)
        self.calls: dict[str, list[tuple[ast.Call, list[ast.FunctionDef], tuple]]] = {}

    def assign(self, fn: ast.AST, stmt: ast.stmt, block: tuple) -> None:
        """Record the names ``stmt`` (an assignment, ``for``, ``with``, ...) binds in ``fn``."""
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    self._add(fn, target.id, (stmt.lineno, stmt.value, block))
                else:
                    self._opaque(fn, target, stmt.lineno, block)
        elif isinstance(stmt, ast.AnnAssign):
            if isinstance(stmt.target, ast.Name) and stmt.value is not None:
                self._add(fn, stmt.target.id, (stmt.lineno, stmt.value, block))
        elif isinstance(stmt, ast.AugAssign):  # bs //= world_size
            self._opaque(fn, stmt.target, stmt.lineno, block)
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            self._opaque(fn, stmt.target, stmt.lineno, (*block, (id(stmt), "body")))
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                if item.optional_vars is not None:
                    self._opaque(fn, item.optional_vars, stmt.lineno, block)

    def walrus(self, fn: ast.AST, node: ast.NamedExpr, block: tuple) -> None:
        self._opaque(fn, node.target, node.lineno, block)

    def call(self, node: ast.Call, funcs: list[ast.FunctionDef], block: tuple) -> None:
        if isinstance(node.func, ast.Name):
            self.calls.setdefault(node.func.id, []).append((node, list(funcs), block))

    def _add(self, fn: ast.AST, name: str, binding: _Binding) -> None:
        self._sets.setdefault((id(fn), name), []).append(binding)

    def _opaque(self, fn: ast.AST, target: ast.expr, line: int, block: tuple) -> None:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                self._add(fn, node.id, (line, None, block))

    def _changed(self, fn: ast.AST, name: str, start: int, end: int) -> bool:
        """Between ``start`` and ``end``, ``fn`` changes the object ``name`` holds through a
        method (``cfg.update(...)``), ``setattr``, or a helper of the file that sets an
        attribute of what it is handed."""
        if self._helpers is None:
            self._helpers = _changing_helpers(self._tree) if self._tree is not None else set()
        helpers = self._helpers
        for node in ast.walk(fn):
            if not isinstance(node, ast.Call) or not start <= node.lineno <= end:
                continue
            func = node.func
            owner = func.value if isinstance(func, ast.Attribute) else None
            if isinstance(owner, ast.Name) and owner.id == name and func.attr in _CHANGING:
                return True
            handed = any(isinstance(a, ast.Name) and a.id == name for a in node.args)
            if handed and getattr(func, "id", None) in {"setattr", *helpers}:
                return True
        return False

    def local_in(self, fn: ast.AST, name: str) -> bool:
        return (id(fn), name) in self._sets

    def substitute(
        self, expr: ast.expr, funcs: list[ast.FunctionDef], line: int, around: tuple
    ) -> ast.expr | None:
        """``expr`` with its root name replaced by what a local assignment surely bound it
        to before ``line`` (repeatedly); ``expr`` itself when the root is not a local of
        the innermost function that has it; None when it is a local whose value is not
        sure here."""
        for _ in range(MAX_DEPTH):
            name = root_name(expr)
            fn = next((f for f in reversed(funcs) if self.local_in(f, name or "")), None)
            if name is None or fn is None:
                return expr
            inner = next((f for f in reversed(funcs) if name in param_names(f)), None)
            if inner is not None and funcs.index(inner) > funcs.index(fn):
                return expr  # a parameter of a function nested in the one assigning it
            sets = self._sets[(id(fn), name)]
            if _rebound_in_loop(fn, sets, line):
                return None  # for stage in ...: loader(bs); bs //= 4 -> 128, 32, 8
            found = _sure(sets, line, around)
            if found is None:
                return None
            if _parsed_arguments(found[1]):
                return expr  # args = parser.parse_args(): the argparse reader knows these
            if expr is not _root(expr) and self._changed(fn, name, found[0], line):
                return None  # cfg.update(yaml.safe_load(...)), apply_overrides(cfg, ...)
            line, value, around = found
            expr = replace_root(expr, value)
        return None


_CHANGING = frozenset(
    {"update", "merge_from_file", "merge_from_list", "merge_with", "set", "setdefault"}
)


def _root(expr: ast.expr) -> ast.expr:
    while isinstance(expr, (ast.Attribute, ast.Subscript)):
        expr = expr.value
    return expr


def _changing_helpers(tree: ast.Module) -> set[str]:
    """Functions of the file that set an attribute or key of one of their parameters
    (``setattr(cfg, key, value)``, ``cfg.lr = ...``, ``cfg[key] = ...``)."""
    out = set()
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        params = set(param_names(fn))
        for node in ast.walk(fn):
            target = None
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setattr":
                target = node.args[0] if node.args else None
            elif isinstance(node, (ast.Assign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                target = next(
                    (t.value for t in targets if isinstance(t, (ast.Attribute, ast.Subscript))),
                    None,
                )
            if isinstance(target, ast.Name) and target.id in params:
                out.add(fn.name)
                break
    return out


def _rebound_in_loop(fn: ast.AST, sets: list[_Binding], line: int) -> bool:
    """A binding after ``line`` inside a loop around it reaches the use on the next pass
    (a batch halved after an out-of-memory error, or shrunk per stage)."""
    later = [b[0] for b in sets if b[0] > line]
    if not later:
        return False
    for loop in ast.walk(fn):
        if isinstance(loop, (ast.For, ast.AsyncFor, ast.While)):
            end = loop.end_lineno or loop.lineno
            if loop.lineno <= line <= end and any(loop.lineno <= n <= end for n in later):
                return True
    return False


def _sure(sets: list[_Binding], line: int, around: tuple) -> _Binding | None:
    """The binding that holds at ``line`` in ``around``: the last one before it in a
    block around it, when no binding in another branch comes after it."""
    before = [b for b in sets if b[0] < line]
    sure = [b for b in before if around[: len(b[2])] == b[2]]
    if not sure or sure[-1][1] is None:
        return None
    last = sure[-1]
    if any(b[0] > last[0] and around[: len(b[2])] != b[2] for b in before):
        return None  # if debug: bs = 1 -> either value may reach the use
    return last


_PARSE = frozenset({"parse_args", "parse_known_args", "parse_intermixed_args", "vars"})


def _parsed_arguments(value: ast.expr | None) -> bool:
    """``parser.parse_args()`` / ``vars(parser.parse_args())``."""
    func = value.func if isinstance(value, ast.Call) else None
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name in _PARSE


def root_name(expr: ast.expr) -> str | None:
    """``cfg`` of ``cfg.train.batch_size`` / ``cfg["bs"]`` / ``cfg``."""
    while isinstance(expr, (ast.Attribute, ast.Subscript)):
        expr = expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def replace_root(expr: ast.expr, value: ast.expr) -> ast.expr:
    """``expr`` with its root name replaced by ``value`` (a new node; ``expr`` untouched)."""
    if isinstance(expr, ast.Attribute):
        new: ast.expr = ast.Attribute(replace_root(expr.value, value), expr.attr, ast.Load())
    elif isinstance(expr, ast.Subscript):
        new = ast.Subscript(replace_root(expr.value, value), expr.slice, ast.Load())
    else:
        return value
    return ast.copy_location(new, expr)


def param_names(fn: Any) -> list[str]:
    a = fn.args
    return [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]


def argument(call: ast.Call, fn: ast.FunctionDef, name: str) -> ast.expr | bool | None:
    """The expression ``call`` passes for parameter ``name`` of ``fn``; None when it passes
    nothing (the default holds); False when it may pass it unseen (``*args``, ``**kw``)."""
    a = fn.args
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    positional = [p.arg for p in (*a.posonlyargs, *a.args)]
    if name in positional:
        i = positional.index(name)
        if any(isinstance(arg, ast.Starred) for arg in call.args[: i + 1]):
            return False
        if i < len(call.args):
            return call.args[i]
    if any(kw.arg is None for kw in call.keywords):
        return False
    return None
