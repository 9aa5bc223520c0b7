"""Rules on single layers and on what flows into them: NRM001-NRM004, NRM009, NRM011, NRM012."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from normsuite.advice import MIN_CHANNELS_PER_GROUP, default_groups

from ..context import FileContext, ModelContext
from ..ir import MAP_BATCH_NORMS, ClassInfo, Layer
from ..shapes import Application
from ..sites import normalizes_length, producer_width_expr, received_channels, same_channel_expr
from ..tree_facts import tree_facts
from ..types import Finding
from . import finding, rule, short
from .arguments import received_channel_count, swapped_group_norm

_SHAPES = {3: "(N, C, L)", 4: "(N, C, H, W)", 5: "(N, C, D, H, W)"}
_LAST_DIM = {3: "L", 4: "W", 5: "W"}


def _unique_layers(ctx: FileContext) -> Iterator[tuple[ModelContext, Layer]]:
    seen: set[int] = set()
    for model in ctx.models:
        for _, layer in model.layers:
            if id(layer) not in seen:
                seen.add(id(layer))
                yield model, layer


def _apps(ctx: FileContext) -> Iterator[tuple[ModelContext, Application]]:
    for model in ctx.models:
        for app in model.apps:
            yield model, app


def _blocks(ctx: FileContext) -> set[str]:
    """File classes that other models of the file build: their standalone analysis (with
    the defaults of their parameters) is not how they are used."""
    used: set[str] = set()
    for model in ctx.models:
        own = model.root.instance.cls.name if model.root.instance is not None else None
        for _, layer in model.layers:
            if layer.instance is not None and layer.instance.cls.name != own:
                used.add(layer.instance.cls.name)
    return used


def _shared_wrapper(ctx: FileContext, via: Layer, feeding: set[int]) -> Layer | None:
    """Another call of ``via``'s class in any model of the file whose output feeds no norm
    (an output layer that needs the bias), or None."""
    assert via.instance is not None
    cls = via.instance.cls
    for model in ctx.models:
        for _, layer in model.layers:
            if layer is via or layer.instance is None or layer.instance.cls is not cls:
                continue
            if id(layer) not in feeding and layer.line != via.line and _biased(layer):
                return layer
    return None


def _biased(wrapper: Layer) -> bool:
    """Whether a call of a wrapper builds a layer with a bias (``ConvKw(64, 64,
    bias=False)`` builds none: that use does not need one)."""
    if wrapper.instance is None:
        return True
    known = [sub.has_bias for _, sub in wrapper.instance.walk() if sub.has_bias is not None]
    return not known or any(known)


def _condition(ctx: FileContext, line: int) -> str | None:
    """The flag of the innermost ``if flag:`` whose body holds ``line`` (``if
    normalize: layers.append(nn.BatchNorm2d(c))``), for a message; None if there is none."""
    best: ast.If | ast.IfExp | None = None
    for node in ast.walk(ctx.index.tree):
        if isinstance(node, ast.IfExp):  # nn.BatchNorm2d(c) if use_bn else nn.Identity()
            inside = node.body.lineno <= line <= (node.body.end_lineno or 0)
        elif isinstance(node, ast.If) and node.body:
            inside = node.body[0].lineno <= line <= (node.body[-1].end_lineno or 0)
        else:
            continue
        if inside and (best is None or node.lineno >= best.lineno):
            best = node
    if best is not None and isinstance(best.test, ast.Name):
        return best.test.id
    if best is not None and isinstance(best.test, ast.Attribute):
        return ast.unparse(best.test)
    return None


def _bias_follows(ctx: FileContext, norm: Layer, producer: Layer) -> str | None:
    """The negation of the condition that makes the norm optional (``if norm_layer is not
    None:`` -> ``norm_layer is None``; ``if use_bn:`` -> ``not use_bn``; ``nn.BatchNorm2d(c)
    if bn else nn.Identity()`` and ``norm = nn.BatchNorm2d if bn else nn.Identity`` ->
    ``not bn``), when the conv is built outside that condition in this file; else None."""
    index = ctx.index if producer.file is None else _home_index(ctx, producer.file)
    if index is None or norm.file != producer.file:
        return None  # (both built in one other file: recbole's MLPLayers(bn=...) in layers.py)
    line = norm.line
    chosen = _chosen_by_flag(index, norm, producer)
    if chosen is not None:
        return chosen
    best: ast.If | None = None
    for node in tree_facts(index).of(ast.If):
        holds = node.body and node.body[0].lineno <= line <= (node.body[-1].end_lineno or 0)
        if holds and (best is None or node.lineno >= best.lineno):
            best = node
    if best is None or best.body[0].lineno <= producer.line <= (best.end_lineno or 0):
        return None  # the conv is inside the same branch: no caller gets one without the other
    if _function_at(index.tree, best.lineno) is not _function_at(index.tree, producer.line):
        return None  # the test is another function's: its names mean nothing at the conv
    test = best.test
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.IsNot)
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value is None
    ):
        return f"{ast.unparse(test.left)} is None"
    if isinstance(test, (ast.Name, ast.Attribute)):
        return f"not {ast.unparse(test)}"
    if _plain_test(test) and _bound_before(index.tree, test, producer.line):
        # ``if batch_norm and idx < len(sizes) - 2:`` in the loop that builds the Linear:
        # the last one (the output layer) has no norm after it and keeps its bias
        return f"not ({ast.unparse(test)})"
    if _plain_test(test):  # reads a name bound after the Linear: no code to write there
        return _Prose(f"a bias exactly where the test at line {best.lineno} is false")
    return None


def _function_at(tree: ast.Module, line: int) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The innermost function whose body holds ``line``."""
    holding = [
        f
        for f in ast.walk(tree)
        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
        and f.lineno <= line <= (f.end_lineno or 0)
    ]
    return max(holding, key=lambda f: f.lineno, default=None)


class _Prose(str):
    """A fix said in words where no expression can be written at the layer's call."""


def _bound_before(tree: ast.Module, test: ast.expr, line: int) -> bool:
    """Every name ``test`` reads is bound before ``line`` in the function that holds it (a
    parameter, an assignment or a loop variable above it), so the Linear's call can read
    it; module-level names and builtins (``len``) count as bound."""
    function = _function_at(tree, line)
    if function is None:
        return True
    args = function.args
    bound = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    stored: dict[str, int] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            stored[node.id] = min(stored.get(node.id, node.lineno), node.lineno)
    return not any(
        isinstance(node, ast.Name) and node.id not in bound and stored.get(node.id, 0) >= line
        for node in ast.walk(test)
    )


_PLAIN_TEST = (
    *(ast.BoolOp, ast.Compare, ast.UnaryOp, ast.BinOp, ast.Name, ast.Attribute, ast.Constant),
    *(ast.boolop, ast.cmpop, ast.unaryop, ast.operator, ast.expr_context),
)


def _plain_test(test: ast.expr) -> bool:
    """A test made of names, constants, comparisons and ``len()``: one the producer's
    call can repeat as its ``bias=`` (not a call with effects)."""
    for node in ast.walk(test):
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id == "len"):
                return False
        elif not isinstance(node, _PLAIN_TEST):
            return False
    return True


def _linear_features_on_dim1(app: Any) -> bool:
    """The norm's channel axis (dim 1) is the Linear's feature axis: BatchNorm1d (or a
    SyncBN) on a rank-2 (or untraced) input."""
    if app.layer.norm_kind == "in" or app.layer.type in MAP_BATCH_NORMS:
        return False
    return app.inp.rank in (None, 2)


def _called_twice(model: ModelContext, path: str | None) -> bool:
    """The module at ``path`` (or a wrapper around it) is called at two places of its
    owner's ``forward``: ``za = self.bn(self.proj(a)); zb = self.proj(b)`` keeps one output
    raw, which needs the bias. Calling a Sequential twice changes nothing inside it."""
    if not path:
        return False
    by_path = dict(model.layers)
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        attr = parts[cut - 1]
        owner_path = ".".join(parts[: cut - 1])
        owner = by_path.get(owner_path) if owner_path else model.root
        if getattr(owner, "type", None) in ("Sequential", "ModuleList", "ModuleDict"):
            return False  # inside a Sequential the output always goes to the next layer
        inst = getattr(owner, "instance", None)
        forward = inst.cls.method("forward") if inst is not None else None
        if forward is None:
            continue
        sites = [
            n
            for n in ast.walk(forward)
            if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr == attr
            and isinstance(n.func.value, ast.Name)
            and n.func.value.id == "self"
        ]
        if len(sites) > 1:
            return True
    return False


def _home_index(ctx: FileContext, label: str) -> Any:
    """The index of the project file a layer was built in (its ``file`` label)."""
    view = ctx.index.project
    indexes = getattr(getattr(view, "project", None), "_indexes", {})
    return next((i for i in indexes.values() if getattr(i, "label", None) == label), None)


def _chosen_by_flag(index: Any, norm: Layer, producer: Layer) -> str | None:
    """A norm picked by a ternary against an identity (torchvision's ``make_layers``
    idiom): ``nn.BatchNorm2d(c) if bn else nn.Identity()`` at the norm's call, or
    ``norm = nn.BatchNorm2d if bn else nn.Identity`` (or the same ``if``/``else``
    statement) for a norm built as ``norm(c)``: the bias must follow ``bn``."""
    facts = tree_facts(index)
    for node in facts.of(ast.IfExp):
        if not _spans(node, norm.line, norm.col) or _spans(node, producer.line, producer.col):
            continue
        in_body = _spans(node.body, norm.line, norm.col)
        other = node.orelse if in_body else node.body
        if _identity(other) and isinstance(node.test, (ast.Name, ast.Attribute)):
            flag = ast.unparse(node.test)
            return f"not {flag}" if in_body else flag
    called = norm.code.split("(", 1)[0].strip()
    if not called.isidentifier():
        return None
    for node in facts.of(ast.Assign):
        target = node.targets[0] if len(node.targets) == 1 else None
        if not (isinstance(target, ast.Name) and target.id == called):
            continue
        value = node.value
        if (
            isinstance(value, ast.IfExp)
            and isinstance(value.test, (ast.Name, ast.Attribute))
            and node.lineno < norm.line
        ):
            if _identity(value.orelse):
                return f"not {ast.unparse(value.test)}"
            if _identity(value.body):
                return ast.unparse(value.test)
    for node in facts.of(ast.If):
        if not isinstance(node.test, (ast.Name, ast.Attribute)) or node.lineno > norm.line:
            continue
        sides = [(node.body, True), (node.orelse, False)]
        assigned = {
            taken: stmt.value
            for body, taken in sides
            for stmt in body
            if isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and stmt.targets[0].id == called
        }
        if len(assigned) == 2 and _identity(assigned[False]):
            return f"not {ast.unparse(node.test)}"
        if len(assigned) == 2 and _identity(assigned[True]):
            return ast.unparse(node.test)
    return None


def _spans(node: ast.AST, line: int, col: int) -> bool:
    start = (node.lineno, node.col_offset)  # type: ignore[attr-defined]
    end = (node.end_lineno or node.lineno, node.end_col_offset or 0)  # type: ignore[attr-defined]
    return start <= (line, col) < end


def _identity(node: ast.expr) -> bool:
    """``nn.Identity`` / ``nn.Identity()`` / ``None``: no norm on that side."""
    if isinstance(node, ast.Constant) and node.value is None:
        return True
    if isinstance(node, ast.Call):
        node = node.func
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return name == "Identity"


def _enclosing_function(ctx: FileContext, line: int) -> str | None:
    """The module-level function of the file whose body holds ``line`` (a layer helper)."""
    for name, fn in ctx.index.functions.items():
        if fn.lineno <= line <= (fn.end_lineno or fn.lineno):
            return name
    return None


def _bias_names(layer: Layer) -> set[str]:
    """The names (and dotted attributes) read by the ``bias=`` argument of a layer's call."""
    try:
        call = ast.parse(layer.code.strip(), mode="eval").body
    except SyntaxError:
        return set()
    if not isinstance(call, ast.Call):
        return set()
    names: set[str] = set()
    for kw in call.keywords:
        if kw.arg == "bias":
            for n in ast.walk(kw.value):
                if isinstance(n, ast.Name):
                    names.add(n.id)
                elif isinstance(n, ast.Attribute):
                    names.add(ast.unparse(n))
    return names


def _bias_call_site(model: ModelContext, producer: Layer) -> tuple[Layer, str] | None:
    """(the call of the file's module that decides ``producer``'s bias, the parameter
    name) when the bias is that module's argument (``nn.Conv2d(..., bias=bias)``) and the
    call passes it by keyword: the fix belongs there, not in the shared module. Follows a
    chain of such arguments up (``ConvLayer(use_bias=use_bias[0])`` inside a block whose
    caller passes ``use_bias=(True, False)``)."""
    m = re.search(r"\bbias=(\w+)", producer.code)
    if m is None and "**" in producer.code:
        # nn.Conv2d(cin, cout, k, **kwargs) inside a block: the caller decides, by keyword
        caller = _owner_call(model, producer, None)
        return (caller, "bias") if caller is not None else None
    if m is None or m.group(1) in ("True", "False"):
        return None
    current, param = producer, m.group(1)
    found: tuple[Layer, str] | None = None
    for _ in range(6):
        caller = _owner_call(model, current, param)
        if caller is None:
            break
        found = (caller, param)
        up = re.search(rf"\b{re.escape(param)}=(\w+)", caller.code)
        if up is None or up.group(1) in ("True", "False"):
            break
        current, param = caller, up.group(1)
    return found


def _set_in_another_file(caller: Layer, param: str) -> bool:
    """``caller`` is built in another file, under a call of this file whose module takes
    no ``param`` (nor ``**kwargs``): the value is fixed inside that other file (nnU-Net's
    ``PatchEmbedDeeper`` builds ``Stack(..., True, ...)``), and "pass conv_bias=False here"
    would name a parameter the call does not have."""
    anchor = caller.anchor
    if caller.file is None or anchor is None or anchor is caller or anchor.instance is None:
        return False
    init = anchor.instance.cls.method("__init__")
    if init is None or init.args.kwarg is not None:
        return False
    names = [p.arg for p in [*init.args.posonlyargs, *init.args.args, *init.args.kwonlyargs]]
    return param not in names


def _what(layer: Layer) -> str:
    """```nn.ReLU()``` (line 9) as written, or "another layer" for one the analysis read
    without its call (an activation a helper of another file returns): no name, and no
    line that could belong to the wrong file."""
    return f"`{short(layer.code)}` ({_at(layer)})" if layer.code else "another layer"


def _at(layer: Layer) -> str:
    """``line 9``, or ``layers.py:9`` for a layer another file builds."""
    return f"{layer.file}:{layer.line}" if layer.file else f"line {layer.line}"


def _carrier(cls: ClassInfo, param: str) -> str:
    """How a module class receives ``param``: "`bias` argument" or "**kwargs"."""
    init = cls.method("__init__")
    named = init is not None and any(
        p.arg == param for p in [*init.args.posonlyargs, *init.args.args, *init.args.kwonlyargs]
    )
    return f"`{param}` argument" if named else "**kwargs"


def _owner_call(model: ModelContext, child: Layer, param: str | None) -> Layer | None:
    """The call of a file module whose direct child is ``child`` and whose ``__init__``
    takes ``param`` (None: takes ``**kwargs``), whatever the call passes for it."""
    for _, layer in model.layers:
        inst = layer.instance
        if inst is None:
            continue
        if param is None:
            init = inst.cls.method("__init__")
            if init is None or init.args.kwarg is None:
                continue
            if f"**{init.args.kwarg.arg}" not in child.code:
                continue  # the conv takes another dict (**conv_cfg): the call cannot set it
        elif not _has_parameter(inst.cls, param):
            continue  # (passed or left at its default: the call decides either way)
        if any(c is child for _, c in inst.layers()) or any(
            c is child for _, sub in inst.layers() for c in sub.children
        ):
            return layer
    return None


def _has_parameter(cls: ClassInfo, name: str) -> bool:
    """``name`` is a parameter of the class's ``__init__``, or ``**kwargs`` may carry it."""
    init = cls.method("__init__")
    if init is None:
        return False
    a = init.args
    return a.kwarg is not None or any(
        p.arg == name for p in [*a.posonlyargs, *a.args, *a.kwonlyargs]
    )


@rule("NRM001")
def bias_before_batch_norm(ctx: FileContext) -> Iterator[Finding]:
    """A conv/linear with bias whose output goes only into BN or IN."""
    blocks = _blocks(ctx)
    reads: dict[int, int] = ctx.index.memo.get("flow_reads", {})
    # Wrapper calls (``PadConv(3, 32, 9)``) whose output feeds such a norm, file-wide.
    feeding = {
        id(a.inp.via)
        for m in ctx.models
        for a in m.apps
        if a.inp.via is not None and a.layer.norm_kind in ("bn", "syncbn", "in")
    }
    for model in ctx.models:
        if model.root.instance is not None and model.root.instance.cls.name in blocks:
            continue  # judged where it is built, with its callers' arguments
        norm_apps = [a for a in model.apps if a.layer.norm_kind in ("bn", "syncbn", "in")]
        # The same constructor call feeding a layer that is no such norm (``conv`` put
        # before BN in one branch and before ReLU in the other): the bias is needed there.
        plain_use = {
            (a.inp.producer.line, a.inp.producer.col): a.layer
            for a in model.apps
            if a.inp.producer is not None and a.layer.norm_kind not in ("bn", "syncbn", "in")
        }
        # Layers applied whose output feeds no such norm: an output layer built by the same
        # helper (``conv3x3(64, n_cls)``) needs the bias the others do not.
        normed = {id(a.inp.producer) for a in norm_apps if a.inp.producer is not None}
        unnormed = {
            (a.layer.line, a.layer.col): a.layer
            for a in model.apps
            if a.layer.has_bias is True and id(a.layer) not in normed
        }
        paths = {id(layer): path for path, layer in model.layers}
        for app in norm_apps:
            producer = app.inp.producer
            if producer is None or producer.has_bias is not True:
                continue
            if reads.get(id(app.inp), 0) > 1:
                continue  # the biased output also reaches another consumer
            width, channels = producer.out_channels, app.layer.num_channels
            mismatch = width is not None and channels is not None and width != channels
            if mismatch and app.layer.norm_kind == "in":
                # InstanceNorm1d(1) on a Linear's (N, 1, F) output normalizes over F: the
                # bias varies along the normalized axis and is not cancelled (a BatchNorm
                # built for other channels raises instead: NRM011, and NRM001 holds once
                # it is fixed)
                continue
            if producer.type in ("Linear", "LazyLinear") and not _linear_features_on_dim1(app):
                # A Linear's features are its output's last axis. BN/IN normalize per dim-1
                # channel: only on (N, C) is that the Linear's axis. InstanceNorm1d on (N, C)
                # (read as unbatched (C, L)), BatchNorm2d(1) on (N, 1, T, F) or BN1d on
                # (N, T, F) normalize along the features, where the bias varies: not
                # cancelled (delightful_tts' prosody predictor, voicefixer's denoiser)
                continue
            if _called_twice(model, paths.get(id(producer))):
                continue  # a second call of the same module may keep its output raw (siamese)
            via = app.inp.via
            site = _bias_call_site(model, producer)
            follows = _bias_follows(ctx, app.layer, producer) if site is not None else None
            if site is not None and follows == f"not {site[1]}":
                # bias=use_bn with the norm built only if use_bn: the flag turns the bias on
                # exactly when the norm cancels it; passing use_bn=False would drop the norm
                yield finding(
                    "NRM001",
                    producer,
                    f"`{short(producer.code)}` keeps its bias exactly when "
                    f"`{short(app.layer.code)}` follows and cancels it (BN paper s3.2): the "
                    f"bias follows `{site[1]}` the wrong way round; make it bias={follows}.",
                    model.name,
                )
                continue
            if site is not None:
                caller, param = site
                assert caller.instance is not None
                if _set_in_another_file(caller, param):
                    continue  # reported in the file that sets it, where the fix goes
                value = caller.kwargs.get(param)
                fix = (
                    f"pass {param}=False here"
                    if isinstance(value, bool) or param not in caller.kwargs
                    else f"pass a `{param}` here that turns that bias off"
                )
                yield finding(
                    "NRM001",
                    caller,
                    f"`{short(caller.code)}` builds `{short(producer.code)}` ({_at(producer)}) "
                    f"with a bias that `{short(app.layer.code)}` cancels "
                    f"(BN paper s3.2): {caller.instance.cls.name} takes it from its "
                    f"{_carrier(caller.instance.cls, param)}, so {fix}.",
                    model.name,
                )
                continue
            also = plain_use.get((producer.line, producer.col))
            if also is not None and app.inp.via is None:
                flag = _condition(ctx, app.layer.line)
                if flag is not None and flag in _bias_names(producer):
                    continue  # bias=not use_bn: already the fix this finding asks for
                follows = f" (bias=not {flag})" if flag else ""
                yield finding(
                    "NRM001",
                    producer,
                    f"`{short(producer.code)}` feeds `{short(app.layer.code)}`, whose mean "
                    f"subtraction cancels the bias (BN paper s3.2), but it also feeds "
                    f"{_what(also)}, which keeps it: pass a bias "
                    f"that depends on whether the norm follows{follows}.",
                    model.name,
                )
                continue
            twin = unnormed.get((producer.line, producer.col))
            if twin is not None and twin is not producer and via is None and producer.file is None:
                helper = _enclosing_function(ctx, producer.line)
                where = f"{helper}()" if helper else "the same constructor call"
                fix = f"give {helper} a `bias` parameter" if helper else "make the bias a parameter"
                yield finding(
                    "NRM001",
                    producer,
                    f"`{short(producer.code)}` feeds `{short(app.layer.code)}`, whose mean "
                    f"subtraction cancels the bias (BN paper s3.2), but {where} also builds "
                    f"`{paths.get(id(twin), short(twin.code))}`, which feeds no norm and "
                    f"needs its bias: {fix} and pass bias=False where a norm follows.",
                    model.name,
                )
                continue
            other = _shared_wrapper(ctx, via, feeding) if via is not None else None
            if via is not None and other is not None:
                assert via.instance is not None
                name = via.instance.cls.name
                fix = (
                    "pass bias=False here"
                    if _has_parameter(via.instance.cls, "bias")
                    else f"give {name} a `bias` parameter and pass bias=False here"
                )
                yield finding(
                    "NRM001",
                    via,
                    f"`{short(via.code)}` feeds `{short(app.layer.code)}`, whose mean "
                    f"subtraction cancels the bias of its `{short(producer.code)}` "
                    f"({_at(producer)}, BN paper s3.2); {name} is also used without a norm "
                    f"after it (line {other.line}), which needs the bias: {fix}.",
                    model.name,
                )
                continue
            negated = _bias_follows(ctx, app.layer, producer)
            if negated is not None:
                # the norm is optional (torchvision's ConvNormActivation: ``if norm_layer
                # is not None``): a caller without it needs the bias, so no bias=False
                yield finding(
                    "NRM001",
                    producer,
                    f"`{short(producer.code)}` feeds `{short(app.layer.code)}`, whose mean "
                    f"subtraction cancels the bias (BN paper s3.2); the norm is optional "
                    f"here, so make the bias follow it: "
                    f"{negated if isinstance(negated, _Prose) else f'bias={negated}'}.",
                    model.name,
                )
                continue
            yield finding(
                "NRM001",
                producer,
                f"`{short(producer.code)}` feeds `{short(app.layer.code)}`, whose mean "
                f"subtraction cancels the bias (BN paper s3.2): pass bias=False to the "
                f"{producer.type}.",
                model.name,
            )


def _named(layer: Layer, plain: str) -> str:
    """``nn.LayerNorm(64)``, or the call as written when it is a subclass or a variable
    (``FP32LayerNorm(d)``, a LayerNorm subclass)."""
    code = short(layer.code)
    if code.split("(")[0].split(".")[-1] == layer.type:
        return plain
    return f"`{code}` (a {layer.type})"


@rule("NRM002")
def ln_on_conv_feature_map(ctx: FileContext) -> Iterator[Finding]:
    """nn.LayerNorm(C) / nn.RMSNorm(C) on a channels-first conv feature map."""
    blocks = _blocks(ctx)
    for model, app in _apps(ctx):
        if model.root.instance is not None and model.root.instance.cls.name in blocks:
            continue  # a norm_layer default its callers replace is not how it is used
        layer, t = app.layer, app.inp
        if layer.type not in ("LayerNorm", "RMSNorm") or t.kind not in ("map", "seq"):
            continue
        shape = layer.arg("normalized_shape")
        if isinstance(shape, (list, tuple)):
            if len(shape) != 1:
                continue
            shape = shape[0]
        if t.rank is None or t.rank < 3 or t.last is not False or t.cdim != 1:
            continue
        if not isinstance(shape, int):
            # nn.LayerNorm(cout) right after nn.Conv2d(cin, cout): the same channel
            # expression, whatever its value (a parameter without a default)
            shape = same_channel_expr(model, layer, t) if t.kind == "map" else None
            if shape is None:
                continue
        if t.kind == "seq" and (t.rank != 3 or t.channels != shape):
            continue  # tokens moved channels-first: only when dim 1 holds exactly the C
        dims = _SHAPES.get(t.rank, "(N, C, ...)")
        what = "conv feature map" if t.kind == "map" else "tensor (channels first)"
        name = layer.type
        gn = (
            f"nn.GroupNorm({default_groups(shape)}, {shape})"
            if isinstance(shape, int)
            else f'build_norm("gn", {shape})'
        )
        yield finding(
            "NRM002",
            layer,
            f"{_named(layer, f'nn.{name}({shape})')} is applied to a {dims} {what}: "
            f"it normalizes the "
            f"last dim ({_LAST_DIM.get(t.rank, 'last')}), not the {shape} channels, and fails "
            f"unless that dim happens to be {shape}. For a CNN use {gn} or BatchNorm (B5); "
            f'for channel LayerNorm permute to channels-last around it or use build_norm("ln", '
            f"{shape}).",
            model.name,
        )


@rule("NRM003")
def group_norm_indivisible(ctx: FileContext) -> Iterator[Finding]:
    """GroupNorm(G, C) with C % G != 0."""
    for model, layer in _unique_layers(ctx):
        if layer.type != "GroupNorm":
            continue
        g, c = layer.arg("num_groups"), layer.num_channels
        if not isinstance(g, int) or not isinstance(c, int) or g < 1 or c % g == 0:
            continue
        if swapped_group_norm(layer, received_channel_count(model, layer)) is not None:
            continue  # GroupNorm(C, G): NRM014 says the arguments are swapped
        yield finding(
            "NRM003",
            layer,
            f"GroupNorm({g}, {c}): {c} channels do not split into {g} groups (PyTorch raises "
            f"'num_channels must be divisible by num_groups'); use nn.GroupNorm("
            f"{default_groups(c)}, {c}).",
            model.name,
        )


@rule("NRM004")
def group_norm_too_few_channels(ctx: FileContext) -> Iterator[Finding]:
    """GroupNorm with < 4 channels per group, except the paper's G = 32 and G == C."""
    for model, layer in _unique_layers(ctx):
        if layer.type != "GroupNorm":
            continue
        g, c = layer.arg("num_groups"), layer.num_channels
        if not isinstance(g, int) or not isinstance(c, int) or g < 1 or c < 1 or c % g:
            continue
        per_group = c // g
        if per_group >= MIN_CHANNELS_PER_GROUP or g == 32 or g == c:
            continue
        better = default_groups(c)
        if better == g:
            continue  # too few channels for any better grouping: GroupNorm(1, 3) stays
        # G=32 is named only where default_groups picks it (C >= 64): on 32 channels it
        # would be InstanceNorm.
        paper = ", the paper's G=32" if better == 32 else ""
        yield finding(
            "NRM004",
            layer,
            f"GroupNorm({g}, {c}) has {per_group} channel(s) per group; below 4 GN drifts "
            f"towards InstanceNorm (GN paper Table 3: 2 per group 25.6%, 4 per group 24.8%, "
            f"G=32 24.1% error). Use nn.GroupNorm({better}, {c}){paper}.",
            model.name,
        )


@rule("NRM009")
def batch_norm_momentum_inverted(ctx: FileContext) -> Iterator[Finding]:
    """BN momentum > 0.5: a TensorFlow/Keras momentum pasted into PyTorch."""
    for model, layer in _unique_layers(ctx):
        if layer.norm_kind not in ("bn", "syncbn", "in"):
            continue
        m = layer.arg("momentum")
        if isinstance(m, bool) or not isinstance(m, (int, float)) or m <= 0.5:
            continue
        tracks = layer.arg("track_running_stats", layer.norm_kind != "in")
        if tracks is not True:
            continue  # no running statistics (InstanceNorm's default): momentum is unused
        yield finding(
            "NRM009",
            layer,
            f"momentum={m} makes the running statistics take {m * 100:.4g}% of each new batch "
            f"(PyTorch: running = (1 - momentum) * running + momentum * batch), so they "
            f"follow the last batch; Keras/TF momentum {m} is PyTorch momentum "
            f"{round(1 - m, 4)}. Use momentum={round(1 - m, 4)} (or the default 0.1).",
            model.name,
        )


@rule("NRM011")
def norm_channel_mismatch(ctx: FileContext) -> Iterator[Finding]:
    """A norm's channel count differs from what the previous layer produces."""
    for model, app in _apps(ctx):
        layer, t = app.layer, app.inp
        expected = layer.num_channels
        received = received_channels(model, layer, t)
        if received is None or swapped_group_norm(layer, received) is not None:
            continue  # GroupNorm(C, G) swapped: NRM014 says so, with its own fix
        name = layer.type
        fixed = _with_channels(layer, str(received)) if expected is not None else None
        use = fixed or f"{name}({received})"
        widths = model.site_widths.get((layer.line, layer.col), set()) - {None}
        expr = producer_width_expr(model, layer, t) if len(widths) > 1 else None
        built = _first_argument(layer.code)
        if expr is not None and built is not None:
            # one line builds every width (BatchNorm2d(cin) in a block): the fix is the
            # expression of the width it receives, right for each instance
            use = _with_channels(layer, expr) or use
        defaults = _defaulted_parameters(model)
        if not defaults:
            yield finding(
                "NRM011",
                layer,
                f"{name}({expected}) receives {received} channels from the previous layer; "
                f"use {use}.",
                model.name,
            )
            continue
        # The widths were computed from default arguments the analyzer filled in (the model
        # is analyzed as ``Model()``): the user may always pass others, so this is no error
        # from an assumed width, and the fix may belong in the defaults.
        shown = ", ".join(defaults[:4]) + (", ..." if len(defaults) > 4 else "")
        yield replace(
            finding(
                "NRM011",
                layer,
                f"built with its default arguments ({model.name}({shown})), {name}({expected}) "
                f"receives {received} channels from the previous layer: use {use}, or make "
                "the defaults agree if the model is always built with other arguments.",
                model.name,
            ),
            severity="warning",
        )


# where each norm type takes its channel count: (position, keyword)
_CHANNEL_PARAM = {"GroupNorm": (1, "num_channels"), "LayerNorm": (0, "normalized_shape")}


def _with_channels(layer: Layer, new: str) -> str | None:
    """The layer's call with its channel count replaced by ``new`` (``nn.BatchNorm2d(c)``
    -> ``nn.BatchNorm2d(2 * c)``, ``nn.GroupNorm(8, 64)`` -> ``nn.GroupNorm(8, 128)``,
    ``num_features=64`` -> ``num_features=128``); None where it cannot be found. A text
    replace would hit the name's own letters (``nn.Bat2 * chNorm2d(c)``)."""
    code = layer.code.strip()
    try:
        call = ast.parse(code, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(call, ast.Call):
        return None
    position, keyword = _CHANNEL_PARAM.get(layer.type, (0, "num_features"))
    arg = next((k.value for k in call.keywords if k.arg == keyword), None)
    if arg is None and len(call.args) > position:
        arg = call.args[position]
    if arg is None or isinstance(arg, ast.Starred):
        return None
    lines = code.splitlines(keepends=True)
    start = sum(len(line) for line in lines[: arg.lineno - 1]) + arg.col_offset
    end_line = arg.end_lineno or arg.lineno
    end = sum(len(line) for line in lines[: end_line - 1]) + (arg.end_col_offset or 0)
    return code[:start] + new + code[end:]


def _first_argument(code: str) -> str | None:
    """The source of a call's first positional argument (``cin`` in ``nn.BatchNorm2d(cin)``)."""
    try:
        call = ast.parse(code.strip(), mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(call, ast.Call) or not call.args or isinstance(call.args[0], ast.Starred):
        return None
    return ast.unparse(call.args[0])


def _defaulted_parameters(model: ModelContext) -> list[str]:
    """``name=default`` for each ``__init__`` parameter of the analyzed model that has a
    default (the analyzer builds the model as ``Model()``)."""
    inst = model.root.instance
    init = inst.cls.method("__init__") if inst is not None else None
    if init is None:
        return []
    a = init.args
    positional = [*a.posonlyargs, *a.args]
    pairs = list(zip(positional[len(positional) - len(a.defaults) :], a.defaults, strict=True))
    pairs += [(p, d) for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None]
    return [f"{p.arg}={ast.unparse(d)}" for p, d in pairs if p.arg != "self"]


@rule("NRM012")
def batch_norm_1d_on_sequence(ctx: FileContext) -> Iterator[Finding]:
    """BatchNorm1d on (N, L, C): it normalizes dim 1 (L), not C."""
    for model, app in _apps(ctx):
        layer, t = app.layer, app.inp
        if not normalizes_length(layer, t):
            continue
        c = layer.num_channels or t.channels or "C"
        yield finding(
            "NRM012",
            layer,
            f"{layer.type}({c}) is applied to an (N, L, C) tensor with channels last, but it "
            f"normalizes dim 1: use x.transpose(1, 2) before and after it, or nn.LayerNorm({c}) "
            f"for sequences (B6, B7).",
            model.name,
        )
