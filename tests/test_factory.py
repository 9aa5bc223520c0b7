"""build_module / NormClassifier: tiny fits per backbone family, checkpoint reload, options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from normsuite import NormClassifier, build_module
from normsuite.data import FakeDataModule
from normsuite.models.rnn import LayerNormGRU


class _Losses(pl.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs: Any, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


def _tiny_fit(model: NormClassifier, shape: list[int], tmp_path: Path, steps: int = 12):
    """Overfit one fixed batch of 16 for ``steps`` steps; returns (losses, checkpoint path)."""
    dm = FakeDataModule(shape=shape, num_classes=model.hparams.num_classes, num_samples=16)
    losses = _Losses()
    trainer = pl.Trainer(
        max_epochs=steps,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        enable_checkpointing=False,  # one save at the end, not one per 1-step epoch
        callbacks=[losses],
    )
    trainer.fit(model, datamodule=dm)
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    return losses.losses, trainer, tmp_path / "last.ckpt"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backbone", "norm", "shape", "options", "norm_type"),
    [
        ("convnet1d", "bn", [1, 40], {"widths": [16, 32], "lr": 2e-2}, nn.BatchNorm1d),
        ("convnet2d", "gn", [3, 8, 8], {"widths": [32, 64], "lr": 3e-3}, nn.GroupNorm),
        ("gru", "ln", [12, 3], {"in_channels": 3, "hidden_size": 32, "lr": 2e-2}, LayerNormGRU),
    ],
)
def test_tiny_fit_loss_falls_and_checkpoint_reloads(
    backbone: str, norm: str, shape: list[int], options: dict, norm_type: type, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    model = build_module(backbone, norm, 4, **options)
    losses, trainer, ckpt = _tiny_fit(model, shape, tmp_path)
    assert len(losses) == 12
    assert losses[-1] < 0.9 * losses[0], losses
    # cosine schedule, stepped per batch: the LR has decayed
    assert trainer.optimizers[0].param_groups[0]["lr"] < 0.1 * options["lr"]
    reloaded = NormClassifier.load_from_checkpoint(ckpt)
    assert reloaded.norm == model.norm == norm
    assert [type(m) for m in reloaded.modules()] == [type(m) for m in model.modules()]
    assert any(isinstance(m, norm_type) for m in reloaded.modules())
    x = torch.randn(5, *shape)
    model.eval()
    reloaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), model(x))


def test_auto_norm_asks_the_advice_and_is_stored_resolved(tmp_path: Path) -> None:
    small = build_module("resnet18", "auto", 3, batch_size=4)
    assert small.norm == "gn" and "B2" in small.hparams.advice_rules
    assert not any(isinstance(m, nn.BatchNorm2d) for m in small.modules())
    big = build_module("convnet1d", "auto", 3, batch_size=64)
    assert big.norm == "bn" and "B1" in big.hparams.advice_rules
    rnn = build_module("lstm", "auto", 3, batch_size=4)
    assert rnn.norm == "ln" and rnn.hparams.advice_rules == ["B6"]
    # Reload rebuilds the resolved norm without asking the advice again.
    path = tmp_path / "m.ckpt"
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, max_epochs=0)
    trainer.strategy.connect(small)
    trainer.save_checkpoint(path)
    again = NormClassifier.load_from_checkpoint(path)
    assert again.hparams.norm == "auto" and again.norm == "gn"
    assert again.hparams.advice_rules == small.hparams.advice_rules


def _auto_fit(tmp_path: Path, data_batch: int, **options: Any) -> NormClassifier:
    """Fit 1 step of an auto-norm ConvNet1d on FakeData with ``batch_size``; CSV hparams on."""
    from lightning.pytorch.loggers import CSVLogger

    model = build_module("convnet1d", "auto", 3, widths=[8], **options)
    dm = FakeDataModule(shape=[1, 16], num_classes=3, num_samples=32, batch_size=data_batch)
    trainer = pl.Trainer(
        max_steps=1,
        accelerator="cpu",
        logger=CSVLogger(tmp_path, name="auto", version=0),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        enable_checkpointing=False,
    )
    trainer.fit(model, datamodule=dm)
    trainer.save_checkpoint(tmp_path / "auto.ckpt")
    return model


@pytest.mark.parametrize(("batch", "norm", "rule"), [(4, "gn", "B2"), (32, "bn", "B1")])
def test_auto_norm_resolves_from_the_datamodule_batch(
    tmp_path: Path, batch: int, norm: str, rule: str
) -> None:
    import yaml

    deferred = build_module("convnet1d", "auto", 3, widths=[8])
    with pytest.raises(RuntimeError, match="batch_size"):  # not guessed before the data is known
        deferred(torch.randn(2, 1, 16))
    model = _auto_fit(tmp_path, batch)
    expected = build_module("convnet1d", "auto", 3, widths=[8], batch_size=batch)
    assert model.norm == expected.norm == norm and rule in model.hparams.advice_rules
    saved = yaml.safe_load((tmp_path / "auto" / "version_0" / "hparams.yaml").read_text())
    assert saved["resolved_norm"] == norm and saved["batch_size"] == batch
    assert saved["advice_rules"] == list(expected.hparams.advice_rules)
    again = NormClassifier.load_from_checkpoint(tmp_path / "auto.ckpt")
    assert again.norm == norm and again.hparams.advice_rules == model.hparams.advice_rules


def test_auto_norm_with_a_stated_batch_warns_when_the_data_differs(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="trains with batch 4"):
        model = _auto_fit(tmp_path, 4, batch_size=64)
    assert model.norm == "bn"  # the stated batch decides; the warning says how to change it


def test_weight_decay_is_off_for_norm_and_bias_parameters() -> None:
    model = build_module("convnet1d", "gn", 4, widths=[8, 16], scheduler="none", weight_decay=0.1)
    opt = model.configure_optimizers()
    assert isinstance(opt, torch.optim.AdamW)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    ids = lambda params: {id(p) for p in params}  # noqa: E731
    norm_and_bias = [m.weight for m in model.modules() if isinstance(m, nn.GroupNorm)]
    norm_and_bias += [m.bias for m in model.modules() if isinstance(m, nn.GroupNorm | nn.Linear)]
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Conv1d | nn.Linear)]
    assert ids(norm_and_bias) == ids(no_decay["params"])
    assert ids(weights) == ids(decay["params"])
    sgd = build_module("gru", "ln", 4, optimizer="sgd", scheduler="none", lr=0.5)
    opt = sgd.configure_optimizers()
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["nesterov"]
    ln_gains = {id(p) for n, p in sgd.named_parameters() if "ln_" in n}
    assert ln_gains and ln_gains <= ids(opt.param_groups[1]["params"])


def test_article_nets_through_the_factory() -> None:
    lbn = build_module("lbnnet", None, 10)
    assert lbn.norm == "ln"
    conv = lbn.backbone.features[0]
    assert (conv.in_channels, conv.out_channels) == (3, 64)
    assert lbn(torch.randn(2, 3, 32, 32)).shape == (2, 10)  # the article's LBNNet fails here
    assert build_module("grouplbnnet", "gn:8", 10).norm == "gn:8"
    with pytest.raises(ValueError, match="convnet2d"):
        build_module("bnnet", "gn", 10)


@pytest.mark.parametrize(
    ("net", "norm"), [("bnnet", "bn"), ("lbnnet", "ln"), ("grouplbnnet", "gn:8")]
)
def test_article_nets_refuse_auto_naming_their_fixed_norm(net: str, norm: str) -> None:
    with pytest.raises(ValueError) as err:
        build_module(net, "auto", 10, batch_size=4)
    message = str(err.value)
    assert "\n" not in message
    assert f"{net} fixes its norm to the article's {norm}" in message and "convnet2d" in message
    # The suggested way works: the same conv(3, 64) stem with the advised norm.
    alt = build_module("convnet2d", "auto", 10, widths=[64], batch_size=4)
    assert alt.norm != "auto" and alt.backbone.features[0].out_channels == 64


def test_bad_arguments_fail_with_the_choices() -> None:
    with pytest.raises(ValueError, match="resnet18"):
        build_module("vgg11", "bn", 10)
    with pytest.raises(ValueError, match="valid options"):
        build_module("convnet1d", "bn", 10, widht=[8])
    with pytest.raises(ValueError, match="adamw, sgd"):
        build_module("convnet1d", "bn", 10, optimizer="adam")
    with pytest.raises(ValueError, match="unknown norm"):
        build_module("convnet1d", "batchnrm", 10)


@pytest.mark.parametrize(
    ("args", "options", "error", "message"),
    [
        (("convnet1d", "bn", -1), {}, ValueError, "num_classes must be >= 1, got -1"),
        (("convnet1d", "bn", 2.5), {}, TypeError, "num_classes must be an int, got float"),
        (("convnet1d", "bn", True), {}, TypeError, "num_classes must be an int"),
        (("convnet1d", 3, 10), {}, TypeError, "norm must be a spec string"),
        ((7, "bn", 10), {}, TypeError, "backbone must be a string"),
        (("convnet1d", "bn", 10), {"widths": [8, 0]}, ValueError, "every entry of widths"),
        (("convnet1d", "bn", 10), {"widths": 8}, TypeError, "widths must be a non-empty list"),
        (("convnet1d", "bn", 10), {"widths": []}, TypeError, "widths must be a non-empty list"),
        (("convnet1d", "bn", 10), {"in_channels": 0}, ValueError, "in_channels must be >= 1"),
        (("gru", "ln", 10), {"hidden_size": "64"}, TypeError, "hidden_size must be an int"),
        (("gru", "ln", 10), {"dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\)"),
        (("convnet1d", "bn", 10), {"lr": 0.0}, ValueError, r"lr must be in \(0, inf\)"),
        (("convnet1d", "bn", 10), {"lr": float("nan")}, ValueError, "lr must be in"),
        (("convnet1d", "bn", 10), {"weight_decay": -1}, ValueError, "weight_decay must be in"),
        (("convnet1d", "auto", 10), {"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        (("convnet1d", "bn", 10), {"devices": 0}, ValueError, "devices must be >= 1"),
        (("convnet1d", "bn", 10), {"guard": "yes"}, TypeError, "guard must be True or False"),
    ],
)
def test_factory_arguments_are_validated_with_what_was_expected(
    args: tuple, options: dict, error: type, message: str
) -> None:
    # Each of these reached torch as a raw RuntimeError (or built a broken model) before.
    with pytest.raises(error, match=message) as info:
        build_module(*args, **options)
    assert "\n" not in str(info.value)


def test_logged_epoch_loss_is_the_sample_weighted_mean_and_keeps_nan() -> None:
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    model = build_module("convnet1d", "bn", 3, widths=[8])
    x, y = torch.randn(10, 1, 40), torch.randint(0, 3, (10,))
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )

    def validate(inputs: torch.Tensor) -> float:
        loader = DataLoader(TensorDataset(inputs, y), batch_size=4)  # batches of 4, 4, 2
        (metrics,) = trainer.validate(model, dataloaders=loader, verbose=False)
        return metrics["val/loss"]

    model.eval()
    with torch.no_grad():
        expected = nn.functional.cross_entropy(model(x), y).item()
    assert validate(x) == pytest.approx(expected, rel=1e-6)  # not the mean of 3 batch means
    x[9] = float("nan")  # one sample of the last batch: that batch's loss is NaN
    assert torch.isnan(torch.tensor(validate(x)))  # divergence stays visible
