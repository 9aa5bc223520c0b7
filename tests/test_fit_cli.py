"""`normsuite fit`: end to end on a recipe with overrides, and every error path (exit 2)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from normsuite.cli.main import app
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "mnist1d_convnet1d_gn.yaml"
runner = CliRunner()


@pytest.mark.slow
def test_fit_end_to_end_with_overrides(tmp_path: Path) -> None:
    env = {**os.environ, "NORMSUITE_CACHE": str(tmp_path / "cache"), "MPLBACKEND": "Agg"}
    env.pop("NORMSUITE_RUN_VERSION", None)
    cmd = [
        sys.executable,
        "-m",
        "normsuite.cli.main",
        "fit",
        "--config",
        str(RECIPE),
        "--trainer.max_steps",
        "3",
        "--trainer.limit_val_batches",
        "1",
        "--trainer.limit_test_batches",
        "1",
        "--trainer.log_every_n_steps",
        "1",
        "--model.init_args.norm",
        "ln",
        "--model.init_args.widths",
        "[8, 16]",
        "--model.init_args.strides",
        "[1, 2]",
        "--runs_dir",
        str(tmp_path / "runs"),
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    run_dir = tmp_path / "runs" / "mnist1d_convnet1d_gn" / "version_0"
    assert f"logs and checkpoints in {run_dir}" in out
    assert "test/acc" in out  # tested after fit
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    steps = {int(r["step"]) for r in rows if r.get("train/loss_step")}
    assert steps == {0, 1, 2}
    assert any(key.startswith("act/") for key in rows[0])  # ActivationStats is on
    assert list(run_dir.glob("events.out.tfevents.*"))  # TensorBoard too
    assert (run_dir / "config.yaml").is_file()
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()

    from normsuite import NormClassifier

    model = NormClassifier.load_from_checkpoint(ckpt)
    assert model.norm == "ln"  # the override reached the model
    assert [m.out_channels for m in model.backbone.features if hasattr(m, "out_channels")] == [
        8,
        16,
    ]


def _fit(*args: str):
    return runner.invoke(app, ["fit", *args])


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_missing_config_file() -> None:
    line = _one_error_line(_fit("--config", "recipes/nope.yaml"))
    assert "not found" in line and "recipes/nope.yaml" in line


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer:\n  max_epochs: [1, 2\nmodel: {}\n")
    line = _one_error_line(_fit("--config", str(bad)))
    assert "bad.yaml" in line and "line" in line


def test_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    assert "mapping" in _one_error_line(_fit("--config", str(bad)))


def test_no_arguments_and_dangling_config() -> None:
    assert "no config given" in _one_error_line(_fit())
    assert "--config needs a file" in _one_error_line(_fit("--config"))


@pytest.mark.slow
def test_bad_option_and_bad_value_are_one_line_errors(tmp_path: Path) -> None:
    line = _one_error_line(_fit("--config", str(RECIPE), "--trainer.max_epochz", "3"))
    assert "max_epochz" in line and "--help" in line
    line = _one_error_line(_fit("--config", str(RECIPE), "--model.init_args.norm", "bnn"))
    assert "unknown norm 'bnn'" in line and "Did you mean 'bn'" in line


@pytest.mark.slow
@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        # The reason was empty before: 'Parser key "trainer.max_epochs":;'
        ("--trainer.max_epochs", "abc", "trainer.max_epochs: expected int or None, got 'abc'"),
        ("--data.init_args.batch_size", "x", "data.init_args.batch_size: expected int, got 'x'"),
        ("--model.init_args.widths", "x", "widths: expected list[int] or None, got 'x'"),
        ("--model.init_args.lr", "fast", "model.init_args.lr: expected float, got 'fast'"),
        ("--model.init_args.num_classes", "-1", "num_classes must be >= 1, got -1"),
    ],
)
def test_bad_values_keep_their_reason_in_one_line(option: str, value: str, expected: str) -> None:
    line = _one_error_line(_fit("--config", str(RECIPE), option, value))
    assert line.startswith("normsuite fit: ") and expected in line


@pytest.mark.slow
def test_help_shows_the_lightningcli_options() -> None:
    result = _fit("--help")
    assert result.exit_code == 0, result.output
    for option in ("--trainer.max_epochs", "--ckpt_path", "--model", "--data", "--print_config"):
        assert option in result.output
    assert "usage: normsuite [options] fit" in result.output
    # With a config, the help shows its classes' own options.
    result = _fit("--config", str(RECIPE), "-h")
    assert result.exit_code == 0 and "--trainer.max_epochs" in result.output


def test_fit_first_screen_is_quiet(tmp_path: Path, monkeypatch, capsys) -> None:
    """No Lightning tips, GPU/TPU lines, model summary ("Total FLOPs: 0") or seed line; one
    line says what trains, where the logs go and how to stop."""
    import logging

    from normsuite.training.fit import run_fit

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NORMSUITE_RUN_VERSION", raising=False)
    handler = logging.StreamHandler()  # as in a terminal: Lightning's own stream handler
    logging.getLogger("lightning.pytorch").addHandler(handler)
    try:
        args = ["--config", str(RECIPE), "--data.class_path", "normsuite.data.FakeDataModule"]
        args += ["--data.init_args.shape", "[1, 40]", "--data.init_args.num_samples", "32"]
        args += ["--model.init_args.widths", "[4]", "--model.init_args.strides", "[1]"]
        args += ["--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false"]
        args += ["--test_after_fit", "false", "--runs_dir", str(tmp_path / "runs")]
        run_fit(args)
    finally:
        logging.getLogger("lightning.pytorch").removeHandler(handler)
    err = capsys.readouterr().err
    for noise in ("Tip", "litlogger", "GPU available", "TPU available", "FLOPs", "Seed set"):
        assert noise not in err, err
    run_dir = tmp_path / "runs" / "mnist1d_convnet1d_gn" / "version_0"
    assert (
        "normsuite fit: training NormClassifier (norm gn) on FakeDataModule for 1 epoch(s); "
        f"logs and checkpoints in {run_dir}; Ctrl+C stops and saves"
    ) in err


def test_gru_ln_recipe_activation_stats_watch_something(tmp_path: Path, monkeypatch) -> None:
    # The recipe's model and callback as the CLI builds them; only the data (random sequences
    # of the MNIST-1D shape), the width and the length of the run are overridden.
    import warnings

    from normsuite import ActivationStats
    from normsuite.training.fit import run_fit

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NORMSUITE_RUN_VERSION", raising=False)
    args = ["--config", str(ROOT / "recipes" / "mnist1d_gru_ln.yaml")]
    args += ["--data.class_path", "normsuite.data.FakeDataModule"]
    args += ["--data.init_args.shape", "[40, 1]", "--data.init_args.num_samples", "16"]
    args += ["--data.init_args.batch_size", "8", "--model.init_args.hidden_size", "8"]
    args += ["--trainer.max_steps", "2", "--trainer.limit_val_batches", "0"]
    args += ["--trainer.log_every_n_steps", "1", "--trainer.enable_progress_bar", "false"]
    args += ["--test_after_fit", "false", "--runs_dir", str(tmp_path / "runs")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli = run_fit(args)
    assert not [w for w in caught if "found no normalization layer" in str(w.message)]
    (stats,) = [c for c in cli.trainer.callbacks if isinstance(c, ActivationStats)]
    # The LayerNorm inside the GRU cell, over all 40 time steps: rows of unit variance, but
    # step 0 normalizes h_0 W_hh = 0 to 0, so the overall std is about sqrt(39/40) = 0.987.
    metrics = stats.last_metrics
    assert 0.97 < metrics["act/backbone.rnn.ln_hh_l0/out/std"] < 1.0
    assert metrics["act/backbone.rnn.ln_hh_l0/in/std"] > 0
    assert metrics["act/backbone.rnn.ln_hh_l0/gamma_absmean"] == pytest.approx(1.0, abs=0.05)
