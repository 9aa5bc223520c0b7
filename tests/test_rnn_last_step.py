"""BatchNorm1d on one vector per sequence (the last step or final hidden state of an RNN)
is BN on (N, C) features (B11), however the vector is taken; check and recommend agree."""

from __future__ import annotations

import pytest

from normsuite.analysis.analyze import analyze_source
from normsuite.analysis.types import AnalysisOptions

HEAD = """\
import torch
import torch.nn as nn


class Clf(nn.Module):
    def __init__(self, hid=64):
        super().__init__()
        self.rnn = nn.{rnn}(40, hid, num_layers=2{first})
        self.bn = nn.BatchNorm1d({width})
        self.fc = nn.Linear({width}, 5)

    def forward(self, x):
{body}
        return self.fc(self.bn(last))
"""

CASES = {
    "final hidden state h_n[-1]": (
        "LSTM",
        True,
        "hid",
        "        _, (h_n, _) = self.rnn(x)\n        last = h_n[-1]",
    ),
    "both directions' states": (
        "GRU",
        True,
        "2 * hid",
        "        _, h = self.rnn(x)\n        last = torch.cat([h[-2], h[-1]], dim=1)",
    ),
    "time-first out[-1]": (
        "GRU",
        False,
        "hid",
        "        out, _ = self.rnn(x)\n        last = out[-1]",
    ),
    "out.select(1, -1)": (
        "LSTM",
        True,
        "hid",
        "        out, _ = self.rnn(x)\n        last = out.select(1, -1)",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bn_on_one_vector_per_sequence_is_kept_at_a_large_batch(case: str) -> None:
    rnn, batch_first, width, body = CASES[case]
    if case == "both directions' states":
        first = ", batch_first=True, bidirectional=True"
    else:
        first = ", batch_first=True" if batch_first else ""
    source = HEAD.format(rnn=rnn, first=first, width=width, body=body)
    result = analyze_source(source, "clf.py", AnalysisOptions(batch_size=64))
    assert not result.findings  # no NRM007: not inside the recurrence
    (model,) = result.models
    rec = model.recommendation
    assert rec is not None and rec.norm == "bn" and rec.rules == ["B11"]
    assert rec.layers[0].suggested == rec.layers[0].current


def test_bn_on_the_whole_time_first_sequence_is_not_a_feature() -> None:
    """out (T, N, C) itself is a sequence, not one vector: no B11 'keep' for it."""
    body = "        out, _ = self.rnn(x)\n        last = out"
    source = HEAD.format(rnn="GRU", first="", width="hid", body=body)
    result = analyze_source(source, "clf.py", AnalysisOptions(batch_size=64))
    (model,) = result.models
    assert model.recommendation is not None and model.recommendation.rules != ["B11"]
