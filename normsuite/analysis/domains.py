"""Which domain with its own norm practice a model belongs to (``advice.DOMAINS``), from its
structure: the layers it builds, what its ``forward`` methods compute and, for a GAN critic,
whether the file trains it with a gradient penalty. Never from class names.

>>> import ast
>>> from normsuite.analysis.context import build_context
>>> from normsuite.analysis.types import AnalysisOptions
>>> src = '''
... import torch.nn as nn
... class G(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.body = nn.Sequential(nn.Conv2d(3, 64, 7), nn.InstanceNorm2d(64), nn.ReLU(),
...                                   nn.Conv2d(64, 3, 7), nn.Tanh())
...     def forward(self, x):
...         return self.body(x)
... '''
>>> ctx = build_context(ast.parse(src), src, "g.py", AnalysisOptions())
>>> detect(ctx.models[0], ctx)
'D1'
"""

from __future__ import annotations

import ast

from .context import MAP_NORMS, FileContext, ModelContext
from .entrypoints import penalized_elsewhere, penalizes
from .factories import REPARAM
from .ir import ATTENTION_TYPES, CONV_DIMS, RNN_CELLS, RNN_TYPES, ClassInfo, Layer, ModuleInstance
from .sites import squashed
from .tree_facts import class_facts, tree_facts

_UPSAMPLING_LAYERS = frozenset(
    {
        "ConvTranspose1d",
        "ConvTranspose2d",
        "ConvTranspose3d",
        "Upsample",
        "UpsamplingNearest2d",
        "UpsamplingBilinear2d",
        "PixelShuffle",
    }
)
_UPSAMPLING_CALLS = frozenset({"interpolate", "upsample", "pixel_shuffle", "conv_transpose2d"})
_TIMESTEP_ARGS = frozenset(
    {"t", "time", "times", "timestep", "timesteps", "noise_level", "sigma", "sigmas", "temb"}
)


def detect(model: ModelContext, ctx: FileContext) -> str | None:
    """The id of the domain ``model`` belongs to, or None (the recognition rules apply)."""
    layers = _unique(model)
    types = {layer.type for layer in layers}
    kinds = {layer.norm_kind for layer in layers if layer.norm_kind}
    convs = bool(types & set(CONV_DIMS))
    calls = _forward_calls(model)
    if ("SELU" in types or "AlphaDropout" in types or "selu" in calls) and not kinds:
        return "D5"
    image_out = _tanh_output(model)
    upsamples = bool(types & _UPSAMPLING_LAYERS or calls & _UPSAMPLING_CALLS)
    generator = image_out or upsamples
    # the critic scores each sample (a one-value output): a generator without a tanh or
    # upsampling (CTGAN's MLP of Linear+BN blocks, in the same file) is not the critic
    # (an unknown output width counts for a network, not for a block another model uses,
    # CTGAN's Residual(i, o) inside the generator, nor when another network of the file is
    # the one that scores: ClusterGAN's encoder beside its Linear(1024, 1) critic)
    scores = _single_output(model) or (
        model.block_of is None
        and not _several_outputs(model)
        and not any(_single_output(m) for m in ctx.models if m is not model and m.block_of is None)
    )
    critic = scores and (convs or "Linear" in types)
    if critic and not generator and (gradient_penalty(ctx) or _penalized_elsewhere(model, ctx)):
        return "D2"
    unet = upsamples or bool(kinds)  # a U-Net: GroupNorm (or a channel RMS/LN variant) kept
    if convs and unet and _takes_timestep(model) and (kinds & {"gn", "rms", "ln"} or not kinds):
        return "D4"
    reparam = ctx.index.memo.get(REPARAM, {})
    wrapped = [reparam[id(layer)][0] for layer in layers if id(layer) in reparam]
    if "spectral_norm" in wrapped and not kinds and critic and _weighted_layers(model) >= 2:
        return "D3"  # (one spectral-normed conv is a layer: fastai's SimpleSelfAttention)
    gan_file = _gan_file(ctx)
    if gan_file and not generator and _single_output(model):
        return "D9"  # the discriminator of a GAN file
    # an IN-only conv module without a head (CycleGAN's ResnetBlock), or IN with an image
    # output; IN beside BN in a head-less block is a recognition design (IBN-Net, RAFT's
    # encoders), not an image generator
    # an InstanceNorm that standardizes the raw input before any conv (kornia's XFeat) is
    # preprocessing, not a generator's feature norm
    feature_kinds = {
        layer.norm_kind
        for layer in layers
        if layer.norm_kind and not (layer.norm_kind == "in" and input_standardization(model, layer))
    }
    in_only = feature_kinds <= {"in", "none"}
    feature_in = "in" in feature_kinds
    # (an IN-only block that is part of a model of the file takes that model's context: the
    # stem block of pytorchcv's IBN-b classifier is no image generator, CycleGAN's
    # ResnetBlock inherits its generator's D1)
    alone = in_only and not model.classifier and model.part_of is None
    if convs and feature_in and (generator or gan_file or alone):
        return "D1"
    if convs and image_out and upsamples and kinds and not model.classifier:
        # a decoder to a tanh image is a GAN generator (DCGAN, pix2pix(HD), whose norm is
        # BN or IN by a flag) even when its discriminator is in another file: its norms
        # are the architecture's choice, kept (D9); the recognition rules say nothing here
        return "D9"
    if gan_file and (model.part_of is None or generator):
        return "D9"  # a GAN's generator, or its other networks (encoder, classifier)
    subpixel = "PixelShuffle" in types or "pixel_shuffle" in calls
    n_convs = sum(1 for layer in layers if layer.type in CONV_DIMS)
    patches = bool(calls & {"unfold", "fold"})  # MobileViT folds patches back, not SR
    sr = subpixel and not patches and n_convs >= 3 and model.architecture == "cnn2d"
    if sr and not kinds and not model.classifier and not unseen_norms(layers):
        return "D8"
    cnn_or_hybrid = model.architecture in ("cnn1d", "cnn2d", "cnn3d", "hybrid")
    if cnn_or_hybrid and "ln" in kinds and not kinds & {"bn", "syncbn"}:
        ln = [layer for layer in layers if layer.norm_kind == "ln"]
        channel = [layer for layer in ln if channel_layernorm(model, layer)]
        # The others: on pooled (N, C) features (ConvNeXt's head) or not traced; never one
        # over the wrong dim of a channels-first map (that is NRM002, not a design).
        if channel and all(layer in channel or not _on_map(model, layer) for layer in ln):
            return "D6"
    # a *vision* hybrid: 2-d conv maps, no recurrence (Tacotron's Conv1d+BN encoder with a
    # GRU attention decoder is a speech model, not MobileViT)
    vision = "Conv2d" in types and not types & {*RNN_TYPES, *RNN_CELLS}
    attends = types & ATTENTION_TYPES or _attention_blocks(model)
    if model.architecture == "hybrid" and vision and attends:
        bns = [layer for layer in layers if layer.norm_kind in ("bn", "syncbn", "frozenbn")]
        only_bn = bool(bns) and kinds <= {"bn", "syncbn", "frozenbn"}
        if bns and (all(_on_map(model, layer) for layer in bns) or only_bn):
            return "D7"  # BN on the maps, or BN everywhere by design (LeViT)
    return None


def inside_recognition_net(path: str, by_path: dict[str, Layer]) -> bool:
    """The site belongs to a sub-network whose ``forward`` ends in a Linear applied after
    pooling or flattening: an embedding or classifier net, not part of a generator."""
    parts = path.split(".")
    for cut in range(1, len(parts)):
        inst = getattr(by_path.get(".".join(parts[:cut])), "instance", None)
        if inst is not None and ends_in_pooled_linear(inst):
            return True
    return False


_REDUCTIONS = frozenset(
    {"mean", "flatten", "sum", "amax", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "avg_pool2d"}
)


def ends_in_pooled_linear(inst: ModuleInstance) -> bool:
    """``forward`` returns a Linear applied after pooling or flattening: an embedding or
    classifier network."""
    forward = inst.cls.method("forward")
    if forward is None:
        return False
    returns = [n.value for n in ast.walk(forward) if isinstance(n, ast.Return) and n.value]
    if len(returns) != 1 or not isinstance(returns[0], ast.Call):
        return False
    func = returns[0].func
    head = inst.attrs.get(func.attr) if isinstance(func, ast.Attribute) else None
    if not isinstance(head, Layer) or head.type not in ("Linear", "LazyLinear"):
        return False
    return any(
        isinstance(n, ast.Call)
        and getattr(n.func, "attr", getattr(n.func, "id", "")) in _REDUCTIONS
        for n in ast.walk(forward)
    )


def unseen_norms(layers: list[Layer], opaque: bool = True) -> list[str]:
    """Parts that may hold norms the analysis cannot see, as written: one named for a norm
    that is not read as one (NAFNet's ``LayerNorm2d`` computed in an
    ``autograd.Function``, an ``RMSNorm`` subclass it does not recognize), and with
    ``opaque`` a module it could not build (a block over a base class outside the
    project)."""
    return list(
        dict.fromkeys(
            layer.code.split("(")[0] or "a module it could not build"
            for layer in layers
            if (opaque and layer.type == "Opaque")
            or (layer.norm_kind is None and "Norm" in layer.code.split("(")[0].split(".")[-1])
        )
    )


def input_standardization(model: ModelContext, layer: Layer) -> bool:
    """``layer`` is applied before any conv or linear layer of the forward: it normalizes
    the model's input (``self.norm = nn.InstanceNorm2d(1)`` on the raw image)."""
    own = next((a.path for a in model.apps if a.layer is layer), None)
    if own is None:
        return False
    # the input of the sub-network that holds it (a speaker encoder inside a vocoder
    # standardizes its own spectrogram): only layers of that sub-network count
    owner = own.rpartition(".")[0]
    holder = getattr(dict(model.layers).get(owner), "instance", None) if owner else None
    if holder is None or not ends_in_pooled_linear(holder):
        owner = ""  # a block (a pre-activation IN) or a norm module: judged model-wide
    for app in model.apps:
        if owner and not app.path.startswith(owner + "."):
            continue
        if app.layer is layer:
            return True
        if app.layer.type not in _WEIGHTLESS:
            return False  # a conv, a Linear, a backbone or a module it cannot see came first
    return False


# layers that may come before an input standardization (they learn nothing of the image)
_WEIGHTLESS = frozenset(
    {"Identity", "Flatten", "Unflatten", "Dropout", "AvgPool2d", "MaxPool2d", "Upsample"}
)


def image_decoder(model: ModelContext) -> bool:
    """Convs that upsample (a transposed conv, ``nn.Upsample``, ``F.interpolate``,
    ``pixel_shuffle``) or end in a tanh image, and no classification head: a generator, a
    super-resolution net or a style decoder, where the recognition rules do not say to add
    a norm."""
    layers = _unique(model)
    types = {layer.type for layer in layers}
    if not types & set(CONV_DIMS) or model.classifier:
        return False
    upsamples = bool(types & _UPSAMPLING_LAYERS or _forward_calls(model) & _UPSAMPLING_CALLS)
    return upsamples or _tanh_output(model)


def channel_layernorm(model: ModelContext, layer: Layer) -> bool:
    """LayerNorm over the channels of a conv map on purpose (permuted, or channels-first)."""
    if layer.type in ("LayerNorm2d",) or (layer.backbone and layer.backbone.norm == "ln"):
        return True
    app = model.first_app(layer)
    return bool(app and app.inp.kind == "map" and app.inp.last)


def _on_map(model: ModelContext, layer: Layer) -> bool:
    """On a 2D/3D image map (a Conformer's BatchNorm1d on (N, C, L) is not vision)."""
    if layer.type in MAP_NORMS:
        return True
    app = model.first_app(layer)
    t = app.inp if app else None
    return bool(t and t.kind == "map" and not t.last and t.rank in (4, 5))


def _attention_blocks(model: ModelContext) -> set[str]:
    return {"attention"} if any("attention" in e for e in model.evidence) else set()


def _unique(model: ModelContext) -> list[Layer]:
    seen: set[int] = set()
    out = []
    for _, layer in model.layers:
        if id(layer) not in seen:
            seen.add(id(layer))
            out.append(layer)
    return out


def _classes(model: ModelContext) -> list[ClassInfo]:
    out: dict[int, ClassInfo] = {}
    if model.root.instance is not None:
        out[id(model.root.instance.cls.node)] = model.root.instance.cls
    for _, layer in model.layers:
        if layer.instance is not None:
            out.setdefault(id(layer.instance.cls.node), layer.instance.cls)
    return list(out.values())


def _forward_calls(model: ModelContext) -> set[str]:
    """Names called in the forward methods of the model's classes (``F.selu``, ``tanh``)."""
    names: set[str] = set()
    for cls in _classes(model):
        facts = class_facts(cls)
        for fn in cls.node.body:
            if not (isinstance(fn, ast.FunctionDef) and fn.name == "forward"):
                continue
            for call in facts.nodes_in(fn, (ast.Call,)):
                func = call.func
                if isinstance(func, ast.Attribute):
                    names.add(func.attr)
                elif isinstance(func, ast.Name):
                    names.add(func.id)
    return names


def _takes_timestep(model: ModelContext) -> bool:
    """The model's forward takes a timestep / noise level besides its input."""
    if model.root.instance is None:
        return False
    fn = model.root.instance.cls.method("forward")
    if fn is None:
        return False
    args = [*fn.args.posonlyargs, *fn.args.args]
    defaults = dict(zip([a.arg for a in args][::-1], fn.args.defaults[::-1], strict=False))
    defaults.update(
        (a.arg, d) for a, d in zip(fn.args.kwonlyargs, fn.args.kw_defaults, strict=True) if d
    )
    for arg in [*args, *fn.args.kwonlyargs][2:]:
        # ``T`` is a count (frames, steps), ``t`` a time
        if arg.arg.lower() not in _TIMESTEP_ARGS or arg.arg == "T":
            continue
        default = defaults.get(arg.arg)
        counted = isinstance(default, ast.Constant) and type(default.value) is int
        typed_int = isinstance(arg.annotation, ast.Name) and arg.annotation.id == "int"
        if not (counted or typed_int):  # ``T: int = 8`` frames, not a noise level
            return True
    return False


# forward arguments that carry a graph's connectivity (PyG's edge_index / adj_t, the
# edge features that come with it): message passing, not a batch of grids or sequences
_GRAPH_ARGS = frozenset(
    {"edge_index", "edge_attr", "edge_weight", "adj_t", "edge_index_dict", "adj", "adjacency"}
)  # (a dense ``adj`` matrix: Kipf & Welling's GCN, its BN over node rows)


def graph_network(model: ModelContext) -> str | None:
    """The connectivity argument (``edge_index``) the model's own ``forward`` takes, when it
    is a graph network, else None. Its BatchNorm normalizes over the nodes of all the
    batch's graphs, so the batch rules (B1-B3, NRM005/NRM006) do not apply. A CNN with a
    graph head of its own making (its forward takes images) is not one: its image BNs are
    a CNN's."""
    if model.root.instance is None:
        return None
    fn = model.root.instance.cls.method("forward")
    if fn is None:
        return None
    for arg in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]:
        if arg.arg in _GRAPH_ARGS:
            return arg.arg
    return None


def _generator_like(model: ModelContext) -> bool:
    types = {layer.type for layer in _unique(model)}
    if _tanh_output(model) or bool(types & _UPSAMPLING_LAYERS):
        return True
    # upsampling by F.interpolate in forward (ESRGAN's RRDBNet), with convs and no head
    return (
        bool(types & set(CONV_DIMS))
        and not model.classifier
        and bool(_forward_calls(model) & _UPSAMPLING_CALLS)
    )


_SKIPPED_AT_END = frozenset({"Identity", "Dropout", "Flatten", "Unflatten"})


def _tanh_output(model: ModelContext) -> bool:
    """The model's output goes through tanh (an image in [-1, 1]): its last layer is
    ``nn.Tanh``, or its own ``forward`` returns ``tanh(...)``. A tanh inside (a gate, a
    TTS postnet's activation between convs) does not make a generator."""
    last = [layer.type for _, layer in model.layers if layer.type not in _SKIPPED_AT_END]
    if last and last[-1] == "Tanh":
        return True
    if model.root.instance is None or (fn := model.root.instance.cls.method("forward")) is None:
        return False
    facts = class_facts(model.root.instance.cls)
    for node in facts.nodes_in(fn, (ast.Return,)):
        if isinstance(node.value, ast.Call):
            func = node.value.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "tanh":
                return True
    return False


def _gan_file(ctx: FileContext) -> bool:
    """The file defines an image generator (tanh output or upsampling decoder) and a
    discriminator (a model with a single output score): a GAN file."""
    key = ("gan-file",)
    memo = ctx.index.memo
    if key not in memo:
        # networks, not building blocks: a lone ConvTranspose2d+BN upsampler and a
        # 1-channel attention gate (ultralytics' conv.py) make no GAN
        top = [m for m in ctx.models if m.part_of is None and _weighted_layers(m) >= 2]
        memo[key] = (
            any(_generator_like(m) for m in top)
            and any(_single_output(m) and not _generator_like(m) for m in top)
        ) or (
            # a Lightning GAN module holds both networks (blocks of it), trained with a
            # gradient penalty: the penalty says GAN
            gradient_penalty(ctx) and any(_generator_like(m) for m in ctx.models)
        )
    return memo[key]


# a 1-channel conv whose output is squashed in its block is a gate (UAFM), not a score
_SQUASH = frozenset({"sigmoid", "softmax", "hardsigmoid"})


def _weighted_layers(model: ModelContext) -> int:
    """How many conv and Linear layers the model builds (each once); a pretrained backbone
    (``torchvision.models.resnet18()``) counts as many."""
    return sum(
        2 if layer.type == "Backbone" else 1
        for layer in _unique(model)
        if layer.type in CONV_DIMS or layer.type in _LINEAR_TYPES or layer.type == "Backbone"
    )


def _several_outputs(model: ModelContext) -> bool:
    """The model's last conv/Linear layer is known to output more than one value per
    sample (a generator's data, not a critic's score); unknown widths do not say so."""
    weighted = [
        layer for _, layer in model.layers if layer.type in CONV_DIMS or layer.type in _LINEAR_TYPES
    ]
    width = weighted[-1].out_channels if weighted else None
    return width is not None and width > 1


_LINEAR_TYPES = frozenset({"Linear", "LazyLinear", "Bilinear"})


def _single_output(model: ModelContext) -> bool:
    """A Linear/conv layer of the model produces one value (a real/fake score head),
    built by the model itself or its containers, not inside a block class of its own: a
    segmentation net's fusion block (PP-LiteSeg's UAFM) gates with a 1-channel conv."""
    by_path = dict(model.layers)

    def in_block(path: str, layer: Layer) -> bool:
        """A gate inside a block: the block's forward squashes that child's output
        (``torch.sigmoid(self.conv_atten(x))``, PP-LiteSeg's UAFM), unlike a score head (an
        AC-GAN's ``Linear(f, 1)`` beside its class head, a multi-scale critic's parts)."""
        parts = path.split(".")
        for cut in range(1, len(parts)):
            owner = by_path.get(".".join(parts[:cut]))
            inst = getattr(owner, "instance", None)
            custom = getattr(owner, "type", None) == "Custom" and inst is not None
            if custom and squashed(inst.cls.method("forward"), {parts[cut]}, _SQUASH):
                return True
        return False

    return any(
        (layer.type in ("Linear", "LazyLinear") or layer.type in CONV_DIMS)
        and layer.out_channels == 1
        and not in_block(path, layer)
        for path, layer in model.layers
    )


def _penalized_elsewhere(model: ModelContext, ctx: FileContext) -> bool:
    """Another file of the project that names the model's class computes a gradient
    penalty (``train_gp.py`` or a LightningModule's ``training_step`` that trains the
    critic of ``nets.py``)."""
    view = ctx.index.project
    if view is None or model.root.instance is None:
        return False
    name = model.root.instance.cls.name
    return penalized_elsewhere(view.project, ctx.path, name) is not None


def gradient_penalty(ctx: FileContext) -> bool:
    """The file differentiates a model output w.r.t. its input with ``create_graph=True``
    (the WGAN-GP penalty), memoized per file."""
    key = ("gradient-penalty",)
    memo = ctx.index.memo
    if key not in memo:
        # autograd.grad(...), torch.autograd.grad(...), or the function imported under any
        # name (``from torch.autograd import grad as torch_grad``, EmilienDupont/wgan-gp)
        memo[key] = (
            "create_graph" in ctx.source
            and penalizes(ctx.source)
            and any(
                (ctx.index.qualname(n.func) or "").split(".")[-1] == "grad"
                and any(k.arg == "create_graph" for k in n.keywords)
                for n in tree_facts(ctx.index).of(ast.Call)
            )
        )
    return memo[key]


__all__ = [
    "channel_layernorm",
    "detect",
    "graph_network",
    "image_decoder",
    "input_standardization",
]
