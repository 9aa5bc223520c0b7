"""normsuite's SyncBatchNorm in one process: BatchNorm behaviour, state, conversion and revert."""

from __future__ import annotations

import copy
import socket

import pytest
import torch
import torch.distributed as dist
from torch import nn

from normsuite.norms import sync
from normsuite.norms.convert import convert_norms
from normsuite.norms.layers import BatchNormLastDim, BatchNormNd, build_norm
from normsuite.norms.sync import (
    SyncBatchNorm,
    convert_sync_batchnorm,
    is_sync_batchnorm,
    revert_sync_batchnorm,
)
from normsuite.norms.sync_last_dim import SyncBatchNormLastDim

SHAPES = {
    nn.BatchNorm1d: [(6, 4), (6, 4, 7)],
    nn.BatchNorm2d: [(6, 4, 5, 3)],
    nn.BatchNorm3d: [(6, 4, 3, 2, 2)],
}
CASES = [(cls, shape) for cls, shapes in SHAPES.items() for shape in shapes]


def _pair(bn_cls: type[nn.Module], momentum: float | None = 0.1) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    bn = bn_cls(4, momentum=momentum)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    sync = SyncBatchNorm(4, momentum=momentum)
    sync.load_state_dict(bn.state_dict())
    return bn, sync


def _run(layer: nn.Module, x: torch.Tensor, steps: int = 2) -> dict[str, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    for _ in range(steps):
        y = layer(x)
    (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    return {
        "y": y.detach(),
        "x_grad": x.grad,
        **{k: v.clone() for k, v in layer.state_dict().items()},
    }


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize(("bn_cls", "shape"), CASES)
@pytest.mark.parametrize("momentum", [0.1, None])
def test_without_process_group_it_is_batchnorm_exactly(
    bn_cls: type[nn.Module], shape: tuple[int, ...], momentum: float | None
) -> None:
    bn, sync = _pair(bn_cls, momentum)
    x = torch.randn(*shape) * 3 + 1
    _assert_identical(_run(sync, x), _run(bn, x))
    bn.eval(), sync.eval()
    assert torch.equal(sync(x), bn(x))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.xdist_group("ddp")
def test_world_size_one_group_is_batchnorm_exactly() -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1
    )
    try:
        for bn_cls, shape in CASES:
            bn, sync = _pair(bn_cls)
            x = torch.randn(*shape)
            _assert_identical(_run(sync, x), _run(bn, x))
    finally:
        dist.destroy_process_group()


def test_state_dict_keys_and_loading_match_batchnorm_both_ways() -> None:
    bn = nn.BatchNorm2d(8)
    bn.running_mean.uniform_()
    sync = SyncBatchNorm(8)
    assert list(sync.state_dict()) == list(bn.state_dict())
    assert [n for n, _ in sync.named_parameters()] == [n for n, _ in bn.named_parameters()]
    sync.load_state_dict(bn.state_dict(), strict=True)
    back = nn.BatchNorm2d(8)
    back.load_state_dict(sync.state_dict(), strict=True)
    assert torch.equal(back.running_mean, bn.running_mean)


def test_rejects_input_without_channel_dim_with_a_hint() -> None:
    with pytest.raises(ValueError, match="add a batch dimension"):
        SyncBatchNorm(4)(torch.randn(4))


def test_one_value_per_channel_in_training_fails_like_batchnorm() -> None:
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        SyncBatchNorm(4)(torch.randn(1, 4))


def test_build_norm_syncbn_builds_it_for_every_layout() -> None:
    assert type(build_norm("syncbn", 8)) is SyncBatchNorm
    assert type(build_norm("SyncBatchNorm", 8, ndim=3)) is SyncBatchNorm
    last = build_norm("syncbn", 8, ndim=3, channels_last=True)
    assert isinstance(last, SyncBatchNormLastDim)
    x = torch.randn(4, 5, 8)  # (N, L, C)
    ref = nn.functional.batch_norm(x.reshape(-1, 8), None, None, training=True)
    torch.testing.assert_close(last(x), ref.view(4, 5, 8))


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(5, 4),
        nn.BatchNorm1d(4),
        nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)),
        nn.BatchNorm3d(4),
        BatchNormLastDim(4),
    )
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.num_batches_tracked.fill_(7)
    model[3].eval()
    return model


def _classes(model: nn.Module) -> list[type]:
    return [type(m) for m in model.modules()]


def test_convert_norms_syncbn_and_revert_round_trip_exactly() -> None:
    model = _model()
    original_classes, state = _classes(model), copy.deepcopy(model.state_dict())
    report = convert_norms(model, "syncbn")
    assert len(list(report)) == 4
    assert [type(m) for m in (model[1], model[2][1], model[3])] == [SyncBatchNorm] * 3
    assert type(model[4]) is SyncBatchNormLastDim
    reverted = revert_sync_batchnorm(model)
    assert _classes(reverted) == original_classes  # BatchNorm2d, not a generic BatchNormNd
    assert not reverted[3].training and reverted[1].training
    _assert_identical(reverted.state_dict(), state)


def test_convert_sync_batchnorm_shares_parameters_and_revert_keeps_them() -> None:
    model = _model()
    original_classes = _classes(model)
    params = list(model.parameters())
    buffers = list(model.buffers())
    synced = SyncBatchNorm.convert_sync_batchnorm(model)
    assert type(synced[2][1]) is SyncBatchNorm and type(synced[4]) is SyncBatchNormLastDim
    reverted = revert_sync_batchnorm(synced)
    assert _classes(reverted) == original_classes
    # The very same tensors: an optimizer built before conversion keeps working.
    assert all(a is b for a, b in zip(reverted.parameters(), params, strict=True))
    assert all(a is b for a, b in zip(reverted.buffers(), buffers, strict=True))


def test_revert_without_a_recorded_class_gives_a_layout_agnostic_batchnorm() -> None:
    model = nn.Sequential(SyncBatchNorm(4), build_norm("syncbn", 4, ndim=3, channels_last=True))
    reverted = revert_sync_batchnorm(model)
    assert type(reverted[0]) is BatchNormNd and type(reverted[1]) is BatchNormLastDim
    assert reverted[0](torch.randn(3, 4, 2, 2, 2)).shape == (3, 4, 2, 2, 2)
    assert sync.BatchNormXd is BatchNormNd  # the old public name: one class, two names


def test_is_sync_batchnorm_knows_both_implementations_and_both_layouts() -> None:
    synced = [SyncBatchNorm(4), nn.SyncBatchNorm(4), build_norm("syncbn", 4, channels_last=True)]
    assert all(is_sync_batchnorm(m) for m in synced)
    plain = [nn.BatchNorm2d(4), BatchNormNd(4), BatchNormLastDim(4), nn.GroupNorm(2, 4)]
    assert not any(is_sync_batchnorm(m) for m in plain)


def test_torch_syncbatchnorm_conversion_records_and_restores_classes() -> None:
    model = _model()
    original_classes, state = _classes(model), copy.deepcopy(model.state_dict())
    synced = convert_sync_batchnorm(model, sync_class=nn.SyncBatchNorm)
    assert type(synced[1]) is nn.SyncBatchNorm and type(synced[2][1]) is nn.SyncBatchNorm
    assert type(synced[4]) is SyncBatchNormLastDim  # torch's SyncBN is channels-first only
    reverted = revert_sync_batchnorm(synced)
    assert _classes(reverted) == original_classes
    _assert_identical(reverted.state_dict(), state)


def test_normsync_plugin_picks_normsuite_off_nccl_and_reverts() -> None:
    from normsuite.training.sync_plugin import NormSync

    plugin = NormSync()
    assert plugin.choose() == "normsuite"  # no process group here: not NCCL
    assert NormSync(implementation="torch").choose() == "torch"
    model = _model()
    original_classes = _classes(model)
    synced = plugin.apply(model)
    assert type(synced[2][1]) is SyncBatchNorm
    assert _classes(plugin.revert(synced)) == original_classes
    torch_synced = NormSync(implementation="torch").apply(_model())
    assert type(torch_synced[2][1]) is nn.SyncBatchNorm
    with pytest.raises(ValueError, match="implementation must be"):
        NormSync(implementation="apex")


def test_conversion_functions_check_their_arguments() -> None:
    # issue 15 item 8: a TypeError that says what was expected, not an AttributeError.
    with pytest.raises(TypeError, match=r"convert_sync_batchnorm takes a model .* got str"):
        convert_sync_batchnorm("resnet18")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"revert_sync_batchnorm takes a model .* got str"):
        revert_sync_batchnorm("resnet18")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sync_class must be a BatchNorm class"):
        convert_sync_batchnorm(nn.BatchNorm2d(3), sync_class=nn.GroupNorm)  # type: ignore[arg-type]


def test_bias_false_survives_conversion_and_revert() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, bias=False))
    synced = convert_sync_batchnorm(model)
    assert isinstance(synced[1], SyncBatchNorm) and synced[1].bias is None
    reverted = revert_sync_batchnorm(synced)
    assert type(reverted[1]) is nn.BatchNorm2d and reverted[1].bias is None
    assert set(reverted[1].state_dict()) == set(nn.BatchNorm2d(4, bias=False).state_dict())
