"""Batch size / devices / accumulation: CLI > file > config > default, with the source."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from normsuite.analysis.analyze import analyze_source
from normsuite.analysis.types import AnalysisOptions

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


def batch(extra: str = "", **options):
    src = MODEL + textwrap.dedent(extra)
    (report,) = analyze_source(src, "m.py", AnalysisOptions(**options)).models
    return report.batch_size


def test_unknown_without_any_source() -> None:
    b = batch()
    assert (b.per_device, b.devices, b.accumulate, b.source) == (None, 1, 1, "unknown")


def test_dataloader_module_constant_and_function_default() -> None:
    assert batch("BS = 24\nloader = DataLoader(ds, batch_size=BS)\n").per_device == 24
    b = batch("def make(bs=12):\n    return DataLoader(ds, bs, shuffle=True)\n")
    assert b.per_device == 12 and b.source.startswith("file:")


def test_shuffled_train_loader_wins_over_eval_loader() -> None:
    b = batch(
        "val = DataLoader(ds, batch_size=256)\ntrain = DataLoader(ds, batch_size=8, shuffle=True)\n"
    )
    assert b.per_device == 8


def test_argparse_default_and_args_reference() -> None:
    b = batch(
        """
        import argparse
        p = argparse.ArgumentParser()
        p.add_argument("--bs", "--batch-size", dest="bs", type=int, default=6)
        p.add_argument("--devices", type=int, default=2)
        args = p.parse_args()
        loader = DataLoader(ds, batch_size=args.bs)
        """
    )
    assert (b.per_device, b.devices) == (6, 2)


def test_datamodule_init_default_and_hparams() -> None:
    b = batch(
        """
        import lightning as L
        class DM(L.LightningDataModule):
            def __init__(self, batch_size=4):
                super().__init__()
                self.save_hyperparameters()
            def train_dataloader(self):
                return DataLoader(self.ds, batch_size=self.hparams.batch_size, shuffle=True)
        """
    )
    assert b.per_device == 4


def test_trainer_devices_nodes_accumulation() -> None:
    b = batch(
        "loader = DataLoader(ds, batch_size=8)\n"
        "trainer = L.Trainer(devices=[0, 1], num_nodes=2, accumulate_grad_batches=4)\n"
    )
    assert (b.per_device, b.devices, b.accumulate) == (8, 4, 4)
    assert "devices=4" in b.source and "accumulate=4" in b.source
    assert batch("t = Trainer(devices='auto')\n").devices == 1  # unknown statically


def test_cli_wins_over_file_and_config(tmp_path: Path) -> None:
    cfg = tmp_path / "recipe.yaml"
    cfg.write_text("data:\n  init_args:\n    batch_size: 2\ntrainer:\n  devices: 3\n")
    extra = "loader = DataLoader(ds, batch_size=8)\n"
    b = batch(extra, batch_size=64, config_path=str(cfg))
    assert (b.per_device, b.devices, b.source.split(";")[0]) == (64, 3, "cli")
    b = batch(extra, config_path=str(cfg))
    assert b.per_device == 8 and b.source.startswith("file:") and "config:recipe.yaml" in b.source
    b = batch(config_path=str(cfg))
    expected = (2, "config:recipe.yaml data.init_args.batch_size=2")
    assert (b.per_device, b.source.split(";")[0]) == expected


def test_config_flat_data_section_and_default(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data:\n  batch_size: 5\ntrainer:\n  accumulate_grad_batches: 3\n")
    b = batch(config_path=str(cfg), default_batch_size=99)
    assert (b.per_device, b.accumulate) == (5, 3)
    assert batch(default_batch_size=99).per_device == 99
    assert batch(default_batch_size=99).source == "default"


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "not found"), ("data: [unclosed\n", "fix the YAML syntax")],
)
def test_bad_config_one_line_value_error(tmp_path: Path, content: str | None, message: str) -> None:
    cfg = tmp_path / "bad.yaml"
    if content is not None:
        cfg.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        batch(config_path=str(cfg))
    assert "\n" not in str(info.value)


def test_batch_drives_the_bn_rules() -> None:
    src = MODEL + "loader = DataLoader(ds, batch_size=4)\nloss.backward()\n"
    codes = lambda **o: [f.code for f in analyze_source(src, "m.py", AnalysisOptions(**o)).findings]  # noqa: E731
    assert codes() == ["NRM006"]
    assert codes(batch_size=1) == ["NRM005"]
    assert codes(devices=4) == ["NRM008"]  # 4 x 4 = 16: SyncBN would see 16
    assert codes(devices=2) == ["NRM006"]  # 4 x 2 = 8: still small, GN
    assert codes(batch_size=16) == []
    assert codes(accumulate=8) == ["NRM006"]  # accumulation does not help BN


def test_analysis_never_imports_torch_or_lightning() -> None:
    code = (
        "import sys\n"
        "import normsuite.advice, normsuite.analysis.analyze\n"
        "from normsuite.analysis.analyze import analyze_source\n"
        "from normsuite.analysis.types import AnalysisOptions\n"
        "src = open(sys.argv[1]).read()\n"
        "analyze_source(src, 'a.py', AnalysisOptions(batch_size=4))\n"
        "bad = [m for m in ('torch', 'lightning', 'pytorch_lightning', 'torchvision') "
        "if m in sys.modules]\n"
        "print(bad)\n"
    )
    article = Path(__file__).parent / "fixtures" / "article" / "article_models.py"
    out = subprocess.run(
        [sys.executable, "-c", code, str(article)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_inference_only_file_batch_does_not_fire_bn_rules() -> None:
    src = MODEL + "model = Net().eval()\nfor x in DataLoader(ds, batch_size=1):\n    model(x)\n"
    result = analyze_source(src, "m.py", AnalysisOptions())
    # one resolver for check and recommend: an inference loop is no training batch for either
    assert result.models[0].batch_size.per_device is None
    assert result.findings == []
    # The user saying so (CLI/config/default) counts even without training code.
    result = analyze_source(src, "m.py", AnalysisOptions(batch_size=1))
    assert [f.code for f in result.findings] == ["NRM005"]


def test_one_finding_per_helper_line_with_every_width() -> None:
    src = """
import torch.nn as nn
def conv_bn(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, bias=False), nn.BatchNorm2d(cout))
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(conv_bn(3, 64), conv_bn(64, 128), conv_bn(128, 128))
"""
    (finding,) = analyze_source(src, "m.py", AnalysisOptions(batch_size=4)).findings
    assert (finding.code, finding.line) == ("NRM006", 4)
    # One fix valid for every width the helper builds (G is picked per width).
    assert finding.message.endswith('Use normsuite.build_norm("gn", cout).')
