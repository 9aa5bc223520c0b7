"""Classes of the file that derive from a torch layer keep the layer's meaning.

``class GroupNorm32(nn.GroupNorm)`` is a GroupNorm, ``class FP32LayerNorm(nn.LayerNorm)``
a LayerNorm, ``class MyCell(nn.LSTMCell)`` an LSTMCell: a call of such a class builds a
layer of the torch type. When the subclass (or a file class between it and torch) has its
own ``__init__``, the arguments are those it passes to ``super().__init__``.

>>> import ast
>>> from normsuite.analysis.extract import ModuleIndex
>>> src = '''
... import torch.nn as nn
... class GN(nn.GroupNorm):
...     def __init__(self, c):
...         super().__init__(32, c)
... class M(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.norm = GN(64)
... '''
>>> index = ModuleIndex(ast.parse(src), src)
>>> norm = index.instantiate(index.classes["M"]).attrs["norm"]
>>> norm.type, norm.num_channels, norm.arg("num_groups")
('GroupNorm', 64, 32)
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .ir import UNKNOWN, UNKNOWN_KWARGS

if TYPE_CHECKING:
    from .extract import ModuleIndex


@dataclass(frozen=True)
class TorchSubclass:
    """A file class whose nearest torch base is the layer ``type``."""

    type: str
    inits: tuple[ast.FunctionDef, ...]  # own ``__init__``s, from the class towards torch

    def bind(
        self, index: ModuleIndex, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments the torch base's ``__init__`` receives."""
        for init in self.inits:
            env = index._bind(init, (UNKNOWN, *args), kwargs)
            call = _super_init(init)
            if call is None:
                return (), {UNKNOWN_KWARGS: UNKNOWN}  # no visible super().__init__(...)
            new_args, new_kwargs = index._args(call, env, None)
            if new_args is None:
                return (), {UNKNOWN_KWARGS: UNKNOWN}
            if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name):
                new_args = new_args[1:]  # Base.__init__(self, ...)
            args, kwargs = new_args, new_kwargs or {}
        return args, kwargs


def _super_init(fn: ast.FunctionDef) -> ast.Call | None:
    for node in ast.walk(fn):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "__init__"
        ):
            return node
    return None


def _own_meaning(layer_type: str, forward: ast.FunctionDef | None) -> str:
    """A LayerNorm subclass whose own ``forward`` moves the channels to the last dim and
    calls ``F.layer_norm`` itself (SegFormer's LayerNorm on (N, C, H, W)) is a channel
    LayerNorm; one that calls ``super().forward`` keeps torch's meaning."""
    if forward is None or layer_type not in ("LayerNorm", "RMSNorm"):
        return layer_type
    names = {
        n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
        for n in ast.walk(forward)
        if isinstance(n, ast.Call)
    }
    moves = bool(names & {"permute", "transpose", "movedim", "mean"})
    if not moves:
        return layer_type  # e.g. super().forward(x.float()): torch's computation
    # Its own channel statistics (permuted, or mean over dim 1), possibly beside a
    # super().forward branch for channels-last input (HF ConvNextLayerNorm): a channel LN.
    return "LayerNorm2d" if layer_type == "LayerNorm" else "RMSNorm2d"


def torch_subclass(index: ModuleIndex, name: str, layer_type_of: Any) -> TorchSubclass | None:
    """The torch layer that file class ``name`` derives from (through file classes)."""
    inits: list[ast.FunctionDef] = []
    forward: ast.FunctionDef | None = None  # the nearest own forward
    seen: set[str] = set()
    while name in index.class_nodes and name not in seen:
        seen.add(name)
        node = index.class_nodes[name]
        init = next(
            (n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"),
            None,
        )
        if init is not None:
            inits.append(init)
        if forward is None:
            forward = next(
                (n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "forward"),
                None,
            )
        bases = [q for q in (index.qualname(b) for b in node.bases) if q]
        for base in bases:
            layer_type = layer_type_of(base)
            if layer_type is not None and base not in index.class_nodes:
                return TorchSubclass(_own_meaning(layer_type, forward), tuple(inits))
        name = next((b for b in bases if b in index.class_nodes), "")
    return None


__all__ = ["TorchSubclass", "torch_subclass"]
