"""Training configs: LightningCLI precedence and keys, Hydra composition and
interpolation, OpenMMLab Python configs, bounded YAML reading, the CLI's one-line note."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from normsuite.analysis.configs import ConfigReadError, read_configs
from normsuite.analysis.runner import analyze_paths
from normsuite.analysis.types import AnalysisOptions

FIX = Path(__file__).parent / "fixtures" / "project"
runner = CliRunner()


def _batch(model: Path, *configs: Path, **options):
    opts = AnalysisOptions(config_paths=tuple(str(c) for c in configs), **options)
    (result,) = analyze_paths([str(model)], opts)
    assert result.error is None, result.error
    return result


def test_c01_lightning_cli_yaml_beats_the_signature_default() -> None:
    """Data(batch_size=64) in the file, data.init_args.batch_size: 2 and 4 devices in the
    YAML: batch 2 x 4 devices, NRM006."""
    result = _batch(FIX / "c01_cli_config" / "model.py", FIX / "c01_cli_config" / "cli.yaml")
    b = result.models[0].batch_size
    assert (b.per_device, b.devices) == (2, 4)
    assert b.source.startswith("config:cli.yaml data.init_args.batch_size=2")
    assert [f.code for f in result.findings] == ["NRM006"]
    # the command line still wins over the YAML
    b = (
        _batch(
            FIX / "c01_cli_config" / "model.py", FIX / "c01_cli_config" / "cli.yaml", batch_size=32
        )
        .models[0]
        .batch_size
    )
    assert (b.per_device, b.source.split(";")[0]) == (32, "cli")


def test_later_config_wins_and_devices_forms(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    a.write_text("data:\n  batch_size: 8\ntrainer:\n  devices: [0, 1]\n  num_nodes: 2\n")
    b = tmp_path / "b.yaml"
    b.write_text("data:\n  init_args:\n    batch_size: 3\n")
    scan = read_configs((str(a), str(b)))
    assert scan.batch[0] == 3 and scan.devices[0] == 4
    c = tmp_path / "c.yaml"
    c.write_text("trainer:\n  devices: -1\n")
    scan = read_configs((str(c),))
    assert scan.devices is None and "pass --devices" in scan.notes[0]
    d = tmp_path / "d.yaml"
    d.write_text("trainer:\n  devices: auto\n")
    assert read_configs((str(d),)).devices is None


def test_hydra_defaults_group_files_and_interpolation(tmp_path: Path) -> None:
    (tmp_path / "datamodule").mkdir()
    (tmp_path / "trainer").mkdir()
    (tmp_path / "config.yaml").write_text(
        "defaults:\n  - datamodule: mnist\n  - trainer: ddp\n  - _self_\ncommon:\n  bs: 4\n"
    )
    (tmp_path / "datamodule" / "mnist.yaml").write_text(
        "_target_: x.MNISTDataModule\nloaders:\n  train:\n    batch_size: ${common.bs}\n"
        "  val:\n    batch_size: 256\n"
    )
    (tmp_path / "trainer" / "ddp.yaml").write_text("devices: 2\naccumulate_grad_batches: 2\n")
    scan = read_configs((str(tmp_path / "config.yaml"),))
    assert scan.batch == (4, "config:config.yaml datamodule.loaders.train.batch_size=4")
    assert scan.devices[0] == 2 and scan.accumulate[0] == 2


def test_hydra_primary_config_overrides_its_defaults(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "small.yaml").write_text("batch_size: 64\n")
    (tmp_path / "config.yaml").write_text("defaults:\n  - data: small\ndata:\n  batch_size: 6\n")
    assert read_configs((str(tmp_path / "config.yaml"),)).batch[0] == 6


def test_config_keys_train_batch_size_and_fit_subcommand(tmp_path: Path) -> None:
    """train_batch_size beside eval_batch_size; a LightningCLI config keyed by ``fit:``."""
    hydra = tmp_path / "h.yaml"
    hydra.write_text("datamodule:\n  train_batch_size: 2\n  eval_batch_size: 64\n")
    assert read_configs((str(hydra),)).batch == (
        2,
        "config:h.yaml datamodule.train_batch_size=2",
    )
    fit = tmp_path / "fit.yaml"
    fit.write_text(
        "fit:\n  trainer:\n    devices: 2\n  data:\n    init_args:\n      batch_size: 3\n"
    )
    scan = read_configs((str(fit),))
    assert scan.batch[0] == 3 and scan.devices[0] == 2


def test_a_batch_set_at_run_time_overrides_the_default_with_unknown(tmp_path: Path) -> None:
    """data.batch_size: ${oc.env:BATCH_SIZE} beats the signature default 64 of the code:
    the batch is unknown (no NRM00x at 64), and the CLI says why in one note."""
    config = tmp_path / "env.yaml"
    config.write_text("data:\n  batch_size: ${oc.env:BATCH_SIZE}\n")
    scan = read_configs((str(config),))
    assert scan.batch is None and "set at run time" in scan.notes[0]
    result = _batch(FIX / "c01_cli_config" / "model.py", config)
    b = result.models[0].batch_size
    assert b.per_device is None and "${oc.env:BATCH_SIZE}" in b.source
    assert [f.code for f in result.findings if f.code.startswith("NRM00")] == []
    res = runner.invoke(
        app, ["check", str(FIX / "c01_cli_config" / "model.py"), "--config", str(config)]
    )
    assert "is set at run time; the batch is unknown" in res.output
    assert "no batch size or devices key" not in res.output


def test_openmmlab_python_config_with_bases(tmp_path: Path) -> None:
    (tmp_path / "_base_").mkdir()
    (tmp_path / "_base_" / "default.py").write_text(
        "train_dataloader = dict(batch_size=32, num_workers=2)\n"
        "norm_cfg = dict(type='BN', requires_grad=True)\n"
    )
    (tmp_path / "cfg.py").write_text(
        "_base_ = ['./_base_/default.py']\nimport os\nos.system('echo never run')\n"
        "norm_cfg = dict(type='SyncBN', requires_grad=True)\n"
        "model = dict(backbone=dict(norm_cfg=norm_cfg))\n"
        "train_dataloader = dict(batch_size=2)\n"
    )
    scan = read_configs((str(tmp_path / "cfg.py"),))
    assert scan.batch == (2, "config:cfg.py train_dataloader.batch_size=2")
    assert scan.sync is True
    (tmp_path / "old.py").write_text("data = dict(samples_per_gpu=4, workers_per_gpu=2)\n")
    assert read_configs((str(tmp_path / "old.py"),)).batch[0] == 4


def test_yaml_size_cap_is_one_line_and_fast(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("w") as handle:
        line = "k" * 60 + ": 1\n"
        for i in range(21 * 1024 * 1024 // len(line)):
            handle.write(f"x{i}{line}")
    start = time.perf_counter()
    with pytest.raises(ConfigReadError) as err:
        read_configs((str(big),))
    assert time.perf_counter() - start < 5  # a bound on a hang, not a speed goal
    assert "size cap" in str(err.value) and "NORMSUITE_MAX_CONFIG_SIZE" in str(err.value)


def test_yaml_alias_bomb_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    rows = ["a0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"]
    for i in range(1, 12):
        rows.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 100) + "]")
    bomb.write_text("data:\n" + "\n".join("  " + r for r in rows) + "\n")
    with pytest.raises(ConfigReadError) as err:
        read_configs((str(bomb),))
    assert "alias cap" in str(err.value) and "NORMSUITE_MAX_YAML_ALIASES" in str(err.value)


def test_cli_config_errors_and_note(tmp_path: Path) -> None:
    model = tmp_path / "model.py"
    shutil.copy(FIX / "c01_cli_config" / "model.py", model)
    empty = tmp_path / "empty.yaml"
    empty.write_text("seed_everything: 1\n")
    out = runner.invoke(app, ["check", str(model), "--config", str(empty)])
    assert out.exit_code == 0
    assert "no batch size or devices key found in --config" in out.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [\n")
    out = runner.invoke(app, ["check", str(model), "--config", str(bad)])
    assert out.exit_code == 2 and "config bad.yaml" in out.output
    assert "at line 2" in out.output and "fix the YAML syntax" in out.output
    assert "Traceback" not in out.output
    cfg = FIX / "c01_cli_config" / "cli.yaml"
    out = runner.invoke(
        app, ["recommend", str(model), "--config", str(empty), "--config", str(cfg)]
    )
    assert out.exit_code == 0 and "batch 2/device x 4 devices" in out.output


def test_fifo_config_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "cfg.yaml"
    os.mkfifo(fifo)
    code = "from normsuite.analysis.configs import read_configs\ntry:\n"
    code += f"    read_configs(({str(fifo)!r},))\nexcept ValueError as e:\n    print(e)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "not a regular file" in out.stdout


def test_a_billion_laughs_config_is_refused_by_the_expanded_size_cap(tmp_path: Path) -> None:
    # 90 aliases (under the alias cap) that expand to 10**9 nodes: the analyzer shares the
    # fit command's loader (normsuite._yaml_limits), which counts nodes without expanding
    levels = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 10):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(levels) + "\ndata:\n  batch_size: 4\n")
    model = tmp_path / "m.py"
    model.write_text("import torch.nn as nn\n")
    out = CliRunner().invoke(app, ["check", str(model), "--config", str(bomb)])
    assert out.exit_code == 2 and "Traceback" not in out.output
    assert "expanded-size cap" in out.output and "NORMSUITE_MAX_YAML_NODES" in out.output


def test_repeated_configs_merge_key_by_key(tmp_path: Path) -> None:
    """LightningCLI merges ``--config`` files key by key: ``trainer.num_nodes`` of one file
    stays when a later one sets only ``trainer.devices`` (4 processes, not 1)."""
    files = {
        "base.yaml": "trainer:\n  devices: 4\n  num_nodes: 2\ndata:\n  batch_size: 32\n",
        "nodes.yaml": "trainer:\n  num_nodes: 4\n",
        "onegpu.yaml": "trainer:\n  devices: 1\ndata:\n  batch_size: 4\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    scan = read_configs(tuple(str(tmp_path / n) for n in files))
    assert scan.batch is not None and scan.batch[0] == 4
    assert scan.devices is not None and scan.devices[0] == 4  # 1 device x 4 nodes
    assert "num_nodes=4" in scan.devices[1]
    backwards = read_configs((str(tmp_path / "onegpu.yaml"), str(tmp_path / "base.yaml")))
    assert (backwards.batch[0], backwards.devices[0]) == (32, 8)


def test_model_init_args_batch_of_a_module_that_owns_its_loaders(tmp_path: Path) -> None:
    """A Lightning template whose module builds its own DataLoader from
    ``self.hparams.batch_size``: ``model.batch_size`` in the CLI config is the batch; a data
    section, when there is one, still wins."""
    (tmp_path / "a.yaml").write_text("model:\n  batch_size: 2\n  lr: 0.001\n")
    (tmp_path / "b.yaml").write_text("model:\n  init_args:\n    batch_size: 3\n")
    (tmp_path / "c.yaml").write_text("model:\n  batch_size: 2\ndata:\n  batch_size: 16\n")
    assert read_configs((str(tmp_path / "a.yaml"),)).batch[0] == 2
    assert read_configs((str(tmp_path / "b.yaml"),)).batch[0] == 3
    assert read_configs((str(tmp_path / "c.yaml"),)).batch[0] == 16


def test_a_batch_divided_by_the_device_count_is_unknown_per_device() -> None:
    """lightning-hydra-template: data.batch_size=32 goes to a DataModule whose setup()
    hands each device batch_size // trainer.world_size. The per-device batch depends on
    the machine: unknown (it was "32/device x 4 devices, bn, high"), and the source says
    where the division is."""
    from normsuite.analysis import project

    project.clear()
    root = FIX / "hydra_per_device"
    options = AnalysisOptions(config_paths=(str(root / "configs" / "train.yaml"),))
    (result,) = [r for r in analyze_paths([str(root)], options) if r.models]
    (model,) = result.models
    assert model.batch_size.per_device is None
    assert "cifar_datamodule.py" in model.batch_size.source
    assert "divides the batch by a count" in model.batch_size.source


def test_a_script_that_divides_the_batch_by_the_world_size(tmp_path: Path) -> None:
    script = (
        "import argparse\nimport torch\nimport torch.nn as nn\n"
        "from torch.utils.data import DataLoader\n\n\nclass Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 8, 3, bias=False)\n"
        "        self.bn = nn.BatchNorm2d(8)\n\n"
        "    def forward(self, x):\n        return self.bn(self.conv(x))\n\n\n"
        "p = argparse.ArgumentParser()\np.add_argument('--batch-size', type=int, default=64)\n"
        "p.add_argument('--world-size', type=int, default=8)\nargs = p.parse_args()\n"
        "model = Net()\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for x in DataLoader(ds, batch_size=args.batch_size // args.world_size):\n"
        "    opt.zero_grad()\n    model(x).mean().backward()\n    opt.step()\n"
    )
    (tmp_path / "train.py").write_text(script)
    (result,) = analyze_paths([str(tmp_path / "train.py")])
    assert result.models[0].batch_size.per_device is None
    assert result.findings == []
