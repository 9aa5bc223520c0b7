"""One walk of a file's tree answers every whole-file question (memoized per file).

``ast.walk`` costs about half of ``ast.parse`` on a large tree, so a question asked of the
whole file (which classes does this class use, which names does it call, where are the
loops) must not walk it again. :func:`tree_facts` walks once, in ``ast.walk``'s order
(breadth first: answers that take the first match stay the same), and records:

- every node by its type (the expression-context singletons ``Load``/``Store`` excepted:
  nobody asks for them, and they are a sixth of all nodes);
- for each class and function definition, the names read in its body, the names it
  calls as ``name(...)``, and its loops, returns and calls, nested definitions included
  (what ``ast.walk(defn)`` would see).

>>> import ast
>>> from types import SimpleNamespace
>>> tree = ast.parse("class A:\\n    def f(self):\\n        return B(c)\\n")
>>> facts = tree_facts(SimpleNamespace(tree=tree, memo={}))
>>> cls = tree.body[0]
>>> facts.loads_in(cls), facts.calls_in(cls), len(facts.of(ast.Call))
(['B', 'c'], ['B'], 1)
"""

from __future__ import annotations

import ast
from collections import deque
from typing import Any, Protocol

_DEFS = frozenset({ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef})
# Kept per definition, for questions about one class or method (loops of a forward).
_INNER = frozenset({ast.For, ast.AsyncFor, ast.While, ast.Return, ast.Call})
_AST = ast.AST


class _Indexed(Protocol):
    tree: ast.Module
    memo: dict[Any, Any]


class TreeFacts:
    """What one walk of a tree found; see the module docstring."""

    def __init__(self, tree: ast.AST) -> None:
        self.by_type: dict[type, list[ast.AST]] = {}
        self._loads: dict[int, dict[str, None]] = {}
        self._calls: dict[int, dict[str, None]] = {}
        self._inner: dict[int, list[ast.AST]] = {}
        self._walk(tree)

    def of(self, kind: type) -> list[Any]:
        """Every node of type ``kind`` (exact type, not subclasses), in ``ast.walk`` order."""
        return self.by_type.get(kind, [])

    def loads_in(self, defn: ast.AST) -> list[str]:
        """Names read (``ast.Load``) inside a class/function definition, first use first."""
        if id(defn) not in self._loads:  # a node of another tree: walk it alone
            return TreeFacts(defn).loads_in(defn)
        return list(self._loads[id(defn)])

    def calls_in(self, defn: ast.AST) -> list[str]:
        """Names called as ``name(...)`` inside a definition, first call first."""
        if id(defn) not in self._calls:
            return TreeFacts(defn).calls_in(defn)
        return list(self._calls[id(defn)])

    def nodes_in(self, defn: ast.AST, kinds: tuple[type, ...]) -> list[Any]:
        """The loops, returns and calls (``kinds``, a subset of those) inside a definition,
        in ``ast.walk(defn)`` order."""
        if id(defn) not in self._inner:
            return TreeFacts(defn).nodes_in(defn, kinds)
        return [n for n in self._inner[id(defn)] if n.__class__ in kinds]

    def _walk(self, tree: ast.AST) -> None:
        by_type, loads, calls, inner = self.by_type, self._loads, self._calls, self._inner
        name_kind, call_kind, load_kind = ast.Name, ast.Call, ast.Load
        # (node, the ids of the definitions around it): breadth first, as ast.walk. A tree
        # that is a part of a file (a lambda, a statement) is a scope of its own.
        root: tuple[int, ...] = ()
        if not isinstance(tree, ast.Module) and tree.__class__ not in _DEFS:
            root = (id(tree),)
            loads[id(tree)], calls[id(tree)], inner[id(tree)] = {}, {}, []
        todo: deque[tuple[ast.AST, tuple[int, ...]]] = deque([(tree, root)])
        pop, push = todo.popleft, todo.append
        while todo:
            node, owners = pop()
            kind = node.__class__
            bucket = by_type.get(kind)
            if bucket is None:
                by_type[kind] = [node]
            else:
                bucket.append(node)
            if kind is name_kind:
                if owners and node.ctx.__class__ is load_kind:  # type: ignore[attr-defined]
                    for owner in owners:
                        loads[owner][node.id] = None  # type: ignore[attr-defined]
                continue  # a Name's only child is its context
            if owners and kind in _INNER:
                for owner in owners:
                    inner[owner].append(node)
                if kind is call_kind and node.func.__class__ is name_kind:  # type: ignore[attr-defined]
                    for owner in owners:
                        calls[owner][node.func.id] = None  # type: ignore[attr-defined]
            if kind in _DEFS:
                loads[id(node)], calls[id(node)], inner[id(node)] = {}, {}, []
                owners = (*owners, id(node))
            for field in _FIELDS.get(kind) or _fields(kind):
                value = getattr(node, field, None)
                if value.__class__ is list:
                    for item in value:  # type: ignore[union-attr]
                        if isinstance(item, _AST):
                            push((item, owners))
                elif isinstance(value, _AST):
                    push((value, owners))


_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields(kind: type) -> tuple[str, ...]:
    """A node type's child fields, less ``ctx`` (expression contexts are shared singletons
    that nobody asks for: a sixth of all nodes)."""
    _FIELDS[kind] = tuple(f for f in kind._fields if f != "ctx")  # type: ignore[attr-defined]
    return _FIELDS[kind]


def tree_facts(index: _Indexed) -> TreeFacts:
    """The facts of ``index.tree``, walked on first use and kept in ``index.memo``."""
    # Kept on the tree, not the index: a file read as a dependency and then analyzed has
    # two indexes over one tree (project.Project.parse), and one walk serves both.
    facts = getattr(index.tree, "_normsuite_facts", None)
    if facts is None:
        facts = TreeFacts(index.tree)
        index.tree._normsuite_facts = facts  # type: ignore[attr-defined]
    return facts


def class_facts(cls: Any, index: _Indexed | None = None) -> TreeFacts:
    """The facts of the file that defines ``cls`` (a ``ClassInfo``: its ``home`` index, which
    is another file's for a class of the project; else ``index``). Asked about a method it
    inherits from another file, the facts walk that method alone."""
    home = getattr(cls, "home", None) or index
    if home is None:
        raise ValueError(f"{cls.name}: no index to take its file's facts from")
    return tree_facts(home)


def self_attribute(node: ast.AST | None) -> str | None:
    """``self.name`` -> ``"name"`` (a call's ``func``, a subscript's value, a target), else
    None."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    ):
        return node.attr
    return None


def called_name(func: ast.AST) -> str:
    """The last name of a call's ``func``: ``torch.sigmoid`` and ``sigmoid`` -> "sigmoid"."""
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


__all__ = ["TreeFacts", "called_name", "class_facts", "self_attribute", "tree_facts"]
