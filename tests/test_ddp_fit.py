"""A 2-process Lightning DDP fit on CPU with NormSync equals a 1-process fit on the whole batch.

The fits run as subprocesses of this very file (Lightning's DDP launcher re-executes the
script for rank 1). Global batch 8 = 2 ranks x 4: an unshuffled DistributedSampler hands the
two ranks the same 8 samples per step that one process sees, so synced
BatchNorm plus DDP's gradient average must reproduce the single-process run.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from normsuite.norms.sync import SyncBatchNorm
from normsuite.training.guardrails import BatchSizeGuard
from normsuite.training.sync_plugin import NormSync

ROOT = Path(__file__).resolve().parents[1]
STEPS = 3


class TinyNet(pl.LightningModule):
    """Conv1d -> BatchNorm1d -> ReLU -> pool -> Linear: small enough for 2 CPU processes."""

    def __init__(self, batch_size: int = 8) -> None:
        super().__init__()
        self.save_hyperparameters()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Conv1d(1, 4, 3, bias=False),
            nn.BatchNorm1d(4),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
            nn.Linear(4, 3),
        )
        self.norm_classes: set[str] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        self.norm_classes.add(type(self.net[1]).__module__ + "." + type(self.net[1]).__name__)
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.5)

    def train_dataloader(self) -> DataLoader:
        gen = torch.Generator().manual_seed(1)
        x = torch.randn(STEPS * 8, 1, 12, generator=gen, dtype=torch.float64)
        y = torch.randint(0, 3, (STEPS * 8,), generator=gen)
        data = TensorDataset(x, y)
        # Lightning's automatic DistributedSampler always shuffles training data: use our own.
        world, rank = self.trainer.world_size, self.trainer.global_rank
        sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=False)
        return DataLoader(data, batch_size=self.hparams.batch_size, sampler=sampler)


def _fit(mode: str, out: Path) -> None:
    """Fit; ``ddp`` runs as ``python tests/test_ddp_fit.py ddp OUT`` (Lightning relaunches it)."""
    ddp = mode == "ddp"
    model = TinyNet(batch_size=4 if ddp else 8)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2 if ddp else 1,
        strategy="ddp" if ddp else "auto",
        plugins=[NormSync()] if ddp else None,
        precision="64-true",
        max_steps=STEPS,
        logger=False,
        callbacks=[ModelCheckpoint(dirpath=out, save_last=True), BatchSizeGuard()],
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=out,
        use_distributed_sampler=False,
    )
    trainer.fit(model)
    if trainer.is_global_zero:
        torch.save(model.state_dict(), out / f"final_{mode}.pt")
        classes = {
            "during_fit": sorted(model.norm_classes),
            "after_fit": type(model.net[1]).__name__,
        }
        (out / f"classes_{mode}.json").write_text(json.dumps(classes))


def _run(mode: str, out: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), mode, str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.xdist_group("ddp")
def test_two_process_ddp_fit_with_normsync_matches_one_process_and_reloads(
    tmp_path: Path,
) -> None:
    _run("ddp", tmp_path / "ddp")
    _fit("single", tmp_path / "single")  # the reference: one process, whole batch, plain BN

    classes = json.loads((tmp_path / "ddp" / "classes_ddp.json").read_text())
    assert classes["during_fit"] == [f"{SyncBatchNorm.__module__}.SyncBatchNorm"]
    assert classes["after_fit"] == "BatchNorm1d"  # reverted to the original class

    ddp = torch.load(tmp_path / "ddp" / "final_ddp.pt")
    single = torch.load(tmp_path / "single" / "final_single.pt")
    assert ddp.keys() == single.keys()
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], rtol=0, atol=1e-10, msg=key)
    assert single["net.1.num_batches_tracked"].item() == STEPS

    # The checkpoint holds plain BatchNorm keys and reloads in one process.
    reloaded = TinyNet.load_from_checkpoint(tmp_path / "ddp" / "last.ckpt", map_location="cpu")
    assert type(reloaded.net[1]) is nn.BatchNorm1d
    for key, value in reloaded.state_dict().items():
        # float32 module: the float64 checkpoint values are cast exactly once on load
        torch.testing.assert_close(value, ddp[key].to(value.dtype), rtol=0, atol=0, msg=key)


RECIPE = ROOT / "recipes" / "ddp_mnist1d_convnet1d_syncbn.yaml"


@pytest.mark.filterwarnings("ignore:LightningCLI's args parameter")
@pytest.mark.parametrize("recipe", ["ddp_mnist1d_convnet1d_syncbn", "ddp_resnet18_syncbn"])
def test_recipe_flag_installs_normsync_through_lightningcli(recipe: str) -> None:
    from lightning.pytorch.cli import LightningCLI
    from lightning.pytorch.strategies import DDPStrategy

    cli = LightningCLI(
        args=["--config", str(ROOT / "recipes" / f"{recipe}.yaml"), "--trainer.logger", "false"],
        run=False,  # parse and build only: nothing is launched or downloaded
        subclass_mode_model=True,
        subclass_mode_data=True,
        auto_configure_optimizers=False,
    )
    assert isinstance(cli.trainer._accelerator_connector._layer_sync, NormSync)
    assert isinstance(cli.trainer.strategy, DDPStrategy)
    norms = [m for m in cli.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms  # BN until fit starts; NormSync converts it then


@pytest.mark.slow
@pytest.mark.xdist_group("ddp")
def test_normsuite_fit_ddp_recipe_on_cpu_checkpoints_and_reloads(tmp_path: Path) -> None:
    from normsuite.data import MNIST1DDataModule
    from normsuite.models.factory import NormClassifier

    exe = Path(sys.executable).with_name("normsuite")
    # fmt: off
    command = [
        str(exe), "fit", "--config", str(RECIPE),
        "--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.accelerator", "cpu",
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "4",
        "--trainer.limit_val_batches", "2",
        "--trainer.enable_progress_bar", "false",
        "--runs_dir", str(tmp_path / "runs"), "--test_after_fit", "false",
    ]
    # fmt: on
    proc = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (ckpt,) = (tmp_path / "runs").rglob("last.ckpt")
    config = (ckpt.parents[1] / "config.yaml").read_text()
    assert "NormSync" in config

    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    model = NormClassifier.load_from_checkpoint(ckpt, map_location="cpu")
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and all(type(m) is nn.BatchNorm1d for m in norms)
    assert all(m.num_batches_tracked.item() == 4 for m in norms)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    model.eval()
    assert model(torch.randn(3, 1, 40)).shape == (3, 10)

    # The logged validation loss and accuracy are those of BOTH processes' samples: rank r of 2
    # validated samples r, r+2, ... (unshuffled), 2 batches of 8 each, so samples 0..31, with
    # the weights of the end of the epoch (= last.ckpt). Rank 0's half alone would differ.
    (metrics,) = ckpt.parents[1].glob("metrics.csv")
    (row,) = [r for r in csv.DictReader(metrics.open()) if r.get("val/loss")]
    data = MNIST1DDataModule(layout="cnn", batch_size=8)  # the recipe's data, from the cache
    data.prepare_data()
    data.setup("fit")
    x, y = next(iter(DataLoader(data.val_dataloader().dataset, batch_size=32)))
    with torch.no_grad():
        logits = model(x)
    both = nn.functional.cross_entropy(logits, y).item()
    rank0 = nn.functional.cross_entropy(logits[0::2], y[0::2]).item()
    assert abs(float(row["val/loss"]) - both) < 1e-5, (row["val/loss"], both, rank0)
    assert abs(both - rank0) > 1e-4  # the check can tell the two apart
    accuracy = (logits.argmax(1) == y).double().mean().item()
    assert abs(float(row["val/acc"]) - accuracy) < 1e-6


if __name__ == "__main__":
    _fit(sys.argv[1], Path(sys.argv[2]))
