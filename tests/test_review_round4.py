"""The fourth review round's confirmed defects (tests/fixtures/review4, from an independent
review of the round's own fixes): each snippet gave a wrong answer with confidence."""

from __future__ import annotations

from pathlib import Path

from normsuite.analysis.analyze import analyze_source
from normsuite.analysis.types import AnalysisOptions, FileResult, ModelReport

CASES = Path(__file__).parent / "fixtures" / "review4"


def analyze(name: str, batch_size: int | None = None) -> FileResult:
    path = CASES / name
    return analyze_source(path.read_text(), str(path), AnalysisOptions(batch_size=batch_size))


def model(result: FileResult, name: str) -> ModelReport:
    return next(m for m in result.models if m.name == name)


def suggested(report: ModelReport) -> dict[str, str]:
    assert report.recommendation is not None
    return {s.site: s.suggested for s in report.recommendation.layers}


def test_a_per_step_parameter_row_does_not_hide_a_recurrence() -> None:
    """``self.step_bias[t]`` is a Parameter, not a module picked per step: the cell is still
    stepped with its state fed back, and its BN is on the recurrent path."""
    result = analyze("rec_param.py", batch_size=32)
    assert model(result, "Model").architecture == "rnn"
    assert "NRM007" in [f.code for f in result.findings]


def test_a_critic_whose_score_width_is_unknown_is_still_the_critic() -> None:
    """``nn.Linear(..., cfg.critic_out)``: an unknown width does not make a generator."""
    result = analyze("wgan_unknown_out.py", batch_size=4)
    assert (model(result, "Critic").domain or "").startswith("D2:")


def test_a_backbone_discriminator_keeps_the_file_a_gan() -> None:
    """A ResNet-18 plus ``Linear(512, 1)`` is a discriminator: the generator's BN is a GAN
    design (D9), not a small-batch NRM006."""
    result = analyze("gan_backbone_d.py", batch_size=4)
    assert (model(result, "Generator").domain or "").startswith("D9:")
    assert "NRM006" not in [f.code for f in result.findings]


def test_an_instancenorm_after_a_backbone_is_not_an_input_standardization() -> None:
    result = analyze("in_after_opaque.py", batch_size=32)
    assert suggested(model(result, "Net"))["inorm"] == "nn.BatchNorm2d(512)"
    assert "NRM013" in [f.code for f in result.findings]


def test_untraced_layernorm_and_rmsnorm_give_a_kept_headline() -> None:
    rec = model(analyze("untraced_mix.py", batch_size=32), "Head").recommendation
    assert rec is not None and rec.norm in ("ln", "rms") and rec.confidence == "low"
    assert {s.suggested == s.current for s in rec.layers} == {True}


def test_one_weight_normalized_head_does_not_make_a_weight_norm_design() -> None:
    report = model(analyze("wn_head.py", batch_size=32), "Net")
    assert report.recommendation is not None and report.recommendation.norm == "bn"


def test_an_activation_looked_up_by_name_hides_no_norm() -> None:
    """``getattr(nn, act)()`` is built without a channel count: not a hidden norm, so the
    norm-free CNN gets the same answer as with ``ACTS[act]()``."""
    for name in ("opaque_act.py", "opaque_act2.py"):
        rec = model(analyze(name, batch_size=32), "Net").recommendation
        assert rec is not None and rec.norm == "bn", name


def test_an_input_norm_or_lrn_alone_is_no_norm_to_judge_at_an_unknown_batch() -> None:
    """A CNN whose only norm is an input InstanceNorm or a LocalResponseNorm abstains at an
    unknown batch, as a norm-free CNN does."""
    for name, cls in (("in_only.py", "Net"), ("lrn_only.py", "AlexNetish")):
        report = model(analyze(name), cls)
        assert report.recommendation is None and "batch size is unknown" in report.abstain


def test_an_encoder_of_unknown_width_beside_a_known_critic_is_not_the_critic() -> None:
    """ClusterGAN: ``Linear(1024, latent_dim + n_c)`` in the encoder, ``Linear(1024, 1)`` in
    the critic of the same gradient-penalty file: the encoder is not D2."""
    source = (CASES / "wgan_unknown_out.py").read_text()
    source = source.replace("cfg.critic_out)", "1)")
    source += """

class Encoder(nn.Module):
    def __init__(self, latent_dim, n_c, d=64):
        super().__init__()
        self.c1 = nn.Conv2d(3, d, 4, 2, 1)
        self.c2 = nn.Conv2d(d, 2 * d, 4, 2, 1)
        self.fc = nn.Linear(2 * d * 8 * 8, latent_dim + n_c)

    def forward(self, x):
        return self.fc(self.c2(self.c1(x).relu()).relu().flatten(1))
"""
    result = analyze_source(source, "clustergan.py", AnalysisOptions(batch_size=64))
    assert (model(result, "Critic").domain or "").startswith("D2:")
    assert not (model(result, "Encoder").domain or "").startswith("D2:")


def test_a_norm_free_1d_decoder_is_a_signal_decoder_not_an_image_one() -> None:
    """encodec's SEANet decoder (Conv1d, upsampling by ConvTranspose1d) was called "an image
    decoder"; the abstention is the same, in the right words."""
    source = """
import torch.nn as nn


class Decoder(nn.Module):
    def __init__(self, dim=128, n=32):
        super().__init__()
        self.c1 = nn.Conv1d(dim, 4 * n, 7, padding=3)
        self.up1 = nn.ConvTranspose1d(4 * n, 2 * n, 8, stride=4)
        self.up2 = nn.ConvTranspose1d(2 * n, n, 8, stride=4)
        self.out = nn.Conv1d(n, 1, 7, padding=3)

    def forward(self, z):
        return self.out(self.up2(self.up1(self.c1(z).relu()).relu()).relu()).tanh()
"""
    report = model(analyze_source(source, "dec.py", AnalysisOptions(batch_size=8)), "Decoder")
    assert report.recommendation is None
    assert report.abstain.startswith("a signal decoder without norm layers")
