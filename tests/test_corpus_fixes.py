"""``--fix`` on real code: every fixed file parses and has no new finding (issue 13).

Runs on the fetched repositories of the corpus named by ``NORMSUITE_CORPUS`` (a folder with
``repos/``); skipped where there is none (CI). Works on a copy: the corpus is read-only.
"""

from __future__ import annotations

import ast
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

from normsuite.analysis.fixes import fix_source
from normsuite.analysis.runner import analyze_paths, analyze_text
from normsuite.analysis.types import AnalysisOptions

CORPUS = os.environ.get("NORMSUITE_CORPUS")

pytestmark = pytest.mark.skipif(
    not CORPUS or not (Path(CORPUS) / "repos").is_dir(), reason="NORMSUITE_CORPUS not set"
)


def test_unsafe_fixes_over_the_corpus_repositories_parse_and_add_no_finding(
    tmp_path: Path,
) -> None:
    assert CORPUS is not None
    root = tmp_path / "repos"
    shutil.copytree(Path(CORPUS) / "repos", root, ignore=shutil.ignore_patterns("*.ipynb"))
    options = AnalysisOptions()
    results = [r for r in analyze_paths([str(root)], options, jobs=1) if r.findings]
    fixed = 0
    for result in results:
        source = Path(result.path).read_text(encoding="utf-8")

        def check(text: str, path: str = result.path) -> list:
            return analyze_text(text, path, options).findings

        text, applied = fix_source(source, result.findings, check, unsafe=True)
        if not applied:
            continue
        fixed += len(applied)
        ast.parse(text)
        before = Counter((f.code, f.line) for f in result.findings)
        after = Counter((f.code, f.line) for f in check(text))
        assert not after - before, result.path
        assert len(text.splitlines()) == len(source.splitlines())
    assert fixed > 0  # the corpus has fixable findings (PyTorch-GAN's BatchNorm2d(C, 0.8))
