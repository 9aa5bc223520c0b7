"""Notebooks (code cells together, in order, cell-relative positions, magics skipped) and
files that must never be opened (fifos named *.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from normsuite.analysis.runner import analyze_paths

FIX = Path(__file__).parent / "fixtures" / "project"
runner = CliRunner()


def _notebook(path: Path, *cells: tuple[str, str]) -> Path:
    path.write_text(
        json.dumps(
            {
                "cells": [
                    {"cell_type": kind, "metadata": {}, "source": text.splitlines(True)}
                    for kind, text in cells
                ],
                "metadata": {},
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )
    return path


def test_c24_notebook_cells_are_analyzed_with_cell_positions() -> None:
    """GroupNorm(3, 10) in cell 1, line 8: NRM003 there, not "All checks passed"."""
    (result,) = analyze_paths([str(FIX / "c24_notebook.ipynb")])
    assert result.path.endswith("c24_notebook.ipynb:cell 1")
    assert [(f.code, f.line) for f in result.findings] == [("NRM003", 8)]
    out = runner.invoke(app, ["check", str(FIX / "c24_notebook.ipynb")])
    assert out.exit_code == 1
    assert "c24_notebook.ipynb:cell 1:line 8:" in out.output


def test_cells_together_in_order_magics_and_shell_skipped(tmp_path: Path) -> None:
    nb = _notebook(
        tmp_path / "nb.ipynb",
        ("markdown", "# A model"),
        ("code", "!pip install torch\n%matplotlib inline\nimport torch.nn as nn\nC = 16\n"),
        ("code", "%%bash\necho not python (\n"),
        (
            "code",
            "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.conv = nn.Conv2d(3, C, 3)\n        self.bn = nn.BatchNorm2d(C)\n"
            "    def forward(self, x):\n        files = !ls\n"
            "        return self.bn(self.conv(x))\n",
        ),
    )
    (result,) = analyze_paths([str(nb)])
    assert result.error is None
    assert result.path.endswith("nb.ipynb:cell 4")
    (model,) = result.models
    assert model.line == 1 and model.norms_found[0].num_channels == 16  # C from cell 2
    assert [(f.code, f.line) for f in result.findings] == [("NRM001", 4)]


def test_not_python_nor_notebook_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    out = runner.invoke(app, ["check", str(bad)])
    assert out.exit_code == 2
    assert "neither valid Python nor a Jupyter notebook" in out.output
    assert "Traceback" not in out.output
    syntax = tmp_path / "bad.py"
    syntax.write_text('{"cells": [}\n')
    out = runner.invoke(app, ["check", str(syntax)])
    assert out.exit_code == 2 and "syntax error" in out.output


def test_fifo_named_py_is_skipped_never_read(tmp_path: Path) -> None:
    """Alone or inside a folder: a warning, no hang (subprocess with a timeout)."""
    fifo = tmp_path / "pipe.py"
    os.mkfifo(fifo)
    (tmp_path / "ok.py").write_text("x = 1\n")
    for target in (fifo, tmp_path):
        out = subprocess.run(
            [sys.executable, "-m", "normsuite.cli.main", "check", str(target)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "pipe.py: not a regular file" in out.stderr
        assert "Traceback" not in out.stderr
