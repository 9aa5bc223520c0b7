"""BatchSizeGuard: stop BN at batch 1, warn below 16 unless synced, stay silent otherwise."""

from __future__ import annotations

import subprocess
import sys
import warnings
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from normsuite.advice import advise
from normsuite.norms.layers import build_norm
from normsuite.norms.sync import SyncBatchNorm
from normsuite.training.guardrails import (
    BatchNormBatchSizeError,
    BatchSizeGuard,
    BatchSizeWarning,
    _architecture,
)


class Net(pl.LightningModule):
    def __init__(self, norm: str = "bn", batch_size: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        layer = nn.BatchNorm1d(8) if norm == "bn" else nn.GroupNorm(2, 8)
        self.net = nn.Sequential(
            nn.Conv1d(1, 8, 3), layer, nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten()
        )
        self.batch_size = batch_size

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1.0)

    def train_dataloader(self) -> DataLoader:
        data = TensorDataset(torch.randn(32, 1, 10), torch.randint(0, 8, (32,)))
        return DataLoader(data, batch_size=self.batch_size)


class SeqNet(pl.LightningModule):
    """LSTM -> BN over C with batch*time statistics (input (N, L, C)) -> GRU -> head."""

    def __init__(self, norm: nn.Module, batch_size: int, length: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rnn = nn.LSTM(3, 8, batch_first=True)
        self.norm = norm
        self.rnn2 = nn.GRU(8, 8, batch_first=True)
        self.head = nn.Linear(8, 4)
        self.batch_size, self.length = batch_size, length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(x)
        h, _ = self.rnn2(self.norm(h))
        return self.head(h[:, -1])

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1.0)

    def train_dataloader(self) -> DataLoader:
        data = TensorDataset(torch.randn(8, self.length, 3), torch.randint(0, 4, (8,)))
        return DataLoader(data, batch_size=self.batch_size)


def _sequence_bn() -> nn.Module:
    return build_norm("bn", 8, ndim=3, channels_last=True)  # BatchNormLastDim


def _fit(model: pl.LightningModule, **trainer_kwargs: object) -> pl.Trainer:
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[BatchSizeGuard()],
        **trainer_kwargs,
    )
    trainer.fit(model)
    return trainer


def test_bn_at_per_device_batch_one_stops_before_the_first_step() -> None:
    model = Net("bn", batch_size=1)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(BatchNormBatchSizeError) as info:
        _fit(model)
    message = str(info.value)
    assert "net.1 (BatchNorm1d(8))" in message  # names the first BN layer
    for option in ("GroupNorm", "SyncBatchNorm", "global batch >= 16", "FrozenBatchNorm"):
        assert option in message
    # No optimizer step happened.
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), before, strict=True))


def test_bn_small_batch_warns_once_with_the_advice_of_advice_py() -> None:
    with pytest.warns(BatchSizeWarning) as record:
        _fit(Net("bn", batch_size=4), accumulate_grad_batches=2)
    ours = [w for w in record if issubclass(w.category, BatchSizeWarning)]
    assert len(ours) == 1  # once per fit, not per step
    message = str(ours[0].message)
    expected = advise("cnn1d", 4, devices=1, accumulate=2, channels=8)
    assert f"norm={expected.norm!r}" in message and expected.norm == "gn"
    assert all(sentence in message for sentence in expected.rationale)
    assert "per-device batch 4 x 1 device(s) x accumulation 2" in message
    assert "normalizes over 4" in message  # accumulation does not enlarge BN's batch


def test_bn_at_batch_sixteen_and_gn_at_batch_one_are_silent() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", BatchSizeWarning)
        _fit(Net("bn", batch_size=16))
        _fit(Net("gn", batch_size=1))


def _synced_model() -> nn.Module:
    return SyncBatchNorm.convert_sync_batchnorm(Net("bn").net)


def test_synced_bn_counts_the_global_batch() -> None:
    guard = BatchSizeGuard()
    two_devices = SimpleNamespace(world_size=2, accumulate_grad_batches=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BatchSizeWarning)
        guard.check(_synced_model(), 8, two_devices)  # 8 x 2 = 16: fine
    with pytest.warns(BatchSizeWarning, match=r"BatchNorm \(synced\) normalizes over 8"):
        guard.check(_synced_model(), 4, two_devices)
    # The same per-device batch without sync is judged per device.
    with pytest.warns(BatchSizeWarning, match="normalizes over 8"):
        guard.check(Net("bn").net, 8, two_devices)
    with pytest.raises(BatchNormBatchSizeError):
        guard.check(_synced_model(), 1, SimpleNamespace(world_size=1, accumulate_grad_batches=1))


def test_bn_layers_in_eval_mode_are_not_judged() -> None:
    net = Net("bn").net
    net[1].eval()  # frozen by the user: no batch statistics in training
    with warnings.catch_warnings():
        warnings.simplefilter("error", BatchSizeWarning)
        BatchSizeGuard().check(net, 1)


def test_per_device_batch_falls_back_to_the_datamodule() -> None:
    trainer = SimpleNamespace(datamodule=SimpleNamespace(batch_size=6))
    assert BatchSizeGuard._per_device_batch(trainer, object()) == 6
    assert BatchSizeGuard._per_device_batch(trainer, (torch.zeros(5, 3), torch.zeros(5))) == 5


def test_importing_normsuite_training_stays_torch_free() -> None:
    code = (
        "import sys, normsuite.training as t; assert 'NormSync' in dir(t);"
        "assert 'torch' not in sys.modules and 'lightning' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- sequence models
def test_sequence_bn_at_batch_one_trains_and_says_what_it_sees() -> None:
    # BN over (N, L, C) normalizes each channel over batch x positions: 1 x 10 = 10 values.
    with pytest.warns(BatchSizeWarning) as record:
        trainer = _fit(SeqNet(_sequence_bn(), batch_size=1, length=10))
    assert trainer.global_step == 3  # no error: BN saw 10 values per channel
    message = str(next(w for w in record if issubclass(w.category, BatchSizeWarning)).message)
    assert "norm (BatchNormLastDim(8))" in message
    assert "normalizes over 1 sample(s) x 10 position(s) = 10 values per channel" in message
    expected = advise("rnn", 1, devices=1, accumulate=1, channels=8)
    assert f"norm={expected.norm!r}" in message and expected.norm == "ln"
    assert all(sentence in message for sentence in expected.rationale)  # B6, not B11


def test_sequence_bn_with_one_value_per_channel_stops_before_torch_does() -> None:
    model = SeqNet(_sequence_bn(), batch_size=1, length=1)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(BatchNormBatchSizeError, match=r"norm \(BatchNormLastDim\(8\)\).*1 value"):
        _fit(model)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), before, strict=True))
    # The hooks that measured the input are gone.
    assert not model.norm._forward_pre_hooks


def test_synced_sequence_bn_counts_values_over_all_devices() -> None:
    model = SyncBatchNorm.convert_sync_batchnorm(SeqNet(_sequence_bn(), 1, 1))
    two = SimpleNamespace(world_size=2, accumulate_grad_batches=1)
    one = SimpleNamespace(world_size=1, accumulate_grad_batches=1)
    with pytest.warns(BatchSizeWarning, match=r"\(synced\) normalizes over 2 sample"):
        BatchSizeGuard().check(model, 1, two, seen={"norm": 1})  # 1 value x 2 devices
    with pytest.raises(BatchNormBatchSizeError, match="1 value per channel"):
        BatchSizeGuard().check(model, 1, one, seen={"norm": 1})
    # Not measured (no forward yet): no error is claimed, the warning follows the batch.
    with pytest.warns(BatchSizeWarning):
        BatchSizeGuard().check(model, 1, one)


class LayerNormLSTM(nn.Module):
    """Named like normsuite.models.rnn's LN-LSTM: the guard recognises it by its class name."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.Linear(8, 32)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (nn.Sequential(nn.LSTM(3, 8), nn.Linear(8, 2)), "rnn"),
        (nn.Sequential(nn.GRUCell(3, 8), nn.Linear(8, 2)), "rnn"),
        (nn.Sequential(LayerNormLSTM(), nn.Linear(8, 2)), "rnn"),
        (nn.TransformerEncoderLayer(8, 2, 16), "transformer"),
        (nn.Sequential(nn.MultiheadAttention(8, 2), nn.Linear(8, 2)), "transformer"),
        # ViT-style: one convolution as patch embedding does not make a CNN.
        (nn.Sequential(nn.Conv2d(3, 8, 4, 4), nn.TransformerEncoderLayer(8, 2, 16)), "transformer"),
        (nn.Sequential(nn.Conv1d(3, 8, 3), nn.Conv1d(8, 8, 3), nn.GRU(8, 8)), "hybrid"),
        (nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)), "cnn2d"),
        (nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8)), "mlp"),
        (nn.Sequential(nn.BatchNorm1d(8)), "unknown"),
    ],
)
def test_architecture_recognises_recurrent_and_attention_models(model, expected) -> None:
    assert _architecture(model) == expected


def test_transformer_with_bn_warns_with_the_transformer_advice() -> None:
    model = nn.Sequential(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), _sequence_bn())
    with pytest.warns(BatchSizeWarning) as record:
        BatchSizeGuard().check(model, 4, seen={"1": 4 * 12})
    message = str(record[0].message)
    expected = advise("transformer", 4, channels=8)
    assert all(sentence in message for sentence in expected.rationale)  # B7
    assert "4 sample(s) x 12 position(s) = 48 values per channel" in message
