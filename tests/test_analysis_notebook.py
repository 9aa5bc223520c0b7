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


def test_notebook_json_under_a_python_name_is_an_error_not_a_pass(tmp_path: Path) -> None:
    """A notebook saved as train.py parses as a dict literal: it was 'All checks passed'."""
    nb = _notebook(
        tmp_path / "train.py",
        ("code", "import torch.nn as nn\nbn = nn.GroupNorm(3, 10)\n"),
    )
    out = runner.invoke(app, ["check", str(nb)])
    assert out.exit_code == 2 and "Traceback" not in out.output
    assert "a Jupyter notebook's JSON, not Python: name it .ipynb" in out.output
    # a Python file holding a dict literal is Python
    data = tmp_path / "data.py"
    data.write_text('{"cells": [], "meta": 1}\n')
    assert runner.invoke(app, ["check", str(data)]).exit_code == 0


def test_batch_source_is_a_cell_position(tmp_path: Path) -> None:
    nb = _notebook(
        tmp_path / "nb.ipynb",
        ("code", "import torch.nn as nn\nfrom torch.utils.data import DataLoader\n"),
        (
            "code",
            "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.conv = nn.Conv2d(3, 8, 3, bias=False)\n"
            "        self.bn = nn.BatchNorm2d(8)\n"
            "    def forward(self, x):\n        return self.bn(self.conv(x))\n",
        ),
        ("code", "model = Net()\nloader = DataLoader(ds, batch_size=1, shuffle=True)\n"),
    )
    (result,) = analyze_paths([str(nb)])
    (nrm005,) = [f for f in result.findings if f.code == "NRM005"]
    assert "(cell 3:line 2 DataLoader(batch_size=1))" in nrm005.message
    assert result.models[0].batch_size.source == "cell 3:line 2 DataLoader(batch_size=1)"
    # a default in one cell, the loader a line further: both places are cell positions
    nb = _notebook(
        tmp_path / "nb2.ipynb",
        ("code", "import torch.nn as nn\nfrom torch.utils.data import DataLoader\nBS = 8\n"),
        (
            "code",
            "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.bn = nn.BatchNorm2d(8)\n    def forward(self, x):\n"
            "        return self.bn(x)\n",
        ),
        (
            "code",
            "def main(bs=BS):\n    net = Net()\n"
            "    loader = DataLoader(ds, batch_size=bs, shuffle=True)\n",
        ),
    )
    (result,) = analyze_paths([str(nb)])
    source = result.models[0].batch_size.source
    assert source == "cell 3:line 1 default 8 -> DataLoader at cell 3:line 3", source


def test_notebook_that_trains_a_model_of_the_package(tmp_path: Path) -> None:
    """train.ipynb imports Net from model.py and trains it at batch 2: model.py's BN gets
    that batch, with the notebook cell as its source."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "model.py").write_text(
        "import torch.nn as nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.conv = nn.Conv2d(3, 32, 3, bias=False)\n"
        "        self.bn = nn.BatchNorm2d(32)\n\n    def forward(self, x):\n"
        "        return self.bn(self.conv(x))\n"
    )
    _notebook(
        tmp_path / "train.ipynb",
        ("code", "import torch\nfrom torch.utils.data import DataLoader\nfrom model import Net\n"),
        ("markdown", "# Train"),
        (
            "code",
            "net = Net()\nopt = torch.optim.SGD(net.parameters(), lr=0.1)\n"
            "for x in DataLoader(ds, batch_size=2, shuffle=True):\n"
            "    net(x).mean().backward()\n    opt.step()\n",
        ),
    )
    from normsuite.analysis import project

    project.clear()
    (result,) = analyze_paths([str(tmp_path / "model.py")])
    (model,) = result.models
    assert model.batch_size.per_device == 2
    assert model.batch_size.source.startswith("train.ipynb:cell 3:line 3")
    assert [f.code for f in result.findings] == ["NRM006"]


def test_help_lines_are_skipped(tmp_path: Path) -> None:
    nb = _notebook(
        tmp_path / "nb.ipynb",
        ("code", "import torch.nn as nn\n??nn.BatchNorm2d\nnn.GroupNorm?\n"),
        ("code", "m = nn.Sequential(nn.Linear(10, 32), nn.BatchNorm1d(32))\n"),
    )
    (result,) = analyze_paths([str(nb)])
    assert result.error is None and [f.code for f in result.findings] == ["NRM001"]


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
