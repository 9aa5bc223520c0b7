"""NRM010: weight decay applied to all parameters, norm weights and biases included."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..context import FileContext
from ..ir import UNKNOWN, Layer
from ..tree_facts import tree_facts
from ..types import Finding
from . import finding, rule

# Optimizers and their default weight decay (AdamW decays by default).
_OPTIMIZERS = {
    "SGD": 0.0,
    "Adam": 0.0,
    "AdamW": 0.01,
    "RMSprop": 0.0,
    "Adagrad": 0.0,
    "Adamax": 0.0,
    "NAdam": 0.0,
    "RAdam": 0.0,
    "Lion": 0.0,
    "Adadelta": 0.0,
    "ASGD": 0.0,
    "LAMB": 0.0,
    "Lamb": 0.0,
}


def _configured(layer: Layer, seen: set[int]) -> Iterator[Layer]:
    """The layers of the model as its defaults build it: the alternates of undecided
    branches (a backbone only a caller-supplied argument would build) are left out."""
    if id(layer) in seen:
        return
    seen.add(id(layer))
    yield layer
    inst = layer.instance
    if inst is not None:
        for value in [*inst.attrs.values(), *inst.seq_children]:
            if isinstance(value, Layer):
                yield from _configured(value, seen)
    for child in layer.children:
        yield from _configured(child, seen)


def _affine_norms(ctx: FileContext) -> bool:
    """Whether a model of the file, as configured, has norm weights that decay (frozen BN
    keeps them as buffers; norms seen only in a branch the defaults do not take, such as
    lightning-bolts' user-supplied detection backbone, are a configuration, not evidence)."""
    return any(_model_affine_norms(model) for model in ctx.models)


def _model_affine_norms(model: Any) -> bool:  # a ModelContext
    """Whether one model, as configured, has norm weights that decay."""
    configured = {id(x) for x in _configured(model.root, set())}
    for _, layer in model.norm_layers():
        if layer.norm_kind in ("frozenbn", "lrn") or id(layer) not in configured:
            continue
        if layer.arg("affine", True) is False or layer.arg("elementwise_affine", True) is False:
            continue
        if layer.norm_kind == "in" and layer.arg("affine", False) is not True:
            continue  # InstanceNorm has no affine parameters by default
        return True
    return False


def _file_models_without_norms(
    ctx: FileContext, params: ast.expr, names: dict[str, ast.expr]
) -> bool:
    """Whether the optimized model is built from classes of this file that have no affine
    norm (a GAN's norm-free critic with its own optimizer, beside a generator with BN)."""
    var = _owner(params, names)
    calls = _constructed(ctx.index.tree, var) if var else []
    by_name = {model.name: model for model in ctx.models}
    built = [by_name.get(func.id) if isinstance(func, ast.Name) else None for func in calls]
    return bool(built) and all(m is not None and not _model_affine_norms(m) for m in built)


# Where a positional weight_decay would sit; a call with that many positional arguments is
# read as "weight decay unknown" (no guessing the signature of a look-alike optimizer).
_WD_POSITION = {"SGD": 4, "Adam": 4, "AdamW": 4, "RMSprop": 4, "Adagrad": 3}


def _all_parameters(
    node: ast.expr, names: dict[str, ast.expr], depth: int = 0, *, freezes: bool = False
) -> bool:
    """``model.parameters()`` of any object (``net.to(device).parameters()`` too), possibly
    inside ``filter(...)``/``list(...)``, or a name assigned one of those."""
    if depth > 4:
        return False
    if isinstance(node, ast.Name) and node.id in names:
        return _all_parameters(names[node.id], names, depth + 1, freezes=freezes)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        # list(encoder.parameters()) + list(decoder.parameters())
        return _all_parameters(node.left, names, depth + 1, freezes=freezes) and _all_parameters(
            node.right, names, depth + 1, freezes=freezes
        )
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute) and node.func.attr == "parameters":
            return not node.args and not node.keywords  # not parameters(recurse=False)
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name == "filter" and len(node.args) == 2:
            # filter(lambda p: "bn" not in ..., ...): a filter that singles out norms; one
            # by requires_grad keeps what the file did not freeze (every norm, unless the
            # file freezes some parameters)
            condition = ast.unparse(node.args[0]).lower()
            words = [w for w in _NORM_WORDS if w != "requires_grad" or freezes]
            if any(w in condition for w in words):
                return False
            return _all_parameters(node.args[-1], names, depth + 1, freezes=freezes)
        if name in ("filter", "list", "tuple") and node.args:
            return _all_parameters(node.args[-1], names, depth + 1, freezes=freezes)
        if name == "chain" and node.args:  # itertools.chain(g.parameters(), d.parameters())
            return all(_all_parameters(a, names, depth + 1, freezes=freezes) for a in node.args)
    if isinstance(node, (ast.ListComp, ast.GeneratorExp)) and len(node.generators) == 1:
        # [p for n, p in model.named_parameters() if not n.startswith("fc.")]: a filter
        # that does not single out norms or biases keeps them
        gen = node.generators[0]
        source = gen.iter
        named = (
            isinstance(source, ast.Call)
            and isinstance(source.func, ast.Attribute)
            and source.func.attr in ("parameters", "named_parameters")
            and not source.args
        )
        conditions = " ".join(ast.unparse(c) for c in gen.ifs).lower()
        return named and not any(w in conditions for w in _NORM_WORDS)
    return False


# words of a parameter filter that separates norm or bias parameters (``"bn" in n``,
# ``p.ndim == 1``, ``"bias" not in n``): such a split is the fix NRM010 asks for
_NORM_WORDS = ("norm", "bn", "bias", "ndim", "shape", "dim()", "gamma", "beta", "ln", "no_decay")
# (``if p.requires_grad`` keeps what the code did not freeze, which may be every norm:
# a filter by it is not read as "every parameter")
_NORM_WORDS += ("requires_grad",)


_NORM_FREE_LAYERS = frozenset(
    {"Linear", "LazyLinear", "Bilinear", "Embedding", "Conv1d", "Conv2d", "Conv3d"}
)


def _norm_free_submodule(params: ast.expr, names: dict[str, ast.expr], index: Any) -> bool:
    """``model.fc.parameters()`` where the file sets ``model.fc = nn.Linear(...)``: the
    parameters of a submodule that the file builds as one norm-free layer."""
    node: ast.expr | None = params
    for _ in range(5):
        if isinstance(node, ast.Name) and node.id in names:
            node = names[node.id]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
            node = node.args[-1]  # filter(...) / list(...)
        else:
            break
    if not (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "parameters"
        and isinstance(node.func.value, ast.Attribute)
    ):
        return False
    target = ast.dump(node.func.value)
    built = [
        stmt.value
        for stmt in tree_facts(index).of(ast.Assign)
        if any(ast.dump(t).replace("Store()", "Load()") == target for t in stmt.targets)
    ]
    return bool(built) and all(
        isinstance(v, ast.Call)
        and (index.qualname(v.func) or "").split(".")[-1] in _NORM_FREE_LAYERS
        for v in built
    )


def _groups_decay_everything(
    node: ast.expr, names: dict[str, ast.expr], *, freezes: bool = False
) -> bool | None:
    """A list of parameter groups ``[{"params": ...}, ...]``: True when every group holds
    all parameters of some module and none sets its own weight_decay (so the optimizer's
    weight decay reaches the norms); None when it is not such a list."""
    if isinstance(node, ast.Name) and node.id in names:
        node = names[node.id]
    if not isinstance(node, (ast.List, ast.Tuple)) or not node.elts:
        return None
    for group in node.elts:
        if not isinstance(group, ast.Dict) or any(k is None for k in group.keys):
            return False
        keys = {
            k.value: v
            for k, v in zip(group.keys, group.values, strict=False)
            if isinstance(k, ast.Constant)
        }
        if "weight_decay" in keys or "params" not in keys:
            return False
        if not _all_parameters(keys["params"], names, freezes=freezes):
            return False
    return True


def _assignments(tree: ast.AST) -> dict[str, ast.expr]:
    """Names assigned exactly once in the file (``params = model.parameters()``)."""
    seen: dict[str, ast.expr] = {}
    twice: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                if target.id in seen:
                    twice.add(target.id)
                seen[target.id] = node.value
    return {k: v for k, v in seen.items() if k not in twice}


def _params_arg(node: ast.Call) -> ast.expr | None:
    if node.args:
        return node.args[0]
    for k in node.keywords:
        if k.arg == "params":
            return k.value
    return None


def _owner(params: ast.expr, names: dict[str, ast.expr]) -> str | None:
    """``model`` in ``model.parameters()`` (through ``filter(...)`` and names)."""
    node: ast.expr | None = params
    for _ in range(5):
        if isinstance(node, ast.Name) and node.id in names:
            node = names[node.id]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
            node = node.args[-1]  # filter(fn, model.parameters()) / list(...)
        else:
            break
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        base = node.func.value
        while isinstance(base, ast.Call) and isinstance(base.func, ast.Attribute):
            base = base.func.value  # net.to(device).parameters()
        if isinstance(base, ast.Name):
            return base.id
    return None


def _constructed(tree: ast.Module, var: str) -> list[ast.expr]:
    """What ``var = X(...)`` assignments of the file call (``.to()``/``.cuda()`` skipped)."""
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign) or not any(
            isinstance(t, ast.Name) and t.id == var for t in node.targets
        ):
            continue
        value = node.value
        while (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Attribute)
            and value.func.attr in ("to", "cuda", "cpu", "float", "half", "train")
        ):
            value = value.func.value
        if isinstance(value, ast.Call):
            out.append(value.func)
    return out


def _imported_without_norms(ctx: FileContext, params: ast.expr, names: dict[str, ast.expr]) -> bool:
    """Whether the optimized model may be a class imported from a sibling file of this one
    that builds no affine norm layer (``from model import RNNModel``). One such candidate
    is enough: a script that builds ``RNNModel`` or ``TransformerModel`` by a flag decays
    norm weights only in one configuration, a run-time choice the finding cannot know.
    Candidates that cannot be read leave the answer False (the finding states its
    assumption)."""
    index = ctx.index
    var = _owner(params, names)
    calls = _constructed(index.tree, var) if var else []
    if not calls or not Path(ctx.path).is_file():
        return False  # stdin or a text with no file: no sibling to read
    for func in calls:
        qual = index.qualname(func) or ""
        module, _, cls = qual.rpartition(".")
        if not module or module.startswith(("torch", "torchvision", "timm")):
            continue
        if _class_has_norms(Path(ctx.path).parent, module, cls) is False:
            return True
    return False


def _class_has_norms(folder: Path, module: str, cls: str) -> bool | None:
    """True/False for a class defined in ``folder/module.py``; None when not found there."""
    from ..extract import BudgetExceeded, ModuleIndex

    base = folder.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            source = path.read_text(encoding="utf-8")
            other = ModuleIndex(ast.parse(source), source)
            info = other.classes.get(cls)
            if info is None:
                return None
            layers = other.instantiate(info).walk()
        except (SyntaxError, ValueError, UnicodeDecodeError, OSError, BudgetExceeded):
            return None
        if other.exhausted:
            return None
        return any(
            layer.norm_kind not in (None, "frozenbn", "lrn")
            or layer.type in ("Custom", "Backbone", "Opaque")  # may hold norms
            for _, layer in layers
        )
    return None


_OPTIMIZER_NAME = re.compile(r"(Adam|SGD|LAMB|Lamb|Lion|RMSprop|Adagrad|Adafactor)")


def _norms_frozen_before(owner: str | None, optimizer: ast.Call, index: Any) -> bool:
    """Before ``optimizer``, a loop over ``owner``'s parameters sets ``requires_grad =
    False`` on all of them, or on all but some that no norm word names (``if name not in
    ["fc.weight", "fc.bias"]``), or by a norm word (either way: not known to decay norms).
    Torch's optimizers skip parameters without a gradient, so the norms are not decayed.
    A loop that freezes only named non-norm parameters (``if "conv" in name``) does not
    count, nor does a file that sets ``requires_grad`` back to True."""
    if owner is None or "requires_grad=True" in index.source.replace(" ", ""):
        return False
    words = [w for w in _NORM_WORDS if w != "requires_grad"]
    for loop in tree_facts(index).of(ast.For):
        if loop.lineno > optimizer.lineno or _iterated_owner(loop.iter) != owner:
            continue
        if _assigned_between(owner, loop, optimizer, index):
            continue  # model.fc = nn.Sequential(..., nn.BatchNorm1d(...)) after it: trained
        if loop.iter.func.attr in ("modules", "named_modules"):  # type: ignore[attr-defined]
            # for m in model.modules(): if isinstance(m, nn.BatchNorm2d): ... = False
            guards = [ast.unparse(n.test).lower() for n in ast.walk(loop) if isinstance(n, ast.If)]
            if any(_sets_requires_grad_false(n) for n in ast.walk(loop)) and any(
                w in g for g in guards for w in words
            ):
                return True
            continue
        for stmt in ast.walk(loop):
            test = stmt.test if isinstance(stmt, ast.If) else None
            body = stmt.body if isinstance(stmt, (ast.If, ast.For)) else []
            if not any(_sets_requires_grad_false(b) for b in body):
                continue
            if test is None:
                return True  # every parameter
            text = ast.unparse(test).lower()
            if any(w in text for w in words):
                return True  # frozen by a norm word, either way: not known to decay norms
            kept = [
                n.value.lower()
                for n in ast.walk(test)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
            ]
            negated = " not " in f" {text} " or text.startswith("not")
            if negated and kept and all(_HEAD.search(name) for name in kept):
                return True  # all but the head (``if name not in ["fc.weight", "fc.bias"]``)
    return False


# the names of a classification head: what a linear evaluation keeps trainable
_HEAD = re.compile(r"^(fc|classifier|head|heads|linear|last_linear|logits)(\.|$)")


def _assigned_between(owner: str, loop: ast.For, optimizer: ast.Call, index: Any) -> bool:
    """``owner.<attr> = ...`` after ``loop`` and before ``optimizer``: a new, trainable part."""
    return any(
        loop.end_lineno is not None
        and loop.end_lineno < node.lineno < optimizer.lineno
        and any(
            isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == owner
            for t in node.targets
        )
        for node in tree_facts(index).of(ast.Assign)
    )


def _iterated_owner(node: ast.expr) -> str | None:
    """``model`` of ``model.parameters()`` / ``model.named_parameters()``."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("parameters", "named_parameters", "modules", "named_modules")
        and isinstance(node.func.value, ast.Name)
    ):
        return node.func.value.id
    return None


def _sets_requires_grad_false(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Assign)
        and any(isinstance(t, ast.Attribute) and t.attr == "requires_grad" for t in stmt.targets)
        and isinstance(stmt.value, ast.Constant)
        and stmt.value.value is False
    )


def _optimizer_like(qual: str, name: str) -> bool:
    """Other libraries' optimizers (``bnb.optim.AdamW8bit``, apex ``FusedAdam``): judged
    only on an explicit ``weight_decay``."""
    return bool(_OPTIMIZER_NAME.search(name)) and (
        ".optim" in qual or "optim." in qual or name.startswith("Fused")
    )


@rule("NRM010")
def weight_decay_on_norm(ctx: FileContext) -> Iterator[Finding]:
    index = ctx.index
    if not any(name in index.source for name in _OPTIMIZERS):
        return
    # The file's own models say whether there are norm parameters to decay; a file that
    # defines none (a training script importing its model) is read as "a model with norms".
    if ctx.models and not _affine_norms(ctx):
        return
    assumed = "" if ctx.models else " (assuming the model has affine norm layers)"
    names: dict[str, ast.expr] | None = None
    freezes = False
    for node in ast.walk(index.tree):
        if not isinstance(node, ast.Call):
            continue
        qual = index.qualname(node.func) or ""
        name = qual.split(".")[-1]
        known = name in _OPTIMIZERS and (
            qual.startswith(("torch.optim.", "optim.", "timm.optim.")) or qual == name
        )
        if not known and not _optimizer_like(qual, name):
            continue
        params = _params_arg(node)
        if params is None:
            continue
        if names is None:
            names = _assignments(index.tree)
            compact = index.source.replace(" ", "")
            # the file freezes some parameters: a requires_grad filter may leave out norms
            freezes = "requires_grad=False" in compact or "requires_grad_(False)" in compact
        decays = _all_parameters(params, names, freezes=freezes)
        if not decays and not _groups_decay_everything(params, names, freezes=freezes):
            continue
        if not ctx.models and _imported_without_norms(ctx, params, names):
            continue
        if _norm_free_submodule(params, names, index):
            continue  # a linear probe: SGD(model.fc.parameters()) after model.fc = Linear(...)
        if freezes and _norms_frozen_before(_owner(params, names), node, index):
            continue  # no gradient, no decay: a linear evaluation of a frozen encoder
        if ctx.models and _file_models_without_norms(ctx, params, names):
            continue
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        opaque = any(k.arg is None for k in node.keywords)  # **opt_kwargs may set it
        if "weight_decay" in kw:
            wd = index.eval(kw["weight_decay"], {}, None)
        elif opaque or len(node.args) > _WD_POSITION.get(name, 1):
            continue  # weight decay from **kwargs or a positional argument: unknown
        else:
            if not known:
                continue  # another library's optimizer: its default decay is not known here
            wd = _OPTIMIZERS[name]
        if wd is UNKNOWN or isinstance(wd, bool) or not isinstance(wd, (int, float)) or wd <= 0:
            continue
        where = Layer(
            name,
            node.lineno,
            node.col_offset,
            "",
            end_line=node.end_lineno,
            end_col=node.end_col_offset,
        )
        default = "" if "weight_decay" in kw else " (AdamW's default)"
        yield finding(
            "NRM010",
            where,
            f"{name}(..., weight_decay={wd}){default} decays every parameter, norm weights and "
            f"biases included{assumed}, which pulls gamma towards 0; pass two parameter groups "
            f"and give norm and bias parameters weight_decay=0 (detectron2 WEIGHT_DECAY_NORM "
            f"= 0).",
        )
