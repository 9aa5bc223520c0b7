"""Batch sizes written the ways real scripts write them (c13 and its neighbours): a
dataclass ``field(default=N)``, a config object that is a function's parameter default,
argparse's ``dest=`` read through ``vars(args)["bs"]``."""

from __future__ import annotations

from pathlib import Path

import pytest

from normsuite.analysis.analyze import analyze_source
from normsuite.analysis.runner import analyze_paths
from normsuite.analysis.types import AnalysisOptions

MODEL = """
import torch
import torch.nn as nn
from torch.utils.data import DataLoader


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(3, 32, 3, bias=False), nn.BatchNorm2d(32), nn.ReLU())

    def forward(self, x):
        return self.f(x)
"""

LOOP = """
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for x in DataLoader(ds, batch_size={expr}, shuffle=True):
        opt.zero_grad()
        model(x).mean().backward()
        opt.step()
"""

CASES = {
    "dataclass field(default=4)": (
        "from dataclasses import dataclass, field\n\n@dataclass\nclass Cfg:\n"
        "    batch_size: int = field(default=4)\n    tags: list = field(default_factory=list)\n"
        "\ncfg = Cfg()\n\ndef main(ds):" + LOOP.format(expr="cfg.batch_size"),
        4,
    ),
    "NamedTuple as a parameter default": (
        "from typing import NamedTuple\n\nclass HParams(NamedTuple):\n    batch_size: int = 2\n"
        "\ndef main(ds, hp=HParams()):" + LOOP.format(expr="hp.batch_size"),
        2,
    ),
    "argparse dest read through vars()": (
        "import argparse\n\ndef main(ds):\n    parser = argparse.ArgumentParser()\n"
        '    parser.add_argument("-b", "--train-batch", dest="bs", type=int, default=4)\n'
        "    opt_ = vars(parser.parse_args())" + LOOP.format(expr='opt_["bs"]'),
        4,
    ),
    "parser.set_defaults beats the argument's default (in either order)": (
        "import argparse\n\ndef main(ds):\n    parser = argparse.ArgumentParser()\n"
        "    parser.set_defaults(batch_size=2)\n"
        '    parser.add_argument("--batch_size", type=int, default=64)\n'
        "    args = parser.parse_args()" + LOOP.format(expr="args.batch_size"),
        2,
    ),
    "parse_args with a literal list (a notebook)": (
        "import argparse\n\ndef main(ds):\n    parser = argparse.ArgumentParser()\n"
        '    parser.add_argument("--batch-size", type=int, default=64)\n'
        '    args = parser.parse_args(["--lr", "0.1", "--batch-size", "2"])'
        + LOOP.format(expr="args.batch_size"),
        2,
    ),
    "a config attribute set after the instance is built": (
        "from dataclasses import dataclass\n\n@dataclass\nclass Cfg:\n    batch_size: int = 64\n"
        "\ncfg = Cfg()\ncfg.batch_size = 2\n\ndef main(ds):" + LOOP.format(expr="cfg.batch_size"),
        2,
    ),
    "parse_args with --flag=value": (
        "import argparse\n\ndef main(ds):\n    parser = argparse.ArgumentParser()\n"
        '    parser.add_argument("--batch-size", type=int, default=64)\n'
        '    args = parser.parse_args(["--batch-size=4"])' + LOOP.format(expr="args.batch_size"),
        4,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_batch_written_as_real_scripts_write_it(case: str) -> None:
    source, expected = CASES[case]
    result = analyze_source(MODEL + source, "train.py", AnalysisOptions())
    (model,) = result.models
    assert model.batch_size.per_device == expected
    assert [f.code for f in result.findings] == ["NRM006"]


def test_a_parameter_default_call_with_its_own_argument() -> None:
    """def main(hp=HParams(batch_size=64)): the argument of the default's call wins over the
    field's default 2."""
    source = MODEL + (
        "from typing import NamedTuple\n\nclass HParams(NamedTuple):\n    batch_size: int = 2\n"
        "\ndef main(ds, hp=HParams(batch_size=64)):" + LOOP.format(expr="hp.batch_size")
    )
    (model,) = analyze_source(source, "train.py", AnalysisOptions()).models
    assert model.batch_size.per_device == 64


def test_training_loop_in_a_helper_of_another_file(tmp_path) -> None:
    """torchvision's references: main.py builds the loader, engine.py's train_one_epoch
    steps the optimizer. main.py trains (its loader's batch counts); engine.py's benchmark
    loader (batch 1) does not."""
    from normsuite.analysis import project
    from normsuite.analysis.runner import analyze_paths

    (tmp_path / "model.py").write_text(MODEL)  # a DataLoader import, no loader: no batch
    (tmp_path / "engine.py").write_text(
        "import torch\nfrom torch.utils.data import DataLoader\n\n\n"
        "def train_one_epoch(\n    model, loader, optimizer\n):  # a signature over lines\n"
        "# a comment in column 0\n    for x in loader:\n"
        "        optimizer.zero_grad()\n        model(x).mean().backward()\n"
        "        optimizer.step()\n\n\ndef benchmark(model):\n"
        "    for x in DataLoader(torch.randn(8, 3, 8, 8), batch_size=1):\n        model(x)\n"
    )
    (tmp_path / "main.py").write_text(
        "import argparse\nimport torch\nfrom torch.utils.data import DataLoader\n"
        "from engine import train_one_epoch\nfrom model import Net\n\n"
        'if __name__ == "__main__":\n    ap = argparse.ArgumentParser()\n'
        '    ap.add_argument("--batch-size", type=int, default=4)\n    args = ap.parse_args()\n'
        "    net = Net()\n    opt = torch.optim.SGD(net.parameters(), lr=0.1)\n"
        "    loader = DataLoader(ds, batch_size=args.batch_size, shuffle=True)\n"
        "    train_one_epoch(net, loader, opt)\n"
    )
    project.clear()
    (model,) = [m for r in analyze_paths([str(tmp_path)]) for m in r.models]
    assert model.batch_size.per_device == 4 and "main.py:9" in model.batch_size.source


def test_config_instance_imported_from_another_file(tmp_path) -> None:
    """``from config import config`` (``config = Config()`` there): its train_batch_size
    default, named where it is written; the eval loader's 16 is not a training batch."""
    from normsuite.analysis import project
    from normsuite.analysis.runner import analyze_paths

    (tmp_path / "config.py").write_text(
        "from dataclasses import dataclass\n\n\n@dataclass(frozen=True)\nclass Config:\n"
        "    train_batch_size: int = 1\n    eval_batch_size: int = 16\n\n\nconfig = Config()\n"
    )
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "train.py").write_text(
        "import torch\nfrom torch.utils.data import DataLoader\nfrom config import config\n"
        "from model import Net\n\nnet = Net()\nopt = torch.optim.Adam(net.parameters())\n"
        "train_dl = DataLoader(ds, batch_size=config.train_batch_size, shuffle=True)\n"
        "eval_dl = DataLoader(ds, batch_size=config.eval_batch_size)\n"
        "for x in train_dl:\n    net(x).mean().backward()\n    opt.step()\n"
    )
    project.clear()
    (model,) = [m for r in analyze_paths([str(tmp_path)]) for m in r.models]
    assert model.batch_size.per_device == 1
    assert model.batch_size.source.startswith("config.py:6 default 1 -> DataLoader at train.py:8")


def test_a_loader_fed_from_a_runtime_config_ignores_an_unrelated_batch_flag() -> None:
    """The DataLoader reads ``cfg["train"]["batch_size"]`` from a YAML loaded at run time;
    ``--batch-size`` (default 1, for a demo) never reaches it and a key of the same name is
    no argparse read: the batch is unknown, not 1 (which made NRM005 an error)."""
    source = MODEL + (
        "import argparse\nimport yaml\n\nparser = argparse.ArgumentParser()\n"
        'parser.add_argument("--batch-size", type=int, default=1)\n'
        "args = parser.parse_args()\ncfg = yaml.safe_load(open('train.yaml'))\n"
        "model = Net()\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        'for x in DataLoader(ds, batch_size=cfg["train"]["batch_size"], shuffle=True):\n'
        "    opt.zero_grad()\n    model(x).mean().backward()\n    opt.step()\n"
    )
    result = analyze_source(source, "train.py", AnalysisOptions())
    (model,) = result.models
    assert model.batch_size.per_device is None
    assert result.findings == []


def test_an_unresolved_name_still_takes_the_flag_default() -> None:
    """``batch_size = args.batch_size`` at module level, then ``DataLoader(batch_size=
    batch_size)`` (PyTorch-GAN): the flag's default is the batch; only a read from a
    structure (``cfg["train"]["batch_size"]``) makes it unknown."""
    source = MODEL + (
        "import argparse\n\nparser = argparse.ArgumentParser()\n"
        'parser.add_argument("-b", "--batch_size", dest="batch_size", default=4, type=int)\n'
        "args = parser.parse_args()\nbatch_size = args.batch_size\n"
        "model = Net()\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for x in DataLoader(ds, batch_size=batch_size, shuffle=True):\n"
        "    opt.zero_grad()\n    model(x).mean().backward()\n    opt.step()\n"
    )
    (model,) = analyze_source(source, "train.py", AnalysisOptions()).models
    assert model.batch_size.per_device == 4


def test_an_attribute_set_in_another_branch_does_not_hold() -> None:
    """``if dataset == "imagenet": args.gpus = 8`` before a Trainer built after the chain:
    the 8 holds in one branch only, so the flag's default (1) is what the code shows for
    sure; a set in the branch that builds the loader holds for it."""
    source = MODEL + (
        "import argparse\nimport lightning as L\n\nparser = argparse.ArgumentParser()\n"
        'parser.add_argument("--batch_size", type=int, default=128)\n'
        'parser.add_argument("--gpus", type=int, default=1)\n'
        'parser.add_argument("--dataset", default="cifar10")\n'
        "args = parser.parse_args()\n"
        'if args.dataset == "cifar10":\n    args.batch_size = 4\n'
        "    loader = DataLoader(ds, batch_size=args.batch_size, shuffle=True)\n"
        "else:\n    args.gpus = 8\n"
        "    loader = DataLoader(ds, batch_size=args.batch_size, shuffle=True)\n"
        "trainer = L.Trainer(devices=args.gpus)\ntrainer.fit(Net(), loader)\n"
    )
    (model,) = analyze_source(source, "train.py", AnalysisOptions()).models
    assert model.batch_size.per_device == 4  # the smallest training batch: cifar10's
    assert model.batch_size.devices == 1


def test_a_batch_divided_in_a_config_post_init_is_unknown() -> None:
    """``__post_init__``: ``self.batch_size = self.batch_size // self.grad_accum_steps``:
    the loader gets 64 // 16, not the field's 64 (which said "bn, high")."""
    source = MODEL + (
        "from dataclasses import dataclass\n\n@dataclass\nclass Cfg:\n    batch_size: int = 64\n"
        "    grad_accum_steps: int = 16\n\n    def __post_init__(self):\n"
        "        self.batch_size = self.batch_size // self.grad_accum_steps\n\n"
        "cfg = Cfg()\n\ndef main(ds):" + LOOP.format(expr="cfg.batch_size")
    )
    (model,) = analyze_source(source, "train.py", AnalysisOptions()).models
    assert model.batch_size.per_device is None


def test_dividing_a_count_of_batches_keeps_the_batch() -> None:
    """``steps = num_batches // accumulate`` counts optimizer steps: the loader's batch 4
    still holds (only a divided batch *size* makes it unknown)."""
    source = MODEL + (
        "def main(ds, num_batches, accumulate):\n    steps = num_batches // accumulate\n"
        + LOOP.format(expr="4")
    )
    (model,) = analyze_source(source, "train.py", AnalysisOptions()).models
    assert model.batch_size.per_device == 4


BENCH_MODEL = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, bias=False)
        self.bn = nn.BatchNorm2d(16)

    def forward(self, x):
        return self.bn(self.conv(x))
"""

BENCH_SCRIPT = """
import torch
from model import Net

model = Net()
model.train()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn({batch}, 3, 32, 32)
loader = torch.utils.data.DataLoader(data, batch_size={batch})
for _ in range(20):
    model(x).mean().backward()
    opt.step()
"""


def test_benchmark_and_test_scripts_do_not_give_the_training_batch(tmp_path: Path) -> None:
    """timm's ``benchmark.py`` times a train step at ``-b 1``, a smoke test trains at 2:
    neither is the training batch (NRM005 errored at batch 1 and recommend said gn)."""
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "model.py").write_text(BENCH_MODEL)
    (tmp_path / "train.py").write_text(BENCH_SCRIPT.format(batch=128))
    (tmp_path / "benchmark.py").write_text(BENCH_SCRIPT.format(batch=1))
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_model.py").write_text(BENCH_SCRIPT.format(batch=2))
    (result,) = analyze_paths([str(tmp_path / "model.py")], jobs=1)
    (net,) = result.models
    assert net.batch_size.per_device == 128
    assert "train.py" in net.batch_size.source and "benchmark" not in net.batch_size.source
    assert not [f for f in result.findings if f.code in ("NRM005", "NRM006")]


HF_TRAINER = """
import torch.nn as nn
from transformers import Trainer, TrainingArguments


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(3, 32, 3, bias=False), nn.BatchNorm2d(32), nn.ReLU())

    def forward(self, pixel_values, labels=None):
        return {"loss": self.f(pixel_values).mean()}


args = TrainingArguments(output_dir="o", per_device_train_batch_size=4, ACCUM)
Trainer(model=Net(), args=args).train()
"""


def test_hugging_face_training_arguments_give_the_batch() -> None:
    """``TrainingArguments(per_device_train_batch_size=4)`` with ``Trainer(...).train()``:
    the model's per-device batch (it was silent: no loader, no training word)."""
    source = HF_TRAINER.replace("ACCUM", "gradient_accumulation_steps=2")
    (net,) = analyze_source(source, "m.py", AnalysisOptions()).models
    assert (net.batch_size.per_device, net.batch_size.accumulate) == (4, 2)
    assert "TrainingArguments(per_device_train_batch_size=4)" in net.batch_size.source
    unset = HF_TRAINER.replace("per_device_train_batch_size=4, ACCUM", "num_train_epochs=3")
    (net,) = analyze_source(unset, "m.py", AnalysisOptions()).models
    assert net.batch_size.per_device is None  # HF's default 8 is not assumed
