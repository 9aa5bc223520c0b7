"""Batch size from how the model is trained: across files, with the not-training loaders
left out, one resolver for check and recommend."""

from __future__ import annotations

import textwrap
from pathlib import Path

from normsuite.analysis import project
from normsuite.analysis.analyze import analyze_source
from normsuite.analysis.runner import analyze_paths
from normsuite.analysis.types import AnalysisOptions, FileResult

FIX = Path(__file__).parent / "fixtures" / "project"

MODEL = """
import torch.nn as nn
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, bias=False)
        self.bn = nn.BatchNorm2d(64)
    def forward(self, x):
        return self.bn(self.conv(x))
"""


def _one(path: Path | str) -> FileResult:
    (result,) = analyze_paths([str(path)])
    return result


def test_a12_training_script_in_another_file_gives_the_batch() -> None:
    """train.py builds TinySegNet from model.py, --batch-size default 1 -> NRM005 at
    model.py:9, with the source train.py:9 (where the 1 is written)."""
    project.clear()
    result = _one(FIX / "a12_pkg" / "model.py")
    (model,) = result.models
    assert model.batch_size.per_device == 1
    assert "a12_pkg/train.py:9" in model.batch_size.source
    assert [(f.code, f.line) for f in result.findings] == [("NRM005", 9)]
    assert model.recommendation is not None and model.recommendation.norm == "gn"


def test_a07_profiling_main_block_is_not_training() -> None:
    """--batch-size 1 used under no_grad after .eval(): no batch, no batch rule."""
    result = _one(FIX / "a07_profile_argparse.py")
    assert result.models[0].batch_size.per_device is None
    assert result.findings == []


def test_c13_dataclass_default_batch() -> None:
    result = _one(FIX / "c13_dataclass_batch.py")
    b = result.models[0].batch_size
    assert (b.per_device, b.source.split(" ")[0]) == (4, "file:9")
    assert [f.code for f in result.findings] == ["NRM006"]


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))


TRAIN = """
import torch
from torch.utils.data import DataLoader
from model import Net
model = Net()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x in DataLoader(ds, batch_size={bs}, shuffle=True):
    model(x).mean().backward()
    opt.step()
"""


def test_smallest_of_several_training_scripts_with_every_source(tmp_path: Path) -> None:
    project.clear()
    _write(
        tmp_path,
        {
            "model.py": MODEL,
            "train_big.py": TRAIN.format(bs=64),
            "train_small.py": TRAIN.format(bs=4),
            "other.py": TRAIN.format(bs=2).replace("from model import Net", "Net = None"),
        },
    )
    b = _one(tmp_path / "model.py").models[0].batch_size
    assert b.per_device == 4
    assert "train_small.py:7" in b.source and "64 from" in b.source and "train_big.py" in b.source
    assert "other.py" not in b.source  # builds another Net


def test_not_training_loaders_are_left_out() -> None:
    src = MODEL + textwrap.dedent(
        """
        import torch
        from torch.utils.data import DataLoader
        def validate(model):
            return DataLoader(ds, batch_size=1)
        test_loader = DataLoader(test_set, batch_size=2)
        with torch.no_grad():
            warm = DataLoader(ds, batch_size=3)
        calib = DataLoader(val_ds, batch_size=5)
        train_loader = DataLoader(ds, batch_size=32, shuffle=True)
        loss.backward()
        """
    )
    b = analyze_source(src, "m.py", AnalysisOptions()).models[0].batch_size
    assert (b.per_device, b.source) == (32, "file:19 DataLoader(batch_size=32)")
    only_eval = (
        MODEL + "from torch.utils.data import DataLoader\nval = DataLoader(ds, batch_size=1)\n"
    )
    assert analyze_source(only_eval, "m.py", AnalysisOptions()).models[0].batch_size.source == (
        "unknown"
    )


def test_argparse_default_counts_only_where_the_script_trains() -> None:
    args = "\nimport argparse\np = argparse.ArgumentParser()\n"
    args += 'p.add_argument("--batch-size", default=2)\n'
    assert (
        analyze_source(MODEL + args, "m.py", AnalysisOptions()).models[0].batch_size.per_device
        is None
    )
    trains = MODEL + args + "loss.backward()\n"
    assert analyze_source(trains, "m.py", AnalysisOptions()).models[0].batch_size.per_device == 2


def test_check_and_recommend_use_the_same_batch(tmp_path: Path) -> None:
    """The batch that recommend reports is the one the batch rules use."""
    project.clear()
    _write(tmp_path, {"model.py": MODEL, "train.py": TRAIN.format(bs=8)})
    result = _one(tmp_path / "model.py")
    assert result.models[0].batch_size.per_device == 8
    assert [f.code for f in result.findings] == ["NRM006"]
    assert "per-device batch 8" in result.findings[0].message


def test_dataclass_config_from_another_file(tmp_path: Path) -> None:
    project.clear()
    _write(
        tmp_path,
        {
            "cfg.py": "import dataclasses\n@dataclasses.dataclass\nclass Cfg:\n    bs: int = 3\n",
            "model.py": MODEL
            + "from torch.utils.data import DataLoader\nfrom cfg import Cfg\nc = Cfg()\n"
            + "loader = DataLoader(ds, batch_size=c.bs)\n",
        },
    )
    b = _one(tmp_path / "model.py").models[0].batch_size
    assert b.per_device == 3
    overridden = (
        MODEL + "from cfg import Cfg\nc = Cfg(bs=24)\nloader = DataLoader(ds, batch_size=c.bs)\n"
    )
    (tmp_path / "model.py").write_text(overridden)
    project.clear()
    assert _one(tmp_path / "model.py").models[0].batch_size.per_device == 24
