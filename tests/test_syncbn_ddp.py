"""normsuite's SyncBatchNorm on 2 gloo ranks vs nn.BatchNorm on the whole batch in one process.

One ``torch.multiprocessing.spawn`` runs every scenario (starting processes is the slow part);
each rank writes its results to a file and the parent compares them with the reference.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from normsuite.norms.sync import SyncBatchNorm

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ddp")]

WORLD = 2
C = 3
BN_CLASSES = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}


def _scenario(
    shape: tuple[int, ...], split: tuple[int, int], dtype: torch.dtype, momentum: float | None
) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(sum(shape) + split[0])
    x = torch.randn(*shape, generator=gen, dtype=torch.float64)
    if dtype == torch.float32:
        # |mean| / std = 2000: E[x^2] - E[x]^2 would lose every digit of the variance.
        x = (1000.0 + 0.5 * x).to(dtype)
    elif dtype in (torch.float16, torch.bfloat16):
        # A large offset: sum(x^2) in half precision would overflow / cancel; float32 stats do not.
        x = (300.0 + 4.0 * x).to(dtype)
    else:
        x = (2.0 + 3.0 * x).to(dtype)
    return {
        "x": x,
        "g": torch.randn(*shape, generator=gen, dtype=torch.float64),
        "weight": 1.0 + 0.5 * torch.rand(shape[1], generator=gen, dtype=torch.float64),
        "bias": torch.randn(shape[1], generator=gen, dtype=torch.float64),
        "split": split,
        "momentum": momentum,
    }


SCENARIOS: dict[str, dict[str, Any]] = {
    "equal_4_4_2d": _scenario((8, C, 5, 4), (4, 4), torch.float64, 0.1),
    "unequal_3_5_2d": _scenario((8, C, 5, 4), (3, 5), torch.float64, 0.1),
    "empty_0_8_2d": _scenario((8, C, 5, 4), (0, 8), torch.float64, 0.1),
    "features_4_4": _scenario((8, C), (4, 4), torch.float64, 0.1),
    "seq_1d_3_5": _scenario((8, C, 6), (3, 5), torch.float64, None),
    "vol_3d_4_4": _scenario((8, C, 3, 2, 2), (4, 4), torch.float64, 0.3),
    "offset_fp32_3_5": _scenario((8, C, 6, 6), (3, 5), torch.float32, 0.1),
    "all_empty": _scenario((0, C, 5, 4), (0, 0), torch.float64, 0.1),
    "fp16_4_4": _scenario((8, C, 6, 6), (4, 4), torch.float16, 0.1),
    "bf16_3_5": _scenario((8, C, 6, 6), (3, 5), torch.bfloat16, 0.1),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    calls = {"all_gather": 0, "all_reduce": 0}
    for name in calls:  # count collectives: one per forward, one per backward
        original = getattr(dist, name)

        def counted(*args: Any, _name: str = name, _fn: Any = original, **kw: Any) -> Any:
            calls[_name] += 1
            return _fn(*args, **kw)

        setattr(dist, name, counted)

    results: dict[str, dict[str, Any]] = {}
    for key, sc in SCENARIOS.items():
        x_full: torch.Tensor = sc["x"]
        start = sum(sc["split"][:rank])
        stop = start + sc["split"][rank]
        half = x_full.dtype in (torch.float16, torch.bfloat16)
        param_dtype = torch.float32 if half else x_full.dtype
        layer = SyncBatchNorm(x_full.shape[1], momentum=sc["momentum"], dtype=param_dtype)
        with torch.no_grad():
            layer.weight.copy_(sc["weight"])
            layer.bias.copy_(sc["bias"])
        x = x_full[start:stop].clone().requires_grad_(True)
        for k in calls:
            calls[k] = 0
        y = layer(x)
        forward_calls = dict(calls)
        (y.double() * sc["g"][start:stop]).sum().backward()
        layer.eval()
        results[key] = {
            "y": y.detach(),
            "x_grad": x.grad,
            "weight_grad": layer.weight.grad,
            "bias_grad": layer.bias.grad,
            "running_mean": layer.running_mean.clone(),
            "running_var": layer.running_var.clone(),
            "num_batches_tracked": layer.num_batches_tracked.clone(),
            "eval_y": layer(x_full.to(param_dtype)).detach(),
            "forward_calls": forward_calls,
            "backward_calls": {k: calls[k] - forward_calls[k] for k in calls},
        }
    try:  # the motivation: torch's own SyncBatchNorm refuses CPU tensors
        nn.SyncBatchNorm(C)(torch.randn(4, C, 2))
        torch_error = ""
    except (ValueError, RuntimeError) as exc:
        torch_error = str(exc)
    results["torch_syncbn_on_cpu"] = {"error": torch_error}
    torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, dict[str, Any]]]:
    out = tmp_path_factory.mktemp("syncbn_ddp")
    mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True)
    return [torch.load(out / f"rank{r}.pt") for r in range(WORLD)]


def _reference(sc: dict[str, Any]) -> dict[str, torch.Tensor]:
    """nn.BatchNorm in float64 on the whole batch in one process."""
    x_full = sc["x"].double()
    bn = BN_CLASSES[x_full.dim()](x_full.shape[1], momentum=sc["momentum"]).double()
    with torch.no_grad():
        bn.weight.copy_(sc["weight"])
        bn.bias.copy_(sc["bias"])
    x = x_full.clone().requires_grad_(True)
    y = bn(x)
    (y * sc["g"]).sum().backward()
    bn.eval()
    return {
        "y": y.detach(),
        "x_grad": x.grad,
        "weight_grad": bn.weight.grad,
        "bias_grad": bn.bias.grad,
        "running_mean": bn.running_mean,
        "running_var": bn.running_var,
        "eval_y": bn(x_full).detach(),
    }


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


@pytest.mark.parametrize(
    "key", [k for k, sc in SCENARIOS.items() if sc["x"].dtype == torch.float64 and len(sc["x"])]
)
def test_two_ranks_match_one_process_batchnorm_float64(
    ranks: list[dict[str, dict[str, Any]]], key: str
) -> None:
    ref = _reference(SCENARIOS[key])
    r0, r1 = ranks[0][key], ranks[1][key]
    assert _max_diff(torch.cat([r0["y"], r1["y"]]), ref["y"]) <= 1e-5
    assert _max_diff(torch.cat([r0["x_grad"], r1["x_grad"]]), ref["x_grad"]) <= 1e-5
    # DDP sums (then averages) parameter gradients across ranks; the sum is the full-batch grad.
    assert _max_diff(r0["weight_grad"] + r1["weight_grad"], ref["weight_grad"]) <= 1e-5
    assert _max_diff(r0["bias_grad"] + r1["bias_grad"], ref["bias_grad"]) <= 1e-5
    for r in (r0, r1):
        assert _max_diff(r["running_mean"], ref["running_mean"]) <= 1e-5
        assert _max_diff(r["running_var"], ref["running_var"]) <= 1e-5  # unbiased, combined
        assert _max_diff(r["eval_y"], ref["eval_y"]) <= 1e-5
        assert r["num_batches_tracked"].item() == 1


def test_a_batch_empty_on_every_rank_leaves_running_statistics_alone(
    ranks: list[dict[str, dict[str, Any]]],
) -> None:
    bn = nn.BatchNorm2d(C).double().train()  # BatchNorm on an empty batch: the reference
    bn(torch.empty(0, C, 5, 4, dtype=torch.float64))
    for rank in ranks:
        r = rank["all_empty"]
        assert torch.equal(r["running_mean"], bn.running_mean)
        assert torch.equal(r["running_var"], bn.running_var)
        assert r["x_grad"].shape == (0, C, 5, 4)


def test_empty_rank_gets_empty_output_and_still_syncs(
    ranks: list[dict[str, dict[str, Any]]],
) -> None:
    r0 = ranks[0]["empty_0_8_2d"]
    assert r0["y"].shape == (0, C, 5, 4)
    assert r0["x_grad"].shape == (0, C, 5, 4)
    assert torch.equal(r0["weight_grad"], torch.zeros(C, dtype=torch.float64))


@pytest.mark.parametrize(("key", "atol"), [("fp16_4_4", 4e-3), ("bf16_3_5", 3e-2)])
def test_half_inputs_keep_float32_statistics(
    ranks: list[dict[str, dict[str, Any]]], key: str, atol: float
) -> None:
    sc = SCENARIOS[key]
    ref = _reference(sc)
    r0, r1 = ranks[0][key], ranks[1][key]
    assert r0["y"].dtype == sc["x"].dtype
    assert r0["running_mean"].dtype == torch.float32
    # Statistics of ~300-valued inputs: exact to float32 rounding, far from half precision.
    for r in (r0, r1):
        torch.testing.assert_close(
            r["running_mean"].double(), ref["running_mean"], rtol=1e-6, atol=0
        )
        torch.testing.assert_close(r["running_var"].double(), ref["running_var"], rtol=1e-4, atol=0)
    # Outputs are rounded to the input dtype once, at the end.
    assert _max_diff(torch.cat([r0["y"], r1["y"]]), ref["y"]) <= atol
    assert _max_diff(torch.cat([r0["x_grad"], r1["x_grad"]]), ref["x_grad"]) <= atol * 4
    # Gradients at least as exact as torch's BatchNorm on the same half-precision input with
    # float32 parameters (saving x - mean rounded to half cost 100-1000x on weight_grad).
    x = sc["x"].clone().requires_grad_(True)
    weight = sc["weight"].float().requires_grad_(True)
    bias = sc["bias"].float().requires_grad_(True)
    y = nn.functional.batch_norm(x, None, None, weight, bias, True, 0.1, 1e-5)
    (y.double() * sc["g"]).sum().backward()
    for name, ours, theirs in [
        ("weight_grad", r0["weight_grad"] + r1["weight_grad"], weight.grad),
        ("bias_grad", r0["bias_grad"] + r1["bias_grad"], bias.grad),
        ("x_grad", torch.cat([r0["x_grad"], r1["x_grad"]]), x.grad),
    ]:
        err, torch_err = _max_diff(ours, ref[name]), _max_diff(theirs, ref[name])
        assert err <= 1.5 * torch_err + 1e-6, (name, err, torch_err)


def test_torch_syncbatchnorm_fails_on_cpu_where_ours_runs(
    ranks: list[dict[str, dict[str, Any]]],
) -> None:
    assert "GPU" in ranks[0]["torch_syncbn_on_cpu"]["error"]


def test_float32_offset_data_is_at_least_as_exact_as_batchnorm(
    ranks: list[dict[str, dict[str, Any]]],
) -> None:
    sc = SCENARIOS["offset_fp32_3_5"]
    ref = _reference(sc)  # float64
    r0, r1 = ranks[0]["offset_fp32_3_5"], ranks[1]["offset_fp32_3_5"]
    # torch's BatchNorm2d in float32 on the whole batch: the accuracy to match.
    bn = nn.BatchNorm2d(C, momentum=sc["momentum"])
    with torch.no_grad():
        bn.weight.copy_(sc["weight"])
        bn.bias.copy_(sc["bias"])
    x = sc["x"].clone().requires_grad_(True)
    y = bn(x)
    (y.double() * sc["g"]).sum().backward()
    for name, ours, theirs in [
        ("y", torch.cat([r0["y"], r1["y"]]), y.detach()),
        ("x_grad", torch.cat([r0["x_grad"], r1["x_grad"]]), x.grad),
        ("running_var", r0["running_var"], bn.running_var),
        ("running_mean", r0["running_mean"], bn.running_mean),
    ]:
        err, torch_err = _max_diff(ours, ref[name]), _max_diff(theirs, ref[name])
        # Centring on the local mean first keeps float32 exact where BatchNorm's kernels lose
        # ~5 digits to x * alpha + beta cancellation.
        assert err <= min(torch_err, 1e-5), (name, err, torch_err)
    # Every rank combines the same table relative to the same centre: identical buffers, so
    # they cannot drift apart even without DDP's buffer broadcast.
    for name in ("running_mean", "running_var"):
        assert torch.equal(r0[name], r1[name]), name


def test_one_collective_per_forward_and_one_per_backward(
    ranks: list[dict[str, dict[str, Any]]],
) -> None:
    for rank in ranks:
        for key in SCENARIOS:
            assert rank[key]["forward_calls"] == {"all_gather": 1, "all_reduce": 0}, key
            # On gloo the backward sum is a gather + local sum: one exchange, faster than
            # gloo's all_reduce for short vectors.
            assert rank[key]["backward_calls"] == {"all_gather": 1, "all_reduce": 0}, key
