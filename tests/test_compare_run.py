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
    # AdamW (NormClassifier's default): sqrt rule relative to the recipe's batch 8 and lr 0.01
    assert runs["bn|2|0"]["lr"] == pytest.approx(0.01 * 0.5)
    assert runs["gn|8|0"]["lr"] == pytest.approx(0.01)
    assert doc["settings"]["lr_scaling"] == "sqrt"
    assert "Malladi et al. 2022" in doc["settings"]["lr_scaling_why"]
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
        (["--threads", "0"], "--threads must be an integer >= 1"),
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
        base_lr=settings.base_lr, base_batch=settings.base_batch, lr_scaling=settings.lr_scaling,
    )  # fmt: skip
    assert len(cells) == 16 and {c.lr for c in cells if c.batch_size == 2} == {0.1 * 2 / 32}
    preflight(settings)  # both norms build for this model, without data or training


@pytest.mark.slow
def test_bn_at_batch_one_is_a_refused_row_and_the_other_cells_run(
    recipe: Path, tmp_path: Path
) -> None:
    # before: BatchNormBatchSizeError from the batch-1 BN cell ended the run with a traceback
    out = tmp_path / "out"
    args = ["compare", "-c", str(recipe), "--norms", "bn,gn", "--batch-sizes", "1,4"]
    args += ["--seeds", "2", "--max-steps", "1", "--out", str(out), "--no-plot"]
    text = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert text.exit_code == 0, text.output
    assert "Traceback" not in text.output
    assert "refused: BN at batch 1, see NRM005" in text.stdout
    # the memory meter's saved-tensor hook is process-global: a refused cell must not leave
    # it installed (it broke every later torch.export in the process)
    assert torch._C._autograd._top_saved_tensors_default_hooks(False) is None
    lines = {r["key"]: r for r in _lines(out)}
    assert set(lines) == {f"{n}|{b}|{s}" for n in ("bn", "gn") for b in (1, 4) for s in (0, 1)}
    for seed in (0, 1):
        bn1 = lines[f"bn|1|{seed}"]
        assert bn1["refused"] == "BN at batch 1, see NRM005" and bn1["val_acc"] is None
        assert "BatchNorm layer" in bn1["reason"] and bn1["steps"] == 0
    for key in ("gn|1|0", "gn|1|1", "bn|4|0", "bn|4|1"):  # the other cells trained
        assert lines[key]["steps"] == 1 and 0.0 <= lines[key]["val_acc"] <= 1.0

    doc = json.loads(
        runner.invoke(app, [*args, "--resume", "--format", "json"]).stdout
    )  # resume: every cell, the refused ones too, is already there
    cells = {(c["norm"], c["batch_size"]): c for c in doc["cells"]}
    assert cells[("bn", 1)]["refused"] == "BN at batch 1, see NRM005"
    assert cells[("bn", 1)]["seeds"] == 0 and "val_acc" not in cells[("bn", 1)]
    assert cells[("gn", 1)]["refused"] is None and cells[("gn", 1)]["seeds"] == 2
    at_one = next(b for b in doc["batch_sizes"] if b["batch_size"] == 1)
    assert at_one["winner"] == "gn" and at_one["refused"] == ["bn"]
    assert at_one["verdict"] == "agrees"  # advice at batch 1 is gn (B8)
    assert len(_lines(out)) == 8


def test_torch_one_value_error_is_a_refusal_other_errors_are_not() -> None:
    from normsuite.compare.runner import refusal
    from normsuite.training.guardrails import BatchNormBatchSizeError

    with pytest.raises(ValueError) as info:  # torch's own message, from torch itself
        torch.nn.BatchNorm1d(4).train()(torch.randn(1, 4))
    assert refusal(info.value, 1) == "BN saw 1 value per channel at batch 1, see NRM005"
    assert refusal(BatchNormBatchSizeError("BatchNorm layer x ..."), 1) == (
        "BN at batch 1, see NRM005"
    )
    assert refusal(ValueError("something else"), 1) is None
    assert refusal(RuntimeError("CUDA out of memory"), 1) is None


@pytest.mark.slow
def test_defaults_three_seeds_threads_and_lr_scaling_option(recipe: Path, tmp_path: Path) -> None:
    # before: one seed by default (no spread), no --threads, LR always scaled linearly
    out = tmp_path / "out"
    threads_before = torch.get_num_threads()
    args = ["compare", "-c", str(recipe), "--norms", "gn", "--batch-sizes", "2,8"]
    args += ["--max-steps", "1", "--threads", "1", "--lr-scaling", "linear", "--out", str(out)]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = _lines(out)
    assert sorted(r["key"] for r in lines) == [f"gn|{b}|{s}" for b in (2, 8) for s in range(3)]
    assert {r["threads"] for r in lines} == {1}
    assert torch.get_num_threads() == threads_before  # restored after the run
    assert [r["lr"] for r in lines if r["batch_size"] == 2] == pytest.approx([0.0025] * 3)
    assert "± " in result.stdout  # 3 seeds: mean ± std in every trained row
    assert "LR scaling: linear from LR 0.01 at batch 8; set by --lr-scaling." in result.stdout


@pytest.mark.slow
def test_progress_bar_counts_steps_and_shows_an_eta(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160, color_system=None)
    run_compare(
        TINY, norms="bn,gn", batch_sizes="1,2", seeds=1, max_steps=3, plot=False,
        out_dir=tmp_path / "o", progress=console,
    )  # fmt: skip
    text = screen.getvalue()
    # 4 cells x 3 planned steps; the refused BN cell at batch 1 still completes its share
    assert "12/12 steps" in text and "ETA" in text
    assert "cell 4/4: gn batch 2 seed 0" in text
