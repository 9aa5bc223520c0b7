"""ActivationStats sees the LayerNorms inside LayerNormLSTM/GRU cells (functional, per time step).

Reference: the cell's own recurrence rebuilt from its weights and outputs in float64 (the
norm's input at step t is h_{t-1} W_hh^T), and torch's F.layer_norm for the norm's output.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from test_activation_stats import MemoryLogger, close, reference, trainer
from torch import nn

from normsuite.callbacks.activation_stats import ActivationStats
from normsuite.models.rnn import LayerNormGRU, LayerNormLSTM

T, N, FEATURES, HIDDEN = 7, 8, 3, 6


class SeqNet(L.LightningModule):
    """A 2-layer bidirectional LN-RNN on (N, T, F) sequences, then a linear head."""

    def __init__(self, cell: type, lr: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lr = lr
        self.rnn = cell(FEATURES, HIDDEN, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * HIDDEN, 3)
        self.observer_during_forward: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.observer_during_forward.append(self.rnn.norm_observer is not None)
        out, _ = self.rnn(x)
        return self.head(out[:, -1])

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def _loader() -> torch.utils.data.DataLoader:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4 * N, T, FEATURES, generator=g) * 2.0 + 0.5
    y = torch.randint(0, 3, (4 * N,), generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=N)


def _recorded(net: SeqNet, x: torch.Tensor) -> dict[str, tuple[torch.Tensor, ...]]:
    """What the cell reports to an observer for one forward: site -> (in, out, weight)."""
    seen: dict[str, tuple[torch.Tensor, ...]] = {}
    net.rnn.norm_observer = lambda site, a, b, w: seen.setdefault(site, (a, b, w))
    with torch.no_grad():
        net.rnn(x)
    net.rnn.norm_observer = None
    return seen


@pytest.mark.parametrize(
    ("cell", "sites"),
    [
        (LayerNormGRU, ["ln_hh"]),
        (LayerNormLSTM, ["ln_hh", "ln_c"]),
    ],
)
def test_cell_norms_are_logged_with_the_statistics_of_the_recurrence(
    cell: type, sites: list[str]
) -> None:
    net = SeqNet(cell)
    mem = MemoryLogger()
    trainer([ActivationStats(every_n_steps=2)], max_steps=3, logger=mem).fit(net, _loader())
    assert mem.steps() == [0, 2]
    # zero work on other steps: the observer is there only for the logging steps' forwards
    assert net.observer_during_forward == [True, False, True]
    assert net.rnn.norm_observer is None

    x = next(iter(_loader()))[0]  # lr = 0: step 0 saw these weights and this batch
    seen = _recorded(net, x)
    # every layer and direction normalizes its input projection (3 features: input_norm on)
    every = ["ln_ih", *sites]
    names = {f"{s}_l{layer}{d}" for layer in (0, 1) for d in ("", "_reverse") for s in every}
    assert set(seen) == names

    # Independent check of what is reported: the norm's input is h_{t-1} W_hh^T of the
    # direction's own outputs, and its output is F.layer_norm of that input.
    out, _ = net.rnn(x)
    h = out.detach().double().transpose(0, 1)[..., :HIDDEN]  # (T, N, H), layer 1 forward
    w_hh = net.rnn.weight_hh_l1.detach().double()
    hh_in = seen["ln_hh_l1"][0].double()
    torch.testing.assert_close(hh_in[0], torch.zeros_like(hh_in[0]))  # h_0 = 0
    torch.testing.assert_close(hh_in[1:], h[:-1] @ w_hh.T)
    for name, (x_in, x_out, weight) in seen.items():
        bias = getattr(net.rnn, name.replace("_l", "_bias_l", 1))
        ref = F.layer_norm(x_in.double(), [x_in.shape[-1]], weight.double(), bias.double())
        torch.testing.assert_close(x_out.double(), ref, rtol=1e-5, atol=1e-5, msg=name)

    logged = mem.records[0][1]  # step 0
    for name, (x_in, x_out, weight) in seen.items():
        for io, tensor in (("in", x_in), ("out", x_out)):
            for stat, value in reference(tensor, -1).items():
                got = logged[f"act/rnn.{name}/{io}/{stat}"]
                assert close(got, value, stat), (name, io, stat, got, value)
        absmean = weight.detach().double().abs().mean().item()
        assert logged[f"act/rnn.{name}/gamma_absmean"] == pytest.approx(absmean, rel=1e-12)
    assert "act/rnn/in/mean" not in logged  # by default the norms inside, not the RNN's I/O


def test_explicitly_selected_rnn_also_gets_its_own_input_and_output() -> None:
    net = SeqNet(LayerNormGRU)
    mem = MemoryLogger()
    trainer([ActivationStats(modules=["rnn"], every_n_steps=1)], max_steps=1, logger=mem).fit(
        net, _loader()
    )
    logged = mem.records[0][1]
    assert "act/rnn/in/mean" in logged and "act/rnn.ln_hh_l0/out/mean" in logged


def test_rms_cells_report_their_norms_and_identity_cells_report_none() -> None:
    x = next(iter(_loader()))[0]
    rms = LayerNormGRU(FEATURES, HIDDEN, norm="rms", batch_first=True)
    seen: dict[str, tuple[torch.Tensor, ...]] = {}
    rms.norm_observer = lambda site, a, b, w: seen.setdefault(site, (a, b, w))
    rms(x)
    a, b, w = seen["ln_hh_l0"]
    ref = a * torch.rsqrt(a.pow(2).mean(-1, keepdim=True) + rms.eps) * w
    torch.testing.assert_close(b, ref)
    plain = LayerNormGRU(FEATURES, HIDDEN, norm="none", batch_first=True)
    plain.norm_observer = lambda *args: pytest.fail("an identity cell has no norm to report")
    plain(x)


def test_a_copy_made_during_a_logging_step_does_not_keep_the_observer() -> None:
    import copy

    class Distill(SeqNet):  # EMA/teacher code deep-copies modules in training_step
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            self.copies = [*getattr(self, "copies", []), copy.deepcopy(self.rnn)]
            return super().training_step(batch, batch_idx)

    net = Distill(LayerNormGRU)
    trainer([ActivationStats(every_n_steps=1)], max_steps=1).fit(net, _loader())
    assert net.observer_during_forward == [True]  # the copy was made on a logging step
    assert net.copies[0].norm_observer is None


def test_identity_cells_are_not_watched_and_the_nan_watch_says_what_it_cannot_see() -> None:
    net = SeqNet(LayerNormGRU)
    net.rnn = LayerNormGRU(FEATURES, HIDDEN, norm="none", batch_first=True, bidirectional=True)
    with pytest.warns(UserWarning, match="found no normalization layer"):
        trainer([ActivationStats(every_n_steps=1)], max_steps=1).fit(net, _loader())
    with pytest.warns(UserWarning, match="cannot watch the norms inside LN-RNN cells"):
        stats = ActivationStats(every_n_steps=2, check_nonfinite_every_step=True)
        trainer([stats], max_steps=1).fit(SeqNet(LayerNormGRU), _loader())
