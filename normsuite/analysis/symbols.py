"""Values the evaluator gets for names defined in classes/functions it does not run itself:
subclasses of torch layers, and functions of another file of the project.

Kept apart from ``extract.py`` (which only dispatches to them) and from ``project.py``
(which finds them), so neither imports the other.

>>> import ast
>>> node = ast.parse("class GroupNorm32(nn.GroupNorm):\\n    pass").body[0]
>>> TorchSubclass("GroupNorm", node, None).type
'GroupNorm'
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from .ir import UNKNOWN, UNKNOWN_KWARGS, Layer, LayerClass


@dataclass(eq=False)
class TorchSubclass:
    """``class GroupNorm32(nn.GroupNorm)``: a call builds the parent layer, so rules and
    the recommender see a GroupNorm, wherever the class is defined or used.

    ``home`` is the ModuleIndex of the file that defines the class (its ``__init__`` reads
    names there)."""

    type: str  # the torch layer it derives from, e.g. "GroupNorm"
    node: ast.ClassDef
    home: Any

    def value(self) -> Any:
        """What the class name evaluates to: the parent's LayerClass when the class keeps
        the parent's ``__init__`` (so ``partial(GroupNorm32, 32)`` and
        ``norm_layer=GroupNorm32`` work as for ``nn.GroupNorm``), else this object."""
        return LayerClass(self.type) if self.init() is None else self

    def init(self) -> ast.FunctionDef | None:
        for stmt in self.node.body:
            if isinstance(stmt, ast.FunctionDef) and stmt.name == "__init__":
                return stmt
        return None

    def type_for(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The layer type of one construction: ESPnet's ``LayerNorm(nout, dim=-1)`` moves
        the channels last only when ``self.dim != -1`` (``if self.dim == -1: return
        super().forward(x)``), so with the default it is a plain LayerNorm over the last
        dim (NRM002 on a conv output); with ``dim=1`` a channel LayerNorm."""
        if self.type not in ("LayerNorm2d", "RMSNorm2d"):
            return self.type
        guard = _plain_when(self.node)
        init = self.init()
        if guard is None or init is None or self.home is None:
            return self.type
        attr, plain_value = guard
        param = _param_stored_as(init, attr)
        if param is None:
            return self.type
        env = self.home._bind(init, (UNKNOWN, *args), kwargs)
        value = env.get(param, UNKNOWN)
        if value == plain_value and not isinstance(value, bool):
            return "LayerNorm" if self.type == "LayerNorm2d" else "RMSNorm"
        return self.type if isinstance(value, int) else "Custom"

    def parent_args(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments the parent layer receives: the call's own when the class keeps the
        parent's ``__init__``, else those of its ``super().__init__(...)`` call evaluated with
        the parameters bound; unknown (silent rules) when that call cannot be read."""
        init = self.init()
        if init is None:
            return args, kwargs
        call = _super_init(init)
        if call is None or self.home is None:
            return (), {UNKNOWN_KWARGS: UNKNOWN}
        env = self.home._bind(init, (UNKNOWN, *args), kwargs)
        _run_simple(self.home, init.body, call, env)
        out_args, out_kwargs = self.home._args(call, env, None)
        if out_args is None:
            return (), {UNKNOWN_KWARGS: UNKNOWN}
        return out_args, out_kwargs


def _plain_when(node: ast.ClassDef) -> tuple[str, Any] | None:
    """``forward`` starts with ``if self.<attr> == <const>: return super().forward(x)``:
    (attr, const), the value for which the subclass is its plain parent."""
    forward = next(
        (n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "forward"), None
    )
    if forward is None or not forward.body or not isinstance(forward.body[0], ast.If):
        return None
    test = forward.body[0].test
    if not (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.Eq)
        and isinstance(test.left, ast.Attribute)
        and isinstance(test.left.value, ast.Name)
        and test.left.value.id == "self"
    ):
        return None
    right = test.comparators[0]
    if isinstance(right, ast.UnaryOp) and isinstance(right.op, ast.USub):
        right = right.operand
        negate = True
    else:
        negate = False
    if not isinstance(right, ast.Constant):
        return None
    body = forward.body[0].body
    plain = (
        len(body) == 1
        and isinstance(body[0], ast.Return)
        and "transpose" not in ast.dump(body[0])
        and "permute" not in ast.dump(body[0])
    )
    if not plain:
        return None
    return test.left.attr, -right.value if negate else right.value


def _param_stored_as(init: ast.FunctionDef, attr: str) -> str | None:
    """The ``__init__`` parameter stored as ``self.<attr> = <param>``."""
    params = {a.arg for a in [*init.args.args, *init.args.kwonlyargs]}
    for stmt in ast.walk(init):
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Attribute)
            and stmt.targets[0].attr == attr
            and isinstance(stmt.value, ast.Name)
            and stmt.value.id in params
        ):
            return stmt.value.id
    return None


def _super_init(fn: ast.FunctionDef) -> ast.Call | None:
    """The ``super().__init__(...)`` (or ``Parent.__init__(self, ...)``) call of ``fn``."""
    for node in ast.walk(fn):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "__init__"
        ):
            owner = node.func.value
            is_super = isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name)
            if is_super and owner.func.id == "super":  # type: ignore[union-attr]
                return node
    return None


def _run_simple(index: Any, body: Iterable[ast.stmt], stop: ast.Call, env: dict) -> None:
    """Plain local assignments before the ``super().__init__`` call (``c = dim * 2``)."""
    for stmt in body:
        if any(n is stop for n in ast.walk(stmt)):
            return
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and not any(
            isinstance(t, ast.Attribute) for t in getattr(stmt, "targets", [stmt.target])
        ):
            try:
                index._exec_stmt(stmt, env, None)
            except Exception:
                continue


@dataclass(eq=False)
class PlainClass:
    """A class of another file that is neither a module nor a layer (a config class)."""

    node: ast.ClassDef
    home: Any


@dataclass(eq=False)
class ExternalFunction:
    """A module-level function of another file of the project (``make_block`` imported from
    ``layers.py``): called in that file's scope."""

    node: ast.FunctionDef
    home: Any


def relocate(value: Any, label: str | None, code: str, node: ast.expr) -> Any:
    """A layer returned by another file's function (``conv_bn(64, 128)``), placed at the
    call that made it in this file: findings about it (and, through :func:`anchor_foreign`,
    about what it holds) point there. Other values are returned unchanged."""
    if not isinstance(value, Layer) or value.file == label:
        return value
    return replace(
        value,
        line=node.lineno,
        col=node.col_offset,
        code=code,
        end_line=node.end_lineno,
        end_col=node.end_col_offset,
        file=label,
        anchor=None,
    )


def anchor_foreign(root: Layer) -> None:
    """Point every layer built in another file at the nearest enclosing call of the
    analyzed file (a ``ConvNorm(...)`` call, else the model class itself), so a finding
    about it lands where the user can act on it. Set again for each analyzed file: the
    layers of a dependency are shared by every file that uses it."""
    stack: list[tuple[Layer, Layer]] = [(root, root)]
    seen: set[int] = set()
    while stack and len(seen) < 100_000:
        layer, site = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if layer.file is None:
            site = layer
            layer.anchor = None
        else:
            layer.anchor = site
        inner = list(layer.children)
        if layer.instance is not None:
            inner += [child for _, child in layer.instance.layers()]
        stack.extend((child, site) for child in inner)
