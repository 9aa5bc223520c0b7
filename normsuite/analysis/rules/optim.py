"""NRM010: weight decay applied to all parameters, norm weights and biases included."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from ..context import FileContext
from ..ir import UNKNOWN, Layer
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
    "LAMB": 0.0,
    "Lamb": 0.0,
}


def _affine_norms(ctx: FileContext) -> bool:
    for model in ctx.models:
        for _, layer in model.norm_layers():
            if layer.norm_kind in ("frozenbn", "lrn"):
                continue
            if layer.arg("affine", True) is False or layer.arg("elementwise_affine", True) is False:
                continue
            if layer.norm_kind == "in" and layer.arg("affine", False) is not True:
                continue  # InstanceNorm has no affine parameters by default
            return True
    return False


def _all_parameters(node: ast.expr) -> bool:
    """``model.parameters()`` / ``self.parameters()``, possibly inside filter(...)/list(...)."""
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute) and node.func.attr == "parameters":
            return True
        if isinstance(node.func, ast.Name) and node.func.id in ("filter", "list") and node.args:
            return _all_parameters(node.args[-1])
    return False


@rule("NRM010")
def weight_decay_on_norm(ctx: FileContext) -> Iterator[Finding]:
    if not ctx.models or not _affine_norms(ctx):
        return
    index = ctx.index
    if not any(name in index.source for name in _OPTIMIZERS):
        return
    for node in ast.walk(index.tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        qual = index.qualname(node.func) or ""
        name = qual.split(".")[-1]
        if name not in _OPTIMIZERS or not (
            qual.startswith(("torch.optim.", "optim.", "timm.optim.")) or qual == name
        ):
            continue
        if not _all_parameters(node.args[0]):
            continue
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        wd = index.eval(kw["weight_decay"], {}, None) if "weight_decay" in kw else _OPTIMIZERS[name]
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
            f"biases included, which pulls gamma towards 0; pass two parameter groups and give "
            f"norm and bias parameters weight_decay=0 (detectron2 WEIGHT_DECAY_NORM = 0).",
        )
