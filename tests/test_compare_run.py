"""normsuite compare end to end: tiny grids that really train, resume, CLI and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from normsuite.cli.main import app
from typer.testing import CliRunner

from normsuite.compare import CompareError, run_compare
from normsuite.compare.runner import CellMeter

# A model and data small enough that a cell takes about a second on a shared CPU core.
TINY = {
    "model": {
        "class_path": "normsuite.NormClassifier",
        "init_args": {
            "backbone": "convnet1d",
            "num_classes": 4,
            "in_channels": 1,
            "widths": [8, 8],
            "lr": 0.01,
            "scheduler": "none",
        },
    },
    "data": {
        "class_path": "normsuite.data.FakeDataModule",
        "init_args": {"shape": [1, 12], "num_classes": 4, "num_samples": 24, "batch_size": 8},
    },
}

runner = CliRunner()


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def _lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_cli_tiny_grid_end_to_end(recipe: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["compare", "--config", str(recipe), "--norms", "bn,gn", "--batch-sizes", "2,8"]
    result = runner.invoke(
        app, [*args, "--seeds", "1", "--max-steps", "2", "--out", str(out), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    runs = {r["key"]: r for r in doc["runs"]}
    assert set(runs) == {"bn|2|0", "bn|8|0", "gn|2|0", "gn|8|0"}
    for run in runs.values():
        assert run["steps"] == 2
        assert 0.0 <= run["val_acc"] <= 1.0 and run["val_loss"] > 0
        assert run["step_ms"] > 0 and run["mem_mb"] > 0
    # linear rule relative to the recipe's batch 8 and lr 0.01
    assert runs["bn|2|0"]["lr"] == pytest.approx(0.0025)
    assert runs["gn|8|0"]["lr"] == pytest.approx(0.01)
    # advice from normsuite.advice for a 1-d CNN: GN below batch 16
    verdicts = {b["batch_size"]: b for b in doc["batch_sizes"]}
    assert verdicts[2]["advice"]["norm"] == "gn" and "B2" in verdicts[2]["advice"]["rules"]
    if runs["bn|2|0"]["val_acc"] != runs["gn|2|0"]["val_acc"]:  # (a dead heat is a tie)
        assert verdicts[2]["verdict"] == "inconclusive"  # one seed: the noise is unknown
        assert "one seed" in verdicts[2]["note"]
    assert len(_lines(out)) == 4
    assert (out / "accuracy_vs_batch.png").read_bytes()[:4] == b"\x89PNG"

    # same settings again without --resume: refuse to mix; with --resume: nothing to train
    again = runner.invoke(app, [*args, "--seeds", "1", "--max-steps", "2", "--out", str(out)])
    assert again.exit_code == 2 and "pass --resume" in again.stderr
    resumed = runner.invoke(
        app, [*args, "--seeds", "1", "--max-steps", "2", "--out", str(out), "--resume"]
    )
    assert resumed.exit_code == 0, resumed.output
    assert "winner per batch size" in resumed.stdout
    assert len(_lines(out)) == 4
    # a changed setting with the same folder is detected through the stored fingerprint
    changed = runner.invoke(
        app, [*args, "--seeds", "1", "--max-steps", "3", "--out", str(out), "--resume"]
    )
    assert changed.exit_code == 2
    assert "different settings (changed: max_steps)" in changed.stderr


@pytest.mark.slow
def test_resume_after_interruption_runs_only_missing_cells(tmp_path: Path) -> None:
    grid = {"norms": "bn,gn", "batch_sizes": "2,4", "seeds": 1, "max_steps": 2, "plot": False}
    # the cells that will be resumed, run without interruption (a cell's seed, not its place
    # in the grid, decides its result)
    reference = run_compare(TINY, out_dir=tmp_path / "full", **{**grid, "batch_sizes": "4"})

    class Interrupt(Exception):
        pass

    started: list[str] = []

    def stop_after_two(record: dict) -> None:
        started.append(record["key"])
        if len(started) == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_compare(TINY, out_dir=tmp_path / "cut", on_cell_end=stop_after_two, **grid)
    assert [r["key"] for r in _lines(tmp_path / "cut")] == ["bn|2|0", "gn|2|0"]

    rerun: list[str] = []
    resumed = run_compare(
        TINY, out_dir=tmp_path / "cut", resume=True, on_cell_end=lambda r: rerun.append(r["key"]),
        **grid,
    )  # fmt: skip
    assert rerun == ["bn|4|0", "gn|4|0"]  # only the missing cells trained
    # seeded cells: the interrupted-then-resumed comparison equals the uninterrupted one
    got = {r["key"]: (r["val_acc"], r["val_loss"]) for r in resumed.records}
    want = {r["key"]: (r["val_acc"], r["val_loss"]) for r in reference.records}
    assert {k: got[k] for k in want} == want
    assert len(resumed.records) == 4 and len(_lines(tmp_path / "cut")) == 4


@pytest.mark.slow
def test_norm_that_cannot_be_built_fails_before_training(recipe: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["compare", "-c", str(recipe), "--norms", "bn,gn:3", "--batch-sizes", "2",
         "--max-steps", "1", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "cannot build the model with norm 'gn:3'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (out / "results.jsonl").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--batch-sizes", "2,x"], "'x' in '2,x' is not one"),
        (["--lrs", "2:0.1,8"], "'8' is not one"),
        (["--lrs", "4:0.1"], "not in --batch-sizes"),
        (["--max-steps", "2", "--epochs", "1"], "either --max-steps or --epochs"),
        (["--seeds", "0"], "--seeds must be"),
        (["--norms", "bn,batchnrm"], "batchnrm"),
    ],
)
def test_cli_rejects_malformed_options(recipe: Path, tmp_path, extra, message) -> None:
    base = ["compare", "-c", str(recipe), "--norms", "bn,gn", "--batch-sizes", "2,8"]
    result = runner.invoke(app, [*base, "--out", str(tmp_path / "o"), *extra])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_cli_config_errors(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["compare", "-c", str(tmp_path / "nope.yaml"), "--norms", "bn"])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    no_data = tmp_path / "nodata.yaml"
    no_data.write_text(yaml.safe_dump({"model": TINY["model"]}))
    result = runner.invoke(app, ["compare", "-c", str(no_data), "--norms", "bn"])
    assert result.exit_code == 2 and "no data: section" in result.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed\n")
    result = runner.invoke(app, ["compare", "-c", str(broken), "--norms", "bn"])
    assert result.exit_code == 2 and "cannot read config" in result.stderr
    with pytest.raises(CompareError, match="no norms to compare"):
        run_compare(TINY, out_dir=tmp_path / "x")


def test_cell_meter_counts_saved_activations_not_parameters() -> None:
    layer = torch.nn.Linear(4, 8, bias=False)
    meter = CellMeter()
    meter._param_storages = {p.untyped_storage().data_ptr() for p in layer.parameters()}
    x = torch.randn(5, 4, requires_grad=False)
    with torch.autograd.graph.saved_tensors_hooks(meter._pack, lambda t: t):
        out = torch.relu(layer(x))
    # Linear saves its input x (5x4 float32) and its weight (a parameter, not counted);
    # ReLU saves its output (5x8 float32).
    assert meter.saved_bytes == 5 * 4 * 4 + 5 * 8 * 4
    out.sum().backward()


def test_cli_interrupt_says_how_to_resume(recipe: Path, tmp_path: Path, monkeypatch) -> None:
    import normsuite.compare

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(normsuite.compare, "run_compare", interrupted)
    out = tmp_path / "o"
    result = runner.invoke(app, ["compare", "-c", str(recipe), "--norms", "bn", "--out", str(out)])
    assert result.exit_code == 130
    assert f"kept in {out}" in result.stderr and "--resume" in result.stderr


def test_shipped_recipe_resolves_and_builds() -> None:
    from normsuite.compare.grid import expand_grid
    from normsuite.compare.recipe import load_recipe, resolve_settings
    from normsuite.compare.runner import preflight

    root = Path(__file__).resolve().parents[1]
    settings = resolve_settings(load_recipe(root / "recipes" / "compare_mnist1d_bn_gn.yaml"))
    assert settings.norms == ["bn", "gn"] and settings.batch_sizes == [2, 4, 8, 16]
    assert settings.epochs == 4 and settings.max_steps is None
    assert settings.lr_path == ("model", "init_args", "lr")
    assert (settings.base_lr, settings.base_batch) == (0.1, 32)
    cells = expand_grid(
        settings.norms, settings.batch_sizes, settings.seeds,
        base_lr=settings.base_lr, base_batch=settings.base_batch, lr_rule=settings.lr_rule,
    )  # fmt: skip
    assert len(cells) == 16 and {c.lr for c in cells if c.batch_size == 2} == {0.1 * 2 / 32}
    preflight(settings)  # both norms build for this model, without data or training
