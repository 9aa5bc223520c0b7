"""Per-model recommendation from ``normsuite.advice`` (the single place of the guidance).

For each model: the norm, the concrete layer for each norm site, the rationale with rule
ids and numbers, the assumptions (batch and where it came from) and what would change it.
A choice the guidance lists as good (the norm or one of its alternatives) is kept.
"""

from __future__ import annotations

import ast
from collections import Counter
from typing import Any

from normsuite.advice import (
    BN_MIN_BATCH,
    DOMAINS,
    Advice,
    advise,
    advise_domain,
    default_groups,
    layer_code,
)

from .context import MAP_NORMS, SELF_ATTENTION_EVIDENCE, ModelContext
from .domains import (
    graph_network,
    image_decoder,
    input_standardization,
    inside_recognition_net,
    unseen_norms,
)
from .ir import (
    ATTENTION_TYPES,
    BATCH_NORMS,
    CONV_DIMS,
    MAP_BATCH_NORMS,
    OPAQUE,
    RNN_CELLS,
    RNN_TYPES,
    SHAPE_KEEPING,
    UNKNOWN,
    ClassInfo,
    Layer,
)
from .shapes import UNKNOWN_T
from .sites import (
    between_layout_modules,
    cnn_classifier_misfit,
    gating_norm,
    ibn_design,
    metaformer_norm,
    normalizes_length,
    pooled_vector_norm,
    producer_width_expr,
    received_channels,
    same_channel_expr,
    series_token_batchnorm,
)
from .tree_facts import class_facts, self_attribute
from .types import LayerSuggestion, Recommendation

_CNN = ("cnn1d", "cnn2d", "cnn3d")
_DEFAULT_NDIM = {
    "BatchNorm1d": 2,
    "BatchNorm2d": 4,
    "BatchNorm3d": 5,
    "InstanceNorm1d": 3,
    "InstanceNorm2d": 4,
    "InstanceNorm3d": 5,
    "GroupNorm": 4,
    "LayerNorm2d": 4,
    "FrozenBatchNorm2d": 4,
}


_BN1D_TYPES = frozenset({"BatchNorm1d", "SyncBatchNorm", "InstanceNorm1d", "LazyBatchNorm1d"})


def site_shape(model: ModelContext, layer: Layer) -> tuple[int, bool]:
    """(rank, channels_last) of the tensor the norm sees: traced, else from the layer type."""
    app = model.first_app(layer)
    if app is not None and app.inp.rank is not None and app.inp.cdim is not None:
        return app.inp.rank, bool(app.inp.last) and app.inp.rank > 2
    if layer.type in _BN1D_TYPES and between_layout_modules(model, layer):
        return 3, False  # Sequential(Transpose(1, 2), BatchNorm1d(d), Transpose(1, 2)): (N, C, L)
    if layer.type in ("LayerNorm", "RMSNorm"):
        return (3, True) if model.architecture in ("rnn", "transformer") else (2, False)
    if layer.type == "SyncBatchNorm" or layer.type.startswith("Lazy"):
        return int(model.architecture[3]) + 2 if model.architecture in _CNN else 4, False
    return _DEFAULT_NDIM.get(layer.type, 4), False


_SITE_WORDS = {
    "mlp": "(N, C) features",
    "rnn": "recurrent outputs",
    "transformer": "tokens",
    "cnn1d": "conv maps",
    "cnn2d": "conv maps",
    "cnn3d": "conv maps",
}


def site_architecture(model: ModelContext, layer: Layer) -> str:
    """Which guidance applies at this site: conv maps -> CNN, sequences -> RNN/Transformer,
    (N, C) features -> MLP; else the model's architecture.

    Channels-last maps inside attention blocks (or in a Transformer) are tokens: B7. In a
    hybrid or unknown model only sites traced to a channels-first conv map get CNN advice;
    LayerNorm/RMSNorm sites and sites inside attention blocks get the sequence advice.
    """
    if layer.backbone is not None and layer.backbone.architecture in _CNN:
        # a torchvision/timm CNN (ResNet-50 embedding each instance for a Transformer
        # head): its own norms are a CNN's, whatever its output feeds
        return layer.backbone.architecture
    app = model.first_app(layer)
    arch = model.architecture
    t = app.inp if app is not None else UNKNOWN_T
    attention = app is not None and app.in_attention_block
    if model.recurrence.on_path(layer) or (t.rnn and t.rank == 3):
        return "rnn"  # inside a cell stepped over time, or on an RNN's per-step outputs
    if t.kind == "seq":
        if arch in ("transformer", "hybrid") or attention:
            return "transformer"
        return _sequence_architecture(model)
    if t.kind == "map" and t.rank is not None and 3 <= t.rank <= 5:
        if t.last and (attention or arch == "transformer"):
            return "transformer"
        if t.last and arch == "hybrid":
            return _sequence_architecture(model)  # (N, H, W, C) rows/tokens of a hybrid
        return arch if arch in _CNN else f"cnn{t.rank - 2}d"
    if t.kind == "feat":
        return "mlp"  # (N, C) features, also a CNN's head after pooling: B11
    if (
        arch in _CNN
        and layer.type in ("BatchNorm1d", "LazyBatchNorm1d")
        and _after_linear(model, layer)
    ):
        return "mlp"  # Linear -> BatchNorm1d in a CNN: its embedding head, on (N, C) features
    if layer.type in MAP_NORMS:
        # BatchNorm2d & co. only take (N, C, H, W) / (N, C, D, H, W): a conv map by contract.
        rank = 5 if layer.type.endswith("3d") else 4
        return arch if arch in _CNN else f"cnn{rank - 2}d"
    if arch in ("hybrid", "unknown") and (attention or layer.type in ("LayerNorm", "RMSNorm")):
        return _sequence_architecture(model)
    return arch


def _after_linear(model: ModelContext, layer: Layer) -> bool:
    """``layer`` comes right after a Linear in a Sequential (``fc.0`` -> ``fc.1``)."""
    by_path = dict(model.layers)
    for path, candidate in model.layers:
        if candidate is not layer:
            continue
        parent, _, last = path.rpartition(".")
        if last.isdigit() and int(last) > 0:
            before = by_path.get(f"{parent}.{int(last) - 1}" if parent else str(int(last) - 1))
            if before is not None and before.type in ("Linear", "LazyLinear"):
                return True
    return False


def _sequence_architecture(model: ModelContext) -> str:
    """rnn for a model with recurrent layers and no attention, else transformer."""
    types = {layer.type for _, layer in model.layers}
    recurrent = bool(types & (RNN_TYPES | RNN_CELLS))
    attention = bool(types & ATTENTION_TYPES) or any(
        "attention" in e or "softmax" in e for e in model.evidence
    )
    return "rnn" if recurrent and not attention else "transformer"


def advice_for(model: ModelContext, arch: str | None = None, channels: int | None = None) -> Advice:
    b = model.batch
    return advise(
        arch or model.architecture,
        b.per_device,
        devices=b.devices,
        accumulate=b.accumulate,
        fine_tuning_pretrained_bn=model.fine_tuning,
        channels=channels,
        direct_evidence=direct_evidence(model, arch or model.architecture),
        batchnorm_in_use=any(_site_kind(model, layer) in BATCH_NORMS for _, layer in model.layers),
    )


# Evidence that names a torch layer (or a structure read from forward), not an inference.
_DIRECT_ARCH = ("Conv", "LSTM", "GRU", "RNN", "Attention", "Transformer", "backbone", "Linear")


def direct_evidence(model: ModelContext, arch: str) -> bool:
    """Architecture read from the model's own layers and batch from the command line, a
    config or the training code of the file (not a guess, not a default of a script that
    does not train)."""
    if arch in ("hybrid", "unknown") or model.architecture in ("hybrid", "unknown"):
        return False
    if any("Embedding, no conv" in e or "part of " in e for e in model.evidence):
        return False  # inferred from embeddings alone, or from the parent class
    layers = ("LSTM", "GRU", "RNN", "Conv", "Attention", "Transformer", "backbone")
    stepped = any("stepped in a loop" in e for e in model.evidence)
    if stepped and not any(w in e for e in model.evidence for w in layers):
        return False  # a hand-written cell only: recurrence read from the loop, not a layer
    if not any(word in e for e in model.evidence for word in _DIRECT_ARCH):
        return False
    source = model.batch.source
    if model.batch.per_device is None:
        # "high" needs the batch from training code or a config, even where the advice
        # (LN in an RNN/Transformer) does not depend on it: an unknown batch means the
        # training setup was not seen, so the model's use is inferred
        return False
    if model.batch.weak:
        return False  # a default the code states (--batch-size 64): a run may pass another
    return source.startswith(("cli", "config:", "default")) or (
        source.startswith("file:") and model.trains
    )


def suggest_layer(norm: str, layer: Layer, model: ModelContext) -> str:
    """The concrete replacement for ``layer`` under ``norm`` (the current code if it is fine)."""
    if layer.backbone is not None:
        return _backbone_code(norm, layer)
    rank, last = site_shape(model, layer)
    if layer.norm_kind == norm and _valid_as_is(model, layer, rank, last):
        return layer.code  # fine as it is, whether or not its channel count is known
    channels = layer.num_channels
    if channels is None:
        app = model.first_app(layer)
        traced = app is not None and app.inp.rank is not None
        expr = _channel_expr(layer)
        if expr is not None and (traced or model.recurrence.on_path(layer)):
            # Layout known (a cell works on (N, C) steps): the expression is right as it is.
            return _symbolic_code(norm, expr, rank, last)
        return f"{norm} (channels unknown: {layer.code})"
    app = model.first_app(layer)
    received = received_channels(model, layer, app.inp) if app is not None else None
    expr = _channel_expr(layer)
    if expr is None and _shared(model, layer):
        expr = _factory_channel_expr(layer)
    if received is None and expr is not None and _shared(model, layer):
        # The call is shared by every instance (BatchNorm2d(cout) in a block class): keep
        # its channel expression so that the suggestion is right for each of them.
        return _symbolic_code(norm, expr, rank, last)
    if received is not None and app is not None and _shared(model, layer):
        # NRM011 on a line shared by several widths: the width it receives, as the expression
        # of the layer before it (BatchNorm2d(cin) after Conv2d(cin, cout) -> (cout))
        width = producer_width_expr(model, layer, app.inp)
        if width is not None:
            return _symbolic_code(norm, width, rank, last)
    channels = received or channels  # NRM011: build it for the channels it receives
    groups = layer.arg("num_groups")
    divides = isinstance(groups, int) and groups > 0 and channels % groups == 0
    if layer.type == "GroupNorm" and norm == "gn" and divides:
        # Too few channels per group (NRM004): the same fix the rule gives.
        return f"nn.GroupNorm({default_groups(channels)}, {channels})"
    if norm in ("ln", "rms") and channels == 1 and layer.type in MAP_BATCH_NORMS:
        # BatchNorm2d(1) on a (N, 1, T, F) map: a LayerNorm over its one channel outputs
        # zeros, and nn.LayerNorm(1) raises on a last dim of F; GroupNorm(1, 1) is the
        # LayerNorm over (C, T, F), valid and batch-free (voicefixer's denoiser)
        return "nn.GroupNorm(1, 1)"
    return layer_code(norm, channels, ndim=rank, channels_last=last)


_CHANNEL_ARG = {"GroupNorm": 1, "LayerNorm2d": 0, "RMSNorm2d": 0}
_CHANNEL_KW = ("num_features", "num_channels", "normalized_shape")


def _shared(model: ModelContext, layer: Layer) -> bool:
    """The same constructor call builds layers of different widths in the file's models."""
    widths = model.site_widths.get((layer.line, layer.col), set()) - {None}
    return len(widths) > 1


def _factory_channel_expr(layer: Layer) -> str | None:
    """``self.norm_layer(out_channels)`` / ``NormLayer(cout)`` (a class attribute or a
    partial of a norm): the first argument's source when it evaluated to the channel count
    of this instance, so that one suggestion stays right for every width it builds."""
    try:
        call = ast.parse(layer.code, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(call, ast.Call) or not call.args or isinstance(call.args[0], ast.Starred):
        return None
    first = call.args[0]
    if isinstance(first, ast.Constant) or not layer.args or layer.num_channels is None:
        return None
    return ast.unparse(first) if layer.args[0] == layer.num_channels else None


def _channel_expr(layer: Layer) -> str | None:
    """The source of the channel argument of ``layer.code`` when it is not a literal."""
    try:
        call = ast.parse(layer.code, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(call, ast.Call):
        return None
    func = call.func
    if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) != layer.type:
        return None  # a factory or subclass call: its arguments need not be torch's
    node = next((k.value for k in call.keywords if k.arg in _CHANNEL_KW), None)
    i = _CHANNEL_ARG.get(layer.type, 0)
    if node is None and len(call.args) > i and not isinstance(call.args[i], ast.Starred):
        node = call.args[i]
    if isinstance(node, (ast.List, ast.Tuple)) and node.elts:
        # LayerNorm([C, H, W]): the channels are the first entry (its suggestion must never
        # be BatchNorm2d([C, H, W]), which raises)
        node = node.elts[0] if not isinstance(node.elts[0], ast.Starred) else None
    if node is None or isinstance(node, ast.Constant):
        return None
    return ast.unparse(node)


def _symbolic_code(norm: str, expr: str, rank: int, last: bool) -> str:
    """``layer_code`` for a channel count given as an expression (``cout``, ``4 * d``)."""
    name, _, arg = norm.partition(":")
    per_position = rank == 2 or last
    layout = (f", ndim={rank}" if rank != 4 else "") + (
        ", channels_last=True" if last and rank > 2 else ""
    )
    if name == "bn" and not (last and rank > 2):
        return f"nn.BatchNorm{1 if rank <= 3 else rank - 2}d({expr})"
    if name in ("ln", "rms") and per_position:
        return f"nn.{'LayerNorm' if name == 'ln' else 'RMSNorm'}({expr})"
    if name == "in" and not per_position:
        return f"nn.InstanceNorm{rank - 2}d({expr}, affine=True)"
    if name == "none":
        return "nn.Identity()"
    # GroupNorm's G must divide C for every instance: build_norm picks it from C.
    spec = f"gn:{arg}" if name == "gn" and arg else name
    return f'normsuite.build_norm("{spec}", {expr}{layout})'


def _ln_flagged(model: ModelContext, layer: Layer) -> bool:
    """A LayerNorm/RMSNorm over the last dim of a channels-first map (NRM002's case); one
    over several trailing dims (``LayerNorm([C, H, W])``) includes the channels: fine."""
    if layer.type not in ("LayerNorm", "RMSNorm"):
        return False
    shape = layer.arg("normalized_shape")
    if isinstance(shape, (list, tuple)) and len(shape) == 1:
        shape = shape[0]
    if not isinstance(shape, int) or isinstance(shape, bool):
        # over several dims, or a shape read at run time (x.size()[1:]); or LayerNorm(cout)
        # right after Conv2d(cin, cout), whatever cout is
        app = model.first_app(layer)
        t = app.inp if app is not None else None
        return bool(
            t is not None
            and t.kind == "map"
            and t.cdim == 1
            and t.last is False
            and (t.rank or 0) >= 3
            and same_channel_expr(model, layer, t)
        )
    rank, last = site_shape(model, layer)
    return not (last or rank == 2)


def _valid_as_is(model: ModelContext, layer: Layer, rank: int, last: bool) -> bool:
    """Whether the current layer is fine as it is: never a layer a rule flags."""
    app = model.first_app(layer)
    if app is not None and normalizes_length(layer, app.inp):
        return False  # NRM012
    if app is not None and received_channels(model, layer, app.inp) is not None:
        return False  # NRM011
    if cnn_classifier_misfit(model, layer):
        return False  # NRM013
    if layer.type == "GroupNorm":
        g, c = layer.arg("num_groups"), layer.num_channels
        if not isinstance(g, int) or not c:
            return True  # cannot judge statically: keep it rather than guess
        if g < 1 or c % g:
            return False
        return g in (32, c) or c // g >= 4
    if layer.type in ("LayerNorm", "RMSNorm"):
        return not _ln_flagged(model, layer)
    return True


# torchvision model functions that pass ``norm_layer=`` through to the model (checked in
# torchvision/models: VGG, DenseNet, ShuffleNet... have no such argument; efficientnet_b5+
# and efficientnet_v2 set their own norm_layer, so a second one is a TypeError).
_NORM_LAYER_PREFIXES = (
    "resnet",
    "resnext",
    "wide_resnet",
    "mobilenet_v2",
    "mobilenet_v3",
    "regnet",
)
_NORM_LAYER_NAMES = {f"efficientnet_b{i}" for i in range(5)}
_NORM_LAYER_VALUES = {
    "bn": "nn.BatchNorm2d",
    "frozenbn": "torchvision.ops.FrozenBatchNorm2d",
    "gn": 'lambda c: normsuite.build_norm("gn", c)',
    "ln": 'lambda c: normsuite.build_norm("ln", c)',
}


def _backbone_code(norm: str, layer: Layer) -> str:
    """The backbone call with ``norm`` (its other arguments kept), or the conversion."""
    b = layer.backbone
    assert b is not None
    if norm == b.norm or b.norm in ("ln", "unknown"):
        # LN families (ConvNeXt, ViT, Swin) keep their LN; an unresolved norm_layer stays.
        return layer.code
    if norm == "syncbn":
        return f"{layer.code}, then nn.SyncBatchNorm.convert_sync_batchnorm(model)"
    accepts = b.library == "torchvision" and (
        b.name.startswith(_NORM_LAYER_PREFIXES) or b.name in _NORM_LAYER_NAMES
    )
    # New GN/LN layers cannot load BN weights; convert_norms keeps the affine parameters.
    keeps_weights = norm in ("frozenbn", "bn") or not b.pretrained
    if accepts and keeps_weights and norm in _NORM_LAYER_VALUES:
        code = _with_keyword(layer.code, "norm_layer", _NORM_LAYER_VALUES[norm])
        if code is not None:
            return code
    return f'{layer.code}, then normsuite.convert_norms(model, "{norm}")'


def _with_keyword(code: str, name: str, value: str) -> str | None:
    """``code`` (one call on one line) with keyword ``name=value`` set, else None.

    >>> _with_keyword('resnet50(weights="DEFAULT")', "norm_layer", "nn.BatchNorm2d")
    'resnet50(weights="DEFAULT", norm_layer=nn.BatchNorm2d)'
    >>> _with_keyword("resnet18(norm_layer=partial(nn.GroupNorm, 32))", "norm_layer", "X")
    'resnet18(norm_layer=X)'
    """
    if "\n" in code:
        return None
    try:
        call = ast.parse(code, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(call, ast.Call) or call.end_col_offset is None:
        return None
    raw = code.encode()
    for kw in call.keywords:
        if kw.arg == name and kw.value.end_col_offset is not None:
            start, end = kw.value.col_offset, kw.value.end_col_offset
            return (raw[:start] + value.encode() + raw[end:]).decode()
    inner = raw[: call.end_col_offset - 1].decode().rstrip()
    sep = "" if inner.endswith("(") else " " if inner.endswith(",") else ", "
    return f"{inner}{sep}{name}={value})" + raw[call.end_col_offset :].decode()


def _convnext_style(model: ModelContext, layer: Layer) -> bool:
    """LayerNorm over the channels of a conv map on purpose (permuted or LayerNorm2d)."""
    if layer.type == "LayerNorm2d" or (layer.backbone is not None and layer.backbone.norm == "ln"):
        return True
    app = model.first_app(layer)
    return bool(app and app.inp.kind == "map" and app.inp.last)


# Layers a norm would follow: without one of these (and without norm sites) a class is an
# activation, a loss, a metric or a container, and gets no recommendation.
_NORMABLE = frozenset(
    {*CONV_DIMS, *RNN_TYPES, *RNN_CELLS, *ATTENTION_TYPES, "Linear", "LazyLinear", "Backbone"}
)


def structural_abstain(model: ModelContext) -> str | None:
    """Why ``model`` is not a model to advise (a norm, an activation, a loss, a container,
    an unknown architecture), or None."""
    if model.norm_class:
        return f"a norm layer (behaves as {model.norm_class}), not a model"
    graph = graph_network(model)
    if graph is not None:
        return (
            f"a graph network (message passing over `{graph}`): its norms normalize over the "
            "nodes of a batch of graphs, which the rules B1-B11 (images, sequences, features) "
            "do not cover; BatchNorm over nodes, GraphNorm or none are chosen by validation"
        )
    inner = [layer for path, layer in model.layers if path]
    conditional = _conditional_norm(model, inner)
    if conditional is not None:
        return (
            f"a conditional norm layer ({conditional} without its own affine, scaled and "
            "shifted by a second input: AdaLN / conditional BN / SPADE), not a model"
        )
    has_sites = bool(model.norm_layers())
    normable = [layer for layer in inner if layer.type in _NORMABLE]
    if not has_sites and not normable:
        return (
            "no norm sites and no layers a norm would follow (conv, linear, recurrent, "
            "attention): an activation, loss, metric or container"
        )
    if model.architecture == "unknown":
        return "architecture unknown: no conv/recurrent/attention layers found"
    convs = sum(1 for layer in inner if layer.type in CONV_DIMS)
    kinds = {layer.norm_kind for _, layer in model.norm_layers()}
    only_ln = bool(kinds) and kinds <= {"ln", "rms"}
    if model.architecture in _CNN and (convs <= 1 or only_ln) and _untraced_layernorm(model):
        return (
            "architecture uncertain: a single conv (a patch embedding?) and LayerNorm on "
            "inputs that could not be traced (blocks built from arguments the analyzer cannot "
            "read)"
        )
    linears = sum(1 for layer in normable if layer.type in ("Linear", "LazyLinear"))
    only_linear = all(layer.type in ("Linear", "LazyLinear") for layer in normable)
    # (also a Transformer's output projection, which takes its parent's label)
    single = model.architecture == "mlp" or (model.architecture == "transformer" and only_linear)
    if single and not has_sites and linears < 2:
        return "a single Linear layer: no hidden layer for a norm to follow"
    return None


def _conditional_norm(model: ModelContext, inner: list[Layer]) -> str | None:
    """The norm type of a conditional norm module (DiT's adaLN, BigGAN's conditional BN,
    FiLM, SPADE): one norm without affine parameters, other layers only Linear/Embedding
    or convs (the scale/shift predictor), and a forward that takes the condition as a
    second input."""
    if model.root.instance is None:
        return None
    norms = [layer for _, layer in model.norm_layers()]
    return conditional_norm_instance(model.root.instance, norms, inner)


def conditional_norm_instance(inst: Any, norms: list[Layer], inner: list[Layer]) -> str | None:
    """:func:`_conditional_norm` for one module instance, its norm layers and its layers.
    One norm, or one and the alternates of its attribute (SPADE's param-free norm picked by
    a config string: InstanceNorm or BatchNorm), every one without its own affine."""
    alternates = getattr(inst, "alternates", [])
    main = [n for n in norms if not any(n is alt for _, alt in alternates)]
    if len(main) != 1:
        return None
    norm = main[0]
    if any(
        n.arg("affine", True) is not False and n.arg("elementwise_affine", True) is not False
        for n in norms
    ):
        return None
    containers = ("Sequential", "ModuleList")
    others = [
        layer
        for layer in inner
        if all(layer is not n for n in norms)
        and layer.type not in SHAPE_KEEPING
        and layer.type not in containers
    ]
    # the predictors: Linear/Embedding (adaLN, conditional BN) or convs on a map (SPADE's
    # mlp_gamma / mlp_beta over the segmentation map)
    if not others or any(
        layer.type not in ("Linear", "LazyLinear", "Embedding", *CONV_DIMS) for layer in others
    ):
        return None
    forward = inst.cls.method("forward")
    params = [p.arg for p in [*forward.args.posonlyargs, *forward.args.args][1:]] if forward else []
    if forward is None or len(params) < 2:
        return None
    # the condition (a later input) goes into one of the Linear/Embedding predictors
    predictors = {
        name
        for name, value in inst.attrs.items()
        if any(value is o for o in others)
        or (isinstance(value, Layer) and value.type in containers)  # SPADE's mlp_shared
    }
    for call in ast.walk(forward):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
            continue
        owner = call.func.value
        if isinstance(owner, ast.Name) and owner.id == "self" and call.func.attr in predictors:
            read = {n.id for a in call.args for n in ast.walk(a) if isinstance(n, ast.Name)}
            if read & set(params[1:]):
                return norm.type
    return None


def _inside_conditional_norm(
    model: ModelContext, path: str, by_path: dict[str, Layer], memo: dict[int, bool]
) -> bool:
    """The site at ``path`` is the norm of a conditional norm module the model holds (the
    InstanceNorm inside NCSN's ConditionalInstanceNorm2dPlus): part of that norm, kept.
    ``by_path``: the model's layers by path; ``memo``: per instance, for this model."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        inst = getattr(by_path.get(".".join(parts[:cut])), "instance", None)
        if inst is None:
            continue
        if id(inst) not in memo:
            subs = [sub for _, sub in inst.walk()]
            norms = [sub for sub in subs if sub.norm_kind]
            memo[id(inst)] = conditional_norm_instance(inst, norms, subs) is not None
        if memo[id(inst)]:
            return True
    return False


_GENERATORS = frozenset({"D1", "D4", "D8"})  # domains whose norm is a generator's


def _not_tokens(model: ModelContext, layer: Layer) -> bool:
    """The norm's input is not traced as a token sequence (N, L, C)."""
    app = model.first_app(layer)
    return app is None or app.inp.kind != "seq"


def _untraced_sequence_norm(model: ModelContext, layer: Layer, norm: str) -> bool:
    """An LN/RMS site with an untraced input, about to become a batch-statistics norm."""
    if layer.norm_kind not in ("ln", "rms") or norm in ("ln", "rms") or layer.type in MAP_NORMS:
        return False
    app = model.first_app(layer)
    return app is None or app.inp.kind in (None, "input")


def _untraced_layernorm(model: ModelContext) -> bool:
    """LayerNorm sites of which none is seen on a conv map, and some not traced at all (or
    on tokens): a ViT whose blocks were not built, not a ConvNeXt."""
    untraced = on_map = False
    for _, layer in model.norm_layers():
        if layer.norm_kind in ("ln", "rms"):
            app = model.first_app(layer)
            if app is None or app.inp.kind not in ("map", "feat"):
                untraced = True
            on_map = on_map or bool(app and app.inp.kind == "map") or layer.type in MAP_NORMS
    return untraced and not on_map


_SAMPLING = frozenset({"randn_like", "randn", "rand_like", "normal", "normal_", "rsample"})


def _samples(model: ModelContext) -> bool:
    """The model's own forward (or a method it has) draws random latents."""
    if model.root.instance is None:
        return False
    cls = model.root.instance.cls
    return any(
        isinstance(n, ast.Call)
        and (n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", ""))
        in _SAMPLING
        and not _initializes(n)
        for name, fn in cls.methods.items()
        # __init__ and init/reset methods build or initialize (a dry run on torch.randn,
        # weight.data.normal_): no sampling
        if "init" not in name and "reset" not in name
        for n in ast.walk(fn)
    )


def _initializes(call: ast.Call) -> bool:
    """``self.conv.weight.data.normal_(0, 0.01)``, ``nn.init.normal_(w)``: initialization."""
    text = ast.unparse(call.func)
    return any(w in text for w in ("weight", "bias", ".data", "init."))


def abstain_reason(model: ModelContext, domain: str | None = None) -> str | None:
    """Why ``model`` gets no recommendation ("unknown" is an answer), or None. ``domain``:
    a detected domain (its advice does not depend on the batch)."""
    reason = structural_abstain(model)
    if reason is not None:
        return reason
    # feature norms: a LocalResponseNorm or an input standardization is not one to judge
    has_sites = any(
        layer.norm_kind != "lrn"
        and not (layer.norm_kind == "in" and input_standardization(model, layer))
        for _, layer in model.norm_layers()
    )
    if not has_sites and _samples(model):
        return (
            "a generative model that samples in its forward (VAE-style) and has no norm "
            "layers: the recognition rules B1-B11 do not say to add one"
        )
    if not has_sites and model.frozen:
        return (
            f"not trained here: {model.frozen}; a network with fixed weights (a loss "
            "network, a frozen feature extractor) gets no norm layer added"
        )
    layers = [layer for _, layer in model.layers]
    named = unseen_norms(layers, opaque=False) if not has_sites else []
    decoder = not has_sites and domain is None and image_decoder(model)
    unseen = named or (unseen_norms(layers) if decoder else [])
    if unseen:  # (a decoder "without norms" is one whose every part was read)
        return (
            f"no norm layer found, but {', '.join(unseen[:3])} may hold norms the analysis "
            "cannot read: no advice on norms it cannot see"
        )
    if decoder:
        if model.architecture == "cnn1d":  # encodec's SEANet decoder, a vocoder
            what, output, examples = "a signal decoder", "a tanh signal", "a vocoder or codec"
        else:
            what, output = "an image decoder", "a tanh image"
            examples = "a generator, super-resolution net or style decoder"
        return (
            f"{what} without norm layers (upsampling convs or {output}, no classifier: "
            f"{examples}, which often drop norms on purpose): the recognition rules B1-B11 "
            "do not say to add one"
        )
    sequence = model.architecture in ("transformer", "rnn")
    if not has_sites and domain is None and sequence and builtin_layernorm(model) is None:
        reason = _attention_layer_reason(model)
        if reason is not None:
            return reason
    batch_dependent = model.architecture in ("mlp", "hybrid", *_CNN)
    if batch_dependent and not has_sites and domain is None and model.batch.per_device is None:
        other = "ln" if model.architecture == "mlp" else "gn"
        return (
            "no norm layers to judge and the batch size is unknown: bn at >= 16 per device, "
            f"{other} below (B1/B2/B11); pass --batch-size or a training config"
        )
    if not has_sites and domain is None and _opaque_parts(model):
        return (
            f"a {model.architecture} model without norm layers in sight, built in part from "
            "modules this reading cannot see (another package, a config, a registry): its "
            "norms may be there"
        )
    return None


# torch layers with LayerNorm inside (norm1, norm2, and the stacks' optional final norm)
_BUILTIN_LAYERNORM = ("TransformerEncoderLayer", "TransformerDecoderLayer", "Transformer")


def builtin_layernorm(model: ModelContext) -> str | None:
    """The first torch layer of ``model`` that has LayerNorm built in
    (``nn.TransformerEncoderLayer``), or None."""
    return next((lay.type for _, lay in model.layers if lay.type in _BUILTIN_LAYERNORM), None)


def _attention_layer_reason(model: ModelContext) -> str | None:
    """Why a norm-free Transformer that computes attention in its own forward (an attention
    layer, or a whole model with nothing around it) gets no verdict, else None: the norm
    to add, if one is wanted, is the answer (:func:`_norm_free_note`)."""
    if model.architecture == "transformer" and any(
        e.endswith(SELF_ATTENTION_EVIDENCE) for e in model.evidence
    ):
        return (
            "attention computed in its own forward and no norm layer: as a layer of a bigger "
            "block, that block holds the norms (pre-norm or post-norm LayerNorm/RMSNorm, B7) "
            "and is the one to judge; as a whole model, the norm to add is LN or RMSNorm"
        )
    return None


def _opaque_parts(model: ModelContext) -> bool:
    """Some module of the model is one the analyzer cannot know: an opaque layer (a class
    of a package it cannot read), or an attribute built by a call it cannot evaluate and
    called in ``forward`` (``self.norm1 = norms.get(kind)(c)``, a registry build)."""
    if any(layer.type == OPAQUE for _, layer in model.layers):
        return True
    if model.architecture in ("transformer", "rnn"):
        # their advice does not depend on what is hidden (LN if a norm is wanted), and an
        # unknown attribute there is most often the activation (``ACT2FN[config.act]``)
        return False
    owners = [model.root.instance] if model.root.instance is not None else []
    owners += [layer.instance for _, layer in model.layers if layer.instance is not None]
    for inst in owners:
        unknown = {name for name, value in inst.attrs.items() if value is UNKNOWN}
        unknown &= _built_with_channels(inst.cls)
        forward = inst.cls.method("forward") if unknown else None
        if forward is None:
            continue
        calls = class_facts(inst.cls).nodes_in(forward, (ast.Call,))
        if any(self_attribute(call.func) in unknown for call in calls):
            return True
    return False


def _built_with_channels(cls: ClassInfo) -> set[str]:
    """Attributes the class's ``__init__`` assigns from a call with a positional argument
    (``self.norm1 = norms.get(kind)(64)``: a norm takes its channel count); an activation
    looked up by name (``getattr(nn, act)()``) is built without one."""
    init = cls.method("__init__")
    if init is None:
        return set()
    out: set[str] = set()
    for node in ast.walk(init):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and node.value.args:
            out |= {name for t in node.targets if (name := self_attribute(t)) is not None}
    return out


def _norm_free_note(model: ModelContext) -> str:
    """The first line of the advice for a sequence model with no norm: the answer says
    which norm to add if one is wanted, not that one is missing (nViT, ReZero and the
    LSTM language models of PyTorch's examples are norm-free by design)."""
    where = (
        "inside the cell, never BatchNorm on the state"
        if model.architecture == "rnn"
        else "pre-norm, around attention and the MLP"
    )
    return (
        f"No norm layer seen: this is the norm to add if one is wanted ({where}); "
        "norm-free by design is a valid choice (ReZero, normalized-weight nets such as nViT, "
        "LSTM language models)."
    )


def recommend(model: ModelContext, domain: str | None = None) -> Recommendation:
    """The recommendation for one model (see the module docstring); ``domain`` is the id of
    a domain with its own norm practice (``advice.DOMAINS``, found by ``domains.detect``)."""
    if domain is not None:
        return _recommend_domain(model, domain)
    sites = [(path, layer, site_architecture(model, layer)) for path, layer in model.norm_layers()]
    hybrid = model.architecture in ("hybrid", "unknown")

    def follows_model(site_arch: str) -> bool:
        return site_arch == model.architecture or (hybrid and site_arch in _CNN)

    headline_arch = model.architecture
    note = None
    if sites and not any(follows_model(a) for _, _, a in sites):
        # No site gets the model-level advice: the headline follows what the sites get.
        headline_arch = Counter(a for _, _, a in sites).most_common(1)[0][0]
        note = (
            f"The norm sites see {headline_arch}-style inputs (traced), so this is the "
            f"{headline_arch} advice; the model as a whole looks like {model.architecture}."
        )

    def in_headline(site_arch: str) -> bool:
        return site_arch == headline_arch or (
            headline_arch == model.architecture and follows_model(site_arch)
        )

    cnn_channels = next((layer.num_channels for _, layer, a in sites if a in _CNN), None)
    adv = advice_for(model, headline_arch, channels=cnn_channels)
    norm = adv.norm
    rationale = list(adv.rationale)
    if note:
        rationale.insert(0, note)
    rules = list(adv.rules)
    builtin = builtin_layernorm(model) if not sites else None
    norm_free = not sites and model.architecture in ("transformer", "rnn")
    if builtin is not None and adv.norm in ("ln", "rms"):
        rationale.insert(0, f"LayerNorm is built into nn.{builtin}: the model already uses it.")
    elif norm_free and adv.norm in ("ln", "rms"):
        rationale.insert(0, _norm_free_note(model))
    would_change = list(adv.would_change)
    main = [layer for _, layer, a in sites if in_headline(a)]
    current = {_site_kind(model, layer) for layer in main}
    keep_sites = False  # kept for lack of batch evidence: every site stays as it is
    unstated_sync = False  # kept as SyncBN over a device count the code does not state
    if len(current) == 1:
        (kind,) = current
        good = {adv.norm, *adv.alternatives}
        no_batch = model.batch.per_device is None or model.batch.weak
        if no_batch and kind in _BATCH_FREE and headline_arch in _CNN:
            # Changing a batch-independent norm to BatchNorm needs the batch as evidence
            # (and the model may need batch independence: CPC, detection heads, GANs).
            good.add(kind)
        # A script that converts to SyncBN runs on several devices, even where their count
        # is not written (torchrun): the global batch is then unknown, not per-device.
        # nn.SyncBatchNorm built as such, in code that runs several processes: synced over
        # devices the code may not count (one process: it is a plain BatchNorm)
        syncs = (model.sync and kind == "bn") or (kind == "syncbn" and model.distributed)
        synced = syncs and ("syncbn" in (adv.norm, *adv.alternatives) or model.batch.devices == 1)
        if synced:
            # Trainer(sync_batchnorm=True) / convert_sync_batchnorm: these BNs already see
            # the global batch, which is what B3's SyncBN alternative asks for
            good.add(kind)
        if kind == "frozenbn" and headline_arch in _CNN:
            # Stored statistics: the batch rules do not apply (B10, a pretrained backbone
            # fine-tuned at a small batch, e.g. detection); replacing it loses them.
            good.add(kind)
        if kind in good and kind != adv.norm:
            norm = kind
            cnn_without_batch = no_batch and headline_arch in _CNN
            if cnn_without_batch and kind in _BATCH_FREE and kind != "gn":
                keep_sites = True
                known = (
                    f"the batch ({model.batch.per_device}) is a default the code states, not "
                    "what it trains with"
                    if model.batch.weak
                    else "the batch size is unknown"
                )
                rationale.insert(
                    0,
                    f"Kept {kind}: {known}. For a ResNet-style CNN "
                    "classifier BN at >= 16 per device is the B1/B5 choice, but a change "
                    "needs the batch as evidence, and some models need batch independence.",
                )
                would_change.append(
                    f"training code that sets a per-device batch of {BN_MIN_BATCH} or more: bn (B5)"
                    if model.batch.weak
                    else f"a per-device batch of {BN_MIN_BATCH} or more: bn (B5)"
                )
            elif synced:
                b = model.batch
                how = "builds it as" if kind == "syncbn" else "converts it to"
                if b.devices > 1:
                    note = (
                        f"Kept {kind}: it is synced over the {b.devices} devices "
                        f"(SyncBatchNorm), so it normalizes the global batch of "
                        f"{(b.per_device or 0) * b.devices} (B3)."
                    )
                else:  # on a device count the code does not state (torchrun)
                    note = (
                        f"Kept {kind}: the code {how} SyncBatchNorm, so it normalizes the "
                        f"global batch: {b.per_device or 'the per-device batch'} x the device "
                        "count, which the code does not state (B3)."
                    )
                    unstated_sync = True
                rationale.insert(0, note)
                if "B3" not in rules:
                    rules.insert(0, "B3")
                would_change = ["turning the BatchNorm sync off: " + adv.norm]
                if unstated_sync:
                    would_change.insert(
                        0,
                        f"a global batch (per-device x devices) below {BN_MIN_BATCH}: "
                        f"{adv.below_bn_batch or adv.norm}",
                    )
            else:
                rationale.insert(0, _keep_note(kind, adv, model.batch.per_device is not None))
            if kind == "frozenbn":
                rules.insert(0, "B10")
                would_change.append(f"training from scratch (no pretrained statistics): {adv.norm}")
            if kind == "gn" and adv.norm == "bn":
                if "B2" not in rules:
                    rules.append("B2")
                would_change = [
                    "needing the last ~0.5 points at this batch size: bn"
                    if model.batch.per_device is not None
                    else f"a per-device batch of {BN_MIN_BATCH} or more, and needing the last "
                    "~0.5 points: bn"
                ]
        elif (
            kind == "ln"
            and headline_arch in _CNN
            and all(_convnext_style(model, layer) for layer in main)
        ):
            norm = "ln"
            rationale.insert(
                0,
                "Kept ln: channel LayerNorm on permuted (channels-last) feature maps is the "
                "ConvNeXt design (Liu et al. 2022, arXiv:2201.03545), tuned with its own "
                "training recipe; B5's numbers are for ResNet-style CNNs.",
            )
            would_change.append("a ResNet-style CNN without the ConvNeXt recipe: " + adv.norm)
    suggestions: list[LayerSuggestion] = []
    others: dict[str, list[str]] = {}
    untraced: list[str] = []
    batch_free: list[str] = []
    off_path: list[str] = []
    new_layers: list[str] = []
    frozen_kept: list[str] = []
    conditional: list[str] = []
    pre_norms: list[str] = []
    pooled: list[str] = []
    channels_first: list[str] = []
    single: list[str] = []
    inputs: list[str] = []  # InstanceNorm standardizing the model's input
    fixed: list[str] = []  # LocalResponseNorm: nothing learned, no batch
    frn: list[str] = []  # Filter Response Normalization: batch-free, its own design
    ibn: list[str] = []  # IBN-Net's InstanceNorms beside its BatchNorms
    series_bn: list[str] = []  # TST/PatchTST: BatchNorm1d on transposed series tokens
    gates: list[str] = []  # a norm inside a sigmoid gate (Dice): part of an activation
    ibn_model = ibn_design(model)
    repaired: list[str] = []  # kept kinds whose layer a rule flags (NRM012): made valid
    by_path, seen_cn = dict(model.layers), {}  # for the conditional-norm check, once a model
    # Recurrence by nn.LSTM/GRU/RNN only: a norm cannot be inside those cells. (A model that
    # steps its cells itself knows its recurrent-path norms; a cell judged alone does not.)
    library_rnn = not model.recurrence.cells and any(
        layer.type in RNN_TYPES for _, layer in model.layers
    )
    for path, layer, site_arch in sites:
        if _untraced_sequence_norm(model, layer, norm):
            # A LayerNorm whose input was not traced may see tokens (a Transformer stage the
            # analyzer could not build): never turn it into a batch norm on a guess.
            suggestions.append(LayerSuggestion(path, layer.line, layer.code, layer.code))
            untraced.append(path or layer.code)
            continue
        site_norm = norm
        if not in_headline(site_arch):
            site_adv = advice_for(model, site_arch, layer.num_channels)
            site_norm = site_adv.norm
            cited = ", ".join(site_adv.rules)
            key = f"{_SITE_WORDS.get(site_arch, site_arch)} take {site_norm} ({cited})"
            others.setdefault(key, []).append(path or layer.code)
            rules.extend(r for r in site_adv.rules if r not in rules)
        if site_norm == "frozenbn" and layer.backbone is None and _site_kind(model, layer) == "bn":
            # B10 freezes the *pretrained* statistics; a BN the model adds beside the
            # backbone (a new neck or head) has none: the small-batch advice, GN (B2)
            site_norm = "gn"
            new_layers.append(path or layer.code)
        kept_here = keep_sites and _site_kind(model, layer) == site_norm
        # RMSNorm is LayerNorm without the centring and matched it (Zhang & Sennrich
        # 2019; B6/B7 name both): wherever the advice is one of them, the other is kept
        # (TimesFM's LN in the MLP beside RMSNorm before attention; a channel RMSNorm in a
        # ConvNeXt-style block that D6 keeps). "RMSNorm -> LayerNorm" is no advice.
        kept_here = kept_here or (
            site_norm in _SEQUENCE_NORMS and _site_kind(model, layer) in _SEQUENCE_NORMS
        )
        kind = _site_kind(model, layer)
        if (
            not kept_here
            and path
            and site_arch in _CNN
            and cnn_classifier_misfit(model, layer) is not None
            and kind in ("ln", "gn")
            and metaformer_norm(model, path)
        ):
            # GroupNorm(1, C) / LN over (C, H, W) first in its block: a MetaFormer-style
            # pre-norm chosen on purpose (PoolFormer, MobileViTv2), as NRM013 reads it
            kept_here = True
            pre_norms.append(path)
        if (
            not kept_here
            and layer.type == "GroupNorm"
            and site_arch in ("transformer", "rnn")
            and _not_tokens(model, layer)
        ):
            # GroupNorm takes channels-first (N, C, *) data: conv features (a diffusion
            # VAE's ResBlocks, wav2vec2's feature encoder), not tokens; B6/B7 are about
            # tokens and recurrent state
            kept_here = True
            channels_first.append(path or layer.code)
        if not kept_here and layer.norm_kind == "lrn":
            # LocalResponseNorm has no statistics to learn or batch to see: a fixed local
            # contrast normalization (AlexNet), or an L2 normalization of a descriptor
            # (size 2C, alpha 2C, beta 0.5, k 0: kornia's HyNet). Its first argument is a
            # neighbourhood size, not a channel count.
            kept_here = True
            fixed.append(path or layer.code)
        if not kept_here and kind == "in" and ibn_model:
            # IN on a channel split or a residual sum beside BN: IBN-Net, which beat
            # ResNet-50 on ImageNet (Pan et al. 2018); B5's IN numbers are for IN alone
            kept_here = True
            ibn.append(path or layer.code)
        if not kept_here and layer.norm_kind == "frn":
            # FRN (with its TLU) was built to replace BN at any batch and matched or beat it
            # in its paper (Singh & Krishnan 2019): no rule here says to change it
            kept_here = True
            frn.append(path or layer.code)
        if not kept_here and layer.norm_kind == "in" and input_standardization(model, layer):
            # InstanceNorm on the raw input before any conv (kornia's XFeat): a per-image
            # standardization, which batch statistics of raw images would not be
            kept_here = True
            inputs.append(path or layer.code)
        if not kept_here and layer.num_channels == 1 and site_norm in ("ln", "gn", "rms"):
            # InstanceNorm1d(1) on (N, 1, F) normalizes over F: a LayerNorm or GroupNorm over
            # its single channel would output a constant
            kept_here = True
            single.append(path or layer.code)
        if not kept_here and pooled_vector_norm(layer):
            # LayerNorm([C, 1, 1]) on a pooled context vector (GCNet): not a feature-map
            # norm, and the recognition numbers are about feature maps
            kept_here = True
            pooled.append(path or layer.code)
        if not kept_here and path and _inside_conditional_norm(model, path, by_path, seen_cn):
            kept_here = True
            conditional.append(path)
        if not kept_here and kind == "frozenbn" and site_norm != "frozenbn":
            # stored statistics: kept at any batch (B10), also beside another norm kind
            # (torchvision's FCOS: a FrozenBN backbone and a GN head)
            kept_here = True
            frozen_kept.append(path or layer.code)
        if (
            not kept_here
            and site_norm == "bn"
            and (model.batch.per_device is None or model.batch.weak)
            and kind in (*_BATCH_FREE, "syncbn", "frozenbn")
        ):
            # Never BN in place of a batch-independent (or synced, or frozen) norm without
            # the batch as evidence: an FCOS-style GN head on a BN backbone keeps its GN.
            kept_here = True
            batch_free.append(path or layer.code)
        if (
            not kept_here
            and model.architecture == "rnn"
            and site_norm in _SEQUENCE_NORMS
            and kind in ("bn", "syncbn")
            and (
                library_rnn
                or (model.recurrence.cells and not model.recurrence.on_path(layer))
                # a block of an RNN model that is no cell (speechbrain's DNN_Block after
                # the RNN): its BN is not on a recurrent path; a cell its parent steps
                # has its own recurrence (the parent's advice wins, see analyze.py)
                or (not model.recurrence.cells and model.part_of is not None)
            )
            and not any(app.in_attention_block for app in model.apps if app.layer is layer)
        ):
            # B6 is LN *inside the cell*: a BN on the RNN's inputs or on the last step's
            # features is not on the recurrent path (NRM007 is silent there), and BN on the
            # input-to-hidden side can help (Laurent et al. 2016)
            kept_here = True
            off_path.append(path or layer.code)
        small = model.batch.per_device is not None and model.batch.per_device < BN_MIN_BATCH
        if not kept_here and not small and gating_norm(model, layer):
            # (at a small known batch its statistics are as noisy as any BN's: NRM006's)
            kept_here = True
            gates.append(path or layer.code)
        if (
            not kept_here
            and kind in ("bn", "syncbn")
            and site_arch == "transformer"
            and series_token_batchnorm(model, layer, [model])
        ):
            # TST / PatchTST chose BN over LN for series tokens, on purpose and measured
            kept_here = True
            series_bn.append(path or layer.code)
        suggested = suggest_layer(site_norm, layer, model)
        if kept_here:
            # kept, but never as a layer a rule flags: a LayerNorm over W of an (N, C, H, W)
            # map (NRM002) or a norm built for other channels (NRM011) becomes the same norm
            # over the channels it receives; a BatchNorm1d over the length of an (N, L, C)
            # sequence (NRM012, it raises) the LayerNorm over C that the rule names
            app = model.first_app(layer)
            if app is not None and normalizes_length(layer, app.inp):
                suggested = suggest_layer("ln", layer, model)
                repaired.append(path or layer.code)
                for kept_list in (off_path, batch_free, frozen_kept, pre_norms, pooled):
                    if (path or layer.code) in kept_list:
                        kept_list.remove(path or layer.code)
            elif _ln_flagged(model, layer) or (
                app is not None and received_channels(model, layer, app.inp) is not None
            ):
                suggested = suggest_layer(kind, layer, model)
            else:
                suggested = layer.code
        suggestions.append(
            LayerSuggestion(site=path, line=layer.line, current=layer.code, suggested=suggested)
        )
    if pre_norms:
        rationale.append(
            "Kept as they are (pre-norms first in their block, or the norm closing a stack of "
            "them, MetaFormer-style: a design "
            f"choice; B5's numbers are about norms after a conv): {', '.join(pre_norms)}."
        )
    if repaired:
        rationale.append(
            "BatchNorm1d over the length of an (N, L, C) sequence raises or normalizes the "
            f"wrong dim (NRM012): a LayerNorm over C instead: {', '.join(repaired)}."
        )
    if fixed:
        rationale.append(
            "Kept as they are (LocalResponseNorm: a fixed local contrast or L2 normalization "
            f"with no statistics over the batch, outside the BN/GN/LN choice): {', '.join(fixed)}."
        )
    if ibn:
        rationale.append(
            "Kept as they are (InstanceNorm beside BatchNorm on a channel split or after a "
            "residual add: the IBN-Net design, 22.54% vs ResNet-50's 23.64% ImageNet top-1 "
            f"error, Pan et al. 2018, arXiv:1807.09441): {', '.join(ibn)}."
        )
    series_all = bool(series_bn) and len(series_bn) + len(gates) == len(sites)
    gates_all = bool(gates) and len(gates) == len(sites)
    if series_all or gates_all:
        # every site is a kept series BatchNorm or a gate's norm: the headline says what is
        # kept, at low confidence (no rule chose it)
        norm = Counter(_site_kind(model, layer) for _, layer, _ in sites).most_common(1)[0][0]
    if series_bn:
        rationale.insert(
            0,
            "Kept as they are (BatchNorm1d over d_model on the transposed tokens of a "
            "continuous series: the TST and PatchTST design, chosen over LayerNorm for time "
            "series, Zerveas et al. 2021, arXiv:2010.02803; Nie et al. 2023, arXiv:2211.14730; "
            "B7's LayerNorm, built channels-first there, is the alternative): "
            f"{', '.join(series_bn)}.",
        )
        would_change.append("token ids (an nn.Embedding: text, where BN lost to LN): ln (B7)")
    if gates:
        rationale.append(
            "Kept as they are (a norm whose output goes straight into a sigmoid gate: part of "
            "an activation such as DIN's Dice, p = sigmoid(BN(s)), Zhou et al. 2018, "
            f"arXiv:1706.06978; not a feature norm to choose): {', '.join(gates)}."
        )
    if frn:
        rationale.append(
            "Kept as they are (Filter Response Normalization: per image and channel, no batch "
            "statistics; it matched or beat BN at every batch size in its paper, Singh & "
            f"Krishnan 2019, arXiv:1911.09737): {', '.join(frn)}."
        )
    if inputs:
        rationale.append(
            "Kept as they are (InstanceNorm standardizing the model's input before any conv: "
            f"a per-image preprocessing step, not a feature norm): {', '.join(inputs)}."
        )
    if single:
        rationale.append(
            "Kept as they are (a norm over a single channel normalizes the other axis; a "
            f"LayerNorm or GroupNorm over that one channel would output a constant): "
            f"{', '.join(single)}."
        )
    if channels_first:
        rationale.append(
            "Kept as they are (GroupNorm on channels-first conv features, not on tokens or "
            f"recurrent state, which B6/B7 are about): {', '.join(channels_first)}."
        )
    if pooled:
        rationale.append(
            "Kept as they are (LayerNorm over the channels of a pooled (N, C, 1, 1) context, "
            f"as GCNet's context block: not a norm of feature maps): {', '.join(pooled)}."
        )
    if conditional and len(conditional) == len(sites):
        # every norm is inside a conditional norm (NCSN's noise-conditional IN): what the
        # model uses is kept, and the recognition rules' batch advice does not reach it
        norm = _site_kind(model, sites[0][1])
        would_change, rules, rationale = [], [], []
    if conditional:
        rationale.append(
            "Kept as they are (the norm inside a conditional norm module, scaled and shifted "
            f"by the condition: part of that norm): {', '.join(conditional)}."
        )
    if frozen_kept:
        rationale.append(
            "Kept as they are (frozen BatchNorm: stored pretrained statistics, which do not "
            f"depend on the batch; B10): {', '.join(frozen_kept)}."
        )
        if "B10" not in rules:
            rules.append("B10")
    if new_layers:
        rationale.append(
            "New BatchNorm layers beside the pretrained backbone have no pretrained "
            f"statistics to freeze: GroupNorm at this batch (B2): {', '.join(new_layers)}."
        )
        if "B2" not in rules:
            rules.append("B2")
    if off_path and len(off_path) == len(sites):
        norm = "bn"  # every site is outside the recurrence: the headline says what is kept
    if channels_first and len(channels_first) == len(sites):
        norm = "gn"  # every site is a kept GroupNorm on conv features: so is the headline
    if off_path:
        rationale.insert(
            0,
            "Kept as they are (BatchNorm outside the recurrence, on the RNN's inputs or "
            "outputs; B6 is about the recurrent state, and BN on the input-to-hidden side can "
            f"help, Laurent et al. 2016): {', '.join(off_path)}.",
        )
        would_change.append("a BatchNorm moved onto the recurrent state: ln (B6)")
    if batch_free:
        rationale.append(
            "Kept as they are (batch-independent, synced or frozen norms; switching them to "
            f"BN needs the batch as evidence): {', '.join(batch_free)}."
        )
        would_change.append(f"a per-device batch of {BN_MIN_BATCH} or more: bn at these sites too")
    kept_untraced = Counter(_site_kind(model, layer) for _, layer, _ in sites)
    # The rest of the sites, traced, are tokens whose LN/RMSNorm B7 keeps (Krea2's text
    # blocks untraced, its image blocks traced): the same kept headline.
    rest_kept = (
        norm not in _SEQUENCE_NORMS
        and set(kept_untraced) <= _SEQUENCE_NORMS
        and all(s.suggested == s.current for s in suggestions)
    )
    all_untraced = bool(untraced) and (len(untraced) == len(sites) or rest_kept)
    if all_untraced:
        # Every norm is an LN/RMS whose input was not traced (an LLM whose attention lives
        # in blocks the analyzer could not build looks like an MLP): a "bn" headline would
        # contradict every line below it. The headline is what the model uses (the more
        # frequent of LN and RMSNorm when it mixes them).
        norm = kept_untraced.most_common(1)[0][0]
        some = "some of these norms" if len(untraced) < len(sites) else "these norms"
        rationale.insert(
            0,
            f"Kept {norm}: the inputs of {some} could not be traced (tokens, if the "
            "attention or recurrent blocks were not read), so the feature-batch advice "
            f"({', '.join(adv.rules)}) is not applied to them.",
        )
        would_change.insert(0, f"inputs traced as (N, C) features: {adv.norm} ({adv.rules[0]})")
    elif untraced:
        rationale.append(
            f"Kept as they are (input not traced, may be tokens): {', '.join(untraced)}."
        )
    for key, paths in others.items():
        # Say in the headline why these sites get other advice than the headline's.
        rationale.append(f"Sites on {key}: {', '.join(paths)}.")
    assumptions = [
        f"{a} (source: {model.batch.source})" if "batch" in a else a for a in adv.assumptions
    ]
    assumptions.insert(
        0,
        f"architecture {model.architecture}"
        + (f" ({', '.join(model.evidence)})" if model.evidence else ""),
    )
    return Recommendation(
        norm=norm,
        layers=suggestions,
        rationale=rationale,
        rules=rules,
        assumptions=assumptions,
        would_change=would_change,
        confidence=(
            "medium"
            if conditional and len(conditional) == len(sites)
            else "low"
            if (norm_free and builtin is None)
            or all_untraced
            or series_bn
            or gates_all
            or unstated_sync
            else _kept_confidence(adv, norm, model)
        ),  # type: ignore[arg-type]
        alternatives=[n for n in (adv.norm, *adv.alternatives) if n != norm],
        below_bn_batch=adv.below_bn_batch if norm == adv.norm and not off_path else None,
    )


def _recommend_domain(model: ModelContext, domain: str) -> Recommendation:
    """Keep the domain's norms; other sites get the domain's norm, built for their layout."""
    d = DOMAINS[domain]
    adv = advise_domain(domain, model.batch.per_device)
    suggestions = []
    by_path, seen_cn = dict(model.layers), {}
    for path, layer in model.norm_layers():
        kind = _site_kind(model, layer)
        if (
            kind in d.keep
            or kind == d.norm
            or {kind, d.norm} <= _SEQUENCE_NORMS
            or kind in _OWN_DESIGN
        ):
            # RMSNorm where the domain says LN, LRN and FRN: kept (see recommend)
            suggested = layer.code
            if _ln_flagged(model, layer):  # kept, but never as a layer NRM002 flags
                suggested = suggest_layer(kind, layer, model)
        elif path and _inside_conditional_norm(model, path, by_path, seen_cn):
            # the param-free norm of a SPADE / conditional norm: part of that norm, kept
            # (a generator's SPADE batch norm is not an InstanceNorm to be)
            suggested = layer.code
        elif path and domain in _GENERATORS and inside_recognition_net(path, by_path):
            # a speaker encoder or classifier the generator holds (XTTS's HiFi-GAN decoder):
            # a recognition network, whose norms the generator's domain does not choose
            suggested = layer.code
        elif d.norm == "none":
            suggested = "nn.Identity()"
        else:
            suggested = suggest_layer(d.norm, layer, model)
        suggestions.append(LayerSuggestion(path, layer.line, layer.code, suggested))
    assumptions = list(adv.assumptions)
    assumptions.insert(
        0,
        f"architecture {model.architecture}"
        + (f" ({', '.join(model.evidence)})" if model.evidence else ""),
    )
    norm = d.norm
    rationale = list(adv.rationale)
    kept = {_site_kind(model, layer) for _, layer in model.norm_layers()}
    if not suggestions and "none" in d.keep:
        norm = "none"  # e.g. a WGAN-GP critic without norms: right as it is
        rationale.insert(0, f"Kept none: no norm layer is a good choice here ({d.id}).")
    elif len(kept) == 1 and all(s.suggested == s.current for s in suggestions):
        (norm,) = kept  # every site kept: the headline is what the model uses
        rationale.insert(0, f"Kept {norm}: the domain's own choice ({d.id}).")
    return Recommendation(
        norm=norm,
        layers=suggestions,
        rationale=rationale,
        rules=list(adv.rules),
        assumptions=assumptions,
        would_change=list(adv.would_change),
        confidence=adv.confidence,  # type: ignore[arg-type]
        alternatives=[n for n in (d.norm, *adv.alternatives) if n != norm],
    )


def _kept_confidence(adv: Advice, norm: str, model: ModelContext) -> str:
    """A kept alternative is "medium" at most, "low" when the batch is unknown."""
    if norm == adv.norm:
        return adv.confidence
    return "low" if model.batch.per_device is None or model.batch.weak else "medium"


_BATCH_FREE = frozenset({"gn", "ln", "in", "rms"})
_SEQUENCE_NORMS = frozenset({"ln", "rms"})
_OWN_DESIGN = frozenset({"lrn", "frn"})  # outside the BN/GN/LN choice, no batch statistics


def _site_kind(model: ModelContext, layer: Layer) -> str:
    if layer.backbone is not None:
        return layer.backbone.norm
    if layer.type == "GroupNorm" and cnn_classifier_misfit(model, layer):
        return "ln"  # GroupNorm(1, C) is LayerNorm over (C, H, W): not the GN the advice means
    return layer.norm_kind or "none"


def _keep_note(kind: str, adv: Advice, batch_known: bool = True) -> str:
    if kind == "gn" and adv.norm == "bn" and not batch_known:
        return (
            "Kept gn: GroupNorm does not depend on the batch size (B2), which is unknown "
            "here; at a per-device batch >= 16 BN is ~0.5 points better (ResNet-50: 23.6% "
            "vs 24.1% at batch 32, B1)."
        )
    if kind == "gn" and adv.norm == "bn":
        return (
            "Kept gn: GroupNorm is fine here. At this batch BN is ~0.5 points better "
            "(ResNet-50: 23.6% vs 24.1% at batch 32, B1), but GN does not depend on the batch "
            "size (B2); switch to bn only if that half point matters."
        )
    if kind == "syncbn":
        return "Kept syncbn: SyncBatchNorm over all devices is the alternative to GN here (B3)."
    if kind == "frozenbn":
        return (
            "Kept frozenbn: a frozen BatchNorm normalizes with stored (pretrained) statistics, "
            "so it does not depend on the batch size; it is the B10 choice for fine-tuning a "
            f"pretrained backbone at a small batch. Trained from scratch it learns no "
            f"statistics: then {adv.norm}."
        )
    if kind == "ln" and adv.norm == "bn":
        return "Kept ln: at batch >= 16 BatchNorm1d is the B11 choice for (N, C) features."
    return f"Kept {kind}: it is one of the good choices here ({adv.norm} is the default)."


__all__ = [
    "abstain_reason",
    "advice_for",
    "default_groups",
    "recommend",
    "site_architecture",
    "structural_abstain",
    "suggest_layer",
]
