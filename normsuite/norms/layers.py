"""The norm layer zoo: :func:`build_norm` turns a spec string into the right layer for a layout.

Layouts (DESIGN.md section 3): ``ndim`` is the rank of the input in channels-first layout
(2 = (N, C), 3 = (N, C, L), 4 = (N, C, H, W), 5 = (N, C, D, H, W)); ``channels_last=True``
means the channels are the last dim, e.g. (N, L, C) tokens.

Example:
    >>> build_norm("ln", 64)                       # (N, 64, H, W): LN over C at each pixel
    ChannelLayerNorm(64, eps=1e-05, affine=True)
    >>> type(build_norm("bn", 512, ndim=3, channels_last=True)).__name__  # (N, L, 512) tokens
    'BatchNormLastDim'
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from normsuite.norms.spec import NormSpec

__all__ = [
    "BatchNormLastDim",
    "BatchNormNd",
    "ChannelLayerNorm",
    "ChannelRMSNorm",
    "FrozenBatchNorm",
    "GroupNormLastDim",
    "InstanceNormLastDim",
    "InstanceNormNd",
    "build_norm",
]

DEFAULT_EPS = 1e-5  # torch's default for BatchNorm, GroupNorm, LayerNorm, InstanceNorm


# --------------------------------------------------------------------------- layout helpers
def _over_channels(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Apply the last-dim op ``fn`` over dim 1 of ``x`` (N, C, *), keeping x's memory format.

    For channels_last memory format (N, C, H, W) the permuted view is already contiguous, so
    the fused last-dim kernel runs with no copy. For contiguous input, a fused kernel copies
    the view once in and the result is copied back to contiguous; that is still faster than
    mean/var reductions over dim 1 (see bench/norm_layers.py). Composite ops (CPU rms_norm)
    run on the strided view and already return the input's layout, so nothing is copied.
    """
    y = fn(x.movedim(1, -1)).movedim(-1, 1)
    if x.is_contiguous() and not y.is_contiguous():
        y = y.contiguous()
    return y


def _last_to_channels_first(x: Tensor) -> Tensor:
    """(N, *, C) -> a (N, C, L, 1) view in channels_last memory format (no copy if contiguous).

    Torch's CPU/GPU GroupNorm and BatchNorm kernels take channels_last 4-d input natively, so
    this avoids the transpose copy that ``x.transpose(1, 2)`` on (N, L, C) would cost.
    """
    if x.dim() < 2:
        raise ValueError(f"expected input of shape (N, ..., C), got shape {tuple(x.shape)}")
    return x.reshape(x.shape[0], -1, 1, x.shape[-1]).permute(0, 3, 1, 2)


def _channels_first_to_last(y: Tensor, shape: torch.Size) -> Tensor:
    return y.permute(0, 2, 3, 1).reshape(shape)


# --------------------------------------------------------------------------- channels-first layers
class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel dim 1 of (N, C, *) input, at each position (ConvNeXt style).

    Not ``nn.LayerNorm(C)`` on NCHW, which normalizes the last dim (W). Not ``GroupNorm(1, C)``
    either, which normalizes over (C, H, W) jointly.

    >>> x = torch.randn(2, 8, 4, 4)
    >>> y = ChannelLayerNorm(8)(x)
    >>> torch.allclose(y.mean(1), torch.zeros(2, 4, 4), atol=1e-5)
    True
    """

    channels_last = False

    def __init__(
        self,
        num_channels: int,
        eps: float = DEFAULT_EPS,
        affine: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        kw = {"device": device, "dtype": dtype}
        if affine:
            self.weight = nn.Parameter(torch.ones(num_channels, **kw))
            self.bias = nn.Parameter(torch.zeros(num_channels, **kw))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        shape = (self.num_channels,)
        return _over_channels(lambda t: F.layer_norm(t, shape, self.weight, self.bias, self.eps), x)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}, affine={self.affine}"


class ChannelRMSNorm(nn.Module):
    """RMSNorm over the channel dim 1 of (N, C, *) input, at each position.

    ``eps=None`` uses ``torch.finfo(x.dtype).eps``, like ``torch.nn.RMSNorm``.
    """

    channels_last = False

    def __init__(
        self,
        num_channels: int,
        eps: float | None = None,
        affine: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("weight", None)

    def forward(self, x: Tensor) -> Tensor:
        # One vector_norm reduction over dim 1 in place of rms_norm on a permuted view: no
        # x**2 temporary, no layout copies, and faster in both memory formats on CPU, where
        # rms_norm is not a fused kernel (bench/norm_layers.py). Low precision accumulates in
        # float32; the output keeps x's memory format, as elementwise ops do.
        eps = torch.finfo(x.dtype).eps if self.eps is None else self.eps
        low = x.dtype in (torch.float16, torch.bfloat16)
        if low or not x.is_contiguous():
            norm = torch.linalg.vector_norm(
                x, dim=1, keepdim=True, dtype=torch.float32 if low else None
            )
            mean_square = norm.square() / self.num_channels
        else:
            # Channels-first contiguous float32/64: a plain mean of squares reduces over the
            # strided channel dim faster than vector_norm (bench: 60 vs 80 ms at 32x64x56x56).
            # Half types keep vector_norm above: x * x could overflow float16.
            mean_square = (x * x).mean(dim=1, keepdim=True)
        scale = torch.rsqrt(mean_square + eps).to(x.dtype)
        if self.weight is None:
            return x * scale
        return x * scale * self.weight.view((1, -1) + (1,) * (x.dim() - 2))

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}, affine={self.affine}"


class FrozenBatchNorm(nn.Module):
    """BatchNorm with fixed statistics and affine, all buffers: ``.train()`` changes nothing.

    torchvision's ``FrozenBatchNorm2d`` semantics for any rank: (N, C, *) input, or
    (N, *, C) with ``channels_last=True``. Loads a BatchNorm state_dict
    (``num_batches_tracked`` is ignored).

    >>> bn = nn.BatchNorm2d(4).eval()
    >>> frozen = FrozenBatchNorm(4)
    >>> _ = frozen.load_state_dict(bn.state_dict())
    >>> x = torch.randn(2, 4, 3, 3)
    >>> torch.allclose(frozen.train()(x), bn(x))
    True
    """

    def __init__(
        self,
        num_features: int,
        eps: float = DEFAULT_EPS,
        channels_last: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.channels_last = channels_last
        kw = {"device": device, "dtype": dtype}
        self.register_buffer("weight", torch.ones(num_features, **kw))
        self.register_buffer("bias", torch.zeros(num_features, **kw))
        self.register_buffer("running_mean", torch.zeros(num_features, **kw))
        self.register_buffer("running_var", torch.ones(num_features, **kw))

    def _load_from_state_dict(
        self,
        state_dict: dict,
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # A BatchNorm state_dict carries a step counter that frozen statistics do not need.
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < (1 if self.channels_last else 2):
            raise ValueError(
                "expected input of shape (N, C, ...) (or (..., C) with channels_last=True), "
                "got shape " + str(list(x.shape)) + ": add a batch dim"  # no f-string: scriptable
            )
        needs_grad = torch.is_grad_enabled() and (
            x.requires_grad or self.weight.requires_grad or self.bias.requires_grad
        )
        if not self.channels_last and not needs_grad and x.dtype == self.running_var.dtype:
            # Inference, or frozen early layers: eval-mode batch norm is one fused kernel,
            # 1.4-1.8x faster than scale-and-shift ops on CPU (detectron2 does the same).
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        # Fold statistics and affine into one scale and shift (C values each); like
        # torchvision it works for any rank, and it beats eval-mode F.batch_norm forward+backward
        # on CPU (bench/norm_layers.py), whose backward still reduces over the batch.
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)
        shift = self.bias - self.running_mean * scale
        channel_dim = -1 if self.channels_last else 1
        if not self.channels_last:
            shape = (1, -1) + (1,) * (x.dim() - 2)
            scale, shift = scale.view(shape), shift.view(shape)
        if (
            x.stride(channel_dim) != 1
            and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.float64)
        ):
            # Channels-first maps on CPU: scale and shift are both constant along the innermost
            # dim, and torch's CPU loops vectorize only one such broadcast operand per op, so
            # addcmul fell back to a scalar loop (1.24-1.36x BatchNorm1d.eval() on (32, 512,
            # 128)). Two ops with one broadcast operand each vectorize; add_ reuses the
            # product's memory (mul does not save its output for backward). Not for fp16/bf16,
            # which would round twice, nor on GPUs, where one kernel moves less memory.
            return (x * scale).add_(shift)
        # Channels innermost in memory ((N, *, C), channels_last maps, (N, C)), GPUs, half
        # precision: one fused addcmul pass, rounded once.
        return torch.addcmul(shift, x, scale)

    def extra_repr(self) -> str:
        layout = ", channels_last=True" if self.channels_last else ""
        return f"{self.num_features}, eps={self.eps}{layout}"


class BatchNormNd(nn.modules.batchnorm._BatchNorm):
    """BatchNorm for (N, C, *) input of any rank >= 2 (state_dict keys as BatchNorm2d).

    ``convert_norms`` builds it where the replaced layer does not tell its input rank
    (e.g. a GroupNorm going to ``bn``), so no rank has to be guessed.
    """

    channels_last = False

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected input of shape (N, C, ...), got shape {tuple(input.shape)}")


class InstanceNormNd(nn.modules.instancenorm._InstanceNorm):
    """InstanceNorm for batched (N, C, *) input of any rank >= 3 (see :class:`BatchNormNd`)."""

    channels_last = False

    def forward(self, input: Tensor) -> Tensor:
        if input.dim() < 3:
            raise ValueError(
                f"InstanceNorm needs (N, C, positions...) input, got shape {tuple(input.shape)}"
            )
        return self._apply_instance_norm(input)


# --------------------------------------------------------------------------- last-dim layers
class BatchNormLastDim(nn.BatchNorm1d):
    """BatchNorm over the last dim of (N, *, C) input (e.g. (N, L, C) tokens).

    Statistics are taken over batch*time, exactly like ``BatchNorm1d`` on the transposed
    (N, C, L) tensor; the state_dict keys are BatchNorm1d's.
    """

    channels_last = True

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected input of shape (N, ..., C), got shape {tuple(input.shape)}")

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        # (N, L, C) -> (N*L, C) is a free view; BatchNorm on it has batch*time statistics.
        out = super().forward(input.reshape(-1, input.shape[-1]))
        return out.view(input.shape)


class GroupNormLastDim(nn.GroupNorm):
    """GroupNorm for (N, *, C) input: groups of channels over all positions of each sample."""

    channels_last = True

    def forward(self, input: Tensor) -> Tensor:
        y = F.group_norm(
            _last_to_channels_first(input), self.num_groups, self.weight, self.bias, self.eps
        )
        return _channels_first_to_last(y, input.shape)


class InstanceNormLastDim(nn.InstanceNorm1d):
    """InstanceNorm for (N, *, C) input: each channel of each sample over its positions."""

    channels_last = True

    def forward(self, input: Tensor) -> Tensor:
        y = self._apply_instance_norm(_last_to_channels_first(input))
        return _channels_first_to_last(y, input.shape)


# --------------------------------------------------------------------------- factory
_BATCH_NORMS: dict[int, type[nn.Module]] = {
    2: nn.BatchNorm1d,
    3: nn.BatchNorm1d,
    4: nn.BatchNorm2d,
    5: nn.BatchNorm3d,
}
_INSTANCE_NORMS: dict[int, type[nn.Module]] = {
    3: nn.InstanceNorm1d,
    4: nn.InstanceNorm2d,
    5: nn.InstanceNorm3d,
}


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _check_groups(groups: int, num_channels: int) -> None:
    if num_channels % groups:
        choices = ", ".join(map(str, _divisors(num_channels)))
        raise ValueError(
            f"gn:{groups} cannot split C={num_channels} channels into G={groups} equal groups "
            f"(C % G = {num_channels % groups}); valid G for C={num_channels}: {choices}."
        )


def build_norm(
    spec: str | NormSpec,
    num_channels: int,
    *,
    ndim: int = 4,
    channels_last: bool = False,
    eps: float | None = None,
    affine: bool = True,
) -> nn.Module:
    """Build the norm layer that ``spec`` names for ``num_channels`` channels in a layout.

    Args:
        spec: ``"bn"``, ``"syncbn"``, ``"frozenbn"``, ``"gn"``, ``"gn:G"``, ``"ln"``,
            ``"in"``, ``"rms"``, ``"none"`` or an alias (``"BatchNorm2d"``, ...).
        num_channels: C.
        ndim: rank of the input in channels-first layout (2, 3, 4 or 5).
        channels_last: the channels are the last dim, e.g. (N, L, C) tokens.
        eps: the layer's epsilon; None keeps each layer's usual default.
        affine: learnable per-channel scale (and shift); ``in`` is affine by default too.

    >>> build_norm("gn", 64).num_groups, type(build_norm("bn", 16, ndim=2)).__name__
    (32, 'BatchNorm1d')
    """
    parsed = NormSpec.parse(spec)
    if isinstance(num_channels, bool) or not isinstance(num_channels, int) or num_channels < 1:
        raise ValueError(f"num_channels must be a positive int, got {num_channels!r}")
    if ndim not in (2, 3, 4, 5):
        raise ValueError(
            f"ndim must be 2 (N, C), 3 (N, C, L), 4 (N, C, H, W) or 5 (N, C, D, H, W); got {ndim!r}"
        )
    kind, c = parsed.kind, num_channels
    last = channels_last or ndim == 2  # (N, C) is both layouts at once
    e = DEFAULT_EPS if eps is None else eps

    if kind == "none":
        return nn.Identity()
    if kind == "bn":
        if channels_last:
            return BatchNormLastDim(c, eps=e, affine=affine)
        return _BATCH_NORMS[ndim](c, eps=e, affine=affine)
    if kind == "syncbn":
        # Imported here: sync.py is its own module with its own (distributed) imports.
        from normsuite.norms import sync

        if channels_last:
            from normsuite.norms.sync_last_dim import SyncBatchNormLastDim

            return SyncBatchNormLastDim(c, eps=e, affine=affine)
        return sync.SyncBatchNorm(c, eps=e, affine=affine)
    if kind == "frozenbn":
        return FrozenBatchNorm(c, eps=e, channels_last=channels_last)
    if kind == "gn":
        groups = parsed.groups_for(c)
        _check_groups(groups, c)
        cls = GroupNormLastDim if channels_last else nn.GroupNorm
        return cls(groups, c, eps=e, affine=affine)
    if kind == "ln":
        if last:
            return nn.LayerNorm(c, eps=e, elementwise_affine=affine)
        return ChannelLayerNorm(c, eps=e, affine=affine)
    if kind == "in":
        if ndim == 2:
            raise ValueError(
                "'in' (InstanceNorm) needs positions to normalize over, but ndim=2 is (N, C) "
                "features; use 'ln' or 'bn' for features."
            )
        if channels_last:
            return InstanceNormLastDim(c, eps=e, affine=affine)
        return _INSTANCE_NORMS[ndim](c, eps=e, affine=affine)
    if kind == "rms":
        if last:
            return nn.RMSNorm(c, eps=eps, elementwise_affine=affine)
        return ChannelRMSNorm(c, eps=eps, affine=affine)
    raise AssertionError(f"unhandled norm kind {kind!r}")  # NormSpec validated it
