"""A SyncBatchNorm that works on every ``torch.distributed`` backend (gloo on CPU, NCCL on GPU).

``torch.nn.SyncBatchNorm`` only runs on CUDA ("SyncBatchNorm layers only work with GPU
modules") because it calls CUDA-only kernels. This one builds the same computation from
batch-norm kernels that every device has, so a multi-process BN model can be trained and
tested on CPUs.

In training mode under an initialized process group with more than one rank, every forward
pass gathers each rank's ``[count, centre, mean offset, M2]`` (one collective) and combines
them with Chan's parallel formula, so ranks with unequal batch sizes, or an empty batch, give
the statistics of the combined batch. The backward pass sums ``[sum_dy, sum_dy_xmu]`` over the
ranks (one collective: a gather on gloo, an all_reduce elsewhere). Statistics are kept in
float32 (or float64) even for fp16/bf16 inputs, and computed on data centred on its local mean,
so a large common mean costs no precision. In eval mode, without a process group, or with world
size 1, the layer runs ``F.batch_norm`` exactly like BatchNorm.

Example:
    >>> import torch
    >>> from normsuite.norms.sync import SyncBatchNorm, revert_sync_batchnorm
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
    >>> model = SyncBatchNorm.convert_sync_batchnorm(model)
    >>> type(model[1]).__name__
    'SyncBatchNorm'
    >>> type(revert_sync_batchnorm(model)[1]).__name__
    'BatchNorm2d'
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx
from torch.nn.modules.batchnorm import _BatchNorm

from normsuite.norms.layers import BatchNormLastDim, BatchNormNd, batch_norm_factor

__all__ = [
    "BatchNormXd",
    "SyncBatchNorm",
    "convert_sync_batchnorm",
    "is_sync_batchnorm",
    "revert_sync_batchnorm",
]

# Set on every converted module, so that revert restores e.g. BatchNorm2d and not a generic class.
ORIGINAL_CLASS_ATTR = "_normsuite_original_class"


def _stats_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for fp16/bf16/float32 inputs, float64 for float64: sums never run in half."""
    return torch.promote_types(dtype, torch.float32)


# The per-element work runs in torch's own batch-norm kernels (one fused pass each, on any
# device) instead of chains of broadcasting ops, and the per-channel arithmetic is kept to few
# small ops: on a small CNN each tiny op costs about as much as a kernel pass.
#   _local_moments: exact two-pass mean and sum of squared deviations;
#   eval-mode F.batch_norm: ``x - center``, ``(x - mean) * invstd * w + b`` or ``dy * a + c``;
#   _reductions:    batch norm backward's per-channel sums around a given mean.
# The passes see x centred on its local mean and means are combined relative to a centre: the
# kernels compute ``x * alpha + beta``, which cancels for |mean| >> std. At mean/std = 2000 in
# float32 this is ~40x more exact than torch's BatchNorm (tests/test_syncbn_ddp.py).


def _center(x: Tensor, center: Tensor) -> Tensor:
    """``x - center`` per channel, exactly, in one pass."""
    return F.batch_norm(x, center, torch.ones_like(center), None, None, False, 0.0, 0.0)


def _reductions(dy: Tensor, x: Tensor, mean: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel ``sum(dy * (x - mean))`` and ``sum(dy)``, in one pass.

    The weight is passed although the sums do not use it: CUDA's reduction kernel sizes its
    outputs from it.
    """
    ones = torch.ones_like(mean)
    _, sum_dy_xmu, sum_dy = torch.ops.aten.native_batch_norm_backward(
        dy, x, ones, None, None, mean, ones, True, 0.0, [False, True, True]
    )
    return sum_dy_xmu, sum_dy


def _local_moments(x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-channel moments of a non-empty (N, C, *) tensor, in two passes.

    Returns ``(center, offset, m2, x - center)``: a rough mean used as the centring point, the
    mean of the centred values (so the mean is ``center + offset``), their sum of squared
    deviations M2, and ``x`` centred. As exact as Welford's algorithm, and 2-5x faster on CPU
    than the statistics of a training-mode ``native_batch_norm``.
    """
    count = x.numel() // x.shape[1]
    # A float32 sum of values near a large mean is only good to ~ulp(sum): a rough centre.
    center = x.sum([0, *range(2, x.dim())]).div_(count)
    centered = _center(x, center)
    sum_sq, total = _reductions(centered, centered, torch.zeros_like(center))
    offset = total / count
    return center, offset, sum_sq.sub_(total * offset), centered


def _combine(table: Tensor, center: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Global mean, the same mean relative to this rank's ``center``, biased variance, count.

    ``table`` holds one ``[count, center, offset, M2]`` row per rank. Chan et al.'s parallel
    combination, exact for any split including empty ranks. Means are combined relative to the
    first non-empty rank's centre: the same on every rank, so all ranks get bit-identical
    statistics, and a large common mean never enters the sums (no float32 cancellation).
    """
    channels = center.numel()
    counts = table[:, :1]
    centers, offsets, m2s = table[:, 1:].view(-1, 3, channels).unbind(1)
    total = counts.sum()
    safe_total = total.clamp(min=1.0)
    weights = counts / safe_total
    first = (counts[:, 0] > 0).int().argmax().view(1)  # an index tensor: no GPU sync
    reference = centers.index_select(0, first).squeeze(0)
    rank_means = (centers - reference).add_(offsets)
    relative = (weights * rank_means).sum(0)
    between = (weights * rank_means.sub_(relative).square_()).sum(0)  # spread of rank means
    var = m2s.sum(0).div_(safe_total).add_(between)
    return reference + relative, (reference - center).add_(relative), var, total


def _moving_average_(buffer: Tensor, value: Tensor, weight: Tensor) -> None:
    """``buffer += weight * (value - buffer)`` in the statistics' precision, rounded once."""
    if buffer.dtype == value.dtype:
        buffer.lerp_(value, weight)
    else:  # e.g. a .half() model: average in float32, then store
        buffer.copy_(buffer.to(value.dtype).lerp_(value, weight))


def _all_gather_rows(row: Tensor, group: Any, world_size: int, backend: str) -> Tensor:
    """Gather one row per rank into a (world_size, len(row)) tensor with a single collective."""
    if backend == "gloo":
        # The list form is one collective too, and the fastest gloo gather for short rows.
        rows = [torch.empty_like(row) for _ in range(world_size)]
        dist.all_gather(rows, row, group=group)
        return torch.stack(rows)
    out = row.new_empty(world_size * row.numel())
    gather_single = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    gather_single(out, row, group=group)
    return out.view(world_size, -1)


def _sum_across_ranks(vector: Tensor, group: Any, world_size: int, backend: str) -> Tensor:
    """The element-wise sum of ``vector`` over all ranks, identical on every rank.

    On gloo a gather plus a local sum (in rank order) costs one exchange, about 0.7x the
    latency of gloo's all_reduce for the few hundred values a BN layer sends.
    """
    if backend == "gloo":
        return _all_gather_rows(vector, group, world_size, backend).sum(0)
    out = vector.clone()
    dist.all_reduce(out, group=group)
    return out


class _SyncBatchNormFunction(torch.autograd.Function):
    """Cross-process batch norm on any device and backend; math in float32 or float64."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        x: Tensor,
        weight: Tensor | None,
        bias: Tensor | None,
        running_mean: Tensor | None,
        running_var: Tensor | None,
        eps: float,
        momentum: float,
        group: Any,
        world_size: int,
        backend: str,
    ) -> Tensor:
        channels = x.shape[1]
        acc = _stats_dtype(x.dtype)
        xf = x.to(acc)  # no copy for float32/float64; fp16/bf16 are computed in float32
        count = x.numel() // channels if channels else 0

        # Local count, mean and M2 (sum of squared deviations). Gathering M2 per rank rather
        # than all-reducing sum(x^2) avoids the cancellation of E[x^2] - E[x]^2 when |mean| >> std.
        if count > 0:
            center, offset, m2, centered = _local_moments(xf)
        else:  # an empty rank still joins the collective, with zero weight
            center = offset = m2 = xf.new_zeros(channels)
            centered = xf
        row = torch.cat([xf.new_full((1,), float(count)), center, offset, m2])
        table = _all_gather_rows(row, group, world_size, backend)
        g_mean, shift, g_var, total = _combine(table, center)  # g_mean = center + shift
        if xf.device.type == "cpu" and total.item() == 1:  # BatchNorm's own check; no GPU sync
            raise ValueError(
                "Expected more than 1 value per channel when training across all ranks: "
                "use a larger batch, GroupNorm, or FrozenBatchNorm"
            )

        if running_mean is not None and running_var is not None:
            # running_var tracks the unbiased variance of the combined batch, as BatchNorm
            # does; a batch that is empty on every rank leaves both alone, as BatchNorm does.
            unbiased = g_var * (total / (total - 1.0).clamp(min=1.0))
            update = (total > 0).to(acc) * momentum
            _moving_average_(running_mean, g_mean, update)
            _moving_average_(running_var, unbiased, update)

        invstd = torch.rsqrt(g_var + eps)
        # float32/64: save x - center instead of x (same memory, no cancellation later);
        # fp16/bf16: save x itself (half the memory of its float32 copy) and re-centre later.
        ctx.recenter = centered.dtype != x.dtype
        saved = x if ctx.recenter else centered
        ctx.save_for_backward(saved, weight, center, shift, invstd, total)
        ctx.group, ctx.world_size, ctx.backend = group, world_size, backend
        ctx.bias_dtype = None if bias is None else bias.dtype
        if count == 0:
            return torch.empty_like(x)
        w = None if weight is None else weight.to(acc)
        b = None if bias is None else bias.to(acc)
        return F.batch_norm(centered, shift, g_var, w, b, False, 0.0, eps).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        saved, weight, center, mean, invstd, total = ctx.saved_tensors  # mean: relative to center
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        channels = saved.shape[1]
        acc = invstd.dtype
        empty = saved.numel() == 0
        xc = _center(saved.to(acc), center) if ctx.recenter and not empty else saved.to(acc)
        dy = grad_out.to(acc)

        if not empty:
            sum_dy_xmu, sum_dy = _reductions(dy.contiguous(), xc, mean)
        else:
            sum_dy = sum_dy_xmu = invstd.new_zeros(channels)

        # weight/bias gradients stay local: DDP averages parameter gradients across ranks.
        grad_w = (sum_dy_xmu * invstd).to(weight.dtype) if need_w and weight is not None else None
        grad_b = sum_dy.to(ctx.bias_dtype) if need_b and ctx.bias_dtype is not None else None
        nones = (None,) * 8
        if not need_x:
            return None, grad_w, grad_b, *nones
        # The same model on every rank, so every rank joins this collective.
        packed = torch.cat([sum_dy, sum_dy_xmu])
        totals = _sum_across_ranks(packed, ctx.group, ctx.world_size, ctx.backend)
        if empty:
            return torch.zeros_like(saved), grad_w, grad_b, *nones
        means = totals.div_(total.clamp(min=1.0))
        mean_dy, mean_dy_xmu = means[:channels], means[channels:]
        # dx = a * (dy - mean_dy - (x - mean) * k), k = invstd^2 * mean_dy_xmu,
        # written as a * dy + c + b * x: two fused passes.
        a = invstd if weight is None else invstd * weight.to(acc)
        ak = a * invstd.square().mul_(mean_dy_xmu)
        c = (ak * mean).sub_(a * mean_dy)
        shape = (1, channels) + (1,) * (xc.dim() - 2)
        grad_x = F.batch_norm(dy, torch.zeros_like(a), torch.ones_like(a), a, c, False, 0.0, 0.0)
        grad_x = grad_x.addcmul_(xc, ak.view(shape), value=-1.0)
        return grad_x.to(saved.dtype), grad_w, grad_b, *nones


class SyncBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics span all ranks of a process group, on any backend.

    Accepts any (N, C, *) input and has the parameters, buffers and ``state_dict`` keys of
    ``nn.BatchNorm{1,2,3}d``, so checkpoints load in both directions.

    Example:
        >>> layer = SyncBatchNorm(16)            # process_group=None: the default (world) group
        >>> layer(torch.randn(4, 16, 8, 8)).shape
        torch.Size([4, 16, 8, 8])
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group: Any = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        # bias= only when it matters: torch's _BatchNorm takes it since 2.10.
        super().__init__(
            num_features,
            eps,
            momentum,
            affine,
            track_running_stats,
            device=device,
            dtype=dtype,
            **({} if bias else {"bias": False}),
        )
        self.process_group = process_group

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(  # no f-string of a tuple: TorchScript compiles this
                "SyncBatchNorm expects an (N, C, *) input with at least 2 dims, got shape "
                + str(list(input.shape))
                + ": add a batch dimension"
            )

    @torch.jit.unused
    def _world_size(self) -> int:
        if not (dist.is_available() and dist.is_initialized()):
            return 1
        return dist.get_world_size(self.process_group or dist.group.WORLD)

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        return self._sync_batch_norm(input)

    def _sync_batch_norm(self, input: Tensor) -> Tensor:
        """The forward pass on (N, C, *) input, without the input check."""
        # Same momentum / num_batches_tracked bookkeeping as _BatchNorm.forward.
        factor = batch_norm_factor(
            self.training, self.track_running_stats, self.momentum, self.num_batches_tracked
        )
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        running_mean = self.running_mean if track else None
        running_var = self.running_var if track else None

        # TorchScript (a deployment format) never syncs: scripted, the layer is BatchNorm.
        if not torch.jit.is_scripting():  # noqa: SIM102 (compiled away only on its own)
            if self.training and self._world_size() > 1:
                return self._synced(input, running_mean, running_var, factor)
        # Eval mode, no process group, or a single rank: plain BatchNorm, same code path.
        return F.batch_norm(
            input, running_mean, running_var, self.weight, self.bias, bn_training, factor, self.eps
        )

    @torch.jit.unused
    def _synced(
        self,
        input: Tensor,
        running_mean: Tensor | None,
        running_var: Tensor | None,
        factor: float,
    ) -> Tensor:
        group = self.process_group or dist.group.WORLD
        return _SyncBatchNormFunction.apply(
            input,
            self.weight,
            self.bias,
            running_mean,
            running_var,
            self.eps,
            factor,
            group,
            dist.get_world_size(group),
            dist.get_backend(group),
        )

    @classmethod
    def convert_sync_batchnorm(cls, module: nn.Module, process_group: Any = None) -> nn.Module:
        """Replace every BatchNorm*d in ``module`` by this class, sharing parameters and buffers.

        Same contract as ``torch.nn.SyncBatchNorm.convert_sync_batchnorm``; each new layer also
        records its original class so :func:`revert_sync_batchnorm` can restore it exactly.
        """
        return convert_sync_batchnorm(module, process_group, sync_class=cls)


#: The revert target when a layer's original class is unknown; kept as a public alias of
#: :class:`~normsuite.norms.layers.BatchNormNd` (one class, so isinstance checks agree).
BatchNormXd = BatchNormNd


def _is_sync_class(cls: type) -> bool:
    return issubclass(cls, (SyncBatchNorm, nn.SyncBatchNorm))


def is_sync_batchnorm(module: nn.Module) -> bool:
    """True for normsuite's SyncBatchNorm (both layouts) and ``torch.nn.SyncBatchNorm``."""
    return _is_sync_class(type(module))


def _check_module(module: object, function: str) -> None:
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"{function} takes a model (a torch.nn.Module), got {type(module).__name__}: "
            f"{module!r:.60}"
        )


def _move_state(old: _BatchNorm, new: _BatchNorm) -> _BatchNorm:
    """Give ``new`` the very parameter and buffer objects of ``old`` (optimizers keep working)."""
    new.weight = old.weight
    new.bias = old.bias
    new.running_mean = old.running_mean
    new.running_var = old.running_var
    new.num_batches_tracked = old.num_batches_tracked
    new.train(old.training)
    if hasattr(old, "qconfig"):
        new.qconfig = old.qconfig
    return new


def convert_sync_batchnorm(
    module: nn.Module,
    process_group: Any = None,
    *,
    sync_class: type[_BatchNorm] | None = None,
) -> nn.Module:
    """Replace every (unsynced) BatchNorm in ``module`` by a SyncBatchNorm sharing its state.

    ``sync_class`` is the class for channels-first layers: normsuite's :class:`SyncBatchNorm`
    by default, or ``torch.nn.SyncBatchNorm`` (CUDA + NCCL only). Channels-last BN layers
    (``(N, L, C)`` input, ``channels_last = True``) always become normsuite's
    ``SyncBatchNormLastDim``, since torch's SyncBatchNorm only knows channels-first.
    """
    from normsuite.norms.sync_last_dim import SyncBatchNormLastDim  # imports this module

    _check_module(module, "convert_sync_batchnorm")
    if sync_class is not None and not (
        isinstance(sync_class, type) and issubclass(sync_class, _BatchNorm)
    ):
        raise TypeError(
            "sync_class must be a BatchNorm class such as normsuite's SyncBatchNorm or "
            f"torch.nn.SyncBatchNorm, got {sync_class!r}"
        )
    first = sync_class or SyncBatchNorm

    def convert(old: nn.Module) -> nn.Module:
        out = old
        if isinstance(old, _BatchNorm) and not is_sync_batchnorm(old):
            cls = SyncBatchNormLastDim if getattr(old, "channels_last", False) else first
            out = cls(
                old.num_features,
                old.eps,
                old.momentum,
                old.affine,
                old.track_running_stats,
                process_group,
                **({} if old.bias is not None or not old.affine else {"bias": False}),
            )
            _move_state(old, out)
            setattr(out, ORIGINAL_CLASS_ATTR, type(old))
        for name, child in old.named_children():
            out.add_module(name, convert(child))
        return out

    return convert(module)


def revert_sync_batchnorm(model: nn.Module) -> nn.Module:
    """Turn every SyncBatchNorm (normsuite's or torch's) back into its original BatchNorm class.

    Parameters and buffers are carried over as the same objects, so values are exact. Layers
    converted by normsuite (``convert_sync_batchnorm``, ``convert_norms(model, "syncbn")``,
    :class:`normsuite.NormSync`) come back as the class they had, e.g. ``nn.BatchNorm2d``;
    a layer built directly as SyncBatchNorm (or converted from a non-BN norm) becomes a
    :class:`~normsuite.norms.layers.BatchNormNd` (``BatchNormLastDim`` for channels-last
    layers).
    """
    _check_module(model, "revert_sync_batchnorm")
    out = model
    if is_sync_batchnorm(model):
        cls = getattr(model, ORIGINAL_CLASS_ATTR, None)
        if not (isinstance(cls, type) and issubclass(cls, _BatchNorm)) or _is_sync_class(cls):
            # Built as SyncBN, or converted from a non-BN norm: a BN for the same layout.
            cls = BatchNormLastDim if getattr(model, "channels_last", False) else BatchNormNd
        no_bias = {} if model.bias is not None or not model.affine else {"bias": False}
        out = cls(
            model.num_features,
            model.eps,
            model.momentum,
            model.affine,
            model.track_running_stats,
            **no_bias,
        )
        _move_state(model, out)
    for name, child in model.named_children():
        out.add_module(name, revert_sync_batchnorm(child))
    return out
