"""`normsuite recommend` is right, or says it does not know: the analyzer cases of real code
(copies in tests/fixtures/recommend/), each with the answer a reader of the code gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from normsuite.analysis.analyze import analyze_source
from normsuite.analysis.types import AnalysisOptions, FileResult, ModelReport
from normsuite.analysis.usage import hide_blocks

CASES = Path(__file__).parent / "fixtures" / "recommend"


def analyze(name: str, **options: int) -> FileResult:
    path = CASES / name
    return analyze_source(path.read_text(), str(path), AnalysisOptions(**options))


def model(result: FileResult, name: str) -> ModelReport:
    return next(m for m in result.models if m.name == name)


def kept(report: ModelReport) -> bool:
    assert report.recommendation is not None
    return all(s.suggested == s.current for s in report.recommendation.layers)


def kinds(report: ModelReport) -> dict[str, str]:
    return {n.name: n.kind for n in report.norms_found}


# ---------------------------------------------------------------- 1. abstain


def test_activation_loss_and_norm_classes_get_no_recommendation() -> None:
    result = analyze("a08_non_models.py")
    for name in ("Mish", "FocalLoss", "RMSNorm2d"):
        report = model(result, name)
        assert report.recommendation is None, name
        assert report.abstain
    assert "norm layer" in model(result, "RMSNorm2d").abstain
    assert "activation, loss" in model(result, "Mish").abstain


def test_ffn_block_is_judged_in_its_transformer() -> None:
    result = analyze("r09_ffn_submodule.py")
    ffn = model(result, "FeedForward")
    assert ffn.part_of == "Block"
    assert ffn.architecture == "transformer"
    assert ffn.recommendation is not None and ffn.recommendation.norm == "ln"
    # By default only the top-level model is advised.
    (shown,) = hide_blocks([result])
    assert [m.name for m in shown.models] == ["Block"]


def test_blocks_hidden_across_files_by_name() -> None:
    block = FileResult("blocks.py", models=[ModelReport("Bottleneck", 1, "cnn2d")])
    uses = ["blocks.Bottleneck"]  # from .blocks import Bottleneck
    net = FileResult("net.py", models=[ModelReport("ResNet", 1, "cnn2d", uses=uses)])
    shown = hide_blocks([block, net])
    assert [m.name for r in shown for m in r.models] == ["ResNet"]
    # A user that abstains (its blocks are elsewhere) hides nothing.
    lit = ModelReport("Lit", 1, "unknown", uses=["net.Net"], abstain="x")
    other = FileResult("net.py", models=[ModelReport("Net", 1, "cnn2d")])
    lost = FileResult("lit.py", models=[lit])
    assert [m.name for r in hide_blocks([lost, other]) for m in r.models] == ["Lit", "Net"]
    # Same name from another module: not hidden.
    tts = FileResult("tts.py", models=[ModelReport("TTS", 1, "rnn", uses=["layers.Encoder"])])
    vae = FileResult("vae.py", models=[ModelReport("Encoder", 1, "cnn2d")])
    assert [m.name for r in hide_blocks([tts, vae]) for m in r.models] == ["TTS", "Encoder"]


# ---------------------------------------------------------------- 2. labels from structure


def test_split_attention_conv_block_is_a_cnn() -> None:
    report = model(analyze("c19_name_heuristic.py"), "SplitAttentionConv2d")
    assert report.architecture == "cnn2d"
    assert kinds(report) == {"bn": "bn"}  # build_norm_layer(dict(type="BN"), C)
    assert report.recommendation is not None and report.recommendation.norm == "bn"
    assert kept(report)


def test_rnn_with_additive_attention_and_no_conv_is_a_sequence_model() -> None:
    report = model(analyze("r25_rnn_attn_decoder.py"), "Decoder")
    assert report.architecture == "rnn"
    rec = report.recommendation
    assert rec is not None and rec.norm == "ln" and "B6" in rec.rules
    assert not any("convolutional" in r for r in rec.rationale)


def test_pooled_attention_block_is_a_transformer_keeping_its_layernorms() -> None:
    report = model(analyze("a11_pooled_attention.py"), "PooledBlock")
    assert report.architecture == "transformer"
    assert report.recommendation is not None and report.recommendation.norm == "ln"
    assert kept(report)


def test_class_attribute_activation_keeps_hybrid_and_bn() -> None:
    report = model(analyze("a10_trace_fallback.py"), "TransformerBlock")
    assert report.architecture == "hybrid"
    assert kept(report)


# ---------------------------------------------------------------- 3. norms by behaviour


def test_channel_layernorm_module_is_an_ln_site_and_kept() -> None:
    report = model(analyze("a09_custom_norm_ln.py"), "NeXtBlock")
    assert kinds(report) == {"norm": "ln"}
    assert report.recommendation is not None and report.recommendation.norm == "ln"
    assert kept(report)


def test_groupnorm_subclass_is_a_gn_site_and_kept() -> None:
    report = model(analyze("a09b_gn_subclass.py"), "ResBlock")
    assert kinds(report) == {"norm": "gn"}
    assert report.recommendation is not None and report.recommendation.norm == "gn"
    assert kept(report)


def test_layernorm_subclass_on_conv_map_is_nrm002() -> None:
    result = analyze("r05_layernorm_subclass.py")
    assert kinds(model(result, "FrontEnd")) == {"norm": "ln"}
    assert [f.code for f in result.findings] == ["NRM002"]


BEHAVIOUR = """
import torch
import torch.nn as nn
import torch.nn.functional as F
from detectron2.layers import get_norm
from mmcv.cnn import build_norm_layer
from torch.nn.utils import spectral_norm


class ChanRMSNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.g = nn.Parameter(torch.ones(1, dim, 1, 1))

    def forward(self, x):
        return F.normalize(x, dim=1) * self.g * x.shape[1] ** 0.5


class ConvNeXtLN(nn.Module):
    def __init__(self, c, eps=1e-6, data_format="channels_last"):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c))
        self.eps, self.data_format, self.c = eps, data_format, (c,)

    def forward(self, x):
        if self.data_format == "channels_last":
            return F.layer_norm(x, self.c, self.weight, self.bias, self.eps)
        else:
            u = x.mean(1, keepdim=True)
            s = (x - u).pow(2).mean(1, keepdim=True)
            x = (x - u) / torch.sqrt(s + self.eps)
            return self.weight[:, None, None] * x + self.bias[:, None, None]


class Net(nn.Module):
    def __init__(self, norm_layer=nn.BatchNorm2d, norm_cfg=dict(type="GN", num_groups=8)):
        super().__init__()
        self.c1 = nn.Conv2d(3, 64, 3, bias=False)
        self.n1 = norm_layer(64)
        self.c2 = nn.Conv2d(64, 64, 3, bias=False)
        self.n2 = get_norm("SyncBN", 64)
        self.c3 = nn.Conv2d(64, 64, 3, bias=False)
        self.n3_name, n3 = build_norm_layer(norm_cfg, 64)
        self.add_module(self.n3_name, n3)
        self.c4 = nn.Conv2d(64, 64, 3, bias=False)
        self.n4 = ChanRMSNorm(64)
        self.c5 = nn.Conv2d(64, 64, 3, bias=False)
        self.n5 = ConvNeXtLN(64, data_format="channels_first")
        self.disc = spectral_norm(nn.Conv2d(64, 1, 3))
"""


def test_norms_by_behaviour_factories_and_reparametrizations() -> None:
    result = analyze_source(BEHAVIOUR, "m.py", AnalysisOptions())
    net = model(result, "Net")
    assert kinds(net) == {
        "n1": "bn",
        "n2": "syncbn",
        "gn": "gn",
        "n4": "rms",
        "n5": "ln",
        "disc": "spectral_norm",
    }
    sites = {n.name: n for n in net.norms_found}
    assert sites["gn"].num_channels == 64
    for name in ("ChanRMSNorm", "ConvNeXtLN"):
        assert "norm layer" in (model(result, name).abstain or "")


HAND_WRITTEN_NORMS = """
import torch
import torch.nn as nn


class FRN(nn.Module):
    def __init__(self, c, eps=1e-6):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, c, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.tau = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.eps = eps

    def forward(self, x):
        nu2 = x.pow(2).mean(dim=[2, 3], keepdim=True)
        x = x * torch.rsqrt(nu2 + self.eps)
        return torch.max(self.gamma * x + self.beta, self.tau)


class GroupNormByHand(nn.Module):
    def __init__(self, c, groups=32, eps=1e-5):
        super().__init__()
        self.groups, self.eps = groups, eps
        self.weight = nn.Parameter(torch.ones(1, c, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x):
        n, c, h, w = x.shape
        x = x.view(n, self.groups, -1)
        mean = x.mean(-1, keepdim=True)
        var = x.var(-1, keepdim=True)
        x = (x - mean) / (var + self.eps).sqrt()
        return x.view(n, c, h, w) * self.weight + self.bias


class InstanceNormByHand(nn.Module):
    def forward(self, x, eps=1e-5):
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = x.std(dim=(2, 3), keepdim=True)
        return (x - mean) / (std + eps)


class BatchNormByHand(nn.Module):
    def __init__(self, c, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, c, 1, 1))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = x.var(dim=(0, 2, 3), keepdim=True, unbiased=False)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.n1 = FRN(64)
        self.c2 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
        self.n2 = GroupNormByHand(64)
        self.c3 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
        self.n3 = InstanceNormByHand()
        self.c4 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
        self.n4 = BatchNormByHand(64)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.n1(self.c1(x))
        x = self.n2(self.c2(x)).relu()
        x = self.n3(self.c3(x)).relu()
        x = self.n4(self.c4(x)).relu()
        return self.fc(x.mean((2, 3)))
"""


@pytest.mark.parametrize("batch", [None, 4, 64])
def test_hand_written_norms_are_named_by_the_dims_of_their_statistics(batch) -> None:
    """Statistics over the spatial dims are per instance (InstanceNorm; FRN without the
    centring, Singh & Krishnan 2019), over dims that include the batch a BatchNorm, and
    over a view into groups a GroupNorm: never a LayerNorm over the last dim (which drew a
    false NRM002 error on a hand-written GroupNorm)."""
    options = {} if batch is None else {"batch_size": batch}
    result = analyze_source(HAND_WRITTEN_NORMS, "m.py", AnalysisOptions(**options))
    net = model(result, "Net")
    assert kinds(net) == {"n1": "frn", "n2": "gn", "n3": "in", "n4": "bn"}
    assert "NRM002" not in {f.code for f in result.findings}
    layers = {s.site: s for s in net.recommendation.layers}
    assert layers["n1"].suggested == layers["n1"].current  # FRN: batch-free, kept
    for name in ("FRN", "GroupNormByHand", "InstanceNormByHand", "BatchNormByHand"):
        assert "norm layer" in (model(result, name).abstain or "")


# ---------------------------------------------------------------- 4. recurrence by structure


def test_hand_written_cell_in_a_loop_is_recurrent() -> None:
    result = analyze("r01_custom_cell.py")
    for name in ("BNCell", "Seq"):
        report = model(result, name)
        assert report.architecture == "rnn", name
        assert report.recommendation is not None and report.recommendation.norm == "ln"
    (nrm007,) = [f for f in result.findings if f.code == "NRM007"]
    assert nrm007.line == 10
    assert "nn.LayerNorm(128)" in nrm007.message  # 4 * n_hid with n_hid = 32
    (site,) = model(result, "Seq").recommendation.layers
    assert site.suggested == "nn.LayerNorm(128)"


def test_bn_on_last_step_vector_is_silent() -> None:
    result = analyze("r07_nrm007_last_step.py")
    assert not [f for f in result.findings if f.code == "NRM007"]
    assert kept(model(result, "Clf"))  # B11: BatchNorm1d on (N, C) features


def test_bn_on_conv_map_of_a_vision_hybrid_is_kept_without_nrm007() -> None:
    result = analyze("a06_bn_vision_hybrid.py")
    assert not [f for f in result.findings if f.code == "NRM007"]
    report = model(result, "HybridAttentionBlock")
    assert report.architecture == "hybrid"
    assert kept(report)


LSTM_SUBCLASS = """
import torch.nn as nn


class ZoneoutCell(nn.LSTMCell):
    pass


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = ZoneoutCell(32, 64)
        self.bn = nn.BatchNorm1d(64)

    def forward(self, xs, h, c):
        for x in xs:
            h, c = self.cell(x, (h, c))
            h = self.bn(h)
        return h
"""


def test_lstmcell_subclass_is_a_cell_and_bn_on_its_state_is_nrm007() -> None:
    result = analyze_source(LSTM_SUBCLASS, "m.py", AnalysisOptions())
    report = model(result, "Tagger")
    assert report.architecture == "rnn"
    (nrm007,) = [f for f in result.findings if f.code == "NRM007"]
    assert "nn.LayerNorm(64)" in nrm007.message


# ---------------------------------------------------------------- 5. domains


def test_image_to_image_generator_keeps_instancenorm() -> None:
    report = model(analyze("a16_i2i_generator.py", batch_size=1), "StyleGenerator")
    assert report.domain is not None and report.domain.startswith("D1")
    rec = report.recommendation
    assert rec is not None and rec.norm == "in" and kept(report)
    assert any("Ulyanov" in r and "Huang & Belongie" in r for r in rec.rationale)
    assert rec.confidence == "medium"


def test_wgan_gp_critic_gets_no_batchnorm() -> None:
    report = model(analyze("a16b_wgan_gp_critic.py"), "Critic")
    assert report.domain is not None and report.domain.startswith("D2")
    rec = report.recommendation
    assert rec is not None and rec.norm == "none" and "bn" not in rec.alternatives
    assert any("Gulrajani" in r for r in rec.rationale)


GP_CRITIC_WITH_BN = """
import torch
import torch.nn as nn


class D(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 64, 4, 2, 1)
        self.c2 = nn.Conv2d(64, 128, 4, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(128)
        self.out = nn.Conv2d(128, 1, 8)

    def forward(self, x):
        return self.out(self.bn(self.c2(self.c1(x).relu())).relu())


def penalty(d, x):
    x.requires_grad_(True)
    g = torch.autograd.grad(d(x).sum(), x, create_graph=True)[0]
    return ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()
"""


def test_batchnorm_in_a_gradient_penalty_critic_becomes_a_valid_layernorm() -> None:
    result = analyze_source(GP_CRITIC_WITH_BN, "m.py", AnalysisOptions(batch_size=64))
    rec = model(result, "D").recommendation
    assert rec is not None and rec.norm == "ln"
    (site,) = rec.layers
    assert site.suggested == 'normsuite.build_norm("ln", 128)'  # channel LN on the map


DOMAIN_MODELS = """
import math
import torch
import torch.nn as nn
from torch.nn.utils import spectral_norm


class UNet(nn.Module):
    def __init__(self, c=64):
        super().__init__()
        self.inc = nn.Conv2d(3, c, 3, padding=1)
        self.n1 = nn.GroupNorm(32, c)
        self.down = nn.Conv2d(c, c, 3, 2, 1)
        self.n2 = nn.GroupNorm(32, c)
        self.up = nn.ConvTranspose2d(c, c, 4, 2, 1)
        self.temb = nn.Linear(c, c)
        self.out = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, x, timesteps):
        h = self.n1(self.inc(x)).relu()
        h = self.n2(self.down(h)).relu()
        return self.out(self.up(h))


class SNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 256), nn.SELU(), nn.AlphaDropout(0.1),
                                 nn.Linear(256, 256), nn.SELU(), nn.Linear(256, 10))

    def forward(self, x):
        return self.net(x)


class SNDiscriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = spectral_norm(nn.Conv2d(3, 64, 4, 2, 1))
        self.c2 = spectral_norm(nn.Conv2d(64, 128, 4, 2, 1))
        self.fc = spectral_norm(nn.Linear(128 * 8 * 8, 1))

    def forward(self, x):
        return self.fc(self.c2(self.c1(x).relu()).relu().flatten(1))
"""


@pytest.mark.parametrize(
    ("name", "domain", "norm", "source"),
    [
        ("UNet", "D4", "gn", "Ho"),
        ("SNN", "D5", "none", "Klambauer"),
        ("SNDiscriminator", "D3", "none", "Miyato"),
    ],
)
def test_domain_models_keep_their_published_choice(
    name: str, domain: str, norm: str, source: str
) -> None:
    report = model(analyze_source(DOMAIN_MODELS, "m.py", AnalysisOptions(batch_size=8)), name)
    assert report.domain is not None and report.domain.startswith(domain)
    rec = report.recommendation
    assert rec is not None and rec.norm == norm
    assert all(s.suggested == s.current for s in rec.layers)
    assert any(source in r for r in rec.rationale)


def test_rule_domains_page_cites_every_domain() -> None:
    from normsuite.cli.main import app
    from typer.testing import CliRunner

    from normsuite.advice import DOMAINS

    out = CliRunner().invoke(app, ["rule", "domains"])
    assert out.exit_code == 0
    for d in DOMAINS.values():
        assert d.id in out.output and d.sources.split(",")[0] in out.output


# ---------------------------------------------------------------- 7. calibrated confidence

SMALL_CNN = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, bias=False)
        self.bn = nn.BatchNorm2d(64)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).relu().mean((2, 3)))
"""


@pytest.mark.parametrize(
    ("options", "confidence", "compare"),
    [
        ({}, "low", False),  # batch unknown
        ({"batch_size": 8}, "medium", True),  # inside the crossover band
        ({"batch_size": 16}, "medium", True),
        ({"batch_size": 64}, "high", False),  # from the command line, far from 16
    ],
)
def test_cnn_confidence_follows_the_evidence(options, confidence: str, compare: bool) -> None:
    rec = model(analyze_source(SMALL_CNN, "m.py", AnalysisOptions(**options)), "Net")
    rec = rec.recommendation
    assert rec is not None and rec.confidence == confidence
    assert any("normsuite compare" in w for w in rec.would_change) == compare


def test_batch_of_a_script_that_does_not_train_is_not_direct_evidence() -> None:
    src = SMALL_CNN + "\nfrom torch.utils.data import DataLoader\nDataLoader([], batch_size=64)\n"
    rec = model(analyze_source(src, "m.py", AnalysisOptions()), "Net").recommendation
    assert rec is not None and rec.norm == "bn" and rec.confidence == "medium"


def test_cell_stepped_by_a_training_function_is_recurrent() -> None:
    """char-rnn style: the file's own code steps the module with its hidden state."""
    result = analyze("script_stepped_cell.py")
    report = model(result, "RNN")
    assert report.architecture == "rnn"
    (site,) = report.recommendation.layers
    assert site.suggested == "nn.LayerNorm(n_hid)"  # valid for every width
    assert [f.code for f in result.findings if f.code == "NRM007"] == ["NRM007"]


# ---------------------------------------------------------------- CLI


def test_cli_advises_top_level_models_and_all_modules_shows_blocks() -> None:
    from normsuite.cli.main import app
    from typer.testing import CliRunner

    path = str(CASES / "r09_ffn_submodule.py")
    default = CliRunner().invoke(app, ["recommend", "--isolated", path])
    assert default.exit_code == 0, default.output
    assert "Block [transformer]" in default.output
    assert "FeedForward" not in default.output
    everything = CliRunner().invoke(app, ["recommend", "--isolated", "--all-modules", path])
    assert "FeedForward [transformer]" in everything.output
    assert "judged as part of Block" in everything.output
    a08 = CliRunner().invoke(app, ["recommend", "--isolated", str(CASES / "a08_non_models.py")])
    assert a08.exit_code == 0
    assert a08.output.count("recommend: none (") == 3  # each with its reason
    assert "not a model" in a08.output


RES2NET_LOOP = '''
import torch
import torch.nn as nn


class Res2Block(nn.Module):
    """Res2Net hierarchy: a different conv each chunk, not a cell stepped over time."""

    def __init__(self, c=64, scale=4):
        super().__init__()
        w = c // scale
        self.blocks = nn.ModuleList(
            [nn.Sequential(nn.Conv1d(w, w, 3, padding=1, bias=False), nn.BatchNorm1d(w))
             for _ in range(scale - 1)]
        )

    def forward(self, x):
        ys = []
        for i, x_i in enumerate(torch.chunk(x, 4, dim=1)):
            y = x_i if i == 0 else self.blocks[i - 1](x_i + (y if i > 1 else 0))
            ys.append(y)
        return torch.cat(ys, dim=1)
'''


def test_a_different_block_per_loop_step_is_not_recurrence() -> None:
    result = analyze_source(RES2NET_LOOP, "m.py", AnalysisOptions(batch_size=64))
    report = model(result, "Res2Block")
    assert report.architecture == "cnn1d"
    assert not [f for f in result.findings if f.code == "NRM007"]
    assert kept(report)


@pytest.mark.parametrize("batch", [None, 4, 64])
def test_hf_style_decoder_is_a_transformer_that_keeps_its_rmsnorm(batch: int | None) -> None:
    """transformers' Llama layout: attention in a module-level function picked at run time,
    ``reshape(*input_shape, -1)``, and a PreTrainedModel base that names the blocks first.
    Each used to turn the post-attention RMSNorm into "bn" (B11 on "(N, C) features")."""
    options = {} if batch is None else {"batch_size": batch}
    result = analyze("hf_decoder_layer.py", **options)
    top = model(result, "TinyForCausalLM")
    assert top.architecture == "transformer"
    assert top.recommendation is not None and top.recommendation.norm == "rms"
    assert kept(top)
    assert "B11" not in top.recommendation.rules
    text = " ".join([*top.recommendation.rationale, *top.recommendation.would_change])
    assert "ResNet" not in text and ": bn" not in text  # no CNN batch advice for a Transformer
    for block in ("TinyAttention", "TinyDecoderLayer", "TinyMLP", "TinyModel"):
        report = model(result, block)
        assert report.part_of == "TinyForCausalLM", block  # not the PreTrainedModel base
        assert report.architecture == "transformer", block
    assert "attention" in " ".join(model(result, "TinyAttention").architecture_evidence)


def test_attention_kernel_imported_from_another_file() -> None:
    """The attention function is another file's: judged by its body, found through the
    project index (a class-name or argument-name guess would be no evidence)."""
    from normsuite.analysis import project
    from normsuite.analysis.runner import analyze_paths

    project.clear()
    pkg = Path(__file__).parent / "fixtures" / "project" / "hf_decoder"
    (result,) = [r for r in analyze_paths([str(pkg)], AnalysisOptions(batch_size=64)) if r.models]
    block = model(result, "TinyBlock")
    assert block.architecture == "transformer"
    assert block.recommendation is not None and block.recommendation.norm == "ln" and kept(block)
    assert block.recommendation.rules == ["B7"]


def test_gradient_penalty_through_an_imported_alias() -> None:
    """``from torch.autograd import grad as torch_grad`` (EmilienDupont/wgan-gp): the
    critic is D2's, whatever name the penalty's function has."""
    critic = model(analyze("a16b_wgan_gp_grad_alias.py"), "Discriminator")
    assert critic.domain is not None and critic.domain.startswith("D2")
    assert critic.recommendation is not None and critic.recommendation.norm == "ln"


def test_a_module_holding_a_generator_and_a_critic_is_not_one_cnn() -> None:
    """A Lightning GAN module holds both networks: no recognition advice ("bn, high",
    every BN kept) over a critic whose BN D2 removes; each network is advised on its own."""
    result = analyze("a16b_lightning_gan_module.py")
    container = model(result, "WGANGP")
    assert container.recommendation is None
    assert "Critic (D2)" in container.abstain and "--all-modules" in container.abstain
    assert model(result, "Critic").domain.startswith("D2")
    generator = model(result, "Generator")
    assert generator.domain.startswith("D9") and generator.recommendation.confidence != "high"


def test_blocks_of_a_gan_generator_take_its_domain() -> None:
    """SRGAN at batch 4: the generator keeps BN (D9), so its ResidualBlock does too, and
    NRM006 is silent for it as for the generator (the rule page says so)."""
    result = analyze("a16_srgan_batch4.py")
    block = model(result, "ResidualBlock")
    assert block.domain is not None and block.domain.startswith("D9")
    assert kept(block)
    assert not [f for f in result.findings if f.code == "NRM006"]


@pytest.mark.parametrize("batch", [None, 1, 64])
def test_an_image_generator_with_a_norm_flag_keeps_its_norms(batch: int | None) -> None:
    """pix2pixHD's GlobalGenerator(norm_layer=nn.BatchNorm2d), built with InstanceNorm by
    define_G: a decoder to a tanh image is a GAN generator (D9), whatever norm the flag
    picks; never "gn, high" (B8/B9 are recognition rules) nor a switch by the default."""
    options = {} if batch is None else {"batch_size": batch}
    result = analyze("a16_pix2pixhd_norm_flag.py", **options)
    generator = model(result, "GlobalGenerator")
    assert generator.domain is not None and generator.domain.startswith("D9")
    assert kept(generator)
    assert not [f for f in result.findings if f.code in ("NRM005", "NRM006")]


@pytest.mark.parametrize(
    "name, model_name",
    [
        # Cooijmans' BN-LSTM: state fed back through a copy (hx = (h, c)), per-step running
        # statistics registered in a 784-step loop (no layer there: no cap)
        ("r01_bn_lstm_separated_stats.py", "LSTM"),
        # PyTorch's custom_lstms: gates as nn.Parameter + torch.mm, the cell class passed in
        ("r01_custom_lstms_parameters.py", "SequenceClassifier"),
    ],
)
def test_hand_written_lstm_cells_as_real_code_writes_them(name: str, model_name: str) -> None:
    result = analyze(name)
    report = model(result, model_name)
    assert report.architecture == "rnn"
    assert report.recommendation is not None and report.recommendation.norm == "ln"
    assert not result.notices  # nothing cut short
    assert len([f for f in result.findings if f.code == "NRM007"]) == 3


def test_an_attention_instance_handed_to_its_decoder_is_the_decoders_block() -> None:
    """attn = Attention(...); Decoder(..., attn): the attention is a block of the RNN
    decoder (it was advised alone: "mlp", "bn" (B11) at batch 64). The Seq2Seq on top is
    unknown (its parts are arguments), so the decoder's context applies."""
    result = analyze("r09_bahdanau_attention_instance.py", batch_size=64)
    attention = model(result, "Attention")
    assert attention.part_of is not None
    assert attention.architecture == "rnn"
    assert attention.recommendation is None or attention.recommendation.norm == "ln"


def test_a_norm_factory_line_shared_by_widths_keeps_its_channel_expression() -> None:
    """``self.norm_layer(out_channels)`` (a class attribute) builds 32, 64, 96... channels
    on one line: one suggestion per line must fit every width (it offered GroupNorm(8, 32)
    and GroupNorm(32, 64) for the same line), so the argument stays symbolic."""
    result = analyze("a10_norm_layer_class_attribute.py")
    rec = model(result, "TinyEfficientNet").recommendation
    by_line: dict[int, set[str]] = {}
    for site in rec.layers:
        by_line.setdefault(site.line, set()).add(site.suggested)
    assert by_line[33] == {'normsuite.build_norm("gn", out_channels)'}
    assert by_line[48] == {'normsuite.build_norm("gn", cout)'}


def test_a_direct_block_of_an_abstaining_model_is_shown() -> None:
    """DeepLabV3(backbone, classifier) is handed its head: it abstains (its parts are
    arguments), so its direct block DeepLabHead is shown by default (the file's only advice
    for those layers); the head's own blocks stay hidden."""
    source = """
import torch.nn as nn


class ASPP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, 64, 1, bias=False)
        self.bn = nn.BatchNorm2d(64)

    def forward(self, x):
        return self.bn(self.conv(x))


class Head(nn.Sequential):
    def __init__(self, c, n):
        super().__init__(ASPP(c), nn.Conv2d(64, n, 1))


class SegModel(nn.Module):
    def __init__(self, backbone, classifier):
        super().__init__()
        self.backbone = backbone
        self.classifier = classifier

    def forward(self, x):
        return self.classifier(self.backbone(x))


def build(backbone, n):
    head = Head(2048, n)
    return SegModel(backbone, head)
"""
    result = analyze_source(source, "m.py", AnalysisOptions())
    assert model(result, "Head").part_of == "SegModel"
    assert model(result, "SegModel").abstain is not None
    (shown,) = hide_blocks([result])
    assert [m.name for m in shown.models] == ["Head", "SegModel"]


def test_spade_is_a_conditional_norm_not_a_model() -> None:
    """SPADE: InstanceNorm without affine, scaled and shifted by convs over a segmentation
    map (the second input): a norm, with no advice of its own (it was "D1, in, keep")."""
    spade = model(analyze("a08_spade_norm.py"), "SPADE")
    assert spade.recommendation is None
    assert "conditional norm" in spade.abstain


def test_the_norm_inside_a_conditional_norm_is_kept() -> None:
    """NCSN's ConditionalInstanceNorm2dPlus (IN without affine, scaled through an Embedding
    of the noise level) inside a score network at batch 128: its IN is part of that norm,
    kept; no "bn, high" (batch statistics would mix noise levels)."""
    rec = model(analyze("a08_ncsn_conditional_in.py"), "CondRefineNet").recommendation
    assert rec is not None and kept(model(analyze("a08_ncsn_conditional_in.py"), "CondRefineNet"))
    assert rec.norm == "in" and rec.confidence != "high"
    assert "B1" not in rec.rules


def test_an_ibn_block_is_not_an_image_generator() -> None:
    """IBN-Net's block mixes InstanceNorm and BatchNorm by design and has no image output:
    no D1 "image generator" (which turned its BNs into InstanceNorm)."""
    block = model(analyze("a16_ibn_block_not_a_generator.py"), "BottleneckIBN")
    assert block.domain is None
    assert block.recommendation is None or block.recommendation.norm != "in"


def test_layernorm_over_c_h_w_is_valid_as_it_is() -> None:
    """nn.LayerNorm([dim, size, size]) normalizes (C, H, W), channels included: kept, never
    rebuilt as build_norm("ln", [dim, size, size]) (which raises)."""
    result = analyze("r05_layernorm_full_shape.py")
    for report in result.models:
        for site in report.recommendation.layers if report.recommendation else []:
            assert 'build_norm("ln", [' not in site.suggested


def test_norm_free_image_decoders_get_no_norm_added() -> None:
    """ESRGAN's RRDBNet upsamples with F.interpolate and has no norm on purpose: a GAN
    generator (D9, none kept), never "bn" or "gn"; its discriminator keeps its own."""
    result = analyze("a16_esrgan_no_norms.py", batch_size=8)
    net = model(result, "RRDBNet")
    assert net.domain is not None and net.domain.startswith("D9")
    assert net.recommendation is None or net.recommendation.norm == "none"
    assert all(
        m.recommendation is None or m.recommendation.norm in ("none", "bn") for m in result.models
    )


def test_a_norm_free_upsampling_decoder_alone_abstains() -> None:
    source = """
import torch.nn as nn
import torch.nn.functional as F


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(512, 256, 3, padding=1)
        self.conv2 = nn.Conv2d(256, 3, 3, padding=1)

    def forward(self, x):
        x = F.interpolate(self.conv1(x).relu(), scale_factor=2)
        return self.conv2(x)
"""
    (decoder,) = analyze_source(source, "m.py", AnalysisOptions(batch_size=8)).models
    assert decoder.recommendation is None and "image decoder" in decoder.abstain
