"""The GPU benchmark scripts self-check on CPU, so an API change cannot silently break them.

They run on a lent GPU only now and then (bench/gpu_check.sh); here their CPU path runs in CI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_syncbn_bench_checks_the_sync_path_on_cpu() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_syncbn.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bitwise equal to nn.BatchNorm" in result.stdout
    assert result.stdout.count("matches F.batch_norm") == 2  # float32 and bfloat16
