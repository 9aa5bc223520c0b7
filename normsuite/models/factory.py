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
import math
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
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string (one of {', '.join(choices)}), got {value!r}")
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; use one of {', '.join(choices)}")
    return value


def _integer(name: str, value: Any, *, minimum: int, optional: bool = False) -> None:
    """``value`` is an int >= ``minimum`` (None allowed when ``optional``); bool is not an int."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "an int or None" if optional else "an int"
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _integers(name: str, value: Any, *, minimum: int) -> None:
    """``value`` is None or a non-empty list/tuple of ints >= ``minimum``."""
    if value is None:
        return
    if not isinstance(value, list | tuple) or not value:
        raise TypeError(f"{name} must be a non-empty list of ints, e.g. [32, 64], got {value!r}")
    for item in value:
        _integer(f"every entry of {name}", item, minimum=minimum)


def _real(name: str, value: Any, *, low: float, high: float = math.inf, open_low: bool) -> None:
    """``value`` is a finite real in (low, high) / [low, high)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    below = value <= low if open_low else value < low
    if not math.isfinite(value) or below or value >= high:
        bracket = "(" if open_low else "["
        upper = "inf" if math.isinf(high) else f"{high:g}"
        raise ValueError(f"{name} must be in {bracket}{low:g}, {upper}), got {value!r}")


def validate_options(
    num_classes: Any, norm: Any, options: dict[str, Any], *, resolved_norm: Any = None
) -> None:
    """Check the arguments of :class:`NormClassifier` for type and range.

    Raises ``TypeError`` (wrong kind of value) or ``ValueError`` (value out of range), each
    with one line saying what was expected, before torch would fail with a raw message.
    """
    if norm is not None and not isinstance(norm, str):
        raise TypeError(
            f"norm must be a spec string ('bn', 'gn:16', 'ln', 'none', 'auto', ...) or None, "
            f"got {type(norm).__name__} {norm!r}"
        )
    if resolved_norm is not None and not isinstance(resolved_norm, str):
        raise TypeError(f"resolved_norm must be a norm spec string, got {resolved_norm!r}")
    _integer("num_classes", num_classes, minimum=1)
    _integer("in_channels", options.get("in_channels"), minimum=1, optional=True)
    _integers("widths", options.get("widths"), minimum=1)
    _integers("strides", options.get("strides"), minimum=1)
    for name in ("kernel_size", "hidden_size", "num_layers", "devices", "accumulate"):
        if name in options:
            _integer(name, options[name], minimum=1)
    _integer("batch_size", options.get("batch_size"), minimum=1, optional=True)
    if "dropout" in options:
        _real("dropout", options["dropout"], low=0.0, high=1.0, open_low=False)
    if "lr" in options:
        _real("lr", options["lr"], low=0.0, open_low=True)
    for name in ("weight_decay", "momentum"):
        if name in options:
            _real(name, options[name], low=0.0, open_low=False)
    for name in ("bidirectional", "small_input", "guard"):
        if name in options and not isinstance(options[name], bool):
            raise TypeError(f"{name} must be True or False, got {options[name]!r}")
    rules = options.get("advice_rules")
    if rules is not None and (
        not isinstance(rules, list | tuple) or not all(isinstance(r, str) for r in rules)
    ):
        raise TypeError(f"advice_rules must be a list of rule ids like ['B2'], got {rules!r}")


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
        resolved_norm, advice_rules: set on reload; the concrete norm (what ``auto``
            resolved to) and the advice rule ids behind it. Both are saved in the checkpoint
            and in ``hparams.yaml``.

    ``norm="auto"`` with ``batch_size`` resolves at once; without it, it resolves when the
    Trainer starts (:meth:`configure_model`), from the datamodule's ``batch_size`` x
    ``trainer.world_size``, so a LightningCLI recipe advises from the batch it trains with.
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
        advice_rules: list[str] | None = None,
    ) -> None:
        super().__init__()
        options = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        validate_options(num_classes, norm, options, resolved_norm=resolved_norm)
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
        self.norm: str | None = None
        self.backbone: nn.Module | None = None
        self.head: nn.Module | None = None
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
        if resolved_norm is not None:  # a reload: the norm that was trained, no new advice
            self._build(str(NormSpec.parse(resolved_norm)), advice_rules or [])
        elif str(norm).lower() != "auto":
            self._build(*resolve_norm(backbone, norm))
        elif batch_size is not None:  # auto with the batch stated: resolve now
            self._build(
                *resolve_norm(
                    backbone, norm, batch_size=batch_size, devices=devices, accumulate=accumulate
                )
            )
        # else: norm="auto" without a batch size waits for the Trainer (configure_model), where
        # the datamodule's batch size and the number of devices are known.

    def _build(self, norm: str, rules: Any) -> None:
        """Build backbone and head with the concrete ``norm``; record it in the hparams."""
        hp = self.hparams
        self.norm = norm
        # Saved in the checkpoint AND in hparams.yaml (the loggers write hparams_initial), and
        # both are init arguments, so load_from_checkpoint and LightningCLI's resume rebuild
        # the same network without asking the advice again.
        for store in (self.hparams, self._hparams_initial):
            store["resolved_norm"] = norm
            store["advice_rules"] = list(rules)
        self.backbone = build_backbone(
            hp.backbone,
            norm,
            in_channels=hp.in_channels,
            widths=hp.widths,
            kernel_size=hp.kernel_size,
            strides=hp.strides,
            hidden_size=hp.hidden_size,
            num_layers=hp.num_layers,
            bidirectional=hp.bidirectional,
            small_input=hp.small_input,
            dropout=hp.dropout,
        )
        self.head = nn.Linear(self.backbone.out_features, hp.num_classes)

    def configure_model(self) -> None:
        """Resolve ``norm="auto"`` once, from the batch the Trainer really trains with.

        Per-device batch = the datamodule's ``batch_size``; devices = ``trainer.world_size``
        (nodes x devices); accumulation = ``trainer.accumulate_grad_batches``. A model built
        with an explicit ``batch_size`` is warned when the real batch differs.
        """
        trainer = self._trainer
        if trainer is None:
            return
        hp = self.hparams
        real = getattr(trainer.datamodule, "batch_size", None)
        real = real if isinstance(real, int) and not isinstance(real, bool) else None
        devices, accumulate = int(trainer.world_size), int(trainer.accumulate_grad_batches)
        if self.backbone is not None:
            stated = (hp.batch_size, hp.devices)
            if (
                str(hp.norm).lower() == "auto"
                and hp.get("resolved_norm") is not None
                and real is not None
                and stated != (real, devices)
            ):
                from lightning.pytorch.utilities import rank_zero_warn

                rank_zero_warn(
                    f"norm='auto' resolved to {self.norm!r} for batch_size={hp.batch_size} x "
                    f"devices={hp.devices}, but this run trains with batch {real} x {devices} "
                    "device(s); leave the model's batch_size unset to advise from the real batch"
                )
            return
        if real is None:
            raise ValueError(
                "norm='auto' needs the per-device batch size and the datamodule has no int "
                "batch_size attribute; pass the model batch_size=... (and devices=...)"
            )
        norm, rules = resolve_norm(
            hp.backbone, "auto", batch_size=real, devices=devices, accumulate=accumulate
        )
        for store in (self.hparams, self._hparams_initial):
            store["batch_size"], store["devices"], store["accumulate"] = real, devices, accumulate
        self._build(norm, rules)

    def _require_built(self) -> None:
        if self.backbone is None:
            raise RuntimeError(
                "norm='auto' is resolved when training starts (from the datamodule's batch size "
                "and the devices); fit the model first, or pass batch_size=... to build it now"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._require_built()
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
        self._require_built()
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
        "advice_rules",
    }
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for build_module; "
            f"valid options: {', '.join(sorted(valid))}"
        )
    return NormClassifier(backbone, norm, num_classes, **options)
