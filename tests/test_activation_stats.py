"""ActivationStats: statistics against a float64 reference, sync counting, NaN naming, teardown."""

from __future__ import annotations

import gc
import math
import os
import sys
import warnings
import weakref
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from torch import nn
from torch.overrides import TorchFunctionMode

from normsuite.callbacks import activation_stats as act_mod
from normsuite.callbacks.activation_stats import ActivationStats, NonFiniteActivationError

SOURCE = act_mod.__file__


class MemoryLogger(Logger):
    """Keeps every ``log_metrics`` call: [(step, metrics)]."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[int, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "memory"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.records.append((int(step or 0), dict(metrics)))

    def steps(self) -> list[int]:
        return [s for s, m in self.records if any(k.startswith("act/") for k in m)]


class Poison(nn.Module):
    """Multiplies by NaN on the steps in ``at`` (the test sets ``step``)."""

    def __init__(self) -> None:
        super().__init__()
        self.at: set[int] = set()
        self.step = -1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * math.nan if self.step in self.at else x


class Net(L.LightningModule):
    """conv -> BN2d -> ReLU -> poison -> GN -> (N, L, C) LayerNorm -> linear."""

    def __init__(self, lr: float = 0.0) -> None:
        super().__init__()
        self.lr = lr
        self.conv = nn.Conv2d(3, 6, 3, padding=1, bias=False)
        with torch.no_grad():
            self.conv.weight[0].zero_()  # channel 0 constant: zero variance, exact zeros
        self.bn = nn.BatchNorm2d(6)
        with torch.no_grad():
            self.bn.weight[1] = 1e-4  # one collapsed gamma
        self.act = nn.ReLU()
        self.poison = Poison()
        self.gn = nn.GroupNorm(3, 6)
        self.ln = nn.LayerNorm(6)
        self.head = nn.Linear(6 * 16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gn(self.poison(self.act(self.bn(self.conv(x)))))
        x = nn.functional.adaptive_avg_pool2d(x, 4).flatten(2).transpose(1, 2)  # (N, 16, 6)
        return self.head(self.ln(x).flatten(1))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self.poison.step = self.trainer.global_step
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self(batch[0])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def loader(n: int = 64, batch: int = 16, scale: float = 1.0) -> torch.utils.data.DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 8, 8, generator=g) * scale + 0.5
    y = torch.randint(0, 3, (n,), generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch)


def trainer(callbacks: list, max_steps: int = 3, logger: Any = None, **kw: Any) -> L.Trainer:
    kw.setdefault("limit_val_batches", 0)
    return L.Trainer(
        max_steps=max_steps,
        callbacks=callbacks,
        logger=logger if logger is not None else MemoryLogger(),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
        devices=1,
        **kw,
    )


class Capture(L.Callback):
    """Independent reference: clones the watched tensors of the last training forward."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.data: dict[str, dict[str, torch.Tensor]] = {}
        self.on = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for name in self.names:
            mod = pl_module.get_submodule(name)
            mod.register_forward_pre_hook(self._pre(name))
            mod.register_forward_hook(self._post(name))

    def _pre(self, name: str) -> Any:
        def hook(mod: nn.Module, args: tuple) -> None:
            if self.on:
                d = self.data[name] = {"in": args[0].detach().clone()}
                if getattr(mod, "running_mean", None) is not None:
                    d["rm"], d["rv"] = mod.running_mean.clone(), mod.running_var.clone()

        return hook

    def _post(self, name: str) -> Any:
        def hook(mod: nn.Module, args: tuple, out: torch.Tensor) -> None:
            if self.on:
                self.data[name]["out"] = out.detach().clone()
                self.data[name]["w"] = mod.weight.detach().clone()

        return hook

    def on_train_batch_start(self, *args: Any) -> None:
        self.on = True

    def on_before_backward(self, *args: Any) -> None:
        self.on = False


EXACT = ("min", "max", "absmax", "zero_frac", "nonfinite")


def close(got: float, want: float, stat: str = "") -> bool:
    """Exact for counts and extremes; sums are accumulated in float32 per channel."""
    if stat in EXACT:
        return got == want
    return got == pytest.approx(want, rel=1e-5, abs=1e-6)


def reference(x: torch.Tensor, cdim: int) -> dict[str, float]:
    """The statistics of one tensor, straight from torch in float64."""
    x = x.double()
    c = x.shape[cdim]
    chan_means = x.movedim(cdim, 0).reshape(c, -1).mean(1)
    return {
        "mean": x.mean().item(),
        "std": x.std().item(),
        "min": x.min().item(),
        "max": x.max().item(),
        "absmax": x.abs().max().item(),
        "zero_frac": (x == 0).double().mean().item(),
        "nonfinite": (~x.isfinite()).sum().item(),
        "chan_spread": chan_means.std(correction=0).item(),
    }


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_statistics_equal_float64_reference(precision: str) -> None:
    layers = {"bn": 1, "gn": 1, "ln": -1}
    cap = Capture(list(layers))
    cb = ActivationStats(every_n_steps=1)
    mem = MemoryLogger()
    trainer([cap, cb], max_steps=3, logger=mem, precision=precision).fit(Net(lr=1e-6), loader())
    assert mem.steps() == [0, 1, 2]
    logged = mem.records[-1][1]
    for name, cdim in layers.items():
        for io in ("in", "out"):
            ref = reference(cap.data[name][io], cdim)
            for stat, value in ref.items():
                got = logged[f"act/{name}/{io}/{stat}"]
                assert close(got, value, stat), (name, io, stat, got, value)
        w = cap.data[name]["w"].double().abs()
        assert logged[f"act/{name}/gamma_absmean"] == pytest.approx(w.mean().item(), rel=1e-12)
        assert logged[f"act/{name}/gamma_small_frac"] == (w < 1e-3).double().mean().item()
    # BatchNorm: batch statistics against the running statistics from before this step
    d = cap.data["bn"]
    x = d["in"].double()
    mu, var = x.mean((0, 2, 3)), x.var((0, 2, 3), correction=0)
    shift = ((mu - d["rm"].double()).abs() / (d["rv"].double() + 1e-5).sqrt()).mean()
    assert close(logged["act/bn/bn_shift"], shift.item())
    assert logged["act/bn/bn_lowvar_frac"] == (var < 1e-4).double().mean().item() == 1 / 6
    assert logged["act/bn/gamma_small_frac"] > 0  # the collapsed gamma is seen
    assert [logged[f"act/{n}/order"] for n in layers] == [0.0, 1.0, 2.0]


def test_interval_defaults_to_log_every_n_steps_and_skips_validation() -> None:
    mem = MemoryLogger()
    cb = ActivationStats()
    t = trainer([cb], max_steps=7, logger=mem, log_every_n_steps=3, limit_val_batches=1)
    # validation data 1000x larger: would show up in max if validation were recorded
    t.fit(Net(), loader(), val_dataloaders=loader(16, scale=1000.0))
    assert mem.steps() == [0, 3, 6]
    assert max(m["act/bn/in/absmax"] for s, m in mem.records if "act/bn/in/absmax" in m) < 100


class OpCounter(TorchFunctionMode):
    """Counts torch calls made from the callback's source file, per training step."""

    SYNCS = frozenset({"item", "cpu", "tolist", "numpy", "__bool__"})

    def __init__(self, step_of: dict[str, int]) -> None:
        super().__init__()
        self.step_of = step_of
        self.calls: list[tuple[int, str, bool]] = []  # (step, name, non_blocking)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename == SOURCE:
                name = getattr(func, "__name__", str(func))
                self.calls.append((self.step_of["step"], name, bool(kwargs.get("non_blocking"))))
                break
            frame = frame.f_back
        return func(*args, **kwargs)


class StepMarker(L.Callback):
    def __init__(self, step_of: dict[str, int]) -> None:
        self.step_of = step_of

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self.step_of["step"] = trainer.global_step


@pytest.mark.parametrize("watch", [False, True])
def test_no_work_or_sync_on_other_steps_and_one_copy_per_logging_step(
    watch: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    cuda_syncs: list[int] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: cuda_syncs.append(1))
    step_of = {"step": -1}
    counter = OpCounter(step_of)
    cb = ActivationStats(every_n_steps=3, check_nonfinite_every_step=watch)
    t = trainer([StepMarker(step_of), cb], max_steps=7)
    with counter:
        t.fit(Net(lr=0.05), loader(n=112))
    logging, other = {0, 3, 6}, {1, 2, 4, 5}
    for step in other:
        calls = [name for s, name, _ in counter.calls if s == step]
        if watch:  # only the device-side NaN flags: no host sync, no copy
            assert calls and not set(calls) & (OpCounter.SYNCS | {"copy_"}), calls
        else:
            assert calls == []
    for step in logging:
        copies = [nb for s, name, nb in counter.calls if s == step and name == "copy_" and nb]
        assert copies == [True]  # exactly one packed non-blocking copy
    assert not cuda_syncs


def test_nan_names_first_layer_in_forward_order() -> None:
    model = Net(lr=0.05)
    model.poison.at = {2}  # NaN enter between bn (clean) and gn
    cb = ActivationStats(every_n_steps=2)
    with pytest.warns(RuntimeWarning, match="input of layer 'gn' at step 2"):
        trainer([cb], max_steps=5).fit(model, loader())
    assert cb.first_nonfinite == {"layer": "gn", "io": "in", "step": 2}
    assert cb.last_metrics["act/bn/in/nonfinite"] > 0  # later steps: NaN everywhere, one warning


def test_nan_raise() -> None:
    model = Net(lr=0.05)
    model.poison.at = {1}
    with pytest.raises(NonFiniteActivationError, match="layer 'gn' at step 1"):
        trainer([ActivationStats(every_n_steps=1, on_nonfinite="raise")]).fit(model, loader())
    # Lightning skips teardown after an exception: on_exception removed the hooks
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_nan_on_non_logging_step_with_every_step_check() -> None:
    model = Net(lr=0.05)
    model.poison.at = {1}  # NaN weights from step 2 on: bn is bad at 2, gn was first (step 1)
    cb = ActivationStats(every_n_steps=3, check_nonfinite_every_step=True, on_nonfinite="raise")
    with pytest.raises(NonFiniteActivationError, match="input of layer 'gn' at step 1"):
        trainer([cb], max_steps=5).fit(model, loader())
    quiet = ActivationStats(every_n_steps=3)  # default: the NaN step itself is not checked
    model = Net(lr=0.05)
    model.poison.at = {1}
    with pytest.warns(RuntimeWarning, match="layer 'bn' at step 3"):
        trainer([quiet], max_steps=5).fit(model, loader())


class Grab(L.Callback):
    """Takes weak references to everything the callback holds, just before teardown."""

    def __init__(self, cb: ActivationStats) -> None:
        self.cb = cb
        self.refs: list[weakref.ref] = []

    def on_train_end(self, *args: Any) -> None:
        cb = self.cb
        tensors = [cb._buf, cb._init, cb._host] + [s.t for s in cb._slots]
        self.refs = [weakref.ref(t) for t in tensors if t is not None]


def test_teardown_removes_hooks_and_drops_tensors() -> None:
    model = Net()
    cb = ActivationStats(every_n_steps=1, histogram_bins=4, check_nonfinite_every_step=True)
    grab = Grab(cb)
    trainer([cb, grab], max_steps=2).fit(model, loader())
    gc.collect()
    assert len(grab.refs) >= 4
    assert all(r() is None for r in grab.refs)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_resume_restores_state(tmp_path: Path) -> None:
    model = Net(lr=0.05)
    model.poison.at = {1}
    cb = ActivationStats(every_n_steps=1)
    t = trainer([cb], max_steps=2)
    with pytest.warns(RuntimeWarning):
        t.fit(model, loader())
    ckpt = tmp_path / "last.ckpt"
    t.save_checkpoint(ckpt)
    resumed = ActivationStats(every_n_steps=1)
    mem = MemoryLogger()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no second NaN warning after resume
        trainer([resumed], max_steps=4, logger=mem).fit(Net(lr=0.05), loader(), ckpt_path=ckpt)
    assert resumed.first_nonfinite == {"layer": "gn", "io": "in", "step": 1}
    assert mem.steps() == [2, 3]


def test_module_selection() -> None:
    mem = MemoryLogger()
    trainer([ActivationStats(modules=["conv", nn.LayerNorm], every_n_steps=1)], 1, mem).fit(
        Net(), loader()
    )
    layers = {k.split("/")[1] for k in mem.records[-1][1] if k.startswith("act/")}
    assert layers == {"conv", "ln"}
    mem = MemoryLogger()
    trainer([ActivationStats(modules="all", every_n_steps=1)], 1, mem).fit(Net(), loader())
    layers = {k.split("/")[1] for k in mem.records[-1][1] if k.startswith("act/")}
    assert layers == {"conv", "bn", "act", "poison", "gn", "ln", "head"}
    gammas = {k.split("/")[1] for k in mem.records[-1][1] if k.endswith("/gamma_absmean")}
    assert gammas == {"bn", "gn", "ln"}  # norm layers only, not conv or linear weights


def test_bad_arguments_fail_with_one_line() -> None:
    with pytest.raises(ValueError, match="matched no module"):
        trainer([ActivationStats(modules=["nope.*"])], 1).fit(Net(), loader())
    for kwargs in (
        {"every_n_steps": 0},
        {"on_nonfinite": "ignore"},
        {"histogram_bins": -1},
        {"histogram_range": (1, 1)},
    ):
        with pytest.raises(ValueError):
            ActivationStats(**kwargs)


def test_model_without_norm_layers_warns_and_trains() -> None:
    class Plain(Net):
        def __init__(self) -> None:
            super().__init__()
            self.bn, self.gn, self.ln = nn.Identity(), nn.Identity(), nn.Identity()

    with pytest.warns(UserWarning, match="no normalization layer"):
        trainer([ActivationStats()], 1).fit(Plain(), loader())


def test_csv_and_tensorboard_get_stats_and_histograms(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    csv, tb = CSVLogger(tmp_path, name="csv"), TensorBoardLogger(tmp_path, name="tb")
    cb = ActivationStats(every_n_steps=1, histogram_bins=8, histogram_range=(-2, 2))
    trainer([cb], max_steps=2, logger=[csv, tb]).fit(Net(), loader())
    header = (Path(csv.log_dir) / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "act/gn/out/std" in header and "act/gn/out/hist/07" in header
    acc = EventAccumulator(tb.log_dir, size_guidance={"histograms": 0}).Reload()
    assert "act/gn/out/hist" in acc.Tags()["histograms"]
    hist = acc.Histograms("act/gn/out/hist")[-1].histogram_value
    assert hist.num == 16 * 6 * 8 * 8 and sum(hist.bucket) == hist.num
    assert "act/gn/out/std" in acc.Tags()["scalars"]


def test_torch_compile_gives_the_eager_statistics() -> None:
    """Hooks on submodules of a compiled model run inside the dynamo graph.

    ``backend="eager"`` runs dynamo (where hooks matter) without inductor's slow codegen;
    inductor gives the same numbers up to float32 rounding (checked by hand: 5e-7).
    """
    results = []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = Net(lr=0.05)
        if compiled:
            model = torch.compile(model, backend="eager")
        cb = ActivationStats(every_n_steps=2)
        trainer([cb], max_steps=3).fit(model, loader())
        results.append(cb.last_metrics)
    assert results[0].keys() == results[1].keys()
    for key, value in results[0].items():
        assert results[1][key] == pytest.approx(value, rel=1e-6, abs=1e-7), key


class LayoutNet(L.LightningModule):
    """normsuite layers: channel LN on (N, C, H, W), BN and GN over the last dim of (N, L, C),
    FrozenBN with stale statistics."""

    def __init__(self) -> None:
        super().__init__()
        from normsuite.norms import build_norm

        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.cln = build_norm("ln", 6, ndim=4)
        self.frozen = build_norm("frozenbn", 6, ndim=4)
        with torch.no_grad():
            self.frozen.running_mean.fill_(0.3)
            self.frozen.running_var.fill_(2.0)
        self.bn_last = build_norm("bn", 6, ndim=3, channels_last=True)
        self.gn_last = build_norm("gn:2", 6, ndim=3, channels_last=True)
        self.rms = build_norm("rms", 6, ndim=4)  # ChannelRMSNorm, eps=None
        self.rms_last = build_norm("rms", 6, ndim=3, channels_last=True)  # nn.RMSNorm, eps=None
        self.head = nn.Linear(6, 3)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        h = self.rms(self.frozen(self.cln(self.conv(x)))).flatten(2).transpose(1, 2)  # (N, 64, 6)
        h = self.rms_last(self.gn_last(self.bn_last(h)))
        return nn.functional.cross_entropy(self.head(h.mean(1)), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


def test_normsuite_layers_use_their_channel_dim() -> None:
    layers = {"cln": 1, "frozen": 1, "rms": 1, "bn_last": -1, "gn_last": -1, "rms_last": -1}
    model = LayoutNet()
    assert model.rms.eps is None and type(model.rms_last) is nn.RMSNorm
    assert model.rms_last.eps is None
    cap = Capture(list(layers))
    mem = MemoryLogger()
    trainer([cap, ActivationStats(every_n_steps=1)], max_steps=2, logger=mem).fit(model, loader())
    logged = mem.records[-1][1]
    for name, cdim in layers.items():
        for io in ("in", "out"):
            ref = reference(cap.data[name][io], cdim)
            for stat, value in ref.items():
                assert close(logged[f"act/{name}/{io}/{stat}"], value, stat), (name, io, stat)
    for name, dims in (("frozen", (0, 2, 3)), ("bn_last", (0, 1))):
        d = cap.data[name]
        x = d["in"].double()
        rm, rv = d["rm"].double(), d["rv"].double()
        shift = ((x.mean(dims) - rm).abs() / (rv + 1e-5).sqrt()).mean().item()
        assert close(logged[f"act/{name}/bn_shift"], shift)
    assert "act/cln/bn_shift" not in logged and "act/gn_last/bn_shift" not in logged
    for name in ("rms", "rms_last"):  # eps=None layers: watched, gamma stats, no BN stats
        w = cap.data[name]["w"].double().abs()
        assert logged[f"act/{name}/gamma_absmean"] == pytest.approx(w.mean().item(), rel=1e-12)
        assert f"act/{name}/bn_shift" not in logged


class SeqNet(L.LightningModule):
    """Token ids -> Embedding -> GRU (tuple output) -> LayerNorm -> Linear: all (N, L, C)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.gru = nn.GRU(8, 8, batch_first=True)
        self.ln = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        tokens, y = batch
        h = self.ln(self.gru(self.emb(tokens))[0])
        return nn.functional.cross_entropy(self.head(h[:, -1]), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


def test_all_modules_on_a_sequence_model() -> None:
    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(
        torch.randint(0, 20, (32, 12), generator=g), torch.randint(0, 3, (32,), generator=g)
    )
    cap = Capture(["ln"])
    seen: dict[str, torch.Tensor] = {}
    model = SeqNet()
    model.gru.register_forward_hook(lambda m, a, out: seen.update(gru=out[0].detach().clone()))
    mem = MemoryLogger()
    trainer([cap, ActivationStats(modules="all", every_n_steps=1)], 2, mem).fit(
        model, torch.utils.data.DataLoader(data, batch_size=16)
    )
    logged = mem.records[-1][1]
    assert "act/emb/in/mean" not in logged  # integer token ids are not activations
    assert "act/emb/gamma_absmean" not in logged  # an embedding table is no gamma
    for key, x in (("gru/out", seen["gru"]), ("ln/in", cap.data["ln"]["in"])):
        ref = reference(x, -1)  # features on the last dim
        for stat, value in ref.items():
            assert close(logged[f"act/{key}/{stat}"], value, stat), (key, stat)


class LateNet(Net):
    """Net whose LayerNorm only runs from step 1 on: a watched tensor appears late."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gn(self.poison(self.act(self.bn(self.conv(x)))))
        x = nn.functional.adaptive_avg_pool2d(x, 4).flatten(2).transpose(1, 2)  # (N, 16, 6)
        if self.trainer.global_step >= 1:
            x = self.ln(x)
        return self.head(x.flatten(1))


def test_tensor_first_seen_on_a_later_logging_step_with_every_step_check() -> None:
    mem = MemoryLogger()
    cb = ActivationStats(every_n_steps=2, check_nonfinite_every_step=True)
    model = LateNet(lr=0.05)
    model.poison.at = {3}  # NaN at a non-logging step, after ln joined: still named, once
    with pytest.warns(RuntimeWarning, match="input of layer 'gn' at step 3"):
        trainer([cb], max_steps=5, logger=mem).fit(model, loader(n=80))
    assert mem.steps() == [0, 2, 4]
    assert "act/ln/in/mean" not in mem.records[0][1]
    assert "act/ln/in/mean" in mem.records[1][1]


class OffsetNet(L.LightningModule):
    """BatchNorm straight on the data: per-channel stds 0.01, 0.01, 0.05, 0.05."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(4, eps=5e-5)  # "low variance": var < 5e-4, the first 2 channels
        self.head = nn.Linear(4, 3)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self.head(self.bn(x).mean((2, 3))), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


@pytest.mark.parametrize("offset", [50.0, 10.0])
def test_small_variance_around_a_large_mean(offset: float) -> None:
    """E[x^2] - E[x]^2 from float32 sums loses the variance here (std 0.0231 for 0.01)."""
    g = torch.Generator().manual_seed(0)
    scale = torch.tensor([0.01, 0.01, 0.05, 0.05])[:, None, None]
    x = offset + torch.randn(64, 4, 32, 32, generator=g) * scale
    data = torch.utils.data.TensorDataset(x, torch.randint(0, 3, (64,), generator=g))
    cap = Capture(["bn"])
    mem = MemoryLogger()
    trainer([cap, ActivationStats(every_n_steps=1)], 1, mem).fit(
        OffsetNet(), torch.utils.data.DataLoader(data, batch_size=64)
    )
    logged = mem.records[-1][1]
    ref = cap.data["bn"]["in"].double()
    assert logged["act/bn/in/std"] == pytest.approx(ref.std().item(), rel=1e-5)
    assert logged["act/bn/in/mean"] == pytest.approx(ref.mean().item(), rel=1e-9)
    chan = ref.transpose(0, 1).reshape(4, -1)
    assert logged["act/bn/in/chan_spread"] == pytest.approx(
        chan.mean(1).std(correction=0).item(), rel=1e-3, abs=1e-6
    )
    var = chan.var(1, correction=0)
    assert logged["act/bn/bn_lowvar_frac"] == (var < 5e-4).double().mean().item() == 0.5
    rm, rv = cap.data["bn"]["rm"].double(), cap.data["bn"]["rv"].double()
    shift = ((chan.mean(1) - rm).abs() / (rv + 5e-5).sqrt()).mean().item()
    assert logged["act/bn/bn_shift"] == pytest.approx(shift, rel=1e-6)


class Watched(L.Callback):
    """Records, at the first training batch, which module objects carry forward hooks."""

    def __init__(self) -> None:
        self.hooked: dict[str, bool] = {}
        self.types: dict[str, type] = {}

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *a: Any):
        if not self.hooked:
            for name in ("bn", "gn", "ln"):
                mod = pl_module.get_submodule(name)
                self.hooked[name] = bool(mod._forward_hooks and mod._forward_pre_hooks)
                self.types[name] = type(mod)


def test_batchnorm_converted_by_normsync_is_watched() -> None:
    """Lightning's DDP runs ``layer_sync.apply`` (NormSync, sync_batchnorm=True) in
    ``strategy.setup``, after the callbacks' ``setup``: the new layers must be hooked."""
    from lightning.pytorch.strategies import DDPStrategy

    from normsuite.norms.sync import SyncBatchNorm
    from normsuite.training.sync_plugin import NormSync

    seen = Watched()
    cb = ActivationStats(every_n_steps=1)
    mem = MemoryLogger()
    model = Net(lr=0.05)
    t = trainer(
        [cb, seen],
        max_steps=2,
        logger=mem,
        strategy=DDPStrategy(process_group_backend="gloo"),
        plugins=[NormSync(implementation="normsuite")],
    )
    env = dict(os.environ)
    try:
        t.fit(model, loader())  # DDP with one process: a real gloo group of world size 1
    finally:  # Lightning leaves the group and its MASTER_* variables to the process
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        os.environ.clear()
        os.environ.update(env)
    assert seen.types["bn"] is SyncBatchNorm  # converted during fit ...
    assert type(model.bn) is nn.BatchNorm2d  # ... and reverted at teardown
    assert seen.hooked == {"bn": True, "gn": True, "ln": True}
    assert mem.steps() == [0, 1]
    logged = mem.records[-1][1]
    assert {"act/bn/in/std", "act/bn/bn_shift", "act/bn/gamma_absmean"} <= logged.keys()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
