"""The batch a LightningDataModule trains with: the value its constructor call passes beats
its signature default, in the DataModule's own file and from a training script of another
file; a call that passes something unreadable makes the batch unknown (silent), never the
default."""

from __future__ import annotations

from pathlib import Path

from normsuite.analysis import project
from normsuite.analysis.runner import analyze_paths

MODEL = """\
import lightning.pytorch as pl
import torch
from torch import nn


class LitClassifier(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(1, 16, 3, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(16, 10),
        )

    def forward(self, x):
        return self.backbone(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())
"""

DATAMODULE = """\
import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset


class RandomDataModule(pl.LightningDataModule):
    def __init__(self, data_dir: str = ".", batch_size: int = 32):
        super().__init__()
        self.batch_size = batch_size

    def setup(self, stage=None):
        self.ds = TensorDataset(torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,)))

    def train_dataloader(self):
        return DataLoader(self.ds, batch_size=self.batch_size, shuffle=True)
"""


def _batch(results, name: str = "LitClassifier"):
    (model,) = [m for r in results for m in r.models if m.name == name]
    return model.batch_size


def _one_file(tmp_path: Path, main: str) -> Path:
    path = tmp_path / "train.py"
    body = DATAMODULE.split("\n", 3)[3]  # the DataModule without its imports
    imports = "\nfrom torch.utils.data import DataLoader, TensorDataset\n"
    path.write_text(MODEL + imports + body + main)
    return path


def test_constructor_argument_beats_the_signature_default(tmp_path: Path) -> None:
    path = _one_file(
        tmp_path,
        '\nif __name__ == "__main__":\n'
        "    dm = RandomDataModule(batch_size=1)\n"
        "    pl.Trainer(max_epochs=1).fit(LitClassifier(), datamodule=dm)\n",
    )
    (result,) = analyze_paths([str(path)])
    batch = _batch([result])
    assert batch.per_device == 1
    assert "passes 1" in batch.source
    assert [f.code for f in result.findings] == ["NRM005"]


def test_positional_argument_and_unreadable_argument(tmp_path: Path) -> None:
    path = _one_file(
        tmp_path,
        '\nif __name__ == "__main__":\n'
        '    dm = RandomDataModule(".", 2)\n'
        "    pl.Trainer(max_epochs=1).fit(LitClassifier(), datamodule=dm)\n",
    )
    (result,) = analyze_paths([str(path)])
    assert _batch([result]).per_device == 2
    # a value only known at run time: the default 32 would be a guess, so the batch is unknown
    path.write_text(path.read_text().replace('RandomDataModule(".", 2)', "RandomDataModule(**cfg)"))
    project.clear()
    (result,) = analyze_paths([str(path)])
    assert _batch([result]).per_device is None
    assert not [f for f in result.findings if f.code in ("NRM005", "NRM006")]


def test_datamodule_of_another_file_built_by_the_script(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "datamodule.py").write_text(DATAMODULE)
    (tmp_path / "run.py").write_text(
        "import lightning.pytorch as pl\n"
        "from datamodule import RandomDataModule\n"
        "from model import LitClassifier\n\n"
        'if __name__ == "__main__":\n'
        "    dm = RandomDataModule(batch_size=1)\n"
        "    pl.Trainer(max_epochs=1).fit(LitClassifier(), datamodule=dm)\n"
    )
    project.clear()
    results = analyze_paths([str(tmp_path)])
    batch = _batch(results)
    assert batch.per_device == 1 and "run.py:6 RandomDataModule(batch_size=1)" in batch.source
    model = next(r for r in results if r.path.endswith("model.py"))
    assert [(f.code, f.line) for f in model.findings] == [("NRM005", 11)]


def test_datamodule_of_another_file_handed_to_lightningcli(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "datamodule.py").write_text(DATAMODULE.replace("= 32", "= 2"))
    (tmp_path / "main.py").write_text(
        "from lightning.pytorch.cli import LightningCLI\n"
        "from datamodule import RandomDataModule\n"
        "from model import LitClassifier\n\n"
        'if __name__ == "__main__":\n'
        "    LightningCLI(LitClassifier, RandomDataModule)\n"
    )
    project.clear()
    batch = _batch(analyze_paths([str(tmp_path)]))
    # the signature default, where it is written; a --config may override it (weak)
    assert batch.per_device == 2
    assert "datamodule.py:7 RandomDataModule(batch_size=2)" in batch.source


def test_unknown_batch_recommendation_names_both_answers(tmp_path: Path) -> None:
    """A model nothing trains: 'bn at a per-device batch >= 16, gn below', no assumption."""
    from typer.testing import CliRunner

    from cli.main import app

    (tmp_path / "model.py").write_text(MODEL)
    project.clear()
    (model,) = [m for r in analyze_paths([str(tmp_path)]) for m in r.models]
    rec = model.recommendation
    assert model.batch_size.per_device is None and rec is not None
    assert (rec.norm, rec.below_bn_batch) == ("bn", "gn")
    res = CliRunner().invoke(app, ["recommend", str(tmp_path / "model.py"), "--isolated"])
    assert "recommend: bn at a per-device batch >= 16, gn below (confidence low" in res.output


def test_two_constructions_on_one_line_with_the_same_value(tmp_path: Path) -> None:
    """DM(4) if ... else DM(args.batch_size) with --batch-size default 4: one line, one value,
    a literal and an argparse default (it crashed comparing None with an int)."""
    path = _one_file(
        tmp_path,
        '\nimport argparse\n\nif __name__ == "__main__":\n'
        "    ap = argparse.ArgumentParser()\n"
        '    ap.add_argument("--batch-size", type=int, default=4)\n'
        '    ap.add_argument("--x", action="store_true")\n    args = ap.parse_args()\n'
        "    dm = RandomDataModule(batch_size=4) if args.x else "
        "RandomDataModule(batch_size=args.batch_size)\n"
        "    pl.Trainer(max_epochs=1).fit(LitClassifier(), datamodule=dm)\n",
    )
    (result,) = analyze_paths([str(path)])
    assert result.error is None and _batch([result]).per_device == 4
