"""build_norm and normsuite's norm layers against torch.nn.functional references, in float64."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops.misc import FrozenBatchNorm2d as TorchvisionFrozenBatchNorm2d

from normsuite.norms import (
    NORM_LAYER_TYPES,
    BatchNormLastDim,
    ChannelLayerNorm,
    ChannelRMSNorm,
    FrozenBatchNorm,
    GroupNormLastDim,
    InstanceNormLastDim,
    build_norm,
    channel_dim,
    is_norm_layer,
)
from normsuite.norms.layers import BatchNormNd, InstanceNormNd

C = 8
DT = torch.float64


@dataclass(frozen=True)
class Layout:
    """An input layout: how build_norm is called and how to make/convert an input."""

    name: str
    ndim: int
    channels_last: bool  # build_norm's flag: channels are the last dim
    shape: tuple[int, ...]  # the input's shape
    memory_channels_last: bool = False  # torch.channels_last memory format (4-d only)

    def make_input(self, seed: int = 0) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(self.shape, generator=g, dtype=DT) * 3 + 1
        if self.memory_channels_last:
            x = x.to(memory_format=torch.channels_last)
        return x

    def to_cf(self, x: Tensor) -> Tensor:
        """The reference's view of x: channels-first (N, C, *)."""
        return x.movedim(-1, 1) if self.channels_last else x

    def from_cf(self, y: Tensor) -> Tensor:
        return y.movedim(1, -1) if self.channels_last else y


LAYOUTS = [
    Layout("features", 2, False, (6, C)),
    Layout("sequence_cf", 3, False, (4, C, 5)),
    Layout("image", 4, False, (3, C, 4, 5)),
    Layout("image_channels_last_memory", 4, False, (3, C, 4, 5), memory_channels_last=True),
    Layout("volume", 5, False, (2, C, 3, 2, 4)),
    Layout("tokens", 3, True, (4, 5, C)),
    Layout("nhwc", 4, True, (3, 4, 5, C)),
]
LAYOUT_IDS = [layout.name for layout in LAYOUTS]
SPECS = ["bn", "syncbn", "frozenbn", "gn", "gn:2", "gn:1", "ln", "in", "rms", "none"]


def randomize(module: nn.Module, seed: int = 1) -> nn.Module:
    """Random affine and running statistics, so a test notices if either is ignored."""
    g = torch.Generator().manual_seed(seed)
    module.to(DT)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean"):
            t = getattr(module, name, None)
            if isinstance(t, Tensor):
                t.copy_(torch.randn(t.shape, generator=g, dtype=DT))
        rv = getattr(module, "running_var", None)
        if isinstance(rv, Tensor):
            rv.copy_(torch.rand(rv.shape, generator=g, dtype=DT) + 0.5)
    return module


def reference(spec: str, module: nn.Module, x_cf: Tensor, training: bool) -> Tensor:
    """The same computation written with torch.nn.functional on channels-first input."""
    w, b = getattr(module, "weight", None), getattr(module, "bias", None)
    if spec == "none":
        return x_cf
    if spec in ("bn", "syncbn"):  # one process: SyncBN must equal BN
        rm, rv = module.running_mean.clone(), module.running_var.clone()
        return F.batch_norm(x_cf, rm, rv, w, b, training, 0.1, 1e-5)
    if spec == "frozenbn":  # hand formula: statistics never come from the batch
        shape = (1, -1) + (1,) * (x_cf.dim() - 2)
        scale = (w / torch.sqrt(module.running_var + 1e-5)).view(shape)
        return (x_cf - module.running_mean.view(shape)) * scale + b.view(shape)
    if spec.startswith("gn"):
        return F.group_norm(x_cf, module.num_groups, w, b, 1e-5)
    if spec == "in":
        return F.instance_norm(x_cf, weight=w, bias=b, eps=1e-5)
    last = x_cf.movedim(1, -1)
    if spec == "ln":
        return F.layer_norm(last, (C,), w, b, 1e-5).movedim(-1, 1)
    if spec == "rms":
        return F.rms_norm(last, (C,), w, None).movedim(-1, 1)
    raise AssertionError(spec)


def cases() -> list:
    out = []
    for layout in LAYOUTS:
        for spec in SPECS:
            if spec == "in" and layout.ndim == 2:
                continue  # an error path, tested below
            out.append(pytest.param(spec, layout, id=f"{spec}-{layout.name}"))
    return out


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(("spec", "layout"), cases())
def test_matches_functional_reference(spec: str, layout: Layout, training: bool) -> None:
    module = randomize(build_norm(spec, C, ndim=layout.ndim, channels_last=layout.channels_last))
    module.train(training)
    x = layout.make_input()
    expected = layout.from_cf(reference(spec, module, layout.to_cf(x), training))
    if spec in ("bn", "syncbn"):  # the reference ran on clones; keep the pre-forward stats
        before = (module.running_mean.clone(), module.running_var.clone())
    out = module(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)
    if spec in ("bn", "syncbn"):
        x_cf = layout.to_cf(x)
        rm, rv = before[0].clone(), before[1].clone()
        F.batch_norm(x_cf, rm, rv, None, None, training, 0.1, 1e-5)
        torch.testing.assert_close(module.running_mean, rm)
        torch.testing.assert_close(module.running_var, rv)


@pytest.mark.parametrize("spec", ["ln", "rms", "bn", "gn", "frozenbn"])  # torch IN does not
def test_channels_last_memory_format_is_kept(spec: str) -> None:
    x = torch.randn(2, C, 4, 4).to(memory_format=torch.channels_last)
    out = build_norm(spec, C)(x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    out_cf = build_norm(spec, C)(x.contiguous())
    assert out_cf.is_contiguous()


@pytest.mark.parametrize(
    ("spec", "layout", "expected_type"),
    [
        ("bn", LAYOUTS[0], nn.BatchNorm1d),
        ("bn", LAYOUTS[1], nn.BatchNorm1d),
        ("bn", LAYOUTS[2], nn.BatchNorm2d),
        ("bn", LAYOUTS[4], nn.BatchNorm3d),
        ("bn", LAYOUTS[5], BatchNormLastDim),
        ("frozenbn", LAYOUTS[2], FrozenBatchNorm),
        ("gn", LAYOUTS[2], nn.GroupNorm),
        ("gn", LAYOUTS[5], GroupNormLastDim),
        ("ln", LAYOUTS[0], nn.LayerNorm),
        ("ln", LAYOUTS[2], ChannelLayerNorm),
        ("ln", LAYOUTS[5], nn.LayerNorm),
        ("in", LAYOUTS[1], nn.InstanceNorm1d),
        ("in", LAYOUTS[2], nn.InstanceNorm2d),
        ("in", LAYOUTS[4], nn.InstanceNorm3d),
        ("in", LAYOUTS[5], InstanceNormLastDim),
        ("rms", LAYOUTS[0], nn.RMSNorm),
        ("rms", LAYOUTS[2], ChannelRMSNorm),
        ("rms", LAYOUTS[5], nn.RMSNorm),
        ("none", LAYOUTS[2], nn.Identity),
    ],
    ids=lambda v: v.name if isinstance(v, Layout) else (v if isinstance(v, str) else None),
)
def test_layer_type_per_layout(spec: str, layout: Layout, expected_type: type) -> None:
    module = build_norm(spec, C, ndim=layout.ndim, channels_last=layout.channels_last)
    assert type(module) is expected_type
    assert is_norm_layer(module) == (spec != "none")


def test_layer_options() -> None:
    assert build_norm("gn", 64).num_groups == 32
    assert build_norm("gn", 48).num_groups == 12
    assert build_norm("gn:4", 64).num_groups == 4
    assert build_norm("in", C).affine is True
    assert build_norm("bn", C, eps=1e-3).eps == 1e-3
    assert build_norm("ln", C, affine=False).weight is None
    assert build_norm("ln", C, ndim=3, channels_last=True, affine=False).weight is None
    assert build_norm("rms", C, affine=False).weight is None
    assert build_norm("gn", C, affine=False).weight is None


def test_channel_ln_is_not_layernorm_on_last_dim_nor_gn1() -> None:
    # The article's LBNNet mistake: nn.LayerNorm(C) on NCHW normalizes W when W == C.
    x = torch.randn(2, C, 3, C, dtype=DT)
    channel_ln = build_norm("ln", C).to(DT)
    out = channel_ln(x)
    torch.testing.assert_close(out.mean(dim=1), torch.zeros(2, 3, C, dtype=DT))
    assert not torch.allclose(out, nn.LayerNorm(C).to(DT)(x))
    assert not torch.allclose(out, nn.GroupNorm(1, C).to(DT)(x))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_channel_rms_low_precision_does_not_overflow(dtype: torch.dtype) -> None:
    # 64 channels of magnitude ~1000: the sum of squares overflows float16 (max 65504).
    x = (torch.randn(2, 64, 3, 3, generator=torch.Generator().manual_seed(0)) * 1000).to(dtype)
    out = build_norm("rms", 64).to(dtype)(x)
    ref = F.rms_norm(x.double().movedim(1, -1), (64,), None, torch.finfo(dtype).eps)
    assert out.dtype == dtype
    torch.testing.assert_close(out.double(), ref.movedim(-1, 1), rtol=2e-2, atol=2e-2)


# --------------------------------------------------------------------------- FrozenBatchNorm
def test_frozenbn_loads_batchnorm_state_and_stays_frozen_in_train() -> None:
    bn = randomize(nn.BatchNorm2d(C))
    bn(torch.randn(4, C, 3, 3, dtype=DT))  # num_batches_tracked becomes 1
    frozen = build_norm("frozenbn", C).to(DT)
    frozen.load_state_dict(bn.state_dict())  # strict: the counter is accepted and dropped
    assert list(frozen.parameters()) == []
    frozen.train()
    x = torch.randn(4, C, 3, 3, dtype=DT)
    before = {k: v.clone() for k, v in frozen.state_dict().items()}
    torch.testing.assert_close(frozen(x), bn.eval()(x))
    for key, value in frozen.state_dict().items():
        torch.testing.assert_close(value, before[key])


def test_frozenbn_matches_torchvision_and_loads_its_state() -> None:
    tv = randomize(TorchvisionFrozenBatchNorm2d(C))
    frozen = FrozenBatchNorm(C).to(DT)
    frozen.load_state_dict(tv.state_dict())
    x = torch.randn(2, C, 3, 3, dtype=DT)
    torch.testing.assert_close(frozen(x), tv(x))


FROZEN_INPUTS = [pytest.param(layout, id=layout.name) for layout in LAYOUTS] + [
    # A strided view (every other position): neither memory format, any kernel must cope.
    pytest.param(Layout("sequence_cf_strided", 3, False, (4, C, 10)), id="sequence_cf_strided"),
]


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("layout", FROZEN_INPUTS)
def test_frozenbn_output_and_input_grad_match_eval_batch_norm(
    layout: Layout, training: bool
) -> None:
    """Every input layout (each may take another kernel): values and input gradient equal
    F.batch_norm in eval mode, gradients reach only the input, the buffers do not move."""
    frozen = randomize(
        build_norm("frozenbn", C, ndim=layout.ndim, channels_last=layout.channels_last)
    )
    frozen.train(training)
    x = layout.make_input()
    if layout.name.endswith("strided"):
        x = x[..., ::2]
    x.requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    ref = layout.from_cf(
        F.batch_norm(
            layout.to_cf(x_ref),
            frozen.running_mean,
            frozen.running_var,
            frozen.weight,
            frozen.bias,
            training=False,
            eps=frozen.eps,
        )
    )
    before = {k: v.clone() for k, v in frozen.state_dict().items()}
    out = frozen(x)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    if not layout.name.endswith("strided"):
        assert out.stride() == x.stride()  # the input's memory layout is kept
    grad = torch.randn_like(ref)
    (out * grad).sum().backward()
    (ref * grad).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-12, atol=1e-12)
    assert all(not b.requires_grad and b.grad is None for b in frozen.buffers())
    for key, value in frozen.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


@pytest.mark.parametrize("layout", FROZEN_INPUTS)
def test_frozenbn_without_gradients_takes_the_fused_kernel_with_the_same_values(
    layout: Layout,
) -> None:
    """Inference (no gradient needed) runs eval-mode batch norm where it applies: same values
    as the gradient path, same dtype, and still scriptable."""
    frozen = randomize(
        build_norm("frozenbn", C, ndim=layout.ndim, channels_last=layout.channels_last)
    )
    x = layout.make_input()
    with torch.no_grad():
        inference = frozen(x)
    training = frozen(x.clone().requires_grad_())
    torch.testing.assert_close(inference, training.detach(), rtol=1e-12, atol=1e-12)
    assert inference.dtype == training.dtype == x.dtype
    scripted = torch.jit.script(frozen)
    torch.testing.assert_close(scripted(x), inference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_frozenbn_half_precision_is_torchs_eval_batchnorm(dtype: torch.dtype) -> None:
    # .half() / "16-true" models: scale and shift in float32 as torch's eval-mode kernel does
    # (issue 16 item 8: in half precision they doubled the error), so NCHW and channels_last
    # memory give torch's eval BatchNorm to the bit, and the (N, *, C) layout is as exact.
    frozen = randomize(FrozenBatchNorm(C).float()).to(dtype)
    x = (torch.randn(4, C, 6, 6) * 3 + 1).to(dtype).requires_grad_()
    bn = nn.BatchNorm2d(C).to(dtype).eval()
    bn.load_state_dict(frozen.state_dict())
    expected = bn(x)
    assert torch.equal(frozen(x), expected)
    assert torch.equal(frozen(x.detach().to(memory_format=torch.channels_last)), expected)

    last = FrozenBatchNorm(C, channels_last=True).to(dtype)
    last.load_state_dict(frozen.state_dict())
    out = last(x.movedim(1, -1)).movedim(-1, 1)
    assert out.dtype == dtype
    exact = nn.BatchNorm2d(C).double().eval()
    exact.load_state_dict(frozen.state_dict())
    reference = exact(x.detach().double())
    error = (out.double() - reference).abs().max()
    assert error <= (expected.double() - reference).abs().max()


def test_frozenbn_strict_load_from_batchnorm_without_affine_or_bias() -> None:
    # issue 16 item 8: no affine is weight 1 and bias 0, so the strict load must work.
    x = torch.randn(4, C, 3, 3, dtype=DT)
    for kwargs in ({"affine": False}, {"bias": False}):
        bn = randomize(nn.BatchNorm2d(C, **kwargs)).eval()
        frozen = FrozenBatchNorm(C).to(DT)
        frozen.load_state_dict(bn.state_dict())
        torch.testing.assert_close(frozen(x), bn(x), rtol=1e-12, atol=1e-12)


def test_batchnorm_last_dim_state_dict_is_batchnorm1d() -> None:
    seq_bn = build_norm("bn", C, ndim=3, channels_last=True)
    assert list(seq_bn.state_dict()) == list(nn.BatchNorm1d(C).state_dict())
    bn1d = randomize(nn.BatchNorm1d(C)).eval()
    seq_bn.to(DT).load_state_dict(bn1d.state_dict())
    x = torch.randn(3, 5, C, dtype=DT)  # (N, L, C)
    torch.testing.assert_close(seq_bn.eval()(x), bn1d(x.transpose(1, 2)).transpose(1, 2))


# --------------------------------------------------------------------------- gradients
GRAD_CASES = [
    (ChannelLayerNorm(3), (2, 3, 2, 2), False),
    (ChannelLayerNorm(3), (2, 3, 2, 2), True),
    (ChannelLayerNorm(3), (2, 3, 4), False),
    (ChannelRMSNorm(3), (2, 3, 2, 2), False),
    (ChannelRMSNorm(3), (2, 3, 2, 2), True),
    (FrozenBatchNorm(3), (2, 3, 2, 2), False),
    (FrozenBatchNorm(3, channels_last=True), (2, 4, 3), False),
    (BatchNormLastDim(3), (2, 4, 3), False),
    (GroupNormLastDim(1, 3), (2, 4, 3), False),
    (InstanceNormLastDim(3, affine=True), (2, 4, 3), False),
    (BatchNormNd(3), (2, 3, 2, 2), False),
    (InstanceNormNd(3, affine=True), (2, 3, 2, 2), False),
]


@pytest.mark.parametrize(
    ("module", "shape", "memory_cl"),
    GRAD_CASES,
    ids=[f"{type(m).__name__}-{s}-{'cl' if cl else 'cf'}" for m, s, cl in GRAD_CASES],
)
def test_gradcheck(module: nn.Module, shape: tuple[int, ...], memory_cl: bool) -> None:
    module = randomize(module).train()
    x = torch.randn(shape, dtype=DT)
    if memory_cl:
        x = x.to(memory_format=torch.channels_last)
    x.requires_grad_()
    params = tuple(p for p in module.parameters())
    assert torch.autograd.gradcheck(lambda inp, *_: module(inp), (x, *params), fast_mode=True)


# --------------------------------------------------------------------------- registry
def test_is_norm_layer_and_channel_dim() -> None:
    assert is_norm_layer(TorchvisionFrozenBatchNorm2d(C))
    assert is_norm_layer(nn.SyncBatchNorm(C))
    assert not is_norm_layer(nn.Conv2d(1, 1, 1))
    assert nn.LayerNorm in NORM_LAYER_TYPES
    assert channel_dim(nn.BatchNorm2d(C)) == 1
    assert channel_dim(nn.GroupNorm(2, C)) == 1
    assert channel_dim(build_norm("ln", C)) == 1
    assert channel_dim(nn.LayerNorm(C)) == -1
    assert channel_dim(nn.RMSNorm(C)) == -1
    assert channel_dim(build_norm("bn", C, ndim=3, channels_last=True)) == -1
    assert channel_dim(build_norm("frozenbn", C, ndim=3, channels_last=True)) == -1
    assert channel_dim(build_norm("frozenbn", C)) == 1
    assert channel_dim(nn.LayerNorm((C, 4, 4))) is None
    assert channel_dim(nn.Linear(2, 2)) is None


# --------------------------------------------------------------------------- errors
def test_gn_groups_must_divide_channels() -> None:
    with pytest.raises(
        ValueError, match=r"C=30 channels into G=16.*valid G for C=30: 1, 2, 3, 5, 6, 10, 15, 30"
    ):
        build_norm("gn:16", 30)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spec": "bn", "num_channels": 0}, "num_channels must be a positive int, got 0"),
        ({"spec": "bn", "num_channels": 8, "ndim": 1}, r"ndim must be 2 \(N, C\).*got 1"),
        ({"spec": "bn", "num_channels": 8, "ndim": 6}, "ndim must be"),
        ({"spec": "in", "num_channels": 8, "ndim": 2}, r"'in' \(InstanceNorm\) needs positions"),
        ({"spec": "batchnrom", "num_channels": 8}, "Did you mean"),
    ],
)
def test_build_norm_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_norm(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spec": None, "num_channels": 8}, r"norm spec is None; write 'none'"),
        ({"spec": 3, "num_channels": 8}, "norm spec must be a string"),
        ({"spec": "bn", "num_channels": True}, "num_channels must be a positive int, got True"),
        ({"spec": "bn", "num_channels": 8.0}, "num_channels must be a positive int, got 8.0"),
        ({"spec": "bn", "num_channels": 8, "affine": "yes"}, "affine must be True or False"),
        ({"spec": "bn", "num_channels": 8, "eps": "1e-5"}, "eps must be a float or None"),
    ],
)
def test_build_norm_type_errors(kwargs: dict, message: str) -> None:
    # issue 15 item 8: a wrong type is a TypeError that says what was expected.
    with pytest.raises(TypeError, match=message):
        build_norm(**kwargs)


def test_build_norm_rejects_negative_eps() -> None:
    with pytest.raises(ValueError, match="eps must be >= 0, got -1"):
        build_norm("gn", 8, eps=-1.0)


def test_runtime_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"expected input of shape \(N, \.\.\., C\)"):
        build_norm("bn", C, ndim=3, channels_last=True)(torch.randn(C))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, \.\.\., C\)"):
        build_norm("gn", C, ndim=3, channels_last=True)(torch.randn(C))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, C, \.\.\.\)"):
        BatchNormNd(C)(torch.randn(C))
    with pytest.raises(ValueError, match="InstanceNorm needs"):
        InstanceNormNd(C)(torch.randn(2, C))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, C, \.\.\.\)"):
        FrozenBatchNorm(C)(torch.randn(C))


def test_syncbn_builds_normsuite_syncbatchnorm() -> None:
    sync = pytest.importorskip("normsuite.norms.sync")
    module = build_norm("syncbn", C)
    assert isinstance(module, sync.SyncBatchNorm)
    tokens = build_norm("syncbn", C, ndim=3, channels_last=True)
    assert isinstance(tokens, sync.SyncBatchNorm)
    assert channel_dim(tokens) == -1


def test_every_export_resolves() -> None:
    import normsuite
    import normsuite.norms as norms

    for name in norms.__all__:
        assert getattr(norms, name) is not None
    assert normsuite.build_norm is build_norm
    assert normsuite.convert_norms is norms.convert_norms
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        norms.nope  # noqa: B018


# --------------------------------------------------------------------------- issue 16 regressions
def test_group_norm_last_dim_takes_an_empty_batch() -> None:
    x = torch.randn(0, 3, 4, requires_grad=True)
    layer = GroupNormLastDim(2, 4)
    out = layer(x)
    assert out.shape == (0, 3, 4)
    torch.testing.assert_close(out, nn.GroupNorm(2, 4)(x.movedim(-1, 1)).movedim(1, -1))
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


@pytest.mark.parametrize("shape", [(4, 12), (4, 5, 12), (2, 3, 4, 12)])
def test_group_norm_last_dim_is_as_exact_as_torch_on_a_large_mean(shape: tuple) -> None:
    # Torch's channels_last CPU kernel lost ~100x the precision of its channels-first one.
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)) * 3 + 100
    layer = GroupNormLastDim(3, 12)
    reference = F.group_norm(x.double().movedim(-1, 1), 3).movedim(1, -1)
    ours = (layer(x).double() - reference).abs().max()
    torchs = (nn.GroupNorm(3, 12)(x.movedim(-1, 1)).movedim(1, -1).double() - reference).abs().max()
    assert ours <= 2 * torchs


def test_group_norm_last_dim_gradient_is_torchs() -> None:
    x = (torch.randn(3, 5, 12, dtype=DT) * 3 + 100).requires_grad_()
    layer = randomize(GroupNormLastDim(3, 12))
    ref_layer = nn.GroupNorm(3, 12).to(DT)
    ref_layer.load_state_dict(layer.state_dict())
    x_ref = x.detach().movedim(-1, 1).requires_grad_()
    g = torch.randn(3, 5, 12, dtype=DT)
    layer(x).backward(g)
    ref_layer(x_ref).backward(g.movedim(-1, 1))
    torch.testing.assert_close(x.grad, x_ref.grad.movedim(1, -1))
    torch.testing.assert_close(layer.weight.grad, ref_layer.weight.grad)


def test_syncbn_takes_bias_false_like_batchnorm() -> None:
    from normsuite.norms import SyncBatchNorm, SyncBatchNormLastDim

    x = torch.randn(4, 3, 5)
    for layer, moved in (
        (SyncBatchNorm(3, bias=False), x),
        (SyncBatchNormLastDim(3, bias=False), x.mT),
    ):
        assert layer.bias is None and layer.weight is not None
        out = layer(moved)
        expected = nn.BatchNorm1d(3, bias=False)(x)
        torch.testing.assert_close(out if moved is x else out.mT, expected)
        assert set(layer.state_dict()) == set(nn.BatchNorm1d(3, bias=False).state_dict())


def test_instance_norm_nd_refuses_unbatched_input_with_a_hint() -> None:
    # (C, H, W) was read as (N, C, L): a silently wrong result.
    layer = InstanceNormNd(3)
    with pytest.raises(ValueError, match=r"\(N, C=3, \.\.\.\), got shape \[3, 6, 6\].*unsqueeze"):
        layer(torch.randn(3, 6, 6))
    x = torch.randn(1, 3, 6, 6)
    torch.testing.assert_close(layer(x), nn.InstanceNorm2d(3)(x))


def test_instance_norm_last_dim_reads_2d_input_as_one_unbatched_sequence() -> None:
    layer = randomize(InstanceNormLastDim(C, affine=True))
    reference = nn.InstanceNorm1d(C, affine=True).to(DT)
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(5, C, dtype=DT)  # (L, C)
    torch.testing.assert_close(layer(x), reference(x.T).T)  # torch: unbatched (C, L)
    with pytest.raises(ValueError, match=r"C=8"):
        layer(torch.randn(5, 3, dtype=DT))


def _every_class() -> list[nn.Module]:
    from normsuite.norms import SyncBatchNorm, SyncBatchNormLastDim

    return [
        ChannelLayerNorm(C),
        ChannelLayerNorm(C, bias=False),
        ChannelRMSNorm(C),
        ChannelRMSNorm(C, eps=1e-3, affine=False),
        FrozenBatchNorm(C),
        FrozenBatchNorm(C, channels_last=True),
        BatchNormNd(C),
        BatchNormNd(C, momentum=None),
        InstanceNormNd(C, affine=True, track_running_stats=True),
        BatchNormLastDim(C),
        BatchNormLastDim(C, track_running_stats=False),
        GroupNormLastDim(2, C),
        InstanceNormLastDim(C, affine=True),
        SyncBatchNorm(C),
        SyncBatchNorm(C, bias=False, momentum=None),
        SyncBatchNormLastDim(C),
    ]


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
@pytest.mark.parametrize("layer", _every_class(), ids=lambda m: repr(m))
def test_every_class_scripts_and_the_script_computes_the_same(layer: nn.Module) -> None:
    import copy

    layer = randomize(layer)
    eager, scripted = copy.deepcopy(layer), torch.jit.script(copy.deepcopy(layer))
    last = channel_dim(layer) == -1
    x = torch.randn(3, 4, C, dtype=DT) if last else torch.randn(3, C, 4, 5, dtype=DT)
    for training in (True, False, True):
        eager.train(training)
        scripted.train(training)
        torch.testing.assert_close(scripted(x), eager(x))
    for (name, a), b in zip(
        eager.state_dict().items(), scripted.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(b, a, msg=name)  # running statistics moved alike


@pytest.mark.filterwarnings("ignore:Mismatch dtype between input and weight")  # torch's own
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("layer_dtype", [torch.float32, None], ids=["float32-layer", "same"])
def test_channel_rms_norm_is_torchs_rms_norm_in_half_precision(
    dtype: torch.dtype, layer_dtype: torch.dtype | None
) -> None:
    # eps=None is float32's epsilon, as torch computes in float32; the output has x's dtype.
    layer = ChannelRMSNorm(C).to(layer_dtype or dtype)
    reference = nn.RMSNorm(C).to(layer_dtype or dtype)
    with torch.no_grad():
        layer.weight.uniform_(0.5, 2)
        reference.weight.copy_(layer.weight)
    for scale in (1.0, 1e-3):  # small values: where eps matters
        x = (torch.randn(2, C, 3, 3) * scale).to(dtype)
        out = layer(x)
        assert out.dtype == dtype
        torch.testing.assert_close(out, reference(x.movedim(1, -1)).movedim(-1, 1), rtol=0, atol=0)


@pytest.mark.parametrize(
    "shape", [(1, 7, C), (1, 3, 5, C), (7, C)], ids=["N=1", "N=1-2d", "unbatched"]
)
def test_instance_norm_last_dim_gradient_for_one_sample(shape: tuple) -> None:
    # Torch's instance_norm backward misreads a channels_last-strided gradient when N == 1
    # (CPU, torch 2.14), which is what this layout hands it: the input gradient was wrong.
    layer = randomize(InstanceNormLastDim(C, affine=True))
    reference = nn.InstanceNorm1d(C, affine=True).to(DT)
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(shape, dtype=DT, requires_grad=True)
    if len(shape) == 2:  # (L, C): torch's unbatched (C, L)
        expected = reference(x.T).T
    else:
        flat = x.reshape(shape[0], -1, C).movedim(-1, 1)
        expected = reference(flat).movedim(1, -1).reshape(shape)
    g = torch.randn(shape, dtype=DT)
    (got_grad,) = torch.autograd.grad(layer(x), x, g)
    (expected_grad,) = torch.autograd.grad(expected, x, g)
    torch.testing.assert_close(got_grad, expected_grad)
