"""CNN backbones: norm_layer threading through torchvision ResNets, ConvNets, article nets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torchvision.models import resnet18

from normsuite.models.cnn import ConvNet1d, ConvNet2d, ResNetBackbone, article_net, conv_bias


def _count(model: nn.Module, cls: type | tuple[type, ...]) -> int:
    return sum(isinstance(m, cls) for m in model.modules())


def test_resnet_gn_replaces_every_batchnorm_with_groupnorm_32() -> None:
    reference_sites = _count(resnet18(), nn.BatchNorm2d)
    net = ResNetBackbone("resnet18", "gn")
    assert _count(net, _BatchNorm) == 0
    gns = [m for m in net.modules() if isinstance(m, nn.GroupNorm)]
    assert len(gns) == reference_sites == 20
    # GroupNorm(G, C): G=32 groups, C = the conv's output channels (argument order).
    bn_channels = sorted(
        m.num_features for m in resnet18().modules() if isinstance(m, nn.BatchNorm2d)
    )
    assert sorted(m.num_channels for m in gns) == bn_channels
    assert all(m.num_groups == 32 for m in gns)


def test_resnet_bn_matches_torchvision_resnet18_exactly() -> None:
    torch.manual_seed(0)
    ours = ResNetBackbone("resnet18", "bn").eval()
    ref = resnet18().eval()
    ref.fc = nn.Identity()
    ours.net.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(ours(x), ref(x))


def test_resnet_ln_is_channel_layernorm_at_each_position() -> None:
    net = ResNetBackbone("resnet18", "ln", in_channels=1, small_input=True)
    assert _count(net, (_BatchNorm, nn.LayerNorm)) == 0  # no nn.LayerNorm(C) on NCHW
    seen: list[tuple[torch.Tensor, torch.Tensor, int]] = []

    def hook(module: nn.Module, inputs: tuple[torch.Tensor], out: torch.Tensor) -> None:
        seen.append((inputs[0].clone(), out.clone(), module.weight.numel()))  # ReLU is in-place

    for m in net.modules():
        if type(m).__name__ == "ChannelLayerNorm":
            m.register_forward_hook(hook)
    net(torch.randn(2, 1, 16, 16))
    assert len(seen) == 20
    for x, out, channels in seen:
        assert x.shape[1] == channels
        # Reference: LayerNorm over C at every (h, w), via channels-last F.layer_norm.
        ref = F.layer_norm(x.permute(0, 2, 3, 1), (channels,)).permute(0, 3, 1, 2)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)


def test_resnet_stem_options_and_unknown_arch() -> None:
    net = ResNetBackbone("resnet34", "gn", in_channels=1, small_input=True)
    assert net.net.conv1.in_channels == 1 and net.net.conv1.stride == (1, 1)
    assert isinstance(net.net.maxpool, nn.Identity)
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 512)
    assert ResNetBackbone("resnet50", "bn").out_features == 2048
    with pytest.raises(ValueError, match="resnet18"):
        ResNetBackbone("resnet7", "bn")
    with pytest.raises(ValueError, match="unknown norm"):
        ResNetBackbone("resnet18", "batchnrom_typo")


@pytest.mark.parametrize(
    ("norm", "has_bias"),
    [
        ("bn", False),
        ("syncbn", False),
        ("frozenbn", False),
        ("gn", False),
        ("gn:4", False),
        ("in", False),
        ("ln", True),
        ("rms", True),
        ("none", True),
    ],
)
def test_conv_bias_off_only_when_the_norm_cancels_it(norm: str, has_bias: bool) -> None:
    assert conv_bias(norm) is has_bias
    net = ConvNet1d(1, (8, 16), norm)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv1d)]
    assert len(convs) == 2
    assert all((c.bias is not None) is has_bias for c in convs)


def test_convnet_layout_order_and_shapes() -> None:
    net = ConvNet1d(1, (8, 16, 32), "gn", kernel_size=5, strides=(1, 2, 2))
    kinds = [type(m).__name__ for m in net.features]
    assert kinds == ["Conv1d", "GroupNorm", "ReLU"] * 3
    assert net(torch.randn(4, 1, 40)).shape == (4, 32)
    assert net.features[0].padding == (2,)
    net2 = ConvNet2d(3, (8,), "bn", activation="gelu")
    assert isinstance(net2.features[2], nn.GELU)
    assert net2(torch.randn(2, 3, 9, 9)).shape == (2, 8)
    with pytest.raises(ValueError, match="strides has 1 entries"):
        ConvNet1d(1, (8, 16), "bn", strides=(2,))
    with pytest.raises(ValueError, match="activation"):
        ConvNet1d(1, (8,), "bn", activation="swishy")
    with pytest.raises(ValueError, match="widths"):
        ConvNet1d(1, (), "bn")


def test_article_lbnnet_uses_channel_ln_where_the_article_failed() -> None:
    x = torch.randn(2, 3, 32, 32)
    # The article's LBNNet: nn.LayerNorm(64) on NCHW fails at W=32 (normalizes the last dim).
    with pytest.raises(RuntimeError, match="normalized_shape"):
        nn.LayerNorm(64)(nn.Conv2d(3, 64, 3, padding=1)(x))
    net = article_net("lbnnet", pool=False)
    conv = net.features[0]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (3, 64, (3, 3))
    ref = F.relu(F.layer_norm(conv(x).permute(0, 2, 3, 1), (64,)).permute(0, 3, 1, 2))
    torch.testing.assert_close(net(x), ref, atol=1e-5, rtol=1e-4)


def test_article_bnnet_and_grouplbnnet() -> None:
    bn = article_net("bnnet")
    assert isinstance(bn.features[1], nn.BatchNorm2d) and bn.features[0].bias is None
    gn = article_net("grouplbnnet")
    assert (gn.features[1].num_groups, gn.features[1].num_channels) == (8, 64)
    with pytest.raises(ValueError, match="bnnet"):
        article_net("lnnet")
