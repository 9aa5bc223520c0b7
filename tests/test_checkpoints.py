"""Checkpoints you can trust: corrupt files are named in one line, writes are atomic, and a
``normsuite fit`` stopped by SIGTERM leaves a checkpoint that resumes."""

from __future__ import annotations

import io
import os
import shlex
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from normsuite.cli.main import app
from typer.testing import CliRunner

from normsuite.training.checkpoints import (
    AtomicCheckpointIO,
    CheckpointError,
    find_last_checkpoint,
    verify_checkpoint,
)

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "mnist1d_convnet1d_bn.yaml"
runner = CliRunner()


@pytest.fixture(scope="module")
def good_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Lightning checkpoint of a small NormClassifier (written by AtomicCheckpointIO)."""
    from normsuite import build_module

    path = tmp_path_factory.mktemp("ckpt") / "good.ckpt"
    model = build_module("convnet1d", "bn", 3, widths=[16, 32, 64], scheduler="none")
    trainer = pl.Trainer(
        logger=False, enable_progress_bar=False, max_epochs=0, plugins=[AtomicCheckpointIO()]
    )
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    return path


def _variant(good: Path, tmp_path: Path, name: str) -> Path:
    data = good.read_bytes()
    n = len(data)
    torch_file = io.BytesIO()
    torch.save({"weight": torch.zeros(3)}, torch_file)  # a plain state dict, not Lightning's
    other_zip = io.BytesIO()
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("notes.txt", "not a checkpoint")
    content = {
        "truncated": data[: n // 2],
        "zeroed": data[: n // 2 - 2048] + bytes(4096) + data[n // 2 + 2048 :],
        "empty": b"",
        "foreign": b"trainer:\n  max_epochs: 3\n",
        "plain_state_dict": torch_file.getvalue(),
        "other_zip": other_zip.getvalue(),
    }[name]
    path = tmp_path / f"{name}.ckpt"
    path.write_bytes(content)
    return path


CASES = {
    "truncated": "truncated or damaged",
    "zeroed": "fails its CRC-32 check",
    "empty": "empty file (0 bytes)",
    "foreign": "not a PyTorch checkpoint",
    "plain_state_dict": "not a Lightning checkpoint",
    "other_zip": "not a PyTorch checkpoint (no data.pkl inside)",
}


def test_a_good_checkpoint_verifies(good_ckpt: Path) -> None:
    checkpoint = verify_checkpoint(good_ckpt)
    assert "state_dict" in checkpoint and checkpoint["hyper_parameters"]["norm"] == "bn"


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_checkpoint_is_named_in_one_line(good_ckpt: Path, tmp_path: Path, case: str) -> None:
    path = _variant(good_ckpt, tmp_path, case)
    with pytest.raises(CheckpointError) as err:
        verify_checkpoint(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and CASES[case] in message and "\n" not in message


def test_every_zeroed_block_is_detected(good_ckpt: Path, tmp_path: Path) -> None:
    # 4 KiB of zeros anywhere in the file: the zip's per-member CRC-32 (or its structure)
    # catches it; before, a block zeroed in the middle loaded without complaint.
    data = good_ckpt.read_bytes()
    path = tmp_path / "z.ckpt"
    missed = []
    for offset in range(0, len(data) - 4096, 4096):
        path.write_bytes(data[:offset] + bytes(4096) + data[offset + 4096 :])
        try:
            verify_checkpoint(path)
        except CheckpointError:
            continue
        missed.append(offset)
    assert not missed


@pytest.mark.parametrize("case", ["truncated", "zeroed", "foreign", "plain_state_dict"])
def test_fit_with_a_bad_checkpoint_exits_2_in_one_line(
    good_ckpt: Path, tmp_path: Path, case: str
) -> None:
    path = _variant(good_ckpt, tmp_path, case)
    result = runner.invoke(app, ["fit", "--config", str(RECIPE), "--ckpt_path", str(path)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"normsuite fit: {path}: ") and CASES[case] in lines[0]


def test_fit_ckpt_path_last_without_a_run_is_one_line(tmp_path: Path) -> None:
    args = ["fit", "--config", str(RECIPE), "--ckpt_path", "last"]
    result = runner.invoke(app, [*args, "--runs_dir", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0
    assert "--ckpt_path last: no " in result.output and "last.ckpt" in result.output


def test_last_is_the_newest_version_with_a_last_ckpt(tmp_path: Path) -> None:
    for version in (0, 1, 3):
        (tmp_path / f"version_{version}" / "checkpoints").mkdir(parents=True)
    for version in (0, 1):
        (tmp_path / f"version_{version}" / "checkpoints" / "last.ckpt").write_bytes(b"x")
    # version_3 crashed before its first checkpoint: version_1's is the newest.
    assert find_last_checkpoint(tmp_path) == tmp_path / "version_1" / "checkpoints" / "last.ckpt"


def test_a_crash_mid_write_keeps_the_old_last_ckpt(
    good_ckpt: Path, tmp_path: Path, monkeypatch
) -> None:
    target = tmp_path / "last.ckpt"
    target.write_bytes(good_ckpt.read_bytes())
    before = target.read_bytes()

    def crash(obj, file, *args, **kwargs):  # half a file, then the process "dies"
        file.write(before[: len(before) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="No space left"):
        AtomicCheckpointIO().save_checkpoint({"state_dict": {}}, target)
    assert target.read_bytes() == before  # untouched, still verifies
    verify_checkpoint(target)
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left behind


def test_atomic_write_roundtrips(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "x.ckpt"
    state = {"state_dict": {"w": torch.arange(4.0)}, "epoch": 2}
    AtomicCheckpointIO().save_checkpoint(state, target)
    loaded = AtomicCheckpointIO().load_checkpoint(target)
    assert loaded["epoch"] == 2 and torch.equal(loaded["state_dict"]["w"], torch.arange(4.0))


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_leaves_a_checkpoint_that_resumes(tmp_path: Path, signum: int, code: int) -> None:
    env = {**os.environ, "NORMSUITE_CACHE": str(tmp_path / "cache"), "MPLBACKEND": "Agg"}
    env.pop("NORMSUITE_RUN_VERSION", None)
    args = ["--config", str(RECIPE), "--trainer.max_epochs", "200"]
    args += ["--trainer.limit_val_batches", "1", "--data.init_args.num_samples", "600"]
    args += ["--data.init_args.val_size", "100", "--data.init_args.batch_size", "64"]
    args += ["--model.init_args.widths", "[8, 8]", "--model.init_args.strides", "[1, 2]"]
    args += ["--model.init_args.scheduler", "none", "--trainer.callbacks", "[]"]
    args += ["--trainer.enable_progress_bar", "false", "--test_after_fit", "false"]
    args += ["--runs_dir", str(tmp_path / "runs"), "--run_name", "sig"]
    cmd = [sys.executable, "-m", "normsuite.cli.main", "fit", *args]
    # The child must start with Ctrl+C at its default: a process that inherits SIGINT
    # ignored (a background job, or a test worker after Lightning's
    # _destroy_dist_connection, which sets SIG_IGN for a moment) keeps ignoring it, as
    # POSIX says, and normsuite leaves such a disposition alone.
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    checkpoints = tmp_path / "runs" / "sig" / "version_0" / "checkpoints"
    deadline = time.monotonic() + 300
    while not (checkpoints / "last.ckpt").is_file():  # training is under way
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.2)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == code, err[-3000:]
    assert "Traceback" not in err
    last_line = err.strip().splitlines()[-1]
    name = signal.Signals(signum).name
    assert last_line.startswith(f"normsuite fit: {name}: stopped at epoch "), err[-3000:]
    ckpt = checkpoints / "last.ckpt"
    assert f"checkpoint {ckpt}; resume with: normsuite fit " in last_line
    saved = verify_checkpoint(ckpt)
    step = saved["global_step"]
    assert 0 < step < 200 * 5
    # The printed command, as a user would paste it (plus a shorter run for the test).
    resume = shlex.split(last_line.split("resume with: ", 1)[1])
    assert resume[:2] == ["normsuite", "fit"] and resume[-2:] == ["--ckpt_path", str(ckpt)]
    epochs = saved["epoch"] + 2
    again = [sys.executable, "-m", "normsuite.cli.main", *resume[1:]]
    again += ["--trainer.max_epochs", str(epochs)]
    done = subprocess.run(again, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resuming {ckpt}" in done.stderr
    final = verify_checkpoint(tmp_path / "runs" / "sig" / "version_1" / "checkpoints" / "last.ckpt")
    assert final["epoch"] == epochs - 1 and final["global_step"] > step
