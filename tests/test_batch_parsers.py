"""A training script whose parser lives in another file of the project (the a12 class):
``args = get_args()`` from ``options.py``, and pix2pix/CycleGAN's
``opt = TrainOptions().parse()`` with ``--batch_size`` added by a base class in a third
file. A model factory imported from a script with a parser brings no flags along."""

from __future__ import annotations

from pathlib import Path

from normsuite.analysis import project
from normsuite.analysis.runner import analyze_paths

MODEL = """import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)

    def forward(self, x):
        return self.bn(self.conv(x))
"""

TRAIN = """import torch
from torch.utils.data import DataLoader

from net import Net
{imports}


def main():
    {args}
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for x in DataLoader(torch.randn(8, 3, 8, 8), batch_size=args.batch_size, shuffle=True):
        opt.zero_grad()
        model(x).mean().backward()
        opt.step()


if __name__ == "__main__":
    main()
"""


def _project(root: Path, files: dict[str, str]) -> list:
    (root / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    project.clear()
    return analyze_paths([str(root)])


def _net(results: list):
    (model,) = [m for r in results for m in r.models if m.name == "Net"]
    codes = [f.code for r in results for f in r.findings]
    return model, codes


def test_get_args_from_an_options_file(tmp_path: Path) -> None:
    options = (
        "import argparse\n\n\ndef get_parser():\n    p = argparse.ArgumentParser()\n"
        '    p.add_argument("--batch_size", type=int, default=2)\n    return p\n\n\n'
        "def get_args():\n    return get_parser().parse_args()\n"
    )
    train = TRAIN.format(imports="from options import get_args", args="args = get_args()")
    model, codes = _net(
        _project(tmp_path, {"net.py": MODEL, "options.py": options, "train.py": train})
    )
    assert model.batch_size.per_device == 2
    assert "options.py:6 default 2" in model.batch_size.source
    assert codes == ["NRM006"]


def test_train_options_with_a_base_class_in_a_third_file(tmp_path: Path) -> None:
    base = (
        "import argparse\n\n\nclass BaseOptions:\n    def initialize(self, parser):\n"
        '        parser.add_argument("--batch_size", type=int, default=1)\n'
        "        return parser\n\n    def parse(self):\n"
        "        parser = self.initialize(argparse.ArgumentParser())\n"
        "        return parser.parse_args()\n"
    )
    train_options = (
        "from .base_options import BaseOptions\n\n\nclass TrainOptions(BaseOptions):\n"
        "    def initialize(self, parser):\n"
        "        parser = BaseOptions.initialize(self, parser)\n"
        '        parser.add_argument("--n_epochs", type=int, default=100)\n'
        "        return parser\n"
    )
    train = TRAIN.format(
        imports="from options.train_options import TrainOptions",
        args="args = TrainOptions().parse()",
    )
    files = {
        "net.py": MODEL,
        "options/__init__.py": "",
        "options/base_options.py": base,
        "options/train_options.py": train_options,
        "train.py": train,
    }
    model, codes = _net(_project(tmp_path, files))
    assert model.batch_size.per_device == 1
    assert "base_options.py:6 default 1" in model.batch_size.source
    assert codes == ["NRM005"]


def test_a_factory_from_a_script_with_a_parser_brings_no_flags(tmp_path: Path) -> None:
    """finetune.py imports build() from pretrain.py, which has its own --batch_size 2:
    finetune's args come from elsewhere (unknown), not from pretrain's parser."""
    pretrain = (
        "import argparse\nfrom net import Net\n\n\ndef build():\n    return Net()\n\n\n"
        'if __name__ == "__main__":\n    p = argparse.ArgumentParser()\n'
        '    p.add_argument("--batch_size", type=int, default=2)\n    p.parse_args()\n'
    )
    finetune = (
        "import torch\nfrom torch.utils.data import DataLoader\nfrom pretrain import build\n\n\n"
        "def run(args):\n    model = build()\n"
        "    opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "    for x in DataLoader(torch.randn(8, 3, 8, 8), batch_size=args.batch_size):\n"
        "        model(x).mean().backward()\n        opt.step()\n"
    )
    files = {"net.py": MODEL, "pretrain.py": pretrain, "finetune.py": finetune}
    results = _project(tmp_path, files)
    model, codes = _net(results)
    assert model.batch_size.per_device is None
    assert codes == []


def test_arguments_parsed_when_a_config_module_is_imported(tmp_path: Path) -> None:
    """``from config import args``, where config.py runs ``parser.parse_args()`` at import:
    its ``--batch_size`` default 1 is the training batch (NRM005)."""
    config = (
        "import argparse\n\nparser = argparse.ArgumentParser()\n"
        'parser.add_argument("--batch_size", type=int, default=1)\nargs = parser.parse_args()\n'
    )
    train = TRAIN.format(imports="from config import args", args="pass")
    model, codes = _net(
        _project(tmp_path, {"net.py": MODEL, "config.py": config, "train.py": train})
    )
    assert model.batch_size.per_device == 1 and "config.py:4 default 1" in model.batch_size.source
    assert codes == ["NRM005"]


HYDRA = """import hydra
import torch
from torch.utils.data import DataLoader

from net import Net


@hydra.main(version_base=None, config_path="conf", config_name="config")
def train(cfg):
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    for x in DataLoader(torch.randn(8, 3, 8, 8), batch_size={expr}, shuffle=True):
        opt.zero_grad()
        model(x).mean().backward()
        opt.step()


if __name__ == "__main__":
    train()
"""


def test_the_config_a_hydra_main_decorator_names(tmp_path: Path) -> None:
    """``@hydra.main(config_path="conf", config_name="config")``: conf/config.yaml,
    composed with its defaults list, is read without ``--config``."""
    files = {
        "net.py": MODEL,
        "train.py": HYDRA.format(expr="cfg.data.batch_size"),
        "conf/config.yaml": "defaults:\n  - data: small\n  - _self_\nlr: 0.1\n",
        "conf/data/small.yaml": "batch_size: 2\nnum_workers: 4\n",
    }
    model, codes = _net(_project(tmp_path, files))
    assert model.batch_size.per_device == 2
    assert "conf/config.yaml data.batch_size" in model.batch_size.source
    assert codes == ["NRM006"]


def test_a_yaml_file_the_script_loads_itself(tmp_path: Path) -> None:
    """``with open(os.path.join(os.path.dirname(__file__), "config.yaml")) as f: cfg =
    yaml.safe_load(f)``: ``cfg["train"]["batch_size"]`` is read from that file; the
    validation loader's 1 is not the training batch."""
    train = (
        "import os\n\nimport torch\nimport yaml\nfrom torch.utils.data import DataLoader\n\n"
        "from net import Net\n\n"
        'with open(os.path.join(os.path.dirname(__file__), "config.yaml")) as f:\n'
        "    cfg = yaml.safe_load(f)\n\nmodel = Net()\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        'train_loader = DataLoader(range(8), batch_size=cfg["train"]["batch_size"], shuffle=True)\n'
        'val_loader = DataLoader(range(8), batch_size=cfg["val"]["batch_size"])\n'
        "for x in train_loader:\n    model(x).mean().backward()\n    opt.step()\n"
    )
    files = {
        "net.py": MODEL,
        "train.py": train,
        "config.yaml": "train:\n  batch_size: 4\nval:\n  batch_size: 1\n",
    }
    model, codes = _net(_project(tmp_path, files))
    assert (
        model.batch_size.per_device == 4
        and "config.yaml train.batch_size" in model.batch_size.source
    )
    assert codes == ["NRM006"]
