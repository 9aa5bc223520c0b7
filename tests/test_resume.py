"""Resume continues the same schedule: 1 epoch + resume == 2 epochs in one run (same seed).

Runs ``normsuite fit``'s LightningCLI in-process on a tiny MNIST-1D ConvNet with a cosine
LR schedule, AdamW and a shuffled loader: any state a resume loses (optimizer moments, LR
position, the shuffle RNG, BN running statistics) makes the weights differ.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "mnist1d_convnet1d_bn.yaml"


def _fit(tmp_path: Path, run: str, epochs: int, *extra: str):
    from normsuite.training.fit import run_fit

    args = ["--config", str(RECIPE), "--trainer.max_epochs", str(epochs)]
    # 380 training sequences at batch 64: 5 steps an epoch.
    args += ["--trainer.limit_val_batches", "1", "--data.init_args.num_samples", "600"]
    args += ["--data.init_args.val_size", "100", "--data.init_args.batch_size", "64"]
    args += ["--model.init_args.widths", "[8, 8]"]
    args += ["--model.init_args.strides", "[1, 2]", "--trainer.enable_progress_bar", "false"]
    args += ["--trainer.callbacks", "[]", "--test_after_fit", "false"]
    args += ["--runs_dir", str(tmp_path / "runs"), "--run_name", run, *extra]
    return run_fit(args)


class _TermAt(pl.Callback):
    """Sends this process a real SIGTERM (as a scheduler would) after training batch
    ``batch`` of epoch 0, or at the end of epoch 0 when ``batch`` is None."""

    def __init__(self, batch: int | None) -> None:
        self.batch = batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.current_epoch == 0 and batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGTERM)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == 0 and self.batch is None:
            os.kill(os.getpid(), signal.SIGTERM)


def _weights(cli) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in cli.model.state_dict().items()}


@pytest.mark.slow
def test_stop_plus_resume_equals_one_run(tmp_path: Path, monkeypatch, capsys) -> None:
    """SIGTERM at the end of epoch 0, resume with ``--ckpt_path last``: the weights are those
    of the uninterrupted 2-epoch run. (A mid-epoch stop resumes too, see test_checkpoints,
    but Lightning restarts a plain DataLoader's epoch, so that run is not bit-identical.)"""
    stop_batch, where = None, "epoch 1, step 5"
    monkeypatch.setenv("NORMSUITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NORMSUITE_RUN_VERSION", raising=False)
    monkeypatch.chdir(tmp_path)
    whole = _fit(tmp_path, "whole", 2)
    monkeypatch.delenv("NORMSUITE_RUN_VERSION", raising=False)
    # The same 2-epoch run (same cosine schedule), stopped by SIGTERM after epoch 0.
    from normsuite.training.fit import NormsuiteCLI

    instantiate = NormsuiteCLI._instantiate_trainer
    monkeypatch.setattr(
        NormsuiteCLI,
        "_instantiate_trainer",
        lambda self, config, callbacks: instantiate(
            self, config, [*callbacks, _TermAt(stop_batch)]
        ),
    )
    with pytest.raises(SIGTERMException):
        _fit(tmp_path, "split", 2)
    monkeypatch.setattr(NormsuiteCLI, "_instantiate_trainer", instantiate)
    last = tmp_path / "runs" / "split" / "version_0" / "checkpoints" / "last.ckpt"
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"normsuite fit: SIGTERM: stopped at {where}; checkpoint ")
    assert f"checkpoint {last}; resume with: normsuite fit --config " in line
    assert line.endswith(f"--ckpt_path {last}")
    monkeypatch.delenv("NORMSUITE_RUN_VERSION", raising=False)
    # "last": the newest last.ckpt of the run folder. A different seed on the command line
    # must not matter: the RNG state comes from the checkpoint.
    resumed = _fit(tmp_path, "split", 2, "--ckpt_path", "last", "--seed_everything", "123")
    assert resumed.resumed_from == last
    assert resumed.run_dir == tmp_path / "runs" / "split" / "version_1"
    assert resumed.trainer.current_epoch == whole.trainer.current_epoch == 2
    assert resumed.trainer.global_step == whole.trainer.global_step == 10
    expected, got = _weights(whole), _weights(resumed)
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-6, msg=key)
    # The LR schedule continued (cosine over 10 steps), not restarted.
    lr_whole = whole.trainer.optimizers[0].param_groups[0]["lr"]
    assert resumed.trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(lr_whole)
    assert resumed.model.hparams.resolved_norm == "bn"


@pytest.mark.slow
def test_resume_keeps_auto_norm_and_advice(tmp_path: Path, monkeypatch) -> None:
    import yaml

    monkeypatch.setenv("NORMSUITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NORMSUITE_RUN_VERSION", raising=False)
    monkeypatch.chdir(tmp_path)
    # auto at data batch 4: GroupNorm (B2), read from the datamodule, not a model argument.
    short = ("--trainer.limit_train_batches", "2")
    first = _fit(
        tmp_path,
        "auto",
        1,
        "--model.init_args.norm",
        "auto",
        "--data.init_args.batch_size",
        "4",
        *short,
    )
    assert first.model.norm == "gn" and "B2" in first.model.hparams.advice_rules
    saved = yaml.safe_load((first.run_dir / "hparams.yaml").read_text())
    assert (
        saved["resolved_norm"] == "gn" and saved["advice_rules"] == first.model.hparams.advice_rules
    )
    monkeypatch.delenv("NORMSUITE_RUN_VERSION", raising=False)
    # Before this fix: "NormClassifier.__init__() got an unexpected keyword argument
    # 'advice_rules'". The resumed model is the trained one, even with another data batch.
    resumed = _fit(
        tmp_path,
        "auto",
        2,
        "--model.init_args.norm",
        "auto",
        "--data.init_args.batch_size",
        "8",
        "--ckpt_path",
        "last",
        *short,
    )
    assert resumed.model.norm == "gn"
    assert resumed.model.hparams.advice_rules == first.model.hparams.advice_rules
    assert resumed.trainer.current_epoch == 2
