"""The norm layer zoo: :func:`build_norm` turns a spec string into the right layer for a layout.

Layouts (docs/design.md, "Norm spec grammar"): ``ndim`` is the rank of the input in
channels-first layout (2 = (N, C), 3 = (N, C, L), 4 = (N, C, H, W), 5 = (N, C, D, H, W));
``channels_last=True`` means the channels are the last dim, e.g. (N, L, C) tokens.

Example:
    >>> build_norm("ln", 64)                       # (N, 64, H, W): LN over C at each pixel
    ChannelLayerNorm(64, eps=1e-05, affine=True)
    >>> type(build_norm("bn", 512, ndim=3, channels_last=True)).__name__  # (N, L, 512) tokens
    'BatchNormLastDim'
"""

from __future__ import annotations

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
def _is_half(dtype: torch.dtype) -> bool:
    return dtype == torch.float16 or dtype == torch.bfloat16


def _shape_message(expected: str, x: Tensor, hint: str = "") -> str:
    # String concatenation, not an f-string of a tuple: TorchScript compiles it.
    return "expected input of shape " + expected + ", got shape " + str(list(x.shape)) + hint


def _positions_view(x: Tensor) -> Tensor:
    """(N, *, C) -> an (N, P, 1, C) view with P = prod(*) (a (N, C) input gets P = 1).

    flatten/unsqueeze instead of ``reshape(N, -1, 1, C)``: -1 cannot be inferred for an empty
    batch, and a traced graph keeps the sizes symbolic.
    """
    if x.dim() < 2:
        raise ValueError(_shape_message("(N, ..., C)", x))
    flat = x.unsqueeze(1) if x.dim() == 2 else x.flatten(1, -2)
    return flat.unsqueeze(2)


def _channels_first_view(x: Tensor) -> Tensor:
    """(N, P, 1, C) -> the (N, C, P, 1) view in channels_last memory format (no copy).

    Torch's CPU/GPU GroupNorm and BatchNorm kernels take channels_last 4-d input natively, so
    this avoids the transpose copy that ``x.transpose(1, 2)`` on (N, L, C) would cost.
    """
    return x.permute(0, 3, 1, 2)


def _channels_first_to_last(y: Tensor, shape: list[int]) -> Tensor:
    return y.permute(0, 2, 3, 1).reshape(shape)


# --------------------------------------------------------------------------- channels-first layers
class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel dim 1 of (N, C, *) input, at each position (ConvNeXt style).

    Not ``nn.LayerNorm(C)`` on NCHW, which normalizes the last dim (W). Not ``GroupNorm(1, C)``
    either, which normalizes over (C, H, W) jointly. Computes exactly ``nn.LayerNorm(C)`` on
    the input with its channels moved last (``bias=False`` as there), in any dtype.

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
        bias: bool = True,
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
        else:
            self.register_parameter("weight", None)
        if affine and bias:
            self.bias = nn.Parameter(torch.zeros(num_channels, **kw))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2:
            raise ValueError(_shape_message("(N, C, ...)", x, ": add a batch dim"))
        # For channels_last memory the permuted view is already contiguous, so the fused
        # last-dim kernel runs with no copy. For contiguous input the kernel copies the view
        # once and the result is copied back to contiguous: still faster than mean/var
        # reductions over dim 1 (bench/norm_layers.py).
        y = F.layer_norm(x.movedim(1, -1), [self.num_channels], self.weight, self.bias, self.eps)
        y = y.movedim(-1, 1)
        if x.is_contiguous() and not y.is_contiguous():
            y = y.contiguous()
        return y

    def extra_repr(self) -> str:
        no_bias = ", bias=False" if self.affine and self.bias is None else ""
        return f"{self.num_channels}, eps={self.eps}, affine={self.affine}{no_bias}"


class ChannelRMSNorm(nn.Module):
    """RMSNorm over the channel dim 1 of (N, C, *) input, at each position.

    Computes ``nn.RMSNorm(C)`` on the input with its channels moved last, like torch: fp16/bf16
    input in float32, ``eps=None`` meaning the epsilon of that computation dtype (float32's,
    or float64's for float64 input), and the output in the input's dtype.
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
        if x.dim() < 2:
            raise ValueError(_shape_message("(N, C, ...)", x, ": add a batch dim"))
        eps = self.eps
        if eps is None:
            # torch.nn.RMSNorm's eps=None: the epsilon of the dtype it computes in (float32 for
            # fp16/bf16/float32 input). Literals: TorchScript has no finfo, nor float globals.
            eps = 2.220446049250313e-16 if x.dtype == torch.float64 else 1.1920928955078125e-07
        shape = [1, -1] + [1] * (x.dim() - 2)
        if _is_half(x.dtype):
            # As torch: everything in float32, rounded once to x's dtype at the end.
            # vector_norm squares inside its float32 accumulation, so x * x cannot overflow.
            xf = x.float()
            norm = torch.linalg.vector_norm(x, dim=1, keepdim=True, dtype=torch.float32)
            y = xf * torch.rsqrt(norm.square() / self.num_channels + eps)
            if self.weight is not None:
                y = y * self.weight.view(shape)
            return y.to(x.dtype)
        # One reduction over dim 1 in place of rms_norm on a permuted view: no layout copies,
        # and faster in both memory formats on CPU, where rms_norm is not a fused kernel
        # (bench/norm_layers.py). The output keeps x's memory format, as elementwise ops do.
        if x.is_contiguous():
            # Channels-first contiguous: a plain mean of squares reduces over the strided
            # channel dim faster than vector_norm (bench: 60 vs 80 ms at 32x64x56x56).
            mean_square = (x * x).mean(dim=1, keepdim=True)
        else:
            norm = torch.linalg.vector_norm(x, dim=1, keepdim=True)
            mean_square = norm.square() / self.num_channels
        y = x * torch.rsqrt(mean_square + eps)
        if self.weight is not None:
            y = y * self.weight.view(shape)
        return y.to(x.dtype)

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
        if prefix + "running_mean" in state_dict:
            # A BatchNorm(affine=False) (or bias=False) state_dict: no affine is weight 1,
            # bias 0, so a strict load from it works.
            mean = state_dict[prefix + "running_mean"]
            state_dict.setdefault(prefix + "weight", torch.ones_like(mean))
            state_dict.setdefault(prefix + "bias", torch.zeros_like(mean))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < (1 if self.channels_last else 2):
            raise ValueError(
                _shape_message(
                    "(N, C, ...) (or (..., C) with channels_last=True)", x, ": add a batch dim"
                )
            )
        fused = not self.channels_last and x.dtype == self.running_var.dtype
        if fused and (_is_half(x.dtype) or torch.jit.is_tracing()):
            # Half precision: torch's eval-mode kernel derives scale and shift in float32, so
            # this is torch's eval BatchNorm to the bit. Tracing: one graph whatever the grad
            # mode (jit.trace's check re-traces under no_grad).
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        needs_grad = torch.is_grad_enabled() and (
            x.requires_grad or self.weight.requires_grad or self.bias.requires_grad
        )
        if fused and not needs_grad:
            # Inference, or frozen early layers: eval-mode batch norm is one fused kernel,
            # 1.4-1.8x faster than scale-and-shift ops on CPU (detectron2 does the same).
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        # Fold statistics and affine into one scale and shift (C values each); like
        # torchvision it works for any rank, and it beats eval-mode F.batch_norm forward+backward
        # on CPU (bench/norm_layers.py), whose backward still reduces over the batch.
        # fp16/bf16 buffers or input: scale and shift in float32, as torch's kernel does.
        weight, bias = self.weight, self.bias
        mean, var = self.running_mean, self.running_var
        if _is_half(weight.dtype) or _is_half(x.dtype):
            weight, bias, mean, var = weight.float(), bias.float(), mean.float(), var.float()
        scale = weight * torch.rsqrt(var + self.eps)
        shift = bias - mean * scale
        channel_dim = -1 if self.channels_last else 1
        if not self.channels_last:
            shape = [1, -1] + [1] * (x.dim() - 2)
            scale, shift = scale.view(shape), shift.view(shape)
        if (
            x.stride(channel_dim) != 1
            and x.device.type == "cpu"
            and (x.dtype == torch.float32 or x.dtype == torch.float64)
        ):
            # Channels-first maps on CPU: scale and shift are both constant along the innermost
            # dim, and torch's CPU loops vectorize only one such broadcast operand per op, so
            # addcmul fell back to a scalar loop (1.24-1.36x BatchNorm1d.eval() on (32, 512,
            # 128)). Two ops with one broadcast operand each vectorize; add_ reuses the
            # product's memory (mul does not save its output for backward). Not for fp16/bf16,
            # which would round twice, nor on GPUs, where one kernel moves less memory.
            return (x * scale).add_(shift).to(x.dtype)
        # Channels innermost in memory ((N, *, C), channels_last maps, (N, C)), GPUs, half
        # precision: one fused addcmul pass (float32 for fp16/bf16 input), rounded once.
        return torch.addcmul(shift, x, scale).to(x.dtype)

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
            raise ValueError(_shape_message("(N, C, ...)", input, ": add a batch dim"))


class InstanceNormNd(nn.modules.instancenorm._InstanceNorm):
    """InstanceNorm for batched (N, C, *) input of any rank >= 3 (see :class:`BatchNormNd`).

    Its rank is not fixed, so an unbatched (C, *) input cannot be told from a batched one as
    torch's InstanceNorm{1,2,3}d tell it: input whose dim 1 is not C is refused with a hint.
    """

    channels_last = False

    def forward(self, input: Tensor) -> Tensor:
        if input.dim() < 3:
            raise ValueError(
                "InstanceNorm needs (N, C, positions...) input, got shape "
                + str(list(input.shape))
                + "; InstanceNormNd takes batched input only: for one (C, L) sample use "
                "x.unsqueeze(0)"
            )
        if input.size(1) != self.num_features:
            raise ValueError(
                _shape_message(
                    "(N, C=" + str(self.num_features) + ", ...)",
                    input,
                    "; InstanceNormNd takes batched input only: for one (C, ...) sample use "
                    "x.unsqueeze(0)",
                )
            )
        return self._apply_instance_norm(input)


# --------------------------------------------------------------------------- last-dim layers
def batch_norm_factor(
    training: bool,
    track_running_stats: bool,
    momentum: float | None,
    num_batches_tracked: Tensor | None,
) -> float:
    """The exponential-average factor of one BatchNorm forward, counting the step in
    ``num_batches_tracked`` as ``_BatchNorm.forward`` does (``momentum=None``: cumulative
    average). Shared by the layers that write that forward out for TorchScript."""
    factor = 0.0
    if momentum is not None:
        factor = momentum
    if training and track_running_stats:  # noqa: SIM102
        # A separate if, as in torch: TorchScript skips it when the buffer is None.
        if num_batches_tracked is not None:
            num_batches_tracked.add_(1)
            if momentum is None:  # cumulative moving average
                factor = 1.0 / float(num_batches_tracked)
    return factor


class BatchNormLastDim(nn.BatchNorm1d):
    """BatchNorm over the last dim of (N, *, C) input (e.g. (N, L, C) tokens).

    Statistics are taken over batch*time, exactly like ``BatchNorm1d`` on the transposed
    (N, C, L) tensor; the state_dict keys are BatchNorm1d's.
    """

    channels_last = True

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(_shape_message("(N, ..., C)", input))

    def _batch_norm(self, input: Tensor) -> Tensor:
        """``_BatchNorm.forward`` without its input check.

        Written out, not ``super().forward()``: TorchScript compiles neither super() nor an
        unbound call of the base class's forward.
        """
        factor = batch_norm_factor(
            self.training, self.track_running_stats, self.momentum, self.num_batches_tracked
        )
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        return F.batch_norm(
            input,
            self.running_mean if track else None,
            self.running_var if track else None,
            self.weight,
            self.bias,
            bn_training,
            factor,
            self.eps,
        )

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        # (N, L, C) -> (N*L, C) is a free view; BatchNorm on it has batch*time statistics.
        out = self._batch_norm(input.reshape(-1, input.shape[-1]))
        return out.view(input.shape)


class GroupNormLastDim(nn.GroupNorm):
    """GroupNorm for (N, *, C) input: groups of channels over all positions of each sample.

    Exactly ``nn.GroupNorm`` on the input with its channels moved to dim 1.
    """

    channels_last = True

    def forward(self, input: Tensor) -> Tensor:
        v = _positions_view(input)  # (N, P, 1, C)
        if v.shape[-1] != self.num_channels:
            raise ValueError(_shape_message("(N, ..., C=" + str(self.num_channels) + ")", input))
        # Torch's channels_last CPU kernel sums x and x^2 in one pass, which loses ~100x the
        # precision of its channels-first kernel on data with a large mean. Centring each
        # group on its mean at the first position first (GroupNorm does not change when a
        # group is shifted, nor does its gradient) makes the kernel's sums small. One cheap
        # elementwise pass; a transposing copy to channels-first would cost two.
        groups = v.unflatten(-1, [self.num_groups, self.num_channels // self.num_groups])
        centre = groups[:, :1].mean(-1, keepdim=True).detach()
        v = (groups - centre).flatten(-2)
        y = F.group_norm(_channels_first_view(v), self.num_groups, self.weight, self.bias, self.eps)
        return _channels_first_to_last(y, input.shape)


class InstanceNormLastDim(nn.InstanceNorm1d):
    """InstanceNorm for (N, *, C) input: each channel of each sample over its positions.

    A 2-d input is one unbatched (L, C) sequence, as torch's ``InstanceNorm1d`` reads a 2-d
    input as one unbatched (C, L) sequence.
    """

    channels_last = True

    def forward(self, input: Tensor) -> Tensor:
        if input.dim() < 2:
            raise ValueError(_shape_message("(N, ..., C) or unbatched (L, C)", input))
        if input.shape[-1] != self.num_features:
            raise ValueError(_shape_message("(N, ..., C=" + str(self.num_features) + ")", input))
        batched = input.unsqueeze(0) if input.dim() == 2 else input
        x = _channels_first_view(_positions_view(batched))
        if x.shape[0] == 1 and not torch.jit.is_tracing():
            # One sample: instance norm is batch norm. Torch's instance_norm backward misreads
            # the channels_last-strided gradient this layout gets when N == 1 (CPU, torch
            # 2.14: a wrong input gradient); batch_norm's backward reads it right. Not when
            # tracing, where the branch would be baked in for every batch size.
            use_input_stats = self.training or not self.track_running_stats
            return _channels_first_to_last(
                F.batch_norm(
                    x,
                    self.running_mean,
                    self.running_var,
                    self.weight,
                    self.bias,
                    use_input_stats,
                    self.momentum if self.momentum is not None else 0.0,
                    self.eps,
                ),
                input.shape,
            )
        return _channels_first_to_last(self._apply_instance_norm(x), input.shape)


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


def _check_flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")


def _bias_kw(bias: bool) -> dict[str, bool]:
    # Torch's norm classes take bias= since 2.1 (BatchNorm/InstanceNorm: later); pass it only
    # when it matters, so the default path runs on every torch this package supports.
    return {} if bias else {"bias": False}


def build_norm(
    spec: str | NormSpec,
    num_channels: int,
    *,
    ndim: int = 4,
    channels_last: bool = False,
    eps: float | None = None,
    affine: bool = True,
    bias: bool = True,
    track_running_stats: bool | None = None,
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
        bias: with ``affine``, a learnable shift too (``rms`` and ``frozenbn`` have none to
            drop: RMSNorm has no shift, FrozenBatchNorm's is a fixed buffer).
        track_running_stats: for ``bn``/``syncbn``/``in``; None keeps the class default
            (True for BatchNorm, False for InstanceNorm).

    >>> build_norm("gn", 64).num_groups, type(build_norm("bn", 16, ndim=2)).__name__
    (32, 'BatchNorm1d')
    """
    parsed = NormSpec.parse(spec)  # None is a TypeError there
    if isinstance(num_channels, bool) or not isinstance(num_channels, int):
        raise TypeError(f"num_channels must be a positive int, got {num_channels!r}")
    if num_channels < 1:
        raise ValueError(f"num_channels must be a positive int, got {num_channels!r}")
    if isinstance(ndim, bool) or ndim not in (2, 3, 4, 5):
        raise ValueError(
            f"ndim must be 2 (N, C), 3 (N, C, L), 4 (N, C, H, W) or 5 (N, C, D, H, W); got {ndim!r}"
        )
    for name, flag in (("channels_last", channels_last), ("affine", affine), ("bias", bias)):
        _check_flag(name, flag)
    if track_running_stats is not None:
        _check_flag("track_running_stats", track_running_stats)
    if eps is not None:
        if isinstance(eps, bool) or not isinstance(eps, (int, float)):
            raise TypeError(f"eps must be a float or None, got {eps!r}")
        if not eps >= 0:  # also catches NaN
            raise ValueError(f"eps must be >= 0, got {eps!r}")
        eps = float(eps)
    kind, c = parsed.kind, num_channels
    last = channels_last or ndim == 2  # (N, C) is both layouts at once
    e = DEFAULT_EPS if eps is None else eps
    kw: dict = _bias_kw(bias)
    bn_kw = (
        dict(kw)
        if track_running_stats is None
        else kw | {"track_running_stats": track_running_stats}
    )

    if kind == "none":
        return nn.Identity()
    if kind == "bn":
        if channels_last:
            return BatchNormLastDim(c, eps=e, affine=affine, **bn_kw)
        return _BATCH_NORMS[ndim](c, eps=e, affine=affine, **bn_kw)
    if kind == "syncbn":
        # Imported here: sync.py is its own module with its own (distributed) imports.
        from normsuite.norms import sync

        if channels_last:
            from normsuite.norms.sync_last_dim import SyncBatchNormLastDim

            return SyncBatchNormLastDim(c, eps=e, affine=affine, **bn_kw)
        return sync.SyncBatchNorm(c, eps=e, affine=affine, **bn_kw)
    if kind == "frozenbn":
        return FrozenBatchNorm(c, eps=e, channels_last=channels_last)
    if kind == "gn":
        groups = parsed.groups_for(c)
        _check_groups(groups, c)
        cls = GroupNormLastDim if channels_last else nn.GroupNorm
        return cls(groups, c, eps=e, affine=affine, **kw)
    if kind == "ln":
        if last:
            return nn.LayerNorm(c, eps=e, elementwise_affine=affine, bias=bias)
        return ChannelLayerNorm(c, eps=e, affine=affine, bias=bias)
    if kind == "in":
        if ndim == 2:
            raise ValueError(
                "'in' (InstanceNorm) needs positions to normalize over, but ndim=2 is (N, C) "
                "features; use 'ln' or 'bn' for features."
            )
        if channels_last:
            return InstanceNormLastDim(c, eps=e, affine=affine, **bn_kw)
        return _INSTANCE_NORMS[ndim](c, eps=e, affine=affine, **bn_kw)
    if kind == "rms":
        if last:
            return nn.RMSNorm(c, eps=eps, elementwise_affine=affine)
        return ChannelRMSNorm(c, eps=eps, affine=affine)
    raise AssertionError(f"unhandled norm kind {kind!r}")  # NormSpec validated it
