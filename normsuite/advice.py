"""THE selection guidance of normsuite (docs/design.md, "Selection rules").

Pure Python: no torch import.

Used by the analyzer, by ``build_module(norm="auto")``, by the fit-time guardrails and by
``normsuite compare``.

>>> a = advise("cnn2d", 8)
>>> a.norm, a.rules[:1]
('gn', ('B2',))
>>> layer_code("gn", 64)
'nn.GroupNorm(32, 64)'
"""

from __future__ import annotations

from dataclasses import dataclass, replace

GN_DEFAULT_GROUPS = 32  # GN paper (Wu & He 2018) default
MIN_CHANNELS_PER_GROUP = 4  # below this GN degrades towards IN (GN paper Table 3)
BN_MIN_BATCH = 16  # per-device batch from which BN is the better choice (GN paper Fig. 1)

ARCHITECTURES = ("cnn1d", "cnn2d", "cnn3d", "rnn", "transformer", "mlp", "hybrid", "unknown")
NORMS = ("bn", "syncbn", "gn", "ln", "rms", "frozenbn")

_BN = "Ioffe & Szegedy 2015, arXiv:1502.03167"
_GN = "Wu & He 2018, arXiv:1803.08494"
_LN = "Ba, Kiros & Hinton 2016, arXiv:1607.06450"

RULES: dict[str, str] = {
    "B1": (
        "CNN with per-device batch >= 16: BatchNorm. ResNet-50 ImageNet top-1 error is "
        f"BN 23.6% / 23.7% vs GN 24.1% / 24.2% at batch 32 / 16 ({_GN}, Fig. 1 / Table 2; "
        f"BN: {_BN})."
    ),
    "B2": (
        "CNN with per-device batch < 16: GroupNorm(32). BN error is 24.8% / 27.3% / 34.7% vs "
        f"GN 24.0% / 24.2% / 24.1% at batch 8 / 4 / 2; GN stays flat from 32 to 2 ({_GN})."
    ),
    "B3": (
        "Several devices with a small per-device batch but a global batch >= 16: SyncBatchNorm "
        "(statistics over all devices) is the alternative to GroupNorm (Wu & Johnson 2021, "
        '"Rethinking Batch in BatchNorm"; detectron2 offers SyncBN and GN for this reason).'
    ),
    "B4": (
        "GroupNorm groups: G = 32 where that leaves >= 2 channels per group (the paper's ResNet-50 "
        "setting), else a G with >= 4 channels per group; warn below that. G=32: 24.1% error; "
        "4 channels/group 24.8%, 2 -> 25.6%, 1 (= InstanceNorm) 28.4%; G=1 (= LN over C,H,W) "
        f"25.3% ({_GN}, Table 3)."
    ),
    "B5": (
        "Do not pick LayerNorm or InstanceNorm for CNN recognition: at batch 32, BN 23.6%, "
        f"GN 24.1%, LN 25.3%, IN 28.4% error ({_GN}, Table 1)."
    ),
    "B6": (
        "RNN / LSTM / GRU: LayerNorm inside the cell. LN computes the same thing at train and "
        f"test time and works per time step ({_LN}); BN on hidden-to-hidden transitions does "
        "not help (Laurent et al. 2016). RMSNorm matched LN on GRU and LSTM tasks too "
        "(Zhang & Sennrich 2019, arXiv:1910.07467)."
    ),
    "B7": (
        "Transformer: LayerNorm, with RMSNorm as the cheaper alternative: comparable quality, "
        "7%-64% less time (Zhang & Sennrich 2019, arXiv:1910.07467)."
    ),
    "B8": (
        "Per-device batch 1 with BatchNorm in training is an error: on (N, C) features (or a "
        '1x1 map) PyTorch raises "Expected more than 1 value per channel when training"; on '
        "a larger conv map it runs, but normalizes each image by its own spatial statistics, "
        "which are noisy and not the running statistics used at evaluation."
    ),
    "B9": (
        "Micro-batch (1-2 per device): GroupNorm, with Weight Standardization as the known "
        "boost (Qiao et al. 2019, arXiv:1903.10520)."
    ),
    "B10": (
        "Fine-tuning a pretrained BatchNorm backbone at a small batch: FrozenBatchNorm (keep the "
        'pretrained statistics and affine fixed; detectron2 default RESNETS.NORM = "FrozenBN").'
    ),
    "B11": (
        "MLP on (N, C) features: BatchNorm1d at per-device batch >= 16, else LayerNorm "
        "(the B1/B2 reasoning applied to features)."
    ),
}


@dataclass(frozen=True)
class Advice:
    """Which norm to use, with the rule ids, the reasons, the assumptions and what changes it."""

    norm: str  # a NormSpec string: "bn" | "syncbn" | "gn" | "ln" | "rms" | "frozenbn"
    rules: tuple[str, ...]  # rule ids, e.g. ("B2", "B4")
    rationale: tuple[str, ...]  # sentences citing the numbers of docs/design.md, "Selection rules"
    assumptions: tuple[str, ...]
    would_change: tuple[str, ...]  # what input would change the answer
    confidence: str  # "high" | "medium" | "low"
    alternatives: tuple[str, ...] = ()
    # Batch unknown: ``norm`` is the answer at a per-device batch >= 16, this one below
    # (the advice states both and assumes neither).
    below_bn_batch: str | None = None


def default_groups(num_channels: int) -> int:
    """Group count for ``gn`` without an explicit G.

    32 when it divides C and leaves at least 2 channels per group (the GN paper's default;
    its ResNet-50 has 64 channels at the narrowest, 2 per group), else the largest divisor of
    C that is <= 32 and keeps >= 4 channels per group, else 1. The 2-channel floor keeps
    ``gn`` on 32 channels from turning into InstanceNorm (1 channel/group: 28.4% vs 24.1%
    error, GN paper Table 3), which a plain "32 if it divides C" rule would do.

    >>> default_groups(64), default_groups(32), default_groups(48), default_groups(3)
    (32, 8, 12, 1)
    """
    if num_channels < 1:
        raise ValueError(f"num_channels must be >= 1, got {num_channels}")
    if num_channels % GN_DEFAULT_GROUPS == 0 and num_channels >= 2 * GN_DEFAULT_GROUPS:
        return GN_DEFAULT_GROUPS
    for groups in range(min(GN_DEFAULT_GROUPS, num_channels), 0, -1):
        if num_channels % groups == 0 and num_channels // groups >= MIN_CHANNELS_PER_GROUP:
            return groups
    return 1


def _check_inputs(architecture: str, per_device_batch: int | None, devices: int, accumulate: int):
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {architecture!r}; use one of: {', '.join(ARCHITECTURES)}"
        )
    if per_device_batch is not None and per_device_batch < 1:
        raise ValueError(f"per_device_batch must be >= 1 (or None), got {per_device_batch}")
    if devices < 1:
        raise ValueError(f"devices must be >= 1, got {devices}")
    if accumulate < 1:
        raise ValueError(f"accumulate must be >= 1, got {accumulate}")


class _Builder:
    """Collects rules and sentences in order, without duplicates."""

    def __init__(self) -> None:
        self.rules: list[str] = []
        self.rationale: list[str] = []
        self.assumptions: list[str] = []
        self.would_change: list[str] = []

    def cite(self, *rule_ids: str) -> None:
        for rid in rule_ids:
            if rid not in self.rules:
                self.rules.append(rid)
                self.rationale.append(f"{rid}: {RULES[rid]}")

    def note(self, sentence: str) -> None:
        self.rationale.append(sentence)

    def build(
        self,
        norm: str,
        confidence: str,
        alternatives: tuple[str, ...] = (),
        below_bn_batch: str | None = None,
    ) -> Advice:
        return Advice(
            norm=norm,
            rules=tuple(self.rules),
            rationale=tuple(self.rationale),
            assumptions=tuple(self.assumptions),
            would_change=tuple(self.would_change),
            confidence=confidence,
            alternatives=alternatives,
            below_bn_batch=below_bn_batch,
        )


def advise(
    architecture: str,
    per_device_batch: int | None,
    *,
    devices: int = 1,
    accumulate: int = 1,
    fine_tuning_pretrained_bn: bool = False,
    channels: int | None = None,
    direct_evidence: bool = True,
    batchnorm_in_use: bool = True,
) -> Advice:
    """Pick a norm for a model (docs/design.md, "Selection rules": B1-B11, domains D1-D9).

    ``per_device_batch`` is what one device's BatchNorm sees in one forward pass; ``None``
    means unknown (the advice then says what it assumed). ``direct_evidence`` says whether
    the architecture and the batch come from direct evidence (the model's layers, the
    training code or config); without it the confidence is at most "medium". See
    :func:`calibrate` for when "high" is earned. ``batchnorm_in_use=False`` (the model has
    no BatchNorm) leaves out B8, which is about what batch 1 does to BatchNorm.

    >>> advise("cnn2d", 32).norm, advise("cnn2d", 15).norm, advise("rnn", 4).norm
    ('bn', 'gn', 'ln')
    >>> advise("cnn2d", 4, devices=8).alternatives
    ('syncbn',)
    """
    _check_inputs(architecture, per_device_batch, devices, accumulate)
    b = _Builder()
    batch = per_device_batch
    if batch is None:
        b.assumptions.append(_UNKNOWN_BATCH)
    else:
        b.assumptions.append(
            f"per-device batch {batch}, {devices} device(s), accumulation {accumulate}"
        )
    if accumulate > 1 and batch is not None:
        b.note(
            f"Gradient accumulation ({accumulate} steps) does NOT enlarge the batch BatchNorm "
            f"sees: each forward pass still normalizes over {batch} sample(s) per device."
        )

    if architecture == "rnn":
        b.cite("B6")
        b.would_change.append("a convolutional or attention architecture")
        adv = b.build("ln", "high", alternatives=("rms",))
    elif architecture == "transformer":
        b.cite("B7")
        b.would_change.append("a need for the cheapest norm: rms (RMSNorm)")
        adv = b.build("ln", "high", alternatives=("rms",))
    elif architecture == "mlp":
        adv = _advise_mlp(b, batch, batchnorm_in_use)
    else:
        adv = _advise_cnn(
            b, architecture, batch, devices, fine_tuning_pretrained_bn, channels, batchnorm_in_use
        )
    return calibrate(adv, architecture, batch, direct_evidence)


# The GN/BN crossover is model-dependent: the GN paper's ResNet-50 on ImageNet crosses
# between 8 and 16 images per GPU (BN 24.8% vs GN 24.0% at 8, 23.7% vs 24.2% at 16); our own
# `normsuite compare` bake-off on the MNIST-1D ConvNet had BN beat GN at batch 4 and 8 and
# crossed between 2 and 4. Advice inside that band is a judgement call, never "high".
CROSSOVER_BAND = (3, 31)  # per-device batches where BN vs GN is not settled by the papers


def calibrate(adv: Advice, architecture: str, batch: int | None, direct: bool) -> Advice:
    """Cap the confidence at what the evidence supports.

    "high" needs direct evidence (architecture from the layers, batch from training code or
    config) and, for BN-vs-GN/LN choices, a batch far from the crossover: <= 2 or >= 32 per
    device. Inside the band the answer is at most "medium" and names the `normsuite
    compare` run that settles it. The MLP rule (B11) is the CNN evidence carried over to
    features, never measured here: at most "medium". LayerNorm for RNNs/Transformers does
    not depend on the batch.

    >>> calibrate(advise("cnn2d", 8), "cnn2d", 8, True).confidence
    'medium'
    >>> calibrate(advise("cnn2d", 64), "cnn2d", 64, False).confidence
    'medium'
    """
    order = {"low": 0, "medium": 1, "high": 2}
    cap = "high"
    would_change = list(adv.would_change)
    if not direct:
        cap = "medium"
    if architecture == "mlp":
        cap = "medium"
    if architecture not in ("rnn", "transformer", "mlp") and adv.norm in ("bn", "gn"):
        low, high = CROSSOVER_BAND
        if batch is not None and low <= batch <= high:
            cap = "medium"
            cmd = (
                "normsuite compare --config <your LightningCLI recipe>.yaml --norms bn,gn "
                f"--batch-sizes {batch}"
            )
            if not any(cmd in w for w in would_change):
                would_change.append(
                    f"a measurement at your batch: `{cmd}` (the crossover is model-dependent: "
                    "GN paper ResNet-50 between 8 and 16 per GPU; our MNIST-1D ConvNet "
                    "between 2 and 4)"
                )
    confidence = adv.confidence if order[adv.confidence] <= order[cap] else cap
    return replace(adv, confidence=confidence, would_change=tuple(would_change))


_UNKNOWN_BATCH = "per-device batch size unknown"


def _depends_on_batch(large: str, small: str) -> str:
    """The assumption line of an unknown batch: both answers, neither assumed."""
    return (
        f"per-device batch unknown, so no batch is assumed: {large} at >= {BN_MIN_BATCH} per "
        f"device, {small} below"
    )


def _advise_mlp(b: _Builder, batch: int | None, batchnorm_in_use: bool) -> Advice:
    b.cite("B11")
    if batch is None:
        b.assumptions[b.assumptions.index(_UNKNOWN_BATCH)] = _depends_on_batch("bn", "ln")
        b.would_change.append(f"the batch size (pass --batch-size): below {BN_MIN_BATCH}, ln")
        return b.build("bn", "low", alternatives=("ln",), below_bn_batch="ln")
    if batch >= BN_MIN_BATCH:
        b.would_change.append(f"a per-device batch below {BN_MIN_BATCH}: ln")
        return b.build("bn", "high", alternatives=("ln",))
    if batch == 1 and batchnorm_in_use:
        b.cite("B8")
    b.would_change.append(f"a per-device batch of {BN_MIN_BATCH} or more: bn")
    return b.build("ln", "high")


def _advise_cnn(
    b: _Builder,
    architecture: str,
    batch: int | None,
    devices: int,
    fine_tuning: bool,
    channels: int | None,
    batchnorm_in_use: bool,
) -> Advice:
    confidence = "high"
    if architecture == "unknown":
        b.assumptions.append("architecture unknown; treated as a CNN")
        b.would_change.append("a recurrent or Transformer architecture: ln")
        confidence = "low"
    elif architecture == "hybrid":
        b.note(
            "Hybrid model: this advice is for its convolutional part; recurrent or attention "
            "parts take LayerNorm (B6, B7)."
        )
        confidence = "medium"
    small = batch is not None and batch < BN_MIN_BATCH
    if fine_tuning and small:
        b.cite("B10")
        b.would_change.append(f"a per-device batch of {BN_MIN_BATCH} or more: bn (fine-tune BN)")
        return b.build("frozenbn", confidence, alternatives=("gn",))
    if fine_tuning and batch is None:
        # The pretrained BN stays; whether to freeze it depends on the batch.
        b.would_change.append(f"fine-tuning at a per-device batch below {BN_MIN_BATCH}: frozenbn")
    if batch is None:
        b.cite("B1", "B5", "B2")
        b.assumptions[b.assumptions.index(_UNKNOWN_BATCH)] = _depends_on_batch("bn", "gn")
        b.would_change.append(f"the batch size (pass --batch-size): below {BN_MIN_BATCH}, gn")
        return b.build("bn", "low", alternatives=("gn",), below_bn_batch="gn")
    if batch >= BN_MIN_BATCH:
        b.cite("B1", "B5")
        b.would_change.append(f"a per-device batch below {BN_MIN_BATCH}: gn")
        return b.build("bn", confidence, alternatives=("gn",))

    # Small per-device batch: GroupNorm, SyncBN as the multi-device alternative.
    if batch == 1 and batchnorm_in_use:
        b.cite("B8")
    b.cite("B2")
    if batch <= 2:
        b.cite("B9")
    b.cite("B4")
    if channels is not None:
        b.note(f"For {channels} channels: nn.GroupNorm({default_groups(channels)}, {channels}).")
    alternatives: tuple[str, ...] = ()
    if devices > 1 and batch * devices >= BN_MIN_BATCH:
        b.cite("B3")
        b.note(
            f"Global batch {batch} x {devices} devices = {batch * devices} >= {BN_MIN_BATCH}: "
            "SyncBatchNorm would restore BN's batch statistics (at a communication cost)."
        )
        alternatives = ("syncbn",)
    else:
        b.would_change.append(
            f"several devices with a global batch >= {BN_MIN_BATCH}: syncbn as the alternative"
        )
    b.would_change.append(f"a per-device batch of {BN_MIN_BATCH} or more: bn")
    return b.build("gn", confidence, alternatives=alternatives)


_BN_BY_NDIM = {2: "nn.BatchNorm1d", 3: "nn.BatchNorm1d", 4: "nn.BatchNorm2d", 5: "nn.BatchNorm3d"}
_IN_BY_NDIM = {3: "nn.InstanceNorm1d", 4: "nn.InstanceNorm2d", 5: "nn.InstanceNorm3d"}


def layer_code(norm: str, num_channels: int, *, ndim: int = 4, channels_last: bool = False) -> str:
    """The concrete layer for ``norm`` on a tensor of rank ``ndim`` with ``num_channels``.

    ``channels_last`` means the channels are the last dimension ((N, L, C), NHWC).

    >>> layer_code("gn", 64), layer_code("bn", 64, ndim=2), layer_code("ln", 64, ndim=3,
    ...     channels_last=True)
    ('nn.GroupNorm(32, 64)', 'nn.BatchNorm1d(64)', 'nn.LayerNorm(64)')
    >>> layer_code("gn:16", 64), layer_code("ln", 64)
    ('nn.GroupNorm(16, 64)', 'normsuite.build_norm("ln", 64)')
    """
    c = num_channels
    if c < 1:
        raise ValueError(f"num_channels must be >= 1, got {c}")
    if ndim < 2 or ndim > 5:
        raise ValueError(f"ndim must be 2 to 5 (N, C, ...), got {ndim}")
    name, _, arg = norm.lower().partition(":")
    per_position = ndim == 2 or channels_last  # the channels are the last dimension

    def built(spec: str) -> str:  # normsuite.build_norm for layouts torch has no layer for
        layout = f", ndim={ndim}" if ndim != 4 else ""
        layout += ", channels_last=True" if channels_last and ndim > 2 else ""
        return f'normsuite.build_norm("{spec}", {c}{layout})'

    if name == "bn":
        if channels_last and ndim > 2:
            return built("bn")
        return f"{_BN_BY_NDIM[ndim]}({c})"
    if name == "syncbn":
        return f"nn.SyncBatchNorm({c})"
    if name == "frozenbn":
        return f"torchvision.ops.FrozenBatchNorm2d({c})"
    if name == "gn":
        groups = int(arg) if arg else default_groups(c)
        if channels_last and ndim > 2:
            return built(f"gn:{groups}")
        return f"nn.GroupNorm({groups}, {c})"
    if name in ("ln", "rms"):
        if per_position:
            return f"nn.LayerNorm({c})" if name == "ln" else f"nn.RMSNorm({c})"
        # nn.LayerNorm(C) on (N, C, H, W) would normalize W: a channel LN is needed.
        return built(name)
    if name == "in":
        if per_position:
            return built("in")
        return f"{_IN_BY_NDIM[ndim]}({c}, affine=True)"
    if name == "none":
        return "nn.Identity()"
    raise ValueError(f"unknown norm {norm!r}; use one of: bn, syncbn, frozenbn, gn, ln, rms, in")


# --------------------------------------------------------------------------- domains
# B1-B11 are about recognition networks. Where a model belongs to a domain whose literature
# chose a norm on purpose, that choice is kept, and the advice says which domain and why.


@dataclass(frozen=True)
class Domain:
    """A family of models with its own, published norm practice."""

    id: str
    name: str
    norm: str  # what the domain uses: the advice for sites that do not already fit
    keep: tuple[str, ...]  # norm kinds that are kept as they are
    rationale: str
    sources: str
    detected_by: str  # what the analyzer looks for (structure, not names)


DOMAINS: dict[str, Domain] = {
    d.id: d
    for d in (
        Domain(
            "D1",
            "image generation / style transfer / image-to-image generator",
            "in",
            ("in", "ln", "gn", "rms"),
            "InstanceNorm removes each image's own contrast and style statistics, which is "
            "what stylization and image-to-image generators need; batch statistics would "
            "mix the styles of a batch (and such generators train at batch 1-4). AdaIN "
            "re-injects a style's mean and variance per instance.",
            "Ulyanov, Vedaldi & Lempitsky 2016, arXiv:1607.08022 (Instance Normalization); "
            "Huang & Belongie 2017, arXiv:1703.06868 (AdaIN); CycleGAN/pix2pix use "
            "InstanceNorm (Zhu et al. 2017, arXiv:1703.10593)",
            "conv layers with InstanceNorm (or an AdaIN-style norm) and an image output: a "
            "tanh output or an upsampling decoder, no classification head",
        ),
        Domain(
            "D2",
            "GAN critic trained with a gradient penalty (WGAN-GP)",
            "ln",
            ("ln", "gn", "in", "none"),
            "The gradient penalty is computed per sample; BatchNorm makes each sample's "
            "output depend on the others in the batch, which invalidates the penalty. The "
            "WGAN-GP paper uses no batch normalization in the critic and recommends layer "
            "normalization as the drop-in replacement (or no norm).",
            "Gulrajani et al. 2017, arXiv:1704.00028, section 4",
            "the file computes a gradient penalty (torch.autograd.grad with create_graph=True) "
            "and the model is not the generator (no tanh output, no upsampling)",
        ),
        Domain(
            "D3",
            "discriminator with spectral normalization",
            "none",
            ("none",),
            "Spectral normalization reparametrizes the weights to bound the discriminator's "
            "Lipschitz constant; it is not a feature normalization and is kept as it is.",
            "Miyato et al. 2018, arXiv:1802.05957",
            "spectral_norm(...) wrapping the model's layers",
        ),
        Domain(
            "D4",
            "diffusion U-Net",
            "gn",
            ("gn", "rms", "ln"),
            "Denoising diffusion U-Nets use GroupNorm: it does not depend on the batch (which "
            "mixes noise levels) and behaves the same at sampling time.",
            "Ho, Jain & Abbeel 2020, arXiv:2006.11239 (DDPM, appendix B); Dhariwal & Nichol "
            "2021, arXiv:2105.05233",
            "convs in a U-Net (upsampling decoder) whose forward takes a timestep (t, "
            "timesteps, time, noise level) besides the image; its GroupNorm (or channel "
            "RMSNorm/LayerNorm variant, batch-independent as well) is kept",
        ),
        Domain(
            "D5",
            "self-normalizing network (SELU)",
            "none",
            ("none",),
            "SELU activations with LeCun-normal initialization keep activations near zero "
            "mean and unit variance by themselves; no norm layer is needed.",
            "Klambauer et al. 2017, arXiv:1706.02515",
            "SELU activations (nn.SELU, F.selu) or AlphaDropout, and no norm layer",
        ),
        Domain(
            "D6",
            "vision model with channel LayerNorm on feature maps (ConvNeXt-style)",
            "ln",
            ("ln", "gn"),  # a GroupNorm beside it (a stem, a head) is no LN to be
            "Channel LayerNorm on (permuted) feature maps is the ConvNeXt design, tuned with "
            "its own training recipe (AdamW, long schedules); B5's numbers are for "
            "ResNet-style CNNs. Keep it; do not turn it into BatchNorm.",
            "Liu et al. 2022, arXiv:2201.03545",
            "a LayerNorm over the channels of conv maps (permuted to channels-last, or a "
            "channels-first LayerNorm module)",
        ),
        Domain(
            "D7",
            "mobile vision hybrid (conv + attention) with BatchNorm",
            "bn",
            ("bn", "syncbn", "frozenbn", "ln", "rms"),
            "BatchNorm in a mobile conv/attention hybrid folds into the preceding conv or "
            "linear layer at export, which is why these designs choose it (LeViT uses it "
            "even in its attention blocks); attention tokens with LayerNorm keep it.",
            "Mehta & Rastegari 2022, arXiv:2110.02178 (MobileViT); Li et al. 2022, "
            "arXiv:2206.01191 (EfficientFormer); Graham et al. 2021, arXiv:2104.01136 (LeViT)",
            "attention layers and convs, with BatchNorm2d on the conv maps, or BatchNorm as "
            "the only norm",
        ),
        Domain(
            "D8",
            "super-resolution network (sub-pixel upsampling) without norm layers",
            "none",
            ("none",),
            "Super-resolution networks leave BatchNorm out on purpose: it removes the range "
            "flexibility of the features and costs memory; EDSR gained accuracy by removing "
            "it, and ESRGAN removes it to avoid artifacts.",
            "Lim et al. 2017, arXiv:1707.02921 (EDSR); Wang et al. 2018, arXiv:1809.00219 "
            "(ESRGAN); sub-pixel convolution: Shi et al. 2016, arXiv:1609.05158",
            "convs with a PixelShuffle (sub-pixel) upsampling, no classification head and no "
            "norm layer",
        ),
        Domain(
            "D9",
            "GAN generator or discriminator (adversarial training)",
            "none",
            ("bn", "syncbn", "in", "ln", "gn", "rms", "none"),
            "GAN norms are a design choice of each architecture, not a recognition rule: "
            "DCGAN puts BatchNorm in both networks; a large study found no norm best for "
            "generators and spectral normalization best for discriminators, where BatchNorm "
            "often hurts. Existing norms are kept; a discriminator without one is right as "
            "it is (spectral_norm if it needs one).",
            "Radford, Metz & Chintala 2016, arXiv:1511.06434 (DCGAN); Kurach et al. 2019, "
            "arXiv:1807.04720; Miyato et al. 2018, arXiv:1802.05957",
            "a file with an image generator (tanh output or upsampling decoder) and a model "
            "with a single output score; or an upsampling decoder to a tanh image on its own "
            "(a generator whose discriminator is in another file)",
        ),
    )
}


def advise_domain(domain_id: str, per_device_batch: int | None) -> Advice:
    """The advice for a model of a domain with its own norm practice (:data:`DOMAINS`).

    >>> a = advise_domain("D2", 64)
    >>> a.norm, a.rules, a.confidence
    ('ln', ('D2',), 'medium')
    """
    d = DOMAINS[domain_id]
    b = _Builder()
    b.rules.append(d.id)
    b.rationale.append(f"{d.id}: domain {d.name}. {d.rationale} ({d.sources}).")
    b.assumptions.append(f"domain {d.name}: detected from {d.detected_by}")
    if per_device_batch is None:
        b.assumptions.append("per-device batch size unknown")
    else:
        b.assumptions.append(f"per-device batch {per_device_batch}")
    if d.id == "D7" and per_device_batch is not None and per_device_batch < BN_MIN_BATCH:
        b.would_change.append(
            f"training at per-device batch {per_device_batch} < {BN_MIN_BATCH} without export "
            "folding: gn on the conv maps (B2)"
        )
    b.would_change.append(
        f"a model outside the domain ({d.name}): the recognition rules B1-B11 "
        "(`normsuite rule domains`)"
    )
    # A domain is recognized from structure: never "high" (the purpose is inferred).
    return b.build(d.norm, "medium", alternatives=tuple(k for k in d.keep if k != d.norm))


def domains_doc() -> str:
    """The Markdown page of ``normsuite rule domains``: each exception with its citation."""
    lines = [
        "# Domains with their own norm practice",
        "",
        "The recognition rules B1-B11 (BN for CNNs at batch >= 16, GN below, LN for RNNs and "
        "Transformers) come from classification, detection and sequence models. Where a model "
        "belongs to one of these domains, `normsuite recommend` keeps the domain's choice, "
        "says which domain it detected and why, at confidence medium at most (the purpose "
        "of a model is inferred from its structure, never from its name).",
        "",
    ]
    for d in DOMAINS.values():
        keep = ", ".join(d.keep)
        lines += [
            f"## {d.id}: {d.name}",
            "",
            f"- Advice: `{d.norm}`; kept as they are: {keep}.",
            f"- Why: {d.rationale}",
            f"- Sources: {d.sources}.",
            f"- Detected by: {d.detected_by}.",
            "",
        ]
    return "\n".join(lines)
