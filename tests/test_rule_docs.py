"""Rule pages are tests: the "## Example" of every ``docs/NRMxxx.md`` triggers its rule and
the "## Use instead" does not.

Pages show the lines that matter, ruff style: ``self.x = ...`` lines of a model's
``__init__``, its ``def forward``, module-level lines (a DataLoader, an optimizer), or a
whole module. :func:`assemble` puts them into one module the way the page reads; a "Use
instead" snippet that shows only the changed part (a new ``forward``) keeps the rest of
the example. A page may name the options the example needs on a line
``<!-- check: --batch-size 1 -->``.
"""

from __future__ import annotations

import re
import textwrap

import pytest

from normsuite.analysis.analyze import analyze_source
from normsuite.analysis.catalog import RULES
from normsuite.analysis.report import rule_doc
from normsuite.analysis.types import AnalysisOptions

IMPORTS = (
    "import lightning as L\nimport torch\nimport torch.nn as nn\n"
    "from torch.utils.data import DataLoader\n"
)
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def section(page: str, title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", page, re.S | re.M)
    assert m, f"no '## {title}' section"
    return m.group(1)


def block(page: str, title: str) -> str:
    blocks = BLOCK.findall(section(page, title))
    assert blocks, f"no python block under '## {title}'"
    return blocks[0]


def parts(snippet: str) -> tuple[list[str], list[str], list[str]]:
    """(``self.*`` init lines, ``def forward`` block, module-level lines)."""
    init: list[str] = []
    forward: list[str] = []
    module: list[str] = []
    current = module
    for line in snippet.splitlines():
        if line.startswith("def forward"):
            current = forward
        elif line and not line[0].isspace() and not line.startswith(("#", ")")):
            current = init if line.startswith("self.") else module
        if line.strip() == "...":
            continue
        current.append(line)
    return init, forward, module


def assemble(snippet: str, base: str | None = None) -> str:
    """One analyzable module from a page snippet (``base``: the page's example, whose
    parts a "Use instead" snippet leaves out)."""
    if "class " in snippet:
        return IMPORTS + snippet
    init, forward, module = parts(snippet)
    if base is not None:
        b_init, b_forward, _ = parts(base)
        init = init or b_init
        forward = forward or b_forward
    out = [IMPORTS]
    if init:
        out.append("class Model(nn.Module):\n    def __init__(self):\n        super().__init__()")
        out.append(textwrap.indent("\n".join(init), " " * 8))
        if forward:
            out.append(textwrap.indent("\n".join(forward), " " * 4))
        out.append("model = Model()")
    out.extend(module)
    return "\n".join(out) + "\n"


def options(page: str) -> AnalysisOptions:
    m = re.search(r"<!-- check: (.*?) -->", page)
    if not m:
        return AnalysisOptions()
    args = m.group(1).split()
    values = {
        args[i].lstrip("-").replace("-", "_"): int(args[i + 1]) for i in range(0, len(args), 2)
    }
    return AnalysisOptions(**values)


def codes(source: str, opts: AnalysisOptions) -> list[str]:
    return [f.code for f in analyze_source(source, "page.py", opts).findings]


@pytest.mark.parametrize("code", sorted(RULES))
def test_rule_page_example_triggers_its_rule(code: str) -> None:
    page = rule_doc(code)
    assert page is not None
    source = assemble(block(page, "Example"))
    assert code in codes(source, options(page)), source


@pytest.mark.parametrize("code", sorted(RULES))
def test_rule_page_use_instead_passes(code: str) -> None:
    page = rule_doc(code)
    assert page is not None
    source = assemble(block(page, "Use instead"), base=block(page, "Example"))
    assert code not in codes(source, options(page)), source
    # not silent for want of a model: the fixed example still has one to check
    models = analyze_source(source, "page.py", options(page)).models
    assert models or code == "NRM010", source


def test_assemble_puts_lines_where_the_page_means_them() -> None:
    snippet = "self.bn = nn.BatchNorm2d(8)\n\n\ndef forward(self, x):\n    return self.bn(x)\n"
    snippet += "loader = DataLoader(ds, batch_size=2)\n"
    out = assemble(snippet)
    assert "        self.bn = nn.BatchNorm2d(8)" in out
    assert "    def forward(self, x):\n        return self.bn(x)" in out
    assert out.rstrip().endswith("loader = DataLoader(ds, batch_size=2)")
    # a "Use instead" with only a new forward keeps the example's __init__
    new = assemble("def forward(self, x):\n    return x\n", base=snippet)
    assert "self.bn = nn.BatchNorm2d(8)" in new and "return x" in new
