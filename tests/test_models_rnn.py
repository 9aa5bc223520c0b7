"""RNN backbones: LN-LSTM / LN-GRU against nn.LSTM / nn.GRU and a hand-written reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from normsuite.models.rnn import LayerNormGRU, LayerNormLSTM, RNNBackbone


@pytest.mark.parametrize("script", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize(("ln_cls", "ref_cls"), [(LayerNormLSTM, nn.LSTM), (LayerNormGRU, nn.GRU)])
def test_identity_norm_equals_torch_rnn_with_imported_weights(
    ln_cls: type, ref_cls: type, bidirectional: bool, script: bool
) -> None:
    torch.manual_seed(0)
    ref = ref_cls(5, 7, num_layers=2, batch_first=True, bidirectional=bidirectional)
    ours = ln_cls(
        5,
        7,
        num_layers=2,
        batch_first=True,
        bidirectional=bidirectional,
        norm="none",
        script=script,
    )
    result = ours.load_state_dict(ref.state_dict(), strict=True)  # same names, nothing extra
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(3, 11, 5)
    h0 = torch.randn(4 if bidirectional else 2, 3, 7)
    hx = (h0, torch.randn_like(h0)) if ref_cls is nn.LSTM else h0
    out_ref, state_ref = ref(x, hx)
    out, state = ours(x, hx)
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=0)
    for a, b in zip(
        state if isinstance(state, tuple) else (state,),
        state_ref if isinstance(state_ref, tuple) else (state_ref,),
        strict=True,
    ):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def _reference_ln_lstm(x, w_ih, w_hh, b_ih, b_hh, g):
    """Ba et al. 2016, eq. (20)-(22), one layer, written step by step with F.layer_norm."""
    n, t_len, _ = x.shape
    hid = w_hh.shape[1]
    h = x.new_zeros(n, hid)
    c = x.new_zeros(n, hid)
    outs = []
    for t in range(t_len):
        a = (
            F.layer_norm(x[:, t] @ w_ih.T, (4 * hid,), g["ih_w"], g["ih_b"])
            + b_ih
            + F.layer_norm(h @ w_hh.T, (4 * hid,), g["hh_w"], g["hh_b"])
            + b_hh
        )
        i, f, gg, o = a.split(hid, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
        h = torch.sigmoid(o) * torch.tanh(F.layer_norm(c, (hid,), g["c_w"], g["c_b"]))
        outs.append(h)
    return torch.stack(outs, 1)


def _reference_ln_gru(x, w_ih, w_hh, b_ih, b_hh, g):
    n, t_len, _ = x.shape
    hid = w_hh.shape[1]
    h = x.new_zeros(n, hid)
    outs = []
    for t in range(t_len):
        gi = F.layer_norm(x[:, t] @ w_ih.T, (3 * hid,), g["ih_w"], g["ih_b"]) + b_ih
        gh = F.layer_norm(h @ w_hh.T, (3 * hid,), g["hh_w"], g["hh_b"]) + b_hh
        r = torch.sigmoid(gi[:, :hid] + gh[:, :hid])
        z = torch.sigmoid(gi[:, hid : 2 * hid] + gh[:, hid : 2 * hid])
        cand = torch.tanh(gi[:, 2 * hid :] + r * gh[:, 2 * hid :])
        h = (1 - z) * cand + z * h
        outs.append(h)
    return torch.stack(outs, 1)


@pytest.mark.parametrize(
    ("cls", "reference", "sites"),
    [
        (LayerNormLSTM, _reference_ln_lstm, ("ih", "hh", "c")),
        (LayerNormGRU, _reference_ln_gru, ("ih", "hh")),
    ],
)
def test_layer_norm_cell_matches_hand_written_reference(cls, reference, sites) -> None:
    torch.manual_seed(1)
    m = cls(4, 6, batch_first=True)
    with torch.no_grad():  # non-trivial gains/shifts so a misplaced norm would show
        for name, p in m.named_parameters():
            if name.startswith("ln_"):
                p.copy_(torch.randn_like(p))
    g = {}
    for site in sites:
        g[f"{site}_w"] = getattr(m, f"ln_{site}_weight_l0")
        g[f"{site}_b"] = getattr(m, f"ln_{site}_bias_l0")
    x = torch.randn(2, 9, 4)
    ref = reference(x, m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0, g)
    out, _ = m(x)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cls", [LayerNormLSTM, LayerNormGRU])
@pytest.mark.parametrize("norm", ["ln", "rms"])
def test_every_parameter_gets_a_gradient(cls: type, norm: str) -> None:
    m = cls(3, 5, num_layers=2, bidirectional=True, norm=norm)
    out, _ = m(torch.randn(6, 2, 3))  # (seq, batch, feature): batch_first=False
    assert out.shape == (6, 2, 10)
    out.square().sum().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None]
    assert missing == []
    if norm == "rms":  # RMSNorm has no shift: no unused bias parameters (DDP-safe)
        assert not any("_bias_l" in n for n, _ in m.named_parameters())


def test_layer_norm_rnn_rejects_batch_norm_inside_the_cell() -> None:
    with pytest.raises(ValueError, match="inside the cell"):
        LayerNormLSTM(3, 5, norm="bn")
    with pytest.raises(ValueError, match="3-d"):
        LayerNormGRU(3, 5)(torch.randn(4, 3))


def test_backbone_picks_the_implementation_from_the_norm() -> None:
    x = torch.randn(4, 10, 2)
    plain = RNNBackbone("lstm", 2, 8, norm="none")
    assert isinstance(plain.rnn, nn.LSTM)
    ln = RNNBackbone("gru", 2, 8, norm="ln", bidirectional=True)
    assert isinstance(ln.rnn, LayerNormGRU)
    assert ln(x).shape == (4, 16)
    # Features = forward direction at the last step, backward direction at the first.
    out, _ = ln.rnn(x)
    torch.testing.assert_close(ln(x), torch.cat([out[:, -1, :8], out[:, 0, 8:]], 1))
    bn = RNNBackbone("gru", 2, 8, num_layers=2, norm="bn")
    assert all(isinstance(r, nn.GRU) for r in bn.rnn)
    assert bn.between is not None and len(bn.between) == 2
    assert bn(x).shape == (4, 8)
    # BN between layers normalizes each feature over batch*time (N, L, C layout).
    out = bn.between[0](bn.rnn[0](x)[0])
    flat = out.reshape(-1, 8)
    torch.testing.assert_close(flat.mean(0), torch.zeros(8), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="lstm, gru"):
        RNNBackbone("rnn", 2, 8)


@pytest.mark.parametrize("cls", [LayerNormLSTM, LayerNormGRU])
def test_scalar_input_keeps_its_magnitude(cls: type) -> None:
    # LN over W_ih x with one input feature would only keep sign(x): off by default there.
    torch.manual_seed(0)
    x = torch.rand(2, 6, 1) + 0.1
    m = cls(1, 8, num_layers=2, batch_first=True)
    assert m.input_norm is False
    assert not hasattr(m, "ln_ih_weight_l0") and hasattr(m, "ln_ih_weight_l1")
    assert not torch.allclose(m(x)[0], m(2 * x)[0])
    forced = cls(1, 8, batch_first=True, input_norm=True)
    # what the default avoids: up to LN eps, doubling x changes nothing
    torch.testing.assert_close(forced(x)[0], forced(2 * x)[0], atol=1e-2, rtol=0)
    assert cls(3, 8).input_norm is True


def _single_layer(ref: nn.RNNBase, layer: int, input_size: int) -> nn.RNNBase:
    """Layer ``layer`` of a stacked torch RNN as a one-layer torch RNN with its weights."""
    one = type(ref)(input_size, ref.hidden_size, bidirectional=ref.bidirectional)  # (T, N, C)
    one.load_state_dict(
        {
            k.replace(f"_l{layer}", "_l0"): v
            for k, v in ref.state_dict().items()
            if f"_l{layer}" in k
        }
    )
    return one


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize(("ln_cls", "ref_cls"), [(LayerNormLSTM, nn.LSTM), (LayerNormGRU, nn.GRU)])
def test_dropout_between_layers_follows_torch_rnn(
    ln_cls: type, ref_cls: type, bidirectional: bool
) -> None:
    torch.manual_seed(0)
    ref = ref_cls(5, 7, num_layers=3, batch_first=True, bidirectional=bidirectional, dropout=0.5)
    ours = ln_cls(5, 7, 3, batch_first=True, bidirectional=bidirectional, norm="none", dropout=0.5)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(4, 9, 5)
    # Eval: no dropout, equal to torch's RNN.
    torch.testing.assert_close(ours.eval()(x)[0], ref.eval()(x)[0], atol=1e-5, rtol=0)
    # Train: torch's semantics, built by hand from one-layer RNNs with the same weights:
    # dropout on the outputs of every layer but the last.
    ours.train()
    torch.manual_seed(1)
    out, _ = ours(x)
    dirs = 2 if bidirectional else 1
    layers = [_single_layer(ref, layer, 5 if layer == 0 else 7 * dirs) for layer in range(3)]
    torch.manual_seed(1)  # after building `layers`: their init draws random numbers too
    feat = x.transpose(0, 1).contiguous()  # time-major, as the masks are drawn
    for layer, one in enumerate(layers):
        feat, _ = one(feat)
        if layer < 2:
            feat = F.dropout(feat, 0.5, training=True)
    torch.testing.assert_close(out, feat.transpose(0, 1), atol=1e-5, rtol=0)
    # ... which really drops: two training calls differ.
    assert not torch.allclose(ours(x)[0], ours(x)[0])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("norm", ["ln", "rms", "none"])
def test_backbone_applies_dropout_for_every_norm(cell: str, norm: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 6, 3)
    net = RNNBackbone(cell, 3, 16, 2, norm, dropout=0.9).train()
    assert not torch.allclose(net(x), net(x))  # was silently equal for ln/rms
    net.eval()
    torch.testing.assert_close(net(x), net(x))
    no_drop = RNNBackbone(cell, 3, 16, 2, norm, dropout=0.0).train()
    torch.testing.assert_close(no_drop(x), no_drop(x))
