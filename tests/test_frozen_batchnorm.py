"""A frozen BatchNorm (stored statistics, torchvision.ops.FrozenBatchNorm2d or written by
hand) is a norm site of kind frozenbn, and recommend keeps it at any batch: it computes no
batch statistics (B10), and replacing it would throw the pretrained ones away."""

from __future__ import annotations

import pytest

from normsuite.analysis.analyze import analyze_source
from normsuite.analysis.types import AnalysisOptions

HAND_WRITTEN = """\
import torch
import torch.nn as nn


class FrozenBN(nn.Module):
    def __init__(self, n, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(n))
        self.register_buffer("bias", torch.zeros(n))
        self.register_buffer("running_mean", torch.zeros(n))
        self.register_buffer("running_var", torch.ones(n))

    def forward(self, x):
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)
"""

STEM = """
class Stem(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = {norm}(64)

    def forward(self, x):
        return self.bn1(self.conv1(x)).relu()
"""

IMPORTED = "import torch.nn as nn\nfrom torchvision.ops import FrozenBatchNorm2d\n"


@pytest.mark.parametrize(
    "source",
    [HAND_WRITTEN + STEM.format(norm="FrozenBN"), IMPORTED + STEM.format(norm="FrozenBatchNorm2d")],
)
@pytest.mark.parametrize("batch", [2, 64])
def test_frozen_bn_is_kept_at_any_batch(source: str, batch: int) -> None:
    result = analyze_source(source, "stem.py", AnalysisOptions(batch_size=batch))
    (stem,) = [m for m in result.models if m.name == "Stem"]
    assert [s.kind for s in stem.norms_found] == ["frozenbn"]
    rec = stem.recommendation
    assert rec is not None and rec.norm == "frozenbn" and "B10" in rec.rules
    assert rec.layers[0].suggested == rec.layers[0].current  # kept
    assert not [f for f in result.findings if f.code in ("NRM005", "NRM006")]


def test_hand_written_bn_that_updates_its_statistics_is_a_batchnorm() -> None:
    """A branch on self.training: the statistics are learned, so it is a BatchNorm."""
    source = HAND_WRITTEN.replace(
        "        scale = self.weight",
        "        if self.training:\n            self.running_mean.mul_(0.9)\n"
        "        scale = self.weight",
    ) + STEM.format(norm="FrozenBN")
    result = analyze_source(source, "stem.py", AnalysisOptions(batch_size=2))
    (stem,) = [m for m in result.models if m.name == "Stem"]
    assert [s.kind for s in stem.norms_found] == ["bn"]
    assert stem.recommendation is not None and stem.recommendation.norm == "gn"
