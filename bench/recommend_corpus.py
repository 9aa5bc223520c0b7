"""`normsuite recommend` on models we did not write: the review behind the README table.

Each entry is one model of the corpus (installed packages and fetched repositories) with
what `recommend` said when it was reviewed and the verdict of a reader of the code:
"right", "wrong" (with the reason) or "abstain" (no recommendation, with its reason).
Running the script analyzes the files again and reports any model whose answer changed
since the review (then the verdict must be looked at again), and prints the table.

Run: ``NORMSUITE_CORPUS=/path/to/corpus .venv/bin/python bench/recommend_corpus.py``
(``--markdown`` prints the README table). The corpus holds ``src/<package>/`` and
``repos/<owner+name>/`` trees; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from normsuite.analysis.runner import RunSettings, analyze_paths
from normsuite.analysis.types import AnalysisOptions
from normsuite.analysis.usage import hide_blocks


class J(NamedTuple):
    """One reviewed model."""

    path: str  # relative to the corpus root
    model: str
    kind: str  # CNN | RNN | transformer | GAN | diffusion | hybrid | other
    norm: str | None  # what recommend said (None: it abstained)
    confidence: str | None
    verdict: str  # right | wrong | abstain
    why: str


JUDGED: list[J] = [
    J(
        "repos/kuangliu+pytorch-cifar/models/resnet.py",
        "ResNet",
        "CNN",
        "bn",
        "low",
        "right",
        "CIFAR classifier trained at batch 128 (main.py); BN kept",
    ),
    J(
        "repos/kuangliu+pytorch-cifar/models/densenet.py",
        "DenseNet",
        "CNN",
        "bn",
        "low",
        "right",
        "CIFAR classifier trained at batch 128 (main.py); BN kept",
    ),
    J(
        "repos/kuangliu+pytorch-cifar/models/mobilenetv2.py",
        "MobileNetV2",
        "CNN",
        "bn",
        "low",
        "right",
        "CIFAR classifier trained at batch 128 (main.py); BN kept",
    ),
    J(
        "repos/kuangliu+pytorch-cifar/models/googlenet.py",
        "GoogLeNet",
        "CNN",
        "bn",
        "low",
        "right",
        "CIFAR classifier trained at batch 128 (main.py); BN kept",
    ),
    J(
        "repos/kuangliu+pytorch-cifar/models/dla.py",
        "DLA",
        "CNN",
        "bn",
        "low",
        "right",
        "CIFAR classifier trained at batch 128 (main.py); BN kept",
    ),
    J(
        "repos/kuangliu+pytorch-cifar/models/shufflenetv2.py",
        "ShuffleNetV2",
        "CNN",
        "bn",
        "low",
        "right",
        "CIFAR classifier trained at batch 128 (main.py); BN kept",
    ),
    J(
        "repos/kuangliu+pytorch-cifar/models/efficientnet.py",
        "EfficientNet",
        "CNN",
        "bn",
        "low",
        "right",
        "CIFAR classifier trained at batch 128 (main.py); BN kept",
    ),
    J(
        "repos/kuangliu+pytorch-cifar/models/senet.py",
        "BasicBlock",
        "CNN",
        "bn",
        "low",
        "right",
        "CIFAR classifier trained at batch 128 (main.py); BN kept",
    ),
    J(
        "repos/kuangliu+pytorch-cifar/models/senet.py",
        "SENet",
        "CNN",
        "bn",
        "low",
        "right",
        "CIFAR classifier trained at batch 128 (main.py); BN kept",
    ),
    J(
        "repos/kuangliu+pytorch-cifar/models/lenet.py",
        "LeNet",
        "CNN",
        None,
        None,
        "abstain",
        (
            "no norm layers to judge and the batch size is unknown: bn at >= 16 per"
            " device, gn below (B"
        ),
    ),
    J(
        "repos/kuangliu+pytorch-cifar/models/vgg.py",
        "VGG",
        "CNN",
        None,
        None,
        "abstain",
        "a single Linear layer: no hidden layer for a norm to follow",
    ),
    J(
        "src/torchvision/torchvision/models/resnet.py",
        "ResNet",
        "CNN",
        "bn",
        "low",
        "right",
        "BN kept",
    ),
    J(
        "src/torchvision/torchvision/models/densenet.py",
        "DenseNet",
        "CNN",
        "bn",
        "low",
        "right",
        "BN kept",
    ),
    J(
        "src/torchvision/torchvision/models/inception.py",
        "Inception3",
        "CNN",
        "bn",
        "low",
        "right",
        "BN kept",
    ),
    J(
        "src/torchvision/torchvision/models/mnasnet.py",
        "MNASNet",
        "CNN",
        "bn",
        "low",
        "right",
        "BN kept",
    ),
    J(
        "src/torchvision/torchvision/models/vision_transformer.py",
        "VisionTransformer",
        "transformer",
        None,
        None,
        "abstain",
        (
            "architecture uncertain: a single conv (a patch embedding?) and "
            "LayerNorm on inputs that co"
        ),
    ),
    J(
        "src/torchvision/torchvision/models/swin_transformer.py",
        "SwinTransformer",
        "transformer",
        "ln",
        "medium",
        "right",
        (
            "LN kept (label D6 says ConvNeXt-style: LN over channels of NHWC maps, "
            "the same computation)"
        ),
    ),
    J(
        "src/torchvision/torchvision/models/maxvit.py",
        "MaxVit",
        "hybrid",
        "ln",
        "low",
        "right",
        "head LN kept (only the head norm was seen)",
    ),
    J(
        "src/torchvision/torchvision/models/detection/fcos.py",
        "FCOS",
        "CNN",
        "gn",
        "low",
        "right",
        "GN heads kept (detection: small per-GPU batch)",
    ),
    J(
        "src/torchvision/torchvision/models/segmentation/deeplabv3.py",
        "DeepLabHead",
        "CNN",
        "bn",
        "low",
        "right",
        "BN kept",
    ),
    J(
        "src/timm/timm/models/repvit.py",
        "RepVit",
        "hybrid",
        "bn",
        "low",
        "right",
        "BN kept (re-parameterized mobile CNN)",
    ),
    J(
        "src/timm/timm/models/levit.py",
        "Levit",
        "hybrid",
        "bn",
        "medium",
        "right",
        "BN everywhere by design (LeViT), kept",
    ),
    J(
        "src/timm/timm/models/levit.py",
        "LevitDistilled",
        "hybrid",
        "bn",
        "medium",
        "right",
        "BN everywhere by design (LeViT), kept",
    ),
    J(
        "src/timm/timm/models/edgenext.py",
        "EdgeNeXt",
        "hybrid",
        "ln",
        "medium",
        "right",
        "channel LN kept",
    ),
    J(
        "src/timm/timm/models/sequencer.py",
        "RNN2dBase",
        "RNN",
        None,
        None,
        "abstain",
        "a single Linear layer: no hidden layer for a norm to follow",
    ),
    J(
        "src/timm/timm/models/sequencer.py",
        "Shuffle",
        "RNN",
        None,
        None,
        "abstain",
        (
            "no norm sites and no layers a norm would follow (conv, linear, "
            "recurrent, attention): an a"
        ),
    ),
    J(
        "src/timm/timm/models/sequencer.py",
        "Sequencer2d",
        "RNN",
        "ln",
        "medium",
        "right",
        "LN kept (BiLSTM2D model; label D6 is a misnomer)",
    ),
    J(
        "src/timm/timm/models/mlp_mixer.py",
        "MlpMixer",
        "transformer",
        "ln",
        "low",
        "right",
        "LN kept",
    ),
    J(
        "src/timm/timm/models/convmixer.py",
        "ConvMixer",
        "CNN",
        "bn",
        "low",
        "right",
        "BN kept (ConvMixer's design)",
    ),
    J(
        "src/segmentation_models_pytorch/segmentation_models_pytorch/encoders/mix_transformer.py",
        "MixVisionTransformer",
        "hybrid",
        "ln",
        "medium",
        "right",
        "SegFormer channel LN kept",
    ),
    J(
        "src/segmentation_models_pytorch/segmentation_models_pytorch/encoders/mix_transformer.py",
        "MixVisionTransformerEncoder",
        "hybrid",
        "ln",
        "medium",
        "right",
        "SegFormer channel LN kept",
    ),
    J(
        "src/segmentation_models_pytorch/segmentation_models_pytorch/decoders/fpn/decoder.py",
        "FPNDecoder",
        "CNN",
        "gn",
        "low",
        "right",
        "GN kept",
    ),
    J(
        "repos/pytorch+examples/mnist/main.py",
        "Net",
        "CNN",
        "bn",
        "high",
        "right",
        "no norm; batch 64 from its training loop: BN is the B1 choice",
    ),
    J(
        "repos/pytorch+examples/mnist_rnn/main.py",
        "Net",
        "RNN",
        "bn",
        "medium",
        "right",
        "BN on the last step's (N, C) vector at batch 64: B11, kept",
    ),
    J(
        "repos/pytorch+examples/word_language_model/model.py",
        "RNNModel",
        "RNN",
        "ln",
        "high",
        "right",
        "LSTM LM without norms: LN (B6)",
    ),
    J(
        "repos/pytorch+examples/word_language_model/model.py",
        "PositionalEncoding",
        "RNN",
        None,
        None,
        "abstain",
        (
            "no norm sites and no layers a norm would follow (conv, linear, "
            "recurrent, attention): an a"
        ),
    ),
    J(
        "repos/pytorch+examples/time_sequence_prediction/train.py",
        "Sequence",
        "RNN",
        "ln",
        "high",
        "right",
        "LSTMCells: LN (B6)",
    ),
    J(
        "repos/pytorch+examples/language_translation/src/model.py",
        "Translator",
        "transformer",
        "ln",
        "high",
        "right",
        "nn.Transformer: LN",
    ),
    J(
        "repos/pytorch+examples/dcgan/main.py",
        "Generator",
        "GAN",
        "bn",
        "medium",
        "right",
        "DCGAN design, BN kept",
    ),
    J(
        "repos/pytorch+examples/dcgan/main.py",
        "Discriminator",
        "GAN",
        "bn",
        "medium",
        "right",
        "DCGAN design, BN kept",
    ),
    J(
        "repos/pytorch+examples/fast_neural_style/neural_style/transformer_net.py",
        "TransformerNet",
        "GAN",
        "in",
        "medium",
        "right",
        "style transfer: IN kept (D1)",
    ),
    J(
        "repos/pytorch+examples/super_resolution/model.py",
        "Net",
        "CNN",
        "none",
        "medium",
        "right",
        "ESPCN without norms kept (D8)",
    ),
    J(
        "repos/pytorch+examples/vae/main.py",
        "VAE",
        "other",
        None,
        None,
        "abstain",
        (
            "sampling generative model without norms. At review it got 'bn, medium' "
            "(wrong: B11 is recognition evidence); fixed after the review"
        ),
    ),
    J(
        "repos/pytorch+examples/reinforcement_learning/reinforce.py",
        "Policy",
        "other",
        None,
        None,
        "abstain",
        (
            "no norm layers to judge and the batch size is unknown: bn at >= 16 per"
            " device, ln below (B"
        ),
    ),
    J(
        "repos/pytorch+examples/legacy/snli/model.py",
        "Bottle",
        "RNN",
        None,
        None,
        "abstain",
        (
            "no norm sites and no layers a norm would follow (conv, linear, "
            "recurrent, attention): an a"
        ),
    ),
    J(
        "repos/pytorch+examples/legacy/snli/model.py",
        "SNLIClassifier",
        "RNN",
        "ln",
        "high",
        "right",
        "LSTM encoder: LN (B6)",
    ),
    J(
        "repos/pytorch+examples/distributed/FSDP2/model.py",
        "Transformer",
        "transformer",
        "ln",
        "medium",
        "right",
        "LN kept",
    ),
    J(
        "repos/spro+practical-pytorch/seq2seq-translation/seq2seq-translation-batched.py",
        "EncoderRNN",
        "RNN",
        "ln",
        "high",
        "right",
        "GRU seq2seq: LN (B6)",
    ),
    J(
        "repos/spro+practical-pytorch/seq2seq-translation/seq2seq-translation-batched.py",
        "LuongAttnDecoderRNN",
        "RNN",
        "ln",
        "high",
        "right",
        "GRU seq2seq: LN (B6)",
    ),
    J(
        "repos/spro+practical-pytorch/char-rnn-generation/model.py",
        "RNN",
        "RNN",
        "ln",
        "high",
        "right",
        "GRU: LN (B6)",
    ),
    J(
        "repos/sgrvinod+a-PyTorch-Tutorial-to-Image-Captioning/models.py",
        "Encoder",
        "RNN",
        None,
        None,
        "abstain",
        (
            "no norm sites and no layers a norm would follow (conv, linear, "
            "recurrent, attention): an a"
        ),
    ),
    J(
        "repos/sgrvinod+a-PyTorch-Tutorial-to-Image-Captioning/models.py",
        "DecoderWithAttention",
        "RNN",
        "ln",
        "high",
        "right",
        "LSTMCell decoder with attention, no conv: LN (B6)",
    ),
    J("repos/karpathy+nanoGPT/model.py", "GPT", "transformer", "ln", "medium", "right", "LN kept"),
    J(
        "repos/facebookresearch+ConvNeXt/models/convnext.py",
        "ConvNeXt",
        "CNN",
        "ln",
        "medium",
        "right",
        "channel LN kept (D6)",
    ),
    J(
        (
            "repos/lucidrains+denoising-diffusion-"
            "pytorch/denoising_diffusion_pytorch/denoising_diffusion_pytorch.py"
        ),
        "Unet",
        "diffusion",
        "gn",
        "medium",
        "right",
        (
            "D4 says gn; the blocks (RMSNorm) were not built, so GN is advice for "
            "unseen sites: the DDPM choice, counted right"
        ),
    ),
    J(
        (
            "repos/lucidrains+denoising-diffusion-"
            "pytorch/denoising_diffusion_pytorch/denoising_diffusion_pytorch.py"
        ),
        "GaussianDiffusion",
        "diffusion",
        None,
        None,
        "abstain",
        (
            "no norm sites and no layers a norm would follow (conv, linear, "
            "recurrent, attention): an a"
        ),
    ),
    J(
        (
            "repos/lucidrains+denoising-diffusion-"
            "pytorch/denoising_diffusion_pytorch/denoising_diffusion_pytorch_1d.py"
        ),
        "Unet1D",
        "diffusion",
        "rms",
        "medium",
        "right",
        "channel RMSNorm kept (D4)",
    ),
    J(
        (
            "repos/lucidrains+denoising-diffusion-"
            "pytorch/denoising_diffusion_pytorch/denoising_diffusion_pytorch_1d.py"
        ),
        "GaussianDiffusion1D",
        "diffusion",
        None,
        None,
        "abstain",
        (
            "no norm sites and no layers a norm would follow (conv, linear, "
            "recurrent, attention): an a"
        ),
    ),
    J(
        (
            "repos/lucidrains+denoising-diffusion-"
            "pytorch/denoising_diffusion_pytorch/classifier_free_guidance.py"
        ),
        "Unet",
        "diffusion",
        "rms",
        "medium",
        "right",
        "channel RMSNorm kept (D4)",
    ),
    J(
        (
            "repos/lucidrains+denoising-diffusion-"
            "pytorch/denoising_diffusion_pytorch/classifier_free_guidance.py"
        ),
        "GaussianDiffusion",
        "diffusion",
        None,
        None,
        "abstain",
        (
            "no norm sites and no layers a norm would follow (conv, linear, "
            "recurrent, attention): an a"
        ),
    ),
    J(
        "src/diffusers/diffusers/models/autoencoders/vae.py",
        "Encoder",
        "diffusion",
        "gn",
        "low",
        "right",
        "SD VAE GroupNorm kept",
    ),
    J(
        "src/diffusers/diffusers/models/autoencoders/vae.py",
        "Decoder",
        "diffusion",
        "gn",
        "low",
        "right",
        "SD VAE GroupNorm kept",
    ),
    J(
        "src/diffusers/diffusers/models/autoencoders/vae.py",
        "UpSample",
        "diffusion",
        None,
        None,
        "abstain",
        (
            "no norm layers to judge and the batch size is unknown: bn at >= 16 per"
            " device, gn below (B"
        ),
    ),
    J(
        "src/diffusers/diffusers/models/autoencoders/vae.py",
        "MaskConditionDecoder",
        "diffusion",
        "gn",
        "low",
        "right",
        "SD VAE GroupNorm kept",
    ),
    J(
        "src/diffusers/diffusers/models/autoencoders/vae.py",
        "VectorQuantizer",
        "diffusion",
        None,
        None,
        "abstain",
        (
            "no norm sites and no layers a norm would follow (conv, linear, "
            "recurrent, attention): an a"
        ),
    ),
    J(
        "src/diffusers/diffusers/models/autoencoders/vae.py",
        "EncoderTiny",
        "diffusion",
        None,
        None,
        "abstain",
        (
            "no norm layers to judge and the batch size is unknown: bn at >= 16 per"
            " device, gn below (B"
        ),
    ),
    J(
        "src/diffusers/diffusers/models/autoencoders/vae.py",
        "DecoderTiny",
        "diffusion",
        None,
        None,
        "abstain",
        (
            "no norm layers to judge and the batch size is unknown: bn at >= 16 per"
            " device, gn below (B"
        ),
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/wgan_gp/wgan_gp.py",
        "Generator",
        "GAN",
        "bn",
        "medium",
        "right",
        "generator BN kept",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/wgan_gp/wgan_gp.py",
        "Discriminator",
        "GAN",
        "none",
        "medium",
        "right",
        "WGAN-GP critic without norm: none (D2)",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/cyclegan/models.py",
        "GeneratorResNet",
        "GAN",
        "in",
        "medium",
        "right",
        "IN kept",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/cyclegan/models.py",
        "Discriminator",
        "GAN",
        "in",
        "medium",
        "right",
        "IN kept",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/pix2pix/models.py",
        "GeneratorUNet",
        "GAN",
        "in",
        "medium",
        "right",
        "IN kept",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/pix2pix/models.py",
        "Discriminator",
        "GAN",
        "in",
        "medium",
        "right",
        "IN kept",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/dragan/dragan.py",
        "Generator",
        "GAN",
        "bn",
        "medium",
        "right",
        "generator BN kept",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/dragan/dragan.py",
        "Discriminator",
        "GAN",
        "ln",
        "medium",
        "right",
        "gradient penalty critic: its BN -> channel LN (D2)",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/acgan/acgan.py",
        "Generator",
        "GAN",
        "bn",
        "medium",
        "right",
        "BN kept",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/acgan/acgan.py",
        "Discriminator",
        "GAN",
        "bn",
        "medium",
        "right",
        "BN kept",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/munit/models.py",
        "Encoder",
        "GAN",
        "in",
        "medium",
        "right",
        "",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/munit/models.py",
        "Decoder",
        "GAN",
        "in",
        "medium",
        "right",
        "",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/munit/models.py",
        "MultiDiscriminator",
        "GAN",
        None,
        None,
        "abstain",
        (
            "no norm sites and no layers a norm would follow (conv, linear, "
            "recurrent, attention): an a"
        ),
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/srgan/models.py",
        "FeatureExtractor",
        "GAN",
        None,
        None,
        "abstain",
        (
            "no norm sites and no layers a norm would follow (conv, linear, "
            "recurrent, attention): an a"
        ),
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/srgan/models.py",
        "GeneratorResNet",
        "GAN",
        "bn",
        "medium",
        "right",
        "SRGAN's BN kept",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/srgan/models.py",
        "Discriminator",
        "GAN",
        "bn",
        "medium",
        "right",
        "SRGAN's BN kept",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/esrgan/models.py",
        "FeatureExtractor",
        "GAN",
        None,
        None,
        "abstain",
        (
            "no norm sites and no layers a norm would follow (conv, linear, "
            "recurrent, attention): an a"
        ),
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/esrgan/models.py",
        "GeneratorRRDB",
        "GAN",
        None,
        None,
        "abstain",
        (
            "no norm layers to judge and the batch size is unknown: bn at >= 16 per"
            " device, gn below (B"
        ),
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/esrgan/models.py",
        "Discriminator",
        "GAN",
        "bn",
        "low",
        "right",
        "SRGAN's BN kept",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/Tacotron2.py",
        "Tacotron2",
        "hybrid",
        "bn",
        "low",
        "right",
        "conv BN kept (Tacotron 2 design)",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/Tacotron2.py",
        "Loss",
        "hybrid",
        None,
        None,
        "abstain",
        (
            "no norm sites and no layers a norm would follow (conv, linear, "
            "recurrent, attention): an a"
        ),
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/dual_path.py",
        "FastTransformerBlock",
        "transformer",
        None,
        None,
        "abstain",
        (
            "no norm sites and no layers a norm would follow (conv, linear, "
            "recurrent, attention): an a"
        ),
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/dual_path.py",
        "PytorchTransformerBlock",
        "transformer",
        "ln",
        "high",
        "right",
        "nn.TransformerEncoderLayer: LN",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/dual_path.py",
        "DPTNetBlock",
        "transformer",
        "ln",
        "high",
        "right",
        "transformer with an LSTM inside: LN kept",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/dual_path.py",
        "SepformerWrapper",
        "transformer",
        "gn",
        "low",
        "right",
        "GroupNorm(1) encoder norm kept",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/dual_path.py",
        "SBConformerEncoderBlock",
        "transformer",
        None,
        None,
        "abstain",
        (
            "no norm sites and no layers a norm would follow (conv, linear, "
            "recurrent, attention): an a"
        ),
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/MetricGAN.py",
        "EnhancementGenerator",
        "GAN",
        None,
        None,
        "abstain",
        (
            "no norm layers to judge and the batch size is unknown: bn at >= 16 per"
            " device, ln below (B"
        ),
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/MetricGAN.py",
        "MetricDiscriminator",
        "GAN",
        "bn",
        "low",
        "right",
        "input BN and spectral norm kept",
    ),
    J(
        "src/lightning_bolts/pl_bolts/models/self_supervised/cpc/networks.py",
        "CPCResNet",
        "CNN",
        "ln",
        "low",
        "right",
        "CPC's LayerNorm kept (batch unknown; CPC avoids BN on purpose)",
    ),
    J(
        "src/lightning_bolts/pl_bolts/models/self_supervised/simclr/simclr_module.py",
        "SimCLR",
        "other",
        "bn",
        "medium",
        "right",
        "projection head BN kept (SimCLR design, batch 128)",
    ),
    J(
        "src/lightning_bolts/pl_bolts/models/gans/dcgan/components.py",
        "DCGANGenerator",
        "GAN",
        "bn",
        "low",
        "right",
        "DCGAN BN kept",
    ),
    J(
        "src/lightning_bolts/pl_bolts/models/gans/dcgan/components.py",
        "DCGANDiscriminator",
        "GAN",
        "bn",
        "low",
        "right",
        "DCGAN BN kept",
    ),
]


# Reviewed once, after development, on files not looked at while building the rules
# (speechbrain/mmpretrain/timm/pytorch_tabular files, GAN scripts): a held-out check.
HELD_OUT: list[J] = [
    J(
        "src/speechbrain/speechbrain/lobes/models/ECAPA_TDNN.py",
        "ECAPA_TDNN",
        "other",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/ECAPA_TDNN.py",
        "Classifier",
        "other",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/conv_tasnet.py",
        "Encoder",
        "other",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/conv_tasnet.py",
        "Decoder",
        "other",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/conv_tasnet.py",
        "MaskNet",
        "other",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/conv_tasnet.py",
        "TemporalBlock",
        "other",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/conv_tasnet.py",
        "Chomp1d",
        "other",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/DiffWave.py",
        "DiffWave",
        "diffusion",
        None,
        None,
        "abstain",
        "no norm layers to judge and the batch size is unknown: bn at",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/RNNLM.py",
        "RNNLM",
        "RNN",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/Xvector.py",
        "Xvector",
        "other",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/FastSpeech2.py",
        "SPNPredictor",
        "other",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/FastSpeech2.py",
        "FastSpeech2",
        "other",
        None,
        None,
        "abstain",
        "architecture unknown: no conv/recurrent/attention layers fou",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/FastSpeech2.py",
        "Loss",
        "other",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/FastSpeech2.py",
        "FastSpeech2WithAlignment",
        "other",
        None,
        None,
        "abstain",
        "architecture unknown: no conv/recurrent/attention layers fou",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/FastSpeech2.py",
        "LossWithAlignment",
        "other",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/ContextNet.py",
        "ContextNetBlock",
        "other",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/speechbrain/speechbrain/lobes/models/EnhanceResnet.py",
        "EnhanceResnet",
        "other",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/mmpretrain/mmpretrain/models/backbones/hornet.py",
        "HorNetBlock",
        "CNN",
        "ln",
        "medium",
        "right",
        "channel LN kept (HorNet)",
    ),
    J(
        "src/mmpretrain/mmpretrain/models/backbones/poolformer.py",
        "PatchEmbed",
        "CNN",
        None,
        None,
        "abstain",
        "no norm layers to judge and the batch size is unknown: bn at",
    ),
    J(
        "src/mmpretrain/mmpretrain/models/backbones/poolformer.py",
        "Pooling",
        "CNN",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/mmpretrain/mmpretrain/models/backbones/poolformer.py",
        "Mlp",
        "CNN",
        None,
        None,
        "abstain",
        "no norm layers to judge and the batch size is unknown: bn at",
    ),
    J(
        "src/mmpretrain/mmpretrain/models/backbones/tinyvit.py",
        "PatchMerging",
        "CNN",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/mmpretrain/mmpretrain/models/backbones/tinyvit.py",
        "MBConvBlock",
        "CNN",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/timm/timm/models/cspnet.py",
        "DarkBlock",
        "CNN",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/timm/timm/models/cspnet.py",
        "EdgeBlock",
        "CNN",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/timm/timm/models/cspnet.py",
        "CrossStage",
        "CNN",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/timm/timm/models/cspnet.py",
        "CrossStage3",
        "CNN",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/timm/timm/models/cspnet.py",
        "DarkStage",
        "CNN",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/timm/timm/models/cspnet.py",
        "CspNet",
        "CNN",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J("src/timm/timm/models/hrnet.py", "HighResolutionNet", "CNN", "bn", "low", "right", "BN kept"),
    J(
        "src/timm/timm/models/hrnet.py",
        "HighResolutionNetFeatures",
        "CNN",
        "bn",
        "low",
        "right",
        "BN kept",
    ),
    J(
        "src/timm/timm/models/rexnet.py",
        "RexNet",
        "CNN",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J("src/timm/timm/models/selecsls.py", "SelecSlsBlock", "CNN", "bn", "low", "right", "BN kept"),
    J("src/timm/timm/models/selecsls.py", "SelecSls", "CNN", "bn", "low", "right", "BN kept"),
    J("src/timm/timm/models/coat.py", "CoaT", "hybrid", "ln", "medium", "right", "LN kept"),
    J(
        "src/timm/timm/models/crossvit.py",
        "CrossVit",
        "transformer",
        "ln",
        "high",
        "right",
        "LN kept",
    ),
    J(
        "src/timm/timm/models/pit.py",
        "PoolingVisionTransformer",
        "transformer",
        None,
        None,
        "abstain",
        "architecture uncertain: a single conv (a patch embedding?) a",
    ),
    J(
        "src/timm/timm/models/nest.py",
        "Nest",
        "transformer",
        None,
        None,
        "abstain",
        "architecture unknown: no conv/recurrent/attention layers fou",
    ),
    J("src/timm/timm/models/tnt.py", "TNT", "transformer", "ln", "high", "right", "LN kept"),
    J(
        "src/timm/timm/models/efficientvit_mit.py",
        "EfficientVit",
        "hybrid",
        "ln",
        "low",
        "right",
        "BN convs and LN head kept (label mlp is wrong: stages not built)",
    ),
    J(
        "src/timm/timm/models/efficientvit_mit.py",
        "EfficientVitLarge",
        "hybrid",
        "ln",
        "low",
        "right",
        "BN convs and LN head kept (label mlp is wrong)",
    ),
    J(
        "src/pytorch_tabular/pytorch_tabular/models/category_embedding/category_embedding_model.py",
        "CategoryEmbeddingBackbone",
        "other",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/pytorch_tabular/pytorch_tabular/models/tabnet/tabnet_model.py",
        "TabNetBackbone",
        "other",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/pytorch_tabular/pytorch_tabular/models/ft_transformer/ft_transformer.py",
        "FTTransformerBackbone",
        "other",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "src/pytorch_tabular/pytorch_tabular/models/gandalf/gandalf.py",
        "GANDALFBackbone",
        "other",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/began/began.py",
        "Generator",
        "GAN",
        "bn",
        "high",
        "right",
        "BN kept (high: the GAN was not recognized, BEGAN D is an autoencoder)",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/began/began.py",
        "Discriminator",
        "GAN",
        "bn",
        "medium",
        "right",
        "BN kept",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/infogan/infogan.py",
        "Generator",
        "GAN",
        "bn",
        "medium",
        "right",
        "BN kept",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/infogan/infogan.py",
        "Discriminator",
        "GAN",
        "bn",
        "medium",
        "right",
        "BN kept",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/stargan/models.py",
        "GeneratorResNet",
        "GAN",
        "in",
        "medium",
        "right",
        "IN kept",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/stargan/models.py",
        "Discriminator",
        "GAN",
        "none",
        "medium",
        "right",
        "no norm kept",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/unit/models.py",
        "Encoder",
        "GAN",
        "in",
        "medium",
        "right",
        "IN kept",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/unit/models.py",
        "Generator",
        "GAN",
        "in",
        "medium",
        "right",
        "IN kept",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/unit/models.py",
        "Discriminator",
        "GAN",
        "in",
        "medium",
        "right",
        "IN kept",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/context_encoder/models.py",
        "Generator",
        "GAN",
        "bn",
        "medium",
        "right",
        "BN kept",
    ),
    J(
        "repos/eriklindernoren+PyTorch-GAN/implementations/context_encoder/models.py",
        "Discriminator",
        "GAN",
        "in",
        "medium",
        "right",
        "IN kept",
    ),
    J(
        "repos/pytorch+examples/siamese_network/main.py",
        "SiameseNetwork",
        "CNN",
        "bn",
        "medium",
        "right",
        "a ResNet-18 with BN at batch 64: bn (label mlp is wrong: children() rebuilt)",
    ),
    J(
        "repos/pytorch+examples/mnist_hogwild/main.py",
        "Net",
        "CNN",
        "bn",
        "medium",
        "right",
        "no norm, batch 64 from its training code: bn (B1)",
    ),
    J(
        "repos/pytorch+examples/gat/main.py",
        "GAT",
        "transformer",
        None,
        None,
        "abstain",
        "no norm sites and no layers a norm would follow (conv, linea",
    ),
]


def current(root: Path) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """(path, model) -> (norm, confidence) as `normsuite recommend` says today."""
    paths = sorted({j.path for j in (*JUDGED, *HELD_OUT)})
    results = analyze_paths(
        [str(root / p) for p in paths], AnalysisOptions(), settings=RunSettings(use_config=False)
    )
    out = {}
    for result in hide_blocks(results):
        rel = str(Path(result.path).relative_to(root))
        for m in result.models:
            rec = m.recommendation
            out[(rel, m.name)] = (rec.norm, rec.confidence) if rec else (None, None)
    return out


def summary(entries: list[J]) -> dict[str, int]:
    given = [j for j in entries if j.verdict != "abstain"]
    right = sum(j.verdict == "right" for j in given)
    wrong_high = sum(j.verdict == "wrong" and j.confidence == "high" for j in given)
    return {
        "models": len(entries),
        "given": len(given),
        "abstained": len(entries) - len(given),
        "right": right,
        "wrong": len(given) - right,
        "wrong_high": wrong_high,
    }


def markdown(entries: list[J]) -> str:
    kinds = Counter(j.kind for j in entries)
    rows = ["| kind | models | given | abstained | right | wrong |", "|---|---|---|---|---|---|"]
    for kind in sorted(kinds):
        s = summary([j for j in entries if j.kind == kind])
        rows.append(
            f"| {kind} | {s['models']} | {s['given']} | {s['abstained']} | {s['right']} "
            f"| {s['wrong']} |"
        )
    s = summary(entries)
    rows.append(
        f"| **all** | {s['models']} | {s['given']} | {s['abstained']} | {s['right']} "
        f"| {s['wrong']} |"
    )
    wrong = [j for j in entries if j.verdict == "wrong"]
    rows.append("")
    rows += [f"- wrong: `{j.path}` {j.model} ({j.norm}, {j.confidence}): {j.why}" for j in wrong]
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print the README table")
    args = parser.parse_args()
    root = os.environ.get("NORMSUITE_CORPUS")
    if not root or not Path(root).is_dir():
        print("set NORMSUITE_CORPUS to the corpus folder", file=sys.stderr)
        return 2
    now = current(Path(root))
    changed = [
        j
        for j in (*JUDGED, *HELD_OUT)
        if now.get((j.path, j.model), ("gone", None)) != (j.norm, j.confidence)
    ]
    for j in changed:
        print(
            f"changed since review: {j.path} {j.model}: {(j.norm, j.confidence)} -> "
            f"{now.get((j.path, j.model), 'not reported')}"
        )
    for title, entries in (("development set", JUDGED), ("held-out set", HELD_OUT)):
        if args.markdown:
            print(f"\n{title}:\n\n{markdown(entries)}")
        s = summary(entries)
        share = s["right"] / s["given"] if s["given"] else 0.0
        print(
            f"{title}: {s['models']} models: {s['given']} recommendations, {s['abstained']} "
            f"abstentions; {s['right']}/{s['given']} right ({share:.0%}), wrong with high "
            f"confidence: {s['wrong_high']}"
        )
    print(f"changed since review: {len(changed)}")
    return 1 if changed else 0


if __name__ == "__main__":
    raise SystemExit(main())
