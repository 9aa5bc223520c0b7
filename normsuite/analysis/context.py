"""What the rules and the recommender see: per model its layers, the traced data flow, the
architecture with evidence and the batch; per file the models and file-wide facts.

>>> import ast
>>> from normsuite.analysis.types import AnalysisOptions
>>> src = "import torch.nn as nn\\nclass R(nn.Module):\\n def __init__(self):\\n"
>>> src += "  super().__init__()\\n  self.rnn = nn.LSTM(8, 16, batch_first=True)\\n"
>>> ctx = build_context(ast.parse(src), src, "m.py", AnalysisOptions())
>>> ctx.models[0].architecture, ctx.models[0].evidence
('rnn', ['LSTM'])
"""

from __future__ import annotations

import ast
import functools
import os
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from .attention import forward_attends, is_attention_instance
from .batch import (
    BatchScan,
    batch_from_scripts,
    divided_by_devices,
    resolve,
    scan_config,
    scan_file,
)
from .choices import unused_entries
from .entrypoints import run_frozen
from .extract import BudgetExceeded, ModuleIndex
from .frozen import frozen_reason
from .ir import (
    ATTENTION_TYPES,
    CONV_DIMS,
    RNN_CELLS,
    RNN_TYPES,
    UNKNOWN,
    ClassInfo,
    Layer,
    ModuleInstance,
)
from .norm_behaviour import behaves_as, freeze_bn_kept_in_eval, freeze_parts, retype_norms
from .project import ProjectView, project_for
from .recurrence import Recurrence, find_recurrence, stepped_classes
from .shapes import INPUT_T, Application, FlowTracer
from .symbols import anchor_foreign
from .tree_facts import called_name, tree_facts
from .types import AnalysisOptions, BatchInfo
from .usage import block_parents, top_parent, used_names

# Norm layers that only take (N, C, H, W) / (N, C, D, H, W) maps: their input is a conv map.
MAP_NORMS = frozenset(
    {
        "BatchNorm2d",
        "BatchNorm3d",
        "LazyBatchNorm2d",
        "LazyBatchNorm3d",
        "FrozenBatchNorm2d",
        "InstanceNorm2d",
        "InstanceNorm3d",
        "LayerNorm2d",
        "RMSNorm2d",
    }
)
_TRAINING_WORDS = (
    ".backward(",
    "training_step",
    "configure_optimizers",
    ".fit(",
    "torch.optim",
    "optim.",
    "Trainer(",
    ".train()",
)


SELF_ATTENTION_EVIDENCE = ".forward: attention (scores, softmax, weighted values)"


@dataclass
class ModelContext:
    """One model of the file (a module class, or a module-level ``nn.Sequential``)."""

    name: str
    line: int
    root: Layer  # "Custom" for a class, else the Sequential/backbone itself
    layers: list[tuple[str, Layer]]  # everything inside, with attribute paths
    apps: list[Application]  # the traced layer applications, in forward order
    architecture: str
    evidence: list[str]
    batch: BatchInfo
    fine_tuning: bool  # a pretrained backbone with BatchNorm
    classifier: bool  # ends in a Linear head / takes num_classes
    sync: bool  # SyncBatchNorm in use (conversion or Trainer(sync_batchnorm=True))
    recurrence: Recurrence = field(default_factory=Recurrence)  # cells stepped over time
    norm_class: str | None = None  # the class itself is a norm (behaves as this torch type)
    part_of: str | None = None  # the top-level model class of the file it is a block of
    block_of: str | None = None  # the class (or builder function) that uses it directly
    uses: list[str] = field(default_factory=list)  # class names it builds (usage.py)
    trains: bool = False  # the file shows training code (its batch size is the training one)
    frozen: str | None = None  # why every parameter is frozen (not trained here), if so
    # the training code runs several processes (DDP, torchrun): a SyncBatchNorm syncs there
    distributed: bool = False
    # (line, col) of a norm constructor call -> the widths it builds across the file's models
    site_widths: dict[tuple[int, int], set[int | None]] = field(default_factory=dict)

    def first_app(self, layer: Layer) -> Application | None:
        for app in self.apps:
            if app.layer is layer:
                return app
        return None

    def norm_layers(self) -> list[tuple[str, Layer]]:
        """Norm layers (and backbones with norms), each once, in definition order."""
        seen: set[int] = set()
        out = []
        for path, layer in self.layers:
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            if layer.norm_kind or (layer.backbone and layer.backbone.norm != "none"):
                out.append((path, layer))
        return out


@dataclass
class FileContext:
    path: str
    source: str
    index: ModuleIndex
    options: AnalysisOptions
    batch: BatchInfo
    models: list[ModelContext] = field(default_factory=list)
    partial: bool = False  # the evaluation budget ran out: some facts are missing

    @functools.cached_property  # asked for every model of the file
    def trains(self) -> bool:
        """Whether the file shows training (a batch size found in an inference-only script
        says nothing about the batch BatchNorm trains with)."""
        return any(word in self.source for word in _TRAINING_WORDS)


def infer_architecture(
    layers: list[tuple[str, Layer]],
    index: ModuleIndex,
    sequences: bool = True,
    recurrence: Recurrence | None = None,
) -> tuple[str, list[str]]:
    """cnn1d/cnn2d/cnn3d/rnn/transformer/mlp/hybrid/unknown, with the evidence.
    ``sequences``: whether the model shows (N, L, C) sequences (an Embedding alone says
    "sequence model" only then; a recommender's id embeddings feed an MLP)."""
    seen: set[int] = set()
    convs: Counter[int] = Counter()
    kinds: Counter[str] = Counter()
    evidence: list[str] = []
    map_norms = 0
    if recurrence is not None and recurrence.cells:
        # Hand-written cells stepped over time (RNN_CELLS are counted below).
        # (and a Linear of an LSTM written inline in forward: Cooijmans' BN-LSTM)
        custom = [c for c in recurrence.cells if c.type not in RNN_TYPES | RNN_CELLS]
        kinds["rnn"] += len(custom)
        evidence.extend(
            e for c, e in zip(recurrence.cells, recurrence.evidence, strict=True) if c in custom
        )
    for _, layer in layers:
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        t = layer.type
        if t in CONV_DIMS:
            convs[CONV_DIMS[t]] += 1
        elif t in RNN_TYPES or t in RNN_CELLS:
            kinds["rnn"] += 1
            kinds[t] += 1
        elif t in ATTENTION_TYPES:
            kinds["attention"] += 1
            kinds[t] += 1
        elif t in ("Linear", "LazyLinear"):
            kinds["linear"] += 1
        elif t == "Embedding":
            kinds["embedding"] += 1
        elif t in MAP_NORMS:
            map_norms += 1
        elif t == "Backbone" and layer.backbone is not None:
            b = layer.backbone
            evidence.append(f"backbone {b.name} ({b.library})")
            if b.architecture == "transformer":
                kinds["attention"] += 1
            else:
                convs[int(b.architecture[3])] += 10
        elif t == "Custom" and layer.instance is not None and _is_attention_block(layer, index):
            kinds["attention"] += 1
            evidence.append(f"attention block {layer.instance.cls.name}")
    for dim, n in sorted(convs.items()):
        if n and not any(e.startswith("backbone") for e in evidence):
            evidence.append(f"{n} x Conv{dim}d")
    for t in (*sorted(RNN_TYPES), *sorted(RNN_CELLS), *sorted(ATTENTION_TYPES)):
        if kinds[t]:
            evidence.append(t if kinds[t] == 1 else f"{kinds[t]} x {t}")
    conv_total = sum(convs.values())
    main_dim = max(convs, key=lambda d: convs[d]) if convs else 2
    rnn, attention = kinds["rnn"] > 0, kinds["attention"] > 0
    if attention and rnn:
        if conv_total:
            return "hybrid", evidence
        # Recurrent layers with attention and no conv: a sequence model (Tacotron-style).
        evidence.append("recurrent + attention, no conv: a sequence model")
        return "rnn", evidence
    if attention:
        # A ViT's patch embedding is a single strided conv: still a Transformer. A norm
        # built for (N, C, H, W) maps (BatchNorm2d...) says the convs make feature maps.
        if conv_total > 1 or map_norms:
            return "hybrid", evidence
        return "transformer", evidence
    if rnn:
        return ("hybrid" if conv_total else "rnn"), evidence
    if conv_total:
        return f"cnn{main_dim}d", evidence
    if kinds["embedding"] and sequences:
        # Token embeddings and no conv: (N, L, C) sequences, whatever mixes them.
        evidence.append(f"{kinds['embedding']} x Embedding, no conv: a sequence model")
        return "transformer", evidence
    if kinds["linear"]:
        evidence.append(f"{kinds['linear']} x Linear, no conv/recurrent/attention layers")
        return "mlp", evidence
    return "unknown", evidence


def _is_attention_block(layer: Layer, index: ModuleIndex) -> bool:
    assert layer.instance is not None
    return is_attention_instance(layer.instance, index)


_SEQUENCE_TYPES = RNN_TYPES | RNN_CELLS | ATTENTION_TYPES | {"Conv1d", "LazyConv1d"}
_POOL_METHODS = frozenset({"mean", "sum", "max", "amax", "logsumexp"})


def _shows_sequences(root: Layer, layers: list[tuple[str, Layer]], index: ModuleIndex) -> bool:
    """Whether the model handles (N, L, C) sequences beyond an Embedding: recurrent,
    attention or Conv1d layers, a second (positional) Embedding, or a ``forward`` that pools
    or picks over dim 1 (``x.mean(1)``, ``x[:, 0]``, ``x[:, -1]``), transposes or attends.
    Only asked about models with an Embedding (it matters for nothing else)."""
    embeddings = 0
    classes = []
    for _, layer in layers:
        if layer.type in _SEQUENCE_TYPES:
            return True
        embeddings += layer.type == "Embedding"
        if layer.instance is not None:
            classes.append(layer.instance.cls)
    if not embeddings:
        return True  # nothing depends on the answer
    if root.instance is not None:
        classes.append(root.instance.cls)
    if embeddings > 1 and _numbers_positions(classes):
        return True  # a token and a positional embedding
    if root.instance is not None and _flattens_rows(root.instance.cls.method("forward")):
        return False  # field embeddings flattened into one vector per sample (DCN, NFM)
    # One embedding, or several without positions (fastai-style entity embeddings, one per
    # categorical column, concatenated into (N, C) features): the forward decides.
    return any(_forward_over_dim1(cls, index) for cls in classes)


def _flattens_rows(fn: ast.FunctionDef | None) -> bool:
    """``forward`` flattens a tensor into one vector per sample: ``x.flatten(1)``,
    ``x.flatten(start_dim=1)``, ``x.view(x.size(0), -1)`` / ``reshape(n, -1)``: a fixed
    number of fields, which a sequence of any length cannot be. A forward that also moves
    axes (``permute``: MaskFormer's flattened padding mask beside its tokens) is not one."""
    calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call)] if fn is not None else []
    if any(called_name(c.func) in ("transpose", "permute", "swapaxes", "movedim") for c in calls):
        return False
    for node in calls:
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        args = [*node.args, *(k.value for k in node.keywords if k.arg == "start_dim")]
        first = args[0] if args else None
        if node.func.attr == "flatten" and isinstance(first, ast.Constant) and first.value == 1:
            return True
        if node.func.attr in ("view", "reshape") and len(node.args) == 2:
            rows, last = node.args
            minus_one = isinstance(last, ast.UnaryOp) and isinstance(last.operand, ast.Constant)
            if minus_one and last.operand.value == 1 and _batch_size_expr(rows):  # type: ignore[attr-defined]
                return True  # (x.size(0), -1): not view(1, -1) of position ids
    return False


def _batch_size_expr(node: ast.expr) -> bool:
    """``x.size(0)``, ``x.shape[0]``, or a name such as ``b``/``bs``/``batch_size``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        arg = node.args[0] if node.args else None
        return node.func.attr == "size" and isinstance(arg, ast.Constant) and arg.value == 0
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute):
        index = node.slice
        return node.value.attr == "shape" and isinstance(index, ast.Constant) and index.value == 0
    return isinstance(node, ast.Name) and node.id.lower() in (
        "b",
        "n",
        "bs",
        "bsz",
        "batch",
        "batch_size",
    )


def _numbers_positions(classes: list[ClassInfo]) -> bool:
    """A class builds positions for a positional embedding: ``torch.arange`` (in ``forward``
    or a ``position_ids`` buffer), or an attribute or name that says positions."""
    for cls in _with_bases(classes):
        for node in ast.walk(cls.node):
            if isinstance(node, ast.Attribute):
                name = node.attr
            elif isinstance(node, ast.Name):
                name = node.id
            elif isinstance(node, ast.arg):
                name = node.arg  # forward(self, tokens, positions)
            else:
                continue
            if name == "arange" or _POSITIONS.match(name):
                return True
    return False


def _with_bases(classes: list[ClassInfo]) -> list[ClassInfo]:
    """The classes and the module classes they derive from (RobertaEmbeddings builds the
    position ids that Data2VecTextEmbeddings inherits)."""
    out: list[ClassInfo] = []
    for cls in classes:
        step: ClassInfo | None = cls
        for _ in range(32):
            if step is None or step in out:
                break
            out.append(step)
            step = step.parent
    return out


# pos, positions, position_ids, pos_emb, posemb, pos_embedding, positional_encoding, wpe
# (GPT-2): names of positions; not "pos_items" / "pos_scores" (a recommender's positive
# items), "post_norm" or "pose"
_POSITIONS = re.compile(
    r"(?i)^(pos|positions?|pos_ids|position_ids|wpe|embed_positions|"
    r"pos(ition(al)?)?_?(emb|embed|embedding|embeddings|enc|encoding|bias)s?)$"
)


def _forward_over_dim1(cls: ClassInfo, index: ModuleIndex) -> bool:
    key = ("over-dim1", id(cls))
    if key not in index.memo:
        index.memo[key] = forward_attends(cls, index) or _pools_dim1(cls.method("forward"))
    return index.memo[key]


def _pools_dim1(fn: ast.FunctionDef | None) -> bool:
    if fn is None:
        return False
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("transpose", "permute", "swapaxes"):
                return True  # moves axes of a rank >= 3 tensor: (N, L, C) <-> (N, C, L)
            if node.func.attr not in _POOL_METHODS:
                continue
            dims = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "dim")]
            if any(isinstance(d, ast.Constant) and d.value == 1 for d in dims):
                return True
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple):
            elts = node.slice.elts
            if len(elts) >= 2 and isinstance(elts[0], ast.Slice):
                pick = elts[1]
                if isinstance(pick, ast.UnaryOp):
                    pick = pick.operand
                if isinstance(pick, ast.Constant) and pick.value in (0, 1):
                    return True  # x[:, 0] (a class token) or x[:, -1] (the last step)
    return False


def _is_classifier(root: Layer, layers: list[tuple[str, Layer]]) -> bool:
    if any(layer.type in ("Linear", "LazyLinear", "Backbone") for _, layer in layers):
        return True
    if root.instance is not None:
        init = root.instance.cls.method("__init__")
        if init is not None:
            names = {a.arg for a in [*init.args.args, *init.args.kwonlyargs]}
            return bool(names & {"num_classes", "n_classes", "classes", "num_labels"})
    return False


def _model(
    name: str, line: int, root: Layer, index: ModuleIndex, batch: BatchInfo, sync: bool
) -> ModelContext:
    anchor_foreign(root)  # layers built in other files: findings point at this file's call
    layers = root.instance.walk() if root.instance is not None else root.walk(name)
    retype_norms(layers, index)  # norms by behaviour are norms before anything is traced
    freeze_bn_kept_in_eval(layers, root.instance, index)  # BN that training keeps in eval
    freeze_parts(layers, batch.frozen_parts)  # ... or the script (model.backbone.eval())
    recurrence = find_recurrence(layers, root.instance, index)
    stepped = root.instance is not None and root.instance.cls.name in stepped_classes(index)
    # The class itself is a cell that the file's code steps over time (with gates to learn).
    if stepped and any(layer.type in ("Linear", "LazyLinear") for _, layer in layers):
        assert root.instance is not None
        recurrence.cells.append(root)
        recurrence.evidence.append(stepped_classes(index)[root.instance.cls.name])
        recurrence.norms.extend(
            layer for _, layer in layers if layer.norm_kind and not recurrence.on_path(layer)
        )
    sequences = _shows_sequences(root, layers, index)
    tracer = FlowTracer(index, sequences=sequences)
    if root.instance is not None:
        tracer.run_instance(root.instance, INPUT_T)
        tracer.cover_unapplied(root.instance)
    else:
        tracer.apply(root, INPUT_T)
    if tracer.selected and root.instance is not None:
        # self.norms[self.norm] with norm="gn": the BatchNorm beside it never runs
        unused = unused_entries(root.instance, tracer.selected)
        layers = [(path, layer) for path, layer in layers if id(layer) not in unused]
    arch, evidence = infer_architecture(layers, index, sequences, recurrence)
    few_convs = sum(1 for _, sub in layers if sub.type in CONV_DIMS) <= 1
    own = root.instance.cls.name if root.instance is not None else ""
    if (
        root.instance is not None
        and arch in ("mlp", "unknown", "rnn", "cnn1d", "cnn2d", "cnn3d")
        and few_convs
        and is_attention_instance(root.instance, index)
    ):
        evidence.append(f"{own}{SELF_ATTENTION_EVIDENCE}")
        arch = "rnn" if arch == "rnn" else "transformer"
    fine_tuning = any(
        layer.backbone is not None and layer.backbone.pretrained and layer.backbone.norm == "bn"
        for _, layer in layers
    )
    return ModelContext(
        name=name,
        line=line,
        root=root,
        layers=layers,
        apps=tracer.apps,
        architecture=arch,
        evidence=evidence,
        batch=batch,
        fine_tuning=fine_tuning,
        classifier=_is_classifier(root, layers),
        sync=sync,
        recurrence=recurrence,
        norm_class=behaves_as(root.instance, index) if root.instance is not None else None,
        uses=used_names(root.instance.cls, index) if root.instance is not None else [],
    )


def held_model(name: str, layer: Layer, ctx: FileContext, holder: ModelContext) -> ModelContext:
    """A network a model of this file holds, built from another file's class, judged as a
    model of its own with the holder's batch."""
    return _model(name, holder.line, layer, ctx.index, holder.batch, holder.sync)


def _project(path: str) -> ProjectView | None:
    """The project the file belongs to, for names it imports from other files."""
    if path == "-" or not os.path.isfile(path):
        return None
    return project_for(path)


def _target_divides(target: str, path: str) -> str | None:
    """Where the config's data class (``src.data.cifar_datamodule.CIFARDataModule``)
    divides the batch by the device count, read from its file in the project."""
    view = _project(path)
    if view is None:
        return None
    found = view.lookup(target)
    home = getattr(found, "home", None)
    if home is None:
        return None
    where = divided_by_devices(home)
    label = getattr(home, "label", None)
    return where.replace("file:", f"{label}:", 1) if where and label else where


def _runs_frozen(cls: ClassInfo, index: ModuleIndex) -> bool:
    """The file builds ``cls`` only as a model it runs frozen (a distillation teacher:
    ``eval()`` or ``requires_grad_(False)``, never ``train()``, no optimizer)."""
    if "eval()" not in index.source and "requires_grad_" not in index.source:
        return False
    calls = [
        c
        for c in tree_facts(index).of(ast.Call)
        if isinstance(c.func, ast.Name) and c.func.id == cls.name
    ]
    return bool(calls) and all(run_frozen(index, c) for c in calls)


def _built_instances(index: ModuleIndex) -> dict[int, ModuleInstance]:
    """The instance the file itself builds of a class, at module level (``model =
    VolumeSegNet(norm_layer=lambda c: nn.GroupNorm(16, c))``, pix2pix's ``netG =
    define_G(norm="instance")``): what is trained, where the class's signature defaults
    (``norm_layer=nn.BatchNorm2d``) are not. Only a class built once, or always alike."""
    own = {id(c) for c in index.classes.values()}
    found: dict[int, list[ModuleInstance]] = {}
    for value in [*index.env.values(), *_factory_models(index)]:
        layers = value.walk() if isinstance(value, Layer) else []
        for _, layer in layers:  # (nn.Sequential(ConvNormAct(3, 64, norm="ln"), ...) too)
            inst = layer.instance
            if inst is not None and id(inst.cls) in own and inst not in found.get(id(inst.cls), []):
                found.setdefault(id(inst.cls), []).append(inst)
    out = {}
    for key, insts in found.items():
        shapes = {tuple((p, layer.type, layer.code) for p, layer in i.walk()) for i in insts}
        if len(shapes) == 1:
            out[key] = insts[0]
    return out


# the training code runs one process per device: SyncBatchNorm has peers to sync with
_DISTRIBUTED = re.compile(
    r"init_process_group|DistributedDataParallel|LOCAL_RANK|torchrun|"
    r"strategy\s*=\s*[\"']ddp|devices\s*=\s*(?:[2-9]|[1-9]\d|-1)|Fabric\("
)


def _runs_distributed(source: str) -> bool:
    """The code (its comments left out) starts or wraps several processes."""
    return bool(source) and bool(_DISTRIBUTED.search(re.sub(r"#[^\n]*", "", source)))


def _built_by_script(built_by: Any, class_name: str) -> ModuleInstance | None:
    """The instance the training script builds (``net = DepthNet(norm="gn")`` in
    train.py), its arguments read there; None if it cannot be built."""
    if built_by is None:
        return None
    call, script = built_by
    try:
        args = [*call.args, *(k.value for k in call.keywords)]
        if any(isinstance(a, ast.Starred) or script.eval(a, {}, None) is UNKNOWN for a in args):
            return None  # built from values read at run time (opt.dim): the defaults say more
        value = script.eval(call, {}, None)
    except BudgetExceeded:
        return None
    inst = getattr(value, "instance", None)
    return inst if inst is not None and inst.cls.name == class_name else None


def _factory_models(index: ModuleIndex) -> list[Layer]:
    """What the file's module-level factories without required arguments build (``def
    build(): return nn.Sequential(ConvNormAct(3, 64, norm="ln"), ...)``): a model the file
    means to train, as ``model = ...`` at module level is. Not a model zoo's entry points
    (``**kwargs`` or ``pretrained``): what they build is the caller's choice, and a zoo
    has hundreds of them."""
    names = {c.name for c in index.classes.values()}
    out = []
    for fn in index.tree.body:
        if (
            not isinstance(fn, ast.FunctionDef)
            or fn.args.args[: len(fn.args.args) - len(fn.args.defaults)]
        ):
            continue
        if fn.args.kwonlyargs and None in fn.args.kw_defaults:
            continue
        if fn.args.kwarg is not None or "pretrained" in [a.arg for a in fn.args.args]:
            continue  # a zoo entry point (timm's resnet50(pretrained, **kwargs)): the caller's
        if not set(tree_facts(index).calls_in(fn)) & names:
            continue
        try:
            value = index.eval(ast.Call(ast.Name(fn.name, ast.Load()), [], []), {}, None)
        except BudgetExceeded:
            break
        if isinstance(value, Layer):
            out.append(value)
    return out


def _as_built(default: ModuleInstance, built: ModuleInstance | None) -> ModuleInstance:
    """The instance the file builds where its norms differ from the defaults' (another
    family, or a norm the defaults leave out); else the defaults', whose layer lines keep
    their channel expressions (``LayerNorm(n_hid)``, valid for every width)."""
    if built is None:
        return default

    def norms(inst: ModuleInstance) -> list[tuple[str, str | None]]:
        return [(p, layer.norm_kind) for p, layer in inst.walk() if layer.norm_kind]

    def choices(inst: ModuleInstance) -> list[tuple[str, str, str]]:
        """The strings that pick a ModuleDict's entry (``self.norms[self.norm]``)."""
        subs = [("", inst)] + [(p, x.instance) for p, x in inst.walk() if x.instance is not None]
        if not any(x.type == "ModuleDict" for _, x in inst.walk()):
            return []
        return [(p, k, v) for p, i in subs for k, v in i.attrs.items() if isinstance(v, str)]

    if norms(built) != norms(default) or choices(built) != choices(default):
        return built
    return default


def build_context(
    tree: ast.Module, source: str, path: str, options: AnalysisOptions
) -> FileContext:
    """Extract every model of the file, trace it and attach the batch information."""
    index = ModuleIndex(tree, source, project=_project(path))
    config: BatchScan | None = scan_config(options.configs) if options.configs else None
    has_models = bool(index.classes) or any(
        isinstance(v, Layer) and v.type in ("Sequential", "Backbone") for v in index.env.values()
    )
    # Batch facts only matter for models; scanning costs a full tree walk.
    file_scan = BatchScan()
    if has_models:
        index.steps = 0  # each phase gets the whole evaluation budget
        try:
            file_scan = scan_file(index)
        except BudgetExceeded:
            file_scan = BatchScan()
    if config is not None and getattr(config, "data_target", None) and not file_scan.divided:
        # the configured batch goes to a DataModule that may hand each device a share
        file_scan = replace(file_scan, divided=_target_divides(config.data_target, path))
    batch = resolve(options, file_scan, config)
    project = index.project.project if index.project is not None else None
    sync = file_scan.sync or bool(config and config.sync)
    ctx = FileContext(path, source, index, options, batch)
    weak_own_batch = batch.per_device is not None and options.batch_size is None and not ctx.trains
    index.steps = 0
    built_as = _built_instances(index)
    for cls in index.classes.values():
        if cls.lightning and cls.method("forward") is None and not cls.method("__init__"):
            continue
        try:
            inst = _as_built(index.instantiate(cls), built_as.get(id(cls)))
            if index.exhausted:
                index.steps = 0  # trace the partial model with a fresh budget, then stop
            root = Layer("Custom", cls.node.lineno, cls.node.col_offset, cls.name, instance=inst)
            model_batch, model_sync, built_by = batch, sync, None
            if project is not None and (batch.per_device is None or weak_own_batch):
                # trained from another file? A script that trains the class beats a loader
                # of this file that trains nothing (a __main__ smoke test's batch 1)
                scripts, script_sync, built_by = batch_from_scripts(
                    options, file_scan, config, project, path, cls.name
                )
                if batch.per_device is None or scripts.per_device is not None:
                    model_batch, model_sync = scripts, sync or script_sync
                    inst = _as_built(inst, _built_by_script(built_by, cls.name))
                    root = Layer(
                        "Custom", cls.node.lineno, cls.node.col_offset, cls.name, instance=inst
                    )
            if model_batch is batch and _runs_frozen(cls, index):
                # teacher = Teacher(); teacher.eval(); no optimizer gets its parameters:
                # the file's loader feeds it, but its BN uses the running statistics
                model_batch = resolve(options, BatchScan(), None)
            model = _model(cls.name, cls.node.lineno, root, index, model_batch, model_sync)
            model.frozen = frozen_reason(cls.node, index)
            script = built_by[1].source if built_by is not None else ""
            model.distributed = _runs_distributed(source) or _runs_distributed(script)
            ctx.models.append(model)
        except BudgetExceeded:
            ctx.partial = True
            break
        if index.exhausted:
            ctx.partial = True
            break
    _judge_blocks_in_context(ctx)
    for model in ctx.models:
        model.trains = ctx.trains
    # Module-level models: model = nn.Sequential(...) / resnet50(...)
    for name, value in list(index.env.items()):
        if isinstance(value, Layer) and value.type in ("Sequential", "Backbone"):
            try:
                ctx.models.append(_model(name, value.line, value, index, batch, sync))
            except BudgetExceeded:
                ctx.partial = True
                break
    widths: dict[tuple[int, int], set[int | None]] = {}
    for model in ctx.models:
        for _, layer in model.layers:
            if layer.norm_kind:
                widths.setdefault((layer.line, layer.col), set()).add(layer.num_channels)
    for model in ctx.models:
        model.trains = ctx.trains
        model.site_widths = widths
    return ctx


_SEQUENCE_ARCHS = ("transformer", "rnn")


def _stepped_by(block: ModelContext, top: ModelContext) -> None:
    """A block its top model steps over time (``h = self.cell(x, h)`` in a loop) is a cell
    there: its norms on the top model's recurrent path are on its own (a cell judged
    alone shows no loop)."""
    if block.recurrence.cells or block.root.instance is None:
        return
    name = block.root.instance.cls.name
    if not any(
        cell.instance is not None and cell.instance.cls.name == name
        for cell in top.recurrence.cells
    ):
        return
    on_path = {(layer.line, layer.col) for layer in top.recurrence.norms}
    block.recurrence.cells.append(block.root)
    block.recurrence.evidence.append(f"stepped over time by {top.name}")
    block.recurrence.norms.extend(
        layer for _, layer in block.layers if layer.norm_kind and (layer.line, layer.col) in on_path
    )


def _judge_blocks_in_context(ctx: FileContext) -> None:
    """Blocks take their top-level model's context: a Transformer's FFN (Linear layers
    only, "mlp" on its own) is part of a transformer, a cell's gates part of an RNN."""
    if not ctx.models:
        return  # nothing to judge: skip the whole-file questions
    parents = block_parents(ctx.index)
    by_name = {m.name: m for m in ctx.models}
    for model in ctx.models:
        if model.name not in parents:
            continue
        model.block_of = parents[model.name]
        top = by_name.get(top_parent(model.name, parents))
        if top is None:
            model.part_of = parents[model.name]  # handed to a builder function
            continue
        if top is model:
            continue
        model.part_of = top.name
        _stepped_by(model, top)
        # the context: the top model's, or, when it is unknown (a Seq2Seq handed its
        # encoder and decoder), the nearest parent whose architecture is known
        context = top
        parent = by_name.get(parents.get(model.name, ""))
        seen = {model.name}
        while context.architecture == "unknown" and parent is not None:
            if parent.name in seen:
                break
            seen.add(parent.name)
            if parent.architecture != "unknown":
                context = parent
                break
            parent = by_name.get(parents.get(parent.name, ""))
        conv = model.architecture.startswith("cnn") or model.architecture == "hybrid"
        if (
            not conv
            and model.architecture != context.architecture
            and context.architecture in _SEQUENCE_ARCHS
        ):
            model.evidence.append(f"part of {context.name} ({context.architecture})")
            model.architecture = context.architecture
