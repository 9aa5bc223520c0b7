"""Module classes that are norms by what ``forward`` computes, whatever their name.

A class is a norm when it builds no layers of its own (only parameters and buffers) and
its ``forward`` either calls a functional norm (``F.layer_norm``, ``F.group_norm``,
``F.batch_norm``, ``F.instance_norm``, ``F.rms_norm``), rescales by stored
``running_mean``/``running_var`` (a FrozenBatchNorm2d), or computes statistics over a dim
(``mean``/``var``/``std``, ``F.normalize``) and rescales by them (``rsqrt``, ``sqrt``,
a division). The dim says the layout: dim 1 of an (N, C, ...) map is a channel norm
(ConvNeXt's channels-first LayerNorm, ChanRMSNorm), the last dim a per-position one.
Branches on an attribute set in ``__init__`` (ConvNeXt's ``data_format``) are resolved
per instance.

The answer is the torch layer type with the same meaning, so rules and the recommender
treat the site like that layer: ``LayerNorm2d`` is a channels-first channel LayerNorm,
``RMSNorm2d`` its RMS counterpart.

>>> import ast
>>> from normsuite.analysis.extract import ModuleIndex
>>> src = '''
... import torch, torch.nn as nn
... class ChanRMS(nn.Module):
...     def __init__(self, c):
...         super().__init__()
...         self.g = nn.Parameter(torch.ones(1, c, 1, 1))
...     def forward(self, x):
...         return x * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + 1e-6) * self.g
... '''
>>> index = ModuleIndex(ast.parse(src), src)
>>> behaves_as(index.instantiate(index.classes["ChanRMS"], (8,)), index)
'RMSNorm2d'
"""

from __future__ import annotations

import ast
from typing import Any

from .extract import ModuleIndex
from .ir import UNKNOWN, UNKNOWN_KWARGS, Layer, ModuleInstance
from .tree_facts import called_name, self_attribute

_FUNCTIONAL = {
    "layer_norm": "LayerNorm",
    "group_norm": "GroupNorm",
    "batch_norm": "BatchNorm2d",
    "instance_norm": "InstanceNorm2d",
    "rms_norm": "RMSNorm",
}
_STATS = frozenset({"mean", "var", "std", "var_mean", "std_mean", "normalize"})
_RESCALE = frozenset({"rsqrt", "sqrt", "normalize"})
# Types whose first argument is the channel count, as in a norm class's (dim, eps=...).
_CHANNEL_ARG_FIRST = frozenset({"LayerNorm", "LayerNorm2d", "RMSNorm", "RMSNorm2d"})
_LAYOUT_OPS = frozenset({"permute", "transpose", "movedim", "rearrange"})
_PROJECTIONS = frozenset({"linear", "matmul", "mm", "bmm", "einsum", "conv1d", "conv2d"})


def behaves_as(inst: ModuleInstance, index: ModuleIndex) -> str | None:
    """The torch norm type ``inst`` behaves as, or None when it is not a norm."""
    if any(isinstance(v, Layer) for v in inst.attrs.values()) or inst.seq_children:
        return None  # builds layers: a block or a model, not a norm
    fn = inst.cls.method("forward")
    if fn is None or len(inst.cls.methods) > 4 or len(fn.body) > 12:
        return None  # a norm is a small class with a short forward, not a training wrapper
    body = _live_statements(fn.body, inst, index)
    body += _helper_bodies(body, inst)
    calls = [n for stmt in body for n in ast.walk(stmt) if isinstance(n, ast.Call)]
    names = [called_name(c.func) for c in calls]
    if set(names) & _PROJECTIONS or any(
        isinstance(n, ast.BinOp) and isinstance(n.op, ast.MatMult)
        for stmt in body
        for n in ast.walk(stmt)
    ):
        return None  # normalized, then projected (ArcFace's cosine head): a layer, not a norm
    moved = any(n in _LAYOUT_OPS for n in names)
    for name in names:
        if name in _FUNCTIONAL:
            kind = _FUNCTIONAL[name]
            if kind == "LayerNorm" and moved:
                return "LayerNorm2d"  # permuted to channels-last and back: a channel LN
            if kind == "BatchNorm2d" and set(names) & {"view", "reshape", "contiguous"}:
                return "InstanceNorm2d"  # batch_norm on (1, N*C, H, W): AdaIN's instance norm
            return kind
    root = _inverse_root(body)  # torch.pow(ms, -0.5) / ms ** -0.5 (Gemma's RMSNorm)
    rescales = bool(set(names) & _RESCALE) or _divides(body) or root
    read = _self_attributes(body)
    if {"running_mean", "running_var"} <= read and rescales:
        # Scaled by stored statistics (torchvision's FrozenBatchNorm2d). With a branch on
        # self.training it is a hand-written BatchNorm that updates them.
        return "BatchNorm2d" if "training" in read else "FrozenBatchNorm2d"
    stats = [(c, n) for c, n in zip(calls, names, strict=True) if n in _STATS]
    if not stats or not rescales:
        return None
    first = stats[0][0]
    centred = any(n in ("var", "std", "var_mean", "std_mean") for _, n in stats) or _subtracts(body)
    regroup = _regroup(calls, names, first.lineno)
    if regroup is not None:
        # x.view(n, self.groups, -1), then statistics: a GroupNorm. Any other view of the
        # input before its statistics leaves the layout unknown: not a norm we can name
        # (a LayerNorm over the last dim of the view would be a false NRM002).
        return "GroupNorm" if centred and _names_groups(regroup) else None
    # a spread (var/std) or a square root of the statistics: a rescale, not a pooling
    # (timm's LsePlus2d takes a mean over H, W and divides by a temperature)
    spread = (
        root
        or bool(set(names) & {"rsqrt", "sqrt"})
        or any(n in ("var", "std", "var_mean", "std_mean") for _, n in stats)
    )
    # kept dims: the statistics broadcast back onto the input; without them they are a
    # reduction (statistics pooling, ProGAN's minibatch std feature, VICReg's variance loss)
    kept = all(_keeps_dims(call) for call, _ in stats)
    return _by_dims(_dims(first), centred, spread and kept)


def _inverse_root(body: list[ast.stmt]) -> bool:
    """A power of -0.5 of a computed value: ``torch.pow(ms, -0.5)``, ``ms.pow(-0.5)``,
    ``ms ** -0.5`` (not of a constant or a stored size: ``self.d ** -0.5`` scales
    attention)."""

    def half(node: ast.expr | None) -> bool:
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return isinstance(node.operand, ast.Constant) and node.operand.value == 0.5
        return isinstance(node, ast.Constant) and node.value == -0.5

    def computed(node: ast.expr | None) -> bool:
        return (
            node is not None
            and not isinstance(node, ast.Constant)
            and not (isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "self")
        )

    for stmt in body:
        for n in ast.walk(stmt):
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow):
                if half(n.right) and computed(n.left):
                    return True
            elif isinstance(n, ast.Call) and called_name(n.func) == "pow":
                exponent = next((k.value for k in n.keywords if k.arg == "exponent"), None)
                args = list(n.args)
                if isinstance(n.func, ast.Attribute) and called_name(n.func.value) != "torch":
                    base = n.func.value  # x.pow(-0.5)
                    exponent = exponent or (args[0] if args else None)
                else:  # torch.pow(x, -0.5)
                    base = args[0] if args else None
                    exponent = exponent or (args[1] if len(args) > 1 else None)
                if half(exponent) and computed(base):
                    return True
    return False


def _keeps_dims(call: ast.Call) -> bool:
    keep = next((k.value for k in call.keywords if k.arg == "keepdim"), None)
    return isinstance(keep, ast.Constant) and keep.value is True


def _by_dims(dims: frozenset[int] | None, centred: bool, rescales: bool) -> str | None:
    """The torch norm whose statistics are over ``dims`` of an (N, C, ...) input; the dims
    other than C or the last only when the statistics rescale the input (``rescales``)."""
    if dims == {1}:
        return "LayerNorm2d" if centred else "RMSNorm2d"
    if dims == {-1}:
        return "LayerNorm" if centred else "RMSNorm"
    if dims is None or not rescales:
        return None
    if 0 in dims and centred:  # over the batch (and the positions): BatchNorm, by hand
        return _BATCH_NORM_BY_DIMS.get(dims)
    if dims in ({2, 3}, {2, 3, 4}):
        # per instance and channel over the positions: InstanceNorm; without the centring,
        # the Filter Response Normalization of Singh & Krishnan 2019 (its own kind)
        if not centred:
            return "FilterResponseNorm2d" if dims == {2, 3} else None
        return "InstanceNorm2d" if dims == {2, 3} else "InstanceNorm3d"
    return None  # statistics over other dims (or unknown): not a layout we can name


_BATCH_NORM_BY_DIMS = {
    frozenset({0}): "BatchNorm1d",
    frozenset({0, 2}): "BatchNorm1d",
    frozenset({0, 2, 3}): "BatchNorm2d",
    frozenset({0, 2, 3, 4}): "BatchNorm3d",
}
_RESHAPES = frozenset({"view", "reshape", "rearrange"})


def _regroup(calls: list[ast.Call], names: list[str], before: int) -> ast.Call | None:
    """A reshape of the input (not of a ``self`` parameter) into 3 or more dims before
    line ``before``: ``x.view(n, g, -1)``, ``rearrange(x, "b (g c) h w -> b g (c h w)")``."""
    for call, name in zip(calls, names, strict=True):
        if name not in _RESHAPES or call.lineno > before:
            continue
        if name == "rearrange":
            return call
        receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
        if receiver is None or (attribute_chain(receiver) or [""])[0] == "self":
            continue  # torch.reshape(...) aside, self.weight.view(1, -1, 1, 1) is a parameter
        shape = (
            call.args[0].elts
            if len(call.args) == 1 and isinstance(call.args[0], ast.Tuple)
            else call.args
        )
        if shape and isinstance(shape[0], ast.Starred):
            continue  # view(*prefix, groups, size): the last dim split, still per position
        if len(shape) >= 3:
            return call
    return None


def _names_groups(call: ast.Call) -> bool:
    """The reshape names a group count: ``self.groups``, ``num_groups``, ``G``, ``g=``."""
    words = [k.arg or "" for k in call.keywords]
    for node in ast.walk(call):
        if isinstance(node, ast.Name):
            words.append(node.id)
        elif isinstance(node, ast.Attribute):
            words.append(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            words.append("group" if "(g " in node.value else "")
    return any("group" in w.lower() or w.lower() == "g" for w in words)


def _live_statements(body: list[ast.stmt], inst: ModuleInstance, index: ModuleIndex):
    """``body`` with ``if`` statements on known attributes reduced to the branch taken."""
    out: list[ast.stmt] = []
    for stmt in body:
        if isinstance(stmt, ast.If):
            test = index.eval(stmt.test, {}, inst)
            if test is True or test is False:
                out.extend(_live_statements(stmt.body if test else stmt.orelse, inst, index))
                continue
        out.append(stmt)
    return out


def _helper_bodies(body: list[ast.stmt], inst: ModuleInstance) -> list[ast.stmt]:
    """The statements of the class's methods that ``body`` calls as ``self.name(...)``:
    Gemma's RMSNorm computes its statistics in ``self._norm(x)``, not in ``forward``."""
    out: list[ast.stmt] = []
    seen: set[str] = {"forward"}
    for stmt in body:
        for node in ast.walk(stmt):
            name = self_attribute(node.func) if isinstance(node, ast.Call) else None
            if name is None or name in seen:
                continue
            seen.add(name)
            method = inst.cls.method(name)
            if method is not None and len(method.body) <= 12 and not _calls_modules(method, inst):
                out.extend(method.body)
    return out


def _calls_modules(fn: ast.FunctionDef, inst: ModuleInstance) -> bool:
    """``fn`` calls a ``self`` attribute that is not a method: a submodule (speechbrain's
    wav2vec2 wrapper runs ``self.model(...)`` then ``F.layer_norm``), so not a norm's math."""
    return any(
        isinstance(node, ast.Call)
        and (name := self_attribute(node.func)) is not None
        and inst.cls.method(name) is None
        for node in ast.walk(fn)
    )


def _dim(call: ast.Call) -> Any:
    if called_name(call.func) == "normalize":
        values = [k.value for k in call.keywords if k.arg == "dim"] or call.args[1:2]
        value = values[0] if values else None
        return 1 if value is None else _const(value)  # F.normalize's default dim is 1
    values = [k.value for k in call.keywords if k.arg == "dim"]
    func = call.func
    torch_fn = isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
    if torch_fn and func.value.id == "torch":  # type: ignore[union-attr]
        values = values or call.args[1:2]  # torch.mean(x, dim): dim is the 2nd
    values = values or call.args[:1]
    return _const(values[0]) if values else None


def _dims(call: ast.Call) -> frozenset[int] | None:
    """The dims a statistics call reduces over (``mean(dim=(2, 3))``, ``F.normalize(x)``),
    None when they are not constants."""
    if called_name(call.func) == "normalize":
        dim = _dim(call)
        return frozenset({dim}) if isinstance(dim, int) else None
    values = [k.value for k in call.keywords if k.arg == "dim"]
    func = call.func
    torch_fn = isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
    if torch_fn and func.value.id == "torch":  # type: ignore[union-attr]
        values = values or call.args[1:2]
    values = values or call.args[:1]
    if not values:
        return None
    node = values[0]
    elts = node.elts if isinstance(node, (ast.List, ast.Tuple)) else [node]
    dims = [_const(e) for e in elts]
    if not dims or not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
        return None
    return frozenset(dims)


def _const(node: ast.expr) -> Any:
    if isinstance(node, (ast.List, ast.Tuple)) and len(node.elts) == 1:
        node = node.elts[0]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _const(node.operand)
        return -inner if isinstance(inner, int) else None
    return None


def _self_attributes(body: list[ast.stmt]) -> set[str]:
    """The ``self.<name>`` attributes a body reads."""
    return {
        n.attr
        for stmt in body
        for n in ast.walk(stmt)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self"
    }


def _divides(body: list[ast.stmt]) -> bool:
    return any(
        isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div)
        for stmt in body
        for n in ast.walk(stmt)
    )


def _subtracts(body: list[ast.stmt]) -> bool:
    return any(
        isinstance(n, ast.BinOp) and isinstance(n.op, ast.Sub)
        for stmt in body
        for n in ast.walk(stmt)
    )


def retype_norms(layers: list[tuple[str, Layer]], index: ModuleIndex) -> None:
    """Give every instance of a norm-by-behaviour class the type of the torch norm it
    behaves as (once per layer object; the instance stays attached)."""
    for _, layer in layers:
        if layer.type != "Custom" or layer.instance is None:
            continue
        key = ("behaves-as", id(layer.instance))
        if key not in index.memo:
            index.memo[key] = behaves_as(layer.instance, index)
        kind = index.memo[key]
        if kind is not None:
            layer.type = kind
            if kind not in _CHANNEL_ARG_FIRST:
                # The class's own arguments need not be torch's (num_groups, C): unknown.
                layer.args, layer.kwargs = (), {UNKNOWN_KWARGS: UNKNOWN}


_BN_TYPES = frozenset({"BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm"})


def freeze_bn_kept_in_eval(layers: list[tuple[str, Layer]], root: Any, index: ModuleIndex) -> None:
    """BatchNorm that training keeps in eval mode normalizes with its stored statistics:
    a frozen BN (B10), whatever its class. Two ways real code does it: a module whose
    ``train()`` puts its BNs back in eval (OpenMMLab's ``norm_eval=True`` backbones), and a
    script that trains the model after ``for m in model.modules(): if isinstance(m,
    nn.BatchNorm2d): m.eval()``. Their BN layers take the FrozenBatchNorm2d type."""
    owners = [root] if root is not None else []
    owners += [layer.instance for _, layer in layers if layer.instance is not None]
    frozen_by_script = root is not None and root.cls.name in frozen_classes(index)
    seen: set[int] = set()
    for inst in owners:
        if inst is None or id(inst) in seen:
            continue
        seen.add(id(inst))
        if not (frozen_by_script and inst is root) and not _train_keeps_bn_eval(inst, index):
            continue
        for _, sub in inst.walk():
            if sub.type in _BN_TYPES:
                sub.type = "FrozenBatchNorm2d"


def freeze_parts(layers: list[tuple[str, Layer]], parts: list[str]) -> None:
    """BatchNorm inside the submodules a training script keeps in eval mode
    (``model.backbone.eval()``, see ``entrypoints.frozen_parts``) takes the
    FrozenBatchNorm2d type: it normalizes with stored statistics at any batch."""
    for path, layer in layers:
        inside = any(not part or path.startswith(part + ".") for part in parts)
        if layer.type in _BN_TYPES and inside:
            layer.type = "FrozenBatchNorm2d"


def _train_keeps_bn_eval(inst: Any, index: ModuleIndex) -> bool:
    """The class (or a base) overrides ``train`` with a BN eval loop whose guard, if any,
    holds for this instance (``if mode and self.norm_eval:`` with ``norm_eval=True``)."""
    fn = inst.cls.method("train")
    if fn is None:
        return False
    key = ("bn-eval-loops", id(fn))
    if key not in index.memo:
        index.memo[key] = [n for n in ast.walk(fn) if isinstance(n, ast.For) and _bn_eval_loop(n)]
    for loop in index.memo[key]:
        for guard in (n for n in ast.walk(fn) if isinstance(n, ast.If)):
            if any(sub is loop for sub in ast.walk(guard)):
                for attr in _self_attrs(guard.test):
                    if inst.attrs.get(attr, True) is not True:
                        return False  # norm_eval=False (or unknown): BN trains
        return True
    return False


def _self_attrs(node: ast.expr) -> set[str]:
    return {
        n.attr
        for n in ast.walk(node)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self"
    }


def _bn_eval_loop(loop: ast.For) -> bool:
    """``for m in X.modules(): if isinstance(m, <...BatchNorm/_BatchNorm/BN...>): m.eval()``."""
    it = loop.iter
    if not (
        isinstance(it, ast.Call)
        and isinstance(it.func, ast.Attribute)
        and it.func.attr in ("modules", "children")
        and isinstance(loop.target, ast.Name)
    ):
        return False
    var = loop.target.id
    checks_bn = any(
        isinstance(n, ast.Call)
        and getattr(n.func, "id", "") == "isinstance"
        and len(n.args) == 2
        and any(w in ast.unparse(n.args[1]) for w in ("BatchNorm", "_BatchNorm", "BN"))
        for n in ast.walk(loop)
    )
    evals = any(
        isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr == "eval"
        and isinstance(n.func.value, ast.Name)
        and n.func.value.id == var
        for n in ast.walk(loop)
    )
    return checks_bn and evals


def frozen_classes(index: ModuleIndex) -> set[str]:
    """Classes of this file that its training code runs with BN in eval mode: at module
    level or in a function that also trains (``backward()`` / an optimizer ``step()``),
    ``model = Net(...)`` in that scope, then a BN eval loop over ``model.modules()`` or a
    ``model.apply(set_bn_eval)`` (see :func:`bn_freezes`) that no later ``model.train()``
    of the scope undoes: before the batches or inside the training loop after ``train()``."""
    key = ("bn-frozen-classes",)
    if key in index.memo:
        return index.memo[key]
    out: set[str] = set()
    text = index.source
    if ".eval()" not in text or (".backward(" not in text and ".step(" not in text):
        index.memo[key] = out  # no BN put in eval mode, or no training here
        return out
    for scope in [index.tree, *index.functions.values()]:
        nodes = own_nodes(scope)
        calls = [n for n in nodes if isinstance(n, ast.Call)]
        if not any(_method(c) in ("backward", "step") for c in calls):
            continue
        bound = {
            s.targets[0].id: s.value.func.id
            for s in nodes
            if isinstance(s, ast.Assign)
            and len(s.targets) == 1
            and isinstance(s.targets[0], ast.Name)
            and isinstance(s.value, ast.Call)
            and isinstance(s.value.func, ast.Name)
        }
        for chain, line in bn_freezes(nodes, index.functions):
            if len(chain) != 1 or chain[0] not in bound:
                continue
            if not train_after(calls, chain[0], line):
                out.add(bound[chain[0]])
    index.memo[key] = out
    return out


def own_nodes(scope: ast.AST) -> list[ast.AST]:
    """The nodes of a module or function body, nested functions and classes left out."""
    out: list[ast.AST] = []
    todo = list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        out.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return out


def bn_freezes(nodes: list[ast.AST], functions: dict[str, Any]) -> list[tuple[list[str], int]]:
    """(owner as ``["model", "backbone"]``, line) of each statement among ``nodes`` that puts
    the BatchNorm layers of the owner in eval mode: ``for m in model.modules(): if
    isinstance(m, nn.BatchNorm2d): m.eval()``, or ``model.apply(set_bn_eval)`` with a
    function of the file that calls ``.eval()`` on BatchNorm modules (Faster R-CNN's
    ``set_bn_eval``)."""
    out: list[tuple[list[str], int]] = []
    for node in nodes:
        owner: ast.expr | None = None
        if isinstance(node, ast.For) and _bn_eval_loop(node):
            owner = node.iter.func.value  # type: ignore[attr-defined]
        elif (
            isinstance(node, ast.Call)
            and _method(node) == "apply"
            and len(node.args) == 1
            and isinstance(node.args[0], ast.Name)
            and _bn_eval_function(functions.get(node.args[0].id))
        ):
            owner = node.func.value  # type: ignore[attr-defined]
        chain = attribute_chain(owner) if owner is not None else None
        if chain:
            out.append((chain, node.lineno))  # type: ignore[attr-defined]
    return out


def train_after(calls: list[ast.Call], name: str, line: int) -> bool:
    """A ``name.train()`` (or ``name.part.train()``) among ``calls`` after ``line``: it puts
    what an earlier ``eval()`` froze back in train mode."""
    return any(
        _method(c) == "train"
        and c.lineno > line
        and (attribute_chain(c.func.value) or [""])[0] == name  # type: ignore[attr-defined]
        for c in calls
    )


def _bn_eval_function(fn: Any) -> bool:
    """``def set_bn_eval(m): if m.__class__.__name__.find("BatchNorm") != -1: m.eval()`` (or
    an ``isinstance`` check): a function ``apply`` runs on every module."""
    if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) or not fn.args.args:
        return False
    param = fn.args.args[0].arg
    evals = any(
        isinstance(n, ast.Call)
        and _method(n) == "eval"
        and isinstance(n.func.value, ast.Name)  # type: ignore[attr-defined]
        and n.func.value.id == param  # type: ignore[attr-defined]
        for n in ast.walk(fn)
    )
    return evals and any(w in ast.unparse(fn) for w in ("BatchNorm", "_BatchNorm", "BN"))


def _method(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else ""


def attribute_chain(expr: ast.expr) -> list[str] | None:
    """``model.backbone.body`` -> ["model", "backbone", "body"]; None for anything else."""
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        return None
    return [expr.id, *reversed(parts)]


__all__ = [
    "attribute_chain",
    "behaves_as",
    "bn_freezes",
    "freeze_bn_kept_in_eval",
    "freeze_parts",
    "frozen_classes",
    "own_nodes",
    "retype_norms",
    "train_after",
]
