"""What a torch layer subclass means when it overrides ``forward``.

``symbols.TorchSubclass`` gives ``class GroupNorm32(nn.GroupNorm)`` its parent's meaning.
A LayerNorm subclass whose own ``forward`` moves the channels last (or takes their mean)
and normalizes them itself, as SegFormer's ``LayerNorm`` on (N, C, H, W) maps or Hugging
Face's ``ConvNextLayerNorm`` with ``data_format="channels_first"``, is a channel LayerNorm
(``LayerNorm2d``); one that calls ``super().forward(x.float())`` keeps torch's meaning.

>>> import ast
>>> node = ast.parse('''
... class LN(nn.LayerNorm):
...     def forward(self, x):
...         return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape).permute(0, 3, 1, 2)
... ''').body[0]
>>> subclass_meaning("LayerNorm", node), subclass_meaning("GroupNorm", node)
('LayerNorm2d', 'GroupNorm')
"""

from __future__ import annotations

import ast

_MOVES = frozenset({"permute", "transpose", "movedim", "mean"})


def subclass_meaning(layer_type: str, node: ast.ClassDef) -> str:
    """The layer type a subclass of ``layer_type`` defined by ``node`` behaves as."""
    if layer_type not in ("LayerNorm", "RMSNorm"):
        return layer_type
    forward = next(
        (n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "forward"), None
    )
    if forward is None:
        return layer_type
    names = {
        n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
        for n in ast.walk(forward)
        if isinstance(n, ast.Call)
    }
    if not names & _MOVES:
        return layer_type  # e.g. super().forward(x.float()): torch's computation
    return "LayerNorm2d" if layer_type == "LayerNorm" else "RMSNorm2d"


__all__ = ["subclass_meaning"]
