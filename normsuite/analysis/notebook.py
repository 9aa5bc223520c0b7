"""Jupyter notebooks: the code cells analyzed together, in order, as one program, and the
results placed back in their cells (``nb.ipynb:cell 3`` with the line inside the cell).

IPython magics (``%time``, ``%%bash`` cells) and shell lines (``!pip install``) are not
Python: they become ``pass`` (the line numbers stay), and a cell magic drops its cell.

>>> import json
>>> nb = {"cells": [{"cell_type": "markdown", "source": "# hi"},
...                 {"cell_type": "code", "source": ["!pip install x\\n", "a = 1\\n"]}]}
>>> source = read_notebook(json.dumps(nb), "nb.ipynb")
>>> source.text.splitlines(), source.place(2)
(['pass', 'a = 1', ''], (2, 2))
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

from .types import FileResult, Finding, ModelReport

# Cell magics whose body is still Python.
_PYTHON_CELL_MAGICS = ("%%time", "%%timeit", "%%capture", "%%prun")
_SHELL_ASSIGN = re.compile(r"^(\s*[A-Za-z_][\w.]*\s*=\s*)[!%]")


class NotebookError(ValueError):
    """Not a notebook; ``str()`` is one line saying what to do."""


@dataclass
class NotebookSource:
    text: str  # the code cells joined, magics replaced by ``pass``
    starts: list[tuple[int, int]]  # (first line in text, cell number), in order

    def place(self, line: int) -> tuple[int, int]:
        """(cell number, line in the cell) of a line of :attr:`text`."""
        cell, first = 0, 1
        for start, number in self.starts:
            if start > line:
                break
            cell, first = number, start
        return cell, line - first + 1


def _lines(source: Any) -> list[str]:
    text = "".join(str(s) for s in source) if isinstance(source, list) else str(source or "")
    return text.splitlines()


def _python(line: str) -> str:
    stripped = line.lstrip()
    help_line = (stripped.endswith("?") or stripped.startswith("?")) and " " not in stripped
    if stripped.startswith(("%", "!")) or help_line:  # magics, shell, ``x?`` / ``??x`` help
        indent = line[: len(line) - len(stripped)]
        return indent + "pass"  # keeps an indented block valid and the line numbers
    m = _SHELL_ASSIGN.match(line)  # files = !ls
    return f"{m.group(1)}None" if m else line


def is_notebook_json(text: str) -> bool:
    """A Jupyter notebook's JSON (saved under another name: ``train.py``): it parses as a
    Python dict literal, so without this check it would pass every rule unread."""
    if not text.lstrip().startswith("{") or '"cells"' not in text:
        return False
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and isinstance(data.get("cells"), list) and "nbformat" in data


def read_notebook(text: str, path: str) -> NotebookSource:
    """The code cells of a notebook's JSON as one Python text with a line map."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(
            f"neither valid Python nor a Jupyter notebook (invalid JSON at line {exc.lineno}); "
            "fix or exclude the file"
        ) from None
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        raise NotebookError(
            "neither valid Python nor a Jupyter notebook (no 'cells' list); fix or exclude it"
        )
    out: list[str] = []
    starts: list[tuple[int, int]] = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        lines = _lines(cell.get("source"))
        magic = lines[0].lstrip() if lines else ""
        if magic.startswith("%%") and not magic.startswith(_PYTHON_CELL_MAGICS):
            continue  # %%bash, %%html...: not Python
        starts.append((len(out) + 1, number))
        out.extend(_python(line) for line in lines)
        out.append("")  # cells end their blocks
    return NotebookSource("\n".join(out) + "\n", starts)


def split_result(result: FileResult, nb: NotebookSource) -> list[FileResult]:
    """One result per cell that has models or findings (``nb.ipynb:cell 3``), lines
    inside the cell; the notebook itself when there is nothing (or an error)."""
    if result.error:
        line = result.error_line
        if line is not None:
            cell, inner = nb.place(line)
            return [replace(result, path=f"{result.path}:cell {cell}", error_line=inner)]
        return [result]
    per_cell: dict[int, FileResult] = {}

    def cell_of(line: int) -> tuple[FileResult, int]:
        cell, inner = nb.place(line)
        if cell not in per_cell:
            per_cell[cell] = FileResult(path=f"{result.path}:cell {cell}")
        return per_cell[cell], inner

    for model in result.models:
        target, inner = cell_of(model.line)
        target.models.append(_model_in_cell(model, inner, nb))
    for f in result.findings:
        target, inner = cell_of(f.line)
        target.findings.append(_finding_in_cell(f, inner, nb))
    if not per_cell:
        return [result]
    return [per_cell[c] for c in sorted(per_cell)]


_FILE_LINE = re.compile(r"\bfile:(\d+)|\bline (\d+)")


def _cell_places(text: str, nb: NotebookSource) -> str:
    """``file:23`` and ``line 23`` (lines of the joined cells, in batch sources and
    messages) as ``cell 6:line 4``."""

    def place(m: re.Match[str]) -> str:
        cell, inner = nb.place(int(m.group(1) or m.group(2)))
        return f"cell {cell}:line {inner}"

    return _FILE_LINE.sub(place, text)


def _finding_in_cell(f: Finding, line: int, nb: NotebookSource) -> Finding:
    end = None
    if f.end_line is not None:
        end = nb.place(f.end_line)[1] if nb.place(f.end_line)[0] == nb.place(f.line)[0] else None
    return replace(
        f,
        line=line,
        end_line=end,
        end_col=f.end_col if end else None,
        message=_cell_places(f.message, nb),
    )


def _model_in_cell(model: ModelReport, line: int, nb: NotebookSource) -> ModelReport:
    sites = [replace(s, line=nb.place(s.line)[1]) for s in model.norms_found]
    rec = model.recommendation
    if rec is not None:
        rec = replace(
            rec,
            layers=[replace(s, line=nb.place(s.line)[1]) for s in rec.layers],
            assumptions=[_cell_places(a, nb) for a in rec.assumptions],
        )
    batch = replace(model.batch_size, source=_cell_places(model.batch_size.source, nb))
    return replace(model, line=line, norms_found=sites, recommendation=rec, batch_size=batch)
