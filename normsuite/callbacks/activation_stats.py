"""ActivationStats: per-layer activation statistics on the device, nearly free.

The callback hooks the input and output of each watched layer, from ``on_fit_start`` on (after
the strategy has moved the model and, with ``NormSync`` or ``sync_batchnorm=True``, swapped
its BatchNorm layers). On a *logging step* the hooks reduce every tensor on its own device
(per-channel first and second moments, taken about each channel's mean, counts, minima and
maxima) into one packed float64 buffer; at the end of the step the buffer is all-reduced
across DDP ranks with two collectives (one SUM, one MAX) and moved to the host with ONE
non-blocking copy. Means and standard deviations are finalized on the host from the raw
reductions, so the logged numbers are the statistics of the combined global batch. On every
other step the hooks return after checking a Python flag: no kernels, no host-device syncs.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from ._select import (
    ModuleSelector,
    channel_dim,
    has_batch_statistics,
    has_inner_norms,
    is_norm_layer,
    select_modules,
)

__all__ = ["ActivationStats", "NonFiniteActivationError"]

_OFF, _WATCH, _RECORD = 0, 1, 2  # hook phases: do nothing / only flag NaN-Inf / full stats
_GAMMA_SMALL = 1e-3  # |gamma| below this counts as a collapsed channel
_LOWVAR_FACTOR = 10.0  # input variance below 10 x eps counts as "variance near eps"
_N_SCALARS = 3  # count, non-zeros, non-finite; then per channel sum(x) and sum(x^2), float64


class NonFiniteActivationError(FloatingPointError):
    """Raised by ``ActivationStats(on_nonfinite="raise")`` when NaN/Inf reach a watched layer."""


@dataclass(eq=False)  # compared by identity: a generated __eq__ would compare tensors
class _Slot:
    """A piece of the packed buffer: standalone until the next pack, then a view into it."""

    t: Tensor
    reduce: Literal["sum", "max"]

    @property
    def init(self) -> float:
        return 0.0 if self.reduce == "sum" else -math.inf


@dataclass
class _TensorSite:
    """One watched tensor: the input or output of one layer."""

    layer: str
    io: str  # "in" | "out"
    channels: int
    bins: int
    sums: _Slot  # [count, nonzero, nonfinite, chan_sum(C), chan_sumsq(C), hist(bins)?] float64
    ext: _Slot  # [max, -min]
    index: int  # forward order


@dataclass
class _LayerSite:
    """Per-layer parameter/buffer statistics (BatchNorm running stats, affine gamma)."""

    layer: str
    eps: float = 0.0
    running: _Slot | None = None  # [1, running_mean(C), running_var(C)]
    gamma: _Slot | None = None  # [numel, sum|gamma|, count(|gamma| < 1e-3)]


class ActivationStats(Callback):
    r"""Log per-layer activation statistics, computed on the device, to every logger.

    **Logged metrics** (at ``trainer.global_step``), for each watched layer and each of its
    input (``in``) and output (``out``):

    - ``act/<layer>/<in|out>/{mean,std,min,max,absmax,zero_frac,nonfinite,chan_spread}``;
      ``chan_spread`` is the (population) std over channels of the per-channel means, with
      channels on dim 1 for ``(N, C, ...)`` layers and on the last dim for ``(N, L, C)``
      layers (``nn.LayerNorm``, ``RMSNorm``, ``nn.Linear``).
    - BatchNorm: ``act/<layer>/bn_shift`` = mean over channels of
      ``|mu_B - running_mean| / sqrt(running_var + eps)`` with the running stats as they were
      *before* this step's update, and ``act/<layer>/bn_lowvar_frac``, the share of channels
      whose batch input variance is below ``10 * eps``.
    - Every affine norm: ``act/<layer>/gamma_absmean`` and ``act/<layer>/gamma_small_frac``
      (share of ``|gamma| < 1e-3``).
    - ``act/<layer>/order``: the layer's position in forward order (used by the plots).
    - With ``histogram_bins > 0``: a fixed-range histogram per tensor (values outside
      ``histogram_range`` land in the edge bins): a raw histogram for TensorBoard, and
      ``act/<layer>/<io>/hist/<k>`` bin fractions plus ``hist/lo``, ``hist/hi`` elsewhere.

    **Cost.** Statistics are computed only on logging steps (every ``every_n_steps``
    optimizer steps, by default the Trainer's ``log_every_n_steps``), training batches only.
    On other steps the hooks check a Python flag and return. A logging step costs a handful
    of reduction kernels per tensor, one packed ``non_blocking`` device-to-host copy (into
    pinned memory on CUDA) and, under DDP, one SUM and one MAX all-reduce. On CUDA the copy
    is read at the next logging step (or at the end of training), so the numbers reach the
    loggers one interval late, tagged with their own step; on CPU they are read at once.

    **Precision.** Per channel, each tensor gives its mean ``k`` and the sums of ``x - k`` and
    ``(x - k)^2``, accumulated in float32 (float64 for float64 activations; bf16/fp16
    activations are upcast), so a small variance around a large mean survives. These become
    float64 moments that add up over calls and DDP ranks, and the host combines channels with
    the law of total variance. Mean and std agree with a float64 reference to about 1e-6
    relative, also for |mean| >> std: the float64 combination adds a relative error of about
    1e-16 (mean/std)^2 to the variance (3e-9 at mean 50, std 0.01). Min, max, zero and
    non-finite counts are exact.

    **Non-finite values.** The first logging step where NaN/Inf appear names the first layer,
    in forward order, whose input or output holds them; ``on_nonfinite="warn"`` warns (once),
    ``"raise"`` raises :class:`NonFiniteActivationError`. Non-logging steps are not checked
    unless ``check_nonfinite_every_step=True``: then every training forward adds
    ``isfinite(x).all()`` per watched tensor into a device-side flag vector (three small
    kernels per tensor, still no host sync), which is read with the next logging step's copy.

    **DDP.** All ranks take part in the collectives, so all ranks must run the same watched
    layers on a logging step; rank 0 publishes. BatchNorm running stats are averaged over ranks
    (identical under DDP's default ``broadcast_buffers=True``). Layers are hooked in
    ``on_fit_start``, after ``strategy.setup``, so the SyncBatchNorm layers that
    :class:`~normsuite.NormSync` or ``sync_batchnorm=True`` put in place are the ones watched.

    **torch.compile.** A model compiled with ``torch.compile`` works and gives the eager
    numbers: dynamo traces the hooks into the graph and guards on the phase flag and the
    buffer layout, so the step compiles three times (first logging step, first other step,
    second logging step) and never again (checked on torch 2.14, CPU, eager and inductor).

    Args:
        modules: ``None`` (every norm layer), ``"all"`` (every leaf module), or a sequence of
            layer types and/or name globs such as ``["layer1.*", nn.GroupNorm]``.
        every_n_steps: logging interval in optimizer steps; ``None`` takes the Trainer's
            ``log_every_n_steps``.
        on_nonfinite: ``"warn"`` or ``"raise"``.
        check_nonfinite_every_step: also watch for NaN/Inf on non-logging steps (see above).
        histogram_bins: number of fixed histogram bins per tensor; 0 turns histograms off.
        histogram_range: ``(lo, hi)`` of the histograms.

    Example::

        from lightning import Trainer
        from normsuite import ActivationStats

        trainer = Trainer(callbacks=[ActivationStats(every_n_steps=50)])
        # then: normsuite plot-stats lightning_logs/version_0 -o stats.png
    """

    def __init__(
        self,
        modules: ModuleSelector = None,
        every_n_steps: int | None = None,
        on_nonfinite: Literal["warn", "raise"] = "warn",
        check_nonfinite_every_step: bool = False,
        histogram_bins: int = 0,
        histogram_range: tuple[float, float] = (-5.0, 5.0),
    ) -> None:
        if every_n_steps is not None and (
            not isinstance(every_n_steps, int)
            or isinstance(every_n_steps, bool)
            or every_n_steps < 1
        ):
            raise ValueError(
                f"every_n_steps must be a positive integer or None, got {every_n_steps!r}"
            )
        if on_nonfinite not in ("warn", "raise"):
            raise ValueError(f"on_nonfinite must be 'warn' or 'raise', got {on_nonfinite!r}")
        if not isinstance(histogram_bins, int) or histogram_bins < 0:
            raise ValueError(f"histogram_bins must be an integer >= 0, got {histogram_bins!r}")
        lo, hi = (float(v) for v in histogram_range)
        if not lo < hi:
            raise ValueError(
                f"histogram_range must be (lo, hi) with lo < hi, got {histogram_range!r}"
            )
        self.modules = modules
        self.every_n_steps = every_n_steps
        self.on_nonfinite = on_nonfinite
        self.check_nonfinite_every_step = check_nonfinite_every_step
        self.histogram_bins = histogram_bins
        self.histogram_range = (lo, hi)
        #: the metrics of the last logging step that was read back (all ranks), for inspection
        self.last_metrics: dict[str, float] = {}
        self.first_nonfinite: dict[str, Any] | None = None
        self._last_step = -1  # the last recorded step (checkpointed)
        self._reset_runtime()

    # ------------------------------------------------------------------ state
    def _reset_runtime(self) -> None:
        """Drop every hook and tensor reference (``teardown``, ``on_exception``); keeps the
        checkpointed state (``_last_step``, ``first_nonfinite``)."""
        for handle in getattr(self, "_handles", []):
            handle.remove()
        self._handles: list[RemovableHandle] = []
        self._set_observers(on=False)
        # (name, module) of modules with norms inside (LN-RNNs): they get an observer callable
        # on logging steps instead of hooks (their norms are functional, per time step)
        self._observed: list[tuple[str, nn.Module]] = []
        self._sites: dict[tuple[str, str], _TensorSite] = {}
        self._layers: dict[str, _LayerSite] = {}
        self._order: list[_TensorSite] = []
        self._slots: list[_Slot] = []
        self._buf: Tensor | None = None
        self._init: Tensor | None = None
        self._host: Tensor | None = None
        self._n_sum = 0
        # per site, -(first non-logging step with NaN/Inf) since the last copy; -inf: none
        self._flags: Tensor | None = None
        self._step = -1  # the step of the current training batch
        self._bad: list[tuple[float, int, _TensorSite]] = []  # (first bad step, order, site)
        self._flag_slot: _Slot | None = None
        self._pending: tuple[int, Any] | None = None  # (step, cuda event) of an unread copy
        self._phase = _OFF
        self._seen: set[str] = set()
        self._recording_step: int | None = None
        self._every = 1

    @property
    def state_key(self) -> str:
        return self._generate_state_key(modules=repr(self.modules))

    def state_dict(self) -> dict[str, Any]:
        return {"last_step": self._last_step, "first_nonfinite": self.first_nonfinite}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._last_step = int(state_dict.get("last_step", -1))
        self.first_nonfinite = state_dict.get("first_nonfinite")

    # ------------------------------------------------------------------ Lightning hooks
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Not in `setup`: Lightning calls the callbacks' `setup` before `strategy.setup`, which
        # moves the model to its device and, with a LayerSync plugin (NormSync,
        # sync_batchnorm=True), replaces every BatchNorm by a new SyncBatchNorm object; hooks
        # attached earlier would stay on the discarded layers. `on_fit_start` runs after it.
        self._reset_runtime()
        self._every = self.every_n_steps or max(1, int(trainer.log_every_n_steps))
        selected = select_modules(pl_module, self.modules)
        if not selected:
            if self.modules is None:
                warnings.warn(
                    "ActivationStats found no normalization layer to watch; pass modules='all' "
                    "or a list of layer types / name globs",
                    stacklevel=2,
                )
                return
            raise ValueError(
                f"ActivationStats(modules={self.modules!r}) matched no module; pass 'all', "
                "layer types, or name globs like 'layer1.*'"
            )
        for name, module in selected:
            if has_inner_norms(module):
                self._observed.append((name, module))
                if self.modules is None:
                    continue  # by default the norms inside, not the RNN's own input/output
            self._attach(name, module)
        if self.check_nonfinite_every_step and self._observed and not self._handles:
            warnings.warn(
                "ActivationStats(check_nonfinite_every_step=True) cannot watch the norms inside "
                "LN-RNN cells between logging steps; add modules to hook, e.g. modules=['head']",
                stacklevel=2,
            )

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit":
            self._reset_runtime()
            self._last_step = -1

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        # Lightning skips `teardown` after an exception: do not leave hooks on the model
        self._reset_runtime()

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        step = self._step = trainer.global_step
        # gradient accumulation: several batches share a global step; record the first only
        watching = bool(self._handles or self._observed)
        if step % self._every == 0 and step != self._last_step and watching:
            self._read_pending(trainer)
            if self._buf is not None:
                self._buf.copy_(self._init)  # device-side reset, no sync
            self._seen.clear()
            self._last_step = step
            self._recording_step = step
            self._phase = _RECORD
            self._set_observers(on=True)
        elif self.check_nonfinite_every_step and self._handles:
            self._phase = _WATCH

    def on_before_backward(
        self, trainer: Trainer, pl_module: LightningModule, loss: Tensor
    ) -> None:
        # forward is over: activation checkpointing re-runs forwards during backward
        self._phase = _OFF
        self._set_observers(on=False)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._phase = _OFF
        self._set_observers(on=False)
        if self._recording_step is not None:
            step, self._recording_step = self._recording_step, None
            self._publish(trainer, step)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._read_pending(trainer)

    # ------------------------------------------------------------------ hooks on the model
    def _set_observers(self, on: bool) -> None:
        """Give the modules with norms inside an observer for this forward, or take it away
        (off: they run their plain loops, no work and no call per step)."""
        for name, module in getattr(self, "_observed", []):
            module.norm_observer = functools.partial(self._observe, name) if on else None

    def _observe(
        self, module_name: str, site: str, x: Tensor, y: Tensor, weight: Tensor | None
    ) -> None:
        """A norm inside ``module_name`` (an LN-RNN cell norm): input and output stacked over
        time steps, features last; logged as the layer ``module_name.site``."""
        if self._phase != _RECORD:
            return
        name = f"{module_name}.{site}"
        layer = self._layers.setdefault(name, _LayerSite(name))
        self._record((name, "in"), x, -1)
        self._record((name, "out"), y, -1)
        if name not in self._seen:
            self._seen.add(name)
            self._record_gamma(layer, weight)

    # ------------------------------------------------------------------ hooks on the model
    def _attach(self, name: str, module: nn.Module) -> None:
        cdim = channel_dim(module)
        batch_stats = has_batch_statistics(module)
        affine_norm = is_norm_layer(module)  # "gamma" of a conv or linear layer means nothing
        eps = getattr(module, "eps", None)  # None on RMSNorm (dtype eps); only BN uses it
        layer = self._layers.setdefault(name, _LayerSite(name, eps=float(eps or 0.0)))

        def pre_hook(mod: nn.Module, args: tuple[Any, ...]) -> None:
            if not self._phase:  # the only work on a non-logging step
                return
            x = _first_tensor(args)
            if x is None:
                return
            if self._phase == _WATCH:
                self._watch((name, "in"), x)
                return
            self._record((name, "in"), x, cdim)
            if batch_stats and name not in self._seen:
                self._record_running(layer, mod)

        def post_hook(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            if not self._phase:
                return
            y = _first_tensor(out)
            if y is None:
                return
            if self._phase == _WATCH:
                self._watch((name, "out"), y)
                return
            self._record((name, "out"), y, cdim)
            if name not in self._seen:
                self._seen.add(name)  # parameter stats once per step, even for shared layers
                if affine_norm:
                    self._record_gamma(layer, getattr(mod, "weight", None))

        self._handles.append(module.register_forward_pre_hook(pre_hook))
        self._handles.append(module.register_forward_hook(post_hook))

    def _new_slot(self, like: Tensor, size: int, reduce: Literal["sum", "max"]) -> _Slot:
        init = 0.0 if reduce == "sum" else -math.inf
        slot = _Slot(torch.full((size,), init, dtype=torch.float64, device=like.device), reduce)
        self._slots.append(slot)
        return slot

    def _record(self, key: tuple[str, str], x: Tensor, cdim: int) -> None:
        if x.numel() == 0 or not x.is_floating_point():
            return  # e.g. the token ids going into an nn.Embedding under modules="all"
        x = x.detach()
        ndim = x.dim()
        channels = x.shape[cdim] if ndim >= 2 else 1
        site = self._sites.get(key)
        if site is None:
            site = _TensorSite(
                layer=key[0],
                io=key[1],
                channels=channels,
                bins=self.histogram_bins,
                sums=self._new_slot(x, _N_SCALARS + 2 * channels + self.histogram_bins, "sum"),
                ext=self._new_slot(x, 2, "max"),
                index=len(self._order),
            )
            self._sites[key] = site
            self._order.append(site)
        elif site.channels != channels:
            return  # a layer called on tensors of another width; keep the first width only
        # A few full passes, all on floats (boolean masks such as x == 0 or isfinite(x), and
        # var_mean over several dims, take slow unvectorized paths on CPU: 15x the sums):
        # 1-3. per channel, the mean k, then the sums of d = x - k and of d^2 (float32, float64
        #    for float64 activations). Sums of x and x^2 would lose the variance to
        #    cancellation when |mean| >> std (float32 E[x^2] - E[x]^2: std 0.023 for 0.010
        #    around 50); deviations from the channel's own mean keep it.
        # 4. zeros = n - count_nonzero(x) (NaN/Inf count as non-zero);
        # 5. non-finite = count_nonzero(x * 0): x * 0 is 0 where x is finite, NaN elsewhere;
        # 6. min and max.
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        dims = [d for d in range(ndim) if d != cdim % ndim] if ndim >= 2 else None
        if dims:
            k = xf.mean(dim=dims, keepdim=True)
            d = xf - k
            dsum = d.sum(dim=dims)
            dsq = d.square_().sum(dim=dims)
        else:
            k = xf.mean()
            d = (xf - k).reshape(-1)
            dsum, dsq = d.sum().reshape(1), torch.dot(d, d)[None]
        # -> float64 moments about 0, which add up over calls and DDP ranks (SUM all-reduce):
        # S1 = sum(x) = n k + sum(d), S2 = sum(x^2) = sum(d^2) + k (2 sum(d) + n k). In float64
        # the host's S2/n - (S1/n)^2 keeps the variance to ~1e-16 (mean/std)^2 relative.
        k64, dsum64, dsq64 = torch.stack([k.reshape(-1), dsum, dsq]).to(torch.float64)
        chan_sum = dsum64.add(k64, alpha=x.numel() // channels)
        chan_sq = torch.addcmul(dsq64, k64, dsum64 + chan_sum)
        counts = torch.stack([torch.count_nonzero(x), torch.count_nonzero(x * 0)])
        parts = [counts, chan_sum, chan_sq]
        if site.bins:
            lo, hi = self.histogram_range
            clamped = xf.float().clamp(lo, hi)  # out-of-range values land in the edge bins
            parts.append(torch.histc(clamped, bins=site.bins, min=lo, max=hi).to(torch.float64))
        sums = site.sums.t
        sums[:1].add_(x.numel())  # a Python int: no host-to-device copy
        sums[1:].add_(torch.cat([p.to(torch.float64) for p in parts]))
        mn, mx = torch.aminmax(x)
        torch.maximum(site.ext.t, torch.stack([mx, -mn]), out=site.ext.t)

    def _record_running(self, layer: _LayerSite, mod: nn.Module) -> None:
        rm, rv = getattr(mod, "running_mean", None), getattr(mod, "running_var", None)
        if rm is None or rv is None:
            return
        if layer.running is None:
            layer.running = self._new_slot(rm, 1 + 2 * rm.numel(), "sum")
        t = layer.running.t
        t[:1].add_(1)
        t[1:].add_(torch.cat([rm.detach(), rv.detach()]).to(torch.float64))

    def _record_gamma(self, layer: _LayerSite, w: Any) -> None:
        if not isinstance(w, Tensor) or w.numel() == 0:
            return
        if layer.gamma is None:
            layer.gamma = self._new_slot(w, 3, "sum")
        g = w.detach().abs().to(torch.float64)
        t = layer.gamma.t
        t[:1].add_(g.numel())
        t[1:].add_(torch.stack([g.sum(), (g < _GAMMA_SMALL).sum().to(torch.float64)]))

    def _watch(self, key: tuple[str, str], x: Tensor) -> None:
        site = self._sites.get(key)
        if site is None or self._flags is None or not x.is_floating_point():
            return  # only sites known from a logging step have a flag
        # keep the earliest bad step (stored negated so that DDP can reduce it with MAX)
        bad = (x.detach() * 0).sum().isnan()  # x * 0 is 0 where x is finite, NaN elsewhere
        flag = self._flags[site.index]
        torch.maximum(flag, torch.where(bad, -float(self._step), -math.inf), out=flag)

    # ------------------------------------------------------------------ buffer and publishing
    def _pack(self) -> None:
        """Lay every slot out in ONE buffer: sum slots first, then max slots."""
        if self.check_nonfinite_every_step and (
            self._flag_slot is None or self._flag_slot.t.numel() != len(self._order)
        ):
            like = self._order[0].sums.t
            old = self._flags
            self._flags = torch.full(
                (len(self._order),), -math.inf, dtype=torch.float64, device=like.device
            )
            if old is not None:
                self._flags[: old.numel()].copy_(old)
            if self._flag_slot is not None:
                self._slots.remove(self._flag_slot)
            self._flag_slot = self._new_slot(like, len(self._order), "max")
        if self._buf is not None and all(s.t._base is self._buf for s in self._slots):
            return
        ordered = [s for s in self._slots if s.reduce == "sum"] + [
            s for s in self._slots if s.reduce == "max"
        ]
        self._buf = torch.cat([s.t for s in ordered])
        self._init = torch.cat([torch.full_like(s.t, s.init) for s in ordered])
        self._n_sum = sum(s.t.numel() for s in ordered if s.reduce == "sum")
        offset = 0
        for s in ordered:
            n = s.t.numel()
            s.t = self._buf[offset : offset + n]
            offset += n
        self._slots = ordered
        pin = self._buf.device.type == "cuda"
        self._host = torch.empty(self._buf.numel(), dtype=torch.float64, pin_memory=pin)

    def _publish(self, trainer: Trainer, step: int) -> None:
        if not self._slots:
            return
        self._pack()
        buf = self._buf
        assert buf is not None and self._host is not None
        if self._flags is not None and self._flag_slot is not None:
            self._flag_slot.t.copy_(self._flags)
            self._flags.fill_(-math.inf)
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            # every rank joins: sums and counts add up, maxima (and -minima) take the max
            dist.all_reduce(buf[: self._n_sum], op=dist.ReduceOp.SUM)
            dist.all_reduce(buf[self._n_sum :], op=dist.ReduceOp.MAX)
        self._host.copy_(buf, non_blocking=True)  # the one device-to-host copy of this step
        if buf.device.type == "cuda":
            event = torch.cuda.Event()
            event.record()
            self._pending = (step, event)  # read at the next logging step: no sync now
        else:
            self._pending = (step, None)
            self._read_pending(trainer)

    def _read_pending(self, trainer: Trainer) -> None:
        if self._pending is None or self._host is None:
            return
        step, event = self._pending
        self._pending = None
        if event is not None:
            event.synchronize()  # long finished by now: the copy was queued a whole interval ago
        metrics, histograms = self._finalize(self._host.clone(), step)
        self.last_metrics = metrics
        self._check_nonfinite(trainer)
        if trainer.is_global_zero:
            self._log(trainer, metrics, histograms, step)

    def _finalize(
        self, host: Tensor, step: int
    ) -> tuple[dict[str, float], dict[str, tuple[Tensor, tuple[float, ...]]]]:
        """Raw reductions -> statistics, on the host (float64)."""
        metrics: dict[str, float] = {}
        histograms: dict[str, tuple[Tensor, tuple[float, ...]]] = {}
        chan_means: dict[tuple[str, str], tuple[Tensor, Tensor]] = {}
        layer_order: dict[str, float] = {}
        for site in self._order:
            off = _offset(self._buf, site.sums.t)
            raw = host[off : off + site.sums.t.numel()]
            ext = host[_offset(self._buf, site.ext.t) :][:2]
            n = raw[0].item()
            if n == 0:
                continue  # the layer did not run on this logging step
            c = site.channels
            nonzero, nonfinite = raw[1:_N_SCALARS].tolist()
            zeros = n - nonzero
            per_chan = n / c
            cm = raw[_N_SCALARS : _N_SCALARS + c] / per_chan  # channel means
            cvar = (raw[_N_SCALARS + c : _N_SCALARS + 2 * c] / per_chan - cm.square()).clamp_min(0)
            # law of total variance over equally sized channels: no large-number cancellation
            mean = cm.mean().item()
            var = cvar.mean().item() + cm.var(correction=0).item()
            var *= n / (n - 1) if n > 1 else 0.0
            mx, neg_mn = ext.tolist()
            prefix = f"act/{site.layer}/{site.io}/"
            metrics.update(
                {
                    prefix + "mean": mean,
                    prefix + "std": math.sqrt(var) if math.isfinite(var) else math.nan,
                    prefix + "min": -neg_mn,
                    prefix + "max": mx,
                    prefix + "absmax": max(mx, neg_mn),
                    prefix + "zero_frac": zeros / n,
                    prefix + "nonfinite": nonfinite,
                }
            )
            metrics[prefix + "chan_spread"] = cm.std(correction=0).item() if c > 1 else 0.0
            layer_order.setdefault(site.layer, float(len(layer_order)))
            metrics[f"act/{site.layer}/order"] = layer_order[site.layer]
            chan_means[(site.layer, site.io)] = (cm, cvar)
            if site.bins:
                b0 = _N_SCALARS + 2 * c
                counts = raw[b0 : b0 + site.bins]
                s, ss = mean * n, (cvar + cm.square()).sum().item() * per_chan
                histograms[prefix] = (counts, (s, ss, n, -neg_mn, mx))
        for name, layer in self._layers.items():
            if layer.running is not None:
                raw = host[_offset(self._buf, layer.running.t) :][: layer.running.t.numel()]
                k = raw[0].item()
                if k > 0 and (name, "in") in chan_means:
                    c = (raw.numel() - 1) // 2
                    rm, rv = raw[1 : 1 + c] / k, raw[1 + c :] / k
                    mu, var = chan_means[(name, "in")]
                    shift = (mu - rm).abs() / (rv + layer.eps).sqrt()
                    metrics[f"act/{name}/bn_shift"] = shift.mean().item()
                    lowvar = (var < _LOWVAR_FACTOR * layer.eps).double().mean().item()
                    metrics[f"act/{name}/bn_lowvar_frac"] = lowvar
            if layer.gamma is not None:
                raw = host[_offset(self._buf, layer.gamma.t) :][:3].tolist()
                if raw[0] > 0:
                    metrics[f"act/{name}/gamma_absmean"] = raw[1] / raw[0]
                    metrics[f"act/{name}/gamma_small_frac"] = raw[2] / raw[0]
        # earliest step with NaN/Inf per site: from the flags of the non-logging steps, or now
        flags = [-math.inf] * len(self._order)
        if self._flag_slot is not None:
            flags = host[_offset(self._buf, self._flag_slot.t) :][: len(self._order)].tolist()
        self._bad = []
        for site, flag in zip(self._order, flags, strict=True):
            first = -flag if flag > -math.inf else math.inf
            if metrics.get(f"act/{site.layer}/{site.io}/nonfinite", 0) > 0:
                first = min(first, step)
            if first < math.inf:
                self._bad.append((first, site.index, site))
        return metrics, histograms

    def _check_nonfinite(self, trainer: Trainer) -> None:
        if self.first_nonfinite is not None or not self._bad:
            return
        first, _, site = min(self._bad, key=lambda b: (b[0], b[1]))  # earliest, then forward order
        step = int(first)
        self.first_nonfinite = {"layer": site.layer, "io": site.io, "step": step}
        where = "input" if site.io == "in" else "output"
        msg = (
            f"ActivationStats: NaN/Inf first appear in the {where} of layer '{site.layer}' "
            f"at step {step}; inspect that layer and the one before it, lower the "
            "learning rate or clip gradients"
        )
        if self.on_nonfinite == "raise":
            raise NonFiniteActivationError(msg)
        if trainer.is_global_zero:
            warnings.warn(msg, RuntimeWarning, stacklevel=2)

    def _log(
        self,
        trainer: Trainer,
        metrics: dict[str, float],
        histograms: dict[str, tuple[Tensor, tuple[float, ...]]],
        step: int,
    ) -> None:
        from lightning.pytorch.loggers import TensorBoardLogger

        lo, hi = self.histogram_range
        for logger in trainer.loggers:
            out = dict(metrics)
            if isinstance(logger, TensorBoardLogger):
                for prefix, (counts, (s, ss, n, mn, mx)) in histograms.items():
                    edges = torch.linspace(lo, hi, self.histogram_bins + 1)[1:]
                    logger.experiment.add_histogram_raw(
                        prefix + "hist",
                        min=mn,
                        max=mx,
                        num=int(n),
                        sum=s,
                        sum_squares=ss,
                        bucket_limits=edges.tolist(),
                        bucket_counts=counts.tolist(),
                        global_step=step,
                    )
            else:
                for prefix, (counts, _) in histograms.items():
                    frac = counts / counts.sum().clamp_min(1)
                    out.update({f"{prefix}hist/{k:02d}": v for k, v in enumerate(frac.tolist())})
                    out[prefix + "hist/lo"], out[prefix + "hist/hi"] = lo, hi
            logger.log_metrics(out, step=step)


def _offset(buf: Tensor | None, view: Tensor) -> int:
    assert buf is not None
    return view.storage_offset() - buf.storage_offset()


def _first_tensor(value: Any) -> Tensor | None:
    """The tensor a hook watches: the value itself, or the first tensor of a tuple/list."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, Sequence) and not isinstance(value, str):
        for v in value:
            if isinstance(v, Tensor):
                return v
    return None
