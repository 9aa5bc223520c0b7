"""normsuite's norm layers through PyTorch's own module tests (``module_db``), against torch.

For every norm class torch tests in ``torch.testing._internal.common_modules.module_db``
(BatchNorm1d/2d/3d, GroupNorm, LayerNorm, InstanceNorm1d/2d/3d, RMSNorm), each normsuite
class that stands in for it runs torch's own samples (constructor arguments and inputs, in
float64) and is compared with the torch module built from the same sample, with the same
random state loaded into both. Where normsuite's layout differs, the input is moved
(``*LastDim`` take (N, *, C); ``ChannelLayerNorm``/``ChannelRMSNorm`` take the channels at
dim 1 where ``nn.LayerNorm(C)``/``nn.RMSNorm(C)`` take them last) and the output moved back.

Check kinds, per (pair, sample) unless noted (the four slow ones, gradcheck, script, trace
and export, on one sample per pair, a different one for each; NORMSUITE_MODULE_DB_ALL=1
runs them on every sample: 1,300 cases, about 4 minutes on a busy 2-core VM):
  forward     train- and eval-mode output, running statistics after the step, and the
              gradients of input and parameters
  gradcheck   gradcheck and gradgradcheck of input and parameters (float64)
  layouts     non-contiguous input, and channels_last memory for 4-d/5-d input
  state_dict  torch -> normsuite and normsuite -> torch, strict, after a training step
  copy        deepcopy and pickle round trips
  script      torch.jit.script, train and eval, state moved alike
  trace       torch.jit.trace with its default sanity check, train and eval
  export      torch.export.export, train and eval
  compile     torch.compile(backend="aot_eager", fullgraph=True), forward and backward in
              train mode: one sample per pair (the first), as compiling is slow on CPU;
              aot_eager runs dynamo and AOTAutograd (where graph breaks and fake-tensor
              problems show) without inductor's C++ compilation
  edge        per pair: an empty batch (N = 0), forward and backward

Samples with ``"no_batch_dim"``/``"zero_batch"``/``"empty"`` are the unbatched and empty
edge inputs of torch's own tests and run every per-sample kind.

What does not apply is in ``SKIPS`` (pair, sample, check) with the reason; normsuite's
deliberate differences from torch are in ``DIFFERENCES`` and are asserted, not skipped, and
so are torch's own limitations (``_TRAIN_EXPORT_MOMENTUM_NONE``,
``_TRAIN_TRACE_MOMENTUM_NONE``): the test asserts that torch's class fails there too.
"""

from __future__ import annotations

import copy
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

pytest.importorskip("expecttest")  # torch.testing._internal.common_utils imports it

from torch.testing._internal.common_modules import module_db
from torch.testing._internal.common_utils import noncontiguous_like

from normsuite.norms import (
    BatchNormLastDim,
    ChannelLayerNorm,
    ChannelRMSNorm,
    FrozenBatchNorm,
    GroupNormLastDim,
    InstanceNormLastDim,
    SyncBatchNorm,
    SyncBatchNormLastDim,
)
from normsuite.norms.layers import BatchNormNd, InstanceNormNd

DT = torch.float64
TORCH_NORMS = [
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "GroupNorm",
    "LayerNorm",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
    "RMSNorm",
]


# --------------------------------------------------------------------------- torch's samples
def _samples() -> dict[str, tuple[type[nn.Module], list]]:
    infos = {info.module_cls.__name__: info for info in module_db}
    out = {}
    with torch.random.fork_rng():  # seeded samples, without touching other tests' RNG
        torch.manual_seed(0)
        for name in TORCH_NORMS:
            info = infos[name]
            samples = info.module_inputs_func(
                info, device="cpu", dtype=DT, requires_grad=True, training=True
            )
            out[name] = (info.module_cls, samples)
    return out


SAMPLES = _samples()


def _desc(sample) -> str:
    return sample.desc or "default"


# --------------------------------------------------------------------------- layouts
# Torch's channel dim: 1, or 0 for an unbatched sample ("no_batch_dim").
def _same(x: Tensor, unbatched: bool) -> Tensor:
    return x


def _first_to_last(x: Tensor, unbatched: bool) -> Tensor:
    return x.movedim(0 if unbatched else 1, -1)


def _last_to_first(x: Tensor, unbatched: bool) -> Tensor:
    return x.movedim(-1, 0 if unbatched else 1)


Move = Callable[[Tensor, bool], Tensor]


@dataclass(frozen=True)
class Pair:
    """A normsuite class standing in for a torch class: how to build it and move data."""

    name: str
    torch_name: str
    build: Callable[[tuple, dict], nn.Module]  # from the torch sample's (args, kwargs)
    to_ours: Move  # torch's input -> normsuite's
    to_torch: Move  # normsuite's output -> torch's layout
    frozen: bool = False  # compared with torch's module in eval mode

    @property
    def id(self) -> str:
        return f"{self.name}~{self.torch_name}"


def _bn_like(cls: type[nn.Module]) -> Callable[[tuple, dict], nn.Module]:
    return lambda args, kwargs: cls(*args, **kwargs)


def _frozen(args: tuple, kwargs: dict) -> nn.Module:
    # FrozenBatchNorm(num_features, eps): the rest (momentum, affine, tracking) has no meaning
    # for fixed statistics; affine=False loads as weight 1, bias 0.
    return FrozenBatchNorm(args[0], eps=args[1] if len(args) > 1 else 1e-5)


def _ln_args(args: tuple, kwargs: dict) -> tuple[int, float, bool, bool]:
    # nn.LayerNorm(normalized_shape, eps, elementwise_affine, bias) / nn.RMSNorm(shape, eps,
    # elementwise_affine): one channel dim only (3-d shapes are skipped, see SKIPS).
    shape = args[0]
    (channels,) = shape if isinstance(shape, (list, tuple)) else (shape,)
    eps = args[1] if len(args) > 1 else kwargs.get("eps")
    affine = args[2] if len(args) > 2 else kwargs.get("elementwise_affine", True)
    bias = args[3] if len(args) > 3 else kwargs.get("bias", True)
    return channels, eps, affine, bias


def _channel_ln(args: tuple, kwargs: dict) -> nn.Module:
    channels, eps, affine, bias = _ln_args(args, kwargs)
    return ChannelLayerNorm(channels, eps=1e-5 if eps is None else eps, affine=affine, bias=bias)


def _channel_rms(args: tuple, kwargs: dict) -> nn.Module:
    channels, eps, affine, _ = _ln_args(args, kwargs)
    return ChannelRMSNorm(channels, eps=eps, affine=affine)


PAIRS: list[Pair] = []
for _bn in ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d"):
    PAIRS += [
        Pair("BatchNormNd", _bn, _bn_like(BatchNormNd), _same, _same),
        Pair("SyncBatchNorm", _bn, _bn_like(SyncBatchNorm), _same, _same),
        Pair("BatchNormLastDim", _bn, _bn_like(BatchNormLastDim), _first_to_last, _last_to_first),
        Pair(
            "SyncBatchNormLastDim",
            _bn,
            _bn_like(SyncBatchNormLastDim),
            _first_to_last,
            _last_to_first,
        ),
        Pair("FrozenBatchNorm", _bn, _frozen, _same, _same, frozen=True),
    ]
PAIRS.append(
    Pair(
        "GroupNormLastDim", "GroupNorm", _bn_like(GroupNormLastDim), _first_to_last, _last_to_first
    )
)
for _in in ("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"):
    PAIRS += [
        Pair("InstanceNormNd", _in, _bn_like(InstanceNormNd), _same, _same),
        Pair(
            "InstanceNormLastDim",
            _in,
            _bn_like(InstanceNormLastDim),
            _first_to_last,
            _last_to_first,
        ),
    ]
PAIRS += [
    Pair("ChannelLayerNorm", "LayerNorm", _channel_ln, _last_to_first, _first_to_last),
    Pair("ChannelRMSNorm", "RMSNorm", _channel_rms, _last_to_first, _first_to_last),
]

CHECKS = ["forward", "gradcheck", "layouts", "state_dict", "copy", "script", "trace", "export"]
#: Slow checks: one sample per pair and check each run (see _heavy_indices), every sample
#: with NORMSUITE_MODULE_DB_ALL=1. The fast ones run every sample every time.
HEAVY = ["gradcheck", "script", "trace", "export"]
RUN_ALL = os.environ.get("NORMSUITE_MODULE_DB_ALL") == "1"

_TRAIN_EXPORT_MOMENTUM_NONE = (
    "torch.export in train mode with momentum=None: torch's own BatchNorm fails too "
    "(the cumulative average's 1 / num_batches_tracked); asserted below"
)
_TRAIN_TRACE_MOMENTUM_NONE = (
    "torch.jit.trace's default check in train mode with momentum=None: torch's own BatchNorm "
    "fails too (1 / num_batches_tracked is traced as a constant); asserted below"
)
_NOT_ONE_CHANNEL_DIM = (
    "a normalized_shape over several trailing dims has no single channel dim: "
    "ChannelLayerNorm/ChannelRMSNorm normalize one channel dim"
)
#: (pair name, torch class or "*", sample desc or "*", check or "*") -> why it does not apply.
SKIPS: dict[tuple[str, str, str, str], str] = {
    ("ChannelLayerNorm", "LayerNorm", "3d_elementwise_affine", "*"): _NOT_ONE_CHANNEL_DIM,
    ("ChannelLayerNorm", "LayerNorm", "3d_no_elementwise_affine", "*"): _NOT_ONE_CHANNEL_DIM,
    ("ChannelLayerNorm", "LayerNorm", "3d_elementwise_affine_no_bias", "*"): _NOT_ONE_CHANNEL_DIM,
    ("ChannelRMSNorm", "RMSNorm", "3d_elementwise_affine", "*"): _NOT_ONE_CHANNEL_DIM,
    ("ChannelRMSNorm", "RMSNorm", "3d_no_elementwise_affine", "*"): _NOT_ONE_CHANNEL_DIM,
    ("FrozenBatchNorm", "*", "not_tracking_stats", "*"): (
        "a BatchNorm without running statistics normalizes with batch statistics even in "
        "eval mode; FrozenBatchNorm always has fixed statistics"
    ),
    **{
        ("InstanceNormLastDim", cls, desc, "*"): (
            "(C, *positions) moved to (*positions, C) is a batch of sequences to a (N, *, C) "
            "layer of free rank; only a 2-d input is read as one unbatched (L, C) sequence"
        )
        for cls in ("InstanceNorm2d", "InstanceNorm3d")
        for desc in ("no_batch_dim", "tracking_stats_no_batch_dim")
    },
}

_UNBATCHED_IN = (
    "InstanceNormNd's rank is free, so an unbatched (C, H, W) looks like a batched (N, C, L): "
    "it refuses input whose dim 1 is not C, with a hint, instead of computing something else"
)
#: (pair name, sample desc) -> (what normsuite raises, message pattern, why). Asserted.
DIFFERENCES: dict[tuple[str, str], tuple[type[Exception], str, str]] = {
    ("InstanceNormNd", "no_batch_dim"): (ValueError, r"unsqueeze\(0\)", _UNBATCHED_IN),
    ("InstanceNormNd", "tracking_stats_no_batch_dim"): (ValueError, r"unsqueeze", _UNBATCHED_IN),
}


def _skip_reason(pair: Pair, desc: str, check: str) -> str | None:
    for (name, cls, d, c), reason in SKIPS.items():
        if (
            name == pair.name
            and cls in ("*", pair.torch_name)
            and d in ("*", desc)
            and c in ("*", check)
        ):
            return reason
    return None


def _heavy_indices(pair: Pair, check: str) -> set[int]:
    """The samples a slow check runs on: all with NORMSUITE_MODULE_DB_ALL=1, else one per pair,
    a different one for each slow check, spread over the pair's samples."""
    usable = [
        i
        for i, sample in enumerate(SAMPLES[pair.torch_name][1])
        if not _skip_reason(pair, _desc(sample), check)
        and (pair.name, _desc(sample)) not in DIFFERENCES
    ]
    if RUN_ALL or not usable:
        return set(usable)
    n = len(usable)
    return {usable[HEAVY.index(check) * n // len(HEAVY)]}


def _params() -> list:
    params = []
    for pair in PAIRS:
        heavy = {check: _heavy_indices(pair, check) for check in HEAVY}
        for index, sample in enumerate(SAMPLES[pair.torch_name][1]):
            desc = _desc(sample)
            for check in CHECKS:
                if check in heavy and index not in heavy[check]:
                    continue
                reason = _skip_reason(pair, desc, check)
                marks = [pytest.mark.skip(reason=reason)] if reason else []
                params.append(
                    pytest.param(pair, index, check, id=f"{pair.id}-{desc}-{check}", marks=marks)
                )
    return params


# --------------------------------------------------------------------------- building a case
def _randomize(module: nn.Module, seed: int = 1) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean"):
            t = getattr(module, name, None)
            if isinstance(t, Tensor):
                t.copy_(torch.randn(t.shape, generator=g, dtype=t.dtype))
        rv = getattr(module, "running_var", None)
        if isinstance(rv, Tensor):
            rv.copy_(torch.rand(rv.shape, generator=g, dtype=rv.dtype) + 0.5)
    return module


@dataclass
class Case:
    pair: Pair
    reference: nn.Module  # torch's
    ours: nn.Module
    x: Tensor  # torch's input (a leaf that requires grad)
    unbatched: bool
    ctor: tuple[tuple, dict]  # the sample's constructor (args, kwargs)

    def ours_input(self, x: Tensor | None = None) -> Tensor:
        x = self.x if x is None else x
        return self.pair.to_ours(x, self.unbatched)

    def run_ours(self, module: nn.Module | None = None, x: Tensor | None = None) -> Tensor:
        out = (module or self.ours)(self.ours_input(x))
        return self.pair.to_torch(out, self.unbatched)

    def train(self, training: bool) -> None:
        self.ours.train(training)
        self.reference.train(training and not self.pair.frozen)


def _case(pair: Pair, index: int) -> Case:
    cls, samples = SAMPLES[pair.torch_name]
    sample = samples[index]
    args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
    reference = _randomize(cls(*args, **kwargs).to(DT))
    ours = pair.build(args, kwargs).to(DT)
    ours.load_state_dict(reference.state_dict())  # strict: torch -> normsuite
    (x,) = sample.forward_input.args
    x = x.detach().clone().requires_grad_()
    case = Case(pair, reference, ours, x, "no_batch_dim" in _desc(sample), (args, kwargs))
    case.train(True)
    return case


def _grads(out: Tensor, module: nn.Module, x: Tensor, g: Tensor) -> list[Tensor]:
    inputs = [x, *(p for p in module.parameters() if p.requires_grad)]
    grads = torch.autograd.grad(out, inputs, g, allow_unused=True)
    return [torch.zeros_like(i) if d is None else d for i, d in zip(inputs, grads, strict=True)]


def _assert_state(ours: nn.Module, reference: nn.Module) -> None:
    theirs = reference.state_dict()
    for key, value in ours.state_dict().items():
        if key in theirs:
            torch.testing.assert_close(value, theirs[key], msg=lambda m, key=key: f"{key}: {m}")


# --------------------------------------------------------------------------- the checks
def _check_forward(case: Case) -> None:
    for training in (True, False):
        case.train(training)
        expected = case.reference(case.x)
        got = case.run_ours()
        torch.testing.assert_close(got, expected)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        g = torch.randn_like(expected)
        ours_grads = _grads(got, case.ours, case.x, g)
        reference_grads = _grads(expected, case.reference, case.x, g)
        if case.pair.frozen:  # FrozenBatchNorm has no parameters; compare d/dx only
            ours_grads, reference_grads = ours_grads[:1], reference_grads[:1]
        for a, b in zip(ours_grads, reference_grads, strict=True):
            torch.testing.assert_close(a, b)
        _assert_state(case.ours, case.reference)  # running statistics moved alike


def _check_gradcheck(case: Case) -> None:
    names = [n for n, p in case.ours.named_parameters() if p.requires_grad]
    params = [p.detach().clone().requires_grad_() for n, p in case.ours.named_parameters()]

    def fn(x: Tensor, *ps: Tensor) -> Tensor:
        state = dict(zip(names, ps, strict=True))
        return torch.func.functional_call(case.ours, state, (case.ours_input(x),))

    inputs = (case.x.detach().clone().requires_grad_(), *params)
    # fast_mode: one random projection of the Jacobian instead of all of it (torch's own
    # module tests use it too); a wrong gradient still fails.
    assert torch.autograd.gradcheck(fn, inputs, fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, inputs, fast_mode=True)


def _check_layouts(case: Case) -> None:
    expected = case.reference(case.x)
    xo = case.ours_input().detach()
    variants = [noncontiguous_like(xo.contiguous())]
    if xo.dim() in (4, 5):
        fmt = torch.channels_last if xo.dim() == 4 else torch.channels_last_3d
        variants.append(xo.contiguous(memory_format=fmt))
    for variant in variants:
        ours = copy.deepcopy(case.ours)
        ours.load_state_dict(case.ours.state_dict())
        got = case.pair.to_torch(ours(variant), case.unbatched)
        torch.testing.assert_close(got, expected)


def _check_state_dict(case: Case) -> None:
    case.reference(case.x)
    case.run_ours()  # a training step: statistics and counters move
    args, kwargs = case.ctor
    fresh = _randomize(type(case.reference)(*args, **kwargs).to(DT), seed=5)
    ours_state = case.ours.state_dict()
    if case.pair.frozen and (case.reference.weight is None or case.reference.bias is None):
        with pytest.raises(RuntimeError, match="Unexpected key"):
            fresh.load_state_dict(ours_state)  # see DIFFERENCES in the module docstring
        return
    fresh.load_state_dict(ours_state)  # strict: normsuite -> torch
    fresh.eval()
    case.train(False)
    torch.testing.assert_close(case.run_ours(), fresh(case.x))
    back = case.pair.build(args, kwargs).to(DT)
    back.load_state_dict(fresh.state_dict())  # strict: torch -> normsuite, again
    _assert_state(back, fresh)


def _check_copy(case: Case) -> None:
    original = copy.deepcopy(case.ours)
    copies = [copy.deepcopy(case.ours), pickle.loads(pickle.dumps(case.ours))]
    for training in (True, False):
        for module in (original, *copies):
            module.train(training)
        expected = case.run_ours(original)  # copies and original step alike
        for c in copies:
            assert type(c) is type(case.ours)
            torch.testing.assert_close(case.run_ours(c), expected)
            _assert_state(c, original)


def _check_script(case: Case) -> None:
    # Against the eager layer stepped alike (the forward check ties that to torch).
    eager = copy.deepcopy(case.ours)
    scripted = torch.jit.script(copy.deepcopy(case.ours))
    for training in (True, False, True):
        eager.train(training)
        scripted.train(training)
        torch.testing.assert_close(case.run_ours(scripted), case.run_ours(eager))
    _assert_state(scripted, eager)


def _check_trace(case: Case) -> None:
    for training in (True, False):
        ours = copy.deepcopy(case.ours).train(training)
        if training and getattr(ours, "momentum", 0.1) is None:
            # _TRAIN_TRACE_MOMENTUM_NONE: torch's own class fails the same check.
            reference = copy.deepcopy(case.reference).train()
            with pytest.raises(torch.jit.TracingCheckError, match="Graphs differed"):
                torch.jit.trace(reference, (case.x.detach(),))
            continue
        traced = torch.jit.trace(ours, (case.ours_input().detach(),))  # default check_trace
        # The traced module shares ours' tensors; train mode's output does not depend on them.
        torch.testing.assert_close(case.run_ours(traced), case.run_ours(ours))


def _check_export(case: Case) -> None:
    for training in (True, False):
        case.train(training)
        ours = copy.deepcopy(case.ours)
        args = (case.ours_input().detach(),)
        if training and getattr(ours, "momentum", 0.1) is None:
            # _TRAIN_EXPORT_MOMENTUM_NONE: torch's own class fails the same way.
            with pytest.raises(Exception):  # noqa: B017 (whatever torch raises)
                torch.export.export(copy.deepcopy(case.reference), (case.x.detach(),))
            continue
        exported = torch.export.export(ours, args).module()
        torch.testing.assert_close(
            case.pair.to_torch(exported(*args), case.unbatched), case.run_ours(ours)
        )


RUNNERS = {
    "forward": _check_forward,
    "gradcheck": _check_gradcheck,
    "layouts": _check_layouts,
    "state_dict": _check_state_dict,
    "copy": _check_copy,
    "script": _check_script,
    "trace": _check_trace,
    "export": _check_export,
}


# --------------------------------------------------------------------------- tests
@pytest.mark.filterwarnings("ignore:`torch.jit.script", "ignore:`torch.jit.trace")
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # torch's own IN shape checks
@pytest.mark.parametrize(("pair", "index", "check"), _params())
def test_module_db(pair: Pair, index: int, check: str) -> None:
    desc = _desc(SAMPLES[pair.torch_name][1][index])
    difference = DIFFERENCES.get((pair.name, desc))
    if difference is not None:
        error, pattern, _why = difference
        with pytest.raises(error, match=pattern):
            _case(pair, index).run_ours()
        return
    torch.manual_seed(index)
    RUNNERS[check](_case(pair, index))


def _first_samples() -> list:
    params = []
    for pair in PAIRS:
        for index, sample in enumerate(SAMPLES[pair.torch_name][1]):
            desc = _desc(sample)
            if _skip_reason(pair, desc, "compile") or (pair.name, desc) in DIFFERENCES:
                continue
            params.append(pytest.param(pair, index, id=f"{pair.id}-{desc}"))
            break
    return params


@pytest.mark.parametrize(("pair", "index"), _first_samples())
def test_module_db_compile(pair: Pair, index: int) -> None:
    torch._dynamo.reset()
    case = _case(pair, index)
    compiled_module = copy.deepcopy(case.ours)
    compiled = torch.compile(compiled_module, backend="aot_eager", fullgraph=True)
    xo = case.ours_input().detach().requires_grad_()
    out = compiled(xo)
    expected = case.reference(case.x)
    torch.testing.assert_close(case.pair.to_torch(out, case.unbatched), expected)
    out.sum().backward()
    x_eager = xo.detach().requires_grad_()
    copy.deepcopy(case.ours)(x_eager).sum().backward()
    torch.testing.assert_close(xo.grad, x_eager.grad)
    _assert_state(compiled_module, case.reference)
    torch._dynamo.reset()


@pytest.mark.parametrize("pair", PAIRS, ids=[p.id for p in PAIRS])
def test_module_db_edge_empty_batch(pair: Pair) -> None:
    case = _case(pair, 0)
    x = case.x.detach()
    empty = x.new_empty((0, *x.shape[1:]) if not case.unbatched else (0, *x.shape)).requires_grad_()
    expected = case.reference(empty)
    got = case.run_ours(x=empty)
    assert got.shape == expected.shape == empty.shape
    got.sum().backward()
    assert empty.grad is not None and empty.grad.shape == empty.shape
