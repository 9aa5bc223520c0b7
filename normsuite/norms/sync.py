"""A SyncBatchNorm that works on every ``torch.distributed`` backend (gloo on CPU, NCCL on GPU).

``torch.nn.SyncBatchNorm`` only runs on CUDA ("SyncBatchNorm layers only work with GPU
modules") because it calls CUDA-only kernels. This one builds the same computation from
batch-norm kernels that every device has, so a multi-process BN model can be trained and
tested on CPUs.

In training mode under an initialized process group with more than one rank, every forward
pass gathers each rank's ``[count, mean, M2]`` (one collective) and combines them with Chan's
parallel formula, so ranks with unequal batch sizes, or an empty batch, give the statistics of
the combined batch. The backward pass all-reduces ``[sum_dy, sum_dy_xmu]`` (one collective).
Statistics are kept in float32 (or float64) even for fp16/bf16 inputs. In eval mode, without
a process group, or with world size 1, the layer runs ``F.batch_norm`` exactly like BatchNorm.

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

from normsuite.norms.layers import BatchNormLastDim, BatchNormNd

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


def _channel_view(t: Tensor, ndim: int) -> Tensor:
    """Shape a per-channel (C,) vector so it broadcasts over (N, C, *)."""
    return t.view(1, -1, *([1] * (ndim - 2)))


# The per-element work runs in torch's own batch-norm kernels (one fused pass each, any device)
# instead of chains of broadcasting ops, which cost 4-6x more on CPU:
#   _local_stats:   training-mode batch norm statistics (Welford, numerically stable);
#   _affine:        eval-mode batch norm with mean 0, var 1, eps 0 is exactly x * scale + shift;
#   _local_grad_sums: batch norm backward's per-channel reductions, around the GLOBAL mean.


def _local_stats(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and biased variance of a non-empty (N, C, *) tensor."""
    _, mean, invstd = torch.native_batch_norm(x, None, None, None, None, True, 0.0, 0.0)
    # With eps=0 the kernel returns invstd 0 (not inf) for a constant channel.
    var = torch.where(invstd > 0, invstd.pow(-2), torch.zeros_like(invstd))
    return mean, var


def _affine(x: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
    """``x * scale + shift`` per channel, in one pass."""
    zeros = torch.zeros_like(scale)
    return F.batch_norm(x, zeros, torch.ones_like(scale), scale, shift, False, 0.0, 0.0)


def _local_grad_sums(dy: Tensor, x: Tensor, mean: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel ``sum(dy)`` and ``sum(dy * (x - mean))`` in one pass."""
    ones = torch.ones_like(mean)
    _, sum_dy_xmu, sum_dy = torch.ops.aten.native_batch_norm_backward(
        dy, x, None, None, None, mean, ones, True, 0.0, [False, True, True]
    )
    return sum_dy, sum_dy_xmu


def _all_gather_rows(row: Tensor, group: Any, world_size: int) -> Tensor:
    """Gather one row per rank into a (world_size, len(row)) tensor with a single collective."""
    if dist.get_backend(group) == "gloo":
        # gloo has no all_gather_into_tensor; the list form is still one collective.
        rows = [torch.empty_like(row) for _ in range(world_size)]
        dist.all_gather(rows, row, group=group)
        return torch.stack(rows)
    out = torch.empty(world_size * row.numel(), dtype=row.dtype, device=row.device)
    dist.all_gather_into_tensor(out, row, group=group)
    return out.view(world_size, -1)


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
    ) -> Tensor:
        channels = x.shape[1]
        acc = _stats_dtype(x.dtype)
        xf = x.to(acc)  # no copy for float32/float64; fp16/bf16 are computed in float32
        count = x.numel() // channels if channels else 0

        # Local count, mean and M2 (sum of squared deviations). Gathering M2 per rank rather
        # than all-reducing sum(x^2) avoids the cancellation of E[x^2] - E[x]^2 when |mean| >> std.
        if count > 0:
            mean, var = _local_stats(xf)
            m2 = var * count
        else:  # an empty rank still joins the collective, with zero weight
            mean = xf.new_zeros(channels)
            m2 = xf.new_zeros(channels)
        row = torch.cat([xf.new_full((1,), float(count)), mean, m2])
        table = _all_gather_rows(row, group, world_size)
        counts, means, m2s = table[:, :1], table[:, 1 : 1 + channels], table[:, 1 + channels :]

        total = counts.sum()
        if table.device.type == "cpu" and total.item() == 1:  # BatchNorm's own check; no GPU sync
            raise ValueError(
                "Expected more than 1 value per channel when training across all ranks: "
                "use a larger batch, GroupNorm, or FrozenBatchNorm"
            )
        safe_total = total.clamp(min=1.0)
        g_mean = (counts * means).sum(0) / safe_total  # Chan et al.'s parallel combination
        g_m2 = (m2s + counts * (means - g_mean) ** 2).sum(0)
        invstd = torch.rsqrt(g_m2 / safe_total + eps)

        if running_mean is not None and running_var is not None:
            # running_var tracks the unbiased variance of the combined batch, as BatchNorm does.
            unbiased = g_m2 / (total - 1.0).clamp(min=1.0)
            running_mean.mul_(1.0 - momentum).add_(g_mean.to(running_mean.dtype), alpha=momentum)
            running_var.mul_(1.0 - momentum).add_(unbiased.to(running_var.dtype), alpha=momentum)

        scale = invstd if weight is None else invstd * weight.to(acc)
        shift = -g_mean * scale
        if bias is not None:
            shift = shift + bias.to(acc)

        ctx.save_for_backward(x, weight, g_mean, invstd, total)
        ctx.group = group
        ctx.bias_dtype = None if bias is None else bias.dtype
        if count == 0:
            return torch.empty_like(x)
        return _affine(xf, scale, shift).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, weight, mean, invstd, total = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        channels = x.shape[1]
        acc = mean.dtype
        xf = x.to(acc)
        dy = grad_out.to(acc)

        if x.numel() > 0:
            sum_dy, sum_dy_xmu = _local_grad_sums(dy.contiguous(), xf, mean)
        else:
            sum_dy = mean.new_zeros(channels)
            sum_dy_xmu = mean.new_zeros(channels)

        # weight/bias gradients stay local: DDP averages parameter gradients across ranks.
        grad_w = (sum_dy_xmu * invstd).to(weight.dtype) if need_w and weight is not None else None
        grad_b = sum_dy.to(ctx.bias_dtype) if need_b and ctx.bias_dtype is not None else None

        grad_x = None
        if need_x:  # the same on every rank (same model), so every rank joins this collective
            packed = torch.cat([sum_dy, sum_dy_xmu])
            dist.all_reduce(packed, group=ctx.group)
            sum_dy, sum_dy_xmu = packed[:channels], packed[channels:]
            if x.numel() == 0:
                return torch.zeros_like(x), grad_w, grad_b, None, None, None, None, None, None
            n = total.clamp(min=1.0)
            # dx = a * (dy - sum_dy/N - (x - mean) * k), k = invstd^2 * sum_dy_xmu / N,
            # written as a*dy + b*x + c so that it takes two fused passes.
            a = invstd if weight is None else invstd * weight.to(acc)
            k = invstd * invstd * sum_dy_xmu / n
            b = -a * k
            c = a * (k * mean - sum_dy / n)
            grad_x = _affine(xf, b, c).add_(_affine(dy, a, torch.zeros_like(a))).to(x.dtype)
        return grad_x, grad_w, grad_b, None, None, None, None, None, None


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
    ) -> None:
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype
        )
        self.process_group = process_group

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(
                f"SyncBatchNorm expects an (N, C, *) input with at least 2 dims, got "
                f"shape {tuple(input.shape)}: add a batch dimension"
            )

    def _world_size(self) -> int:
        if not (dist.is_available() and dist.is_initialized()):
            return 1
        return dist.get_world_size(self.process_group or dist.group.WORLD)

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        # Same momentum / num_batches_tracked bookkeeping as _BatchNorm.forward.
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        running_mean = self.running_mean if track else None
        running_var = self.running_var if track else None

        world_size = self._world_size() if self.training else 1
        if not bn_training or world_size == 1:
            # Eval mode, no process group, or a single rank: plain BatchNorm, same code path.
            return F.batch_norm(
                input,
                running_mean,
                running_var,
                self.weight,
                self.bias,
                bn_training,
                factor,
                self.eps,
            )
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
            world_size,
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
    out = model
    if is_sync_batchnorm(model):
        cls = getattr(model, ORIGINAL_CLASS_ATTR, None)
        if not (isinstance(cls, type) and issubclass(cls, _BatchNorm)) or _is_sync_class(cls):
            # Built as SyncBN, or converted from a non-BN norm: a BN for the same layout.
            cls = BatchNormLastDim if getattr(model, "channels_last", False) else BatchNormNd
        out = cls(
            model.num_features, model.eps, model.momentum, model.affine, model.track_running_stats
        )
        _move_state(model, out)
    for name, child in model.named_children():
        out.add_module(name, revert_sync_batchnorm(child))
    return out
