"""Recurrent backbones: LSTM/GRU with the norm where it belongs.

* ``norm="none"``: ``nn.LSTM`` / ``nn.GRU`` (oneDNN/cuDNN kernels).
* ``norm="ln"`` / ``"rms"``: the layer-normalized cell of Ba, Kiros & Hinton 2016
  (arXiv:1607.06450): the input-to-hidden and hidden-to-hidden pre-activations are each
  normalized over all gates (4H for LSTM, 3H for GRU), and the LSTM cell state is
  normalized before its ``tanh``. This is the recommended choice (rule B6 of docs/design.md).
* ``norm="bn"`` / ``"gn"`` / ...: ``nn.LSTM`` / ``nn.GRU`` layers with the norm applied to
  the features between layers. This is the weaker choice: batch statistics mix time steps
  and sequences (Laurent et al. 2016 found BN on recurrent transitions does not help).

:class:`LayerNormLSTM` and :class:`LayerNormGRU` name their weights like ``nn.LSTM`` /
``nn.GRU`` (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...), so the weights of a trained
plain RNN import with ``load_state_dict(rnn.state_dict(), strict=False)``.

Speed: the input-to-hidden matmul of all time steps is hoisted out of the loop (one big
matmul and one norm over ``(T, N, G*H)``); each step costs one small matmul, one norm and
the gate arithmetic. The loop walks ``xi.unbind(0)``, not ``xi[t]``: the backward of T
``select`` ops fills T zero tensors of the full ``(T, N, G*H)`` size (quadratic in T; it
was most of the LN-LSTM's time), unbind's backward stacks the step gradients once.
``script=True`` runs the loop as TorchScript; on a 2-core CPU it was not faster than the
eager loop, so the default is eager (bench/rnn.py).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from normsuite.norms.layers import build_norm
from normsuite.norms.spec import NormSpec

#: ``observer(site, norm_input, norm_output, weight)``: see ``_LayerNormRNN.norm_observer``.
NormObserver = Callable[[str, torch.Tensor, torch.Tensor, "torch.Tensor | None"], None]

CELL_NORMS = ("ln", "rms", "none")  # "none" inside the cell = identity (ablations, tests)
_KIND_CODE = {"ln": 0, "rms": 1, "none": 2}


def _norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, kind: int, eps: float):
    """LayerNorm (kind 0), RMSNorm (kind 1, bias unused) or identity (kind 2) over the last dim."""
    if kind == 0:
        return F.layer_norm(x, [x.size(-1)], weight, bias, eps)
    if kind == 1:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight
    return x


def _lstm_loop(
    xi: torch.Tensor,
    h: torch.Tensor,
    c: torch.Tensor,
    w_hh: torch.Tensor,
    b_hh: torch.Tensor,
    ln_hh_w: torch.Tensor,
    ln_hh_b: torch.Tensor,
    ln_c_w: torch.Tensor,
    ln_c_b: torch.Tensor,
    kind: int,
    eps: float,
    record: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Run the LN-LSTM recurrence over ``xi`` = normalized input pre-activations (T, N, 4H).

    ``record``: also return the inputs and outputs of both norms, stacked over time:
    ``[hh_in, hh_out, c_in, c_out]`` (for ActivationStats on its logging steps).
    """
    outputs: list[torch.Tensor] = []
    seen: list[list[torch.Tensor]] = [[], [], [], []]
    w_t = w_hh.t()
    # b_hh is added after the norm, so it folds into the hoisted input term (one add, not T).
    # unbind, not xi[t]: the backward of T selects writes T zero-filled (T, N, 4H) tensors;
    # unbind's backward stacks the T step gradients once.
    for x_t in (xi + b_hh).unbind(0):
        hh = torch.mm(h, w_t)
        hh_normed = _norm(hh, ln_hh_w, ln_hh_b, kind, eps)
        i, f, g, o = (x_t + hh_normed).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        c_normed = _norm(c, ln_c_w, ln_c_b, kind, eps)
        h = torch.sigmoid(o) * torch.tanh(c_normed)
        outputs.append(h)
        if record:  # explicit appends: TorchScript compiles this loop too
            seen[0].append(hh.detach())
            seen[1].append(hh_normed.detach())
            seen[2].append(c.detach())
            seen[3].append(c_normed.detach())
    recorded = [torch.stack(store) for store in seen] if record else []
    return torch.stack(outputs), h, c, recorded


def _gru_loop(
    xi: torch.Tensor,
    h: torch.Tensor,
    w_hh: torch.Tensor,
    b_hh: torch.Tensor,
    ln_hh_w: torch.Tensor,
    ln_hh_b: torch.Tensor,
    kind: int,
    eps: float,
    record: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Run the LN-GRU recurrence; like ``nn.GRU``, ``r`` multiplies ``(W_hn h + b_hn)``.

    ``record``: also return ``[hh_in, hh_out]``, the norm's input and output over time.
    """
    outputs: list[torch.Tensor] = []
    seen: list[list[torch.Tensor]] = [[], []]
    w_t = w_hh.t()
    for x_t in xi.unbind(0):  # not xi[t]: see _lstm_loop
        hh = torch.mm(h, w_t)
        hh_normed = _norm(hh, ln_hh_w, ln_hh_b, kind, eps)
        if record:
            seen[0].append(hh.detach())
            seen[1].append(hh_normed.detach())
        gh = hh_normed + b_hh
        xr, xz, xn = x_t.chunk(3, 1)
        hr, hz, hn = gh.chunk(3, 1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        h = n + z * (h - n)  # = (1 - z) * n + z * h, one op fewer
        outputs.append(h)
    recorded = [torch.stack(store) for store in seen] if record else []
    return torch.stack(outputs), h, recorded


@functools.cache
def _scripted(loop: Callable[..., Any]) -> Callable[..., Any]:
    """TorchScript version of a loop, built on first use (not at import).

    TorchScript removes the per-step Python overhead, but autograd still records every op;
    bench/rnn.py compares it with the eager loop. It is deprecated in recent torch, so the
    deprecation warning is silenced here and it is opt-in (``script=True``).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.script(loop)


class _LayerNormRNN(nn.Module):
    """Shared machinery of :class:`LayerNormLSTM` and :class:`LayerNormGRU`."""

    _gates: int = 4
    _mode: str = "LSTM"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bias: bool = True,
        batch_first: bool = False,
        bidirectional: bool = False,
        norm: str = "ln",
        eps: float = 1e-5,
        script: bool = False,
        input_norm: bool | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        kind = NormSpec.parse(str(norm)).kind
        if kind not in CELL_NORMS:
            raise ValueError(
                f"{type(self).__name__} normalizes inside the cell with ln or rms (or none), "
                f"not {norm!r}; use RNNBackbone for norms between layers"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.bidirectional = bidirectional
        self.norm = kind
        self.eps = eps
        self.script = script
        self.dropout = float(dropout)
        # ActivationStats sets this on its logging steps to see the norms inside the cell:
        # observer(site, norm_input, norm_output, weight), inputs/outputs stacked over time.
        self.norm_observer: NormObserver | None = None
        self._kind = _KIND_CODE[kind]
        # Normalizing the first layer's input projection W_ih x over its G*H entries keeps only
        # the direction of W_ih x; with input_size == 1 that is sign(x): the magnitude of a
        # scalar signal (MNIST-1D as (N, 40, 1)) would be lost. Default: off for 1 feature.
        self.input_norm = input_size > 1 if input_norm is None else input_norm
        gh = self._gates * hidden_size
        dirs = 2 if bidirectional else 1
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * dirs
            for suffix in self._suffixes():
                name = f"l{layer}{suffix}"
                self.register_parameter(
                    f"weight_ih_{name}", nn.Parameter(torch.empty(gh, layer_input))
                )
                self.register_parameter(
                    f"weight_hh_{name}", nn.Parameter(torch.empty(gh, hidden_size))
                )
                # Biases are added after the norms, so with identity norms this is nn.LSTM.
                self.register_parameter(
                    f"bias_ih_{name}", nn.Parameter(torch.zeros(gh)) if bias else None
                )
                self.register_parameter(
                    f"bias_hh_{name}", nn.Parameter(torch.zeros(gh)) if bias else None
                )
                sites = {"ln_hh": gh}
                if layer > 0 or self.input_norm:
                    sites["ln_ih"] = gh
                if self._mode == "LSTM":
                    sites["ln_c"] = hidden_size
                # Only parameters the norm uses (RMSNorm has no shift, identity nothing), so
                # DDP never sees a parameter without a gradient.
                for site, size in sites.items():
                    if kind != "none":
                        self.register_parameter(
                            f"{site}_weight_{name}", nn.Parameter(torch.ones(size))
                        )
                    if kind == "ln":
                        self.register_parameter(
                            f"{site}_bias_{name}", nn.Parameter(torch.zeros(size))
                        )
        self.reset_parameters()

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse") if self.bidirectional else ("",)

    def reset_parameters(self) -> None:
        """``nn.LSTM``'s init for weights and biases: U(-1/sqrt(H), 1/sqrt(H)); norms at 1/0."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name, param in self.named_parameters():
            if name.startswith(("weight_", "bias_")):
                nn.init.uniform_(param, -bound, bound)
            elif "_weight_" in name:
                nn.init.ones_(param)
            else:
                nn.init.zeros_(param)

    def _p(self, stem: str, name: str) -> torch.Tensor:
        value = getattr(self, f"{stem}_{name}")
        if value is None:  # bias=False
            return self._empty.new_zeros(self._gates * self.hidden_size)
        return value

    def _ln(self, site: str, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight, bias) of a norm site; an empty tensor stands in for what the norm lacks."""
        weight = getattr(self, f"{site}_weight_{name}", None)
        bias = getattr(self, f"{site}_bias_{name}", None)
        return (
            self._empty if weight is None else weight,
            self._empty if bias is None else bias,
        )

    @property
    def _empty(self) -> torch.Tensor:
        return self.weight_ih_l0.new_empty(0)

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"norm={self.norm!r}, input_norm={self.input_norm}, batch_first={self.batch_first}, "
            f"bidirectional={self.bidirectional}, dropout={self.dropout}"
        )

    def _run_direction(
        self, x: torch.Tensor, name: str, state: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        raise NotImplementedError

    def _forward_impl(
        self, x: torch.Tensor, hx: tuple[torch.Tensor, ...] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        if x.dim() != 3:
            raise ValueError(f"expected a 3-d (batch, seq, feature) tensor, got {tuple(x.shape)}")
        if self.batch_first:
            x = x.transpose(0, 1)
        dirs = 2 if self.bidirectional else 1
        n_states = 2 if self._mode == "LSTM" else 1
        if hx is None:
            zeros = x.new_zeros(self.num_layers * dirs, x.size(1), self.hidden_size)
            hx = (zeros,) * n_states
        finals: list[list[torch.Tensor]] = [[] for _ in range(n_states)]
        for layer in range(self.num_layers):
            outs = []
            for d, suffix in enumerate(self._suffixes()):
                idx = layer * dirs + d
                state = tuple(s[idx] for s in hx)
                seq = x.flip(0) if suffix else x
                out, last = self._run_direction(seq, f"l{layer}{suffix}", state)
                outs.append(out.flip(0) if suffix else out)
                for k in range(n_states):
                    finals[k].append(last[k])
            x = torch.cat(outs, dim=2) if dirs == 2 else outs[0]
            # As nn.LSTM: dropout on each layer's outputs except the last, in training only.
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        if self.batch_first:
            x = x.transpose(0, 1)
        return x, tuple(torch.stack(f) for f in finals)

    def _input_preactivations(self, x: torch.Tensor, name: str) -> torch.Tensor:
        # Hoisted: one (T*N, I) x (I, G*H) matmul and one norm for all time steps.
        xi = F.linear(x, getattr(self, f"weight_ih_{name}"))
        if hasattr(self, f"ln_ih_weight_{name}"):
            normed = _norm(xi, *self._ln("ln_ih", name), self._kind, self.eps)
            self._observe(["ln_ih"], name, [xi.detach(), normed.detach()])
            xi = normed
        return xi + self._p("bias_ih", name)

    def _recording(self) -> bool:
        return self.norm_observer is not None and self._kind != _KIND_CODE["none"]

    def __getstate__(self) -> dict[str, Any]:
        # A copy (deepcopy, pickle) made during a logging step must not carry the observer,
        # a method of the callback: the copy would record on every step into a stale callback.
        state = dict(super().__getstate__())
        state["norm_observer"] = None
        return state

    def _observe(self, sites: list[str], name: str, recorded: list[torch.Tensor]) -> None:
        """Hand ``[in, out, in, out, ...]`` of each norm site to the observer, if any."""
        observer = self.norm_observer
        if observer is None or self._kind == _KIND_CODE["none"]:
            return
        for i, site in enumerate(sites):
            weight = getattr(self, f"{site}_weight_{name}", None)
            observer(f"{site}_{name}", recorded[2 * i], recorded[2 * i + 1], weight)


class LayerNormLSTM(_LayerNormRNN):
    """Layer-normalized LSTM (Ba et al. 2016), a drop-in for ``nn.LSTM``.

    Example:
        >>> lstm = LayerNormLSTM(16, 32, num_layers=2, batch_first=True)   # doctest: +SKIP
        >>> out, (h, c) = lstm(torch.randn(4, 10, 16))                      # doctest: +SKIP
        >>> lstm.load_state_dict(nn.LSTM(16, 32, 2).state_dict(), strict=False)  # doctest: +SKIP
    """

    _gates = 4
    _mode = "LSTM"

    def _run_direction(self, x, name, state):
        h, c = state
        loop = _scripted(_lstm_loop) if self.script else _lstm_loop
        out, h, c, recorded = loop(
            self._input_preactivations(x, name),
            h,
            c,
            getattr(self, f"weight_hh_{name}"),
            self._p("bias_hh", name),
            *self._ln("ln_hh", name),
            *self._ln("ln_c", name),
            self._kind,
            self.eps,
            self._recording(),
        )
        self._observe(["ln_hh", "ln_c"], name, recorded)
        return out, (h, c)

    def forward(
        self, x: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        out, (h, c) = self._forward_impl(x, hx)
        return out, (h, c)


class LayerNormGRU(_LayerNormRNN):
    """Layer-normalized GRU, a drop-in for ``nn.GRU`` (same gate order r, z, n)."""

    _gates = 3
    _mode = "GRU"

    def _run_direction(self, x, name, state):
        (h,) = state
        loop = _scripted(_gru_loop) if self.script else _gru_loop
        out, h, recorded = loop(
            self._input_preactivations(x, name),
            h,
            getattr(self, f"weight_hh_{name}"),
            self._p("bias_hh", name),
            *self._ln("ln_hh", name),
            self._kind,
            self.eps,
            self._recording(),
        )
        self._observe(["ln_hh"], name, recorded)
        return out, (h,)

    def forward(
        self, x: torch.Tensor, hx: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, (h,) = self._forward_impl(x, None if hx is None else (hx,))
        return out, h


RNN_CELLS = ("lstm", "gru")


class RNNBackbone(nn.Module):
    """LSTM/GRU feature extractor for ``(N, L, C)`` sequences -> ``(N, H * directions)``.

    The features are the last layer's final hidden state (forward direction at the last
    step, backward direction at the first). Where the norm goes depends on its kind; see
    the module docstring. ``dropout`` acts as in ``nn.LSTM`` for every norm: on the outputs
    of each stacked layer except the last, in training only.
    """

    def __init__(
        self,
        cell: str = "lstm",
        input_size: int = 1,
        hidden_size: int = 128,
        num_layers: int = 1,
        norm: str = "ln",
        *,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if cell not in RNN_CELLS:
            raise ValueError(f"unknown RNN cell {cell!r}; use one of {', '.join(RNN_CELLS)}")
        spec = NormSpec.parse(str(norm))
        self.cell = cell
        self.norm_kind = spec.kind
        self.hidden_size = hidden_size
        self.bidirectional = bidirectional
        dirs = 2 if bidirectional else 1
        self.out_features: int = hidden_size * dirs
        plain = nn.LSTM if cell == "lstm" else nn.GRU
        self.between: nn.ModuleList | None = None
        if spec.kind == "none":
            self.rnn: nn.Module = plain(
                input_size,
                hidden_size,
                num_layers,
                batch_first=True,
                bidirectional=bidirectional,
                dropout=dropout if num_layers > 1 else 0.0,
            )
        elif spec.kind in ("ln", "rms"):
            ln_cls = LayerNormLSTM if cell == "lstm" else LayerNormGRU
            self.rnn = ln_cls(
                input_size,
                hidden_size,
                num_layers,
                batch_first=True,
                bidirectional=bidirectional,
                norm=spec.kind,
                dropout=dropout if num_layers > 1 else 0.0,
            )
        else:
            # Weaker choice (batch statistics across time steps): norm between layers.
            self.rnn = nn.ModuleList(
                plain(
                    input_size if layer == 0 else hidden_size * dirs,
                    hidden_size,
                    batch_first=True,
                    bidirectional=bidirectional,
                )
                for layer in range(num_layers)
            )
            self.between = nn.ModuleList(
                build_norm(str(spec), hidden_size * dirs, ndim=3, channels_last=True)
                for _ in range(num_layers)
            )
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.between is None:
            out, _ = self.rnn(x)
        else:
            out = x
            for layer, (rnn, norm) in enumerate(zip(self.rnn, self.between, strict=True)):
                out, _ = rnn(out)
                out = norm(out)
                if layer < len(self.between) - 1:
                    out = self.dropout(out)
        h = self.hidden_size
        if self.bidirectional:
            return torch.cat([out[:, -1, :h], out[:, 0, h:]], dim=1)
        return out[:, -1]
