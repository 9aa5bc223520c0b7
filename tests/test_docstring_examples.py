"""The examples in the analyzer's docstrings run and print what they say.

Only ``normsuite.analysis`` and ``normsuite.advice`` (pure Python, no torch import): their
docstrings are the reference a contributor reads first, so a stale example is a bug.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import normsuite.advice
import normsuite.analysis


def _modules() -> list[str]:
    names = ["normsuite.advice"]
    for info in pkgutil.walk_packages(normsuite.analysis.__path__, "normsuite.analysis."):
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} docstring example(s) failed (see above)"
