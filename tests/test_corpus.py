"""The analyzer on real code: every project of the corpus (bench/build_corpus.py builds it
outside git) is analyzed with 0 internal errors. Skipped when NORMSUITE_CORPUS is unset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from normsuite.analysis.runner import analyze_paths

CORPUS = os.environ.get("NORMSUITE_CORPUS")
pytestmark = pytest.mark.skipif(not CORPUS, reason="set NORMSUITE_CORPUS to a built corpus")


def _projects() -> list[Path]:
    if not CORPUS:
        return []
    root = Path(CORPUS)
    return sorted(
        p
        for sub in ("src", "repos")
        if (root / sub).is_dir()
        for p in (root / sub).iterdir()
        if p.is_dir()
    )


@pytest.mark.parametrize("project", _projects(), ids=lambda p: p.name)
def test_no_internal_errors(project: Path) -> None:
    results = analyze_paths([str(project)])
    assert results, f"no files in {project}"
    internal = [f"{r.path}: {r.error}" for r in results if r.error and "internal error" in r.error]
    assert internal == []
    # every batch the analyzer reports says where it came from
    for r in results:
        for m in r.models:
            b = m.batch_size
            unknown = b.source.split(";")[0]
            assert (b.per_device is None) == (
                unknown == "unknown" or unknown.startswith("unknown: ")
            ), b
