"""convert_norms: swapping norm families in built models, carrying state, and its report."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import mobilenet_v3_small, resnet18
from torchvision.models.vision_transformer import VisionTransformer
from torchvision.ops.misc import FrozenBatchNorm2d

from normsuite.norms import (
    BatchNormLastDim,
    ChannelLayerNorm,
    ChannelRMSNorm,
    ConversionReport,
    FrozenBatchNorm,
    GroupNormLastDim,
    convert_norms,
    is_norm_layer,
)
from normsuite.norms.layers import BatchNormNd


def randomize_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random affine and running stats in every norm layer: carried state must show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if not is_norm_layer(module):
                continue
            for name in ("weight", "bias", "running_mean"):
                t = getattr(module, name, None)
                if isinstance(t, Tensor):
                    t.copy_(torch.randn(t.shape, generator=g))
            rv = getattr(module, "running_var", None)
            if isinstance(rv, Tensor):
                rv.copy_(torch.rand(rv.shape, generator=g) + 0.5)
    return model


def tiny_vit() -> VisionTransformer:
    return VisionTransformer(
        image_size=16, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32
    )


def norm_types(model: nn.Module) -> set[type]:
    return {type(m) for m in model.modules() if is_norm_layer(m)}


# --------------------------------------------------------------------------- torchvision models
def test_resnet18_to_gn_round_trip() -> None:
    torch.manual_seed(0)
    model = randomize_norms(resnet18())
    old_bn1 = model.bn1
    report = convert_norms(model, "gn")

    assert isinstance(report, ConversionReport)
    assert len(report) == 20
    assert norm_types(model) == {nn.GroupNorm}
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    first = next(iter(report))
    name, old, new = first
    assert (name, old, new) == ("bn1", old_bn1, model.bn1)
    assert new.num_groups == 32 and new._normsuite_original_class is nn.BatchNorm2d
    torch.testing.assert_close(new.weight, old_bn1.weight)
    torch.testing.assert_close(new.bias, old_bn1.bias)
    assert report.not_carried["bn1"] == ["running statistics (GroupNorm keeps none)"]

    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 1000) and torch.isfinite(out).all()

    fresh = resnet18()
    convert_norms(fresh, "gn")
    fresh.load_state_dict(model.state_dict())  # strict
    model.eval(), fresh.eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(fresh(x), model(x))


def test_resnet18_to_frozenbn_keeps_eval_outputs_exactly() -> None:
    torch.manual_seed(0)
    # float64: the frozen layer folds the statistics into scale and shift, BN does not, and
    # float32 rounding through 20 layers would hide whether the statistics came over exactly.
    model = randomize_norms(resnet18()).double().eval()
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    expected = model(x)
    report = convert_norms(model, "frozenbn")
    assert norm_types(model) == {FrozenBatchNorm}
    assert report.not_carried == {}
    for key, value in stats.items():
        assert torch.equal(model.state_dict()[key], value), key
    torch.testing.assert_close(model(x), expected, rtol=1e-10, atol=1e-10)
    model.train()  # frozen stays frozen
    torch.testing.assert_close(model(x), expected, rtol=1e-10, atol=1e-10)
    assert sum(p.numel() for p in model.parameters() if p.dim() == 1) == sum(
        m.bias.numel() for m in model.modules() if isinstance(m, nn.Linear)
    )  # the norms left no parameters behind; only fc.bias is 1-d


def test_bn_to_bn_copies_exactly_and_back_from_gn_restores_batchnorm2d() -> None:
    model = randomize_norms(resnet18()).eval()
    x = torch.randn(1, 3, 32, 32)
    expected = model(x)
    convert_norms(model, "bn")
    torch.testing.assert_close(model(x), expected, rtol=0, atol=0)
    assert model.layer1[0].bn1.num_batches_tracked.item() == 0

    convert_norms(model, "gn")
    convert_norms(model, "bn")  # GroupNorm remembers it replaced a BatchNorm2d
    assert norm_types(model) == {nn.BatchNorm2d}


def test_mobilenet_v3_small_to_ln_uses_channel_layernorm() -> None:
    model = randomize_norms(mobilenet_v3_small())
    report = convert_norms(model, "ln")
    assert norm_types(model) == {ChannelLayerNorm}
    assert len(report) == sum(1 for _ in model.modules() if isinstance(_, ChannelLayerNorm))
    for _, old, new in report:
        torch.testing.assert_close(new.weight, old.weight)
        assert new.eps == old.eps  # mobilenet's BN uses eps=0.001
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 1000) and torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("to", "expected_type"),
    [
        ("ln", nn.LayerNorm),
        ("rms", nn.RMSNorm),
        ("bn", BatchNormLastDim),
        ("gn:4", GroupNormLastDim),
        ("frozenbn", FrozenBatchNorm),
    ],
)
def test_small_vit_keeps_token_layout(to: str, expected_type: type) -> None:
    model = randomize_norms(tiny_vit())
    x = torch.randn(2, 3, 16, 16)
    report = convert_norms(model, to)
    assert len(report) == 5  # 2 blocks x 2 + the final encoder.ln
    assert norm_types(model) == {expected_type}
    out = model(x)
    assert out.shape == (2, 1000) and torch.isfinite(out).all()


def test_vit_ln_to_rms_reports_the_lost_bias_and_matches_f_rms_norm() -> None:
    model = randomize_norms(tiny_vit())
    old = model.encoder.ln
    report = convert_norms(model, "rms", include=["encoder.ln"])
    assert [s.name for s in report] == ["encoder.ln"]
    assert report.not_carried == {"encoder.ln": ["bias (RMSNorm has none of shape (16,))"]}
    tokens = torch.randn(2, 5, 16)
    expected = F.rms_norm(tokens, (16,), old.weight, old.eps)
    torch.testing.assert_close(model.encoder.ln(tokens), expected)


def test_torchvision_frozen_bn_to_bn_keeps_eval_outputs() -> None:
    # detectron2-style backbones ship torchvision's FrozenBatchNorm2d (buffers only).
    model = randomize_norms(nn.Sequential(nn.Conv2d(3, 4, 1), FrozenBatchNorm2d(4))).double()
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    expected = model(x)
    report = convert_norms(model, "bn")
    assert type(model[1]) is nn.BatchNorm2d and report.not_carried == {}
    assert model[1].weight.requires_grad  # buffers became trainable parameters
    torch.testing.assert_close(model.eval()(x), expected, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- containers
class Block(nn.Module):
    def __init__(self, shared: nn.Module) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 1)
        self.norm = shared
        self.again = shared  # the same module under two names


def nested_model() -> nn.Module:
    shared = nn.BatchNorm1d(4)
    return nn.Sequential(
        nn.BatchNorm2d(4),
        nn.ModuleList([nn.InstanceNorm2d(4, affine=True), nn.GroupNorm(2, 4)]),
        nn.ModuleDict({"a": nn.LayerNorm(4), "b": nn.Sequential(nn.BatchNorm3d(4))}),
        Block(shared),
    )


def test_nested_containers_and_shared_modules() -> None:
    model = nested_model()
    report = convert_norms(model, "ln")
    names = [s.name for s in report]
    assert names == ["0", "1.0", "1.1", "2.a", "2.b.0", "3.norm"]
    assert isinstance(model[0], ChannelLayerNorm)
    assert isinstance(model[1][0], ChannelLayerNorm)
    assert isinstance(model[2]["a"], nn.LayerNorm)
    assert isinstance(model[2]["b"][0], ChannelLayerNorm)
    assert model[3].norm is model[3].again and isinstance(model[3].norm, ChannelLayerNorm)
    assert not any(isinstance(m, nn.modules.batchnorm._NormBase) for m in model.modules())


def test_keeps_device_dtype_and_mode() -> None:
    model = nested_model().double()
    model[0].eval()
    convert_norms(model, "gn:2")
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert model[0].training is False and model[1][0].training is True
    model = nested_model().to("meta")
    convert_norms(model, "rms")
    assert all(p.device.type == "meta" for p in model.parameters())


def test_include_and_exclude_by_type_and_glob() -> None:
    model = resnet18()
    report = convert_norms(model, "gn", exclude=["layer4"])
    assert all(not s.name.startswith("layer4") for s in report) and len(report) == 15
    assert isinstance(model.layer4[0].bn1, nn.BatchNorm2d)

    model = resnet18()
    report = convert_norms(model, "gn", include="layer2.*.bn1", exclude=nn.GroupNorm)
    assert [s.name for s in report] == ["layer2.0.bn1", "layer2.1.bn1"]

    model = nested_model()
    report = convert_norms(model, "bn", include=[nn.GroupNorm, nn.InstanceNorm2d])
    assert [s.name for s in report] == ["1.0", "1.1"]
    assert type(model[1][0]) is nn.BatchNorm2d  # InstanceNorm2d tells its rank
    assert type(model[1][1]) is BatchNormNd  # GroupNorm takes any rank: so does the new BN
    assert report.not_carried["1.1"] == [
        "running statistics (GroupNorm has none; BatchNormNd starts at mean 0, var 1)"
    ]
    x = torch.randn(2, 4, 3, 3)
    torch.testing.assert_close(model[1][1](x), F.batch_norm(x, None, None, training=True))


def test_batchnorm_to_none_and_back_to_channel_norms() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    report = convert_norms(model, "none")
    assert isinstance(model[1], nn.Identity)
    assert "weight (Identity has none of shape (4,))" in report.not_carried["1"]
    assert "running statistics (Identity keeps none)" in report.not_carried["1"]
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    convert_norms(model, "rms")
    assert isinstance(model[1], ChannelRMSNorm)


def test_report_str_is_readable() -> None:
    model = nn.Sequential(nn.Conv2d(3, 64, 1), nn.BatchNorm2d(64), nn.BatchNorm2d(64))
    text = str(convert_norms(model, "gn"))
    assert text.splitlines()[0] == "converted 2 norm layer(s) to gn"
    assert "1  BatchNorm2d(64) -> GroupNorm(32, 64)" in text
    assert "running statistics (GroupNorm keeps none): 1, 2" in text


# --------------------------------------------------------------------------- subclasses with extras
class BatchNormAct(nn.BatchNorm2d):
    """Like timm's BatchNormAct2d: a BN subclass whose forward also applies an activation."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(super().forward(x))


def test_foreign_subclass_with_own_forward_is_skipped_unless_included() -> None:
    model = nn.Sequential(BatchNormAct(4), nn.BatchNorm2d(4))
    report = convert_norms(model, "gn:2")
    assert [s.name for s in report] == ["1"]
    assert "has its own forward" in report.skipped["0"]
    assert "skipped:" in str(report)
    report = convert_norms(model, "gn:2", include=[BatchNormAct])
    assert [s.name for s in report] == ["0"]


# --------------------------------------------------------------------------- errors
def test_layout_that_cannot_be_told_raises_and_changes_nothing() -> None:
    model = nn.Sequential(nn.BatchNorm2d(4), nn.LayerNorm((4, 3, 3)))
    with pytest.raises(ValueError, match=r"cannot convert '1'.*trailing dims \(4, 3, 3\).*exclude"):
        convert_norms(model, "bn")
    assert type(model[0]) is nn.BatchNorm2d  # nothing swapped
    report = convert_norms(model, "bn", exclude=["1"])
    assert len(report) == 1


def test_error_paths() -> None:
    with pytest.raises(ValueError, match=r"the model itself is a BatchNorm2d.*build_norm"):
        convert_norms(nn.BatchNorm2d(4), "gn")
    with pytest.raises(TypeError, match="include takes module types or name globs"):
        convert_norms(resnet18(), "gn", include=[3])
    with pytest.raises(TypeError, match="exclude takes module types"):
        convert_norms(resnet18(), "gn", exclude=nn.Linear(1, 1))
    with pytest.raises(ValueError, match="unknown norm 'gnn'"):
        convert_norms(resnet18(), "gnn")
    with pytest.raises(ValueError, match="C=30 channels into G=16"):
        convert_norms(nn.Sequential(nn.BatchNorm2d(30)), "gn:16")
    with pytest.raises(ValueError, match="not initialized yet; run one forward pass"):
        convert_norms(nn.Sequential(nn.LazyBatchNorm2d()), "gn")


def test_bn_to_syncbn_carries_everything_exactly() -> None:
    sync = pytest.importorskip("normsuite.norms.sync")
    model = randomize_norms(nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)))
    model(torch.randn(2, 3, 4, 4))
    old = model[1]
    convert_norms(model, "syncbn")
    new = model[1]
    assert isinstance(new, sync.SyncBatchNorm)
    assert new._normsuite_original_class is nn.BatchNorm2d
    for key, value in old.state_dict().items():
        torch.testing.assert_close(new.state_dict()[key], value, rtol=0, atol=0)


# --------------------------------------------------------------------------- layers without state
# (layer, input shape after a first layer that maps 4 -> 8 channels)
STATELESS_NORMS = {
    "ln_no_affine": (lambda: nn.LayerNorm(8, elementwise_affine=False), (5, 4)),
    "rms_no_affine": (lambda: nn.RMSNorm(8, elementwise_affine=False), (5, 4)),
    "gn_no_affine": (lambda: nn.GroupNorm(2, 8, affine=False), (5, 4, 3)),
    "in_no_stats": (lambda: nn.InstanceNorm1d(8), (5, 4, 3)),
}


@pytest.mark.parametrize("to", ["bn", "syncbn", "frozenbn", "gn:2", "ln", "rms"])
@pytest.mark.parametrize("case", STATELESS_NORMS.values(), ids=STATELESS_NORMS.keys())
def test_norm_without_parameters_takes_the_models_dtype(case, to: str) -> None:
    # The old layer has no tensor to read a dtype from: the new one follows its neighbours.
    make, shape = case
    first = nn.Linear(4, 8) if len(shape) == 2 else nn.Conv1d(4, 8, 1)
    model = nn.Sequential(first, make()).double()
    convert_norms(model, to)
    tensors = [*model[1].parameters(), *model[1].buffers()]
    assert all(t.dtype == torch.float64 for t in tensors if t.is_floating_point())
    x = torch.randn(shape, dtype=torch.float64)
    assert model(x).dtype == torch.float64  # mixed float32/float64 raised here


def test_norm_without_parameters_takes_the_parents_device() -> None:
    model = nn.Sequential(
        nn.Linear(4, 8),
        nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8, elementwise_affine=False)),
    ).to("meta")
    convert_norms(model, "bn")
    assert all(t.device.type == "meta" for t in (*model.parameters(), *model.buffers()))
    # Nothing floating anywhere in the model: torch's defaults, as before.
    bare = nn.Sequential(nn.Identity(), nn.GroupNorm(2, 8, affine=False))
    convert_norms(bare, "bn")
    assert bare[1].running_mean.dtype == torch.get_default_dtype()


# ------------------------------------------------------------ BatchNorm1d: (N, C) or (N, C, L)
def _bn1d_reference(to: str, old: dict[str, Tensor], new: nn.Module, x: Tensor) -> Tensor:
    """What the converted layer must compute on x, with the state carried from BatchNorm1d."""
    w, b = old["weight"], old["bias"]
    last = x.movedim(1, -1)  # (N, C) stays (N, C); (N, C, L) -> (N, L, C)
    if to in ("bn", "syncbn"):
        return F.batch_norm(x, None, None, w, b, training=True)
    if to == "frozenbn":
        return F.batch_norm(x, old["running_mean"], old["running_var"], w, b, training=False)
    if to.startswith("gn"):
        return F.group_norm(x, new.num_groups, w, b)
    if to == "ln":
        return F.layer_norm(last, (8,), w, b).movedim(-1, 1)
    if to == "rms":
        return F.rms_norm(last, (8,), w, eps=1e-5).movedim(-1, 1)  # BN eps carried
    assert to == "none"
    return x


@pytest.mark.parametrize("to", ["bn", "syncbn", "frozenbn", "gn", "gn:2", "ln", "rms", "none"])
def test_batchnorm1d_converts_for_both_of_its_layouts(to: str) -> None:
    # BatchNorm1d takes (N, C) features and (N, C, L) sequences: no rank may be guessed.
    model = randomize_norms(nn.Sequential(nn.BatchNorm1d(8)))
    old = {k: v.clone() for k, v in model[0].state_dict().items()}
    convert_norms(model, to)
    for shape in [(6, 8), (6, 8, 5)]:
        x = torch.randn(shape)
        expected = _bn1d_reference(to, old, model[0], x)
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)


def test_batchnorm1d_to_instancenorm_raises_since_the_layout_cannot_be_told() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8))
    with pytest.raises(ValueError, match=r"cannot convert '1'.*\(N, C\).*\(N, C, L\).*exclude"):
        convert_norms(model, "in")
    assert type(model[1]) is nn.BatchNorm1d  # nothing swapped
    # A layer that came from a BatchNorm1d remembers it, so the rank stays unknown.
    convert_norms(model, "gn:2")
    with pytest.raises(ValueError, match="cannot convert '1'"):
        convert_norms(model, "in")
    # Layers that tell their rank still convert.
    model = nn.Sequential(nn.Conv1d(4, 8, 1), nn.InstanceNorm1d(8, affine=True))
    convert_norms(model, "bn")
    convert_norms(model, "in")
    assert type(model[1]) is nn.InstanceNorm1d


# --------------------------------------------------------------------------- settings kept
@pytest.mark.parametrize("to", ["bn", "syncbn", "gn:2", "ln", "in"])
def test_a_layer_without_bias_gets_no_bias(to: str) -> None:
    # issue 16 item 4: BatchNorm2d(bias=False) -> "bn" gave a trainable bias, silently.
    model = randomize_norms(nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, bias=False)))
    weight = model[1].weight.detach().clone()
    report = convert_norms(model, to)
    assert model[1].bias is None
    torch.testing.assert_close(model[1].weight.detach(), weight)  # the scale is carried
    assert not any("bias" in note for note in report.not_carried.get("1", []))


@pytest.mark.parametrize("to", ["bn", "syncbn", "gn:2", "ln", "in", "rms"])
def test_affine_false_stays_affine_false(to: str) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, affine=False))
    convert_norms(model, to)
    assert model[1].weight is None
    assert getattr(model[1], "bias", None) is None


@pytest.mark.parametrize("to", ["bn", "syncbn"])
def test_batchnorm_keeps_track_running_stats_and_momentum(to: str) -> None:
    model = nn.Sequential(nn.BatchNorm2d(4, track_running_stats=False, momentum=0.3))
    convert_norms(nn.Sequential(model), to)
    new = model[0]
    assert isinstance(new, nn.modules.batchnorm._BatchNorm)
    assert new.track_running_stats is False
    assert new.running_mean is None
    assert new.momentum == 0.3
    x = torch.randn(5, 4, 3, 3)
    torch.testing.assert_close(new.eval()(x), F.batch_norm(x, None, None, training=True))


def test_instancenorm_keeps_track_running_stats_and_other_families_keep_their_default() -> None:
    model = nn.Sequential(nn.InstanceNorm2d(4, affine=True, track_running_stats=True))
    convert_norms(model, "in")
    assert model[0].track_running_stats is True
    assert model[0].running_mean is not None
    # BN -> in: InstanceNorm's own default (no running statistics), reported as not carried.
    bn_model = nn.Sequential(nn.BatchNorm2d(4))
    report = convert_norms(bn_model, "in")
    assert bn_model[0].track_running_stats is False
    assert "running statistics (InstanceNorm2d keeps none)" in str(report)


def test_layernorm_without_bias_keeps_none_in_the_token_layout() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8, bias=False))
    convert_norms(model, "gn:2")
    assert isinstance(model[1], GroupNormLastDim)
    assert model[1].bias is None
    convert_norms(model, "ln")
    assert isinstance(model[1], nn.LayerNorm)
    assert model[1].bias is None


def test_argument_types_are_checked() -> None:
    # issue 15 item 8: None was read as "none" (every norm became Identity), silently.
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    with pytest.raises(TypeError, match=r"target norm is None; write 'none'"):
        convert_norms(model, None)  # type: ignore[arg-type]
    assert isinstance(model[1], nn.BatchNorm2d)
    with pytest.raises(TypeError, match=r"takes the model \(a torch.nn.Module\).*got str"):
        convert_norms("resnet18", "gn")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a spec string such as 'gn'"):
        convert_norms(model, nn.GroupNorm)  # type: ignore[arg-type]
    assert len(convert_norms(model, "identity")) == 1  # the spelled spec stays
    assert isinstance(model[1], nn.Identity)
