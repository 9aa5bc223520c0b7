"""Which models of a file are not trained: every parameter frozen.

A network whose weights are fixed (a perceptual-loss VGG, a feature extractor used only
inside the loss) is run, not trained: advice to add a norm layer to it is no advice. Two
ways real code freezes a whole model, both read here:

- its own ``__init__``: ``for p in self.parameters(): p.requires_grad = False`` or
  ``self.requires_grad_(False)`` (fast-neural-style's ``Vgg16``);
- the file's code, on the name the model is bound to: ``lossnet = LossNet()`` then
  ``lossnet.requires_grad_(False)`` or the same loop over ``lossnet.parameters()``.

Only an unconditional freeze counts (not one under ``if config.freeze:``), in
``__init__`` after every submodule it builds; a file that sets ``requires_grad`` back to
True anywhere freezes nothing here (it may unfreeze later: fine-tuning schedules).

>>> import ast
>>> from types import SimpleNamespace
>>> src = "class V:\\n    def __init__(self):\\n        self.requires_grad_(False)\\n"
>>> tree = ast.parse(src)
>>> index = SimpleNamespace(tree=tree, source=src, memo={})
>>> frozen_reason(tree.body[0], index)
'V freezes all its parameters (requires_grad=False)'
"""

from __future__ import annotations

import ast
from typing import Any

from .tree_facts import tree_facts


def frozen_reason(cls: ast.ClassDef, index: Any) -> str | None:
    """Why the class's parameters are all frozen (one line), or None."""
    facts = _file_facts(index)
    if facts is None:
        return None
    bound, frozen = facts
    init = next(
        (n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None
    )
    if init is not None:
        # unconditional, and last: a submodule built after it (P-tuning's prefix encoder
        # beside a frozen ChatGLM) trains; one frozen under `if config.freeze:` may not
        at = next((i for i, s in enumerate(init.body) if _frozen_owner(s) == "self"), None)
        if at is not None and not any(_builds(s) for s in init.body[at + 1 :]):
            return f"{cls.name} freezes all its parameters (requires_grad=False)"
    for name in bound.get(cls.name, ()):
        if name in frozen:
            return f"`{name}` ({cls.name}) has all its parameters frozen (requires_grad=False)"
    return None


def _file_facts(index: Any) -> tuple[dict[str, list[str]], set[str]] | None:
    """Once per file (from its one walk): class name -> the names bound to an instance, and
    the names an unconditional statement of the module or a function freezes. None when
    the file freezes nothing, or unfreezes something."""
    key = ("frozen-file",)
    if key not in index.memo:
        source = index.source
        if "requires_grad" not in source or _unfreezes(source):
            index.memo[key] = None
        else:
            facts = tree_facts(index)
            bodies = [index.tree.body, *(fn.body for fn in facts.of(ast.FunctionDef))]
            frozen = {owner for body in bodies for s in body if (owner := _frozen_owner(s))}
            index.memo[key] = (_bound_names(facts.of(ast.Assign)), frozen)
    return index.memo[key]


def _frozen_owner(stmt: ast.stmt) -> str | None:
    """The name a statement of a body (not under an ``if``) freezes, if it does."""
    node = stmt.value if isinstance(stmt, ast.Expr) else stmt
    return _freezes(node) if isinstance(node, (ast.Call, ast.For)) else None


def _builds(stmt: ast.stmt) -> bool:
    """``self.x = Something(...)``: an attribute that may hold new parameters."""
    return (
        isinstance(stmt, ast.Assign)
        and isinstance(stmt.value, ast.Call)
        and any(
            isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
            for t in stmt.targets
        )
    )


def _unfreezes(source: str) -> bool:
    compact = source.replace(" ", "")
    return any(
        w in compact for w in ("requires_grad=True", "requires_grad_(True)", "requires_grad_()")
    )


def _freezes(node: ast.AST) -> str | None:
    """The name ``x`` of ``x.requires_grad_(False)``, or of ``for p in x.parameters():
    p.requires_grad = False`` (the whole model, not one submodule's parameters)."""
    if isinstance(node, ast.Call):
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "requires_grad_"
            and isinstance(func.value, ast.Name)
            and _false(node.args[0] if node.args else _keyword(node, "requires_grad"))
        ):
            return func.value.id
        return None
    if not isinstance(node, ast.For) or not isinstance(node.target, ast.Name):
        return None
    it = node.iter
    if not (
        isinstance(it, ast.Call)
        and isinstance(it.func, ast.Attribute)
        and it.func.attr == "parameters"
        and isinstance(it.func.value, ast.Name)
    ):
        return None
    var = node.target.id
    sets_false = any(
        isinstance(stmt, ast.Assign)
        and any(
            isinstance(t, ast.Attribute)
            and t.attr == "requires_grad"
            and isinstance(t.value, ast.Name)
            and t.value.id == var
            for t in stmt.targets
        )
        and _false(stmt.value)
        for stmt in node.body
    )
    return it.func.value.id if sets_false else None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _false(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _bound_names(assigns: list[ast.Assign]) -> dict[str, list[str]]:
    """Class name -> the names bound to ``ClassName(...)``: ``x = C()``, ``a, x = A(), C()``."""
    out: dict[str, list[str]] = {}
    for node in assigns:
        if len(node.targets) != 1:
            continue
        target, value = node.targets[0], node.value
        pairs = (
            list(zip(target.elts, value.elts, strict=False))
            if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple)
            else [(target, value)]
        )
        for name, call in pairs:
            if (
                isinstance(name, ast.Name)
                and isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
            ):
                out.setdefault(call.func.id, []).append(name.id)
    return out


__all__ = ["frozen_reason"]
