"""Classes of false findings read on the corpus after the analyzer branches met, each with a
control that must still fire: NRM007 on timm/transformers vision hybrids (EfficientFormer,
FastViT, NextViT, SwiftFormer, TinyViT, LeViT), NRM010 on a script that may train a model
without norms (word_language_model), NRM013 on MetaFormer-style pre-norms (LowFormer, SHViT)."""

from __future__ import annotations

import pytest

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
DEPTH_CHAIN = (
    CELL
    + """

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
)

# the control: a cell stepped over time with its state fed back
STEPPED = (
    CELL
    + """

def run(xs, h):
    cell = Cell()
    for t in range(len(xs)):
        h = cell(xs[t], h)
    return h
"""
)


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

VISION_HYBRID = (
    HYBRID_BLOCK
    + """

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
)

TOKEN_MODEL = (
    HYBRID_BLOCK
    + """

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(100, 64)
        self.attn = PooledAttention(64)

    def forward(self, ids):
        return self.attn(self.embed(ids))
"""
)


def test_bn_on_tokens_of_a_vision_hybrid_is_its_design() -> None:
    assert _nrm007(VISION_HYBRID) == []  # NextViT's E-MHSA: BN kept (D7)
    assert _nrm007(TOKEN_MODEL) == [12]  # the same block in a text model: BN on tokens


def test_nrm010_silent_when_one_model_the_script_may_train_has_no_norms(tmp_path) -> None:
    # word_language_model: RNNModel (no norms) or TransformerModel (LayerNorms) by a flag
    from normsuite.analysis.runner import analyze_paths

    models = "import torch.nn as nn\n\n\nclass RNNModel(nn.Module):\n    def __init__(self):\n"
    models += "        super().__init__()\n        self.rnn = nn.LSTM(8, 8)\n\n\n"
    models += "class TransformerModel(nn.Module):\n    def __init__(self):\n"
    models += "        super().__init__()\n        self.norm = nn.LayerNorm(8)\n"
    (tmp_path / "model.py").write_text(models)
    train = "import sys\nimport torch\nimport model\n\n"
    train += "if sys.argv[1] == 'Transformer':\n    net = model.TransformerModel()\n"
    train += "else:\n    net = model.RNNModel()\n"
    train += "opt = torch.optim.AdamW(net.parameters(), lr=1e-3)\n"
    (tmp_path / "train.py").write_text(train)
    (result,) = analyze_paths([str(tmp_path / "train.py")])
    assert [f.code for f in result.findings] == []
    # the control: the only model it can train has norms
    only_transformer = train.replace("model.RNNModel()", "model.TransformerModel()")
    (tmp_path / "train.py").write_text(only_transformer)
    (result,) = analyze_paths([str(tmp_path / "train.py")])
    assert [(f.code, f.line) for f in result.findings] == [("NRM010", 9)]


PRE_NORM = """
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.mix = nn.Sequential(nn.GroupNorm(1, c), nn.Conv2d(c, c, 3, padding=1))
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.norm = nn.GroupNorm(1, c)

    def forward(self, x):
        x = x + self.mix(x)
        return self.norm(self.conv(x))


class Net(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, bias=False)
        self.block = Block(32)
        self.head = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.head(self.block(self.stem(x)).mean((2, 3)))
"""


def test_nrm013_not_on_a_pre_norm_at_the_head_of_a_block() -> None:
    result = analyze_source(PRE_NORM, "m.py", AnalysisOptions())
    # the GroupNorm(1, C) that opens `mix` is a MetaFormer pre-norm; the one after a conv is B5
    assert [(f.code, f.line) for f in result.findings if f.code == "NRM013"] == [("NRM013", 10)]


DETECTOR = """
import torch
import torch.nn as nn
from torchvision.models.detection import fasterrcnn_resnet50_fpn


class Detector(nn.Module):
    def __init__(self, backbone=None):
        super().__init__()
        if backbone is None:
            self.model = fasterrcnn_resnet50_fpn()
        else:
            self.model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8))

    def configure_optimizers(self):
        return torch.optim.SGD(self.model.parameters(), lr=0.1, weight_decay=1e-4)
"""


def test_nrm010_counts_the_norms_of_the_configured_model_only() -> None:
    # lightning-bolts' Faster R-CNN: the default builds torchvision's detector (FrozenBN
    # buffers); a BN backbone exists only when a caller passes one
    result = analyze_source(DETECTOR, "m.py", AnalysisOptions())
    assert [f.code for f in result.findings if f.code == "NRM010"] == []
    swapped = DETECTOR.replace("if backbone is None:", "if backbone is not None:")
    result = analyze_source(swapped, "m.py", AnalysisOptions())
    assert [(f.code, f.line) for f in result.findings if f.code == "NRM010"] == [("NRM010", 16)]


GAN_PAIR = """
import torch
import torch.nn as nn


class G(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.ConvTranspose2d(100, 64, 4, bias=False), nn.BatchNorm2d(64))

    def forward(self, z):
        return self.net(z)


class D(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 64, 4, 2, 1), nn.LeakyReLU(0.2))

    def forward(self, x):
        return self.net(x)


netG = G().to("cuda")
netD = D().to("cuda")
optG = torch.optim.Adam(netG.parameters(), lr=2e-4, weight_decay=1e-5)
optD = torch.optim.Adam(netD.parameters(), lr=2e-4, weight_decay=1e-5)
"""


def test_nrm010_only_on_the_optimizer_of_the_model_with_norms() -> None:
    """Each model of the file has its own optimizer: the norm-free critic's is silent."""
    result = analyze_source(GAN_PAIR, "gan.py", AnalysisOptions())
    opt_g = GAN_PAIR.splitlines().index(next(x for x in GAN_PAIR.splitlines() if "optG" in x))
    assert [(f.code, f.line) for f in result.findings if f.code == "NRM010"] == [
        ("NRM010", opt_g + 1)
    ]


FLAG_BLOCK = """
import torch.nn as nn


class ConvBlock(nn.Module):
    def __init__(self, cin, cout, use_bn=False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias={bias})
        self.norm = nn.BatchNorm2d(cout) if use_bn else nn.Identity()

    def forward(self, x):
        return self.norm(self.conv(x)).relu()
"""


def test_nrm001_silent_when_the_bias_already_follows_the_norm_flag() -> None:
    """bias=not use_bn is the fix NRM001 asks for; bias=True is not, and the message
    names the file's own flag (not a made-up use_norm)."""
    fixed = analyze_source(FLAG_BLOCK.format(bias="not use_bn"), "b.py", AnalysisOptions())
    assert [f.code for f in fixed.findings] == []
    wrong = analyze_source(FLAG_BLOCK.format(bias="True"), "b.py", AnalysisOptions())
    (nrm001,) = [f for f in wrong.findings if f.code == "NRM001"]
    assert "(bias=not use_bn)" in nrm001.message


SR_GENERATOR = """
import torch.nn as nn


class SRNet(nn.Module):
    def __init__(self, c=64):
        super().__init__()
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3))
        self.up = nn.Sequential(nn.Conv2d(c, c * 4, 3, padding=1), nn.PixelShuffle(2))
        self.tail = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, x):
        return self.tail(self.up(self.body(self.head(x))))
"""


def test_pixel_shuffle_is_a_layer_and_a_norm_free_sr_net_stays_norm_free() -> None:
    """EDSR/ESRGAN-style super-resolution: sub-pixel upsampling is seen (D8), so a small
    batch does not turn into 'add GroupNorm' for a network built without norms."""
    result = analyze_source(SR_GENERATOR, "sr.py", AnalysisOptions(batch_size=4))
    (model,) = result.models
    assert model.domain is not None and model.domain.startswith("D8")
    assert model.recommendation is None or model.recommendation.norm == "none"


KWARGS_BLOCK = """
import torch.nn as nn


class ConvBN(nn.Module):
    def __init__(self, cin, cout, k, **kwargs):
        super().__init__()
        {setdefault}
        self.conv = nn.Conv2d(cin, cout, k, **kwargs)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x)).relu()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = ConvBN(3, 32, 3, padding=1, bias=False)
        self.b = ConvBN(32, 64, 3, padding=1)

    def forward(self, x):
        return self.b(self.a(x))
"""


def test_nrm001_through_kwargs_points_at_the_call_that_leaves_the_bias_on() -> None:
    """One caller passes bias=False through **kwargs, the other does not: the finding is
    at that other call ('pass bias=False here'), not inside the shared block."""
    result = analyze_source(KWARGS_BLOCK.format(setdefault="pass"), "k.py", AnalysisOptions())
    (nrm001,) = [f for f in result.findings if f.code == "NRM001"]
    assert nrm001.line == 20
    assert "ConvBN takes it from its **kwargs, so pass bias=False here" in nrm001.message


def test_nrm001_silent_when_the_block_defaults_the_bias_off() -> None:
    """kwargs.setdefault("bias", False): every caller that does not say otherwise gets no
    bias."""
    source = KWARGS_BLOCK.format(setdefault='kwargs.setdefault("bias", False)')
    result = analyze_source(source, "k.py", AnalysisOptions())
    assert [f.code for f in result.findings if f.code == "NRM001"] == []


HELPER_FN = """
import torch.nn as nn


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride, 1)


class SegNet(nn.Module):
    def __init__(self, n_cls=21):
        super().__init__()
        self.c1 = conv3x3(3, 64)
        self.b1 = nn.BatchNorm2d(64)
        self.classifier = {head}

    def forward(self, x):
        return self.classifier(self.b1(self.c1(x)).relu())
"""


def test_nrm001_in_a_helper_that_also_builds_the_output_layer_is_not_auto_fixed() -> None:
    """conv3x3() builds a conv before BN and the classifier: bias=False in the helper would
    take the classifier's bias, so the finding asks for a parameter and no fix is offered."""
    from normsuite.analysis.fixes import fixes_for

    shared = HELPER_FN.format(head="conv3x3(64, n_cls)")
    (f,) = analyze_source(shared, "s.py", AnalysisOptions()).findings
    assert f.line == 6 and "also builds `classifier`" in f.message
    assert "give conv3x3 a `bias` parameter" in f.message
    assert fixes_for(shared, [f], unsafe=True) == []
    alone = HELPER_FN.format(head="nn.Conv2d(64, n_cls, 1)")
    (f,) = analyze_source(alone, "s.py", AnalysisOptions()).findings
    assert f.message.endswith("pass bias=False to the Conv2d.")
    assert len(fixes_for(alone, [f], unsafe=True)) == 1


SECOND_CONSUMER = """
import torch.nn as nn


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.bn = nn.BatchNorm1d(32)
        self.fc2 = nn.Linear(32, 8)

    def forward(self, x):
        h = self.fc1(x)
{use}
"""


def test_nrm001_silent_when_the_pre_norm_output_is_also_kept() -> None:
    """The biased output reaches another consumer through a dict or a list: its bias is
    not cancelled there (a05)."""
    uses = {
        "dict": '        return {"z": self.fc2(self.bn(h)), "hidden": h}',
        "list": "        feats = []\n        feats.append(h)\n"
        "        return self.fc2(self.bn(h)), feats",
    }
    for name, use in uses.items():
        result = analyze_source(SECOND_CONSUMER.format(use=use), "h.py", AnalysisOptions())
        assert [f.code for f in result.findings] == [], name
    only = SECOND_CONSUMER.format(use="        return self.fc2(self.bn(h))")
    assert [f.code for f in analyze_source(only, "h.py", AnalysisOptions()).findings] == ["NRM001"]


CLASS_ATTR = """
import torch.nn as nn


class ConvNormAct(nn.Module):
    norm_cls = nn.BatchNorm2d
    expansion = 2

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout * self.expansion, 3, padding=1, bias=False)
        self.norm = self.norm_cls(cout * self.expansion)

    def forward(self, x):
        return self.norm(self.conv(x)).relu()


class Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(ConvNormAct(3, 16), ConvNormAct(32, 32))

    def forward(self, x):
        return self.layers(x)
"""


def test_class_attributes_hold_layer_classes_and_constants() -> None:
    """``norm_cls = nn.BatchNorm2d`` and ``expansion = 2`` at class level, read through
    self: the norm sites are BN with their widths (they were 'norms found: none')."""
    result = analyze_source(CLASS_ATTR, "c.py", AnalysisOptions(batch_size=4))
    (model,) = [m for m in result.models if m.name == "Backbone"]
    assert [(s.kind, s.num_channels) for s in model.norms_found] == [("bn", 32), ("bn", 64)]
    assert {f.code for f in result.findings} == {"NRM006"}


ADD_MODULE_LOOP = """
import torch.nn as nn


class PlainNet(nn.Module):
    def __init__(self, plan):
        super().__init__()
        c = 3
        for i, w in enumerate(plan):
            self.add_module(f"conv{i}", nn.Conv2d(c, w, 3, padding=1))
            self.add_module(f"bn{i}", nn.BatchNorm2d(w))
            c = w

    def forward(self, x):
        for name, m in self.named_children():
            x = m(x)
        return x
"""


def test_add_module_with_unknown_names_keeps_every_layer() -> None:
    """add_module(f"conv{i}", ...) in a loop over an unknown plan: the conv and the BN
    are both seen (they overwrote each other under one 'UNKNOWN' name: architecture
    unknown), and self.named_children() applies them in order: NRM001."""
    result = analyze_source(ADD_MODULE_LOOP, "p.py", AnalysisOptions())
    (model,) = result.models
    assert model.architecture == "cnn2d"
    assert [(f.code, f.line) for f in result.findings] == [("NRM001", 10)]


CONDITIONAL_NORMS = """
import torch.nn as nn


class AdaLayerNorm(nn.Module):
    def __init__(self, dim, cond_dim):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.to_ss = nn.Linear(cond_dim, 2 * dim)

    def forward(self, x, c):
        scale, shift = self.to_ss(c).unsqueeze(1).chunk(2, -1)
        return self.norm(x) * (1 + scale) + shift


class ConditionalBatchNorm2d(nn.Module):
    def __init__(self, num_features, num_classes):
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.embed = nn.Embedding(num_classes, num_features * 2)

    def forward(self, x, y):
        gamma, beta = self.embed(y).chunk(2, 1)
        return self.bn(x) * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
"""


def test_conditional_norm_classes_are_norms_not_models() -> None:
    """adaLN / conditional BN: no advice of their own (AdaLayerNorm was told 'ln, B11' at
    any batch, which contradicts B11)."""
    result = analyze_source(CONDITIONAL_NORMS, "n.py", AnalysisOptions(batch_size=64))
    for model in result.models:
        assert model.recommendation is None
        assert model.abstain is not None and "a conditional norm layer" in model.abstain


INLINE_LSTM = """
import torch
import torch.nn as nn


class BNLSTM(nn.Module):
    def __init__(self, n_in=32, n_hid=64):
        super().__init__()
        self.n_hid = n_hid
        self.wx = nn.Linear(n_in, 4 * n_hid)
        self.wh = nn.Linear(n_hid, 4 * n_hid, bias=False)
        self.bn_hh = nn.BatchNorm1d(4 * n_hid)
        self.fc = nn.Linear(n_hid, 10)

    def forward(self, seq):
        h = seq.new_zeros(seq.size(1), self.n_hid)
        c = seq.new_zeros(seq.size(1), self.n_hid)
        for x_t in seq.unbind(0):
            gates = self.wx(x_t) + self.bn_hh(self.wh(h))
            i, f, g, o = gates.chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        return self.fc(h)
"""

SHARED_CONV = """
import torch.nn as nn


class Refine(nn.Module):
    def __init__(self, c=16, steps=3):
        super().__init__()
        self.steps = steps
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        for _ in range(self.steps):
            x = self.bn(self.conv(x)).relu()
        return x
"""


def test_lstm_written_inline_in_forward_is_a_recurrence() -> None:
    """A Linear on the state the loop carries (h), with an input per step (x_t): rnn, and
    the BN on that path is NRM007 (Cooijmans' BN-LSTM); a conv reused over depth with no
    per-step input is not a recurrence."""
    result = analyze_source(INLINE_LSTM, "l.py", AnalysisOptions())
    (model,) = result.models
    assert model.architecture == "rnn"
    assert [(f.code, f.line) for f in result.findings] == [("NRM007", 12)]
    assert model.recommendation is not None and model.recommendation.norm == "ln"
    result = analyze_source(SHARED_CONV, "r.py", AnalysisOptions(batch_size=32))
    (model,) = result.models
    assert model.architecture == "cnn2d" and not result.findings


STACKED_CELLS = """
import torch
import torch.nn as nn


class CellBN(nn.Module):
    def __init__(self, n_in, n_hid):
        super().__init__()
        self.ih = nn.Linear(n_in, n_hid, bias=False)
        self.hh = nn.Linear(n_hid, n_hid, bias=False)
        self.bn = nn.BatchNorm1d(n_hid)

    def forward(self, x, h):
        return torch.tanh(self.bn(self.ih(x) + self.hh(h)))


class StackedRNN(nn.Module):
    def __init__(self, n_in=40, n_hid=128, layers=2):
        super().__init__()
        self.cells = nn.ModuleList([CellBN(n_hid if i else n_in, n_hid) for i in range(layers)])
        self.n_hid = n_hid

    def forward(self, x):
        h = [x.new_zeros(x.size(1), self.n_hid) for _ in self.cells]
        for t in range(x.size(0)):
            inp = x[t]
            for l, cell in enumerate(self.cells):
                h[l] = cell(inp, h[l])
                inp = h[l]
        return h[-1]
"""


def test_stacked_cells_with_per_layer_state_are_recurrent() -> None:
    """``for l, cell in enumerate(self.cells): h[l] = cell(inp, h[l])`` in the time loop."""
    result = analyze_source(STACKED_CELLS, "s.py", AnalysisOptions())
    (model,) = [m for m in result.models if m.name == "StackedRNN"]
    assert model.architecture == "rnn"
    assert [(f.code, f.line) for f in result.findings] == [("NRM007", 11)]


def test_a_model_with_a_labels_argument_is_not_a_conditional_norm() -> None:
    """forward(x, labels=None) and a LayerNorm without affine: the labels feed a loss, not a
    scale/shift predictor, so it is an MLP with advice (review finding)."""
    source = """
import torch.nn as nn
import torch.nn.functional as F


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.norm = nn.LayerNorm(256, elementwise_affine=False)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x, labels=None):
        out = self.fc2(self.norm(self.fc1(x)).relu())
        return out if labels is None else F.cross_entropy(out, labels)
"""
    (model,) = analyze_source(source, "m.py", AnalysisOptions()).models
    assert model.abstain is None and model.recommendation is not None


def _codes(source: str) -> list[str]:
    return [f.code for f in analyze_source(source, "m.py", AnalysisOptions()).findings]


LINEAR_PROBE = """
import torch
import torchvision

model = torchvision.models.resnet50(weights="IMAGENET1K_V2")
model.fc = torch.nn.Linear(2048, 100)
optimizer = torch.optim.SGD({params}, lr=0.1, momentum=0.9, weight_decay=1e-4)
"""


def test_nrm010_silent_for_a_linear_probe() -> None:
    """Only the new Linear head is optimized: no norm parameter is decayed. The control
    (every parameter) still fires."""
    assert "NRM010" not in _codes(LINEAR_PROBE.format(params="model.fc.parameters()"))
    assert "NRM010" in _codes(LINEAR_PROBE.format(params="model.parameters()"))


PRE_NORM_HIDDEN_STATES = """
import torch.nn as nn


class PatchEmbeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.projection = nn.Conv2d(3, 96, 4, stride=4)
        self.norm = nn.BatchNorm2d(96)

    def forward(self, pixel_values, output_hidden_states=False):
        embeddings = self.projection(pixel_values)
        hidden = self.norm(embeddings)
        all_hidden_states = {use} if output_hidden_states else None
        return hidden, all_hidden_states
"""


def test_nrm001_silent_when_a_conditional_expression_returns_the_pre_norm_output() -> None:
    """``(embeddings,) if output_hidden_states else None``: the conv's output (bias included)
    is a second consumer's, as in the ``if`` statement form."""
    assert "NRM001" not in _codes(PRE_NORM_HIDDEN_STATES.format(use="(embeddings,)"))
    assert "NRM001" not in _codes(PRE_NORM_HIDDEN_STATES.format(use="[e for e in [embeddings]]"))
    assert "NRM001" in _codes(PRE_NORM_HIDDEN_STATES.format(use="(hidden,)"))  # control


POOLED_THEN_1X1 = """
import torch
import torch.nn as nn
from torch.utils.data import DataLoader


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 3, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.proj = nn.Conv2d(32, 64, {kernel}, bias=False)
        self.bn = nn.BatchNorm2d(64)

    def forward(self, x):
        return self.bn(self.proj(self.pool(self.conv(x))))


model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x in DataLoader(ds, batch_size=1):
    optimizer.zero_grad()
    model(x).sum().backward()
    optimizer.step()
"""


def test_nrm005_says_a_bn_on_a_1x1_conv_of_a_pooled_map_raises() -> None:
    """(1, 64, 1, 1) after a 1x1 conv of a pooled map: one value per channel, so PyTorch
    raises "Expected more than 1 value per channel" (the message said "it runs")."""
    (one,) = analyze_source(POOLED_THEN_1X1.format(kernel=1), "m.py", AnalysisOptions()).findings
    assert one.code == "NRM005" and "raises" in one.message


ESPNET_LAYERNORM = """
import torch


class LayerNorm(torch.nn.LayerNorm):
    def __init__(self, nout, dim=-1):
        super(LayerNorm, self).__init__(nout, eps=1e-12)
        self.dim = dim

    def forward(self, x):
        if self.dim == -1:
            return super(LayerNorm, self).forward(x)
        return super(LayerNorm, self).forward(x.transpose(self.dim, -1)).transpose(self.dim, -1)


class Postnet(torch.nn.Module):
    def __init__(self, odim=80, n_chans=512):
        super().__init__()
        self.conv = torch.nn.Conv1d(odim, n_chans, 5, padding=2, bias=False)
        self.norm = LayerNorm(n_chans{dim})

    def forward(self, xs):
        return torch.tanh(self.norm(self.conv(xs)))
"""


def test_espnet_layernorm_is_channel_ln_only_when_built_with_a_dim() -> None:
    """ESPnet's LayerNorm moves the channels last only when ``dim != -1``: with the default
    it is nn.LayerNorm over L of a (B, C, T) conv output (NRM002); with dim=1 a channel LN
    (silent); with a dim the analyzer cannot read, silent."""
    assert _codes(ESPNET_LAYERNORM.format(dim="")) == ["NRM002"]
    assert _codes(ESPNET_LAYERNORM.format(dim=", dim=1")) == []
    assert _codes(ESPNET_LAYERNORM.format(dim=", dim=self.unknown_dim")) == []


CONV_NORM_ACTIVATION = """
import torch.nn as nn


class ConvNormActivation(nn.Sequential):
    def __init__(self, cin, cout, norm_layer=nn.BatchNorm2d):
        layers = [nn.Conv2d(cin, cout, 3, padding=1)]
        if norm_layer is not None:
            layers.append(norm_layer(cout))
        super().__init__(*layers)
"""


def test_nrm001_on_an_optional_norm_asks_for_a_bias_that_follows_it() -> None:
    """torchvision's ConvNormActivation builds its norm only ``if norm_layer is not None``
    (a classifier head passes None and needs the bias): the fix is bias=norm_layer is
    None, and --unsafe-fixes must not write an unconditional bias=False."""
    from normsuite.analysis.fixes import fixes_for

    findings = analyze_source(CONV_NORM_ACTIVATION, "m.py", AnalysisOptions()).findings
    (finding,) = findings
    assert finding.code == "NRM001"
    assert "bias=norm_layer is None" in finding.message
    assert "pass bias=False" not in finding.message
    assert fixes_for(CONV_NORM_ACTIVATION, findings, unsafe=True) == []


FLAG_CHOSEN_NORM = """
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, c=32, batch_norm=True):
        super().__init__()
        CHOICE
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.norm = NORM

    def forward(self, x):
        return self.norm(self.conv(x))
"""


@pytest.mark.parametrize(
    ("choice", "norm"),
    [
        ("pass", "nn.BatchNorm2d(c) if batch_norm else nn.Identity()"),
        ("norm = nn.BatchNorm2d if batch_norm else nn.Identity", "norm(c)"),
        (
            "if batch_norm:\n            norm = nn.BatchNorm2d\n        else:\n"
            "            norm = nn.Identity",
            "norm(c)",
        ),
    ],
)
def test_nrm001_on_a_norm_chosen_by_a_flag_asks_for_a_bias_that_follows_it(
    choice: str, norm: str
) -> None:
    """torchvision's ``make_layers(batch_norm=...)`` idiom: the norm or an Identity by a
    flag. NRM001 said "pass bias=False" and --unsafe-fixes wrote it unconditionally,
    dropping the bias that the batch_norm=False configuration needs."""
    from normsuite.analysis.fixes import fixes_for

    source = FLAG_CHOSEN_NORM.replace("CHOICE", choice).replace("NORM", norm)
    findings = analyze_source(source, "m.py", AnalysisOptions()).findings
    (finding,) = findings
    assert finding.code == "NRM001"
    assert "bias=not batch_norm" in finding.message
    assert fixes_for(source, findings, unsafe=True) == []


WHILE_PYRAMID = """
import torch.nn as nn


class Pyramid(nn.Module):
    def __init__(self, base=32, max_ch=256):
        super().__init__()
        layers, ch = [], base
        while ch < max_ch:
            layers += [nn.Conv2d(ch, ch * 2, 3, 2, 1), nn.BatchNorm2d(ch * 2), nn.ReLU()]
            ch *= 2
        layers += [nn.Conv2d(ch, 1, 4)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)
"""


def test_layers_built_in_a_while_loop_are_seen() -> None:
    """DCGAN_D (the WGAN repo) builds its pyramid in ``while ch < max_ch``: the body's
    layers are seen as in a loop over an unknown iterable (no count or width guessed)."""
    result = analyze_source(WHILE_PYRAMID, "m.py", AnalysisOptions())
    assert [f.code for f in result.findings] == ["NRM001"]
    assert [s.kind for s in result.models[0].norms_found] == ["bn"]


BACKBONE_HEAD_GROUPS = """
import torch
import torchvision

model = torchvision.models.resnet18(weights=None)
model.fc = torch.nn.Linear(512, 5)
backbone = [p for n, p in model.named_parameters() if {cond}]
optimizer = torch.optim.SGD(
    [{{"params": backbone, "lr": 1e-3}}, {{"params": model.fc.parameters()}}],
    lr=1e-2, momentum=0.9, weight_decay=1e-4,
)
"""


def test_nrm010_on_parameter_groups_filtered_by_name() -> None:
    """The backbone group (every parameter but the head's) holds the BN weights and gets
    the optimizer's decay; a filter that splits off norms and biases is the fix (silent)."""
    assert "NRM010" in _codes(BACKBONE_HEAD_GROUPS.format(cond='not n.startswith("fc.")'))
    assert "NRM010" not in _codes(BACKBONE_HEAD_GROUPS.format(cond="p.ndim > 1"))


MOMENTUM_WITHOUT_RUNNING_STATS = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, c=16):
        super().__init__()
        self.bn = nn.BatchNorm2d(c, momentum=0.9, track_running_stats={track})
        self.inorm = nn.InstanceNorm2d(c, affine=True, momentum=0.9)
"""


def test_nrm009_needs_running_statistics() -> None:
    """momentum only moves running statistics: a BN without them, and an InstanceNorm
    (no running statistics by default), are silent; the tracked BN still fires."""
    assert _codes(MOMENTUM_WITHOUT_RUNNING_STATS.format(track="False")) == []
    assert _codes(MOMENTUM_WITHOUT_RUNNING_STATS.format(track="True")) == ["NRM009"]


REQUIRES_GRAD_FILTER = """
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, bias=False)
        self.bn = nn.BatchNorm2d(8)


model = Net()
for m in model.modules():
    if isinstance(m, nn.BatchNorm2d):
        for p in m.parameters():
            p.requires_grad = False
opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1,
                      weight_decay=1e-4)
"""


def test_nrm010_silent_on_parameters_filtered_by_requires_grad() -> None:
    """freeze_bn() then ``if p.requires_grad``: which parameters are left is the code's
    freezing, which may (here does) take every norm parameter out: no claim; the same with
    ``filter(lambda p: p.requires_grad, ...)`` (detection and fine-tuning scripts)."""
    assert "NRM010" not in _codes(REQUIRES_GRAD_FILTER)
    as_filter = REQUIRES_GRAD_FILTER.replace(
        "[p for p in model.parameters() if p.requires_grad]",
        "filter(lambda p: p.requires_grad, model.parameters())",
    )
    assert "filter(lambda" in as_filter and "NRM010" not in _codes(as_filter)
    # Without the filter the BN parameters are still frozen: no gradient, and torch's
    # optimizers skip a parameter whose .grad is None, weight decay included (silent too).
    # Freezing the convs instead leaves the norms decayed.
    plain = REQUIRES_GRAD_FILTER.replace(
        "[p for p in model.parameters() if p.requires_grad]",
        "filter(None, model.parameters())",
    )
    assert "NRM010" not in _codes(plain)
    assert "NRM010" in _codes(
        plain.replace("isinstance(m, nn.BatchNorm2d)", "isinstance(m, nn.Conv2d)")
    )


STRING_NORM_FLAG = """
import torch.nn as nn


def make_norm(kind, c):
    return nn.BatchNorm2d(c) if kind == "bn" else nn.Identity()


class Head(nn.Module):
    def __init__(self, norm="none"):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3)
        self.norm = make_norm(norm, 8)
        self.norm_bn = make_norm("bn", 8)

    def forward(self, x):
        return self.norm_bn(self.conv(x)) + self.norm(self.conv(x))
"""


def test_nrm001_names_no_flag_the_code_does_not_have() -> None:
    """A norm chosen by a string: the message must not invent ``use_norm``."""
    messages = [
        f.message for f in analyze_source(STRING_NORM_FLAG, "m.py", AnalysisOptions()).findings
    ]
    assert not any("use_norm" in m for m in messages)


DENSE = """
import torch
import torch.nn as nn


class Layer(nn.Module):
    def __init__(self, cin, growth):
        super().__init__()
        self.norm = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, growth, 3, padding=1, bias=False)

    def forward(self, feats):
        return self.conv(torch.relu(self.norm(torch.cat(feats, 1))))


class Block(nn.ModuleDict):
    def __init__(self, n, cin, growth):
        super().__init__()
        for i in range(n):
            self.add_module("l%d" % i, Layer(cin + i * growth, growth))

    def forward(self, x):
        features = [x]
        for name, layer in self.items():
            features.append(layer(features))
        return torch.cat(features, 1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.block = Block(4, 64, 32)
        self.norm5 = nn.BatchNorm2d(WIDTH)

    def forward(self, x):
        return self.norm5(self.block(self.stem(x)))
"""

DENSE_LIST = """
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.layers = nn.ModuleList(nn.Conv2d(64 + i * 32, 32, 3, padding=1) for i in range(4))
        self.norm5 = nn.BatchNorm2d(WIDTH)

    def forward(self, x):
        features = [self.stem(x)]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return self.norm5(torch.cat(features, 1))
"""


@pytest.mark.parametrize("source", [DENSE, DENSE_LIST])
def test_nrm011_counts_the_features_a_dense_block_appends(source: str) -> None:
    """torchvision's DenseNet: ``features.append(layer(features))`` then ``torch.cat``.
    NRM011 read the list as [x] (64 channels) and called the right BatchNorm2d(192) an
    error; over a loop it cannot list the width is unknown, over a known one it is summed."""
    right = analyze_source(source.replace("WIDTH", "64 + 4 * 32"), "m.py", AnalysisOptions())
    assert [f.code for f in right.findings if f.code == "NRM011"] == []
    wrong = analyze_source(source.replace("WIDTH", "64"), "m.py", AnalysisOptions())
    flagged = [f.message for f in wrong.findings if f.code == "NRM011"]
    if source is DENSE_LIST:  # a known loop: the sum is known, and 64 is wrong
        assert flagged and "receives 192 channels" in flagged[0]


SIAMESE = """
import torch.nn as nn


class Siamese(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = PROJ
        self.bn = nn.BatchNorm2d(64)

    def forward(self, a, b):
        return self.bn(self.proj(a)), self.proj(b)
"""


def test_nrm001_silent_when_a_second_call_keeps_the_output_raw() -> None:
    """``self.bn(self.proj(a))`` and a raw ``self.proj(b)``: the second call needs the
    bias (NRM001 said "pass bias=False" and --unsafe-fixes wrote it, changing zb). A
    Sequential called twice still feeds its BN every time: flagged."""
    assert _codes(SIAMESE.replace("PROJ", "nn.Conv2d(64, 64, 1)")) == []
    shared = SIAMESE.replace("PROJ", "nn.Sequential(nn.Conv2d(64, 64, 1), nn.BatchNorm2d(64))")
    shared = shared.replace("self.bn(self.proj(a)), self.proj(b)", "self.proj(a), self.proj(b)")
    assert _codes(shared) == ["NRM001"]


INVERTED_BIAS_FLAG = """
import torch.nn as nn


class ConvBN(nn.Module):
    def __init__(self, cin, cout, use_bn=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=use_bn)
        self.bn = nn.BatchNorm2d(cout) if use_bn else nn.Identity()

    def forward(self, x):
        return self.bn(self.conv(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = ConvBN(3, 16)

    def forward(self, x):
        return self.a(x)
"""


def test_nrm001_on_a_bias_that_follows_the_norm_flag_the_wrong_way() -> None:
    """``bias=use_bn`` with ``self.bn = nn.BatchNorm2d(cout) if use_bn else nn.Identity()``:
    NRM001 said "pass use_bn=False here", which removes the BatchNorm; the fix is the
    bias following the flag the other way, at the conv."""
    findings = analyze_source(INVERTED_BIAS_FLAG, "m.py", AnalysisOptions()).findings
    (finding,) = [f for f in findings if f.code == "NRM001"]
    assert finding.line == 8 and "bias=not use_bn" in finding.message
    assert "use_bn=False" not in finding.message


FEATURE_INSTANCE_NORM = """
import torch.nn as nn


class ClassMapping(nn.Module):
    def __init__(self, n_classes=512, feature_size=64):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(feature_size, feature_size), nn.InstanceNorm1d(1), nn.GELU(),
            nn.Linear(feature_size, feature_size),
        )
        self.emb = nn.Embedding(n_classes, feature_size)

    def forward(self, class_ids):
        return self.mlp(self.emb(class_ids))
"""


def test_nrm001_silent_when_the_norm_normalizes_along_the_bias() -> None:
    """MONAI vista3d: ``InstanceNorm1d(1)`` on a Linear's (B, 1, F) output normalizes over
    the F features, along which the bias varies: it is not cancelled (NRM001 said "pass
    bias=False", and the unsafe fix changed the output)."""
    assert "NRM001" not in _codes(FEATURE_INSTANCE_NORM)


ORDERED_SEQUENTIAL = """
from collections import OrderedDict

import torch.nn as nn


class Block(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(CHILDREN)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block(3, 16)

    def forward(self, x):
        return self.block(x)
"""


@pytest.mark.parametrize(
    "children",
    [
        "OrderedDict(conv=nn.Conv2d(cin, cout, 3), norm=nn.BatchNorm2d(cout))",
        'OrderedDict([("conv", nn.Conv2d(cin, cout, 3)), ("norm", nn.BatchNorm2d(cout))])',
    ],
)
def test_a_sequential_subclass_built_from_an_ordereddict_is_read(children: str) -> None:
    """torchvision/timm's named Sequential blocks: ``super().__init__(OrderedDict(...))``
    was 'no norm sites' (NRM001 missed); the positional form was read."""
    assert "NRM001" in _codes(ORDERED_SEQUENTIAL.replace("CHILDREN", children))


GN_AFTER_LINEAR = """
import torch.nn as nn


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(256, 64, bias=False)
        self.gn = nn.GroupNorm(8, WIDTH)

    def forward(self, x):
        return self.gn(self.fc(x))
"""


def test_nrm011_on_a_groupnorm_after_a_linear_of_other_width() -> None:
    """GroupNorm(8, 128) on Linear(256, 64)'s (N, 64) output raises at run time: check was
    clean and recommend kept it (BatchNorm1d there was caught)."""
    assert _codes(GN_AFTER_LINEAR.replace("WIDTH", "128")) == ["NRM011"]
    assert _codes(GN_AFTER_LINEAR.replace("WIDTH", "64")) == []


SHARED_WRONG_WIDTH = """
import torch.nn as nn


class ConvBN(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cin)

    def forward(self, x):
        return self.bn(self.conv(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = ConvBN(3, 32)
        self.l2 = ConvBN(32, 64)

    def forward(self, x):
        return self.l2(self.l1(x))
"""


def test_nrm011_on_a_line_shared_by_two_widths_suggests_the_expression() -> None:
    """``nn.BatchNorm2d(cin)`` after ``nn.Conv2d(cin, cout)`` in a block built at two widths:
    the message and recommend gave one literal per instance (32 and 64), each breaking the
    other; the fix is the conv's width expression, right for both."""
    findings = analyze_source(SHARED_WRONG_WIDTH, "m.py", AnalysisOptions()).findings
    (nrm011,) = [f for f in findings if f.code == "NRM011"]
    assert "nn.BatchNorm2d(cout)" in nrm011.message and "BatchNorm2d(64)" not in nrm011.message
    net = next(
        m
        for m in analyze_source(SHARED_WRONG_WIDTH, "m.py", AnalysisOptions()).models
        if m.name == "Net"
    )
    assert {s.suggested for s in net.recommendation.layers} == {"nn.BatchNorm2d(cout)"}


NNUNET_BLOCKS = """
from torch import nn


class ConvNormAct(nn.Module):
    def __init__(self, cin, cout, conv_bias, norm_op, norm_op_kwargs):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, 3, padding=1, bias=conv_bias)
        self.norm = norm_op(cout, **norm_op_kwargs)

    def forward(self, x):
        return self.norm(self.conv(x))


class Stack(nn.Module):
    def __init__(self, n, cin, cout, conv_bias, norm_op, norm_op_kwargs):
        super().__init__()
        self.blocks = nn.Sequential(
            ConvNormAct(cin, cout, conv_bias, norm_op, norm_op_kwargs),
            *[ConvNormAct(cout, cout, conv_bias, norm_op, norm_op_kwargs) for _ in range(n - 1)],
        )

    def forward(self, x):
        return self.blocks(x)
"""

NNUNET_EMBED = """
from torch import nn

from .blocks import Stack


class PatchEmbed(nn.Module):
    def __init__(self, input_channels=1, embed_dim=96, base_features=32):
        super().__init__()
        self.stem = Stack(1, input_channels, base_features, True, nn.InstanceNorm3d, {})
        self.proj = nn.Conv3d(base_features, embed_dim, 1)

    def forward(self, x):
        return self.proj(self.stem(x))
"""

NNUNET_MODEL = """
from torch import nn

from .embed import PatchEmbed


class Net(nn.Module):
    def __init__(self, embed_dim=96):
        super().__init__()
        self.down = PatchEmbed(input_channels=1, embed_dim=embed_dim, base_features=32)
        self.head = nn.Conv3d(embed_dim, 3, 1)

    def forward(self, x):
        return self.head(self.down(x))
"""


def test_nrm001_is_reported_where_the_bias_is_set_not_again_in_every_user(tmp_path) -> None:
    """MONAI/nnU-Net style: ``embed.py`` passes ``True`` for ``conv_bias``; ``model.py``
    only builds ``PatchEmbed``, which has no ``conv_bias``. One finding, in embed.py."""
    from normsuite.analysis.runner import analyze_paths

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name, text in (("blocks", NNUNET_BLOCKS), ("embed", NNUNET_EMBED), ("model", NNUNET_MODEL)):
        (pkg / f"{name}.py").write_text(text)
    results = analyze_paths([str(pkg / f) for f in ("blocks.py", "embed.py", "model.py")])
    found = {(r.path.rsplit("/", 1)[-1], f.line): f.message for r in results for f in r.findings}
    assert list(found) == [("embed.py", 10)]
    assert "pass conv_bias=False here" in found["embed.py", 10]


def test_batch_rules_are_silent_on_graph_networks() -> None:
    """A GIN's BatchNorm1d normalizes over every node of the batch's graphs: "batch 4" is 4
    graphs, not 4 samples, and NRM006's "mix time steps and sequences" was wrong."""
    from test_analysis_recommend import GRAPH_NETWORKS

    result = analyze_source(GRAPH_NETWORKS, "gnn.py", AnalysisOptions(batch_size=4))
    assert [f.code for f in result.findings] == []
    plain = GRAPH_NETWORKS.replace("x, edge_index, batch", "x, edges, batch")
    plain = plain.replace("(x, edge_index)", "(x, edges)")
    assert "NRM006" in [
        f.code for f in analyze_source(plain, "m.py", AnalysisOptions(batch_size=4)).findings
    ]


GHOST_BN = """
import torch
import torch.nn as nn


class GBN(nn.Module):
    def __init__(self, input_dim, virtual_batch_size=128):
        super().__init__()
        self.virtual_batch_size = virtual_batch_size
        self.bn = nn.BatchNorm1d(input_dim)

    def forward(self, x):
        chunks = x.chunk(max(1, x.shape[0] // self.virtual_batch_size), 0)
        return torch.cat([self.bn(c) for c in chunks], dim=0)


class Encoder(nn.Module):
    def __init__(self, d=16):
        super().__init__()
        self.fc1 = nn.Linear(d, 64, bias=False)
        self.bn1 = GBN(64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc2(self.bn1(self.fc1(x)).relu())
"""


def test_nrm006_speaks_of_the_model_that_uses_a_block_not_of_a_resnet() -> None:
    """pytorch-tabnet's Ghost BN: the block alone has no architecture (only a BN), and its
    NRM006 quoted ResNet-50 numbers and a GroupNorm fix; the MLP that uses it gets B11."""
    result = analyze_source(GHOST_BN, "m.py", AnalysisOptions(batch_size=4))
    (nrm006,) = [f for f in result.findings if f.code == "NRM006"]
    assert "(B11)" in nrm006.message and "ResNet-50" not in nrm006.message
