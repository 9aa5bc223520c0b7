"""The small intermediate representation the extractor builds from a model file.

A :class:`Layer` is one ``nn.X(...)`` construction (or a container, a known backbone, or an
instance of a model class of the same file) with its arguments evaluated where they are
constants. A :class:`ModuleInstance` is a file class "instantiated" statically: the
attributes its ``__init__`` sets. Nothing here imports torch.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any


class _Unknown:
    """A value the static evaluator cannot know (a runtime argument, a call result...)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        return False


UNKNOWN: Any = _Unknown()
UNKNOWN_KWARGS = "**"  # key in Layer.kwargs: an opaque ``**kwargs`` was passed
OPAQUE = "Opaque"  # Layer.type of a placeholder for a module the evaluator cannot know

# Positional parameter names of the layers the analyzer understands, in torch's order.
_CONV = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups")
_CONVT = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding")
_BN = ("num_features", "eps", "momentum", "affine", "track_running_stats")
_RNN = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout")
_TLAYER = ("d_model", "nhead", "dim_feedforward", "dropout", "activation", "layer_norm_eps")
SIGNATURES: dict[str, tuple[str, ...]] = {
    "Conv1d": (*_CONV, "bias"),
    "Conv2d": (*_CONV, "bias"),
    "Conv3d": (*_CONV, "bias"),
    "ConvTranspose1d": (*_CONVT, "groups", "bias"),
    "ConvTranspose2d": (*_CONVT, "groups", "bias"),
    "ConvTranspose3d": (*_CONVT, "groups", "bias"),
    "LazyConv1d": ("out_channels", "kernel_size", "stride", "padding", "dilation", "groups"),
    "LazyConv2d": ("out_channels", "kernel_size", "stride", "padding", "dilation", "groups"),
    "LazyConv3d": ("out_channels", "kernel_size", "stride", "padding", "dilation", "groups"),
    "Linear": ("in_features", "out_features", "bias"),
    "LazyLinear": ("out_features", "bias"),
    "Bilinear": ("in1_features", "in2_features", "out_features", "bias"),
    "BatchNorm1d": _BN,
    "BatchNorm2d": _BN,
    "BatchNorm3d": _BN,
    "LazyBatchNorm1d": _BN[1:],
    "LazyBatchNorm2d": _BN[1:],
    "LazyBatchNorm3d": _BN[1:],
    "SyncBatchNorm": (*_BN, "process_group"),
    "FrozenBatchNorm2d": ("num_features", "eps"),
    "InstanceNorm1d": _BN,
    "InstanceNorm2d": _BN,
    "InstanceNorm3d": _BN,
    "GroupNorm": ("num_groups", "num_channels", "eps", "affine"),
    "LayerNorm": ("normalized_shape", "eps", "elementwise_affine", "bias"),
    "LayerNorm2d": ("num_channels", "eps", "affine"),  # timm, channels-first
    "RMSNorm": ("normalized_shape", "eps", "elementwise_affine"),
    "RMSNorm2d": ("num_channels", "eps"),  # channels-first RMS norm (norm_behaviour.py)
    "LSTM": (*_RNN, "bidirectional"),
    "GRU": (*_RNN, "bidirectional"),
    "RNN": ("input_size", "hidden_size", "num_layers", "nonlinearity", "bias", "batch_first"),
    "LSTMCell": ("input_size", "hidden_size", "bias"),
    "GRUCell": ("input_size", "hidden_size", "bias"),
    "RNNCell": ("input_size", "hidden_size", "bias", "nonlinearity"),
    "Embedding": ("num_embeddings", "embedding_dim", "padding_idx"),
    "PixelShuffle": ("upscale_factor",),  # sub-pixel upsampling (super-resolution)
    "PixelUnshuffle": ("downscale_factor",),
    "EmbeddingBag": ("num_embeddings", "embedding_dim"),
    "MultiheadAttention": ("embed_dim", "num_heads", "dropout", "bias"),
    "TransformerEncoderLayer": (*_TLAYER, "batch_first", "norm_first"),
    "TransformerDecoderLayer": (*_TLAYER, "batch_first", "norm_first"),
    "TransformerEncoder": ("encoder_layer", "num_layers", "norm"),
    "TransformerDecoder": ("decoder_layer", "num_layers", "norm"),
    "Transformer": ("d_model", "nhead", "num_encoder_layers", "num_decoder_layers"),
    "Flatten": ("start_dim", "end_dim"),
    "Unflatten": ("dim", "unflattened_size"),
    "AdaptiveAvgPool1d": ("output_size",),
    "AdaptiveAvgPool2d": ("output_size",),
    "AdaptiveAvgPool3d": ("output_size",),
    "AdaptiveMaxPool1d": ("output_size",),
    "AdaptiveMaxPool2d": ("output_size",),
    "AdaptiveMaxPool3d": ("output_size",),
    "Dropout": ("p", "inplace"),
    "Permute": ("dims",),  # torchvision.ops.misc.Permute (ConvNeXt)
    "Rearrange": ("pattern",),  # einops.layers.torch.Rearrange
}

NORM_KINDS: dict[str, str] = {
    "BatchNorm1d": "bn",
    "BatchNorm2d": "bn",
    "BatchNorm3d": "bn",
    "LazyBatchNorm1d": "bn",
    "LazyBatchNorm2d": "bn",
    "LazyBatchNorm3d": "bn",
    "SyncBatchNorm": "syncbn",
    "FrozenBatchNorm2d": "frozenbn",
    "GroupNorm": "gn",
    "LayerNorm": "ln",
    "LayerNorm2d": "ln",
    "RMSNorm": "rms",
    "RMSNorm2d": "rms",
    "InstanceNorm1d": "in",
    "InstanceNorm2d": "in",
    "InstanceNorm3d": "in",
    "LocalResponseNorm": "lrn",
    # hand-written (norm_behaviour.py): x / sqrt(mean(x^2 over H, W)), no centring
    "FilterResponseNorm2d": "frn",
}
BATCH_NORMS = frozenset({"bn", "syncbn"})
# BatchNorm layers that take a (N, C, H, W) / (N, C, D, H, W) map: channels on dim 1
MAP_BATCH_NORMS = frozenset(
    {"BatchNorm2d", "BatchNorm3d", "LazyBatchNorm2d", "LazyBatchNorm3d"}
)  # kinds that use batch statistics in training
CONV_DIMS: dict[str, int] = {
    "Conv1d": 1,
    "Conv2d": 2,
    "Conv3d": 3,
    "ConvTranspose1d": 1,
    "ConvTranspose2d": 2,
    "ConvTranspose3d": 3,
    "LazyConv1d": 1,
    "LazyConv2d": 2,
    "LazyConv3d": 3,
}
RNN_TYPES = frozenset({"LSTM", "GRU", "RNN"})
RNN_CELLS = frozenset({"LSTMCell", "GRUCell", "RNNCell"})
ATTENTION_TYPES = frozenset(
    {
        "MultiheadAttention",
        "TransformerEncoderLayer",
        "TransformerDecoderLayer",
        "TransformerEncoder",
        "TransformerDecoder",
        "Transformer",
    }
)
CONTAINERS = frozenset({"Sequential", "ModuleList", "ModuleDict"})
# Layers whose output has the input's shape (for the data-flow tracker).
SHAPE_KEEPING = frozenset(
    {
        "ReLU",
        "ReLU6",
        "LeakyReLU",
        "PReLU",
        "ELU",
        "SELU",
        "CELU",
        "GELU",
        "SiLU",
        "Mish",
        "Sigmoid",
        "Tanh",
        "Hardswish",
        "Hardsigmoid",
        "Hardtanh",
        "Softplus",
        "Softmax",
        "LogSoftmax",
        "Dropout",
        "Dropout1d",
        "Dropout2d",
        "Dropout3d",
        "AlphaDropout",
        "Identity",
        "MaxPool1d",
        "MaxPool2d",
        "MaxPool3d",
        "AvgPool1d",
        "AvgPool2d",
        "AvgPool3d",
        "LPPool1d",
        "LPPool2d",
        "Upsample",
        "UpsamplingNearest2d",
        "UpsamplingBilinear2d",
        "ZeroPad2d",
        "ConstantPad1d",
        "ConstantPad2d",
        "ConstantPad3d",
        "ReflectionPad1d",
        "ReflectionPad2d",
        "ReplicationPad1d",
        "ReplicationPad2d",
        "ChannelShuffle",
        "DropPath",  # timm
    }
)
KNOWN_LAYERS = frozenset(SIGNATURES) | frozenset(NORM_KINDS) | SHAPE_KEEPING | CONTAINERS


@dataclass(frozen=True)
class LayerClass:
    """A layer type used as a value: ``nn.BatchNorm2d``, ``partial(nn.GroupNorm, 32)``."""

    type: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class BackboneInfo:
    """A known torchvision/timm model constructor."""

    name: str  # "resnet50"
    library: str  # "torchvision" | "timm"
    family: str  # "resnet" | "vgg" | "convnext" | "vit" | ...
    architecture: str  # "cnn2d" | "transformer"
    norm: str  # "bn" | "ln" | "gn" | "frozenbn" | "none" | ...
    pretrained: bool = False


@dataclass(eq=False)
class Layer:
    """One constructed module, its evaluated arguments and its place in the source."""

    type: str  # "Conv2d", "BatchNorm2d", "Sequential", "Backbone", "Custom", ...
    line: int
    col: int  # 0-based, like ast
    code: str  # source of the constructor call
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    children: list[Layer] = field(default_factory=list)  # Sequential/ModuleList/ModuleDict
    child_names: list[str] = field(default_factory=list)
    instance: ModuleInstance | None = None  # for "Custom"
    backbone: BackboneInfo | None = None  # for "Backbone"
    end_line: int | None = None
    end_col: int | None = None
    # Built in another file of the project (project.py): that file, relative to the
    # project root, and the call site in the analyzed file that findings point at.
    file: str | None = None
    anchor: Layer | None = None

    def arg(self, name: str, default: Any = UNKNOWN) -> Any:
        """The value of parameter ``name`` (keyword or positional), else ``default``."""
        if name in self.kwargs:
            return self.kwargs[name]
        sig = SIGNATURES.get(self.type, ())
        if name in sig:
            i = sig.index(name)
            if i < len(self.args):
                return self.args[i]
        if UNKNOWN_KWARGS in self.kwargs:
            return UNKNOWN  # an opaque **kwargs may set it: no default assumed
        return default

    @property
    def norm_kind(self) -> str | None:
        if self.type == "Backbone" and self.backbone is not None:
            return None
        return NORM_KINDS.get(self.type)

    @property
    def num_channels(self) -> int | None:
        """Channels a norm layer normalizes (``num_features``, ``num_channels``, LN's C)."""
        if self.type in ("GroupNorm", "LayerNorm2d", "RMSNorm2d"):
            value = self.arg("num_channels")
        elif self.type in ("LayerNorm", "RMSNorm"):
            value = self.arg("normalized_shape")
            if isinstance(value, (list, tuple)) and len(value) == 1:
                value = value[0]
        else:
            value = self.arg("num_features")
        # 0 is a "no layer" sentinel of a branch not taken (hidden=0), never a width
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        return value if ok else None

    @property
    def out_channels(self) -> int | None:
        """Output channels for convs/linears/RNNs, when constant."""
        if self.type in CONV_DIMS:
            value = self.arg("out_channels")
        elif self.type in ("Linear", "LazyLinear", "Bilinear"):
            value = self.arg("out_features")
        elif self.type in RNN_TYPES:
            hidden = self.arg("hidden_size")
            if not isinstance(hidden, int):
                return None
            return hidden * (2 if self.arg("bidirectional", False) is True else 1)
        elif self.type in RNN_CELLS:
            value = self.arg("hidden_size")
        elif self.type == "Embedding":
            value = self.arg("embedding_dim")
        else:
            return None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def in_channels(self) -> int | None:
        if self.type in CONV_DIMS:
            value = self.arg("in_channels")
        elif self.type == "Linear":
            value = self.arg("in_features")
        elif self.type in RNN_TYPES or self.type in RNN_CELLS:
            value = self.arg("input_size")
        else:
            return None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def has_bias(self) -> bool | None:
        """True/False for convs and linears when known (torch's default is bias=True)."""
        if self.type not in CONV_DIMS and self.type not in ("Linear", "LazyLinear"):
            return None
        value = self.arg("bias", True)
        return value if isinstance(value, bool) else None

    def walk(self, prefix: str = "", _seen: set[int] | None = None) -> list[tuple[str, Layer]]:
        """This layer and everything inside it, with attribute paths (each object once: a
        recursive model class refers to its own cached instance)."""
        seen = set() if _seen is None else _seen
        if id(self) in seen or len(seen) > 100_000:
            return []
        seen.add(id(self))
        out: list[tuple[str, Layer]] = [(prefix, self)]
        for name, child in zip(self.child_names, self.children, strict=False):
            out.extend(child.walk(f"{prefix}.{name}" if prefix else name, seen))
        if self.instance is not None:
            out.extend(self.instance.walk(prefix, seen))
        return out


@dataclass
class ClassInfo:
    """A class of the analyzed file that is (transitively) an ``nn.Module``."""

    name: str
    node: ast.ClassDef
    bases: list[str]  # resolved dotted names of the bases
    methods: dict[str, ast.FunctionDef]
    parent: ClassInfo | None = None  # a module class of the same file it derives from
    lightning: bool = False  # a LightningModule / LightningDataModule
    base_type: str | None = None  # "Sequential"/"ModuleList" when it subclasses those
    # The ModuleIndex of the file that defines the class (None: the analyzed file's own)
    home: Any = field(default=None, repr=False, compare=False)
    unresolved_bases: list[str] = field(default_factory=list)  # third-party, not read

    def method(self, name: str) -> ast.FunctionDef | None:
        cls: ClassInfo | None = self
        seen = 0
        while cls is not None and seen < 32:
            if name in cls.methods:
                return cls.methods[name]
            cls, seen = cls.parent, seen + 1
        return None


@dataclass(eq=False)
class ModuleInstance:
    """A file class "instantiated" statically: what its ``__init__`` assigned to self."""

    cls: ClassInfo
    attrs: dict[str, Any] = field(default_factory=dict)
    seq_children: list[Layer] = field(default_factory=list)  # nn.Sequential subclasses
    # Layers an attribute holds in the other branch of an ``if`` the evaluator cannot decide
    # (``self.head = nn.Identity()`` / ``self.head = nn.Sequential(...)``): checked by the
    # rules, never used as the attribute's value.
    alternates: list[tuple[str, Layer]] = field(default_factory=list)

    def layers(self) -> list[tuple[str, Layer]]:
        """Direct child layers (attribute name, layer), in assignment order, then the
        alternates of undecided branches."""
        out: list[tuple[str, Layer]] = []
        for name, value in self.attrs.items():
            if isinstance(value, Layer):
                out.append((name, value))
        out.extend(self.alternates)
        for i, layer in enumerate(self.seq_children):
            out.append((str(i), layer))
        return out

    def walk(self, prefix: str = "", _seen: set[int] | None = None) -> list[tuple[str, Layer]]:
        """Every layer inside, with attribute paths, each object once."""
        seen = set() if _seen is None else _seen
        if id(self) in seen:
            return []
        seen.add(id(self))
        out: list[tuple[str, Layer]] = []
        for name, layer in self.layers():
            out.extend(layer.walk(f"{prefix}.{name}" if prefix else name, seen))
        return out
