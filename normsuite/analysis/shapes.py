"""Data flow through ``forward()``: static tracking of tensor rank, channel dim and channels.

The tracer walks ``forward`` of a statically instantiated model, applies each layer to an
abstract tensor :class:`T` and records every layer application with its input. Unknown
stays unknown (``None`` fields): the rules only speak when the tracker knows.

>>> import ast
>>> from normsuite.analysis.extract import ModuleIndex
>>> src = '''
... import torch.nn as nn
... class M(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.conv = nn.Conv2d(3, 64, 3)
...         self.ln = nn.LayerNorm(64)
...     def forward(self, x):
...         return self.ln(self.conv(x))
... '''
>>> index = ModuleIndex(ast.parse(src), src)
>>> tracer = FlowTracer(index)
>>> _ = tracer.run_instance(index.instantiate(index.classes["M"]), T())
>>> app = tracer.apps[-1]
>>> app.layer.type, app.inp.rank, app.inp.cdim, app.inp.kind
('LayerNorm', 4, 1, 'map')
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from typing import Any

from .attention import holds_attention
from .extract import MAX_DEPTH, BudgetExceeded, ModuleIndex, is_static
from .ir import (
    ATTENTION_TYPES,
    CONV_DIMS,
    NORM_KINDS,
    RNN_CELLS,
    RNN_TYPES,
    SHAPE_KEEPING,
    UNKNOWN,
    Layer,
    ModuleInstance,
)

# Functions that keep the shape of their first argument (torch.*, F.*, tensor methods).
_PASSTHROUGH = frozenset(
    {
        "relu",
        "relu_",
        "relu6",
        "gelu",
        "silu",
        "mish",
        "sigmoid",
        "tanh",
        "leaky_relu",
        "elu",
        "selu",
        "hardswish",
        "hardsigmoid",
        "softplus",
        "dropout",
        "dropout1d",
        "dropout2d",
        "dropout3d",
        "max_pool1d",
        "max_pool2d",
        "max_pool3d",
        "avg_pool1d",
        "avg_pool2d",
        "avg_pool3d",
        "interpolate",
        "upsample",
        "pad",
        "contiguous",
        "clone",
        "detach",
        "float",
        "half",
        "bfloat16",
        "double",
        "to",
        "cuda",
        "cpu",
        "type_as",
        "abs",
        "exp",
        "clamp",
        "neg",
        "mul",
        "add",
        "sub",
        "div",
        "drop_path",
    }
)
_ADAPTIVE_POOL = frozenset(
    {
        "adaptive_avg_pool1d",
        "adaptive_avg_pool2d",
        "adaptive_avg_pool3d",
        "adaptive_max_pool1d",
        "adaptive_max_pool2d",
        "adaptive_max_pool3d",
    }
)
_REDUCE = frozenset({"mean", "sum", "amax", "amin", "max", "min", "std", "var", "logsumexp"})
# Attributes and methods that read a tensor's metadata, not its values.
_LIST_MUTATORS = ("extend", "insert", "pop", "remove", "clear", "reverse", "sort")
_METADATA = frozenset({"shape", "size", "dim", "ndim", "dtype", "device", "numel", "is_cuda"})


@dataclass(frozen=True)
class T:
    """An abstract tensor. ``cdim`` is the channel dimension (>= 0 when ``rank`` is known,
    -1 for "the last one" when it is not); ``kind`` is "map" (conv feature map), "seq"
    (tokens / time steps, channels last) or "feat" ((N, C) features)."""

    rank: int | None = None
    cdim: int | None = None
    channels: int | None = None
    kind: str | None = None
    producer: Layer | None = None  # the layer that produced it with nothing in between
    rnn: bool = False  # derived from an RNN's output / hidden state
    # An RNN's output with time first (no batch_first=True): (T, N, C), so out[-1] is the
    # last step's (N, C). kind "stack" is an RNN's final hidden state (layers x dirs, N, H).
    time_first: bool = False
    pooled: bool = False  # spatial dims are all 1 (after AdaptiveAvgPool(1))
    # The call of a file's module (``PadConv(3, 32, 9)``) whose output ``producer`` is
    # (the outermost one): where a fix goes when that module is shared.
    via: Layer | None = None

    @property
    def last(self) -> bool | None:
        """Whether the channels are the last dimension (None: unknown)."""
        if self.cdim is None:
            return None
        if self.cdim == -1:
            return True
        if self.rank is None:
            return None
        return self.cdim == self.rank - 1

    def plain(self) -> T:
        """The same tensor with no direct producer (after an activation, an add...)."""
        if self.producer is None and self.via is None:
            return self
        return replace(self, producer=None, via=None)


UNKNOWN_T = T()
# The model's own input (rank unknown): an Embedding of it is a token sequence; an
# embedding of anything else (labels passed as a second argument, argmax, arange) may not be.
INPUT_T = T(kind="input")


@dataclass(frozen=True)
class Application:
    """One call of a layer in the data flow, with the abstract input and output."""

    layer: Layer
    inp: T
    out: T
    path: str  # attribute path within the traced model, when known ("" otherwise)
    in_attention_block: bool = False  # the owning class holds attention layers


def _norm_dims(dims: list[int], rank: int) -> list[int] | None:
    out = []
    for d in dims:
        if not isinstance(d, int) or isinstance(d, bool):
            return None
        d = d + rank if d < 0 else d
        if not 0 <= d < rank:
            return None
        out.append(d)
    return out


def _cdim(t: T) -> int | None:
    """The channel dim as a non-negative index, when rank and cdim are both known."""
    if t.cdim is None or t.rank is None:
        return None
    return t.rank - 1 if t.cdim == -1 else t.cdim


class FlowTracer:
    """Interprets ``forward`` methods over abstract tensors and records applications."""

    def __init__(self, index: ModuleIndex, sequences: bool = True) -> None:
        self.index = index
        # Whether an Embedding of the model's input yields (N, L, C) token sequences; the
        # caller says False for a model with no sign of sequences (a recommender's user-id
        # embedding is (N, C)).
        self.sequences = sequences
        self.apps: list[Application] = []
        self.applied: set[int] = set()
        self._stack: list[int] = []
        self._paths: dict[int, str] = {}
        self._walked: set[int] = set()
        self._applied_log: list[int] = []
        # ModuleDict -> the keys forward picked from it with a known string
        self.selected: dict[int, set[str]] = {}
        self._selected_log: list[tuple[int, str]] = []
        self._attention_owner = False
        # Reads of a bound value with a direct producer, by id (shared by every tracer of
        # the file, like flow_cache): a value read twice reaches a second consumer.
        self.reads: dict[int, int] = index.memo.setdefault("flow_reads", {})

    # ------------------------------------------------------------------ entry points
    def run_instance(self, inst: ModuleInstance, x: T, prefix: str = "") -> Any:
        """Trace ``inst.forward(x)``; returns the abstract output (or UNKNOWN)."""
        if id(inst) in self._stack or len(self._stack) >= MAX_DEPTH:
            if id(inst) not in self._stack:
                self.index.cap_hit("depth")
            return UNKNOWN_T
        if id(inst) not in self._walked:  # paths once per instance, not on every call
            self._walked.add(id(inst))
            for name, layer in inst.walk(prefix):
                self._paths.setdefault(id(layer), name)
        key = (id(inst), x, self.sequences)
        # a block of another file is traced once for every file that uses it (project.py)
        cache = (inst.cls.home or self.index).flow_cache
        cached = cache.get(key)
        if cached is not None:
            out, apps, applied, selected = cached
            self.apps.extend(apps)
            self.applied.update(applied)
            for layer_id, name in selected:
                self.selected.setdefault(layer_id, set()).add(name)
            return out
        first_app, first_applied = len(self.apps), len(self._applied_log)
        first_selected = len(self._selected_log)
        out = self._run_forward(inst, x)
        cache[key] = (
            out,
            self.apps[first_app:],
            self._applied_log[first_applied:],
            self._selected_log[first_selected:],
        )
        return out

    def _run_forward(self, inst: ModuleInstance, x: T) -> Any:
        fn = inst.cls.method("forward")
        if fn is None:
            if inst.seq_children:
                return self._fold(inst.seq_children, x)
            return UNKNOWN_T
        params = [*fn.args.posonlyargs, *fn.args.args][1:]
        env: dict[str, Any] = {p.arg: UNKNOWN for p in params}
        if params:
            env[params[0].arg] = x
        if fn.args.vararg:
            env[fn.args.vararg.arg] = (x,)
        saved = self._attention_owner
        self._attention_owner = holds_attention(inst, self.index)
        self._stack.append(id(inst))
        try:
            return self._exec(fn.body, env, inst)
        except _FlowReturn as ret:
            return ret.value
        finally:
            self._stack.pop()
            self._attention_owner = saved

    def cover_unapplied(self, inst: ModuleInstance) -> None:
        """Trace containers and sub-models that ``forward`` did not reach (unknown input).

        Sequentials carry their order in their construction, so their inner checks
        (bias before BN, channel counts) hold even when ``forward`` is opaque.
        """
        for _, layer in inst.walk():
            if id(layer) in self.applied:
                continue
            if layer.type == "Sequential" or layer.type == "Custom":
                self.apply(layer, UNKNOWN_T)

    # ------------------------------------------------------------------ layers
    def apply(self, layer: Layer, x: Any) -> Any:
        """Apply ``layer`` to the abstract value ``x``; record norms, convs and linears."""
        self.index._tick()
        t = x if isinstance(x, T) else UNKNOWN_T
        self.applied.add(id(layer))
        self._applied_log.append(id(layer))
        out = self._apply(layer, t)
        out_t = out if isinstance(out, T) else out[0] if isinstance(out, tuple) else UNKNOWN_T
        if not isinstance(out_t, T):
            out_t = UNKNOWN_T
        if layer.type not in ("Sequential", "Custom"):
            path = self._paths.get(id(layer), "")
            self.apps.append(Application(layer, t, out_t, path, self._attention_owner))
        return out

    def _fold(self, layers: list[Layer], x: Any) -> Any:
        for child in layers:
            x = self.apply(child, x)
        return x

    def _apply(self, layer: Layer, t: T) -> Any:
        kind = layer.type
        if kind == "Sequential":
            return self._fold(layer.children, t)
        if kind == "Custom":
            if layer.instance is None:
                return UNKNOWN_T
            out = self.run_instance(layer.instance, t, self._paths.get(id(layer), ""))
            if isinstance(out, T) and out.producer is not None:
                out = replace(out, via=layer)
            return out
        if kind == "Backbone":
            num_classes = layer.kwargs.get("num_classes")
            ch = num_classes if isinstance(num_classes, int) and num_classes > 0 else None
            return T(rank=2, cdim=1, channels=ch, kind="feat")
        if kind in CONV_DIMS:
            d = CONV_DIMS[kind]
            producer = layer if layer.has_bias else None
            # a 1x1 conv (no padding) of a pooled (N, C, 1, 1) map is still 1x1 (SE, heads)
            k, pad = layer.arg("kernel_size"), layer.arg("padding", 0)
            ones = k == 1 or (isinstance(k, (tuple, list)) and all(v == 1 for v in k))
            pooled = t.pooled and ones and pad in (0, (0, 0), "valid") and "Transpose" not in kind
            return T(
                rank=d + 2,
                cdim=1,
                channels=layer.out_channels,
                kind="map",
                producer=producer,
                pooled=pooled,
            )
        if kind in NORM_KINDS:
            return t.plain()
        if kind in ("Linear", "LazyLinear"):
            cdim = t.rank - 1 if t.rank is not None else -1
            k = "feat" if t.rank == 2 else ("seq" if t.rank == 3 or t.kind == "seq" else None)
            producer = layer if layer.has_bias else None
            return T(t.rank, cdim, layer.out_channels, k, producer, t.rnn)
        if kind in RNN_TYPES:
            time_first = layer.arg("batch_first", False) is not True
            seq = T(3, 2, layer.out_channels, "seq", rnn=True, time_first=time_first)
            hidden = layer.arg("hidden_size")
            width = hidden if isinstance(hidden, int) and not isinstance(hidden, bool) else None
            stack = T(rank=3, cdim=2, channels=width, kind="stack", rnn=True)
            return (seq, (stack, stack) if kind == "LSTM" else stack)
        if kind in RNN_CELLS:
            h = T(rank=2, cdim=1, channels=layer.out_channels, kind="feat", rnn=True)
            return (h, h) if kind == "LSTMCell" else h
        if kind == "Embedding":
            if t.kind == "input":
                # The model's input tokens: (N, L) -> (N, L, C) where the model shows
                # sequences. An embedding of some other value (class labels, an arange of
                # positions) may well be (N,) -> (N, C).
                if self.sequences:
                    return T(3, 2, layer.out_channels, "seq")
                return T(None, -1, layer.out_channels)
            rank = t.rank + 1 if t.rank is not None else None
            seq = "seq" if rank is not None else None
            return T(rank, rank - 1 if rank else -1, layer.out_channels, seq)
        if kind in ATTENTION_TYPES:
            dim = layer.arg("embed_dim") if kind == "MultiheadAttention" else layer.arg("d_model")
            if kind in ("TransformerEncoder", "TransformerDecoder") and layer.children:
                dim = layer.children[0].arg("d_model")
            ch = dim if isinstance(dim, int) else None
            out = T(t.rank, t.rank - 1 if t.rank else -1, ch, "seq")
            return (out, UNKNOWN_T) if kind == "MultiheadAttention" else out
        if kind == "Rearrange":
            pattern = layer.arg("pattern")
            return _rearrange(t, pattern) if isinstance(pattern, str) else UNKNOWN_T
        if kind == "Permute":
            dims = layer.arg("dims")
            return _reshape_op(t, "permute", list(dims)) if isinstance(dims, list) else UNKNOWN_T
        if kind == "Flatten":
            start = layer.arg("start_dim", 1)
            end = layer.arg("end_dim", -1)
            return _flatten(t, start, end)
        if kind.startswith("Adaptive"):
            size = layer.arg("output_size")
            ones = size == 1 or (isinstance(size, (list, tuple)) and all(s == 1 for s in size))
            return replace(t.plain(), pooled=bool(ones))
        if kind in SHAPE_KEEPING:
            return t if kind == "Identity" else t.plain()
        if kind in ("PixelShuffle", "PixelUnshuffle"):
            return replace(t.plain(), channels=None)  # C / r^2 (C * r^2): same layout
        return UNKNOWN_T

    # ------------------------------------------------------------------ statements
    def _exec(self, body: list[ast.stmt], env: dict[str, Any], inst: ModuleInstance) -> Any:
        for stmt in body:
            self.index._tick()
            if isinstance(stmt, ast.Assign):
                value = self._eval(stmt.value, env, inst)
                for target in stmt.targets:
                    _bind(target, value, env)
                    _learn_rank(target, stmt.value, env)
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                _bind(stmt.target, self._eval(stmt.value, env, inst), env)
            elif isinstance(stmt, ast.AugAssign):
                if isinstance(stmt.target, ast.Name):
                    left = env.get(stmt.target.id, UNKNOWN)
                    right = self._eval(stmt.value, env, inst)
                    env[stmt.target.id] = _merge_binop(stmt.op, left, right)
            elif isinstance(stmt, ast.Return):
                raise _FlowReturn(self._eval(stmt.value, env, inst) if stmt.value else None)
            elif isinstance(stmt, ast.If):
                self._exec_if(stmt, env, inst)
            elif isinstance(stmt, (ast.For, ast.AsyncFor)):
                self._exec_for(stmt, env, inst)
            elif isinstance(stmt, (ast.With, ast.AsyncWith, ast.Try)):
                self._exec(stmt.body, env, inst)
            elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
                self._eval(stmt.value, env, inst)
        return None

    def _exec_if(self, stmt: ast.If, env: dict[str, Any], inst: ModuleInstance) -> None:
        test = self.index.eval(stmt.test, _Consts(env), inst)
        if test is not UNKNOWN and not _abstract(test):
            self._exec(stmt.body if test else stmt.orelse, env, inst)
            return
        # Unknown condition: trace both branches (both are real code); keep a name only
        # where the branches agree, so nothing downstream rests on a guess.
        other = dict(env)
        returned: list[Any] = []
        for body, scope in ((stmt.body, env), (stmt.orelse, other)):
            try:
                self._exec(body, scope, inst)
            except _FlowReturn as ret:
                returned.append(ret.value)
                scope["__returned__"] = True
        main_returned = env.pop("__returned__", False)
        else_returned = other.pop("__returned__", False)
        if main_returned and else_returned:
            raise _FlowReturn(returned[0] if len(set(map(repr, returned))) == 1 else UNKNOWN_T)
        if main_returned:  # only the else branch falls through
            env.clear()
            env.update(other)
            return
        if else_returned:
            return
        for k in set(env) | set(other):
            a, b = env.get(k, UNKNOWN), other.get(k, UNKNOWN)
            if a is not b and a != b:
                env[k] = UNKNOWN_T if isinstance(a, T) or isinstance(b, T) else UNKNOWN

    def _exec_for(self, stmt: ast.For | ast.AsyncFor, env: dict[str, Any], inst: Any) -> None:
        items = self._iter(stmt.iter, env, inst)
        if items is None:
            # An unknown loop may change anything it assigns or grows: forget those names
            # (DenseNet's ``features.append(layer(features))`` over ``self.items()``).
            for node in ast.walk(stmt):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    env[node.id] = UNKNOWN_T
                elif (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("append", *_LIST_MUTATORS)
                    and isinstance(node.func.value, ast.Name)
                ):
                    env[node.func.value.id] = UNKNOWN
            return
        for item in items:
            _bind(stmt.target, item, env)
            self._exec(stmt.body, env, inst)

    def _iter(self, node: ast.expr, env: dict[str, Any], inst: Any) -> list[Any] | None:
        call = node if isinstance(node, ast.Call) else None
        func = call.func if call is not None else None
        wrapped = isinstance(func, ast.Name) and func.id in ("enumerate", "zip", "reversed")
        if call is not None and wrapped and call.args:
            assert isinstance(func, ast.Name)
            seqs = [self._iter(a, env, inst) for a in call.args]
            if any(s is None for s in seqs):
                return None
            if func.id == "enumerate":
                return list(enumerate(seqs[0]))  # type: ignore[arg-type]
            if func.id == "reversed":
                return list(reversed(seqs[0]))  # type: ignore[arg-type]
            return [tuple(t) for t in zip(*seqs, strict=False)]  # type: ignore[misc]
        own = (
            isinstance(func, ast.Attribute)
            and func.attr in ("children", "named_children")
            and isinstance(func.value, ast.Name)
            and func.value.id == "self"
            and call is not None
            and not call.args
        )
        if own:  # self.children(): the submodules in the order __init__ registered them
            named = [(k, v) for k, v in inst.attrs.items() if isinstance(v, Layer)]
            if func.attr == "children":  # type: ignore[union-attr]
                return [v for _, v in named]
            return named
        is_view = isinstance(func, ast.Attribute) and func.attr in ("values", "children", "items")
        if call is not None and is_view and not call.args:
            assert isinstance(func, ast.Attribute)
            base = self._eval(func.value, env, inst)
            if isinstance(base, Layer) and base.children:
                if func.attr == "items":
                    return list(zip(base.child_names, base.children, strict=False))
                return list(base.children)
        value = self._eval(node, env, inst)
        if isinstance(value, Layer) and value.type in ("ModuleList", "Sequential", "ModuleDict"):
            if value.type == "ModuleDict":
                return list(value.child_names)
            return list(value.children)
        if isinstance(value, (list, tuple, range)):
            return list(value)
        return None

    # ------------------------------------------------------------------ expressions
    def _eval(self, node: ast.expr | None, env: dict[str, Any], inst: ModuleInstance) -> Any:
        if node is None:
            return None
        if isinstance(node, ast.Name):
            if node.id in env:
                value = env[node.id]
                if isinstance(value, T) and value.producer is not None:
                    self.reads[id(value)] = self.reads.get(id(value), 0) + 1
                return value
            return self.index.env.get(node.id, UNKNOWN)
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                return inst.attrs.get(node.attr, UNKNOWN)
            if node.attr in _METADATA and isinstance(node.value, ast.Name):
                return UNKNOWN  # x.shape / x.device: reads no values of x
            base = self._eval(node.value, env, inst)
            if isinstance(base, Layer) and base.instance is not None:
                return base.instance.attrs.get(node.attr, UNKNOWN)
            if isinstance(base, T) and node.attr in ("T", "mT"):
                return UNKNOWN_T
            return UNKNOWN
        if isinstance(node, ast.Call):
            return self._call(node, env, inst)
        if isinstance(node, ast.BinOp):
            left = self._eval(node.left, env, inst)
            right = self._eval(node.right, env, inst)
            if isinstance(node.op, ast.MatMult):
                return UNKNOWN_T
            return _merge_binop(node.op, left, right)
        if isinstance(node, ast.Tuple):
            return tuple(self._eval(e, env, inst) for e in node.elts)
        if isinstance(node, ast.Dict):  # {"hidden": h}: returned, a consumer of h
            return {
                key.value if isinstance(key, ast.Constant) else i: self._eval(value, env, inst)
                for i, (key, value) in enumerate(zip(node.keys, node.values, strict=True))
            }
        if isinstance(node, ast.List):
            return [self._eval(e, env, inst) for e in node.elts]
        if isinstance(node, ast.Subscript):
            base = self._eval(node.value, env, inst)
            if isinstance(base, (tuple, list)):
                key = self.index.eval(node.slice, {}, None)
                if isinstance(key, int) and -len(base) <= key < len(base):
                    return base[key]
                return UNKNOWN
            if isinstance(base, Layer) and base.children:
                key = self.index.eval(node.slice, {}, None)
                if base.type == "ModuleDict" and not isinstance(key, str):
                    key = self._selector(node.slice, inst)
                if isinstance(key, int) and -len(base.children) <= key < len(base.children):
                    return base.children[key]
                if isinstance(key, str) and key in base.child_names:
                    if base.type == "ModuleDict":  # self.norms[self.norm]: the one it uses
                        self.selected.setdefault(id(base), set()).add(key)
                        self._selected_log.append((id(base), key))
                    return base.children[base.child_names.index(key)]
                return UNKNOWN
            if isinstance(base, T):
                if base.rank == 3 and base.last and _picks_one_step(node.slice):
                    # out[:, -1] / x[:, 0]: one step's (N, C) vector (not the sequence)
                    return T(2, 1, base.channels, "feat")
                if (base.kind == "stack" or base.time_first) and _constant_int(node.slice):
                    # h_n[-1] (the last layer's final state) / out[-1] with time first:
                    # one (N, C) vector per sequence
                    return T(2, 1, base.channels, "feat")
                # Indexing: the shape depends on the index, the origin does not.
                return T(rnn=True) if base.rnn else UNKNOWN_T
            return UNKNOWN
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, env, inst)
            return v if isinstance(v, T) else UNKNOWN
        if isinstance(node, ast.IfExp):  # (h,) if output_hidden_states else None
            self._eval(node.test, env, inst)
            body = self._eval(node.body, env, inst)
            orelse = self._eval(node.orelse, env, inst)
            return orelse if body is None else body
        # Any other use (a comprehension, a boolean operator, an f-string) still reads the
        # values it names: each is a consumer (NRM001 must not miss a second one).
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in env:
                value = env[sub.id]
                if isinstance(value, T) and value.producer is not None:
                    self.reads[id(value)] = self.reads.get(id(value), 0) + 1
        return UNKNOWN

    def _selector(self, key: ast.expr, inst: ModuleInstance) -> Any:
        """The string an ``__init__`` stored as ``self.norm`` (``self.norms[self.norm]``)."""
        if isinstance(key, ast.Attribute) and getattr(key.value, "id", None) == "self":
            value = inst.attrs.get(key.attr)
            return value if isinstance(value, str) else UNKNOWN
        return UNKNOWN

    def _call(self, node: ast.Call, env: dict[str, Any], inst: ModuleInstance) -> Any:
        func = node.func
        # self.layer(x), blk(x), self.blocks[i](x)
        callee = self._eval(func, env, inst) if not _is_method_on_value(func) else UNKNOWN
        if isinstance(callee, Layer):
            x = self._eval(node.args[0], env, inst) if node.args else UNKNOWN_T
            out = self.apply(callee, x)
            self._apply_alternates(func, x, inst)
            return out
        if isinstance(func, ast.Attribute):
            # self.helper(x): a method of the model.
            if isinstance(func.value, ast.Name) and func.value.id == "self":
                fn = inst.cls.method(func.attr)
                if fn is not None and func.attr != "forward":
                    return self._call_method(fn, node, env, inst)
                return UNKNOWN
            qual = self.index.qualname(func) or ""
            if qual.startswith(("torch.", "F.", "einops.")) or qual.split(".")[0] in (
                self.index.imports
            ):
                return self._function(qual.split(".")[-1], node, env, inst)
            if func.attr in _METADATA and isinstance(func.value, ast.Name):
                return UNKNOWN  # x.size(0) / x.dim(): reads no values of x
            base = self._eval(func.value, env, inst)
            if isinstance(base, T):
                return self._tensor_method(base, func.attr, node, env, inst)
            if isinstance(base, list) and isinstance(func.value, ast.Name):
                # feats.append(y) grows the list a later torch.cat(feats) reads
                if func.attr == "append" and len(node.args) == 1 and not node.keywords:
                    env[func.value.id] = [*base, self._eval(node.args[0], env, inst)]
                    return UNKNOWN
                if func.attr in _LIST_MUTATORS:
                    env[func.value.id] = UNKNOWN
            self._read_arguments(node, env, inst)  # feats.append(x): x has another consumer
            return UNKNOWN
        if isinstance(func, ast.Name):
            qual = self.index.qualname(func) or func.id
            if func.id in self.index.functions and func.id not in env:
                return UNKNOWN  # a same-file helper on tensors: opaque (no guessing)
            return self._function(qual.split(".")[-1], node, env, inst)
        return UNKNOWN

    def _read_arguments(self, node: ast.Call, env: dict[str, Any], inst: ModuleInstance) -> None:
        """Evaluate a call's arguments only to count the reads of the tensors passed."""
        for arg in node.args:
            self._eval(arg.value if isinstance(arg, ast.Starred) else arg, env, inst)
        for kw in node.keywords:
            self._eval(kw.value, env, inst)

    def _apply_alternates(self, func: ast.expr, x: Any, inst: ModuleInstance) -> None:
        """``self.head(x)``: the head a non-default configuration builds instead (an
        alternate, see extract) sees the same input; its output goes nowhere."""
        if not (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "self"
            and inst.alternates
        ):
            return
        for name, alt in inst.alternates:
            if name == func.attr and id(alt) not in self.applied:
                self.apply(alt, x)

    def _call_method(
        self, fn: ast.FunctionDef, node: ast.Call, env: dict[str, Any], inst: ModuleInstance
    ) -> Any:
        if len(self._stack) >= MAX_DEPTH or fn.name in getattr(self, "_methods", ()):
            if len(self._stack) >= MAX_DEPTH:
                self.index.cap_hit("depth")
            return UNKNOWN
        params = [*fn.args.posonlyargs, *fn.args.args][0 if is_static(fn) else 1 :]
        scope: dict[str, Any] = {p.arg: UNKNOWN for p in params}
        for p, a in zip(params, node.args, strict=False):
            scope[p.arg] = self._eval(a, env, inst)
        for kw in node.keywords:
            if kw.arg in scope:
                scope[kw.arg] = self._eval(kw.value, env, inst)
        self._methods = (*getattr(self, "_methods", ()), fn.name)
        self._stack.append(id(fn))
        try:
            self._exec(fn.body, scope, inst)
        except _FlowReturn as ret:
            return ret.value
        finally:
            self._stack.pop()
            self._methods = self._methods[:-1]
        return None

    def _args(self, node: ast.Call, env: dict[str, Any], inst: Any) -> list[Any]:
        return [self._eval(a, env, inst) for a in node.args]

    def _const(self, node: ast.expr | None, env: dict[str, Any]) -> Any:
        if node is None:
            return UNKNOWN
        return self.index.eval(node, _Consts(env), None)

    def _function(self, name: str, node: ast.Call, env: dict[str, Any], inst: Any) -> Any:
        """torch.* / F.* / einops functions applied to abstract tensors."""
        if not node.args:
            return UNKNOWN
        x = self._eval(node.args[0], env, inst)
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        if name in _PASSTHROUGH:
            return x.plain() if isinstance(x, T) else UNKNOWN
        if name in _ADAPTIVE_POOL and isinstance(x, T):
            size = self._const(node.args[1] if len(node.args) > 1 else kw.get("output_size"), env)
            ones = size == 1 or (isinstance(size, (list, tuple)) and all(s == 1 for s in size))
            return replace(x.plain(), pooled=bool(ones))
        if name == "flatten" and isinstance(x, T):
            start = self._const(node.args[1], env) if len(node.args) > 1 else None
            start = self._const(kw.get("start_dim"), env) if "start_dim" in kw else start
            end = self._const(node.args[2], env) if len(node.args) > 2 else -1
            return _flatten(x, 0 if start is None else start, end)
        if name in ("permute", "transpose", "swapaxes", "movedim", "unsqueeze", "squeeze"):
            if isinstance(x, T) and _starred(node.args[1:]):
                return UNKNOWN_T
            if isinstance(x, T):
                consts = [self._const(a, env) for a in node.args[1:]]
                return _reshape_op(x, name, consts)
            return UNKNOWN
        if name == "cat" and isinstance(x, list):
            return _cat(x, self._const(node.args[1] if len(node.args) > 1 else kw.get("dim"), env))
        if name == "rearrange" and isinstance(x, T) and len(node.args) > 1:
            pattern = self._const(node.args[1], env)
            return _rearrange(x, pattern) if isinstance(pattern, str) else UNKNOWN_T
        if isinstance(x, T):
            return UNKNOWN_T
        return UNKNOWN

    def _tensor_method(
        self, x: T, name: str, node: ast.Call, env: dict[str, Any], inst: Any
    ) -> Any:
        if name in _PASSTHROUGH:
            return x.plain()
        if name in _SHAPE_ARGS and _starred(node.args):
            # x.reshape(*input_shape, -1): how many dims the star spreads is unknown, so the
            # rank is (HF attention: read as (N, C) features, it turned a Transformer's norm
            # into a BatchNorm site)
            return UNKNOWN_T
        consts = [self._const(a, env) for a in node.args]
        kw = {k.arg: self._const(k.value, env) for k in node.keywords if k.arg}
        if name in ("permute", "transpose", "swapaxes", "movedim", "unsqueeze", "squeeze"):
            if len(consts) == 1 and isinstance(consts[0], (list, tuple)) and name == "permute":
                consts = list(consts[0])
            if not consts and "dim" in kw:
                consts = [kw["dim"]]
            return _reshape_op(x, name, consts)
        if name == "flatten":
            start = consts[0] if consts else kw.get("start_dim", 0)
            end = consts[1] if len(consts) > 1 else kw.get("end_dim", -1)
            return _flatten(x, start, end)
        if name in ("view", "reshape"):
            return _view(x, consts)
        if name in _REDUCE:
            dims = consts[0] if consts else kw.get("dim", UNKNOWN)
            keep = kw.get("keepdim", consts[1] if len(consts) > 1 else False)
            return _reduce(x, dims, keep)
        if name in ("size", "dim", "numel"):
            return UNKNOWN
        one_step = len(consts) == 2 and consts[0] == (0 if x.time_first else 1)
        if name == "select" and x.rank == 3 and x.kind == "seq" and one_step:
            return T(2, 1, x.channels, "feat")  # out.select(1, -1): one step (dim 0: time first)
        return UNKNOWN_T


class _FlowReturn(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


class _Consts(dict):
    """A read-only view of the flow's locals for the constant evaluator: abstract tensors
    and layers read as unknown (no copy per call: this runs for every ``if`` and shape)."""

    def __init__(self, env: dict[str, Any]) -> None:
        super().__init__()
        self._env = env

    def __contains__(self, key: object) -> bool:
        return key in self._env

    def __getitem__(self, key: str) -> Any:
        value = self._env[key]
        return UNKNOWN if _abstract(value) else value

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self[key] if key in self._env else default

    def __setitem__(self, key: str, value: Any) -> None:
        pass  # the constant evaluator must not write into the flow's locals


_SHAPE_ARGS = frozenset(
    {"view", "reshape", "permute", "transpose", "swapaxes", "movedim", "unsqueeze", "squeeze"}
)


def _starred(args: list[ast.expr]) -> bool:
    """Shape arguments with a star (``*shape, -1`` or ``(*shape, -1)``): their count is
    not the rank."""
    return any(
        isinstance(a, ast.Starred)
        or (
            isinstance(a, (ast.Tuple, ast.List)) and any(isinstance(e, ast.Starred) for e in a.elts)
        )
        for a in args
    )


def _constant_int(index: ast.expr) -> bool:
    """``[-1]`` / ``[0]``: one constant integer index."""
    if isinstance(index, ast.UnaryOp) and isinstance(index.op, ast.USub):
        index = index.operand
    return (
        isinstance(index, ast.Constant)
        and isinstance(index.value, int)
        and not isinstance(index.value, bool)
    )


def _picks_one_step(index: ast.expr) -> bool:
    """``[:, k]`` (or ``[:, k, :]``) with a constant ``k``: one position of dim 1."""
    if not isinstance(index, ast.Tuple) or len(index.elts) < 2:
        return False
    first, second, *rest = index.elts
    if isinstance(second, ast.UnaryOp) and isinstance(second.op, ast.USub):
        second = second.operand

    def full(node: ast.expr) -> bool:
        return isinstance(node, ast.Slice) and node.lower is None and node.upper is None

    picks = isinstance(second, ast.Constant) and isinstance(second.value, int)
    return full(first) and picks and all(full(r) for r in rest)  # out[:, -1, :] too


def _abstract(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_abstract(v) for v in value.values())
    return isinstance(value, (T, Layer)) or (
        isinstance(value, (tuple, list)) and any(_abstract(v) for v in value)
    )


def _is_method_on_value(func: ast.expr) -> bool:
    """``x.permute(...)``: a method call on a local value, not a layer lookup."""
    return (
        isinstance(func, ast.Attribute)
        and not (isinstance(func.value, ast.Name) and func.value.id == "self")
        and not isinstance(func.value, (ast.Subscript, ast.Attribute))
    )


def _bind(target: ast.expr, value: Any, env: dict[str, Any]) -> None:
    if isinstance(target, ast.Name):
        env[target.id] = value
    elif isinstance(target, (ast.Tuple, ast.List)):
        seq = value if isinstance(value, (tuple, list)) else None
        if seq is not None and len(seq) != len(target.elts):
            seq = None
        for i, elt in enumerate(target.elts):
            _bind(elt, seq[i] if seq is not None else UNKNOWN_T, env)


def _learn_rank(target: ast.expr, value: ast.expr, env: dict[str, Any]) -> None:
    """``b, l, c = x.shape`` (or ``x.size()``): x has rank 3. Only a tensor whose rank was
    unknown learns it; its channel dim stays what it was (last, or unknown)."""
    if not isinstance(target, ast.Tuple) or any(isinstance(e, ast.Starred) for e in target.elts):
        return
    src = value
    if isinstance(src, ast.Call) and not src.args and isinstance(src.func, ast.Attribute):
        src = src.func if src.func.attr == "size" else value
    if not (isinstance(src, ast.Attribute) and src.attr in ("shape", "size")):
        return
    if not isinstance(src.value, ast.Name):
        return
    t = env.get(src.value.id)
    if not isinstance(t, T) or t.rank is not None:
        return
    rank = len(target.elts)
    if rank < 1 or (t.cdim is not None and t.cdim != -1):
        return
    env[src.value.id] = replace(t, rank=rank, cdim=None if t.cdim is None else rank - 1)


def _merge_binop(op: ast.operator, left: Any, right: Any) -> Any:
    """``x + residual``, ``x * scale``: keep what is known about the tensor operand."""
    if isinstance(op, ast.MatMult):
        return UNKNOWN_T
    if isinstance(left, T) and isinstance(right, T):
        if left.rank is not None and right.rank is not None and left.rank != right.rank:
            return UNKNOWN_T
        if left.rank is not None and left.cdim is not None:
            return left.plain()
        if left.kind == "input" and left.cdim is None and right.cdim is not None:
            return right.plain()  # x + self.attn(x): the block's output has the known layout
        if right.rank is None and (right.cdim is None or left.kind is not None):
            return left.plain()  # tok(idx) + pos(arange(L)): the token side knows more
        return right.plain()
    if isinstance(left, T):
        return left.plain()
    if isinstance(right, T):
        return right.plain()
    return UNKNOWN


def _flatten(t: T, start: Any, end: Any) -> T:
    if t.rank is None and start == 1 and end == -1:
        return T(rank=2, cdim=1, kind="feat")  # x.flatten(1) of any rank: (N, C) features
    if t.rank is None or not isinstance(start, int) or not isinstance(end, int):
        return UNKNOWN_T
    s = start + t.rank if start < 0 else start
    e = end + t.rank if end < 0 else end
    if not 0 <= s <= e < t.rank:
        return UNKNOWN_T
    rank = t.rank - (e - s)
    c = _cdim(t)
    if c is None:
        return T(rank=rank)
    if c < s:
        kind = t.kind
        if rank == 2:
            kind = "feat"
        elif t.kind == "map" and rank == 3 and e > s:
            kind = "seq"  # (N, C, H, W) -> (N, C, H*W): patch tokens (ViT), not a conv map
        return replace(t.plain(), rank=rank, cdim=c, kind=kind)
    if c > e:
        kind = t.kind
        if t.kind == "map" and rank == 3 and e > s and c == t.rank - 1:
            kind = "seq"  # (N, H, W, C) -> (N, H*W, C): tokens (a Swin stage's), not a map
        return replace(t.plain(), rank=rank, cdim=c - (e - s), kind=kind)
    if t.pooled and s == c:  # (N, C, 1, 1) -> (N, C)
        return T(rank=rank, cdim=s, channels=t.channels, kind="feat" if rank == 2 else None)
    return T(rank=rank, cdim=s if rank == 2 else None, kind="feat" if rank == 2 else None)


def _reshape_op(t: T, name: str, consts: list[Any]) -> T:
    if t.rank is None:
        return _swap_tokens(t, name, consts)
    c = _cdim(t)
    base = t.plain()
    if name == "permute":
        dims = _norm_dims(consts, t.rank)
        if dims is None or sorted(dims) != list(range(t.rank)):
            return UNKNOWN_T
        return replace(base, cdim=dims.index(c) if c is not None else None)
    if name in ("transpose", "swapaxes", "movedim"):
        dims = _norm_dims(consts[:2], t.rank)
        if dims is None or len(dims) != 2:
            return UNKNOWN_T
        a, b = dims
        if c is None:
            return base
        if name == "movedim":
            order = list(range(t.rank))
            order.insert(b, order.pop(a))
            return replace(base, cdim=order.index(c))
        return replace(base, cdim=b if c == a else a if c == b else c)
    if name == "unsqueeze":
        dims = _norm_dims(consts[:1], t.rank + 1)
        if not dims:
            return UNKNOWN_T
        (d,) = dims
        return replace(base, rank=t.rank + 1, cdim=None if c is None else c + (d <= c))
    if name == "squeeze":
        dims = _norm_dims(consts[:1], t.rank) if consts else None
        if not dims or c is None or dims[0] == c:
            return UNKNOWN_T
        return replace(base, rank=t.rank - 1, cdim=c - (dims[0] < c))
    return UNKNOWN_T


def _swap_tokens(t: T, name: str, consts: list[Any]) -> T:
    """``x.transpose(1, 2)`` of a token sequence of unknown rank with channels last (the
    output of attention or of an embedding): channels first, (N, C, L), the layout
    ``BatchNorm1d`` / ``Conv1d`` take after it (they accept nothing else of rank >= 3)."""
    pair = consts[:2]
    swaps = (
        name in ("transpose", "swapaxes")
        and len(pair) == 2
        and all(isinstance(d, int) and not isinstance(d, bool) for d in pair)
        and {*pair} in ({1, 2}, {1, -1}, {-2, -1})
    )
    if swaps and t.kind == "seq" and t.cdim == -1:
        return replace(t.plain(), rank=3, cdim=1)
    return UNKNOWN_T


def _view(t: T, consts: list[Any]) -> T:
    if len(consts) == 1 and isinstance(consts[0], (list, tuple)):
        consts = list(consts[0])
    if not consts:
        return UNKNOWN_T
    rank = len(consts)
    # x.view(x.size(0), -1): flattened features. Anything else: only the rank is known.
    if rank == 2 and consts[1] == -1:
        ch = t.channels if t.pooled and _cdim(t) == 1 else None
        return T(rank=2, cdim=1, channels=ch, kind="feat")
    return T(rank=rank)


def _reduce(t: T, dims: Any, keep: Any) -> T:
    if t.rank is None or dims is UNKNOWN:
        return UNKNOWN_T
    dl = _norm_dims(list(dims) if isinstance(dims, (list, tuple)) else [dims], t.rank)
    c = _cdim(t)
    if dl is None or c is None or c in dl:
        return UNKNOWN_T
    if keep is True:
        return replace(t.plain(), pooled=t.pooled or (t.kind == "map" and c == 1))
    rank = t.rank - len(dl)
    cdim = c - sum(1 for d in dl if d < c)
    kind = "feat" if rank == 2 else t.kind
    return replace(t.plain(), rank=rank, cdim=cdim, kind=kind)


def _cat(parts: list[Any], dim: Any) -> T:
    # torch.cat takes tensors of one rank: a part of known rank gives the rank of all, the
    # others (an argument of forward, not traced) are tensors of unknown shape
    # (TabTransformer's cat([tokens.flatten(1), x_cont], 1) is (N, C) features)
    ts = [p if isinstance(p, T) else UNKNOWN_T for p in parts]
    if not ts or not isinstance(dim, int):
        return UNKNOWN_T
    known = [p for p in ts if p.rank is not None]
    first = known[0] if known else ts[0]
    if first.rank is None or any(p.rank != first.rank or p.cdim != first.cdim for p in known):
        return UNKNOWN_T
    d = dim + first.rank if dim < 0 else dim
    if d == _cdim(first):
        chans = [p.channels for p in ts]
        total = sum(chans) if all(isinstance(ch, int) for ch in chans) else None
        return replace(first.plain(), channels=total)  # type: ignore[arg-type]
    return first.plain()


def _rearrange(t: T, pattern: str) -> T:
    """einops ``rearrange(x, "b c h w -> b h w c")``: follow the channel axis by name.
    Merged output axes are fine when the channel axis stays alone:
    ``"b c h w -> b (h w) c"`` gives (N, L, C) patch tokens."""
    if "->" not in pattern or t.rank is None:
        return UNKNOWN_T
    left_text, right_text = pattern.split("->", 1)
    left = left_text.split()
    c = _cdim(t)
    if c is None or len(left) != t.rank or any("(" in s or ")" in s for s in left):
        return UNKNOWN_T
    right = _axis_groups(right_text)
    if right is None:
        return UNKNOWN_T
    name = left[c]
    where = [i for i, group in enumerate(right) if name in group]
    if len(where) != 1 or len(right[where[0]]) != 1:
        return UNKNOWN_T
    merged = any(len(group) > 1 for group in right)
    kind = t.kind
    if t.kind == "map" and merged and len(right) == 3 and where[0] == 2:
        kind = "seq"  # "b c h w -> b (h w) c": tokens; "b c (h w)" stays a channels-first map
    return replace(t.plain(), rank=len(right), cdim=where[0], kind=kind)


def _axis_groups(side: str) -> list[list[str]] | None:
    """``"b (h w) c"`` -> [["b"], ["h", "w"], ["c"]] (None for nested or unbalanced)."""
    groups: list[list[str]] = []
    current: list[str] | None = None
    for token in side.replace("(", " ( ").replace(")", " ) ").split():
        if token == "(":
            if current is not None:
                return None
            current = []
        elif token == ")":
            if current is None:
                return None
            groups.append(current)
            current = None
        elif current is not None:
            current.append(token)
        else:
            groups.append([token])
    return None if current is not None else groups


__all__ = ["INPUT_T", "UNKNOWN_T", "Application", "BudgetExceeded", "FlowTracer", "T"]
