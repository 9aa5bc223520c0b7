"""Sixth review round on real code (whisper, torchreid, recbole, super-gradients, ...)
and fresh variants of the analyzer-case classes: each test is one class of defect, on a
small reproduction in ``fixtures/review6/``."""

from __future__ import annotations

from pathlib import Path

from normsuite.analysis import project
from normsuite.analysis.analyze import analyze_source
from normsuite.analysis.runner import analyze_paths
from normsuite.analysis.types import AnalysisOptions

FIXTURES = Path(__file__).parent / "fixtures" / "review6"


def _analyze(name: str, **options: object):
    path = FIXTURES / name
    return analyze_source(path.read_text(), str(path), AnalysisOptions(**options))


def _model(result, name: str):
    (model,) = [m for m in result.models if m.name == name]
    return model


def test_attention_computed_in_a_helper_method_is_attention() -> None:
    """whisper's MultiHeadAttention hands q, k, v to self.qkv_attention (SDPA there): a
    Transformer block, never "mlp" with BatchNorm advised at medium confidence."""
    result = _analyze("whisper_attention.py", batch_size=32)
    attention = _model(result, "MultiHeadAttention")
    assert attention.architecture == "transformer"
    assert attention.recommendation is None  # no norm of its own: its block holds them
    block = _model(result, "ResidualAttentionBlock")
    assert block.architecture == "transformer"
    assert block.recommendation.norm == "ln"


def test_ibn_b_residual_in_through_a_conditional_shortcut() -> None:
    """torchreid's IBN-b: ``residual = x if self.downsample is None else
    self.downsample(x)``, then ``self.IN(out)`` on the sum: IBN-Net's design, no NRM013,
    and every IN kept (the stem's too)."""
    result = _analyze("ibn_b.py", batch_size=64)
    assert [f.code for f in result.findings] == []
    rec = _model(result, "ResNetIBNb").recommendation
    kept = {s.current for s in rec.layers if s.suggested == s.current}
    assert "nn.InstanceNorm2d(64, affine=True)" in kept
    assert "nn.InstanceNorm2d(planes * 4, affine=True)" in kept


def test_linear_then_batchnorm1d_in_a_cnn_is_a_features_head() -> None:
    """torchreid's HACNN: both embedding heads are Linear -> BatchNorm1d; the one whose
    input is not traced (``g.repeat(1, 4)``) is still (N, C) features: LayerNorm (B11),
    not GroupNorm(32, 512) with ResNet-50's conv numbers."""
    result = _analyze("reid.py", batch_size=4)
    heads = [f for f in result.findings if f.code == "NRM006" and "BatchNorm1d" in f.message]
    assert [f.line for f in heads] == [14, 18]
    for finding in heads:
        assert "(B11)" in finding.message and "nn.LayerNorm(512)" in finding.message
        assert "GroupNorm" not in finding.message


def test_field_embeddings_flattened_into_an_mlp_are_tabular(tmp_path: Path) -> None:
    """recbole's DCN: field embeddings (in a base class of another file) flattened with
    ``.flatten(1)`` into an MLP with BatchNorm1d: a click-through-rate MLP, not a
    Transformer. Its optional BN is built by a helper of another file under ``if bn:``:
    NRM001 says ``bias=not bn``, as it does when the helper is in the same file."""
    project.clear()
    results = analyze_paths([str(FIXTURES / "ctr_pkg" / "ctr" / "dcn.py")])
    (model,) = [m for r in results for m in r.models if m.name == "DCN"]
    assert model.architecture == "mlp"
    assert model.recommendation.norm == "bn"  # at >= 16 (batch unknown): BatchNorm1d, B11
    (nrm001,) = [f for r in results for f in r.findings if f.code == "NRM001"]
    assert "bias=not bn" in nrm001.message and "layers.py:11" in nrm001.message


def test_norm_layer_given_by_the_construction_the_file_trains() -> None:
    """``model = VolumeSegNet(norm_layer=lambda c: nn.GroupNorm(16, c))`` trained at batch
    1: GroupNorm, not the signature default nn.BatchNorm2d (two false NRM005 errors). The
    lambda's GroupNorm(16, 32) has 2 channels per group: NRM004 is right."""
    result = _analyze("n06c_norm_layer_arg_gn.py")
    assert [f.code for f in result.findings] == ["NRM004"]
    model = _model(result, "VolumeSegNet")
    assert {s.kind for s in model.norms_found} == {"gn"}
    # one line at 32 and 64 channels: one fix that picks G for each width
    assert {s.suggested for s in model.recommendation.layers} == {'normsuite.build_norm("gn", c)'}


def test_pix2pix_get_norm_layer_instance_is_instancenorm() -> None:
    """``netG = define_G(..., norm="instance")`` through ``get_norm_layer``: the
    generator's norms are InstanceNorm (D1, kept), not the default BatchNorm2d."""
    model = _model(_analyze("n06_get_norm_layer_instance.py"), "EncDecGenerator")
    assert {s.kind for s in model.norms_found} == {"in"}
    assert model.domain.startswith("D1")
    assert all(s.suggested == s.current for s in model.recommendation.layers)


def test_norm_helper_with_the_selector_the_file_passes() -> None:
    """``FPNLite(norm="gn")`` with ``get_norm(norm, c)``: GroupNorm sites only; the BN
    branch the file never takes gets no NRM006 at batch 2."""
    result = _analyze("n14_get_norm_helper_gn.py")
    assert result.findings == []
    assert {s.kind for s in _model(result, "FPNLite").norms_found} == {"gn"}


def test_an_unreadable_training_loader_is_not_replaced_by_the_validation_loader() -> None:
    """``tr`` takes a required ``--batch-size`` (no default), ``va`` (batch 1) is looped
    over only under ``torch.no_grad()``: the batch is unknown, no NRM005."""
    result = _analyze("b31_required_bs_val1.py")
    assert result.findings == []
    assert _model(result, "PolypNet").batch_size.per_device is None


def test_a_frozen_teacher_in_the_same_file_is_not_trained() -> None:
    """``teacher.eval()``, run under no_grad, not in the optimizer: only the student's BN
    sees the batch 2."""
    result = _analyze("b29_teacher_student.py")
    assert [(f.code, f.model) for f in result.findings] == [("NRM006", "Student")]
    assert _model(result, "Teacher").batch_size.per_device is None


def test_eval_of_another_functions_model_freezes_nothing() -> None:
    """``model = Net()`` inside a method, and ``def accuracy(model): model.eval()``
    elsewhere: different models (pytorch/examples' parameter server)."""
    source = (
        "import torch\nimport torch.nn as nn\nfrom torch.utils.data import DataLoader\n\n\n"
        "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.bn = nn.BatchNorm2d(8)\n\n    def forward(self, x):\n"
        "        return self.bn(x)\n\n\nclass Server:\n    def __init__(self):\n"
        "        model = Net()\n        self.model = model\n\n\ndef accuracy(model):\n"
        "    model.eval()\n\n\ndef train(server):\n"
        "    opt = torch.optim.SGD(server.model.parameters(), lr=0.1)\n"
        "    for x in DataLoader(range(8), batch_size=4, shuffle=True):\n"
        "        server.model(x).sum().backward()\n        opt.step()\n"
    )
    result = analyze_source(source, "ps.py", AnalysisOptions())
    assert _model(result, "Net").batch_size.per_device == 4


def test_layernorm_of_the_convs_own_channel_expression() -> None:
    """``nn.LayerNorm(cout)`` after ``nn.Conv2d(cin, cout)`` with no defaults: NRM002, the
    same error as with numbers, named by the expression."""
    result = _analyze("l14_ln_symbolic_channels.py")
    (finding,) = result.findings
    assert finding.code == "NRM002" and finding.line == 9
    assert "nn.LayerNorm(cout)" in finding.message and 'build_norm("gn", cout)' in finding.message
    (site,) = _model(result, "Net").recommendation.layers
    assert site.suggested == 'normsuite.build_norm("ln", cout)'  # never kept as NRM002 flags it


def test_a_segmentation_nets_attention_gate_is_no_gan_critic() -> None:
    """PP-LiteSeg's fusion block gates with a 2 -> 1 channel conv, and a subclass
    upsamples: no GAN (D9). At batch 4 its BN is NRM006's case, advised GN."""
    result = _analyze("liteseg.py", batch_size=4)
    model = _model(result, "LiteSegB")
    assert model.domain is None
    assert model.recommendation.norm == "gn"
    assert {f.code for f in result.findings} == {"NRM006"}


def test_one_spectral_normed_layer_is_no_discriminator() -> None:
    """fastai's SimpleSelfAttention wraps its one Conv1d in spectral_norm: a layer, not
    an SNGAN discriminator (D3)."""
    model = _model(_analyze("spectral_attention.py"), "SimpleSelfAttention")
    assert model.domain is None


def test_nrm001_never_names_an_empty_consumer() -> None:
    """recbole's MLPLayers gets its activation from a helper of another file: the Linear's
    other consumer is "another layer", never an empty name at a line of the wrong file."""
    project.clear()
    results = analyze_paths([str(FIXTURES / "consumer_pkg" / "rec" / "din.py")])
    (finding,) = [f for r in results for f in r.findings if f.code == "NRM001"]
    assert "also feeds another layer" in finding.message and "``" not in finding.message


def test_a_sequential_subclass_with_only_a_forward_holds_its_layers() -> None:
    """guided-diffusion's ``TimestepEmbedSequential(nn.Sequential, TimestepBlock)`` is built
    as ``nn.Sequential(*layers)``: its ResBlocks' GroupNorms are seen, and the U-Net that
    takes a timestep is D4 (GroupNorm kept), not an MLP told BatchNorm."""
    project.clear()
    results = analyze_paths([str(FIXTURES / "guided_pkg" / "gd" / "unet.py")])
    (model,) = [m for r in results for m in r.models if m.name == "UNetModel"]
    assert model.architecture == "cnn2d" and model.domain.startswith("D4")
    assert model.recommendation.norm == "gn"
    assert sum(s.kind == "gn" for s in model.norms_found) >= 3


def test_nn_through_two_levels_of_star_imports(tmp_path: Path) -> None:
    """fastai: ``from ...torch_basics import *``, whose ``from .torch_imports import *``
    brings ``import torch.nn as nn``: ``nn.Sequential`` is torch's, so the model is found."""
    pkg = tmp_path / "fa"
    (pkg / "models").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'fa'\n")
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "__init__.py").write_text("")
    (pkg / "torch_imports.py").write_text("import torch\nimport torch.nn as nn\n")
    (pkg / "basics.py").write_text("from .torch_imports import *\n")
    (pkg / "models" / "net.py").write_text(
        "from ..basics import *\n\n\nclass Net(nn.Sequential):\n    def __init__(self):\n"
        "        super().__init__(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8))\n"
    )
    project.clear()
    (result,) = analyze_paths([str(pkg / "models" / "net.py")])
    (model,) = result.models
    assert [s.kind for s in model.norms_found] == ["bn"]


def test_a_recursion_over_unreadable_children_is_not_a_cap() -> None:
    """fastai's ``init_cnn(m)``: ``for l in m.children(): init_cnn(l)`` cannot be followed
    statically; it stops there instead of running to the depth cap (which had marked the
    whole file as analyzed in part)."""
    source = (
        "import torch.nn as nn\n\n\ndef init_cnn(m):\n"
        "    if isinstance(m, nn.Conv2d):\n        nn.init.kaiming_normal_(m.weight)\n"
        "    for child in m.children():\n        init_cnn(child)\n\n\n"
        "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 8, 3, bias=False)\n        self.bn = nn.BatchNorm2d(8)\n"
        "        init_cnn(self)\n\n    def forward(self, x):\n"
        "        return self.bn(self.conv(x))\n"
    )
    result = analyze_source(source, "net.py", AnalysisOptions(batch_size=64))
    assert result.notices == []
    (model,) = result.models
    assert model.recommendation.norm == "bn" and model.recommendation.confidence == "high"


def test_the_branch_a_factory_function_selects() -> None:
    """``def build(): return nn.Sequential(ConvNormAct(3, 64, norm="ln"), ...)``: the
    model the file builds takes the LayerNorm branch, which NRM002 flags on the conv map
    (the default ``norm="gn"`` branch is not what the file trains)."""
    result = _analyze("l13_else_branch_ln.py")
    (finding,) = result.findings
    assert finding.code == "NRM002" and finding.line == 12
