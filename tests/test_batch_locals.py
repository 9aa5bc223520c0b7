"""Batches that training scripts keep in locals and pass down (the c13/a12 class): a
local ``bs = 4``, a config instance built inside ``main()`` (flat, nested through
``field(default_factory=...)``, a plain class, ``SimpleNamespace``, ``OmegaConf.create``,
a dict), and a ``train(model, batch_size=8)`` call. What is not sure stays unknown: a
value reassigned in a branch, or a call only a benchmark makes."""

from __future__ import annotations

import pytest

from normsuite.analysis.analyze import analyze_source
from normsuite.analysis.types import AnalysisOptions

MODEL = """
import torch
import torch.nn as nn
from dataclasses import dataclass, field
from types import SimpleNamespace
from omegaconf import OmegaConf
from torch.utils.data import DataLoader


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(3, 32, 3, bias=False), nn.BatchNorm2d(32), nn.ReLU())

    def forward(self, x):
        return self.f(x)


@dataclass
class TrainCfg:
    batch_size: int = 4


@dataclass
class Config:
    train: TrainCfg = field(default_factory=TrainCfg)
    seed: int = 0


class Plain:
    batch_size = 4

"""

LOOP = """
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for x in DataLoader(ds, batch_size={expr}, shuffle=True):
        opt.zero_grad()
        model(x).mean().backward()
        opt.step()
"""

# where the defaults are written: the messages name these lines
DATACLASS = f"file:{MODEL.splitlines().index('    batch_size: int = 4') + 1}"
PLAIN = f"file:{MODEL.splitlines().index('    batch_size = 4') + 1}"


def _main(setup: str, expr: str, tail: str = "") -> str:
    body = "".join(f"    {line}\n" for line in setup.splitlines())
    return MODEL + "\ndef main(ds):\n" + body + LOOP.format(expr=expr) + tail


FOUND = {
    "a local literal": (_main("bs = 4", "bs"), "DataLoader(batch_size=4)"),
    "a dataclass built in main()": (_main("cfg = TrainCfg()", "cfg.batch_size"), DATACLASS),
    "a nested dataclass (default_factory)": (
        _main("cfg = Config()", "cfg.train.batch_size"),
        DATACLASS,
    ),
    "a nested config's keyword": (
        _main("cfg = Config(train=TrainCfg(batch_size=4))", "cfg.train.batch_size"),
        "default 4",
    ),
    "an alias of a config field": (
        _main("cfg = Config()\nbatch_size = cfg.train.batch_size", "batch_size"),
        DATACLASS,
    ),
    "a plain class's attribute, instance": (_main("cfg = Plain()", "cfg.batch_size"), PLAIN),
    "a plain class's attribute, the class": (_main("cfg = Plain", "cfg.batch_size"), PLAIN),
    "SimpleNamespace": (_main("cfg = SimpleNamespace(batch_size=4)", "cfg.batch_size"), "4"),
    "OmegaConf.create of a nested dict": (
        _main('cfg = OmegaConf.create({"data": {"batch_size": 4}})', "cfg.data.batch_size"),
        "4",
    ),
    "a dict config": (_main('cfg = {"batch_size": 4}', 'cfg["batch_size"]'), "4"),
    "a config passed to main()": (
        MODEL
        + "\ndef main(ds, cfg):"
        + LOOP.format(expr="cfg.train.batch_size")
        + '\nif __name__ == "__main__":\n    main(None, Config())\n',
        DATACLASS,
    ),
    "a parameter passed by keyword": (
        MODEL
        + "\ndef train(ds, batch_size):"
        + LOOP.format(expr="batch_size")
        + '\nif __name__ == "__main__":\n    train(None, batch_size=4)\n',
        "passes 4",
    ),
    "a parameter passed by position, beating its default": (
        MODEL
        + "\ndef train(ds, batch_size=64):"
        + LOOP.format(expr="batch_size")
        + '\nif __name__ == "__main__":\n    train(None, 4)\n',
        "passes 4",
    ),
    "the smallest of two training calls": (
        MODEL
        + "\ndef train(ds, batch_size=64):"
        + LOOP.format(expr="batch_size")
        + '\nif __name__ == "__main__":\n    train(None)\n    train(None, 4)\n',
        "passes 4",
    ),
}


@pytest.mark.parametrize("case", list(FOUND))
def test_batch_read_through_locals_and_calls(case: str) -> None:
    source, where = FOUND[case]
    result = analyze_source(source, "train.py", AnalysisOptions())
    (model,) = [m for m in result.models if m.name == "Net"]
    assert model.batch_size.per_device == 4, model.batch_size
    assert where in model.batch_size.source
    assert [f.code for f in result.findings] == ["NRM006"]


UNKNOWN = {
    "reassigned in a branch": _main("bs = 64\nif ds is None:\n    bs = 2", "bs"),
    "a loop target": MODEL
    + "\ndef main(ds):\n    for bs in (2, 64):"
    + LOOP.format(expr="bs").replace("\n    ", "\n        "),
    "augmented": _main("bs = 64\nbs //= world_size()", "bs"),
    "a runtime value": _main("bs = len(ds)", "bs"),
    "a caller passes what cannot be read": (
        MODEL
        + "\ndef train(ds, batch_size=64):"
        + LOOP.format(expr="batch_size")
        + '\nif __name__ == "__main__":\n    train(None, batch_size=pick())\n'
    ),
    "a config built with **overrides": _main("cfg = TrainCfg(**overrides)", "cfg.batch_size"),
}


@pytest.mark.parametrize("case", list(UNKNOWN))
def test_what_is_not_sure_stays_unknown(case: str) -> None:
    result = analyze_source(UNKNOWN[case], "train.py", AnalysisOptions())
    (model,) = [m for m in result.models if m.name == "Net"]
    assert model.batch_size.per_device is None, model.batch_size
    assert not result.findings


def test_a_call_only_a_benchmark_makes_is_not_the_training_batch() -> None:
    """train(model, batch_size=1) inside ``benchmark()``: the training call's 64 counts."""
    source = (
        MODEL
        + "\ndef train(ds, batch_size=64):"
        + LOOP.format(expr="batch_size")
        + "\ndef benchmark_speed():\n    train(None, batch_size=1)\n"
        + '\nif __name__ == "__main__":\n    train(None)\n'
    )
    result = analyze_source(source, "train.py", AnalysisOptions())
    (model,) = [m for m in result.models if m.name == "Net"]
    assert model.batch_size.per_device == 64
    assert not result.findings


def test_a_local_shadowing_a_parameter_default_wins() -> None:
    """def main(ds, batch_size=64): batch_size = 4 -> the loader sees 4, not the default."""
    source = (
        MODEL
        + "\ndef main(ds, batch_size=64):\n    batch_size = 4"
        + LOOP.format(expr="batch_size")
    )
    result = analyze_source(source, "train.py", AnalysisOptions())
    (model,) = [m for m in result.models if m.name == "Net"]
    assert model.batch_size.per_device == 4
