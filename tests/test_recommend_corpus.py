"""The reviewed corpus (bench/recommend_corpus.py) still gets the reviewed answers, >= 90% of
the recommendations given were judged right, and none judged wrong is "high". Skipped where
the corpus is absent (CI): set NORMSUITE_CORPUS to run it."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

CORPUS = os.environ.get("NORMSUITE_CORPUS")
pytestmark = pytest.mark.skipif(
    not CORPUS or not Path(CORPUS).is_dir(), reason="NORMSUITE_CORPUS not set"
)


def _bench():
    path = Path(__file__).parent.parent / "bench" / "recommend_corpus.py"
    spec = importlib.util.spec_from_file_location("recommend_corpus", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reviewed_models_still_get_the_reviewed_answers() -> None:
    bench = _bench()
    now = bench.current(Path(CORPUS))
    changed = [
        (j.path, j.model, (j.norm, j.confidence), now.get((j.path, j.model)))
        for j in (*bench.JUDGED, *bench.HELD_OUT)
        if now.get((j.path, j.model)) != (j.norm, j.confidence)
    ]
    assert not changed


@pytest.mark.parametrize("which", ["JUDGED", "HELD_OUT"])
def test_review_meets_the_goal(which: str) -> None:
    bench = _bench()
    s = bench.summary(getattr(bench, which))
    assert s["models"] >= 40
    assert s["right"] / s["given"] >= 0.9
    assert s["wrong_high"] == 0
