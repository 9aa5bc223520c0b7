"""``build_module``: a backbone with the chosen norm + a linear head, as a LightningModule.

Example:
    >>> from normsuite import build_module
    >>> model = build_module("convnet1d", "gn", num_classes=10, widths=[32, 64])  # doctest: +SKIP
    >>> model = build_module("resnet18", "auto", 100, batch_size=8)  # gn, B2  # doctest: +SKIP

In a LightningCLI YAML (``normsuite fit --config ...``)::

    model:
      class_path: normsuite.NormClassifier
      init_args: {backbone: gru, norm: ln, in_channels: 1, hidden_size: 128}
"""

from __future__ import annotations

import inspect
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from normsuite.advice import advise
from normsuite.models.cnn import ARTICLE_NETS, RESNETS, ConvNet1d, ConvNet2d, ResNetBackbone
from normsuite.models.rnn import RNN_CELLS, RNNBackbone
from normsuite.norms.spec import NormSpec

#: backbone name -> architecture family of normsuite.advice
BACKBONES: dict[str, str] = {
    **dict.fromkeys(RESNETS, "cnn2d"),
    "convnet1d": "cnn1d",
    "convnet2d": "cnn2d",
    **dict.fromkeys(ARTICLE_NETS, "cnn2d"),
    **dict.fromkeys(RNN_CELLS, "rnn"),
}
OPTIMIZERS = ("adamw", "sgd")
SCHEDULERS = ("cosine", "none")


def _choice(name: str, value: str, choices: tuple[str, ...] | dict[str, Any]) -> str:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; use one of {', '.join(choices)}")
    return value


def resolve_norm(
    backbone: str,
    norm: str,
    *,
    batch_size: int | None = None,
    devices: int = 1,
    accumulate: int = 1,
) -> tuple[str, tuple[str, ...]]:
    """The concrete norm spec for ``norm`` and the advice rule ids behind it.

    ``"auto"`` asks :func:`normsuite.advice.advise` with the backbone's family and the
    per-device batch; any other value is parsed and returned in canonical form.

    >>> resolve_norm("resnet18", "auto", batch_size=4)   # doctest: +SKIP
    ('gn', ('B2', 'B4'))
    """
    family = BACKBONES[_choice("backbone", backbone, BACKBONES)]
    if str(norm).lower() != "auto":
        return str(NormSpec.parse(norm)), ()
    if batch_size is None:
        raise ValueError(
            "norm='auto' needs the per-device batch size: pass batch_size=... "
            "(the advice for BN vs GN depends on it)"
        )
    advice = advise(family, batch_size, devices=devices, accumulate=accumulate)
    return advice.norm, tuple(advice.rules)


def build_backbone(
    backbone: str,
    norm: str,
    *,
    in_channels: int | None = None,
    widths: list[int] | None = None,
    kernel_size: int = 3,
    strides: list[int] | None = None,
    hidden_size: int = 128,
    num_layers: int = 1,
    bidirectional: bool = False,
    small_input: bool = False,
    dropout: float = 0.0,
) -> nn.Module:
    """The feature extractor named ``backbone`` with ``norm`` injected (``out_features`` set)."""
    _choice("backbone", backbone, BACKBONES)
    if backbone in RESNETS:
        return ResNetBackbone(backbone, norm, in_channels=in_channels or 3, small_input=small_input)
    if backbone in ("convnet1d", "convnet2d"):
        cls = ConvNet1d if backbone == "convnet1d" else ConvNet2d
        default_in = 1 if backbone == "convnet1d" else 3
        return cls(
            in_channels or default_in,
            widths or [32, 64, 128],
            norm,
            kernel_size=kernel_size,
            strides=strides,
        )
    if backbone in ARTICLE_NETS:
        # conv(3, 64, 3, padding=1) -> norm -> ReLU, as in the article (+ global pooling).
        return ConvNet2d(in_channels or 3, [64], norm, kernel_size=3)
    return RNNBackbone(
        backbone,
        in_channels or 1,
        hidden_size,
        num_layers,
        norm,
        bidirectional=bidirectional,
        dropout=dropout,
    )


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two optimizer groups: decay for weight matrices/kernels, none for norm and bias params.

    Norm gains/shifts and biases are the 1-d parameters (detectron2's WEIGHT_DECAY_NORM = 0,
    timm's ``param_groups_weight_decay``); decaying a norm's gamma pulls it towards 0.
    """
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


class NormClassifier(pl.LightningModule):
    """Backbone with the chosen norm + linear head, cross-entropy, accuracy metrics.

    All arguments are plain values so LightningCLI can build it from YAML, and
    ``save_hyperparameters`` makes ``NormClassifier.load_from_checkpoint(path)`` rebuild the
    same architecture and norm (``norm="auto"`` is stored resolved).

    Args:
        backbone: resnet18|resnet34|resnet50|convnet1d|convnet2d|lstm|gru|bnnet|lbnnet|grouplbnnet.
        norm: a norm spec (``bn``, ``gn:16``, ``ln``, ``none``, ...) or ``auto``. None (the
            default) means the article's norm for bnnet/lbnnet/grouplbnnet (their norm is
            fixed: bn, ln, gn:8; ``auto`` is refused), else ``bn``.
        num_classes: classes of the linear head.
        in_channels: input channels (CNN) or features per time step (RNN); default 3 for
            2-d backbones, 1 otherwise.
        widths, kernel_size, strides: ConvNet layer widths, kernel size and per-layer stride.
        hidden_size, num_layers, bidirectional, dropout: RNN shape.
        small_input: ResNet with a 3x3 stride-1 stem and no max-pool (CIFAR-size images).
        optimizer: ``adamw`` or ``sgd`` (momentum ``momentum``, Nesterov).
        lr, weight_decay: weight decay is never applied to norm and bias parameters.
        scheduler: ``cosine`` (per step, over the whole fit) or ``none``.
        batch_size, devices, accumulate: what ``norm="auto"`` bases its advice on.
        guard: add :class:`normsuite.BatchSizeGuard` (stops BN at per-device batch 1).
        resolved_norm: set on reload; the norm that ``auto`` resolved to.
    """

    def __init__(
        self,
        backbone: str = "convnet1d",
        norm: str | None = None,
        num_classes: int = 10,
        *,
        in_channels: int | None = None,
        widths: list[int] | None = None,
        kernel_size: int = 3,
        strides: list[int] | None = None,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        small_input: bool = False,
        optimizer: str = "adamw",
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        momentum: float = 0.9,
        scheduler: str = "cosine",
        batch_size: int | None = None,
        devices: int = 1,
        accumulate: int = 1,
        guard: bool = True,
        resolved_norm: str | None = None,
    ) -> None:
        super().__init__()
        _choice("backbone", backbone, BACKBONES)
        _choice("optimizer", optimizer, OPTIMIZERS)
        _choice("scheduler", scheduler, SCHEDULERS)
        if backbone in ARTICLE_NETS:
            article = ARTICLE_NETS[backbone]
            if norm is None:
                norm = article
            elif str(norm).lower() == "auto":
                raise ValueError(
                    f"{backbone} fixes its norm to the article's {article}, so norm='auto' does "
                    f"not apply; leave norm unset (or {article!r}), or use backbone='convnet2d' "
                    "with widths=[64] and norm='auto'"
                )
            elif str(NormSpec.parse(norm)) != article:
                raise ValueError(
                    f"{backbone} is the article's {article} network; for norm {norm!r} use "
                    "backbone='convnet2d' with widths=[64]"
                )
        if norm is None:
            norm = "bn"
        self.save_hyperparameters()
        if resolved_norm is None:
            resolved_norm, rules = resolve_norm(
                backbone, norm, batch_size=batch_size, devices=devices, accumulate=accumulate
            )
            self.hparams["resolved_norm"] = resolved_norm
            self.hparams["advice_rules"] = list(rules)
        self.norm = resolved_norm
        self.backbone = build_backbone(
            backbone,
            resolved_norm,
            in_channels=in_channels,
            widths=widths,
            kernel_size=kernel_size,
            strides=strides,
            hidden_size=hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            small_input=small_input,
            dropout=dropout,
        )
        self.head = nn.Linear(self.backbone.out_features, num_classes)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        # Losses as metrics too: the epoch value is the sample-weighted mean over ALL processes
        # (synced once at epoch end), not rank 0's; step values stay local and cost no sync.
        # A NaN loss must make the epoch value NaN (MeanMetric's default drops it with a
        # warning, hiding divergence from EarlyStopping/ModelCheckpoint): "impute" NaN by NaN.
        self.train_loss, self.val_loss, self.test_loss = (
            MeanMetric(nan_strategy=float("nan")) for _ in range(3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        accuracy, mean_loss = getattr(self, f"{stage}_acc"), getattr(self, f"{stage}_loss")
        accuracy(logits, y)
        mean_loss(loss.detach(), weight=y.numel())
        on_step = stage == "train"
        self.log(f"{stage}/loss", mean_loss, on_step=on_step, on_epoch=True, prog_bar=True)
        self.log(f"{stage}/acc", accuracy, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return self(x).argmax(dim=1)

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        groups = param_groups(self, hp.weight_decay)
        if hp.optimizer == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(
                groups, lr=hp.lr, momentum=hp.momentum, nesterov=hp.momentum > 0
            )
        else:
            opt = torch.optim.AdamW(groups, lr=hp.lr)
        if hp.scheduler == "none":
            return opt
        total = max(1, int(self.trainer.estimated_stepping_batches))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def configure_callbacks(self) -> list[pl.Callback]:
        if not self.hparams.guard:
            return []
        # The guard only checks the first training step. Lightning asks again for
        # trainer.test/validate, where a second guard would only be announced as replacing
        # the one kept from fit.
        trainer = self._trainer
        if trainer is not None and trainer.state.fn not in (None, TrainerFn.FITTING):
            return []
        from normsuite.training.guardrails import BatchSizeGuard

        return [BatchSizeGuard()]


def build_module(
    backbone: str, norm: str | None = None, num_classes: int = 10, **options: Any
) -> NormClassifier:
    """A :class:`NormClassifier` for ``backbone`` with ``norm`` injected.

    ``options`` are the keyword arguments of :class:`NormClassifier` (``widths``,
    ``hidden_size``, ``optimizer``, ``lr``, ``batch_size`` for ``norm="auto"``, ...).

    >>> build_module("gru", "ln", 10, in_channels=1, hidden_size=64)   # doctest: +SKIP
    """
    valid = set(inspect.signature(NormClassifier.__init__).parameters) - {
        "self",
        "backbone",
        "norm",
        "num_classes",
        "resolved_norm",
    }
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for build_module; "
            f"valid options: {', '.join(sorted(valid))}"
        )
    return NormClassifier(backbone, norm, num_classes, **options)
