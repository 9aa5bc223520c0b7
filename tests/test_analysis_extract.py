"""Extraction (ast -> IR) and data-flow tracking, checked against hand-worked expectations."""

from __future__ import annotations

import ast
import textwrap

import pytest

from normsuite.analysis.analyze import analyze_context, analyze_source
from normsuite.analysis.extract import ModuleIndex
from normsuite.analysis.types import AnalysisOptions


def layers_of(src: str, cls: str) -> dict[str, tuple[str, object]]:
    src = textwrap.dedent(src)
    index = ModuleIndex(ast.parse(src), src)
    inst = index.instantiate(index.classes[cls])
    return {
        path: (layer.type, layer.num_channels or layer.out_channels) for path, layer in inst.walk()
    }


def model(src: str, name: str, **options: int):
    ctx = analyze_context(textwrap.dedent(src), "m.py", AnalysisOptions(**options))
    return next(m for m in ctx.models if m.name == name)


@pytest.mark.parametrize(
    "imports",
    [
        "import torch.nn as nn",
        "from torch import nn",
        "import torch\nnn = None  # shadowed name: torch.nn.X below still resolves",
    ],
)
def test_import_styles(imports: str) -> None:
    prefix = "torch.nn" if imports.startswith("import torch\n") else "nn"
    src = f"""
{imports}
from torch.nn import BatchNorm2d as BN
class M({prefix}.Module):
    def __init__(self):
        super().__init__()
        self.conv = {prefix}.Conv2d(3, 8, 3)
        self.bn = BN(8)
"""
    found = layers_of(src, "M")
    assert found == {"conv": ("Conv2d", 8), "bn": ("BatchNorm2d", 8)}


def test_lightning_module_and_subclass_chain() -> None:
    src = """
    import lightning as L
    import torch.nn as nn
    class Base(L.LightningModule):
        def __init__(self, width=16):
            super().__init__()
            self.conv = nn.Conv2d(3, width, 3)
    class Child(Base):
        def __init__(self):
            super().__init__(width=32)
            self.bn = nn.BatchNorm2d(32)
    class NotAModel:
        def __init__(self):
            self.bn = nn.BatchNorm2d(4)
    """
    assert layers_of(src, "Child") == {"conv": ("Conv2d", 32), "bn": ("BatchNorm2d", 32)}
    index = ModuleIndex(ast.parse(textwrap.dedent(src)), textwrap.dedent(src))
    assert set(index.classes) == {"Base", "Child"}
    assert index.classes["Child"].lightning


def test_sequential_ordereddict_modulelist_moduledict_loops_helpers() -> None:
    src = """
    from collections import OrderedDict
    import torch.nn as nn
    def conv_bn(cin, cout, k=3):
        conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)
        return nn.Sequential(conv, nn.BatchNorm2d(cout))
    class M(nn.Module):
        def __init__(self, widths=[8, 16], depth=2):
            super().__init__()
            blocks = []
            cin = 3
            for w in widths:
                blocks.append(conv_bn(cin, w))
                cin = w
            self.features = nn.Sequential(*blocks)
            pairs = [("c", nn.Conv1d(4, 2 * 4, 1)), ("n", nn.GroupNorm(2, 8))]
            self.named = nn.Sequential(OrderedDict(pairs))
            self.stack = nn.ModuleList([nn.Linear(cin, cin) for _ in range(depth)])
            self.heads = nn.ModuleDict({"a": nn.Linear(cin, 10), "b": nn.LayerNorm(cin)})
            self.extra = nn.ModuleList()
            for i in range(2):
                self.extra.append(nn.BatchNorm1d(2 ** (i + 3)))
    """
    found = layers_of(src, "M")
    assert found["features.0.0"] == ("Conv2d", 8)
    assert found["features.1.1"] == ("BatchNorm2d", 16)
    assert found["named.c"] == ("Conv1d", 8) and found["named.n"] == ("GroupNorm", 8)
    assert [found[f"stack.{i}"] for i in range(2)] == [("Linear", 16)] * 2
    assert found["heads.a"] == ("Linear", 10) and found["heads.b"] == ("LayerNorm", 16)
    assert found["extra.0"] == ("BatchNorm1d", 8) and found["extra.1"] == ("BatchNorm1d", 16)


def test_norm_layer_argument_and_partial() -> None:
    src = """
    from functools import partial
    import torch.nn as nn
    class M(nn.Module):
        def __init__(self, norm_layer=None):
            super().__init__()
            if norm_layer is None:
                norm_layer = partial(nn.GroupNorm, 8)
            self.n = norm_layer(64)
    """
    assert layers_of(src, "M") == {"n": ("GroupNorm", 64)}


def test_unknown_values_stay_unknown() -> None:
    src = """
    import torch.nn as nn
    class M(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.bn = nn.BatchNorm2d(c)
            self.gn = nn.GroupNorm(c // 4, 64)
    """
    found = layers_of(src, "M")
    assert found == {"bn": ("BatchNorm2d", None), "gn": ("GroupNorm", 64)}


def test_known_backbones_and_norm_layer() -> None:
    src = """
    import timm
    import torch.nn as nn
    from torchvision.models import resnet50, vgg16_bn, convnext_tiny, vit_b_16
    from torchvision.ops import FrozenBatchNorm2d
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = resnet50(weights="IMAGENET1K_V2", norm_layer=FrozenBatchNorm2d)
            self.b = vgg16_bn()
            self.c = convnext_tiny()
            self.d = vit_b_16()
            self.e = timm.create_model("efficientnet_b0", pretrained=True)
    """
    src = textwrap.dedent(src)
    index = ModuleIndex(ast.parse(src), src)
    attrs = index.instantiate(index.classes["M"]).attrs
    info = {
        k: (v.backbone.family, v.backbone.norm, v.backbone.architecture) for k, v in attrs.items()
    }
    assert info == {
        "a": ("resnet", "frozenbn", "cnn2d"),
        "b": ("vgg", "bn", "cnn2d"),
        "c": ("convnext", "ln", "cnn2d"),
        "d": ("vit", "ln", "transformer"),
        "e": ("efficientnet", "bn", "cnn2d"),
    }
    assert attrs["a"].backbone.pretrained and attrs["e"].backbone.pretrained
    assert not attrs["b"].backbone.pretrained


def test_pretrained_bn_backbone_small_batch_recommends_frozenbn() -> None:
    src = """
    import torch.nn as nn
    import torchvision
    class Det(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = torchvision.models.resnet50(weights="DEFAULT")
        def forward(self, x):
            return self.backbone(x)
    """
    result = analyze_source(textwrap.dedent(src), "m.py", AnalysisOptions(batch_size=2))
    (report,) = result.models
    assert report.architecture == "cnn2d"
    assert report.recommendation.norm == "frozenbn"
    assert "B10" in report.recommendation.rules
    assert report.recommendation.layers[0].suggested == (  # the weights argument is kept
        'torchvision.models.resnet50(weights="DEFAULT", '
        "norm_layer=torchvision.ops.FrozenBatchNorm2d)"
    )
    assert [f.code for f in result.findings] == ["NRM006"]


def test_permute_tracking_convnext_vs_article() -> None:
    src = """
    import torch.nn as nn
    class Block(nn.Module):
        def __init__(self, dim=64):
            super().__init__()
            self.dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
            self.norm = nn.LayerNorm(dim)
        def forward(self, x):
            y = self.dw(x).permute(0, 2, 3, 1)
            y = self.norm(y)
            return x + y.permute(0, 3, 1, 2)
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 64, 3)
            self.norm = nn.LayerNorm(64)
        def forward(self, x):
            x = self.conv(x)
            x = x.permute(0, 2, 3, 1).permute(0, 3, 1, 2)  # back to channels-first
            return self.norm(x)
    """
    block = model(src, "Block")
    app = block.first_app(dict(block.layers)["norm"])
    assert (app.inp.rank, app.inp.cdim, app.inp.channels, app.inp.kind) == (4, 3, 64, "map")
    result = analyze_source(textwrap.dedent(src), "m.py", AnalysisOptions())
    assert [(f.code, f.model) for f in result.findings] == [("NRM002", "Bad")]


def test_flow_through_transpose_flatten_view_and_rnn() -> None:
    src = """
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(4, 32, 3)
            self.rnn = nn.LSTM(32, 48, batch_first=True, bidirectional=True)
            self.ln = nn.LayerNorm(96)
            self.pool = nn.AdaptiveAvgPool1d(1)
            self.bn = nn.BatchNorm1d(32)
        def forward(self, x):
            h = F.relu(self.conv(x))
            out, (hn, cn) = self.rnn(h.transpose(1, 2))
            seq = self.ln(out)
            feat = self.bn(self.pool(h).view(h.size(0), -1))
            return seq, feat
    """
    m = model(src, "M")
    layers = dict(m.layers)
    ln = m.first_app(layers["ln"]).inp
    assert (ln.rank, ln.cdim, ln.channels, ln.kind, ln.rnn) == (3, 2, 96, "seq", True)
    bn = m.first_app(layers["bn"]).inp
    assert (bn.rank, bn.cdim, bn.channels, bn.kind) == (2, 1, 32, "feat")
    assert m.architecture == "hybrid"


def test_modulelist_loop_in_forward_and_custom_blocks() -> None:
    src = """
    import torch.nn as nn
    class Block(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, bias=False)
            self.bn = nn.BatchNorm2d(cout)
        def forward(self, x):
            return self.bn(self.conv(x)).relu()
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([Block(3, 16), Block(16, 32)])
            self.gn = nn.GroupNorm(4, 16)
        def forward(self, x):
            for blk in self.blocks:
                x = blk(x)
            return self.gn(x)
    """
    net = model(src, "Net")
    gn = net.first_app(dict(net.layers)["gn"]).inp
    assert (gn.rank, gn.cdim, gn.channels) == (4, 1, 32)
    result = analyze_source(textwrap.dedent(src), "m.py", AnalysisOptions())
    assert [(f.code, f.line) for f in result.findings] == [("NRM011", 14)]


def test_transformer_token_layernorm_not_flagged_and_architecture() -> None:
    src = """
    import torch.nn as nn
    class GPTBlock(nn.Module):
        def __init__(self, d=64):
            super().__init__()
            self.ln_1 = nn.LayerNorm(d)
            self.attn = nn.MultiheadAttention(d, 4, batch_first=True)
            self.ln_2 = nn.LayerNorm(d)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        def forward(self, x):
            h = self.ln_1(x)
            x = x + self.attn(h, h, h, need_weights=False)[0]
            return x + self.mlp(self.ln_2(x))
    class GPT(nn.Module):
        def __init__(self, vocab=100, d=64, n_layer=2):
            super().__init__()
            self.wte = nn.Embedding(vocab, d)
            self.h = nn.ModuleList([GPTBlock(d) for _ in range(n_layer)])
            self.ln_f = nn.LayerNorm(d)
        def forward(self, idx):
            x = self.wte(idx)
            for block in self.h:
                x = block(x)
            return self.ln_f(x)
    """
    result = analyze_source(textwrap.dedent(src), "m.py", AnalysisOptions(batch_size=8))
    assert result.findings == []
    archs = {m.name: m.architecture for m in result.models}
    assert archs == {"GPTBlock": "transformer", "GPT": "transformer"}
    gpt = next(m for m in result.models if m.name == "GPT")
    assert gpt.recommendation.norm == "ln" and gpt.recommendation.rules == ["B7"]
    assert {s.suggested for s in gpt.recommendation.layers} == {"nn.LayerNorm(d)"}


def test_lstm_model_recommends_ln_inside_cell() -> None:
    src = """
    import torch.nn as nn
    class Tagger(nn.Module):
        def __init__(self, vocab=1000, hidden=128):
            super().__init__()
            self.emb = nn.Embedding(vocab, 64)
            self.rnn = nn.GRU(64, hidden, batch_first=True)
            self.out = nn.Linear(hidden, 10)
        def forward(self, tokens):
            h, _ = self.rnn(self.emb(tokens))
            return self.out(h)
    """
    (report,) = analyze_source(textwrap.dedent(src), "m.py", AnalysisOptions(batch_size=64)).models
    assert report.architecture == "rnn"
    assert report.recommendation.norm == "ln" and report.recommendation.rules == ["B6"]


def test_mlp_architecture_and_constant_arithmetic() -> None:
    src = """
    import torch.nn as nn
    HIDDEN = 2 ** 6
    class MLP(nn.Module):
        def __init__(self, d_in=20):
            super().__init__()
            lin = nn.Linear(d_in, HIDDEN * 2, bias=False)
            self.net = nn.Sequential(lin, nn.BatchNorm1d(HIDDEN * 2), nn.ReLU())
        def forward(self, x):
            return self.net(x)
    """
    (report,) = analyze_source(textwrap.dedent(src), "m.py", AnalysisOptions(batch_size=8)).models
    assert report.architecture == "mlp"
    assert report.norms_found[0].num_channels == 128
    assert report.recommendation.norm == "ln"
    assert report.recommendation.layers[0].suggested == "nn.LayerNorm(128)"
    result = analyze_source(textwrap.dedent(src), "m.py", AnalysisOptions(batch_size=8))
    (finding,) = result.findings
    assert finding.code == "NRM006" and "nn.LayerNorm(128)" in finding.message


def test_never_executes_the_file(tmp_path) -> None:
    marker = tmp_path / "ran"
    src = f"""
import pathlib
pathlib.Path({str(marker)!r}).write_text("module")
def deco(f):
    pathlib.Path({str(marker)!r}).write_text("decorator")
    return f
import torch.nn as nn
class M(nn.Module):
    pathlib.Path({str(marker)!r}).write_text("class body")
    @deco
    def __init__(self, c=pathlib.Path({str(marker)!r}).write_text("default")):
        super().__init__()
        self.bn = nn.BatchNorm2d(8)
        open({str(marker)!r}, "w").write("init")
"""
    analyze_source(src, "m.py", AnalysisOptions())
    assert not marker.exists()


def test_deeply_nested_and_budget() -> None:
    deep = "x = " + "(" * 5000 + "1" + ")" * 5000
    with pytest.raises((RecursionError, SyntaxError, MemoryError)):
        analyze_source(deep, "deep.py", AnalysisOptions())
    # A loop the evaluator refuses to unroll: no hang, no crash.
    src = """
import torch.nn as nn
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.BatchNorm2d(i + 1) for i in range(10 ** 9)])
"""
    (report,) = analyze_source(src, "m.py", AnalysisOptions()).models
    # The layer is still seen (issue 13), once, with its width unknown: nothing guessed.
    assert [(s.kind, s.num_channels) for s in report.norms_found] == [("bn", None)]


def test_recursive_model_class_and_shared_blocks() -> None:
    src = """
    import torch.nn as nn
    class Tree(nn.Module):
        def __init__(self, levels=2):
            super().__init__()
            self.conv = nn.Conv2d(8, 8, 3, bias=False)
            self.bn = nn.BatchNorm2d(8)
            self.child = Tree(levels - 1) if levels > 0 else None
            self.loop = Tree()  # same arguments: refers to itself
        def forward(self, x):
            x = self.bn(self.conv(x))
            if self.child is not None:
                x = self.child(x)
            return self.loop(x)
    """
    result = analyze_source(textwrap.dedent(src), "m.py", AnalysisOptions(batch_size=4))
    (report,) = result.models
    assert report.architecture == "cnn2d"
    assert {(f.code, f.line) for f in result.findings} == {("NRM006", 7)}


def test_module_level_models_and_alternatives() -> None:
    src = """
    import torch.nn as nn
    mlp = nn.Sequential(nn.Linear(10, 64, bias=False), nn.BatchNorm1d(64), nn.ReLU())
    """
    result = analyze_source(textwrap.dedent(src), "m.py", AnalysisOptions(batch_size=32))
    (report,) = result.models
    assert (report.name, report.architecture) == ("mlp", "mlp")
    assert [s.name for s in report.norms_found] == ["mlp.1"]
    assert report.recommendation.norm == "bn" and report.recommendation.alternatives == ["ln"]
    assert result.to_dict()["models"][0]["recommendation"]["alternatives"] == ["ln"]


def test_sequential_subclass_add_module_and_einops() -> None:
    src = """
    import torch.nn as nn
    from einops import rearrange
    class ConvBNAct(nn.Sequential):
        def __init__(self, cin=3, cout=16):
            super().__init__(nn.Conv2d(cin, cout, 3), nn.BatchNorm2d(cout), nn.ReLU())
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.add_module("stem", ConvBNAct(3, 32))
            self.norm = nn.LayerNorm(32)
        def forward(self, x):
            x = rearrange(self.stem(x), "b c h w -> b h w c")
            return self.norm(x)
    """
    result = analyze_source(textwrap.dedent(src), "m.py", AnalysisOptions())
    # The conv's bias feeds BN inside the Sequential subclass; the einops channels-last LN
    # is fine.
    assert [(f.code, f.line) for f in result.findings] == [("NRM001", 6)]
    m = model(src, "M")
    ln = m.first_app(dict(m.layers)["norm"]).inp
    assert (ln.rank, ln.cdim, ln.channels) == (4, 3, 32)


def test_if_branches_agree_or_forget() -> None:
    src = """
    import torch.nn as nn
    class M(nn.Module):
        def __init__(self, mode="a"):
            super().__init__()
            self.conv = nn.Conv2d(3, 16, 3)
            self.norm = nn.LayerNorm(16)
            self.mode = mode
        def forward(self, x):
            x = self.conv(x)
            if self.training:  # unknown: both branches traced, then the shapes disagree
                x = x.permute(0, 2, 3, 1)
            return self.norm(x)
    """
    result = analyze_source(textwrap.dedent(src), "m.py", AnalysisOptions())
    assert result.findings == []  # precision over recall: no guess after the if


def test_evaluation_budget_keeps_partial_results() -> None:
    src = """
import torch.nn as nn
class Heavy(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(8, momentum=0.9)
        total = 0
        for i in range(500):
            for j in range(500):
                total = total + i * j
"""
    ctx = analyze_context(src, "m.py", AnalysisOptions())
    assert ctx.partial and ctx.index.exhausted
    result = analyze_source(src, "m.py", AnalysisOptions())  # no exception, no hang
    # What __init__ set before the budget ran out is still analyzed.
    assert [m.name for m in result.models] == ["Heavy"]
    assert [(f.code, f.line) for f in result.findings] == [("NRM009", 6)]


def test_recommendation_and_nrm004_agree_on_the_group_fix() -> None:
    src = """
    import torch.nn as nn
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 32, 3, bias=False)
            self.gn = nn.GroupNorm(16, 32)
        def forward(self, x):
            return self.gn(self.conv(x))
    """
    result = analyze_source(textwrap.dedent(src), "m.py", AnalysisOptions(batch_size=4))
    (finding,) = result.findings
    (suggestion,) = result.models[0].recommendation.layers
    assert finding.code == "NRM004" and suggestion.suggested == "nn.GroupNorm(8, 32)"
    assert suggestion.suggested in finding.message
