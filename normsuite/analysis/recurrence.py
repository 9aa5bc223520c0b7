"""Recurrence by structure: which modules are stepped over time with their state fed back.

A module called inside a ``for``/``while`` loop of a ``forward`` whose result is assigned
to a name that is also one of its arguments (``state = self.cell(x, state)``,
``h, c = self.cell(x, (h, c))``) is a recurrent cell, whatever its class: a hand-written
LSTM cell, an ``nn.LSTMCell`` subclass, a GRU written with Linear gates. Norm layers inside
such a cell, or applied in the same loop to the state that is fed back, are on the
recurrent path (NRM007, advice B6). A norm applied after the loop (to the last step's
``(N, C)`` vector) or to an ``nn.LSTM``'s outputs that feed the next layer is not: that is
the input-to-hidden side, where BatchNorm can help (Laurent et al. 2016).

>>> import ast
>>> from normsuite.analysis.extract import ModuleIndex
>>> src = '''
... import torch.nn as nn
... class Cell(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.fc = nn.Linear(8, 8)
...         self.bn = nn.BatchNorm1d(8)
...     def forward(self, x, h):
...         return self.bn(self.fc(x) + h)
... class Seq(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.cell = Cell()
...     def forward(self, xs, h):
...         for x in xs:
...             h = self.cell(x, h)
...         return h
... '''
>>> index = ModuleIndex(ast.parse(src), src)
>>> seq = index.instantiate(index.classes["Seq"])
>>> rec = find_recurrence(seq.walk(), seq, index)
>>> sorted(layer.type for layer in rec.cells), sorted(layer.type for layer in rec.norms)
(['Custom'], ['BatchNorm1d'])
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from .extract import ModuleIndex
from .ir import CONV_DIMS, NORM_KINDS, RNN_CELLS, RNN_TYPES, Layer, ModuleInstance
from .tree_facts import TreeFacts, class_facts, self_attribute
from .usage import tree_nodes


@dataclass
class Recurrence:
    """Cells (layers stepped with their state fed back) and norms on the recurrent path."""

    cells: list[Layer] = field(default_factory=list)
    norms: list[Layer] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)

    def on_path(self, layer: Layer) -> bool:
        return any(layer is norm for norm in self.norms)


def find_recurrence(
    layers: list[tuple[str, Layer]], root: ModuleInstance | None, index: ModuleIndex
) -> Recurrence:
    """Recurrent cells and recurrent-path norms of a model (its walk and root instance)."""
    out = Recurrence()
    owners = [root] if root is not None else []
    owners += [layer.instance for _, layer in layers if layer.instance is not None]
    seen: set[int] = set()
    for inst in owners:
        if inst is None or id(inst) in seen:
            continue
        seen.add(id(inst))
        for cell, norms in _stepped(inst, index):
            if not any(cell is c for c in out.cells):
                out.cells.append(cell)
                what = cell.instance.cls.name if cell.instance is not None else cell.type
                out.evidence.append(f"{what} stepped in a loop with its state fed back")
            inner = cell.instance.walk() if cell.instance is not None else []
            for layer in [*(sub for _, sub in inner), *norms]:
                if layer.type in NORM_KINDS and not out.on_path(layer):
                    out.norms.append(layer)
    return out


def _stepped(inst: ModuleInstance, index: ModuleIndex) -> list[tuple[Layer, list[Layer]]]:
    """(cell, norms called in the same loop) for each cell ``inst.forward`` steps."""
    key = ("stepped", id(inst))
    if key in index.memo:
        return index.memo[key]
    index.memo[key] = []
    found: list[tuple[Layer, list[Layer]]] = []
    facts = class_facts(inst.cls, index)
    loops = [loop for fn in _forward_methods(inst, facts) for loop in facts.nodes_in(fn, _LOOPS)]
    for loop in loops:
        if isinstance(loop, ast.For) and _over_modules(loop.iter, inst):
            continue  # for block in self.blocks: depth, not time
        if isinstance(loop, ast.For) and _dispatches_on_names(loop, inst):
            continue  # for op in self.order: if op == "norm": ...: a layer order, not time
        calls = _loop_calls(loop)
        cells: list[Layer] = []
        state: set[str] = set()  # names fed back into a cell
        inputs: set[int] = set()  # calls nested in a stepped cell's per-step input
        for call in calls:
            layer = _attr_layer(call.func, inst) or _module_of_inner_loop(call.func, loop, inst)
            if layer is not None and (layer.type in RNN_CELLS or _has_weights(layer)):
                if _module_per_step(call, loop, layer):
                    continue  # a different submodule each step: a pyramid, not a recurrence
                fed = _fed_back(call, loop)
                if fed:
                    cells.append(layer)
                    state |= fed
                    inputs |= _input_calls(call, fed)
        if not cells and _reads_step_input(loop):
            # An LSTM written inline (Cooijmans' BN-LSTM): a Linear applied to state the
            # loop carries over (h read before this step reassigns it) is the recurrence.
            # A loop that takes no input per step (``for _ in range(n): x = self.conv(x)``)
            # reuses a layer over depth: not a recurrence.
            carried = _carried_state(loop)
            for call in calls:
                layer = _attr_layer(call.func, inst)
                if layer is None or layer.type not in _INLINE_WEIGHTED:
                    continue
                if _names([*call.args, *(k.value for k in call.keywords)]) & carried:
                    cells.append(layer)
                    state |= carried
        norms = [
            layer
            for call in calls
            if (layer := _attr_layer(call.func, inst, any_index=True)) is not None
            and layer.type in NORM_KINDS
            and (
                _names([*call.args, *(k.value for k in call.keywords)]) & state
                if id(call) in inputs
                else _touches(call, loop, state)
            )
        ]
        found.extend((cell, norms) for cell in cells)
    index.memo[key] = found
    return found


def _module_per_step(call: ast.Call, loop: ast.For | ast.While, layer: Layer) -> bool:
    """The call passes the loop variable to a parameter that the callee's ``forward`` uses
    to pick a submodule (``self.layers[scale](x)``): each step runs other weights (kornia's
    DeDoDe decoder refines a pyramid scale by scale), so nothing recurs."""
    if layer.instance is None:
        return False
    fn = layer.instance.cls.method("forward")
    targets = _loop_targets(loop)
    if fn is None or not targets:
        return False
    params = [a.arg for a in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]][1:]
    passed = {
        params[i] for i, arg in enumerate(call.args) if i < len(params) and _names([arg]) & targets
    }
    passed |= {k.arg for k in call.keywords if k.arg is not None and _names([k.value]) & targets}
    containers = {
        name
        for name, value in layer.instance.attrs.items()
        if isinstance(value, Layer) and value.type in ("ModuleList", "ModuleDict", "Sequential")
    }
    return any(
        isinstance(node, ast.Subscript)
        and self_attribute(node.value) in containers  # not a Parameter row (step_bias[t])
        and isinstance(node.slice, ast.Name)
        and node.slice.id in passed
        for node in ast.walk(fn)
    )


def _input_calls(cell_call: ast.Call, state: set[str]) -> set[int]:
    """Calls nested in the arguments of a stepped cell's call that carry no state:
    ``self.cell(self.bn_in(x[t]), (h, c))`` normalizes the step's input (the input-to-hidden
    side, where BN can help: Laurent et al. 2016), not the state fed back."""
    out: set[int] = set()
    for arg in [*cell_call.args, *(k.value for k in cell_call.keywords)]:
        if _names([arg]) & state:
            continue
        out |= {id(n) for n in ast.walk(arg) if isinstance(n, ast.Call)}
    return out


def _forward_methods(inst: ModuleInstance, facts: TreeFacts) -> list[ast.FunctionDef]:
    """``forward`` and the methods of the class it calls as ``self.name(...)``, two levels
    deep (a time loop in a helper: ``return self._unroll(xs, h)``)."""
    fn = inst.cls.method("forward")
    out: list[ast.FunctionDef] = [fn] if fn is not None else []
    callers = list(out)
    for _ in range(2):
        called = []
        for caller in callers:
            for node in facts.nodes_in(caller, (ast.Call,)):
                func = node.func
                if (
                    isinstance(func, ast.Attribute)
                    and isinstance(func.value, ast.Name)
                    and func.value.id == "self"
                    and func.attr != "forward"
                ):
                    method = inst.cls.method(func.attr)
                    if method is not None and all(method is not m for m in out):
                        out.append(method)
                        called.append(method)
        callers = called
    return out


_LOOPS = (ast.For, ast.While)
_WEIGHTED = frozenset({"Linear", "LazyLinear", "Bilinear", *CONV_DIMS, *RNN_TYPES, *RNN_CELLS})


def _has_weights(layer: Layer) -> bool:
    """A file class with gates to learn (Linear/conv/recurrent layers inside); a weight-free
    op called as ``x = self.cat(x, skip)`` in a loop is not a cell."""
    if layer.type != "Custom" or layer.instance is None:
        return False
    if any(sub.type in _WEIGHTED for _, sub in layer.instance.walk()):
        return True
    # gates as raw parameters (PyTorch's custom_lstms: nn.Parameter + torch.mm)
    cls = layer.instance.cls
    init = cls.method("__init__")
    if init is None:
        return False
    calls = class_facts(cls).nodes_in(init, (ast.Call,))
    return any(
        (c.func.attr if isinstance(c.func, ast.Attribute) else getattr(c.func, "id", ""))
        == "Parameter"
        for c in calls
    )


_INLINE_WEIGHTED = frozenset({"Linear", "LazyLinear", "Bilinear", *CONV_DIMS})


def _module_of_inner_loop(func: ast.expr, loop: ast.For | ast.While, inst: ModuleInstance):
    """``cell`` in ``for l, cell in enumerate(self.cells): h[l] = cell(inp, h[l])`` nested in
    the time loop: the first module of that ModuleList (stacked cells share their class)."""
    if not isinstance(func, ast.Name):
        return None
    for inner in ast.walk(loop):
        if inner is loop or not isinstance(inner, ast.For):
            continue
        target = inner.target
        bound = target.elts[-1] if isinstance(target, ast.Tuple) and target.elts else target
        if not (isinstance(bound, ast.Name) and bound.id == func.id):
            continue
        source = inner.iter
        wrapped = isinstance(source, ast.Call) and isinstance(source.func, ast.Name)
        if wrapped and source.args and source.func.id in ("enumerate", "reversed"):  # type: ignore[union-attr]
            source = source.args[0]  # type: ignore[union-attr]
        if (
            isinstance(source, ast.Attribute)
            and isinstance(source.value, ast.Name)
            and source.value.id == "self"
        ):
            value = inst.attrs.get(source.attr)
            if isinstance(value, Layer) and value.type in ("ModuleList", "Sequential"):
                return value.children[0] if value.children else None
    return None


def _reads_step_input(loop: ast.For | ast.While) -> bool:
    """The body reads the loop variable (``x_t``, or ``x[t]``): an input per time step."""
    targets = _loop_targets(loop)
    return bool(targets) and any(
        isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in targets
        for stmt in loop.body
        for n in ast.walk(stmt)
    )


def _carried_state(loop: ast.For | ast.While) -> set[str]:
    """Names the loop body reads before it reassigns them: the state one step hands to
    the next (``h``, ``c``), not the loop variable nor step-local temporaries."""
    stored = {
        n.id
        for stmt in loop.body
        for n in ast.walk(stmt)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    stored -= _loop_targets(loop)
    carried: set[str] = set()
    assigned: set[str] = set()
    for stmt in _in_order(loop.body):
        names = [n for n in ast.walk(stmt) if isinstance(n, ast.Name)]
        carried |= {
            n.id
            for n in names
            if isinstance(n.ctx, ast.Load) and n.id in stored and n.id not in assigned
        }
        assigned |= {n.id for n in names if isinstance(n.ctx, ast.Store)}
    return carried


def _in_order(body: list[ast.stmt]) -> list[ast.AST]:
    """The simple statements of a body in the order they run, nested blocks opened (a tile
    assigned at the top of an inner loop and then used is not state carried over), and
    each block's header (a loop's iterable, an ``if`` test) before its body."""
    out: list[ast.AST] = []
    for stmt in body:
        if isinstance(stmt, (ast.For, ast.AsyncFor)):
            out += [stmt.iter, stmt.target, *_in_order(stmt.body), *_in_order(stmt.orelse)]
        elif isinstance(stmt, (ast.While, ast.If)):
            out += [stmt.test, *_in_order(stmt.body), *_in_order(stmt.orelse)]
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            out += [*(item.context_expr for item in stmt.items), *_in_order(stmt.body)]
        else:
            out.append(stmt)
    return out


def _over_modules(node: ast.expr, inst: ModuleInstance) -> bool:
    """The loop iterates over module containers (``self.blocks``, ``zip(self.a, self.b)``).
    ``range(self.steps)`` counts time steps, not modules."""
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else ""
        if name not in ("zip", "enumerate", "reversed", "list"):
            return False
        return any(_over_modules(arg, inst) for arg in node.args)
    for sub in ast.walk(node):
        if (
            isinstance(sub, ast.Attribute)
            and isinstance(sub.value, ast.Name)
            and sub.value.id == "self"
        ):
            value = inst.attrs.get(sub.attr)
            if isinstance(value, Layer) and value.type in (
                "ModuleList",
                "Sequential",
                "ModuleDict",
            ):
                return True
            if not isinstance(value, Layer) and not isinstance(value, (int, list, tuple)):
                return True  # an attribute the extractor could not build: assume modules
    return False


def _dispatches_on_names(loop: ast.For, inst: ModuleInstance) -> bool:
    """The loop walks names of operations (mmcv's ``order=("conv", "norm", "act")``): its
    iterable is a tuple of strings, literal or stored by ``__init__``. (Comparing the loop
    variable with a string is no sign: ``if tok == "<eos>": break`` steps over tokens.)"""
    iterable = loop.iter
    if self_attribute(iterable) is not None:
        value = inst.attrs.get(self_attribute(iterable))
        return isinstance(value, (list, tuple)) and _all_strings(value)
    if isinstance(iterable, (ast.Tuple, ast.List)):
        return _all_strings(
            [e.value if isinstance(e, ast.Constant) else None for e in iterable.elts]
        )
    return False


def _all_strings(values: list | tuple) -> bool:
    return bool(values) and all(isinstance(v, str) for v in values)


def _attr_layer(func: ast.expr, inst: ModuleInstance, any_index: bool = False) -> Layer | None:
    """The layer of ``self.x(...)`` or ``self.xs[0](...)``. ``self.blocks[i - 1](...)``
    with a varying index is a different module each step (Res2Net's hierarchy): not a cell;
    ``any_index`` takes it anyway (the per-step norms of Cooijmans' BN-LSTM, ``self.bn[t]``,
    are all on the path)."""
    if isinstance(func, ast.Subscript):
        if not isinstance(func.slice, ast.Constant) and not any_index:
            return None
        func = func.value
    if (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "self"
    ):
        value = inst.attrs.get(func.attr)
        if isinstance(value, Layer):
            if value.type in ("ModuleList", "Sequential") and value.children:
                return value.children[0]  # self.cells[0](x, h)
            return value
    return None


def _names(nodes: list[ast.expr]) -> set[str]:
    return {n.id for a in nodes for n in ast.walk(a) if isinstance(n, ast.Name)}


def _assigned_to(call: ast.Call, loop: ast.For | ast.While) -> set[str]:
    """Names the result of ``call`` is assigned to inside the loop (by the first assignment
    whose value holds the call)."""
    return set(_loop_facts(loop)[1].get(id(call), ()))


def _loop_calls(loop: ast.For | ast.While) -> list[ast.Call]:
    """Every call in the loop's body, in ``ast.walk`` order per statement."""
    return _loop_facts(loop)[0]


_LOOP_FACTS = "_normsuite_loop_facts"  # kept on the loop node: a block's forward is asked
# about once per instance of the block


def _loop_facts(loop: ast.For | ast.While) -> tuple[list[ast.Call], dict[int, frozenset[str]]]:
    """(the calls of the loop body, id(call) -> the names the first assignment holding it
    assigns), from one walk of the body."""
    facts = getattr(loop, _LOOP_FACTS, None)
    if facts is None:
        calls: list[ast.Call] = []
        assigned: dict[int, frozenset[str]] = {}
        copies: list[tuple[frozenset[str], set[str]]] = []  # hx = (h_next, c_next)
        for stmt in loop.body:
            for node in ast.walk(stmt):
                if isinstance(node, ast.Call):
                    calls.append(node)
                elif isinstance(node, ast.Assign):
                    targets = frozenset(_names(node.targets))
                    if _plain_copy(node.value):
                        copies.append((targets, _names([node.value])))
                    for sub in ast.walk(node.value):
                        if isinstance(sub, ast.Call):
                            assigned.setdefault(id(sub), targets)
        # the state may come back through a copy: ``h, c = cell(x, hx)`` then
        # ``hx = (h, c)`` (Cooijmans' BN-LSTM): the copy's names are the call's too
        for key, names in list(assigned.items()):
            grown = set(names)
            for targets, read in copies:
                if read & grown and not targets <= grown:
                    grown |= targets
            assigned[key] = frozenset(grown)
        facts = (calls, assigned)
        setattr(loop, _LOOP_FACTS, facts)
    return facts


def _plain_copy(value: ast.expr) -> bool:
    """``(h, c)`` / ``h``: names only, no computation (a call's result is its own value)."""
    if isinstance(value, (ast.Tuple, ast.List)):
        return all(isinstance(e, ast.Name) for e in value.elts)
    return isinstance(value, ast.Name)


def _fed_back(call: ast.Call, loop: ast.For | ast.While) -> set[str]:
    """The names that the call's result is assigned to and that it also takes as argument
    (its state fed back), else an empty set. A step of a recurrence also takes an input of
    its own besides the state (``h = cell(x[t], h)``): ``x = block(x)`` alone chains layers
    over depth (timm's ``for stage in stages: x = stage(x)``), it is not recurrent."""
    values = [*call.args, *(k.value for k in call.keywords)]
    fed = _assigned_to(call, loop) & _names(values) - {"self"}
    if not fed or all(_names([v]) <= fed for v in values):
        return set()
    return fed


def _loop_targets(loop: ast.For | ast.While) -> set[str]:
    return _names([loop.target]) if isinstance(loop, ast.For) else set()


def _touches(call: ast.Call, loop: ast.For | ast.While, state: set[str]) -> bool:
    """A norm call that reads or writes the state fed back."""
    args = _names([*call.args, *(k.value for k in call.keywords)])
    return bool((args | _assigned_to(call, loop)) & state)


def stepped_classes(index: ModuleIndex) -> dict[str, str]:
    """File classes stepped over time by plain code: ``rnn = RNN(...)`` and, in a loop of
    any function or the module body, ``output, hidden = rnn(x[i], hidden)``. Class name ->
    evidence. (A training script steps a hand-written cell outside any ``forward``.)"""
    key = ("stepped-classes",)
    if key in index.memo:
        return index.memo[key]
    nodes = tree_nodes(index)
    instances: dict[str, str] = {}  # variable -> class name
    for node in nodes.get(ast.Assign, []):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Name) and func.id in index.classes:
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        instances[target.id] = func.id
    found: dict[str, str] = {}
    called = {c.func.id for c in nodes.get(ast.Call, []) if isinstance(c.func, ast.Name)}  # type: ignore[attr-defined]
    if not instances.keys() & called:
        index.memo[key] = {}
        return {}  # no instance of a file class is ever called by name: nothing stepped
    loops = [*nodes.get(ast.For, []), *nodes.get(ast.While, [])]
    for loop in loops:  # type: ignore[assignment]
        for call in _loop_calls(loop):
            func = call.func
            if (
                isinstance(func, ast.Name)
                and func.id in instances
                and func.id not in _loop_targets(loop)  # for stage in stages: modules
                and _fed_back(call, loop)
            ):
                cls = instances[func.id]
                found.setdefault(cls, f"{cls} stepped in a loop with its state fed back")
    index.memo[key] = found
    return found


__all__ = ["Recurrence", "find_recurrence", "stepped_classes"]
