"""What the evaluator does with code it cannot decide (issue 13): loops over iterables it
cannot list, ``if``/ternaries on unknown conditions or decided only by a parameter's
default, comprehensions over unknown iterables.

The rule is "seen, never guessed": the layers such code builds are kept (in lists fenced by
opaque placeholders, or as *alternates* of the attribute they would be assigned to, see
:class:`~normsuite.analysis.ir.ModuleInstance`), while every name whose value depends on the
unknown becomes ``UNKNOWN``. :class:`UndecidedCode` is mixed into
:class:`~normsuite.analysis.extract.ModuleIndex`, whose evaluator it uses.

>>> import ast
>>> from normsuite.analysis.extract import ModuleIndex
>>> src = "import torch.nn as nn\\nclass M(nn.Module):\\n def __init__(self, cfg):\\n"
>>> src += "  super().__init__()\\n  layers = []\\n  for w in cfg:\\n"
>>> src += "   layers += [nn.Conv2d(3, w, 3), nn.BatchNorm2d(w)]\\n"
>>> src += "  self.body = nn.Sequential(*layers)\\n"
>>> mod = ModuleIndex(ast.parse(src), src)
>>> body = mod.instantiate(mod.classes["M"]).attrs["body"]
>>> [c.type for c in body.children], body.children[2].num_channels
(['Opaque', 'Conv2d', 'BatchNorm2d', 'Opaque'], None)
"""

from __future__ import annotations

import ast
from typing import Any

from .ir import OPAQUE, UNKNOWN, Layer, ModuleInstance

DEFAULTED = "__defaulted__"  # env key: parameters that took their default (or were fed one)
_CONST_TYPES = (int, float, str, bool, type(None))


class UndecidedCode:
    """Mixin of ModuleIndex: the evaluator's handling of undecided code."""

    # Set by ModuleIndex: the statements after the if being run, the collector of layers
    # a skipped path would return, and the evaluator's call depth.
    _alt: list[Layer] | None
    _depth: int

    def _opaque(self, node: ast.AST) -> Layer:
        return Layer(OPAQUE, getattr(node, "lineno", 0), getattr(node, "col_offset", 0), "")

    def _exec_unknown_loop(
        self, stmt: ast.For | ast.AsyncFor | ast.While, env: dict[str, Any], inst: Any
    ):
        """A loop over an iterable the evaluator cannot list (a config list, ``zip(cfg)``):
        its body runs once with the loop variable and every name the body reassigns unknown,
        so the layers it builds are seen but no count, width or order is guessed. Layers it
        adds to a list are fenced by opaque placeholders (their neighbours are unknown)."""
        stored = stored_names(stmt)
        lists = {k: v for k, v in env.items() if isinstance(v, list)}
        lengths = {id(v): len(v) for v in lists.values()}
        owned = [*env.values(), *(inst.attrs.values() if isinstance(inst, ModuleInstance) else ())]
        containers = {
            id(v): (v, len(v.children))
            for v in owned
            if isinstance(v, Layer) and v.type in ("ModuleList", "Sequential")
        }
        for name in stored:
            if name in env and not isinstance(env[name], list):
                env[name] = UNKNOWN  # loop-carried: the first iteration's value is a guess
        if not isinstance(stmt, ast.While):  # a while loop has no loop variable
            self._assign(stmt.target, UNKNOWN, env, inst)
        try:
            self._exec_body(stmt.body, env, inst)
        finally:
            self._fence(stmt, lists, lengths, env, start=True)
            for container, n in containers.values():
                if len(container.children) > n:  # ``self.blocks.append(...)`` in the loop
                    container.children.insert(n, self._opaque(stmt))
                    container.children.append(self._opaque(stmt))
                    container.child_names[n:] = [str(i) for i in range(n, len(container.children))]
            for name in stored:
                if name in env and not isinstance(env[name], list):
                    env[name] = UNKNOWN

    def _fence(
        self,
        node: ast.AST,
        lists: dict[str, list[Any]],
        lengths: dict[int, int],
        env: dict[str, Any],
        start: bool,
    ) -> None:
        """Put opaque placeholders around what undecided code added to the lists that
        were in scope (grown in place, or rebound by ``layers += [...]``)."""
        for name, old in lists.items():
            new = env.get(name)
            n = lengths[id(old)]
            if new is old and len(old) > n:
                if start:
                    old.insert(n, self._opaque(node))
                old.append(self._opaque(node))
            elif (
                isinstance(new, list)
                and new is not old
                and len(new) > n
                and all(a is b for a, b in zip(new, old[:n], strict=False))
            ):
                if start:
                    new.insert(n, self._opaque(node))
                new.append(self._opaque(node))
            if isinstance(env.get(name), list):
                lengths[id(env[name])] = len(env[name])

    def _exec_branches(
        self,
        stmt: ast.If,
        env: dict[str, Any],
        inst: Any,
        test: Any,
        defaulted: set[str],
        rest: list[ast.stmt],
    ) -> None:
        """Both branches of an undecided ``if``. Names the branches set differently become
        unknown (``x = None`` on one side counts as "not set": ``if norm is None: norm =
        nn.BatchNorm2d`` keeps the layer); layers both add to a list are kept, fenced from
        each other; an attribute set on both sides keeps the main branch's value and the
        other branch's layer as an alternate."""
        from .extract import _Return

        before = dict(env)
        lists = {k: v for k, v in env.items() if isinstance(v, list)}
        lengths = {id(v): len(v) for v in lists.values()}
        module = inst if isinstance(inst, ModuleInstance) else None
        attrs_before = dict(module.attrs) if module is not None else {}
        # The branch the defaults pick runs with them; the other one without.
        first, second = (stmt.body, stmt.orelse)
        if test is not UNKNOWN and not test:
            first, second = second, first
        try:
            self._exec_body(first, env, inst)  # a return here returns, as before
        except _Return:
            if test is not UNKNOWN:  # the default returns early: what would the rest build?
                self._shadow([*second, *rest], before, defaulted, inst)
            raise
        self._fence(stmt, lists, lengths, env, start=False)
        attrs_first = dict(module.attrs) if module is not None else {}
        if module is not None:
            module.attrs.clear()
            module.attrs.update(attrs_before)
        other = dict(before)
        for name in defaulted:
            other[name] = UNKNOWN
        if test is not UNKNOWN:
            # The branch the defaults skip belongs to callers who pass other values: the
            # "off" defaults it would read (hidden=0, norm=None) are not theirs.
            for name in env.get(DEFAULTED, ()):
                if name in other and not nonempty(other[name]):
                    other[name] = UNKNOWN
        lists_other = {k: v for k, v in other.items() if isinstance(v, list)}
        try:
            self._exec_body(second, other, inst)
        finally:
            self._fence(stmt, lists_other, lengths, other, start=False)
            if module is not None:
                self._merge_attrs(module, attrs_before, attrs_first)
            orphans = _merge_env(env, other, before, defaulted, keep_first=test is not UNKNOWN)
            if module is not None:
                # A local that holds a different module on each side (``local =
                # FusedMBConv(...)`` / ``local = MBConv(...)``): the one not kept is checked.
                module.alternates.extend(orphans)

    def _shadow(
        self, body: list[ast.stmt], before: dict[str, Any], defaulted: set[str], inst: Any
    ) -> None:
        """Run the code a default skipped (``if out == 0: return nn.Identity()`` then the
        real head) on a copy: a layer it returns is an alternate of the attribute being
        assigned (``self.head = self._make_head(...)``); its own attributes too."""
        from .extract import MAX_DEPTH, _Return

        if self._alt is None or self._depth >= MAX_DEPTH:
            return
        scope = {**before, **dict.fromkeys(defaulted, UNKNOWN)}
        for name in before.get(DEFAULTED, ()):
            if name in scope and not nonempty(scope[name]):
                scope[name] = UNKNOWN  # "off" defaults, as in _exec_branches
        module = inst if isinstance(inst, ModuleInstance) else None
        attrs = dict(module.attrs) if module is not None else {}
        try:
            self._exec_body(body, scope, inst)
        except _Return as ret:
            if isinstance(ret.value, Layer):
                self._alt.append(ret.value)
        finally:
            if module is not None:
                for name, value in list(module.attrs.items()):
                    if isinstance(value, Layer) and attrs.get(name) is not value:
                        module.alternates.append((name, value))
                module.attrs.clear()
                module.attrs.update(attrs)

    def _other_side(
        self, node: ast.IfExp, targets: list[ast.expr], value: Any, env: dict[str, Any], inst: Any
    ) -> None:
        """``self.head = A if cond else B``: the layers of the side(s) not taken are kept
        as alternates of ``head`` (checked by the rules, never used as the attribute, so no
        data flow rests on a guessed branch). Both sides when ``cond`` is unknown; the
        other side when a parameter's default decided it."""
        names = [
            t.attr
            for t in targets
            if isinstance(t, ast.Attribute)
            and isinstance(t.value, ast.Name)
            and t.value.id == "self"
        ]
        if not names or not isinstance(inst, ModuleInstance):
            return
        test = self.eval(node.test, env, inst)
        defaulted = defaulted_names(node.test, env)
        if test is UNKNOWN:
            sides = [node.body, node.orelse]
        elif defaulted:
            sides = [node.orelse if test else node.body]
        else:
            return
        scope = {**env, **dict.fromkeys(defaulted, UNKNOWN)}
        for side in sides:
            other = self.eval(side, scope, inst)
            if isinstance(other, Layer) and other is not value and other.type != "Identity":
                inst.alternates.extend((name, other) for name in names)

    def _merge_attrs(
        self, module: ModuleInstance, before: dict[str, Any], first: dict[str, Any]
    ) -> None:
        second = dict(module.attrs)
        module.attrs.clear()
        module.attrs.update(first)
        for name, value in second.items():
            old = before.get(name, _MISSING)
            mine = first.get(name, _MISSING)
            if value is old or value is mine:
                continue
            if mine is old or mine is None:
                module.attrs[name] = value  # set only on that side
            elif isinstance(value, Layer):
                module.alternates.append((name, value))

    def _unknown_comprehension(
        self, node: ast.ListComp | ast.GeneratorExp | ast.SetComp, env: dict[str, Any], inst: Any
    ) -> Any:
        """``[Block(c) for c in cfg]`` over an iterable it cannot list: when the element is
        a layer, one representative fenced by opaque placeholders (its count and its
        neighbours unknown), so ``nn.Sequential(*...)`` still shows what it is made of."""
        scope = dict(env)
        for gen in node.generators:
            for name in stored_names(gen.target):
                scope[name] = UNKNOWN
        elt = self.eval(node.elt, scope, inst)
        if not isinstance(elt, Layer):
            return UNKNOWN
        return [self._opaque(node), elt, self._opaque(node)]


_MISSING = object()


def nonempty(value: Any) -> bool:
    """False for the "off" defaults of a parameter: 0, None, False, ''."""
    return not (value is None or (isinstance(value, _CONST_TYPES) and not value))


def stored_names(node: ast.AST) -> set[str]:
    """Names a statement assigns anywhere inside (loop targets included). Kept on the node:
    a loop inside a block is run again for every instance of the block."""
    names = getattr(node, _STORED, None)
    if names is None:
        names = frozenset(
            n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        )
        setattr(node, _STORED, names)
    return set(names)


_STORED = "_normsuite_stored_names"  # an attribute of our own on the (never shared) tree


def defaulted_names(test: ast.expr, env: dict[str, Any]) -> set[str]:
    """Parameters of the running ``__init__`` that took their default and decide ``test``."""
    defaulted = env.get(DEFAULTED)
    if not defaulted:
        return set()
    return {n.id for n in ast.walk(test) if isinstance(n, ast.Name) and n.id in defaulted}


def _merge_env(
    env: dict[str, Any],
    other: dict[str, Any],
    before: dict[str, Any],
    defaulted: set[str],
    keep_first: bool,
) -> list[tuple[str, Layer]]:
    """Join the locals of two branches into ``env`` (which holds the first one's). With
    ``keep_first`` (the defaults decided the test) the first branch is the configuration
    the file describes: its values stand, and the other branch only adds the layers it
    put in lists. Returns the modules a name held on a side that was not kept."""
    orphans: list[tuple[str, Layer]] = []
    for name in sorted(set(env) | set(other)):
        if name in defaulted:
            continue  # the parameter itself keeps its default
        a, b = env.get(name, _MISSING), other.get(name, _MISSING)
        if a is b or (a is not _MISSING and b is not _MISSING and _same(a, b)):
            continue
        old = before.get(name)
        if isinstance(a, list) and isinstance(b, list) and isinstance(old, list):
            n = len(old)
            if all(x is y for x, y in zip(a[:n], old, strict=False)) and all(
                x is y for x, y in zip(b[:n], old, strict=False)
            ):
                env[name] = [*old, *a[n:], *b[n:]]  # what each branch added, fenced
                continue
        if keep_first:
            if isinstance(b, Layer):
                orphans.append((name, b))
            continue
        if a is _MISSING or a is None:
            env[name] = b
        elif b is _MISSING or b is None:
            continue
        else:
            env[name] = UNKNOWN
            orphans.extend((name, v) for v in (a, b) if isinstance(v, Layer))
    return orphans


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, _CONST_TYPES) and isinstance(b, _CONST_TYPES):
        return type(a) is type(b) and a == b
    return False
