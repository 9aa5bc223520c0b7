"""Per-site recommendations on realistic models (ViT, Conformer, nanoGPT, ...): the site
advice follows the traced input, and the headline agrees with the sites."""

from __future__ import annotations

import textwrap

import pytest

from normsuite.analysis.analyze import analyze_context, analyze_source
from normsuite.analysis.types import AnalysisOptions


def report(src: str, name: str, **options: int):
    result = analyze_source(textwrap.dedent(src), "m.py", AnalysisOptions(**options))
    return next(m for m in result.models if m.name == name)


def suggestions(src: str, name: str, **options: int) -> dict[str, str]:
    """site -> suggested code ("keep" when unchanged)."""
    rec = report(src, name, **options).recommendation
    return {s.site: "keep" if s.suggested == s.current else s.suggested for s in rec.layers}


def codes(src: str, **options: int) -> list[str]:
    result = analyze_source(textwrap.dedent(src), "m.py", AnalysisOptions(**options))
    return [f.code for f in result.findings]


VIT = """
import torch.nn as nn

class TransformerBlock(nn.Module):
    def __init__(self, dim=384, heads=6):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):
        h = self.ln1(x)
        x = x + self.attn(h, h, h)[0]
        return x + self.mlp(self.ln2(x))

class ViT(nn.Module):
    def __init__(self, dim=384, depth=4, num_classes=10):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, kernel_size=16, stride=16)
        self.blocks = nn.ModuleList([TransformerBlock(dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = TOKENS
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x)[:, 0])
"""


def test_vit_patch_tokens_keep_layernorm() -> None:
    for tokens in (
        "self.patch(x).flatten(2).transpose(1, 2)",
        'rearrange(self.patch(x), "b c h w -> b (h w) c")',
    ):
        src = VIT.replace("TOKENS", tokens)
        if "rearrange" in tokens:
            src = "from einops import rearrange\n" + textwrap.dedent(src)
        rec = report(src, "ViT", batch_size=32).recommendation
        assert rec.norm == "ln"
        assert suggestions(src, "ViT", batch_size=32) == {
            "blocks.0.ln1": "keep",
            "blocks.0.ln2": "keep",
            "norm": "keep",
        }, tokens
        assert codes(src, batch_size=32) == []


def test_flattened_conv_map_is_a_token_sequence() -> None:
    ctx = analyze_context(
        textwrap.dedent(VIT.replace("TOKENS", "self.patch(x).flatten(2)")),
        "m.py",
        AnalysisOptions(),
    )
    vit = next(m for m in ctx.models if m.name == "ViT")
    app = next(a for a in vit.apps if a.path == "blocks.0.ln1")
    assert (app.inp.rank, app.inp.cdim, app.inp.kind) == (3, 1, "seq")


CONFORMER = """
import torch.nn as nn

class ConvModule(nn.Module):
    def __init__(self, d=144):
        super().__init__()
        self.pw = nn.Conv1d(d, 2 * d, 1)
        self.glu = nn.GLU(dim=1)
        self.dw = nn.Conv1d(d, d, 31, padding=15, groups=d, bias=False)
        self.bn = nn.BatchNorm1d(d)

    def forward(self, x):
        x = x.transpose(1, 2)
        x = self.glu(self.pw(x))
        x = self.bn(self.dw(x))
        return x.transpose(1, 2)

class ConformerBlock(nn.Module):
    def __init__(self, d=144):
        super().__init__()
        self.ln = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, 4, batch_first=True)
        self.conv = ConvModule(d)

    def forward(self, x):
        h = self.ln(x)
        x = x + self.attn(h, h, h)[0]
        return x + self.conv(x)
"""


def test_hybrid_conformer_keeps_token_layernorm_and_conv_batchnorm() -> None:
    rep = report(CONFORMER, "ConformerBlock", batch_size=32)
    assert rep.architecture == "hybrid"
    assert suggestions(CONFORMER, "ConformerBlock", batch_size=32) == {
        "ln": "keep",
        "conv.bn": "keep",
    }
    # At batch 4 the conv BN (and only it) moves to GroupNorm; the token LN stays.
    small = suggestions(CONFORMER, "ConformerBlock", batch_size=4)
    assert small == {"ln": "keep", "conv.bn": "nn.GroupNorm(24, 144)"}  # 24 | 144, 6 per group


def test_hybrid_untraced_layernorm_gets_sequence_advice() -> None:
    src = """
    import torch.nn as nn
    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv1d(8, 64, 3, bias=False)
            self.body = nn.Conv1d(64, 64, 3, bias=False)
            self.rnn = nn.GRU(64, 64, batch_first=True)
            self.ln = nn.LayerNorm(64)
    """
    rep = report(src, "Mixed", batch_size=32)
    assert rep.architecture == "hybrid"
    assert suggestions(src, "Mixed", batch_size=32) == {"ln": "keep"}


GPT = """
import torch
import torch.nn as nn
from torch.nn import functional as F

class Head(nn.Module):
    def __init__(self, n_embd, head_size):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)

    def forward(self, x):
        k, q, v = self.key(x), self.query(x), self.value(x)
        w = F.softmax(q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5, dim=-1)
        return w @ v

class FeedForward(nn.Module):
    def __init__(self, n_embd):
        super().__init__()
        h = 4 * n_embd
        self.net = nn.Sequential(nn.Linear(n_embd, h), nn.ReLU(), nn.Linear(h, n_embd))

    def forward(self, x):
        return self.net(x)

class Block(nn.Module):
    def __init__(self, n_embd=384, n_head=6):
        super().__init__()
        self.heads = nn.ModuleList([Head(n_embd, n_embd // n_head) for _ in range(n_head)])
        self.ffwd = FeedForward(n_embd)
        self.ln1 = nn.LayerNorm(n_embd)
        self.ln2 = nn.LayerNorm(n_embd)

    def forward(self, x):
        h = self.ln1(x)
        x = x + torch.cat([hd(h) for hd in self.heads], dim=-1)
        return x + self.ffwd(self.ln2(x))

class GPT(nn.Module):
    def __init__(self, vocab=65, n_embd=384, n_layer=6, block_size=256):
        super().__init__()
        self.tok = nn.Embedding(vocab, n_embd)
        self.pos = nn.Embedding(block_size, n_embd)
        self.blocks = nn.Sequential(*[Block(n_embd) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab)

    def forward(self, idx):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
        return self.lm_head(self.ln_f(self.blocks(x)))
"""


def test_karpathy_gpt_is_a_transformer_and_keeps_layernorm() -> None:
    for name in ("Head", "Block", "GPT"):
        rep = report(GPT, name, batch_size=32)
        assert rep.architecture == "transformer", (name, rep.architecture_evidence)
        if name == "Head":  # one attention head: its block holds the norms
            assert (
                rep.recommendation is None
                and "attention computed in its own forward" in rep.abstain
            )
        else:
            assert rep.recommendation.norm == "ln"
    assert set(suggestions(GPT, "GPT", batch_size=32).values()) == {"keep"}
    assert codes(GPT, batch_size=32) == []
    # BatchNorm in the hand-written block is "inside a Transformer block" (NRM007).
    bn = GPT.replace("self.ln1 = nn.LayerNorm(n_embd)", "self.ln1 = nn.BatchNorm1d(n_embd)")
    assert "NRM007" in codes(bn, batch_size=32)


def test_embedding_without_attention_is_a_sequence_model() -> None:
    src = """
    import torch
    import torch.nn as nn
    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(1000, 64)
            self.pos = nn.Embedding(128, 64)
            self.ln = nn.LayerNorm(64)
            self.out = nn.Linear(64, 5)
        def forward(self, tokens):
            x = self.emb(tokens) + self.pos(torch.arange(tokens.shape[1]))
            return self.out(self.ln(x))
    """
    rep = report(src, "Tagger", batch_size=32)
    assert rep.architecture == "transformer"
    assert rep.recommendation.norm == "ln"
    assert suggestions(src, "Tagger", batch_size=32) == {"ln": "keep"}
    # Without a positional embedding nothing says "sequence": an MLP, and its LN is kept.
    plain = src.replace(" + self.pos(torch.arange(tokens.shape[1]))", "")
    plain = plain.replace("self.pos = nn.Embedding(128, 64)", "")
    rep = report(plain, "Tagger", batch_size=32)
    assert rep.architecture == "mlp"
    assert rep.recommendation.norm == "ln"
    assert suggestions(plain, "Tagger", batch_size=32) == {"ln": "keep"}


def test_non_local_block_with_convs_stays_a_cnn() -> None:
    src = """
    import torch
    import torch.nn as nn
    class NonLocal(nn.Module):
        def __init__(self, c=64):
            super().__init__()
            self.theta = nn.Conv2d(c, c, 1)
            self.phi = nn.Conv2d(c, c, 1)
            self.bn = nn.BatchNorm2d(c)
        def forward(self, x):
            a = torch.softmax(self.theta(x).flatten(2).transpose(1, 2) @ self.phi(x).flatten(2), -1)
            return self.bn(x)
    """
    assert report(src, "NonLocal", batch_size=32).architecture == "cnn2d"
    assert codes(src, batch_size=32) == []


def test_headline_follows_the_sites_when_none_matches_the_model() -> None:
    # Only Linear layers ("mlp"), but the LayerNorm sees (N, L, C) tokens (an MLP-Mixer
    # token MLP): the sites get the sequence advice, and so does the headline.
    src = """
    import torch.nn as nn
    class TokenMLP(nn.Module):
        def __init__(self, c=64):
            super().__init__()
            self.fc = nn.Linear(c, c)
            self.ln = nn.LayerNorm(c)
        def forward(self, x):
            x = x.view(x.size(0), 16, 64)
            return self.ln(self.fc(x))
    """
    rep = report(src, "TokenMLP", batch_size=32)
    assert rep.architecture == "mlp"
    rec = rep.recommendation
    assert suggestions(src, "TokenMLP", batch_size=32) == {"ln": "keep"}
    assert rec.norm == "ln" and "B7" in rec.rules and "B11" not in rec.rules


def test_layers_a_rule_flags_are_never_kept() -> None:
    # NRM012: Conv1d -> transpose -> BatchNorm1d normalizes L.
    src = """
    import torch.nn as nn
    class Audio(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(80, 64, 3, bias=False)
            self.bn = nn.BatchNorm1d(64)
        def forward(self, x):
            return self.bn(self.conv(x).transpose(1, 2))
    """
    assert codes(src, batch_size=32) == ["NRM012"]
    fix = suggestions(src, "Audio", batch_size=32)["bn"]
    assert fix != "keep" and "channels_last=True" in fix and "64" in fix
    # NRM013: GroupNorm(1, C) in a CNN classifier is LayerNorm over (C, H, W).
    src = """
    import torch.nn as nn
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 64, 3, bias=False)
            self.gn = nn.GroupNorm(1, 64)
            self.fc = nn.Linear(64, 10)
        def forward(self, x):
            return self.fc(self.gn(self.conv(x)).mean((2, 3)))
    """
    assert codes(src, batch_size=32) == ["NRM013"]
    assert suggestions(src, "Net", batch_size=32) == {"gn": "nn.BatchNorm2d(64)"}
    assert report(src, "Net", batch_size=32).recommendation.norm == "bn"
    assert suggestions(src, "Net", batch_size=4) == {"gn": "nn.GroupNorm(32, 64)"}
    # NRM011 (rank unknown, MLP): the fix is built for the 64 features it receives.
    src = """
    import torch.nn as nn
    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(20, 64, bias=False)
            self.bn1 = nn.BatchNorm1d(32)
        def forward(self, x):
            return self.bn1(self.fc1(x))
    """
    assert codes(src, batch_size=32) == ["NRM011"]
    assert suggestions(src, "MLP", batch_size=32) == {"bn1": "nn.BatchNorm1d(64)"}
    assert suggestions(src, "MLP", batch_size=4) == {"bn1": "nn.LayerNorm(64)"}


def test_token_embedding_batchnorm_gets_layernorm() -> None:
    src = """
    import torch.nn as nn
    class TextModel(nn.Module):
        def __init__(self, vocab=5000, dim=128):
            super().__init__()
            self.emb = nn.Embedding(vocab, dim)
            self.bn = nn.BatchNorm1d(dim)
            self.fc = nn.Linear(dim, 2)
        def forward(self, tokens):
            return self.fc(self.bn(self.emb(tokens)).mean(1))
    """
    assert codes(src, batch_size=32) == ["NRM012"]
    assert suggestions(src, "TextModel", batch_size=32) == {"bn": "nn.LayerNorm(128)"}


def test_id_embedding_without_sequence_signs_is_not_a_sequence() -> None:
    # A recommender's user-id embedding is (N, C): nothing in the model says sequences.
    src = """
    import torch.nn as nn
    class Rec(nn.Module):
        def __init__(self, users=1000, dim=64):
            super().__init__()
            self.user = nn.Embedding(users, dim)
            self.bn0 = nn.BatchNorm1d(dim)
            self.mlp = nn.Sequential(nn.Linear(dim, 32, bias=False), nn.BatchNorm1d(32))
        def forward(self, user_ids):
            return self.mlp(self.bn0(self.user(user_ids)))
    """
    assert codes(src, batch_size=64) == []
    assert report(src, "Rec", batch_size=64).architecture == "mlp"


BACKBONES = """
import timm
import torch
import torch.nn as nn
import torchvision
from torchvision import models
from torch.utils.data import DataLoader

a = models.convnext_tiny(weights="DEFAULT")
c = models.vgg16_bn(weights=None)
e = models.efficientnet_b0()
r = torchvision.models.resnet18(weights=None,)
p = models.resnet50(weights="IMAGENET1K_V2")
t = timm.create_model("resnet50", num_classes=3)
g = torchvision.models.resnet18(norm_layer=lambda c: nn.GroupNorm(32, c))
u = torchvision.models.resnet18(norm_layer=make_norm)
loader = DataLoader(ds, batch_size=4, shuffle=True)
opt = torch.optim.SGD(c.parameters(), lr=0.1)
"""


def test_backbone_replacements_keep_arguments_and_fit_the_family() -> None:
    fixes = {name: suggestions(BACKBONES, name)[name] for name in "acerptgu"}
    gn = 'norm_layer=lambda c: normsuite.build_norm("gn", c)'
    assert fixes["a"] == "keep"  # ConvNeXt keeps its LayerNorm
    assert report(BACKBONES, "a").recommendation.norm == "ln"
    # VGG has no norm_layer argument; timm models are converted after creation.
    assert fixes["c"] == 'models.vgg16_bn(weights=None), then normsuite.convert_norms(model, "gn")'
    assert fixes["t"].endswith('then normsuite.convert_norms(model, "gn")')
    assert fixes["e"] == f"models.efficientnet_b0({gn})"
    assert fixes["r"] == f"torchvision.models.resnet18(weights=None, {gn})"
    # Pretrained BN at batch 4: frozen BN, the weights argument kept.
    assert fixes["p"] == (
        'models.resnet50(weights="IMAGENET1K_V2", norm_layer=torchvision.ops.FrozenBatchNorm2d)'
    )
    assert fixes["g"] == "keep" and fixes["u"] == "keep"


def test_backbone_norm_layer_lambda_and_unresolved_norm_layer() -> None:
    result = analyze_source(textwrap.dedent(BACKBONES), "m.py", AnalysisOptions())
    flagged = {f.model for f in result.findings if f.code == "NRM006"}
    assert flagged == {"c", "e", "r", "p", "t"}  # not g (GroupNorm lambda), not u (unknown)
    kinds = {m.name: m.norms_found[0].kind for m in result.models}
    assert kinds["g"] == "gn" and kinds["u"] == "unknown" and kinds["r"] == "bn"


def test_keep_check_comes_before_unknown_channels() -> None:
    src = """
    import torch.nn as nn
    class Block(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            self.pwconv1 = nn.Linear(dim, 4 * dim)
        def forward(self, x):
            x = self.dwconv(x).permute(0, 2, 3, 1)
            return self.pwconv1(self.norm(x)).permute(0, 3, 1, 2)
    class Seg(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln = nn.LayerNorm([64, 30, 30])
            self.fc = nn.Linear(10, 2)
    """
    assert report(src, "Block", batch_size=32).recommendation.norm == "ln"
    assert suggestions(src, "Block", batch_size=32) == {"norm": "keep"}
    assert report(src, "Seg", batch_size=32).recommendation.norm == "ln"
    assert suggestions(src, "Seg", batch_size=32) == {"ln": "keep"}


BATCH_ONE = """
import torch.nn as nn
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 8, bias=False)
        self.bn1 = nn.BatchNorm1d(8)
    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.bn1(self.fc(x.mean((2, 3))))
"""


def messages(src: str, code: str, **options: int) -> dict[int, str]:
    result = analyze_source(textwrap.dedent(src), "m.py", AnalysisOptions(**options))
    return {f.line: f.message for f in result.findings if f.code == code}


def test_nrm005_says_what_batch_one_does_by_rank_and_offers_syncbn() -> None:
    # Checked against torch in tests/test_cli_rule.py: BatchNorm2d(4)(randn(1, 4, 8, 8))
    # runs; BatchNorm1d on (1, C) raises.
    found = messages(BATCH_ONE, "NRM005", batch_size=1)
    assert "raises" not in found[7] and "noisy" in found[7]
    assert "raises 'Expected more than 1 value per channel" in found[9]
    assert all("SyncBatchNorm" not in m for m in found.values())
    many = messages(BATCH_ONE, "NRM005", batch_size=1, devices=16)
    assert all("convert_sync_batchnorm" in m and "(B3)" in m for m in many.values())
    rec = report(BATCH_ONE, "Net", batch_size=1, devices=16).recommendation
    assert "B3" in rec.rules  # the recommendation lists SyncBN too
    assert all(
        "SyncBatchNorm" not in m
        for m in messages(BATCH_ONE, "NRM005", batch_size=1, devices=8).values()
    )


def test_nrm006_cites_the_rule_of_its_fix() -> None:
    mlp = """
    import torch.nn as nn
    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(20, 32, bias=False)
            self.bn1 = nn.BatchNorm1d(32)
        def forward(self, x):
            return self.bn1(self.fc1(x))
    """
    (message,) = messages(mlp, "NRM006", batch_size=8).values()
    assert "(B11)" in message and "nn.LayerNorm(32)" in message and "ResNet-50" not in message
    (cnn,) = [m for line, m in messages(BATCH_ONE, "NRM006", batch_size=8).items() if line == 7]
    assert "ResNet-50" in cnn and "(B2)" in cnn and "nn.GroupNorm(4, 16)" in cnn


def test_transposed_token_batchnorm_gets_channels_first_layernorm() -> None:
    src = """
    import torch.nn as nn
    class C(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(100, 32)
            self.bn = nn.BatchNorm1d(32)
        def forward(self, tokens):
            return self.bn(self.emb(tokens).transpose(1, 2))
    """
    # (N, C, L): a plain nn.LayerNorm(32) would normalize L (NRM002's mistake).
    assert suggestions(src, "C", batch_size=8) == {"bn": 'normsuite.build_norm("ln", 32, ndim=3)'}


def test_cnn_block_with_linear_channel_attention_is_not_a_transformer_block() -> None:
    src = """
    import torch.nn as nn
    class ChannelAttention(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.fc1 = nn.Linear(c, c // 4)
            self.fc2 = nn.Linear(c // 4, c)
        def forward(self, x):
            return x * self.fc2(self.fc1(x.mean((2, 3)))).sigmoid()[:, :, None, None]
    class Block(nn.Module):
        def __init__(self, c=64):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(c)
            self.attn = ChannelAttention(c)
        def forward(self, x):
            return self.attn(self.bn(self.conv(x)))
    """
    assert "NRM007" not in codes(src, batch_size=32)
    assert suggestions(src, "Block", batch_size=32) == {"bn": "keep"}


def test_feature_sites_of_a_cnn_get_the_feature_advice() -> None:
    src = """
    import torch.nn as nn
    import torch.nn.functional as F
    class PreAct(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 64, 3)
            self.bn = nn.BatchNorm2d(64)
            self.head = nn.Linear(64 * 4 * 4, 10)
            self.ln = nn.LayerNorm(64 * 4 * 4)
        def forward(self, x):
            x = self.bn(F.relu(self.conv(x)))
            x = F.adaptive_avg_pool2d(x, 4).flatten(1)
            return self.head(self.ln(x))
    """
    # (N, 1024) features after flatten: LayerNorm is the B11 choice at batch 4, not GN.
    assert suggestions(src, "PreAct", batch_size=4) == {"bn": "nn.GroupNorm(32, 64)", "ln": "keep"}
    # ... and the headline says why that site differs from its gn.
    rec = report(src, "PreAct", batch_size=4).recommendation
    assert rec.norm == "gn" and "B11" in rec.rules
    assert "Sites on (N, C) features take ln (B11): ln." in rec.rationale


def test_nrm013_needs_a_layer_built_for_the_classes() -> None:
    """A ``num_classes`` the model only stores (CPC v2's self-supervised encoder keeps it for
    an online evaluator; its LayerNorm is a deliberate choice) is not a classifier; the same
    encoder with a head built from ``num_classes`` is."""
    encoder = """
    import torch.nn as nn
    class CPC(nn.Module):
        def __init__(self, num_classes: int = 10):
            super().__init__()
            self.num_classes = num_classes
            self.conv = nn.Conv2d(3, 64, 3, bias=False)
            self.ln = nn.LayerNorm([64, 30, 30])
            self.conv2 = nn.Conv2d(64, 64, 3)
        def forward(self, x):
            return self.conv2(self.ln(self.conv(x)).relu())
    """
    assert codes(encoder, batch_size=32) == []
    pooled = "return self.conv2(self.ln(self.conv(x)).relu().mean((2, 3), keepdim=True))"
    classifier = encoder.replace(
        "self.conv2 = nn.Conv2d(64, 64, 3)", "self.conv2 = nn.Conv2d(64, num_classes, 1)"
    ).replace("return self.conv2(self.ln(self.conv(x)).relu())", pooled)
    assert codes(classifier, batch_size=32) == ["NRM013"]
    aliased = encoder.replace(
        "self.conv2 = nn.Conv2d(64, 64, 3)",
        "out = num_classes\n            self.conv2 = nn.Conv2d(64, out, 1)",
    ).replace("return self.conv2(self.ln(self.conv(x)).relu())", pooled)
    assert codes(aliased, batch_size=32) == ["NRM013"]
    # a 1x1 conv writing per-pixel class maps is a segmentation head (nnU-Net's
    # InstanceNorm at batch 2 is a choice B5's ImageNet numbers do not judge): silent
    segmentation = encoder.replace(
        "self.conv2 = nn.Conv2d(64, 64, 3)", "self.conv2 = nn.Conv2d(64, num_classes, 1)"
    )
    assert codes(segmentation, batch_size=32) == []


STARRED_RESHAPE = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(32, 32)
        self.norm_star = nn.LayerNorm(32)
        self.norm_tuple = nn.LayerNorm(32)
        self.norm_flat = nn.LayerNorm(32)

    def forward(self, x):
        shape = x.shape[:-1]
        a = self.norm_star(self.fc(x).reshape(*shape, -1))
        b = self.norm_tuple(self.fc(x).view((*shape, -1)))
        c = self.norm_flat(self.fc(x).view(x.size(0), -1))
        return a, b, c
"""


def test_a_starred_shape_leaves_the_rank_unknown() -> None:
    """``reshape(*shape, -1)`` is not a 2-d ``view(n, -1)``: the star may spread any number
    of dims (tokens in HF attention), so it must not read as (N, C) features."""
    ctx = analyze_context(textwrap.dedent(STARRED_RESHAPE), "m.py", AnalysisOptions())
    (net,) = ctx.models
    kinds = {path: net.first_app(layer).inp.kind for path, layer in net.norm_layers()}
    assert kinds["norm_flat"] == "feat"  # the one that is (N, C)
    assert kinds["norm_star"] != "feat" and kinds["norm_tuple"] != "feat"


MIXED_SEQUENCE_NORMS = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


class Layer(nn.Module):
    def __init__(self, d=64):
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)
        self.attn_norm = RMSNorm(d)
        self.mlp_norm = nn.LayerNorm(d)
        self.fc = nn.Linear(d, d)

    def forward(self, x):
        q, k, v = self.qkv(self.attn_norm(x)).chunk(3, dim=-1)
        x = x + F.scaled_dot_product_attention(q, k, v)
        return x + self.fc(self.mlp_norm(x))
"""


def test_a_transformer_mixing_layernorm_and_rmsnorm_keeps_both() -> None:
    """B7 names both: "RMSNorm -> LayerNorm" (TimesFM) is churn, not advice."""
    assert report(MIXED_SEQUENCE_NORMS, "Layer").architecture == "transformer"
    assert set(suggestions(MIXED_SEQUENCE_NORMS, "Layer").values()) == {"keep"}


GN_CNN = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, bias=False)
        self.gn = nn.GroupNorm(32, 64)
        self.conv2 = nn.Conv2d(64, 64, 3, bias=False)
        self.gn2 = nn.GroupNorm(32, 64)

    def forward(self, x):
        return self.gn2(self.conv2(self.gn(self.conv(x))))
"""


def test_kept_groupnorm_at_an_unknown_batch_does_not_speak_of_this_batch() -> None:
    unknown = report(GN_CNN, "Net").recommendation
    assert unknown.norm == "gn" and unknown.rules.count("B2") == 1
    assert "this batch" not in " ".join([*unknown.rationale, *unknown.would_change])
    assert any("16 or more" in w for w in unknown.would_change)
    known = report(GN_CNN, "Net", batch_size=32).recommendation
    assert known.would_change == ["needing the last ~0.5 points at this batch size: bn"]


GN_HEAD_ON_BN_BACKBONE = """
import torch.nn as nn


class Head(nn.Module):
    def __init__(self, ch=256):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, ch, 3, bias=False), nn.BatchNorm2d(ch), nn.ReLU())
        self.tower = nn.Sequential(nn.Conv2d(ch, ch, 3, bias=False), nn.GroupNorm(32, ch))
        self.sync = nn.SyncBatchNorm(ch)

    def forward(self, x):
        return self.sync(self.tower(self.stem(x)))
"""


def test_batch_independent_sites_are_not_made_bn_without_the_batch() -> None:
    """An FCOS-style GN tower on a BN backbone, and a SyncBatchNorm, at an unknown batch:
    each stays (README: never switched to BN without the batch as evidence)."""
    assert set(suggestions(GN_HEAD_ON_BN_BACKBONE, "Head").values()) == {"keep"}
    at_64 = suggestions(GN_HEAD_ON_BN_BACKBONE, "Head", batch_size=64)
    assert at_64["tower.1"] == "nn.BatchNorm2d(256)"  # with the batch as evidence: B1


LN_ON_MAP = """
import torch.nn as nn


class Stem(nn.Module):
    def __init__(self, width=256):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 16, 16, bias=False)
        self.ln = nn.LayerNorm(width)

    def forward(self, x):
        return self.ln(self.conv(x))
"""


def test_a_kept_norm_is_never_one_a_rule_flags() -> None:
    """LayerNorm(C) on an (N, C, H, W) map is NRM002; keeping LN at an unknown batch
    means a LayerNorm over the channels, not the flagged layer."""
    assert "NRM002" in codes(LN_ON_MAP)
    assert suggestions(LN_ON_MAP, "Stem") == {"ln": 'normsuite.build_norm("ln", 256)'}


RNN_WITH_BN_OUTSIDE = """
import torch.nn as nn


class SensorLSTM(nn.Module):
    def __init__(self, c=9, hidden=64):
        super().__init__()
        self.input_bn = nn.BatchNorm1d(c)
        self.lstm = nn.LSTM(c, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 6)

    def forward(self, x):
        x = self.input_bn(x.transpose(1, 2)).transpose(1, 2)
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


class GRUTagger(nn.Module):
    def __init__(self, hidden=64):
        super().__init__()
        self.cell = nn.GRUCell(32, hidden)
        self.hidden = hidden
        self.bn = nn.BatchNorm1d(hidden)

    def forward(self, x):
        h = x.new_zeros(x.size(0), self.hidden)
        for t in range(x.size(1)):
            h = self.cell(x[:, t], h)
        return self.bn(h)
"""


def test_bn_outside_the_recurrence_is_kept() -> None:
    """B6 is LN inside the cell; NRM007 is silent on a BN on the inputs or the last state,
    and recommend agrees (it said "-> nn.LayerNorm(9)" on an (N, 9, T) input: an error)."""
    assert "NRM007" not in codes(RNN_WITH_BN_OUTSIDE, batch_size=32)
    for name in ("SensorLSTM", "GRUTagger"):
        rec = report(RNN_WITH_BN_OUTSIDE, name, batch_size=32).recommendation
        assert rec.norm == "bn" and rec.confidence == "medium", name
        assert set(suggestions(RNN_WITH_BN_OUTSIDE, name, batch_size=32).values()) == {"keep"}


SYNCED_BN = """
import lightning as L
import torch.nn as nn
from torch.utils.data import DataLoader


class Net(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, bias=False)
        self.bn = nn.BatchNorm2d(64)

    def forward(self, x):
        return self.bn(self.conv(x))


trainer = L.Trainer(devices=8, strategy="ddp", sync_batchnorm={sync})
trainer.fit(Net(), DataLoader(ds, batch_size=4, shuffle=True))
"""


def test_synced_bn_over_a_large_global_batch_is_kept() -> None:
    """4 per device on 8 synced devices: BN normalizes 32 samples (B3 is what the code
    already does), so no 'gn' and no 'SyncBN would restore...'; unsynced, gn or syncbn."""
    synced = report(SYNCED_BN.format(sync="True"), "Net").recommendation
    assert synced.norm == "bn" and set(
        suggestions(SYNCED_BN.format(sync="True"), "Net").values()
    ) == {"keep"}
    assert "global batch of 32" in synced.rationale[0]
    plain = report(SYNCED_BN.format(sync="False"), "Net").recommendation
    assert plain.norm == "gn" and "syncbn" in plain.alternatives


D6_WITH_A_FLAGGED_LN = """
import torch.nn as nn


class Encoder(nn.Module):
    def __init__(self, dim=64):
        super().__init__()
        self.conv = nn.Conv1d(80, dim, 3, padding=1)
        self.norm = nn.LayerNorm(dim)
        self.conv2 = nn.Conv1d(dim, dim, 3, padding=1)
        self.ln_tokens = nn.LayerNorm(dim)

    def forward(self, x):
        x = self.norm(self.conv(x))
        x = self.conv2(x)
        return self.ln_tokens(x.transpose(1, 2))
"""


def test_a_domain_that_keeps_ln_never_keeps_one_nrm002_flags() -> None:
    """D6 (channel LN by design) keeps its LNs, but the one over L of an (N, C, L) conv
    output is NRM002's error: it becomes the channel LN, not "keep"."""
    assert "NRM002" in codes(D6_WITH_A_FLAGGED_LN)
    advice = suggestions(D6_WITH_A_FLAGGED_LN, "Encoder")
    assert advice["norm"] != "keep" and advice["ln_tokens"] == "keep"


LN_CNN_TRAINED = """
import argparse
import torch
import torch.nn as nn
from torch.utils.data import DataLoader


class Encoder(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, bias=False)
        self.norm = nn.InstanceNorm2d(64, affine=True)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.fc(self.norm(self.conv(x)).mean((2, 3)))


p = argparse.ArgumentParser()
p.add_argument("--batch-size", type=int, default=32)
args = p.parse_args()
model = Encoder()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x in DataLoader(ds, batch_size={batch}, shuffle=True):
    opt.zero_grad()
    model(x).mean().backward()
    opt.step()
"""


def test_a_default_batch_does_not_switch_a_batch_free_norm_to_bn() -> None:
    """CPC-style: a batch-independent norm chosen by the code, and a batch that is only a
    default (argparse, a DataModule signature): kept, saying so. The batch the loop itself
    sets (a literal) is evidence: B1."""
    weak = report(LN_CNN_TRAINED.format(batch="args.batch_size"), "Encoder")
    assert weak.batch_size.weak and weak.batch_size.per_device == 32
    assert set(suggestions(LN_CNN_TRAINED.format(batch="args.batch_size"), "Encoder").values()) == {
        "keep"
    }
    strong = report(LN_CNN_TRAINED.format(batch="32"), "Encoder")
    assert not strong.batch_size.weak and strong.recommendation.norm == "bn"


METAFORMER_PRE_NORM = """
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, dim=64):
        super().__init__()
        self.mixer = nn.Sequential(nn.GroupNorm(1, dim), nn.Conv2d(dim, dim, 3, padding=1))
        self.mlp = nn.Sequential(nn.GroupNorm(1, dim), nn.Conv2d(dim, dim, 1))

    def forward(self, x):
        x = x + self.mixer(x)
        return x + self.mlp(x)


class Net(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 4, 4, bias=False), nn.BatchNorm2d(64))
        self.blocks = nn.Sequential(Block(), Block())
        self.head = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))
"""


def test_metaformer_pre_norms_are_kept_at_a_large_batch() -> None:
    """GroupNorm(1, C) first in its block (PoolFormer, MobileViTv2): a design choice, kept
    as NRM013 leaves it; it was "bn, high" turning every pre-norm into BatchNorm2d."""
    advice = suggestions(METAFORMER_PRE_NORM, "Net", batch_size=64)
    assert {site for site, s in advice.items() if s != "keep"} == set()


@pytest.mark.parametrize(
    "stack",
    [
        "nn.Sequential(Block(), Block(), nn.GroupNorm(1, 64))",
        "nn.Sequential(*[Block() for _ in range(2)], nn.GroupNorm(1, 64))",
    ],
)
def test_the_norm_closing_a_stack_of_pre_norm_blocks_is_kept(stack: str) -> None:
    """MobileViTv2's ``Sequential(*blocks, GroupNorm(1, C))``: the stack's final norm is the
    same design as its pre-norms (it was "GroupNorm(1, dim) -> nn.BatchNorm2d(128)" at batch
    64, and NRM013 fired on it alone)."""
    source = METAFORMER_PRE_NORM.replace("nn.Sequential(Block(), Block())", stack)
    advice = suggestions(source, "Net", batch_size=64)
    assert advice["blocks.2"] == "keep"
    result = analyze_source(source, "m.py", AnalysisOptions())
    assert [f.code for f in result.findings if f.code == "NRM013"] == []


CONV_LSTM = """
import torch
import torch.nn as nn


class ConvLSTMCell(nn.Module):
    def __init__(self, cin, hidden):
        super().__init__()
        self.hidden = hidden
        self.conv = nn.Conv2d(cin + hidden, 4 * hidden, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4 * hidden)

    def forward(self, x, state):
        h, c = state
        i, f, o, g = torch.split(self.bn(self.conv(torch.cat([x, h], 1))), self.hidden, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class Forecaster(nn.Module):
    def __init__(self, hidden=64):
        super().__init__()
        self.hidden = hidden
        self.enc = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32))
        self.cell = ConvLSTMCell(32, hidden)

    def forward(self, frames):
        h = torch.zeros(frames.shape[0], self.hidden, 8, 8)
        c = torch.zeros_like(h)
        for t in range(frames.shape[1]):
            h, c = self.cell(self.enc(frames[:, t]), (h, c))
        return h
"""


def test_a_block_never_contradicts_its_parents_advice_for_the_same_layer() -> None:
    """A ConvLSTM cell judged alone keeps its gate BN; its forecaster steps it over time and
    turns it into LayerNorm (NRM007). The cell (shown with --all-modules) said "keep" for
    the layer its parent and NRM007 change; now a block its parent steps is a cell (and a
    block that still disagrees defers to its parent, see the next test)."""
    result = analyze_source(CONV_LSTM, "m.py", AnalysisOptions())
    cell = next(m for m in result.models if m.name == "ConvLSTMCell")
    parent = next(m for m in result.models if m.name == "Forecaster")
    assert cell.part_of == "Forecaster"
    (gate,) = [s for s in parent.recommendation.layers if s.site == "cell.bn"]
    assert "ln" in gate.suggested and gate.suggested != gate.current
    # the cell its forecaster steps is a cell: its own advice is the LayerNorm too
    (own,) = cell.recommendation.layers
    assert own.suggested != own.current and "ln" in own.suggested
    assert any(f.code == "NRM007" and f.line == 11 for f in result.findings)


CONTEXT_BLOCK = """
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, c=64, planes=16):
        super().__init__()
        self.conv = nn.Conv2d(3, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.add = nn.Sequential(
            nn.Conv2d(c, planes, 1), nn.LayerNorm([planes, SIZE]), nn.ReLU(),
            nn.Conv2d(planes, c, 1)
        )
        self.fc = nn.Linear(c, 10)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        x = x + self.add(POOL)
        return self.fc(x.mean((2, 3)))
"""


def test_layernorm_over_a_pooled_context_is_kept_and_a_chw_one_gets_a_valid_layer() -> None:
    """GCNet's context block: ``LayerNorm([planes, 1, 1])`` on the pooled (N, C, 1, 1)
    context is no feature-map norm: kept, no NRM013 (it was "-> nn.BatchNorm2d([planes, 1,
    1])", which raises). A LayerNorm over (C, H, W) maps that B5 does switch gets
    BatchNorm2d(planes), the channels being the shape's first entry."""
    pooled = CONTEXT_BLOCK.replace("SIZE", "1, 1").replace("POOL", "x.mean((2, 3), keepdim=True)")
    assert suggestions(pooled, "Net", batch_size=32)["add.1"] == "keep"
    result = analyze_source(pooled, "m.py", AnalysisOptions())
    assert [f.code for f in result.findings if f.code == "NRM013"] == []
    maps = CONTEXT_BLOCK.replace("SIZE", "8, 8").replace("POOL", "x")
    assert suggestions(maps, "Net", batch_size=32)["add.1"] == "nn.BatchNorm2d(planes)"


GRU_TAGGER = """
import torch.nn as nn


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(16, 64, batch_first=True)
        self.bn = nn.BatchNorm1d(64)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.bn(out)
"""

TOKENS_BN = """
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, d=64):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, 4, batch_first=True)
        self.bn = nn.BatchNorm1d(d)

    def forward(self, x):
        x = x + self.attn(x, x, x)[0]
        return self.bn(x.transpose(1, 2)).transpose(1, 2)
"""


def test_a_kept_bn_that_nrm012_flags_becomes_a_valid_layernorm() -> None:
    """NRM012's own example (BatchNorm1d on a GRU's (N, L, C) output) was "keep" as BN
    outside the recurrence, while check calls it an error (it raises in PyTorch)."""
    assert suggestions(GRU_TAGGER, "Tagger")["bn"] == "nn.LayerNorm(64)"
    rec = report(GRU_TAGGER, "Tagger").recommendation
    assert not any("Kept as they are" in line for line in rec.rationale)
    assert "NRM012" in codes(GRU_TAGGER)


def test_bn_on_transposed_tokens_gets_a_channel_layernorm_on_n_c_l() -> None:
    """``self.bn(x.transpose(1, 2))`` after attention sees (N, C, L): nn.LayerNorm(64)
    there raises; the channel LayerNorm for (N, C, L) is what NRM007 names too."""
    assert suggestions(TOKENS_BN, "Block")["bn"] == 'normsuite.build_norm("ln", 64, ndim=3)'


SOFTMAX_MODULE = """
import torch.nn as nn


class Attention(nn.Module):
    def __init__(self, dim=128, heads=4):
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.attend = nn.Softmax(dim=-1)
        self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = self.to_qkv(self.norm(x)).reshape(B, N, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attn = self.attend(q @ k.transpose(-1, -2))
        return self.to_out((attn @ v).transpose(1, 2).reshape(B, N, C))


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 4)
        self.norm = nn.BatchNorm1d(16)
        self.out = nn.Softmax(dim=1)

    def forward(self, x):
        return self.out(self.fc(self.norm(x)))
"""


def test_an_nn_softmax_attribute_is_the_attention_softmax() -> None:
    """lucidrains' ViT / CoAtNet: ``self.attend = nn.Softmax(dim=-1)`` over ``q @ k^T``.
    The block was "mlp" ("Kept ln: at batch >= 16 BatchNorm1d is the B11 choice"); an
    nn.Softmax after a Linear with no product is still a classifier's output."""
    attention = report(SOFTMAX_MODULE, "Attention")
    assert attention.architecture == "transformer"
    assert report(SOFTMAX_MODULE, "Classifier").architecture == "mlp"


LOSS_NETWORK = """
import torch
import torch.nn as nn


class LossNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3))
        FREEZE_INIT

    def forward(self, x):
        return self.f(x)


lossnet = LossNet()
FREEZE_SCRIPT
"""


@pytest.mark.parametrize(
    ("init", "script", "frozen"),
    [
        ("for p in self.parameters():\n            p.requires_grad = False", "", True),
        ("pass", "lossnet.requires_grad_(False)", True),
        ("pass", "", False),
        # a schedule that unfreezes later: the network is trained after all
        ("self.requires_grad_(False)", "lossnet.requires_grad_(True)", False),
        # frozen only by a flag (FLAVA's codebook), or before a module that trains (P-tuning)
        ("if FREEZE:\n            self.requires_grad_(False)", "", False),
        ("self.requires_grad_(False)\n        self.prefix = nn.Linear(64, 64)", "", False),
    ],
)
def test_a_network_with_frozen_weights_gets_no_norm_added(
    init: str, script: str, frozen: bool
) -> None:
    """fast-neural-style's Vgg16 loss network (``requires_grad = False``) got "gn, medium
    (B2, B4)": advice to add GroupNorm to a network that is not trained."""
    source = LOSS_NETWORK.replace("FREEZE_INIT", init).replace("FREEZE_SCRIPT", script)
    loss_net = report(source, "LossNet", batch_size=4)
    assert (loss_net.recommendation is None) is frozen
    if frozen:
        assert loss_net.abstain is not None and "not trained here" in loss_net.abstain


PARTIAL_BLOCK = """
from functools import partial

import torch.nn as nn


class ConvBlock(nn.Module):
    def __init__(self, cin, cout, k=3):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm1d(cout)

    def forward(self, x):
        return self.bn(self.conv(x)).relu()


class Net(nn.Module):
    def __init__(self, block_fn=partial(ConvBlock, k=5), width=64):
        super().__init__()
        self.body = block_fn(12, width)
        self.final_bn = nn.BatchNorm1d(width)
        self.head = nn.Linear(width, 5)

    def forward(self, x):
        return self.head(self.final_bn(self.body(x)).mean(-1))
"""


def test_a_block_built_through_functools_partial_is_read() -> None:
    """``block_fn=partial(ConvBlock, k=5)``: the Conv1d block was opaque, the model "mlp",
    and final_bn's advice nn.LayerNorm(64) on an (N, 64, L) map, which raises."""
    net = report(PARTIAL_BLOCK, "Net", batch_size=4)
    assert net.architecture == "cnn1d"
    advice = suggestions(PARTIAL_BLOCK, "Net", batch_size=4)
    assert advice == {"body.bn": "nn.GroupNorm(32, 64)", "final_bn": "nn.GroupNorm(32, 64)"}


TTS = """
import torch
import torch.nn as nn


class Decoder(nn.Module):  # GRUCell + additive attention, no conv, no norm
    def __init__(self, d=128):
        super().__init__()
        self.q = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, 1, bias=False)
        self.cell = nn.GRUCell(2 * d, d)
        self.out = nn.Linear(d, 80)

    def forward(self, mem, steps):
        h = mem.new_zeros(mem.size(0), mem.size(2))
        ctx = mem.new_zeros(mem.size(0), mem.size(2))
        outs = []
        for _ in range(steps):
            h = self.cell(torch.cat([ctx, h], -1), h)
            a = self.v(torch.tanh(self.q(h)[:, None] + mem)).squeeze(-1).softmax(-1)
            ctx = torch.bmm(a[:, None], mem).squeeze(1)
            outs.append(self.out(h))
        return torch.stack(outs, 1)


class TTS(nn.Module):
    def __init__(self, d=128):
        super().__init__()
        self.emb = nn.Embedding(100, d)
        self.conv = nn.Conv1d(d, d, 5, padding=2, bias=False)
        self.bn = nn.BatchNorm1d(d)
        self.decoder = Decoder(d)

    def forward(self, text, steps):
        x = self.bn(self.conv(self.emb(text).transpose(1, 2))).relu().transpose(1, 2)
        return self.decoder(x, steps)
"""


def test_a_speech_model_with_a_recurrent_attention_decoder_is_no_vision_hybrid() -> None:
    """Tacotron-style: a Conv1d+BN text encoder and a GRUCell attention decoder. It was
    "domain D7: mobile vision hybrid", and its decoder block "bn (D7)"; r25 says an RNN
    attention decoder never gets CNN/BN advice."""
    result = analyze_source(TTS, "m.py", AnalysisOptions())
    for model in result.models:
        assert model.domain is None or not model.domain.startswith("D7"), model.name
    decoder = next(m for m in result.models if m.name == "Decoder")
    assert decoder.recommendation is None or decoder.recommendation.norm == "ln"


HELPER_LOOP = """
import torch
import torch.nn as nn


class Cell(nn.Module):
    def __init__(self, n_in=16, n_hid=32):
        super().__init__()
        self.x2h = nn.Linear(n_in, n_hid, bias=False)
        self.h2h = nn.Linear(n_hid, n_hid, bias=False)
        self.bn = nn.BatchNorm1d(n_hid)

    def forward(self, x, h):
        return torch.tanh(self.x2h(x) + self.bn(self.h2h(h)))


class Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = Cell()

    def _unroll(self, xs, h):
        for t in range(xs.size(0)):
            h = self.cell(xs[t], h)
        return h

    def forward(self, xs, h):
        return self._unroll(xs, h)
"""


def test_a_time_loop_in_a_helper_method_is_a_recurrence() -> None:
    """``forward`` returns ``self._unroll(xs, h)``, whose loop steps the cell with h fed
    back: the model was "mlp", its hidden-path BN kept ("bn, medium" at batch 64), no
    NRM007; the same loop written in forward was handled."""
    seq = report(HELPER_LOOP, "Seq", batch_size=64)
    assert seq.architecture == "rnn"
    assert suggestions(HELPER_LOOP, "Seq", batch_size=64)["cell.bn"] == "nn.LayerNorm(32)"
    assert "NRM007" in codes(HELPER_LOOP)


def test_a_block_that_disagrees_with_its_parent_defers() -> None:
    from normsuite.analysis.analyze import _agree_with_parents
    from normsuite.analysis.types import LayerSuggestion, ModelReport, Recommendation

    def model(name: str, suggested: str, part_of: str | None = None) -> ModelReport:
        site = LayerSuggestion("bn", 3, "nn.BatchNorm2d(c)", suggested)
        return ModelReport(
            name, 1, "cnn2d", recommendation=Recommendation("bn", [site]), part_of=part_of
        )

    parent = model("Net", "nn.GroupNorm(32, 64)")
    agrees = model("Block", "nn.GroupNorm(32, c)", part_of="Net")
    differs = model("Other", "nn.BatchNorm2d(c)", part_of="Net")
    out = {m.name: m for m in _agree_with_parents([parent, agrees, differs])}
    assert out["Block"].recommendation is not None  # same advice, written per block
    assert out["Other"].recommendation is None and "judged in Net's context" in out["Other"].abstain


TILED = """
import torch
import torch.nn as nn


class Tiler(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        rows = []
        for i in range(0, x.shape[2], 64):
            row = []
            for j in range(0, x.shape[3], 64):
                tile = x[:, :, i : i + 64, j : j + 64]
                tile = self.bn(self.conv(tile))
                row.append(tile)
            rows.append(torch.cat(row, 3))
        return torch.cat(rows, 2)
"""


def test_a_tile_loop_is_no_recurrence() -> None:
    """diffusers' tiled VAE encoding: ``tile`` is set at the top of the inner loop, then
    convolved; read as state carried over by the outer loop, the model was "hybrid" with
    a "Conv2d stepped in a loop with its state fed back"."""
    tiler = report(TILED, "Tiler")
    assert tiler.architecture == "cnn2d"
    assert "NRM007" not in codes(TILED)


SPADE_BY_CONFIG = """
import re
import torch
import torch.nn as nn
import torch.nn.functional as F


class SPADE(nn.Module):
    def __init__(self, config_text, norm_nc, label_nc):
        super().__init__()
        kind = str(re.search(r"spade(\\\\D+)(\\\\d)x\\\\d", config_text).group(1))
        if kind == "instance":
            self.param_free_norm = nn.InstanceNorm2d(norm_nc, affine=False)
        elif kind == "batch":
            self.param_free_norm = nn.BatchNorm2d(norm_nc, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, 128, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(128, norm_nc, 3, padding=1)
        self.mlp_beta = nn.Conv2d(128, norm_nc, 3, padding=1)

    def forward(self, x, segmap):
        normalized = self.param_free_norm(x)
        actv = self.mlp_shared(F.interpolate(segmap, size=x.size()[2:]))
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class Generator(nn.Module):
    def __init__(self, nf=64, label_nc=35, norm_g="spadebatch3x3"):
        super().__init__()
        self.fc = nn.Conv2d(label_nc, nf, 3, padding=1)
        self.norm = SPADE(norm_g, nf, label_nc)
        self.up = nn.Upsample(scale_factor=2)
        self.conv_img = nn.Conv2d(nf, 3, 3, padding=1)

    def forward(self, seg):
        x = self.up(self.norm(self.fc(seg), seg))
        return torch.tanh(self.conv_img(x))
"""


def test_the_param_free_norm_of_a_spade_picked_by_a_config_string_is_kept() -> None:
    """GauGAN's SPADE picks its param-free norm from a config string (read by a regex, so
    both branches are seen): the InstanceNorm side made the generator D1 and its
    BatchNorm2d(affine=False) became InstanceNorm2d(affine=True). Both are SPADE's own."""
    advice = suggestions(SPADE_BY_CONFIG, "Generator")
    assert advice and set(advice.values()) == {"keep"}


COSINE_HEAD = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class CosineHead(nn.Module):
    def __init__(self, in_features=512, out_features=1000, s=30.0):
        super().__init__()
        self.s = s
        self.weight = nn.Parameter(torch.randn(out_features, in_features))

    def forward(self, x):
        return self.s * F.linear(F.normalize(x), F.normalize(self.weight))
"""


def test_a_cosine_head_is_not_a_norm_layer() -> None:
    """ArcFace's margin head normalizes, then projects: the reason given was "a norm layer
    (behaves as LayerNorm2d), not a model", which is false (the abstention is right)."""
    head = report(COSINE_HEAD, "CosineHead")
    assert head.recommendation is None and "norm layer" not in (head.abstain or "")


OPAQUE_CONV_VAE = """
import torch
import torch.nn.functional as F
from torch import nn
from monai.networks.blocks import Convolution  # not resolvable here (as in MONAI)


class ResBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.norm1 = nn.GroupNorm(num_groups=32, num_channels=ch, eps=1e-6, affine=True)
        self.conv1 = Convolution(2, ch, ch, strides=1, kernel_size=3)
        self.norm2 = nn.GroupNorm(num_groups=32, num_channels=ch, eps=1e-6, affine=True)
        self.conv2 = Convolution(2, ch, ch, strides=1, kernel_size=3)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return x + h


class AttnBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.norm = nn.GroupNorm(32, ch, eps=1e-6, affine=True)
        self.to_qkv = nn.Linear(ch, 3 * ch)
        self.out = nn.Linear(ch, ch)

    def forward(self, x):
        b, c, h, w = x.shape
        t = self.norm(x).view(b, c, h * w).transpose(1, 2)
        q, k, v = self.to_qkv(t).chunk(3, dim=-1)
        a = torch.softmax(q @ k.transpose(1, 2) / c**0.5, dim=-1)
        t = self.out(a @ v)
        return x + t.transpose(1, 2).reshape(b, c, h, w)


class Encoder(nn.Module):
    def __init__(self, ch=64, z=4):
        super().__init__()
        self.conv_in = Convolution(2, 3, ch, strides=1, kernel_size=3)
        self.res1 = ResBlock(ch)
        self.attn = AttnBlock(ch)
        self.res2 = ResBlock(ch)
        self.norm_out = nn.GroupNorm(32, ch, eps=1e-6, affine=True)
        self.conv_out = Convolution(2, ch, 2 * z, strides=1, kernel_size=3)

    def forward(self, x):
        x = self.conv_in(x)
        x = self.res2(self.attn(self.res1(x)))
        return self.conv_out(F.silu(self.norm_out(x)))
"""


def test_groupnorm_on_conv_features_is_kept_in_a_model_labelled_transformer() -> None:
    """MONAI's diffusion VAEs build their convs with a library block the analyzer cannot
    read, and one attention block made the model a "transformer": every GroupNorm on the
    conv maps became build_norm("ln", 64) (B7). GroupNorm takes channels-first data."""
    advice = suggestions(OPAQUE_CONV_VAE, "Encoder")
    assert advice and set(advice.values()) == {"keep"}
    assert report(OPAQUE_CONV_VAE, "Encoder").recommendation.norm == "gn"


MIL_MODEL = """
import torch
import torchvision.models as models
from torch import nn


class MILModel(nn.Module):
    def __init__(self, num_classes: int, trans_blocks: int = 4):
        super().__init__()
        net = models.resnet50(weights=models.ResNet50_Weights.IMAGENET1K_V1)
        nfc = net.fc.in_features
        net.fc = nn.Identity()
        layer = nn.TransformerEncoderLayer(d_model=nfc, nhead=8)
        self.transformer = nn.TransformerEncoder(layer, num_layers=trans_blocks)
        self.attention = nn.Sequential(nn.Linear(nfc, 2048), nn.Tanh(), nn.Linear(2048, 1))
        self.myfc = nn.Linear(nfc, num_classes)
        self.net = net

    def forward(self, x):  # x: (B, N, C, H, W): N instances per bag
        sh = x.shape
        x = x.reshape(sh[0] * sh[1], sh[2], sh[3], sh[4])
        x = self.net(x)
        x = x.reshape(sh[0], sh[1], -1)
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        a = torch.softmax(self.attention(x), dim=1)
        return self.myfc(torch.sum(x * a, dim=1))
"""


def test_a_cnn_backbone_feeding_a_transformer_head_keeps_its_norms() -> None:
    """MONAI's MILModel: a pretrained ResNet-50 embeds each instance, a TransformerEncoder
    pools them. The backbone got "then normsuite.convert_norms(model, 'ln')" because its
    output feeds tokens; a torchvision CNN's norms are a CNN's (B5, B10)."""
    assert suggestions(MIL_MODEL, "MILModel") == {"net": "keep"}
    assert "ln" not in suggestions(MIL_MODEL, "MILModel", batch_size=64)["net"]


INPUT_BN_CELL = """
import torch.nn as nn


class Enc(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn_in = nn.BatchNorm1d(32)
        self.cell = nn.LSTMCell(32, 64)

    def forward(self, x, h, c):
        for t in range(x.size(0)):
            h, c = self.cell(ARG, (h, c))
        return h
"""


def test_bn_on_a_cells_per_step_input_is_not_on_the_recurrent_path() -> None:
    """``self.cell(self.bn_in(x[t]), (h, c))`` normalizes the input (NRM007's page: silent
    on the input-to-hidden side); it was "on the recurrent path" and became LayerNorm. BN
    on the state handed in (``self.bn_in(h)``) is on the path."""
    source = INPUT_BN_CELL.replace("ARG", "self.bn_in(x[t])")
    assert "NRM007" not in codes(source)
    assert suggestions(source, "Enc")["bn_in"] == "keep"
    on_state = INPUT_BN_CELL.replace("ARG", "x[t] + self.bn_in(h[:, :32])")
    assert "NRM007" in codes(on_state)


VISTA_CLASS_MAPPING = """
import torch
from torch import nn


class ClassMappingClassify(nn.Module):
    def __init__(self, n_classes: int = 512, feature_size: int = 64):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(feature_size, feature_size),
            nn.InstanceNorm1d(1),
            nn.GELU(),
            nn.Linear(feature_size, feature_size),
        )
        self.class_embeddings = nn.Embedding(n_classes, feature_size)

    def forward(self, src: torch.Tensor, class_vector: torch.Tensor):
        # class_vector: (B, 1) class ids -> embedding (B, 1, F)
        class_embedding = self.mlp(self.class_embeddings(class_vector))
        b, c, h, w, d = src.shape
        masks = class_embedding.squeeze() @ src.view(b, c, h * w * d)
        return masks.view(b, -1, h, w, d).transpose(0, 1)
"""


def test_a_norm_over_a_single_channel_is_not_turned_into_a_constant() -> None:
    """MONAI vista3d's ``InstanceNorm1d(1)`` on a (B, 1, F) class embedding normalizes over
    F; the advice was build_norm("ln", 1, ndim=3), a LayerNorm over one channel, whose
    output is constant. It is kept."""
    assert suggestions(VISTA_CLASS_MAPPING, "ClassMappingClassify")["mlp.1"] == "keep"


HELPER_METHOD_RMSNORM = """
import torch
import torch.nn as nn


class GemmaRMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(dim))

    def _norm(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def forward(self, x):
        output = self._norm(x.float())
        output = output * (1.0 + self.weight.float())
        return output.type_as(x)


class DecoderLayer(nn.Module):
    def __init__(self, d=64):
        super().__init__()
        self.input_layernorm = GemmaRMSNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.o = nn.Linear(d, d)
        self.post_attention_layernorm = GemmaRMSNorm(d)
        self.mlp = nn.Linear(d, d)

    def forward(self, x):
        q, k, v = self.qkv(self.input_layernorm(x)).chunk(3, dim=-1)
        a = (q @ k.transpose(-1, -2)).softmax(-1) @ v
        x = x + self.o(a)
        return x + self.mlp(self.post_attention_layernorm(x))
"""


def test_a_norm_class_computing_in_a_helper_method_is_a_norm() -> None:
    """Gemma's RMSNorm computes its statistics in ``self._norm(x)``: it is an RMSNorm site
    (the model's norms are not "none"), and the class itself gets no verdict."""
    layer = report(HELPER_METHOD_RMSNORM, "DecoderLayer")
    assert {n.name: n.kind for n in layer.norms_found} == {
        "input_layernorm": "rms",
        "post_attention_layernorm": "rms",
    }
    assert set(suggestions(HELPER_METHOD_RMSNORM, "DecoderLayer").values()) == {"keep"}
    assert "norm layer" in (report(HELPER_METHOD_RMSNORM, "GemmaRMSNorm").abstain or "")


NORM_FREE_SEQUENCE_MODELS = """
import torch.nn as nn


class Encoder(nn.Module):
    def __init__(self, d=64):
        super().__init__()
        self.emb = nn.Embedding(100, d)
        self.layer = nn.TransformerEncoderLayer(d, 4, batch_first=True)
        self.head = nn.Linear(d, 10)

    def forward(self, x):
        return self.head(self.layer(self.emb(x)))


class SelfAttention(nn.Module):
    def __init__(self, d=64):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.o = nn.Linear(d, d)

    def forward(self, x):
        a = (self.q(x) @ self.k(x).transpose(-1, -2)).softmax(-1)
        return self.o(a @ self.v(x))


class NormFreeTransformer(nn.Module):
    def __init__(self, d=64):
        super().__init__()
        self.emb = nn.Embedding(100, d)
        self.attn = SelfAttention(d)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.head = nn.Linear(d, 10)

    def forward(self, x):
        x = self.emb(x)
        x = x + self.attn(x)
        return self.head(x + self.ff(x))


class WordLM(nn.Module):
    def __init__(self, d=64):
        super().__init__()
        self.emb = nn.Embedding(100, d)
        self.rnn = nn.LSTM(d, d, batch_first=True)
        self.head = nn.Linear(d, 100)

    def forward(self, x):
        out, _ = self.rnn(self.emb(x))
        return self.head(out)
"""


def test_torch_transformer_layers_bring_their_own_layernorm() -> None:
    """``nn.TransformerEncoderLayer`` has LayerNorm inside (norm1, norm2): the model already
    uses B7's norm, and the advice says so rather than "add LN"."""
    rec = report(NORM_FREE_SEQUENCE_MODELS, "Encoder").recommendation
    assert rec is not None and rec.norm == "ln"
    assert any("built into nn.TransformerEncoderLayer" in r for r in rec.rationale)


def test_an_attention_layer_without_norms_gets_no_verdict() -> None:
    """An attention layer alone has no norm by design: its block holds them."""
    model = report(NORM_FREE_SEQUENCE_MODELS, "SelfAttention", batch_size=32)
    assert model.architecture == "transformer" and model.recommendation is None
    assert "attention computed in its own forward" in (model.abstain or "")


@pytest.mark.parametrize("name", ["NormFreeTransformer", "WordLM"])
def test_a_sequence_model_without_norms_is_told_what_to_add_not_that_it_lacks(name) -> None:
    """No norm in a Transformer or an RNN: the answer to "which norm" is LN, but norm-free
    is a design (nViT, ReZero, PyTorch's LSTM language models): low confidence, and the
    advice says it is the norm to add if one is wanted."""
    rec = report(NORM_FREE_SEQUENCE_MODELS, name, batch_size=32).recommendation
    assert rec is not None and rec.norm == "ln" and rec.confidence == "low"
    assert rec.rationale[0].startswith("No norm layer seen: this is the norm to add if")
    assert "norm-free by design is a valid choice" in rec.rationale[0]


UNTRACED_RMSNORM_LM = """
import torch.nn as nn
from mylib.blocks import DecoderBlock


class LM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.proj_in = nn.Linear(cfg.in_dim, cfg.hidden)
        self.layers = nn.ModuleList([DecoderBlock(cfg) for _ in range(cfg.n_layers)])
        self.norm = nn.RMSNorm(cfg.hidden)
        self.head = nn.Linear(cfg.hidden, cfg.vocab)

    def forward(self, x):
        x = self.proj_in(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x))
"""


def test_a_headline_never_contradicts_norms_kept_for_lack_of_tracing() -> None:
    """Blocks from another package hide the attention: by its visible layers the model is
    an MLP, and its RMSNorm is kept because its input may be tokens. The headline was "bn
    (medium)" above a "keep" line: it is now the kept norm, at low confidence."""
    rec = report(UNTRACED_RMSNORM_LM, "LM", batch_size=32).recommendation
    assert rec.norm == "rms" and rec.confidence == "low"
    assert set(suggestions(UNTRACED_RMSNORM_LM, "LM", batch_size=32).values()) == {"keep"}
    assert rec.rationale[0].startswith("Kept rms: the inputs of these norms could not be traced")
    assert rec.would_change[0] == "inputs traced as (N, C) features: bn (B11)"


HF_WRAPPER = """
import torch.nn as nn
import torch.nn.functional as F
from transformers import AutoModel


class Wav2Vec2(nn.Module):
    def __init__(self, source):
        super().__init__()
        self.load(source)

    def load(self, source):
        self.model = AutoModel.from_pretrained(source)

    def forward(self, wav):
        return self._forward_hf(wav)

    def _forward_hf(self, wav):
        out = self.model(wav).last_hidden_state
        return F.layer_norm(out, out.shape[-1:])
"""


def test_a_wrapper_whose_helper_runs_a_submodule_then_a_norm_is_not_a_norm() -> None:
    """speechbrain's wav2vec2 wrapper: ``self.model(...)`` then ``F.layer_norm`` in a helper
    is a model with an output norm, not a LayerNorm class."""
    assert "a norm layer" not in (report(HF_WRAPPER, "Wav2Vec2").abstain or "")


GRU_WITH_RMSNORM = """
import torch.nn as nn


class Tagger(nn.Module):
    def __init__(self, d=64):
        super().__init__()
        self.emb = nn.Embedding(100, d)
        self.rnn = nn.GRU(d, d, batch_first=True)
        self.norm = nn.RMSNorm(d)
        self.out = nn.Linear(d, 10)

    def forward(self, x):
        h, _ = self.rnn(self.emb(x))
        return self.out(self.norm(h))
"""


def test_rmsnorm_in_an_rnn_is_kept() -> None:
    """RMSNorm matched LN on GRU/LSTM tasks (Zhang & Sennrich 2019): "RMSNorm -> LayerNorm"
    in an RNN is churn (HRM's and ESMFold2's RMSNorms), as in a Transformer (B7)."""
    assert report(GRU_WITH_RMSNORM, "Tagger").architecture == "rnn"
    assert set(suggestions(GRU_WITH_RMSNORM, "Tagger", batch_size=32).values()) == {"keep"}


def test_an_rnn_mixing_layernorm_and_rmsnorm_keeps_both() -> None:
    """ESMFold2's recycling trunk (labelled rnn) mixes LN and RMSNorm: each is kept."""
    mixed = GRU_WITH_RMSNORM.replace(
        "self.out = nn.Linear(d, 10)",
        "self.out = nn.Linear(d, 10)\n        self.ln = nn.LayerNorm(d)",
    ).replace("self.out(self.norm(h))", "self.out(self.ln(self.norm(h)))")
    assert set(suggestions(mixed, "Tagger", batch_size=32).values()) == {"keep"}


CONVNEXT_WITH_CHANNEL_RMS = """
import torch
import torch.nn as nn


class ChannelRMS(nn.Module):
    def __init__(self, c, eps=1e-6):
        super().__init__()
        self.g = nn.Parameter(torch.ones(1, c, 1, 1))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + self.eps) * self.g


class LN2d(nn.Module):
    def __init__(self, c, eps=1e-6):
        super().__init__()
        self.w = nn.Parameter(torch.ones(c))
        self.b = nn.Parameter(torch.zeros(c))
        self.eps = eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.w[:, None, None] * x + self.b[:, None, None]


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = LN2d(c)
        self.pw = nn.Conv2d(c, 4 * c, 1)
        self.pw2 = nn.Conv2d(4 * c, c, 1)
        self.n2 = ChannelRMS(c)

    def forward(self, x):
        y = self.pw2(self.pw(self.norm(self.dw(x))).relu())
        return self.n2(x + y)
"""


@pytest.mark.parametrize("batch", [None, 4, 64])
def test_a_channel_rmsnorm_beside_channel_layernorm_is_kept(batch) -> None:
    """RMSNorm is LayerNorm without the centring, and matched it (Zhang & Sennrich 2019):
    in a ConvNeXt-style block (D6 keeps the channel LN) "RMSNorm -> LayerNorm" is churn
    with no evidence behind it, as it is in a Transformer or an RNN."""
    options = {} if batch is None else {"batch_size": batch}
    assert set(suggestions(CONVNEXT_WITH_CHANNEL_RMS, "Block", **options).values()) == {"keep"}


GRAPH_NETWORKS = """
import torch
from torch import nn
from torch_geometric.nn import GINConv


class Interaction(nn.Module):
    def __init__(self, hidden=64, num_gaussians=50):
        super().__init__()
        self.filter = nn.Sequential(nn.Linear(num_gaussians, hidden), nn.Linear(hidden, hidden))
        self.lin1 = nn.Linear(hidden, hidden, bias=False)
        self.lin2 = nn.Linear(hidden, hidden)

    def forward(self, h, edge_index, edge_attr):
        src, dst = edge_index
        msg = self.lin1(h)[src] * self.filter(edge_attr)
        return self.lin2(torch.zeros_like(h).index_add_(0, dst, msg))


class SchNet(nn.Module):
    def __init__(self, hidden=64):
        super().__init__()
        self.embedding = nn.Embedding(100, hidden)
        self.interactions = nn.ModuleList([Interaction(hidden) for _ in range(3)])
        self.lin = nn.Linear(hidden, 1)

    def forward(self, z, edge_index, edge_attr, batch):
        h = self.embedding(z)
        for block in self.interactions:
            h = h + block(h, edge_index, edge_attr)
        return self.lin(h)


class GIN(nn.Module):
    def __init__(self, cin=16, hidden=64, classes=2):
        super().__init__()
        self.conv1 = GINConv(nn.Sequential(nn.Linear(cin, hidden), nn.ReLU()))
        self.bn1 = nn.BatchNorm1d(hidden)
        self.conv2 = GINConv(nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU()))
        self.bn2 = nn.BatchNorm1d(hidden)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x, edge_index, batch):
        x = self.bn1(self.conv1(x, edge_index))
        x = self.bn2(self.conv2(x, edge_index))
        return self.out(x)
"""


@pytest.mark.parametrize("name", ["Interaction", "SchNet", "GIN"])
def test_a_graph_network_gets_no_verdict(name: str) -> None:
    """Message passing over ``edge_index``: an Embedding made SchNet a "transformer" and a
    Jumping-Knowledge LSTM made PyG's GNNs an "rnn", told LN. BatchNorm there normalizes
    over the nodes of the batch's graphs, not over a batch of samples: the B rules do not
    speak to it, at any batch size."""
    model = report(GRAPH_NETWORKS, name, batch_size=4)
    assert model.recommendation is None
    assert "graph network" in (model.abstain or "")


HIDDEN_NORMS = """
import torch.nn as nn
from asteroid.masknn import norms


class DPTransformer(nn.Module):
    def __init__(self, c=64, n_src=2, chunk=100):
        super().__init__()
        self.chunk = chunk
        self.layers = nn.ModuleList([nn.MultiheadAttention(c, 4) for _ in range(4)])
        self.rnn = nn.LSTM(c, c, batch_first=True)
        self.out = nn.Sequential(nn.PReLU(), nn.Conv2d(c, n_src * c, 1))

    def forward(self, seq):
        for attn in self.layers:
            seq = seq + attn(seq, seq, seq)[0]
        seq, _ = self.rnn(seq)
        return self.out(seq.transpose(1, 2).unsqueeze(-1))


class Registry(nn.Module):
    def __init__(self, norm_type="gLN"):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3)
        self.norm1 = norms.get(norm_type)(64)
        self.conv2 = nn.Conv2d(64, 64, 3)

    def forward(self, x):
        return self.conv2(self.norm1(self.conv1(x)).relu())
"""


def test_a_hybrid_without_norms_at_an_unknown_batch_abstains() -> None:
    """asteroid's DPTransformer (attention, LSTM, a conv out): its norm comes from a registry
    and the batch is unknown; "bn at >= 16, gn below" was advised where CNNs abstain."""
    model = report(HIDDEN_NORMS, "DPTransformer")
    assert model.architecture == "hybrid" and model.recommendation is None
    assert "batch size is unknown" in model.abstain


def test_a_model_built_in_part_from_unknown_modules_gets_no_norm_added() -> None:
    """``norms.get(norm_type)(64)`` may be the norm: at a known batch, "add BN" would be a
    guess about a model whose norm is hidden."""
    model = report(HIDDEN_NORMS, "Registry", batch_size=32)
    assert model.recommendation is None
    assert "its norms may be there" in model.abstain


INPUT_INSTANCENORM = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicLayer(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.layer = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout, affine=False),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.layer(x)


class KeypointNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.InstanceNorm2d(1)
        self.block1 = nn.Sequential(BasicLayer(1, 8, 2), BasicLayer(8, 24, 2))
        self.block2 = nn.Sequential(BasicLayer(24, 64, 2), BasicLayer(64, 64))
        self.heatmap_head = nn.Sequential(BasicLayer(64, 64), nn.Conv2d(64, 1, 1), nn.Sigmoid())
        self.desc_head = nn.Conv2d(64, 64, 1)

    def forward(self, x):
        with torch.no_grad():
            x = self.norm(x.mean(dim=1, keepdim=True))
        f = self.block2(self.block1(x))
        heat = F.interpolate(self.heatmap_head(f), scale_factor=8, mode="bilinear")
        return self.desc_head(f), heat


class Classifier(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.norm = nn.InstanceNorm2d(3)
        self.body = nn.Sequential(BasicLayer(3, 32, 2), BasicLayer(32, 64, 2))
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.body(self.norm(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))
"""


def test_an_instancenorm_standardizing_the_input_is_not_a_generator_norm() -> None:
    """kornia's XFeat standardizes the raw image with InstanceNorm2d(1) before any conv,
    then upsamples its heatmap: it had been an image generator (D1), every BN told
    InstanceNorm at medium confidence. The input IN is kept, at any batch."""
    net = report(INPUT_INSTANCENORM, "KeypointNet", batch_size=32)
    assert net.domain is None
    assert set(suggestions(INPUT_INSTANCENORM, "KeypointNet", batch_size=32).values()) == {"keep"}
    assert any("standardizing the model's input" in r for r in net.recommendation.rationale)
    assert "NRM013" not in codes(INPUT_INSTANCENORM, batch_size=32)
    in_after_conv = INPUT_INSTANCENORM.replace(
        "x = self.body(self.norm(x))", "x = self.norm(self.body(x))"
    ).replace("nn.InstanceNorm2d(3)", "nn.InstanceNorm2d(64)")
    assert "NRM013" in codes(in_after_conv, batch_size=32)  # a feature IN is still B5's


WGAN_GP_TABULAR = """
import torch
import torch.nn as nn


class Discriminator(nn.Module):
    def __init__(self, dim, hidden=256):
        super().__init__()
        self.seq = nn.Sequential(nn.Linear(dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def calc_gradient_penalty(self, real, fake, lambda_=10):
        alpha = torch.rand(real.size(0), 1)
        interp = alpha * real + (1 - alpha) * fake
        out = self(interp)
        grads = torch.autograd.grad(
            outputs=out, inputs=interp, grad_outputs=torch.ones_like(out), create_graph=True
        )[0]
        return ((grads.norm(2, dim=1) - 1) ** 2).mean() * lambda_

    def forward(self, x):
        return self.seq(x)


class Residual(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.fc = nn.Linear(i, o, bias=False)
        self.bn = nn.BatchNorm1d(o)

    def forward(self, x):
        return torch.cat([self.bn(self.fc(x)).relu(), x], dim=1)


class Generator(nn.Module):
    def __init__(self, embedding_dim=128, data_dim=32):
        super().__init__()
        self.seq = nn.Sequential(
            Residual(embedding_dim, 256),
            Residual(embedding_dim + 256, 256),
            nn.Linear(embedding_dim + 512, data_dim),
        )

    def forward(self, z):
        return self.seq(z)
"""


def test_a_generator_without_tanh_in_a_gradient_penalty_file_is_not_the_critic() -> None:
    """CTGAN: the penalty is on the critic (one score per sample); the MLP generator's
    BatchNorm1d had been told LayerNorm by D2, and its residual block with it."""
    assert report(WGAN_GP_TABULAR, "Discriminator").domain.startswith("D2:")
    for name in ("Generator", "Residual"):
        assert report(WGAN_GP_TABULAR, name, batch_size=500).domain is None
        assert set(suggestions(WGAN_GP_TABULAR, name, batch_size=500).values()) == {"keep"}


PYRAMID_DECODER = """
import torch
import torch.nn as nn
import torch.nn.functional as F


def refiner(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.Conv2d(cout, cout, 1),
    )


class Decoder(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = layers
        self.scales = list(layers.keys())

    def forward(self, feats, context=None, scale=None):
        if context is not None:
            feats = torch.cat((feats, context), dim=1)
        out = self.layers[scale](feats)
        return out[:, :1], out[:, 1:]


class Detector(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.ModuleList([nn.Conv2d(3, 64, 3, 2, 1), nn.Conv2d(64, 64, 3, 2, 1)])
        self.decoder = Decoder(nn.ModuleDict({"4": refiner(64, 65), "2": refiner(128, 65)}))

    def forward(self, x):
        feats = []
        for conv in self.encoder:
            x = conv(x)
            feats.append(x)
        logits, context = 0, None
        for feature_map, scale in zip(reversed(feats), self.decoder.scales):
            delta, context = self.decoder(feature_map, context=context, scale=scale)
            logits = logits + delta
            context = F.interpolate(context, scale_factor=2.0, mode="bilinear")
        return logits
"""


def test_a_coarse_to_fine_loop_with_a_module_per_scale_is_not_a_recurrence() -> None:
    """kornia's DeDoDe: the loop carries a context map, but each scale runs its own refiner
    (``self.layers[scale]``): no weights recur, so no NRM007 and no B6 LayerNorm."""
    net = report(PYRAMID_DECODER, "Detector", batch_size=32)
    assert net.architecture == "cnn2d"
    assert set(suggestions(PYRAMID_DECODER, "Detector", batch_size=32).values()) == {"keep"}
    assert "NRM007" not in codes(PYRAMID_DECODER, batch_size=32)


DETECTOR_BLOCKS = """
import torch
import torch.nn as nn


class Conv(nn.Module):
    def __init__(self, c1, c2, k=1, s=1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2)

    def forward(self, x):
        return self.bn(self.conv(x)).relu()


class ConvTranspose(nn.Module):
    def __init__(self, c1, c2, k=2, s=2):
        super().__init__()
        self.conv_transpose = nn.ConvTranspose2d(c1, c2, k, s, bias=False)
        self.bn = nn.BatchNorm2d(c2)

    def forward(self, x):
        return self.bn(self.conv_transpose(x)).relu()


class SpatialAttention(nn.Module):
    def __init__(self, kernel_size=7):
        super().__init__()
        self.cv1 = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x):
        pooled = torch.cat([x.mean(1, keepdim=True), x.max(1, keepdim=True)[0]], 1)
        return x * self.cv1(pooled).sigmoid()
"""


def test_an_upsampling_block_and_an_attention_gate_make_no_gan_file() -> None:
    """ultralytics' conv.py: a ConvTranspose2d+BN block and a 1-channel sigmoid gate had
    made the file a GAN (D9): BN kept at medium confidence at batch 4, NRM006 silenced."""
    conv = report(DETECTOR_BLOCKS, "Conv", batch_size=4)
    assert conv.domain is None and conv.recommendation.norm == "gn"
    assert codes(DETECTOR_BLOCKS, batch_size=4).count("NRM006") == 2


DESCRIPTOR_AND_CODEC = """
import torch.nn as nn
from torch.nn.utils import weight_norm


class PatchDescriptor(nn.Module):
    def __init__(self, dim_desc=128):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, dim_desc, 8, bias=False),
            nn.BatchNorm2d(dim_desc, affine=False),
        )
        self.desc_norm = nn.LocalResponseNorm(2 * dim_desc, 2.0 * dim_desc, 0.5, 0.0)

    def forward(self, x):
        return self.desc_norm(self.layers(x)).flatten(1)


class Encoder(nn.Module):
    def __init__(self, n=32, dim=128):
        super().__init__()
        self.model = nn.Sequential(
            weight_norm(nn.Conv1d(1, n, 7, padding=3)),
            nn.ELU(),
            weight_norm(nn.Conv1d(n, 2 * n, 4, stride=2)),
            nn.ELU(),
            weight_norm(nn.Conv1d(2 * n, dim, 7, padding=3)),
        )
        self.lstm = nn.LSTM(dim, dim, 2)

    def forward(self, x):
        y, _ = self.lstm(self.model(x).permute(2, 0, 1))
        return y.permute(1, 2, 0)
"""


def test_local_response_norm_is_kept_not_turned_into_batchnorm() -> None:
    """kornia's HyNet L2-normalizes its descriptor with LocalResponseNorm(2C, 2C, 0.5, 0):
    "-> nn.BatchNorm2d(2 * dim_desc)" was another family and another width (the first
    argument is a neighbourhood size)."""
    assert set(suggestions(DESCRIPTOR_AND_CODEC, "PatchDescriptor", batch_size=32).values()) == {
        "keep"
    }


def test_a_weight_normalized_model_without_feature_norms_gets_none_added() -> None:
    """encodec's SEANet encoder: weight_norm convs and an LSTM, no feature norm by design;
    it had been told "bn" at batch 32."""
    model = report(DESCRIPTOR_AND_CODEC, "Encoder", batch_size=32)
    assert model.recommendation is None and "weight-normalized" in model.abstain


def test_a_norm_class_inheriting_its_helper_method_is_a_norm() -> None:
    """transformers' modular files: ``class Gemma2RMSNorm(GemmaRMSNorm)`` overrides
    ``forward`` and calls the inherited ``self._norm(x)``."""
    src = HELPER_METHOD_RMSNORM.replace(
        "class DecoderLayer(nn.Module):",
        "class ChildRMSNorm(GemmaRMSNorm):\n"
        "    def forward(self, x):\n"
        "        return self._norm(x.float()).type_as(x) * (1.0 + self.weight)\n\n\n"
        "class DecoderLayer(nn.Module):",
    ).replace("GemmaRMSNorm(d)", "ChildRMSNorm(d)")
    kinds = {n.name: n.kind for n in report(src, "DecoderLayer").norms_found}
    assert kinds == {"input_layernorm": "rms", "post_attention_layernorm": "rms"}
