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
from normsuite.norms.sync import SyncBatchNorm
from normsuite.training.guardrails import (
    BatchNormBatchSizeError,
    BatchSizeGuard,
    BatchSizeWarning,
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


def _fit(model: Net, **trainer_kwargs: object) -> None:
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
