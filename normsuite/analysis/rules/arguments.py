"""NRM014: a norm's positional argument that does not mean what it looks like.

PyTorch's signatures are ``BatchNorm2d(num_features, eps=1e-05, momentum=0.1, affine=True,
track_running_stats=True)`` and ``GroupNorm(num_groups, num_channels, eps=1e-05,
affine=True)``. ``BatchNorm2d(C, 0.8)`` (a GAN-tutorial habit from Keras'
``BatchNormalization(momentum=0.8)``) is eps=0.8; ``GroupNorm(C, 32)`` is 32 channels in C
groups.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from ..context import FileContext, ModelContext
from ..ir import Layer
from ..types import Finding
from . import finding, rule

# Norms whose 2nd positional parameter is eps (and 3rd momentum).
EPS_SECOND = frozenset(
    {
        "BatchNorm1d",
        "BatchNorm2d",
        "BatchNorm3d",
        "SyncBatchNorm",
        "InstanceNorm1d",
        "InstanceNorm2d",
        "InstanceNorm3d",
    }
)
# An eps this large is no numerical guard: it shrinks every normalized value (BN's default is
# 1e-5; TF ports use 1e-3). Below it the rule stays silent.
SUSPICIOUS_EPS = 0.1


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def positional_eps(layer: Layer) -> object | None:
    """The eps a BN/IN layer receives positionally, when it is constant, or the string
    ``"repeat"`` when it is the very expression of the channel count (``BatchNorm2d(n,
    n)`` with n unknown); else None."""
    if layer.type not in EPS_SECOND or len(layer.args) < 2:
        return None
    eps = layer.args[1]
    if _number(eps) or isinstance(eps, bool):
        return eps
    return "repeat" if _repeats_first_argument(layer.code) else None


def _repeats_first_argument(code: str) -> bool:
    try:
        call = ast.parse(code, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    if not isinstance(call, ast.Call) or len(call.args) < 2:
        return False
    first, second = call.args[0], call.args[1]
    return not isinstance(first, ast.Constant) and ast.dump(first) == ast.dump(second)


def swapped_group_norm(layer: Layer, received: int | None) -> tuple[int, int] | None:
    """``GroupNorm(C, G)`` written for ``GroupNorm(G, C)``: (G, C) when the first argument
    does not split into the second but the other way round works, and the channels the
    layer receives (when known) are the first argument's."""
    if layer.type != "GroupNorm" or len(layer.args) < 2:
        return None
    a, b = layer.args[0], layer.args[1]
    if not (_number(a) and _number(b)) or not isinstance(a, int) or not isinstance(b, int):
        return None
    if a < 1 or b < 1 or a <= b or b % a == 0 or a % b != 0:
        return None
    if received is not None and received != a:
        return None
    return b, a


def received_channel_count(model: ModelContext, layer: Layer) -> int | None:
    app = model.first_app(layer)
    if app is None or app.inp.cdim != 1:
        return None
    return app.inp.channels


def _eps_message(layer: Layer, eps: object) -> str | None:
    name = layer.type
    if isinstance(eps, bool):
        return (
            f"the 2nd positional argument of {name} is eps, so `{layer.code}` sets "
            f"eps={eps} ({float(eps)}), not affine; pass affine={eps} by keyword."
        )
    if eps == "repeat":
        return (
            f"the 2nd positional argument of {name}(num_features, eps, momentum, ...) is "
            f"eps, so `{layer.code}` passes the channel count again as eps, which flattens "
            f"every normalized value; drop it (the channel count is the 1st argument) or "
            f"pass eps= by keyword."
        )
    assert isinstance(eps, (int, float))
    if eps < SUSPICIOUS_EPS:
        return None
    if eps >= 1:
        return (
            f"the 2nd positional argument of {name}(num_features, eps, momentum, ...) is "
            f"eps, so `{layer.code}` sets eps={eps}, which flattens every normalized value; "
            f"drop it (the channel count is the 1st argument) or pass eps= by keyword."
        )
    torch_m = round(1 - eps, 4)
    return (
        f"the 2nd positional argument of {name}(num_features, eps, momentum, ...) is eps, so "
        f"`{layer.code}` sets eps={eps}, not momentum. Did you mean Keras' momentum={eps}? "
        f"That is PyTorch momentum={torch_m}: use momentum={torch_m}; else pass eps={eps} "
        f"by keyword."
    )


@rule("NRM014")
def norm_positional_argument(ctx: FileContext) -> Iterator[Finding]:
    seen: set[int] = set()
    for model in ctx.models:
        for _, layer in model.layers:
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            eps = positional_eps(layer)
            if eps is not None:
                message = _eps_message(layer, eps)
                if message is not None:
                    yield finding("NRM014", layer, message, model.name)
                continue
            if layer.type != "GroupNorm" or not layer.args:
                continue
            if layer.args[0] == 0 and not isinstance(layer.args[0], bool):
                c = layer.num_channels
                yield finding(
                    "NRM014",
                    layer,
                    f"GroupNorm(num_groups, num_channels): `{layer.code}` asks for 0 groups, "
                    f"which PyTorch cannot build; the group count comes first: "
                    f"use e.g. nn.GroupNorm({_groups_for(c)}, {c if c else 'C'}).",
                    model.name,
                )
                continue
            swap = swapped_group_norm(layer, received_channel_count(model, layer))
            if swap is not None:
                g, c = swap
                yield finding(
                    "NRM014",
                    layer,
                    f"GroupNorm(num_groups, num_channels): `{layer.code}` splits {g} channels "
                    f"into {c} groups, which PyTorch rejects; the arguments look swapped: "
                    f"use nn.GroupNorm({g}, {c}) ({g} groups of {c // g} channels).",
                    model.name,
                )


def _groups_for(c: int | None) -> str:
    if c is None:
        return "32"
    from normsuite.advice import default_groups

    return str(default_groups(c))
