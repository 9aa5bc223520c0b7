"""NRM007 after the analyzer branches met: classes of false findings read on timm and
transformers (EfficientFormer, FastViT, NextViT, SwiftFormer, TinyViT, LeViT), each with a
control that must still fire."""

from __future__ import annotations

from normsuite.analysis.analyze import analyze_source
from normsuite.analysis.types import AnalysisOptions

CELL = """
import torch.nn as nn


class Cell(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.bn = nn.BatchNorm1d(8)

    def forward(self, x, h):
        return self.bn(self.fc(x) + h)
"""

# timm's forward_intermediates: a loop over stages chains them over depth
DEPTH_CHAIN = CELL + """

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stages = nn.ModuleList([Cell(), Cell()])

    def forward_intermediates(self, x):
        stages = self.stages
        for i, stage in enumerate(stages):
            x = stage(x)
        return x


def run(x):
    stage = Cell()
    for _ in range(3):
        x = stage(x)
    return x
"""

# the control: a cell stepped over time with its state fed back
STEPPED = CELL + """

def run(xs, h):
    cell = Cell()
    for t in range(len(xs)):
        h = cell(xs[t], h)
    return h
"""


def _nrm007(source: str) -> list[int]:
    result = analyze_source(source, "m.py", AnalysisOptions())
    return [f.line for f in result.findings if f.code == "NRM007"]


def test_a_chain_over_depth_is_not_recurrence() -> None:
    assert _nrm007(DEPTH_CHAIN) == []
    assert _nrm007(STEPPED) == [9]  # the BN inside the stepped cell


HYBRID_BLOCK = """
import torch.nn as nn


class PooledAttention(nn.Module):
    def __init__(self, dim=64):
        super().__init__()
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.sr = nn.AvgPool1d(4, 4)
        self.norm = nn.BatchNorm1d(dim)

    def forward(self, x):
        q = self.q(x)
        x = self.norm(self.sr(x.transpose(1, 2))).transpose(1, 2)
        k, v = self.k(x), self.v(x)
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        return attn @ v
"""

VISION_HYBRID = HYBRID_BLOCK + """

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 64, 3, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(64)
        self.attn = PooledAttention(64)

    def forward(self, x):
        x = self.bn(self.stem(x)).flatten(2).transpose(1, 2)
        return self.attn(x)
"""

TOKEN_MODEL = HYBRID_BLOCK + """

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(100, 64)
        self.attn = PooledAttention(64)

    def forward(self, ids):
        return self.attn(self.embed(ids))
"""


def test_bn_on_tokens_of_a_vision_hybrid_is_its_design() -> None:
    assert _nrm007(VISION_HYBRID) == []  # NextViT's E-MHSA: BN kept (D7)
    assert _nrm007(TOKEN_MODEL) == [12]  # the same block in a text model: BN on tokens
