"""Bounded YAML for `normsuite fit` configs: size cap, alias cap, expanded-size cap, fifo.

Before: `normsuite fit` on a 342-byte alias bomb grew to 4.5 GB before a memory limit
stopped it. Each cap now fails in one line naming the cap and the variable that raises it.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from normsuite.cli.main import app
from typer.testing import CliRunner

from normsuite._yaml_limits import (
    ALIAS_ENV,
    NODES_ENV,
    SIZE_ENV,
    YAMLLimitError,
    load_yaml,
    load_yaml_text,
)

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "mnist1d_convnet1d_bn.yaml"
runner = CliRunner()


def _bomb(levels: int = 9, width: int = 9) -> str:
    """The classic "billion laughs": width**levels leaves from levels*width aliases."""
    names = "abcdefghijklmnop"
    text = f"{names[0]}: &{names[0]} [" + ", ".join(['"lol"'] * width) + "]\n"
    for prev, name in itertools.pairwise(names[: levels + 1]):
        text += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * width) + "]\n"
    return text


def _one_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_aliases_that_expand_a_little_are_fine() -> None:
    data = load_yaml_text("base: &b {lr: 0.1, wd: 0.01}\nfine: *b\nother: *b\n", "ok.yaml")
    assert data["fine"] == data["other"] == {"lr": 0.1, "wd": 0.01}
    # 4**5 = 1024 leaves: well under the cap.
    assert len(str(load_yaml_text(_bomb(levels=4, width=4), "small.yaml"))) > 1000


def test_billion_laughs_is_refused_by_the_expanded_size_cap() -> None:
    text = _bomb()  # 90 aliases, under the alias cap, 9**10 nodes expanded
    assert len(text) < 500
    with pytest.raises(YAMLLimitError) as err:
        load_yaml_text(text, "bomb.yaml")
    message = str(err.value)
    assert message.startswith("bomb.yaml: expands to more than 1,000,000 YAML nodes")
    assert f"{NODES_ENV}=<count>" in message and "\n" not in message


def test_the_caps_can_be_raised_and_lowered(monkeypatch) -> None:
    text = _bomb(levels=5, width=9)  # about 9**6 = 531k nodes: under the default cap
    load_yaml_text(text, "mid.yaml")
    monkeypatch.setenv(NODES_ENV, "1000")
    with pytest.raises(YAMLLimitError, match="more than 1,000 YAML nodes"):
        load_yaml_text(text, "mid.yaml")
    monkeypatch.setenv(ALIAS_ENV, "10")
    with pytest.raises(YAMLLimitError, match=f"more than 10 YAML aliases.*{ALIAS_ENV}"):
        load_yaml_text(text, "mid.yaml")


def test_recursive_alias_and_deep_nesting_are_one_line() -> None:
    with pytest.raises(YAMLLimitError, match="refers to a node that contains it"):
        load_yaml_text("a: &a [1, *a]\n", "rec.yaml")
    with pytest.raises(YAMLLimitError, match="nested too deeply"):
        load_yaml_text("[" * 50_000, "deep.yaml")


def test_size_cap_is_checked_before_reading(tmp_path: Path, monkeypatch) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("x: 1\n" * 1000)
    monkeypatch.setenv(SIZE_ENV, "1024")
    with pytest.raises(YAMLLimitError) as err:
        load_yaml(big)
    assert "5,000 bytes, over the config size cap of 1,024 bytes" in str(err.value)
    assert f"{SIZE_ENV}=<bytes>" in str(err.value)
    monkeypatch.setenv(SIZE_ENV, "10000")
    assert load_yaml(big) == {"x": 1}


def test_fit_refuses_an_alias_bomb_in_one_line(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_bomb() + "trainer: {max_epochs: 1}\n")
    line = _one_line(runner.invoke(app, ["fit", "--config", str(bomb)]))
    assert line.startswith(f"normsuite fit: {bomb}: expands to more than") and NODES_ENV in line


def test_fit_refuses_an_alias_bomb_in_an_option_value() -> None:
    value = "{" + _bomb().replace("\n", ", ").rstrip(", ") + "}"
    args = ["fit", "--config", str(RECIPE), "--trainer.callbacks", value]
    line = _one_line(runner.invoke(app, args))
    assert "value of --trainer.callbacks: expands to more than" in line


def test_fit_size_cap_names_the_variable(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(SIZE_ENV, "100")
    line = _one_line(runner.invoke(app, ["fit", "--config", str(RECIPE)]))
    assert "over the config size cap of 100 bytes" in line and SIZE_ENV in line


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no fifos on this platform")
def test_fit_on_a_fifo_config_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    # A writer that would unblock a reader, so a regression fails instead of hanging CI.
    writer = threading.Thread(target=lambda: fifo.open("w").close(), daemon=True)
    cmd = [sys.executable, "-m", "normsuite.cli.main", "fit", "--config", str(fifo)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    finally:
        writer.start()
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"normsuite fit: {fifo}: not a regular file; pass a YAML file"
