"""Deployment: normsuite's norm layers and LN-RNNs export with torch.export, jit.trace and ONNX.

Every layer that ``build_norm`` returns for the spec x layout matrix of test_norm_layers.py
is exported in eval mode with a dynamic batch dim; the exported program must give the eager
module's output (float64, 1e-6) on the traced batch and on a larger one, also after a
``torch.export.save`` / ``load`` round trip. Eager correctness itself is test_norm_layers.py's
job (against torch.nn.functional); here the reference is the eager module.

To stay within the test budget, the layers of one layout are exported together as one
:class:`Zoo` program (one export per layout, not per layer); a mismatch names its spec.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

# test_norm_layers.py owns the spec x layout matrix and the randomized statistics/affine.
from test_norm_layers import LAYOUTS, SPECS, C, Layout, randomize
from torch import Tensor, nn
from torch.export import Dim
from torchvision.models import resnet18

from normsuite.models.rnn import LayerNormGRU, LayerNormLSTM
from normsuite.norms import FrozenBatchNorm, build_norm, convert_norms
from normsuite.norms.layers import BatchNormNd, InstanceNormNd

TOL = {"rtol": 0.0, "atol": 1e-6}
LAYOUT_IDS = [layout.name for layout in LAYOUTS]


class Zoo(nn.Module):
    """Named layers side by side; ``forward(*inputs)`` runs layer i on ``inputs[which[i]]``."""

    def __init__(self, layers: dict[str, nn.Module], which: list[int] | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleDict(layers)
        self.which = which or [0] * len(layers)  # input index per layer

    def forward(self, *inputs: Tensor) -> tuple:
        pairs = zip(self.layers.values(), self.which, strict=True)
        return tuple(layer(inputs[i]) for layer, i in pairs)


def specs_for(layout: Layout) -> list[str]:
    return [s for s in SPECS if not (s == "in" and layout.ndim == 2)]  # 'in' on (N, C): error


def layout_zoo(layout: Layout) -> Zoo:
    """Every layer build_norm returns for this layout, with random statistics and affine."""
    # Keys are attribute names in the exported code: 'in' is a Python keyword, ':' is no name.
    layers = {
        f"norm_{spec.replace(':', '_')}": randomize(
            build_norm(spec, C, ndim=layout.ndim, channels_last=layout.channels_last)
        )
        for spec in specs_for(layout)
    }
    return Zoo(layers).eval()


def bigger_batch(layout: Layout, x: Tensor) -> Tensor:
    """Another batch size (and values) in the same memory format as x."""
    extra = layout.make_input(seed=7)[:1]
    memory = torch.channels_last if layout.memory_channels_last else torch.contiguous_format
    return torch.cat([x, extra]).contiguous(memory_format=memory)


def assert_same(got: tuple, expected: tuple, names: list[str]) -> None:
    assert len(got) == len(expected) == len(names)
    for name, g, e in zip(names, got, expected, strict=True):
        torch.testing.assert_close(g, e, **TOL, msg=lambda m, name=name: f"{name}: {m}")


def export_roundtrip(module: nn.Module, inputs: tuple, tmp_path: Path) -> list[nn.Module]:
    """[exported program's module, the same after torch.export.save/load], batch dynamic."""
    batch = tuple({0: Dim("batch")} for _ in inputs)
    # A Zoo takes *inputs: export binds them to one parameter, so their specs nest once more.
    shapes = (batch,) if isinstance(module, Zoo) else batch
    program = torch.export.export(module, inputs, dynamic_shapes=shapes)
    path = tmp_path / "model.pt2"
    torch.export.save(program, path)
    return [program.module(), torch.export.load(path).module()]


# --------------------------------------------------------------------------- torch.export
@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_torch_export_matches_eager(layout: Layout, tmp_path: Path) -> None:
    zoo = layout_zoo(layout)
    x = layout.make_input()
    x2 = bigger_batch(layout, x)
    expected, expected2 = zoo(x), zoo(x2)
    names = list(zoo.layers)
    for exported in export_roundtrip(zoo, (x,), tmp_path):
        assert_same(exported(x), expected, names)
        assert_same(exported(x2), expected2, names)  # the batch dim stayed dynamic


def test_torch_export_other_layers(tmp_path: Path) -> None:
    """convert_norms' rank-free layers, and FrozenBatchNorm left in train mode."""
    layers = {
        "BatchNormNd": BatchNormNd(C).eval(),
        "InstanceNormNd": InstanceNormNd(C, affine=True).eval(),
        "FrozenBatchNorm-train": FrozenBatchNorm(C).train(),  # .train() must not matter
        "FrozenBatchNorm-last-train": FrozenBatchNorm(C, channels_last=True).train(),
    }
    zoo = Zoo({k: randomize(v) for k, v in layers.items()}, which=[0, 0, 0, 1])
    inputs = (torch.randn(3, C, 4, 5, dtype=torch.float64), torch.randn(3, 4, C).double())
    for exported in export_roundtrip(zoo, inputs, tmp_path):
        assert_same(exported(*inputs), zoo(*inputs), list(layers))


# --------------------------------------------------------------------------- jit.trace
@pytest.mark.filterwarnings("ignore:`torch.jit.trace")
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # torch's own IN shape checks
@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_jit_trace_matches_eager(layout: Layout) -> None:
    zoo = layout_zoo(layout)
    x = layout.make_input()
    x2 = bigger_batch(layout, x)
    traced = torch.jit.trace(zoo, (x,))
    names = list(zoo.layers)
    assert_same(traced(x), zoo(x), names)
    assert_same(traced(x2), zoo(x2), names)  # shapes were traced as sizes, not constants


# --------------------------------------------------------------------------- LN-RNNs
def small_rnn(cls: type, norm: str, **kwargs: object) -> nn.Module:
    torch.manual_seed(0)
    rnn = cls(3, 4, batch_first=True, norm=norm, **kwargs)
    with torch.no_grad():  # norm weights/biases away from 1/0, so a dropped norm is noticed
        for name, p in rnn.named_parameters():
            if name.startswith("ln_"):
                p.copy_(torch.randn_like(p))
    return rnn.eval()


RNNS = [
    pytest.param(LayerNormLSTM, "ln", {"num_layers": 2, "bidirectional": True}, id="LSTM-ln-2x-bi"),
    pytest.param(LayerNormGRU, "rms", {"bidirectional": True}, id="GRU-rms-bi"),
]


@pytest.mark.filterwarnings("ignore:`torch.jit.trace")
@pytest.mark.parametrize(("cls", "norm", "kwargs"), RNNS)
def test_rnn_torch_export_and_trace(cls: type, norm: str, kwargs: dict, tmp_path: Path) -> None:
    """The time loop unrolls, so the sequence length is fixed; the batch stays dynamic."""
    rnn = small_rnn(cls, norm, **kwargs).double()
    x = torch.randn(2, 3, 3, dtype=torch.float64)
    x2 = torch.randn(3, 3, 3, dtype=torch.float64)
    names = ["output", "final states"]
    for exported in export_roundtrip(rnn, (x,), tmp_path):
        assert_same(exported(x), rnn(x), names)
        assert_same(exported(x2), rnn(x2), names)
    traced = torch.jit.trace(rnn, (x,))
    assert_same(traced(x2), rnn(x2), names)


# --------------------------------------------------------------------------- ONNX
def test_onnx_export_checks_and_runs() -> None:
    """Every normsuite class build_norm returns (torch's own classes export as torch's do)
    and an LN-LSTM, in one ONNX model: exported with the dynamo exporter, validated by
    ``onnx.checker``, run by ONNX's reference evaluator and compared with eager (float32)."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from onnx.reference import ReferenceEvaluator

    layers: dict[str, nn.Module] = {}
    which: list[int] = []
    for i, layout in enumerate(LAYOUTS):
        for layer in layout_zoo(layout).layers.values():
            key = type(layer).__name__
            if type(layer).__module__.startswith("normsuite") and key not in layers:
                layers[key] = layer
                which.append(i)
    layers["LayerNormLSTM"] = small_rnn(LayerNormLSTM, "ln")
    which.append(len(LAYOUTS))
    zoo = Zoo(layers, which).float().eval()
    inputs = (*(layout.make_input().float() for layout in LAYOUTS), torch.randn(2, 3, 3))

    program = torch.onnx.export(zoo, inputs, dynamo=True, verbose=False)
    proto = program.model_proto
    onnx.checker.check_model(proto, full_check=True)
    feeds = {inp.name: x.numpy() for inp, x in zip(proto.graph.input, inputs, strict=True)}
    outputs = ReferenceEvaluator(proto).run(None, feeds)
    expected = torch.utils._pytree.tree_leaves(zoo(*inputs))
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected, strict=True):
        torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- converted resnet18
CONVERT_SPECS = ["bn", "syncbn", "frozenbn", "gn", "ln", "in", "rms", "none"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.trace", "ignore:`torch.jit.script")
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # torch's own IN shape checks
@pytest.mark.parametrize("spec", CONVERT_SPECS)
def test_converted_resnet18_trains_traces_scripts_exports_and_compiles(spec: str) -> None:
    """Issue 16/14: a model that deployed before conversion deploys after it, with torch's
    defaults (jit.trace's sanity check included). Small inputs keep it fast; InstanceNorm
    needs more than one position in layer4 to train, so it gets 64x64."""
    torch.manual_seed(0)
    model = resnet18(num_classes=10)  # weights=None: nothing is downloaded
    convert_norms(model, spec)
    size = 64 if spec == "in" else 32
    x = torch.randn(2, 3, size, size)
    for training in (True, False):
        model.train(training)
        model(x).sum().backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert all(g is not None and bool(g.isfinite().all()) for g in grads)
        model.zero_grad()

    model.train()  # as built: the issue traced a freshly converted model
    traced = torch.jit.trace(model, x)  # check_trace=True, torch's default
    torch.testing.assert_close(traced(x), model(x))  # train mode was traced in
    model.eval()
    expected = model(x)

    scripted = torch.jit.script(model)
    torch.testing.assert_close(scripted(x), expected)

    exported = torch.export.export(model, (x,)).module()
    torch.testing.assert_close(exported(x), expected)

    # Dynamo's own tracing with no graph break (fullgraph), in eval mode only: a second
    # compile for train mode would double the time. The "eager" backend keeps this fast on
    # CPU; every class also compiles in train mode with aot_eager in tests/test_module_db.py.
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), expected)
    torch._dynamo.reset()


@pytest.mark.filterwarnings("ignore:`torch.jit.trace")
@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_frozen_batchnorm_traces_with_the_default_check(
    requires_grad: bool, training: bool
) -> None:
    """Issue 14 item 1: FrozenBatchNorm's path depended on the grad mode, and jit.trace's
    check re-traces under no_grad ("Graphs differed across invocations")."""
    model = nn.Sequential(nn.Conv2d(3, C, 1), randomize(FrozenBatchNorm(C)).float())
    model.train(training)
    x = torch.randn(2, 3, 4, 4, requires_grad=requires_grad)
    traced = torch.jit.trace(model, x)
    torch.testing.assert_close(traced(x), model(x))
