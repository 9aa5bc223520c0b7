"""Facts about one norm site that both the rules and the recommender use, so that a layer a
rule flags is never "kept" by ``recommend`` (and the other way round).

>>> from normsuite.analysis.ir import Layer
>>> from normsuite.analysis.shapes import T
>>> bn = Layer("BatchNorm1d", 1, 0, "nn.BatchNorm1d(64)", args=(64,))
>>> normalizes_length(bn, T(rank=3, cdim=2, channels=64, kind="seq"))
True
>>> normalizes_length(bn, T(rank=3, cdim=1, channels=64, kind="map"))
False
"""

from __future__ import annotations

import ast
import re

from .context import ModelContext
from .ir import ATTENTION_TYPES, CONV_DIMS, RNN_CELLS, RNN_TYPES, Layer
from .shapes import T
from .tree_facts import called_name, self_attribute

_CNN = ("cnn1d", "cnn2d", "cnn3d")
_CHANNEL_FIRST = frozenset(
    {
        "BatchNorm1d",
        "BatchNorm2d",
        "BatchNorm3d",
        "SyncBatchNorm",
        "FrozenBatchNorm2d",
        "InstanceNorm1d",
        "InstanceNorm2d",
        "InstanceNorm3d",
        "GroupNorm",
        "LayerNorm2d",
        "RMSNorm2d",
    }
)
_BN1D = ("BatchNorm1d", "InstanceNorm1d", "LazyBatchNorm1d")


def normalizes_length(layer: Layer, t: T) -> bool:
    """BatchNorm1d/InstanceNorm1d on an (N, L, C) tensor: it normalizes L, not C (NRM012).

    Rank known: channels last on a rank-3 tensor. Rank unknown (token embeddings of an
    input whose rank the tracer cannot see): a token sequence whose channel count is known
    and equals the layer's, so the layer was evidently meant for those channels.
    """
    if layer.type not in _BN1D:
        return False
    if t.rank == 3 and t.last is True:
        return True
    c = layer.num_channels
    return t.rank is None and t.cdim == -1 and t.kind == "seq" and c is not None and t.channels == c


def received_channels(model: ModelContext, layer: Layer, t: T) -> int | None:
    """The channel count the norm receives when it differs from the one it was built for
    (NRM011), else None."""
    expected = layer.num_channels
    if expected is None or t.channels is None or t.channels == expected:
        return None
    if t.rank is None:
        # Rank unknown: only (N, C) features of an MLP, channels last with a known count
        # (Linear(20, 64) -> BatchNorm1d(32)); on a sequence BatchNorm1d(L) may be meant.
        mlp = model.architecture == "mlp" and t.kind != "seq" and t.cdim == -1
        # BatchNorm1d / GroupNorm take (N, C): their channels are the Linear's features
        return t.channels if mlp and layer.type in ("BatchNorm1d", "GroupNorm") else None
    if layer.type in _CHANNEL_FIRST:
        if t.cdim != 1 or (t.rank == 3 and t.kind == "seq"):
            return None
    elif layer.type in ("LayerNorm", "RMSNorm"):
        if t.last is not True:
            return None
    else:
        return None
    return t.channels


def producer_width_expr(model: ModelContext, layer: Layer, t: T) -> str | None:
    """The source of the out-channels argument of the layer that feeds ``layer`` (``cout`` in
    ``nn.Conv2d(cin, cout, 3)``) when both are built by the same module (siblings): the
    channel expression a norm line shared by several widths needs (``BatchNorm2d(cout)``,
    never one literal width per instance)."""
    paths = {id(lay): path for path, lay in model.layers}
    producer = t.producer or _previous_sibling(model, layer, t, paths)
    if producer is None or producer.type not in _WIDTH_ARG:
        return None
    here, there = paths.get(id(layer)), paths.get(id(producer))
    if here is None or there is None:
        return None
    if here.rpartition(".")[0] != there.rpartition(".")[0]:
        return None  # built by different modules: the name may not exist at the norm
    try:
        call = ast.parse(producer.code, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(call, ast.Call):
        return None
    keyword = _WIDTH_ARG[producer.type]
    node = next((k.value for k in call.keywords if k.arg == keyword), None)
    if node is None and len(call.args) > 1 and not isinstance(call.args[1], ast.Starred):
        node = call.args[1]
    if node is None or isinstance(node, ast.Constant):
        return None
    return ast.unparse(node)


def same_channel_expr(model: ModelContext, norm: Layer, t: T) -> str | None:
    """The text of ``norm``'s normalized shape when it is the very expression the sibling
    layer that produced ``t`` gives as its out channels: ``nn.LayerNorm(cout)`` after
    ``nn.Conv2d(cin, cout)``, whatever ``cout`` is (NRM002's case, named symbolically)."""
    theirs = producer_width_expr(model, norm, t)
    try:
        call = ast.parse(norm.code, mode="eval").body
    except SyntaxError:
        return None
    if theirs is None or not isinstance(call, ast.Call):
        return None
    if not called_name(call.func).endswith(("LayerNorm", "RMSNorm")):
        return None  # norm_layer(dim): a parameter its callers may replace (timm's stages)
    ours = next((k.value for k in call.keywords if k.arg == "normalized_shape"), None)
    ours = ours or (call.args[0] if call.args else None)
    return theirs if ours is not None and ast.unparse(ours) == theirs else None


def _previous_sibling(
    model: ModelContext, layer: Layer, t: T, paths: dict[int, str]
) -> Layer | None:
    """The conv/linear applied just before the norm (a bias-free conv records no producer),
    when it is a sibling and produces the width the norm receives."""
    here = paths.get(id(layer), "")
    before = None
    for app in model.apps:
        if app.layer is layer and app.inp is t:
            break
        before = app
    if before is None or before.layer.type not in _WIDTH_ARG:
        return None
    same_parent = paths.get(id(before.layer), "").rpartition(".")[0] == here.rpartition(".")[0]
    return before.layer if same_parent and before.layer.out_channels == t.channels else None


_WIDTH_ARG = {
    **{f"Conv{d}d": "out_channels" for d in (1, 2, 3)},
    **{f"ConvTranspose{d}d": "out_channels" for d in (1, 2, 3)},
    "Linear": "out_features",
}


def cnn_classifier_misfit(model: ModelContext, layer: Layer) -> str | None:
    """What is wrong with this norm in a CNN classifier (B5, NRM013), or None: InstanceNorm,
    GroupNorm(1, C) (LayerNorm over C, H, W) or a channels-first LayerNorm over (C, H, W).
    ConvNeXt-style LayerNorm on permuted maps is a deliberate design: not a misfit, nor is
    the InstanceNorm of an IBN-Net (:func:`ibn_design`)."""
    if model.architecture not in _CNN or not model.classifier:
        return None
    if layer.norm_kind == "in":
        return None if ibn_design(model) else "InstanceNorm"
    if layer.type == "GroupNorm" and layer.arg("num_groups") == 1:
        return "GroupNorm(1, C), i.e. LayerNorm over (C, H, W),"
    if layer.type in ("LayerNorm", "RMSNorm"):
        app = model.first_app(layer)
        shape = layer.arg("normalized_shape")
        multi = isinstance(shape, (list, tuple)) and len(shape) > 1
        on_map = app is not None and app.inp.kind == "map" and app.inp.cdim == 1
        if on_map and multi and not pooled_vector_norm(layer):
            return "LayerNorm over (C, H, W)"
    return None


def pooled_vector_norm(layer: Layer) -> bool:
    """``LayerNorm([C, 1, 1])``: a LayerNorm over the channels of a pooled (N, C, 1, 1)
    context vector (GCNet's context block transform), not a norm of feature maps: B5's
    numbers do not reach it, and a BatchNorm2d there normalizes over the batch alone."""
    shape = layer.arg("normalized_shape") if layer.type in ("LayerNorm", "RMSNorm") else None
    return (
        isinstance(shape, (list, tuple))
        and len(shape) > 1
        and all(isinstance(d, int) and d == 1 for d in shape[1:])
    )


def pre_norm(model: ModelContext, path: str) -> bool:
    """The norm is the first layer of its block (``Sequential(GroupNorm(1, C), mixer)``, a
    ``pre_norm`` applied before the block's convs): a MetaFormer / Transformer-style
    pre-norm, chosen on purpose (PoolFormer, LowFormer, SHViT, MobileViTv2). B5's ResNet
    numbers are about norms that follow a conv."""
    if "." not in path:
        return False
    parent = path.rsplit(".", 1)[0] + "."
    first = next((p for p, _ in model.layers if p.startswith(parent)), None)
    return first == path


def metaformer_norm(model: ModelContext, path: str) -> bool:
    """A pre-norm (:func:`pre_norm`), or the norm that closes a stack of such blocks, as
    MobileViTv2's ``Sequential(*blocks, GroupNorm(1, C))`` and PoolFormer's final
    ``self.norm`` do: it comes right after a block that holds a pre-norm, and every other
    norm of its type in its scope is a pre-norm. One design; switching only the closing
    norm would mix two norms in one stack. A norm right after a conv of its own scope
    is not one (B5's case)."""
    if pre_norm(model, path):
        return True
    paths = [p for p, _ in model.layers]
    if path not in paths or paths.index(path) == 0:
        return False
    layer = model.layers[paths.index(path)][1]
    scope = path.rsplit(".", 1)[0] + "." if "." in path else ""
    previous, before = model.layers[paths.index(path) - 1]
    peers = [
        p
        for p, other in model.layers
        if p != path and p.startswith(scope) and _same_norm(other, layer)
    ]
    if not peers or not all(pre_norm(model, p) for p in peers):
        return False
    rest = previous[len(scope) :] if previous.startswith(scope) else ""
    if "." in rest:  # the layer before it is inside a block of this scope: a peer's?
        block = scope + rest.split(".", 1)[0] + "."
        return any(p.startswith(block) for p in peers)
    # a repeated block listed once (``[Block(d) for _ in range(n)]``): one holding a peer
    inner = before.instance.walk() if before.instance is not None else []
    return bool(rest) and any(_same_norm(sub, layer) for _, sub in inner)


def _same_norm(a: Layer, b: Layer) -> bool:
    if a.type != b.type:
        return False
    return a.type != "GroupNorm" or a.arg("num_groups") == b.arg("num_groups")


__all__ = [
    "cnn_classifier_misfit",
    "metaformer_norm",
    "normalizes_length",
    "pooled_vector_norm",
    "pre_norm",
    "producer_width_expr",
    "received_channels",
]


_BN_KINDS = frozenset({"bn", "syncbn", "frozenbn"})
_SPLITS = frozenset({"split", "chunk", "tensor_split"})


def ibn_design(model: ModelContext) -> bool:
    """IBN-Net (Pan et al. 2018, arXiv:1807.09441): InstanceNorm beside BatchNorm on purpose,
    which beat ResNet-50 on ImageNet (22.54% vs 23.64% top-1 error) and transfers better
    across domains. A module of the model applies an IN to a part of the channels split
    off beside a BN (IBN-a), or to a residual sum (IBN-b: ``self.IN(out + identity)``).
    Then every IN of the model is part of the design (IBN-b's
    stem IN too). An IN on a whole map with no split and no residual add is not one."""
    # (the BN beside a split is checked per module; a residual IN needs no BN in sight:
    # pytorchcv's IBN-b builds its BNs through helpers of another file)
    if not any(layer.norm_kind == "in" for _, layer in model.layers):
        return False
    owners = [model.root.instance] + [layer.instance for _, layer in model.layers]
    seen: set[int] = set()
    for inst in owners:
        if inst is None or id(inst) in seen:
            continue
        seen.add(id(inst))
        names = {n for n, v in inst.attrs.items() if isinstance(v, Layer) and v.norm_kind == "in"}
        fn = inst.cls.method("forward") if names else None
        if fn is not None and _ibn_forward(fn, names, inst):
            return True
    return False


def _ibn_forward(fn: ast.FunctionDef, names: set[str], inst: object) -> bool:
    """``forward`` applies one of the IN attributes ``names`` to a residual sum, or splits
    its input by channels and also applies a BatchNorm attribute (IBN-a)."""
    sums = _residual_names(fn)
    calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call)]
    splits = any(called_name(c.func) in _SPLITS for c in calls)
    bn_names = {
        n
        for n, v in getattr(inst, "attrs", {}).items()
        if isinstance(v, Layer) and v.norm_kind in _BN_KINDS
    }
    for call in calls:
        name = self_attribute(call.func)
        if name not in names or not call.args:
            continue
        arg = call.args[0]
        if _is_residual(arg, fn) or (isinstance(arg, ast.Name) and arg.id in sums):
            return True  # IBN-b: IN after the residual add
        if splits and any(self_attribute(c.func) in bn_names for c in calls):
            return True  # IBN-a: IN on a channel split, BN on the rest
    return False


def _is_sum(node: ast.expr) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)


def _residual_names(fn: ast.FunctionDef) -> set[str]:
    """Names a ``forward`` binds to a residual sum (``out = self.body(x) + x``, ``out +=
    identity``)."""
    out: set[str] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add):
            if isinstance(node.target, ast.Name) and _identity(node.value, fn, node.lineno):
                out.add(node.target.id)
        elif isinstance(node, ast.Assign) and _is_residual(node.value, fn):
            out.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return out


def _is_residual(node: ast.expr, fn: ast.FunctionDef) -> bool:
    """A sum with the block's identity: its input unchanged, a name bound to it
    (``identity = x``), or a shortcut module's output (``self.downsample(x)``). Adding noise
    or a second input (StyleGAN's ``x + noise``) is no residual."""
    return _is_sum(node) and any(
        _identity(side, fn, node.lineno)  # type: ignore[attr-defined]
        for side in (node.left, node.right)  # type: ignore[attr-defined]
    )


_SHORTCUT = re.compile(r"down|short|skip|identity|residual|proj")


def _identity(node: ast.expr, fn: ast.FunctionDef, line: int) -> bool:
    """``node`` is the block input at ``line``: the first argument of ``forward`` not
    reassigned before, a name bound to it or to a shortcut module's output, or such a call."""
    args = [a.arg for a in fn.args.args[1:]]
    if not args:
        return False
    first = args[0]
    if isinstance(node, ast.Call):
        return bool(_SHORTCUT.search(self_attribute(node.func) or ""))
    if not isinstance(node, ast.Name):
        return False
    bound = [
        stmt
        for stmt in ast.walk(fn)
        if isinstance(stmt, ast.Assign)
        and stmt.lineno < line
        and any(isinstance(t, ast.Name) and t.id == node.id for t in stmt.targets)
    ]
    if node.id == first:
        return not bound  # reassigned (x = self.act(self.bn(x))): no longer the input
    last = max(bound, key=lambda stmt: stmt.lineno) if bound else None
    if last is None:
        return False
    return _identity_value(last.value, first)


def _identity_value(value: ast.expr, first: str) -> bool:
    """``x``, a shortcut module's output, or either of them by a condition (torchreid's
    ``residual = x if self.downsample is None else self.downsample(x)``)."""
    if isinstance(value, ast.IfExp):
        return _identity_value(value.body, first) and _identity_value(value.orelse, first)
    if isinstance(value, ast.Name):
        return value.id == first  # identity = x
    return isinstance(value, ast.Call) and bool(_SHORTCUT.search(self_attribute(value.func) or ""))


_LAYOUT_CALLS = frozenset({"transpose", "permute", "swapaxes", "movedim", "rearrange"})
_LAYOUT_TYPES = frozenset({"Permute", "Rearrange"})


def series_token_batchnorm(model: ModelContext, layer: Layer, owners: list[ModelContext]) -> bool:
    """BatchNorm1d over d_model on the (N, C, L) transpose of the tokens of a continuous
    series: TST (Zerveas et al. 2021, s3.1: BN over LN for time series, for its outliers)
    and PatchTST (Nie et al. 2023) do it on purpose. The tokens come from a projection, not
    an ``nn.Embedding`` of ids in the model or in ``owners`` (the models it is part of):
    with word tokens it is the NLP case, where BN lost to LN (Shen et al. 2020)."""
    if layer.type not in ("BatchNorm1d", "SyncBatchNorm"):
        return False
    if any(other.type == "Embedding" for owner in owners for _, other in owner.layers):
        return False
    if not any(_projects_values(owner) for owner in owners):
        return False  # a block alone: its tokens may be words, the case B7 is about
    app = model.first_app(layer)
    t = app.inp if app is not None else None
    if t is not None and t.kind == "seq" and t.rank == 3 and t.cdim == 1:
        return True  # self.bn(x.transpose(1, 2))
    return between_layout_modules(model, layer)


def _projects_values(model: ModelContext) -> bool:
    """The first layer with weights that ``forward`` applies is a Linear or Conv1d: tokens
    projected from continuous values (PatchTST's ``W_P = nn.Linear(patch_len, d_model)``)."""
    for app in model.apps:
        kind = app.layer.type
        if kind in ("Linear", "LazyLinear", "Conv1d"):
            return True
        if kind in _WEIGHTED or kind in CONV_DIMS or kind in RNN_TYPES or kind in RNN_CELLS:
            return False  # tokens from an embedding, a 2-d conv, an RNN, a module unseen
    return False


_WEIGHTED = frozenset(
    {"Embedding", "EmbeddingBag", "Custom", "Backbone", "Bilinear", *ATTENTION_TYPES}
)


def between_layout_modules(model: ModelContext, layer: Layer) -> bool:
    """``nn.Sequential(Transpose(1, 2), nn.BatchNorm1d(d), Transpose(1, 2))``: the norm's
    neighbours in its Sequential are modules that transpose (tsai's and neuralforecast's)."""
    paths = {id(other): path for path, other in model.layers}
    path = paths.get(id(layer))
    parent, _, index = (path or "").rpartition(".")
    if not index.isdigit():
        return False
    by_path = dict(model.layers)
    prefix = f"{parent}." if parent else ""
    around = [by_path.get(f"{prefix}{int(index) + step}") for step in (-1, 1)]
    return all(other is not None and _transposes(other) for other in around)


def _transposes(layer: Layer) -> bool:
    if layer.type in _LAYOUT_TYPES:
        return True
    fn = layer.instance.cls.method("forward") if layer.instance is not None else None
    if fn is None or len(fn.body) > 3:
        return False
    return any(
        isinstance(node, ast.Call) and called_name(node.func) in _LAYOUT_CALLS
        for node in ast.walk(fn)
    )


_RELAYOUT = frozenset(
    {"transpose", "permute", "view", "reshape", "squeeze", "unsqueeze", "contiguous"}
)


def gating_norm(model: ModelContext, layer: Layer) -> bool:
    """The norm's output goes straight into a sigmoid in the forward of the module that holds
    it: a gate whose statistics define an activation (DIN's Dice, Zhou et al. 2018, eq. 5:
    ``p = sigmoid(BN(s))``), not a normalization of features to choose."""
    owners = [model.root.instance] + [other.instance for _, other in model.layers]
    for inst in owners:
        if inst is None:
            continue
        names = {n for n, v in inst.attrs.items() if v is layer}
        if names and squashed(inst.cls.method("forward"), names, frozenset({"sigmoid"})):
            return True
    return False


def squashed(fn: ast.FunctionDef | None, names: set[str], squashers: frozenset[str]) -> bool:
    """``forward`` applies one of ``squashers`` (``sigmoid``) to the output of a ``self``
    attribute in ``names``: inline (``torch.sigmoid(self.bn(x))``, ``self.bn(x).sigmoid()``)
    or through a name bound to it (``x_p = self.bn(...)``; ``sigmoid(x_p)``), also through
    relayouts (``self.bn(x.transpose(1, 2)).transpose(1, 2)``)."""
    if fn is None:
        return False
    outputs = {
        t.id
        for node in ast.walk(fn)
        if isinstance(node, ast.Assign) and _norm_call(node.value, names)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    for node in ast.walk(fn):
        if not isinstance(node, ast.Call) or called_name(node.func) not in squashers:
            continue
        inner = node.args[0] if node.args else getattr(node.func, "value", None)
        if _norm_call(inner, names) or (isinstance(inner, ast.Name) and inner.id in outputs):
            return True
    return False


def _norm_call(node: ast.expr | None, names: set[str]) -> bool:
    """``self.bn(...)``, through relayouts: ``self.bn(x.transpose(1, 2)).transpose(1, 2)``."""
    while (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _RELAYOUT
    ):
        node = node.func.value
    return isinstance(node, ast.Call) and self_attribute(node.func) in names
