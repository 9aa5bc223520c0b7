"""CNN backbones with the norm injected: torchvision ResNets, plain ConvNets, the article's nets.

Every backbone maps an input batch to a feature matrix ``(N, F)`` and exposes
``out_features``; the classifier head lives in :mod:`normsuite.models.factory`.

Example:
    >>> net = ConvNet1d(in_channels=1, widths=(32, 64), norm="gn")   # doctest: +SKIP
    >>> net(torch.randn(8, 1, 40)).shape                              # doctest: +SKIP
    torch.Size([8, 64])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import nn
from torchvision.models import resnet

from normsuite.norms.layers import build_norm
from normsuite.norms.spec import NormSpec

# Norms whose mean subtraction makes a preceding conv bias redundant. BN/SyncBN/FrozenBN
# and IN subtract a per-channel mean, which cancels a per-channel bias exactly; GN
# cancels it up to the spread of biases inside a group, and its own per-channel beta
# provides the shift (torchvision and detectron2 also drop the bias before GN).
BIAS_CANCELLING_KINDS = frozenset({"bn", "syncbn", "frozenbn", "gn", "in"})

RESNETS: dict[str, Callable[..., resnet.ResNet]] = {
    "resnet18": resnet.resnet18,
    "resnet34": resnet.resnet34,
    "resnet50": resnet.resnet50,
}

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": partial(nn.ReLU, inplace=True),
    "gelu": nn.GELU,
    "silu": partial(nn.SiLU, inplace=True),
}


def norm_kind(norm: str | NormSpec) -> str:
    """The family of a norm spec (``"gn:16"`` -> ``"gn"``)."""
    return NormSpec.parse(str(norm)).kind


def conv_bias(norm: str | NormSpec) -> bool:
    """Whether a conv followed by ``norm`` should keep its bias (False when the norm cancels it).

    >>> conv_bias("bn"), conv_bias("ln"), conv_bias("none")   # doctest: +SKIP
    (False, True, True)
    """
    return norm_kind(norm) not in BIAS_CANCELLING_KINDS


def norm_layer_factory(norm: str | NormSpec, *, ndim: int = 4) -> Callable[[int], nn.Module]:
    """A torchvision-style ``norm_layer``: a picklable callable ``C -> module`` for ``norm``.

    torchvision calls ``norm_layer(C)``; ``nn.GroupNorm`` takes ``(G, C)`` and
    ``nn.LayerNorm(C)`` would normalize the last dim of NCHW, so both go through
    :func:`build_norm`, which knows the layout.
    """
    spec = str(NormSpec.parse(str(norm)))  # validate early: bad specs fail here, not mid-build
    return partial(build_norm, spec, ndim=ndim)


def _activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; use one of {', '.join(sorted(ACTIVATIONS))}"
        ) from None


class ResNetBackbone(nn.Module):
    """A torchvision ResNet (no pretrained weights) with ``norm`` in every norm site.

    ``in_channels`` other than 3 replaces the stem conv; ``small_input=True`` swaps the
    7x7/stride-2 stem and max-pool for a 3x3/stride-1 conv (the usual CIFAR variant).
    """

    def __init__(
        self,
        arch: str = "resnet18",
        norm: str = "bn",
        *,
        in_channels: int = 3,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        if arch not in RESNETS:
            raise ValueError(f"unknown ResNet {arch!r}; use one of {', '.join(RESNETS)}")
        norm_layer = norm_layer_factory(norm, ndim=4)
        net = RESNETS[arch](weights=None, norm_layer=norm_layer)
        if in_channels != 3 or small_input:
            kernel, stride, padding = (3, 1, 1) if small_input else (7, 2, 3)
            net.conv1 = nn.Conv2d(
                in_channels, 64, kernel, stride=stride, padding=padding, bias=False
            )
            nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        if small_input:
            net.maxpool = nn.Identity()
        self.out_features: int = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _ConvNet(nn.Module):
    """conv -> norm -> activation blocks, then global average pooling to ``(N, C_last)``."""

    _ndim: int = 4
    _conv: type[nn.Module] = nn.Conv2d
    _pool: type[nn.Module] = nn.AdaptiveAvgPool2d

    def __init__(
        self,
        in_channels: int = 1,
        widths: Sequence[int] = (32, 64, 128),
        norm: str = "bn",
        *,
        kernel_size: int = 3,
        strides: Sequence[int] | None = None,
        activation: str = "relu",
        pool: bool = True,
    ) -> None:
        super().__init__()
        widths = list(widths)
        if not widths:
            raise ValueError("widths must name at least one layer, e.g. widths=[32, 64]")
        strides = list(strides) if strides is not None else [1] * len(widths)
        if len(strides) != len(widths):
            raise ValueError(f"strides has {len(strides)} entries, widths {len(widths)}")
        bias = conv_bias(norm)
        spec = str(NormSpec.parse(str(norm)))
        layers: list[nn.Module] = []
        channels = in_channels
        for width, stride in zip(widths, strides, strict=True):
            layers += [
                self._conv(
                    channels,
                    width,
                    kernel_size,
                    stride=stride,
                    padding=kernel_size // 2,
                    bias=bias,
                ),
                build_norm(spec, width, ndim=self._ndim),
                _activation(activation),
            ]
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.Sequential(self._pool(1), nn.Flatten(1)) if pool else nn.Identity()
        self.out_features: int = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x))


class ConvNet1d(_ConvNet):
    """Plain 1-d conv stack for ``(N, C, L)`` signals, e.g. MNIST-1D ``(N, 1, 40)``."""

    _ndim = 3
    _conv = nn.Conv1d
    _pool = nn.AdaptiveAvgPool1d


class ConvNet2d(_ConvNet):
    """Plain 2-d conv stack for ``(N, C, H, W)`` images."""

    _ndim = 4
    _conv = nn.Conv2d
    _pool = nn.AdaptiveAvgPool2d


# The article's three networks: conv(3, 64, 3, padding=1) -> norm -> ReLU. Its LBNNet used
# nn.LayerNorm(64) on NCHW (normalizes W, not C); here "ln" is channel LayerNorm.
ARTICLE_NETS: dict[str, str] = {"bnnet": "bn", "lbnnet": "ln", "grouplbnnet": "gn:8"}


def article_net(name: str, *, pool: bool = True) -> ConvNet2d:
    """``BNNet`` / ``LBNNet`` / ``GroupLBNNet`` of the source article, with LN done right.

    >>> article_net("lbnnet")   # doctest: +SKIP
    """
    try:
        norm = ARTICLE_NETS[name]
    except KeyError:
        raise ValueError(
            f"unknown article net {name!r}; use one of {', '.join(ARTICLE_NETS)}"
        ) from None
    return ConvNet2d(3, (64,), norm, kernel_size=3, pool=pool)
