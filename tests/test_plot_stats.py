"""plot-stats: reading a real ActivationStats CSV log, the figure, and every CLI error path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from matplotlib.image import imread
from normsuite.cli.main import app
from torch import nn
from typer.testing import CliRunner

from normsuite.callbacks.activation_stats import ActivationStats
from normsuite.callbacks.plot import plan_panels, plot_stats, read_stats


class Tiny(L.LightningModule):
    """Forward order z_bn -> a_gn -> m_ln: not the alphabetical order of the CSV columns."""

    def __init__(self, relu: bool = True) -> None:
        super().__init__()
        self.act = torch.relu if relu else torch.tanh
        self.conv = nn.Conv1d(2, 4, 3, padding=1)
        self.z_bn = nn.BatchNorm1d(4)
        self.a_gn = nn.GroupNorm(2, 4)
        self.m_ln = nn.LayerNorm(16)
        self.head = nn.Linear(64, 3)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        h = self.m_ln(self.a_gn(self.act(self.z_bn(self.conv(x)))))
        return nn.functional.cross_entropy(self.head(h.flatten(1)), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _train(root: Path, bins: int, relu: bool = True) -> tuple[Path, ActivationStats]:
    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(48, 2, 16, generator=g), torch.arange(48) % 3)
    cb = ActivationStats(every_n_steps=2, histogram_bins=bins)
    L.Trainer(
        max_steps=6,
        callbacks=[cb],
        logger=CSVLogger(root, name="run"),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
    ).fit(Tiny(relu), torch.utils.data.DataLoader(data, batch_size=8))
    return root / "run", cb


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("logs")
    hist_dir, cb = _train(root / "hist", bins=8)
    plain_dir, _ = _train(root / "plain", bins=0)
    tanh_dir, _ = _train(root / "tanh", bins=0, relu=False)
    return {"hist": hist_dir, "plain": plain_dir, "tanh": tanh_dir, "cb": cb}


def test_read_stats_from_real_csv(runs: dict[str, Any]) -> None:
    log = read_stats(runs["hist"])  # a run dir: finds version_0/metrics.csv
    assert log.source.name == "metrics.csv"
    assert log.layers == ["z_bn", "a_gn", "m_ln"]
    steps = [s for s, _ in log.series[("a_gn", "out", "std")]]
    assert steps == [0, 2, 4]
    last = runs["cb"].last_metrics
    for (layer, side, stat), points in log.series.items():
        key = f"act/{layer}/{stat}" if side == "layer" else f"act/{layer}/{side}/{stat}"
        assert points[-1][1] == pytest.approx(last[key], rel=1e-6)
    # BatchNorm's drift is read too (it was dropped before), for the BN layer only.
    assert {layer for layer, side, stat in log.series if stat == "bn_shift"} == {"z_bn"}
    assert log.series[("z_bn", "layer", "bn_shift")][-1][1] == pytest.approx(
        last["act/z_bn/bn_shift"], rel=1e-6
    )
    assert log.hist_range[("a_gn", "out")] == (-5.0, 5.0)
    fractions = log.hist[("a_gn", "out")][4]
    assert len(fractions) == 8 and sum(fractions) == pytest.approx(1.0)


def test_plot_has_heatmaps_only_with_histograms(runs: dict[str, Any], tmp_path: Path) -> None:
    with_hist = plot_stats(runs["hist"], tmp_path / "h.png")
    plain = plot_stats(runs["plain"], tmp_path / "p.png", stats=["std"], io=["out"])
    hi, pi = imread(with_hist), imread(plain)
    assert hi.shape[0] > pi.shape[0] > 100 and pi.shape[1] > 100
    assert hi.std() > 0 and pi.std() > 0  # something was drawn


def test_default_panels_are_what_was_logged_with_data(runs: dict[str, Any]) -> None:
    plan = plan_panels(read_stats(runs["plain"]))
    assert plan.rows == [
        ("mean", ["in", "out"]),
        ("std", ["in", "out"]),
        # GroupNorm's input follows a ReLU: zeros; no norm output is exactly zero.
        ("zero_frac", ["in"]),
        ("bn_shift", ["layer"]),
    ]
    assert plan.skipped == ["zero_frac of layer outputs: all zero"]
    # Without a ReLU the zero-fraction panels are empty: both skipped, not drawn blank.
    tanh = plan_panels(read_stats(runs["tanh"]))
    assert [stat for stat, _ in tanh.rows] == ["mean", "std", "bn_shift"]
    assert tanh.skipped == [
        "zero_frac of layer inputs: all zero",
        "zero_frac of layer outputs: all zero",
    ]


def test_bn_shift_panel_is_drawn(runs: dict[str, Any], tmp_path: Path) -> None:
    only_mean = imread(plot_stats(runs["plain"], tmp_path / "m.png", stats=["mean"]))
    with_shift = imread(plot_stats(runs["plain"], tmp_path / "b.png", stats=["mean", "bn_shift"]))
    assert with_shift.shape[0] > only_mean.shape[0]  # one more panel row


def test_plot_from_python_does_not_import_torch(runs: dict[str, Any], tmp_path: Path) -> None:
    code = (
        "import sys; from normsuite.callbacks import plot_stats; "
        f"plot_stats({str(runs['plain'])!r}, {str(tmp_path / 'x.png')!r}); "
        "assert 'torch' not in sys.modules and 'lightning' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"MPLBACKEND": "Agg"})
    assert (tmp_path / "x.png").stat().st_size > 1000


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["plot-stats", *args])


def test_cli_says_which_panels_it_skipped(runs: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "t.png"
    result = _cli(str(runs["tanh"]), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "skipped zero_frac of layer inputs: all zero",
        "skipped zero_frac of layer outputs: all zero",
        f"wrote {out}",
    ]


def test_cli_writes_png(runs: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "sub" / "stats.png"
    csv_file = read_stats(runs["hist"]).source
    result = _cli(str(csv_file), "-o", str(out), "--stat", "absmax", "--io", "out")
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no such file or directory"),
        ("empty_dir", "no metrics.csv under"),
        ("no_act", "has no act/<layer>/<in|out>/<stat> columns"),
        ("bad_stat", "no statistic 'nope' in the log"),
        ("bad_io", "--io must be in, out or both"),
        ("bad_suffix", "give -o a .png"),
        ("ragged", "metrics.csv:3: expected 2 fields, got 3"),
        ("only_zeros", "nothing to plot in"),
    ],
)
def test_cli_errors_are_one_line_exit_2(
    case: str, message: str, runs: dict[str, Any], tmp_path: Path
) -> None:
    source, extra, out = runs["hist"], [], tmp_path / "o.png"
    if case == "missing":
        source = tmp_path / "nothing"
    elif case == "empty_dir":
        source = tmp_path
    elif case == "no_act":
        source = tmp_path / "metrics.csv"
        source.write_text("step,train_loss\n0,1.5\n")
    elif case == "bad_stat":
        extra = ["--stat", "nope"]
    elif case == "bad_io":
        extra = ["--io", "sideways"]
    elif case == "bad_suffix":
        out = tmp_path / "o.txt"
    elif case == "ragged":  # was a 45-line traceback (float() of a list)
        source = tmp_path / "metrics.csv"
        source.write_text("step,act/a/out/std\n0,1.5\n1,1.4,9\n")
    elif case == "only_zeros":
        source = tmp_path / "metrics.csv"
        source.write_text("step,act/a/out/zero_frac\n0,0\n1,0\n")
        extra = ["--stat", "zero_frac"]
    result = _cli(str(source), "-o", str(out), *extra)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()
