"""A frozen BatchNorm (stored statistics, torchvision.ops.FrozenBatchNorm2d or written by
hand) is a norm site of kind frozenbn, and recommend keeps it at any batch: it computes no
batch statistics (B10), and replacing it would throw the pretrained ones away."""

from __future__ import annotations

from pathlib import Path

import pytest

from normsuite.analysis.analyze import analyze_source
from normsuite.analysis.runner import analyze_paths
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


NEW_NECK_ON_PRETRAINED = """
import timm
import torch
import torch.nn as nn
from torch.utils.data import DataLoader


class SegModel(nn.Module):
    def __init__(self, num_classes=19):
        super().__init__()
        self.encoder = timm.create_model("resnet18", features_only=True, pretrained=True)
        self.neck = nn.Sequential(nn.Conv2d(512, 256, 1, bias=False), nn.BatchNorm2d(256))
        self.head = nn.Conv2d(256, num_classes, 1)

    def forward(self, x):
        return self.head(self.neck(self.encoder(x)[-1]))


model = SegModel()
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
for x, y in DataLoader(ds, batch_size=4):
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
"""


def test_a_new_bn_beside_a_pretrained_backbone_is_not_frozen() -> None:
    """B10 freezes pretrained statistics; a freshly initialized neck BN has none (a frozen
    new BN is a fixed identity that never learns): GN at batch 4, in recommend and NRM006."""
    from normsuite.analysis.analyze import analyze_source
    from normsuite.analysis.types import AnalysisOptions

    result = analyze_source(NEW_NECK_ON_PRETRAINED, "m.py", AnalysisOptions())
    rec = result.models[0].recommendation
    assert rec.norm == "frozenbn"
    by_site = {s.site: s.suggested for s in rec.layers}
    assert "frozenbn" in by_site["encoder"]
    assert by_site["neck.1"] == "nn.GroupNorm(32, 256)"
    (neck,) = [f for f in result.findings if f.code == "NRM006" and f.line == 12]
    assert "GroupNorm(32, 256)" in neck.message and "Frozen" not in neck.message


NORM_EVAL_BACKBONE = """
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


class Backbone(nn.Module):
    def __init__(self, norm_eval={norm_eval}):
        super().__init__()
        self.norm_eval = norm_eval
        self.conv = nn.Conv2d(3, 64, 3, bias=False)
        self.bn = nn.BatchNorm2d(64)

    def forward(self, x):
        return self.bn(self.conv(x))

    def train(self, mode=True):
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
"""


@pytest.mark.parametrize("norm_eval, kind", [("True", "frozenbn"), ("False", "bn")])
def test_norm_eval_backbones_keep_bn_frozen(norm_eval: str, kind: str) -> None:
    """OpenMMLab's norm_eval=True: train() puts every BN back in eval mode, so BN never
    sees the batch (B10): a frozen BN, no NRM006, kept. norm_eval=False: a plain BN."""
    source = NORM_EVAL_BACKBONE.format(norm_eval=norm_eval)
    result = analyze_source(source, "m.py", AnalysisOptions(batch_size=2))
    assert [s.kind for s in result.models[0].norms_found] == [kind]
    assert ("NRM006" in [f.code for f in result.findings]) == (kind == "bn")


BN_EVAL_SCRIPT = """
import torch
import torch.nn as nn
from torch.utils.data import DataLoader


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, bias=False)
        self.bn = nn.BatchNorm2d(64)

    def forward(self, x):
        return self.bn(self.conv(x)).mean()


model = Net()
model.train()
for m in model.modules():
    if isinstance(m, nn.BatchNorm2d):
        m.eval()
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for x in DataLoader(ds, batch_size=2):
    opt.zero_grad()
    model(x).backward()
    opt.step()
"""


def test_a_script_that_trains_with_bn_in_eval_mode() -> None:
    """Fine-tuning at batch 2 after putting every BN in eval mode: frozen statistics, kept
    (it was NRM006 and "gn, high", which would throw the pretrained statistics away)."""
    result = analyze_source(BN_EVAL_SCRIPT, "m.py", AnalysisOptions())
    (model,) = result.models
    assert model.batch_size.per_device == 2
    assert [s.kind for s in model.norms_found] == ["frozenbn"]
    assert result.findings == [] and model.recommendation.norm == "frozenbn"


FROZEN_BACKBONE_GN_HEAD = """
import torch.nn as nn
from torchvision.ops import FrozenBatchNorm2d


class Detector(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), FrozenBatchNorm2d(64))
        self.head = nn.Sequential(nn.Conv2d(64, 256, 3, padding=1), nn.GroupNorm(32, 256))

    def forward(self, x):
        return self.head(self.stem(x))
"""


@pytest.mark.parametrize("batch", [2, 32])
def test_frozen_bn_beside_another_norm_kind_is_kept(batch: int) -> None:
    """torchvision's FCOS/RetinaNet: a FrozenBN backbone and a GN head. The frozen sites
    stay at any batch (they became GroupNorm at 2 and BatchNorm2d at 32)."""
    result = analyze_source(FROZEN_BACKBONE_GN_HEAD, "m.py", AnalysisOptions(batch_size=batch))
    rec = result.models[0].recommendation
    stem = next(s for s in rec.layers if s.site == "stem.1")
    assert stem.suggested == stem.current
    assert "B10" in rec.rules


SEGMENTER = """
import torch.nn as nn


class Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 64, 3, bias=False), nn.BatchNorm2d(64))

    def forward(self, x):
        return self.body(x)


class Segmenter(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = Backbone()
        self.head = nn.Sequential(nn.Conv2d(64, 64, 3, bias=False), nn.BatchNorm2d(64))

    def forward(self, x):
        return self.head(self.backbone(x))
"""

FINETUNE = """
import torch
from torch.utils.data import DataLoader

from model import Segmenter
from engine import train_one_epoch

model = Segmenter()
loader = DataLoader(dataset, batch_size=2, shuffle=True)
opt = torch.optim.SGD(model.head.parameters(), lr=0.01)
for epoch in range(20):
    model.train()
    model.backbone.eval()
    for x, y in loader:
        loss = model(x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
"""


@pytest.mark.parametrize(
    ("script", "flagged"),
    [
        # the backbone stays in eval mode while the head trains at batch 2: its BN is frozen
        (FINETUNE, [18]),
        # train() after eval() puts the backbone back in train mode every epoch
        (
            FINETUNE.replace(
                "    model.train()\n    model.backbone.eval()\n",
                "    model.backbone.eval()\n    model.train()\n",
            ),
            [8, 18],
        ),
        # a helper handed the model after the eval() may call model.train()
        (
            FINETUNE.replace(
                "    for x, y in loader:",
                "    train_one_epoch(model, loader)\n    for x, y in loader:",
            ),
            [8, 18],
        ),
    ],
)
def test_a_submodule_the_script_keeps_in_eval_mode_has_frozen_bn(
    tmp_path: Path, script: str, flagged: list[int]
) -> None:
    """Fine-tuning a head on a frozen backbone (``model.train(); model.backbone.eval()``):
    only the head's BN sees the batch of 2 (NRM006 fired on the backbone too, and
    recommend turned the backbone's BN into GroupNorm)."""
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "model.py").write_text(SEGMENTER)
    (tmp_path / "finetune.py").write_text(script)
    results = analyze_paths([str(tmp_path)], jobs=1)
    lines = [f.line for r in results for f in r.findings if f.code == "NRM006"]
    assert sorted(lines) == flagged


SET_BN_EVAL = (
    BN_EVAL_SCRIPT.partition("\nmodel = Net()")[0]
    + """
def set_bn_eval(m):
    if m.__class__.__name__.find("BatchNorm") != -1:
        m.eval()


net = Net()
opt = torch.optim.SGD(net.parameters(), lr=0.01)
for x in DataLoader(data, batch_size=2):
    FREEZE
    net(x).backward()
    opt.step()
"""
)

LOOP = "for m in net.modules():\n        if isinstance(m, nn.BatchNorm2d):\n            m.eval()"


@pytest.mark.parametrize(
    ("freeze", "frozen"),
    [
        ("net.train()\n    net.apply(set_bn_eval)", True),  # Faster R-CNN's set_bn_eval
        (f"net.train()\n    {LOOP}", True),  # the isinstance loop inside the training loop
        ("net.apply(set_bn_eval)\n    net.train()", False),  # train() undoes it every step
    ],
)
def test_bn_put_in_eval_inside_the_training_loop_is_frozen(freeze: str, frozen: bool) -> None:
    """``net.train(); net.apply(set_bn_eval)`` every step keeps BN on stored statistics:
    NRM006 and "gn, high" at batch 2 were wrong; only a freeze before the loop was seen."""
    source = SET_BN_EVAL.replace("FREEZE", freeze)
    result = analyze_source(source, "m.py", AnalysisOptions())
    assert bool([f for f in result.findings if f.code == "NRM006"]) is not frozen
    (net,) = result.models
    assert [s.kind for s in net.norms_found] == ["frozenbn" if frozen else "bn"]


def test_a_training_script_of_another_file_that_applies_set_bn_eval(tmp_path: Path) -> None:
    model, _, script = SET_BN_EVAL.partition("\n\ndef set_bn_eval")
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "model.py").write_text(model)
    script = "from model import Net\n" + "\n\ndef set_bn_eval" + script
    script = "import torch\nfrom torch.utils.data import DataLoader\n" + script
    (tmp_path / "train.py").write_text(
        script.replace("FREEZE", "net.train()\n    net.apply(set_bn_eval)")
    )
    (result,) = analyze_paths([str(tmp_path / "model.py")], jobs=1)
    assert result.models[0].batch_size.per_device == 2
    assert [f.code for f in result.findings if f.code == "NRM006"] == []
