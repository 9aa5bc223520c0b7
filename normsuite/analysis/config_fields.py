"""A field of a config object, read without running the script: ``cfg.batch_size``.

The config may be a ``@dataclass``, a ``NamedTuple`` or a plain class with class-level
defaults (in this file or another of the project), an instance built with keywords
(``TrainConfig(batch_size=2)``, ``SimpleNamespace(batch_size=2)``), a dict config
(``OmegaConf.create({...})``, ``EasyDict({...})``), and it may nest
(``cfg.train.batch_size`` with ``train: TrainConfig = field(default_factory=TrainConfig)``).

>>> import ast
>>> from normsuite.analysis.extract import ModuleIndex
>>> src = '''
... from dataclasses import dataclass, field
... @dataclass
... class Train:
...     batch_size: int = 4
... @dataclass
... class Config:
...     train: Train = field(default_factory=Train)
... cfg = Config()
... '''
>>> index = ModuleIndex(ast.parse(src), src)
>>> field_default(ast.parse("cfg.train.batch_size", mode="eval").body, index)
(4, 5)
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

from .ir import UNKNOWN
from .project import display_path

# Constructors of attribute-access dicts: ``OmegaConf.create({"batch_size": 4}).batch_size``
_DICT_CONFIGS = frozenset(
    {"create", "EasyDict", "edict", "ConfigDict", "DictConfig", "Munch", "AttrDict", "Box"}
)
# (the expression that holds the fields, the index of its file)
_Holder = tuple[ast.expr, Any]
_MAX_NESTING = 8


def field_default(
    expr: ast.Attribute, index: Any, funcs: Sequence[ast.FunctionDef] = ()
) -> tuple[Any, int | str] | None:
    """``config.batch_size`` where ``config = Config()`` (module level, a parameter default
    ``def main(hp=HParams())`` of an enclosing function in ``funcs``, or imported from
    another file of the project), ``Config.batch_size``, or such an expression rooted in a
    constructor call (``Config().train.batch_size``): (value, line of the value; a
    ``config.py:7`` string when it is in another file), unless it cannot be read."""
    holder = _holder(expr.value, index, funcs, 0)
    if holder is None:
        return None
    member = _member(holder, expr.attr)
    if member is None:
        return None
    value_expr, home = member
    value = home.eval(value_expr, {}, None)
    if value is UNKNOWN:
        return None
    return value, _line_in(home, value_expr.lineno, index)


def _holder(root: ast.expr, index: Any, funcs: Sequence[ast.FunctionDef], depth: int):
    """What holds the fields of ``root``: a constructor call, a dict literal or a class
    expression, with the index of its file; None when that is not known."""
    if depth > _MAX_NESTING:
        return None
    if isinstance(root, (ast.Call, ast.Dict)):
        return root, index
    if isinstance(root, ast.Name):
        if root.id in index.class_nodes:
            return root, index  # Config.batch_size: the class's own default
        call = _parameter_default_call(root.id, funcs) or _module_assignment(root.id, index)
        if call is not None:
            return call, index
        if root.id in index.imports:
            # ``from config import config``: the instance another file of the project made
            call, home = _imported_assignment(index.imports[root.id], index)
            return (call, home) if call is not None else None
        return None
    if isinstance(root, ast.Attribute):
        outer = _holder(root.value, index, funcs, depth + 1)
        member = _member(outer, root.attr) if outer is not None else None
        if member is None:
            return (root, index) if outer is None else None  # cfgmod.Config.batch_size
        return _holder(member[0], member[1], (), depth + 1)
    return None


def _member(holder: _Holder, attr: str) -> tuple[ast.expr, Any] | None:
    """The expression that sets field ``attr`` of ``holder``, and its file's index."""
    node, home = holder
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                return None  # {**base, ...}: the key may come from elsewhere
            if isinstance(key, ast.Constant) and key.value == attr:
                return value, home
        return None
    if isinstance(node, ast.Call):
        for kw in node.keywords:
            if kw.arg == attr:
                return kw.value, home
            if kw.arg is None:
                return None  # Config(**overrides)
        name = node.func.attr if isinstance(node.func, ast.Attribute) else ""
        name = name or getattr(node.func, "id", "")
        if name in _DICT_CONFIGS and len(node.args) == 1 and isinstance(node.args[0], ast.Dict):
            return _member((node.args[0], home), attr)
        if node.args:
            return None  # positional fields: not worth guessing the order
        node = node.func
    cls, cls_home = _class_node(node, home)
    if cls is None:
        return None
    for stmt in cls.body:
        target = stmt.target if isinstance(stmt, ast.AnnAssign) else None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
        value = getattr(stmt, "value", None)
        if isinstance(target, ast.Name) and target.id == attr and value is not None:
            return _field_default_expr(value), cls_home
    return None


def _line_in(home: Any, line: int, asked: Any) -> int | str:
    """A line of the asking file, or ``config.py:7`` when the default is in another."""
    view = getattr(home, "project", None)
    if home is asked or view is None:
        return line
    return f"{display_path(view.path, view.project.root)}:{line}"


def _field_default_expr(value: ast.expr) -> ast.expr:
    """``field(default=4)`` -> ``4``; ``field(default_factory=Train)`` -> ``Train()`` (a
    dataclass field); anything else as it is."""
    if isinstance(value, ast.Call):
        func = value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name == "field":
            for kw in value.keywords:
                if kw.arg == "default":
                    return kw.value
                if kw.arg == "default_factory":
                    return ast.copy_location(ast.Call(kw.value, [], []), kw.value)
    return value


def _parameter_default_call(name: str, funcs: Sequence[ast.FunctionDef]) -> ast.Call | None:
    """The ``HParams()`` default of a parameter ``name`` of the innermost enclosing
    function that has one (``def main(hp=HParams())``)."""
    for fn in reversed(funcs):
        a = fn.args
        params = [*a.posonlyargs, *a.args]
        pairs = list(zip(params[len(params) - len(a.defaults) :], a.defaults, strict=True))
        pairs += [(p, d) for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d]
        for param, default in pairs:
            if param.arg == name:
                return default if isinstance(default, ast.Call) else None
    return None


def _imported_assignment(qual: str, index: Any) -> tuple[ast.Call | None, Any]:
    """(``Config()`` of ``config = Config()`` in the project module ``qual`` names, that
    module's index), or (None, index)."""
    view = getattr(index, "project", None)
    module, _, name = qual.rpartition(".")
    if view is None or not module:
        return None, index
    path = view.project.module_file(module, view.path)
    dep = view.project.index(path) if path is not None else None
    call = _module_assignment(name, dep) if dep is not None else None
    return (call, dep) if call is not None else (None, index)


def _module_assignment(name: str, index: Any) -> ast.Call | None:
    for stmt in index.tree.body:
        if (
            isinstance(stmt, ast.Assign)
            and isinstance(stmt.value, ast.Call)
            and any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets)
        ):
            return stmt.value
    return None


def _class_node(expr: ast.expr, index: Any) -> tuple[ast.ClassDef | None, Any]:
    if isinstance(expr, ast.Name) and expr.id in index.class_nodes:
        return index.class_nodes[expr.id], index
    qual = index.qualname(expr)
    if qual and index.project is not None:
        found = index.project.plain_class(qual)
        if found is not None:
            return found
    return None, None
