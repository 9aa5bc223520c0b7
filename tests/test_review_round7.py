"""Seventh review round: each test is one class of wrong answer, on a reproduction in
``fixtures/review7/``, checked against what the code under analysis really does."""

from __future__ import annotations

from pathlib import Path

import pytest

from normsuite.advice import advise
from normsuite.analysis import project
from normsuite.analysis.analyze import analyze_source
from normsuite.analysis.runner import analyze_paths
from normsuite.analysis.types import AnalysisOptions

FIXTURES = Path(__file__).parent / "fixtures" / "review7"


def _model(name: str, model_name: str = "Net"):
    path = FIXTURES / name
    if path.is_dir():
        project.clear()
        results = analyze_paths([str(path / "model.py")])
        (model,) = [m for r in results for m in r.models if m.name == model_name]
        return model
    result = analyze_source(path.read_text(), str(path), AnalysisOptions())
    (model,) = [m for m in result.models if m.name == model_name]
    return model


@pytest.mark.parametrize(
    ("name", "model_name"),
    [("e01_episode_index.py", "ProtoNet"), ("e02_episode_squeeze.py", "Net")],
)
def test_an_episode_loaders_batch_is_not_what_the_model_sees(name: str, model_name: str) -> None:
    """Few-shot code loads one episode per item (``batch_size=1``) and hands the model the
    images inside it (``support[0]``, ``batch["images"].squeeze(0)``): the batch BN sees
    is not 1. It is unknown, and there is no NRM005 error."""
    model = _model(name, model_name)
    assert model.batch_size.per_device is None
    path = FIXTURES / name
    result = analyze_source(path.read_text(), str(path), AnalysisOptions())
    assert not [f for f in result.findings if f.rule == "NRM005"]


def test_a_batch_of_one_whose_fields_are_indexed_is_still_one() -> None:
    """``images, labels = batch[0], batch[1]`` takes the batch's fields, not its first
    item: the loader's batch 1 holds (the control for the episode rule)."""
    assert _model("e03_single_image_batches.py").batch_size.per_device == 1
    # ``for i, batch in enumerate(loader)``: ``batch[0]`` is a field too (DCGAN)
    assert _model("e04_enumerate_batch.py").batch_size.per_device == 64


def test_batch_one_advice_cites_b8_only_for_batchnorm() -> None:
    """B8 explains what batch 1 does to BatchNorm: a model of GroupNorms at batch 1 is not
    told it, one of BatchNorms is."""
    assert "B8" not in advise("cnn2d", 1, batchnorm_in_use=False).rules
    assert "B8" in advise("cnn2d", 1).rules
    assert "B8" not in advise("mlp", 1, batchnorm_in_use=False).rules
    rec = _model("n01_gn_at_batch_one.py").recommendation
    assert rec.norm == "gn" and "B8" not in rec.rules


def test_a_shell_scripts_command_line_beats_the_argparse_default() -> None:
    """``train.sh`` runs ``python train.py --batch-size 2`` (a continued line); the
    default is 32: the batch is 2, said to come from train.sh."""
    model = _model("s01_train_sh")
    assert model.batch_size.per_device == 2
    assert "train.sh:3 passes --batch-size 2" in model.batch_size.source


def test_a_sweep_over_batch_sizes_is_unknown() -> None:
    """``for bs in 2 64; do python train.py --batch-size $bs``: no one batch."""
    assert _model("s02_loop_sh").batch_size.per_device is None


def test_a_launcher_script_in_scripts_runs_tools_train() -> None:
    """``scripts/dist_train.sh``: ``BS=2`` then ``torchrun ... tools/train.py --bs=${BS}``:
    the variable is substituted, the script found by its path."""
    assert _model("s03_tools_sh").batch_size.per_device == 2


def test_an_evaluation_script_does_not_set_the_training_batch() -> None:
    """``eval.sh`` runs ``train.py --batch-size 1 --eval``: not training, default 32."""
    assert _model("s04_eval_sh").batch_size.per_device == 32


def test_a_root_script_runs_each_examples_main_from_its_own_folder() -> None:
    """``run_examples.sh`` does ``(cd mnist && python main.py --batch-size 2)`` then
    ``cd dcgan; python3 -u main.py --batch-size 4``: each ``main.py`` gets its own line
    (a subshell's ``cd`` ends with it; ``cd "$(dirname "$0")"`` is the file's folder)."""
    project.clear()
    root = FIXTURES / "s05_examples"
    for folder, batch in (("mnist", 2), ("dcgan", 4)):
        (result,) = analyze_paths([str(root / folder / "model.py")])
        (model,) = result.models
        assert model.batch_size.per_device == batch, folder


@pytest.mark.parametrize("name", ["e05_maml_tasks.py", "e06_episode_counter.py"])
def test_a_task_batch_indexed_per_task_is_not_the_models_batch(name: str) -> None:
    """MAML / prototypical loops: ``batch_size`` counts tasks, and the model sees
    ``x_spt[i]`` for ``i`` in ``range(...)``: the batch is unknown, not 32 or 16."""
    path = FIXTURES / name
    result = analyze_source(path.read_text(), str(path), AnalysisOptions())
    assert all(m.batch_size.per_device is None for m in result.models)


def test_fabric_devices_count_like_trainer_devices() -> None:
    """``L.Fabric(devices=4, strategy="ddp")`` with plain BN at 4 per device: NRM008
    (4 x 4 = 16 global, not synced), as ``Trainer(devices=4)`` gives."""
    path = FIXTURES / "b01_fabric_devices.py"
    result = analyze_source(path.read_text(), str(path), AnalysisOptions())
    (model,) = result.models
    assert model.batch_size.devices == 4
    assert {f.code for f in result.findings} == {"NRM008"}


def test_a_converted_syncbn_on_an_unstated_device_count_is_kept() -> None:
    """``nn.SyncBatchNorm.convert_sync_batchnorm(DetHead())`` under torchrun: ``check`` is
    silent (synced), and ``recommend`` agrees: BN kept (low confidence, B3), not
    rewritten to GroupNorm for "1 device"."""
    path = FIXTURES / "d01_convert_syncbn_torchrun.py"
    result = analyze_source(path.read_text(), str(path), AnalysisOptions())
    assert not result.findings
    (model,) = result.models
    rec = model.recommendation
    assert rec.norm == "bn" and rec.confidence == "low" and "B3" in rec.rules
    assert all(s.suggested == s.current for s in rec.layers)


RV = FIXTURES / "rv"  # an independent review of the launch-script and episode rules


def _batch_of(name: str) -> int | None:
    project.clear()
    path = RV / name
    target = path / ("model.py" if (path / "model.py").exists() else "train.py")
    if path.is_file():
        target = path
    (result,) = analyze_paths([str(target)])
    assert result.error is None, result.error
    (model,) = [m for m in result.models if m.name == "Net"]
    return model.batch_size.per_device


@pytest.mark.parametrize(
    ("name", "batch"),
    [
        ("s1_train_then_eval_same_sh", 64),  # the --eval line at 1 is not a training run
        ("s20_heredoc_eval_job", 64),  # a heredoc's body is a file written, not run
        ("s2b_validate_sh", 64),  # validate.sh is not read
        ("s2_debug_sh", 64),  # nor debug.sh
        ("s5_if_debug_branch", None),  # BS=1 in a branch, BS=64 otherwise: not one value
        ("s6_echo_usage", 64),  # echo python train.py --batch-size 1 runs nothing
        ("s7_order_dependent", None),  # two lines that disagree: unknown, in any order
        ("s7b_order_dependent_swapped", None),
        ("s11b_superscript_single_file", None),  # --batch-size ²: no number, no crash
        ("s16_assign_comment", 2),  # BS=2  # comment
        ("s9_default_idiom", 2),  # BATCH_SIZE=${BATCH_SIZE:-2}
        ("s13_export_multi", 2),  # export BS=2 LR=0.1
        ("s8_prefix_abbrev", 2),  # --batch abbreviates --batch-size
        ("s14_short_combined", 2),  # -b2
        ("s17_bash_c", 2),  # bash -c "python train.py --batch-size 2"
        ("s21_hash_in_word", 2),  # --name run#3 is one word, not a comment
    ],
)
def test_launch_scripts_are_read_as_a_shell_runs_them(name: str, batch: int | None) -> None:
    assert _batch_of(name) == batch


@pytest.mark.parametrize(
    ("name", "batch"),
    [
        ("e1_labels_squeeze.py", 64),  # labels.squeeze() goes to the loss
        ("e11_seg_mask_squeeze.py", 16),
        ("e2_save_first_image.py", 64),  # save_image(images[0]): logging
        ("e3_print_first_label.py", 8),
        ("e6_squeeze_in_logging_helper.py", 4),
        ("e5_small_batch_target_squeeze.py", 2),
        ("e4_batch1_target_squeeze.py", 1),  # at batch 1, the target's squeeze(0)
        ("e10_output_squeeze_control.py", 1),  # the model output's squeeze
        ("e7_episode_torch_squeeze.py", None),  # torch.squeeze(x, 0) of the model input
    ],
)
def test_only_what_reaches_the_model_unwraps_the_batch(name: str, batch: int | None) -> None:
    assert _batch_of(name) == batch


def test_a_staticmethod_called_through_self_takes_no_self() -> None:
    """``self.make(3, 64)`` of a ``@staticmethod make(cin, cout)``: the BN has 64 channels
    (it was read as ``cout=3``, and told GroupNorm(1, 3)); a list it builds of 20 items
    is no cap notice."""
    path = FIXTURES / "i_staticmethod_via_self_shifts_args.py"
    result = analyze_source(path.read_text(), str(path), AnalysisOptions(batch_size=4))
    fixes = sorted(f.message.rsplit("Use ", 1)[-1] for f in result.findings)
    assert fixes == ["nn.GroupNorm(32, 128).", "nn.GroupNorm(32, 64)."]
    path = FIXTURES / "i2_staticmethod_false_cap.py"
    result = analyze_source(path.read_text(), str(path), AnalysisOptions())
    assert not result.notices and not result.findings


def test_a_loop_over_an_order_of_layer_names_is_not_a_recurrence() -> None:
    """mmagic's ``for order in self.order: if order == "norm": x = self.norm(x)``: one
    pass through three layers, not time steps: no NRM007, no rnn label."""
    path = FIXTURES / "c01_order_loop.py"
    result = analyze_source(path.read_text(), str(path), AnalysisOptions(batch_size=32))
    assert not [f for f in result.findings if f.code == "NRM007"]
    (model,) = result.models
    assert model.architecture != "rnn"
    assert model.recommendation is None or "B6" not in model.recommendation.rules


def _findings(name: str, **options: object):
    path = FIXTURES / name
    return analyze_source(path.read_text(), str(path), AnalysisOptions(**options)).findings


def test_a_loop_built_linear_whose_last_has_no_norm_keeps_a_conditional_bias() -> None:
    """pyod's decoder: one ``nn.Linear`` line in a loop, the BN only ``if batch_norm and
    idx < len(sizes) - 2``: the output Linear needs its bias, so NRM001 asks for the bias
    to follow that condition, and ``--fix`` does not write bias=False."""
    (finding,) = _findings("h01_loop_output_bias.py")
    assert "bias=not (batch_norm and idx < len(sizes) - 2)" in finding.message
    assert "pass bias=False" not in finding.message


def test_a_linears_bias_is_cancelled_only_by_a_norm_over_its_features() -> None:
    """InstanceNorm1d after a Linear (coqui's prosody predictor) and BatchNorm2d(1) on a
    Linear's (N, 1, T, F) output (voicefixer) normalize along the features, where the
    bias varies: no NRM001."""
    assert not [f for f in _findings("a01_in1d_after_linear.py") if f.code == "NRM001"]
    assert not [f for f in _findings("m01_bn2d_one_channel.py") if f.code == "NRM001"]


def test_a_one_channel_batchnorm2d_is_replaced_by_a_valid_layer() -> None:
    """``BatchNorm2d(1)`` after a GRU on (N, 1, T, F): ``nn.LayerNorm(1)`` would raise
    (last dim F), a LayerNorm over one channel outputs zeros: GroupNorm(1, 1) it is."""
    fixes = {
        f.message.rsplit("Use ", 1)[-1] for f in _findings("m01_bn2d_one_channel.py", batch_size=4)
    }
    assert fixes == {"nn.GroupNorm(1, 1)."}


def test_the_moduledict_entry_forward_never_picks_is_not_judged() -> None:
    """``self.norms[self.norm]`` over ``{"bn": BatchNorm2d, "gn": GroupNorm}``: built with
    norm="gn", the BatchNorm never sees a batch (no NRM006, not listed); built with
    "bn", the BatchNorm is the one NRM006 is about; with a method that switches
    ``self.norm`` at run time, either may run, so both stay."""
    assert not _findings("w01_moduledict_gn.py")
    rec = _model("w01_moduledict_gn.py").recommendation
    assert [s.current for s in rec.layers] == ["nn.GroupNorm(32, c)"]
    assert [f.code for f in _findings("w01b_moduledict_bn.py")] == ["NRM006"]
    assert [f.code for f in _findings("w01c_moduledict_switched.py")] == ["NRM006"]


@pytest.mark.parametrize(
    "name", ["g01_vocoder_speaker_encoder.py", "g02_stylized_vocoder_speaker_encoder.py"]
)
def test_a_recognition_net_inside_a_generator_keeps_its_batchnorm(name: str) -> None:
    """XTTS's HiFi-GAN decoder holds a ResNet speaker encoder (pooled -> Linear): its
    BatchNorms are a recognition net's, not InstanceNorms to be under the generator's D1,
    and the InstanceNorm that standardizes its own input spectrogram is no NRM013."""
    assert not _findings(name)
    model = _model(name, "Vocoder")
    rec = model.recommendation
    assert all(s.suggested == s.current for s in rec.layers if "speaker_encoder" in s.site)


def test_a_frame_count_is_not_a_diffusion_timestep() -> None:
    """UniFormerV2's ``forward(self, x, T: int = 8)``: ``T`` counts frames (an int
    default, an ``int`` annotation), so the block is no diffusion U-Net (D4) and its
    BatchNorm3d is not told GroupNorm at an unknown batch."""
    path = FIXTURES / "d02_frames_T.py"
    result = analyze_source(path.read_text(), str(path), AnalysisOptions())
    for model in result.models:
        assert model.domain is None, model.name
        assert model.recommendation is None or model.recommendation.norm != "gn"


@pytest.mark.parametrize(
    ("name", "model_name"),
    [("k01_restormer_opaque.py", "Restormer"), ("l01_nafnet_function_norm.py", "NAFBaseline")],
)
def test_norms_the_analysis_cannot_see_get_no_keep_none(name: str, model_name: str) -> None:
    """Restormer's blocks over mmengine's BaseModule (not built) and NAFNet's LayerNorm2d
    (computed in an autograd.Function): "no norm layer is a good choice" (D8) would be
    said of models that use LayerNorm on purpose. No domain, no advice, and the reason
    names what could not be read."""
    model = _model(name, model_name)
    assert model.domain is None and model.recommendation is None
    assert "may hold norms the analysis cannot read" in model.abstain


def test_an_independent_review_of_the_round_7_fixes() -> None:
    """Where those fixes reached too far:
    - a pre-activation InstanceNorm, first in its block, is no input standardization (it
      is one only first in a held recognition net): at batch 64 it becomes BatchNorm;
    - a ModuleDict entry read by a constant key in another method (``discriminate()``)
      runs, and a base class's setter can switch the choice: both keep every entry;
    - ``if tok == "<eos>": break`` in a loop over tokens is still a recurrence (NRM007);
    - a norm test that reads a name bound after the Linear is described, never written
      into the Linear's call (no NameError, no bias=False)."""
    path = FIXTURES / "rb01_preact_in.py"
    result = analyze_source(path.read_text(), str(path), AnalysisOptions(batch_size=64))
    (site,) = result.models[-1].recommendation.layers
    assert site.suggested == "nn.BatchNorm2d(64)"
    assert "NRM006" in {f.code for f in _findings("rb07_moduledict_method.py", batch_size=4)}
    assert "NRM006" in {f.code for f in _findings("rb08_moduledict_base_setter.py", batch_size=4)}
    assert "NRM007" in {f.code for f in _findings("rb09_tokens_eos.py")}
    (finding,) = _findings("rb06_bias_later_name.py")
    assert "bias=not" not in finding.message and "bias=False" not in finding.message


def test_an_rmsnorm_written_with_a_power_of_minus_a_half_is_a_norm() -> None:
    """Gemma 3n's RMSNorm rescales with ``torch.pow(mean_squared, -0.5)``: read as an
    RMSNorm (kept in the attention block), not a module that may hide norms."""
    model = _model("n02_pow_rmsnorm.py", "Block")
    assert [s.kind for s in model.norms_found] == ["rms"]


def _models_of(folder: str) -> dict[str, object]:
    project.clear()
    paths = sorted(str(p) for p in (FIXTURES / folder).glob("*.py"))
    return {m.name: m for r in analyze_paths(paths) for m in r.models}


@pytest.mark.parametrize("folder", ["gp01_lightning_pkg", "gp02_script_pkg"])
def test_a_critic_penalized_in_another_file_is_a_wgan_gp_critic(folder: str) -> None:
    """The critic is in nets.py; its gradient penalty in train_gp.py or in a
    LightningModule's training_step in lit.py: D2 (no BatchNorm in the critic), and the
    generator keeps its BN (D9)."""
    models = _models_of(folder)
    assert models["Critic"].domain.startswith("D2")
    assert models["Critic"].recommendation.norm == "ln"
    assert models["Generator"].domain.startswith("D9")


def test_a_lightning_module_holding_both_networks_advises_each_on_its_own() -> None:
    """lit.py's WGANGP holds nets.py's Generator and Critic: not one CNN to keep BN in."""
    model = _models_of("gp01_lightning_pkg")["WGANGP"]
    assert model.recommendation is None
    assert "Generator (D9), Critic (D2)" in model.abstain


def test_a_moduledict_filled_in_a_loop_over_an_unknown_dict_keeps_its_layers() -> None:
    """``self.stages[name] = nn.Sequential(Conv2d, BatchNorm2d, ReLU)`` for ``name`` of
    an unknown ``stages.items()``: one entry stands for them (it was dropped, and the CNN
    called "an activation, loss, metric or container"): NRM001 on its biased conv."""
    assert [f.code for f in _findings("w06_moduledict_loop.py")] == ["NRM001"]
    assert _model("w06_moduledict_loop.py", "StageNet").architecture == "cnn2d"


def test_gradient_penalties_are_tied_to_the_class_they_train() -> None:
    """The penalty in a helper of losses.py that train.py imports and calls with the
    critic; the penalty under an alias (``from torch.autograd import grad as
    torch_grad``); and a DCGAN whose class ``D`` shares its name with a variable of an
    unrelated WGAN-GP script in another folder (no penalty trains it: D9, BN kept)."""
    assert _models_of("gp03_helper_pkg")["Critic"].domain.startswith("D2")
    critic = _models_of("gp04_alias_pkg")["Critic"]
    assert critic.domain.startswith("D2") and critic.recommendation.norm == "ln"
    project.clear()
    (result,) = analyze_paths([str(FIXTURES / "gp05_same_name" / "dcgan.py")])
    discriminator = next(m for m in result.models if m.name == "D")
    assert discriminator.domain.startswith("D9")
    assert all(s.suggested == s.current for s in discriminator.recommendation.layers)


def test_a_channel_fix_replaces_the_argument_not_a_letter_of_the_name() -> None:
    """NRM011's fix for ``nn.BatchNorm2d(c)`` after ``Conv2d(c, 2 * c)``, built in a loop:
    ``nn.BatchNorm2d(2 * c)``, not ``nn.Bat2 * chNorm2d(c)``."""
    (finding,) = _findings("l02_mismatch_message.py")
    assert "use nn.BatchNorm2d(2 * c)" in finding.message and "Bat2" not in finding.message


def test_round_8_batches() -> None:
    """A notebook's ``parse_args("--batch-size 2".split())`` sets the batch (the list form
    did); SimCLR's ``model(torch.cat([aug(x), aug(x)]))`` sees twice the loader's batch:
    16, not 8; ``launch.sh`` passing ``--per_device_train_batch_size 2`` beats the
    default 16 (a batch flag by its name, not only ``--batch-size``)."""
    project.clear()
    (nb,) = analyze_paths([str(FIXTURES / "r8_notebook_split.ipynb")])
    assert {m.batch_size.per_device for m in nb.models} == {2}
    assert _model("r8_simclr_views.py", "SimCLRNet").batch_size.per_device == 16
    project.clear()
    results = analyze_paths([str(FIXTURES / "r8_accel_pkg" / "model.py")])
    assert {m.batch_size.per_device for r in results for m in r.models} == {2}


def test_round_8_domains() -> None:
    """A dense-adjacency GCN (``forward(x, adj)``) normalizes over node rows: no NRM006
    at the graph batch; an ``nn.SyncBatchNorm`` chosen by a string on an unstated device
    count is kept (low, B3), as ``check`` is silent, not rewritten to GroupNorm."""
    assert not _findings("r8_dense_gcn.py")
    path = FIXTURES / "r8_syncbn_string.py"
    result = analyze_source(path.read_text(), str(path), AnalysisOptions())
    assert not result.findings
    (rec,) = [m.recommendation for m in result.models if m.recommendation]
    assert rec.norm == "syncbn" and rec.confidence == "low" and "B3" in rec.rules


def test_an_answer_on_a_stated_default_is_at_most_medium() -> None:
    """``--batch-size`` with ``default=64`` in the training script: BN at 64 is the likely
    answer, but a run may pass another batch, so not "high"."""
    model = _model("c02_argparse_default_one_file.py")
    assert model.batch_size.per_device == 64 and model.batch_size.weak
    assert model.recommendation.norm == "bn" and model.recommendation.confidence == "medium"


def test_the_model_as_the_training_script_builds_it() -> None:
    """train.py builds ``DepthNet(norm="gn")`` from model.py and trains it at batch 2:
    the GroupNorm branch of ``get_norm`` is judged (kept), not the signature default's
    BatchNorm (two false NRM006 warnings)."""
    project.clear()
    folder = FIXTURES / "x01_built_in_train_pkg"
    results = analyze_paths([str(p) for p in sorted(folder.glob("*.py"))])
    assert not [f for r in results for f in r.findings]
    (model,) = [m for r in results for m in r.models if m.name == "DepthNet"]
    assert model.batch_size.per_device == 2
    assert {s.kind for s in model.norms_found} == {"gn"}


RV8 = FIXTURES / "rv8"  # an independent review of the round-8 fixes


def _rv8(folder: str) -> dict[str, object]:
    project.clear()
    paths = sorted(str(p) for p in (RV8 / folder).glob("*.py"))
    results = analyze_paths(paths)
    return {
        "models": {m.name: m for r in results for m in r.models},
        "findings": [f for r in results for f in r.findings],
    }


def test_a_review_of_the_round_8_fixes() -> None:
    """Where they reached too far or not far enough:
    - NRM011's fix sets GroupNorm's channels (its second argument or ``num_channels=``);
    - a second-order gradient with no penalty in sight (MAML) makes no WGAN-GP critic;
      a penalty found through a parenthesized multi-line import, or with nested brackets
      in ``grad(...)``, does;
    - ``parse_args([])`` ignores the command line, launch scripts included;
    - ``nn.SyncBatchNorm`` in a one-process script is a plain BatchNorm (not kept as
      synced);
    - ``x - mean`` times a constant ``d ** -0.5`` is no LayerNorm."""
    fixes = " ".join(f.message for f in _rv8("r01_gn_fix")["findings"] if f.code == "NRM011")
    assert "nn.GroupNorm(8, 128)" in fixes and "num_groups=8, num_channels=128" in fixes
    assert all(
        not (m.domain or "").startswith("D2") for m in _rv8("r02_maml_crossfile")["models"].values()
    )
    for folder in ("r03_multiline_import", "r04_nested_paren_grad"):
        assert _rv8(folder)["models"]["Critic"].domain.startswith("D2"), folder
    assert not [f for f in _rv8("r05_parse_args_empty")["findings"] if f.code == "NRM006"]
    for model in _rv8("r06_syncbn_single")["models"].values():
        assert model.recommendation is None or "Kept syncbn" not in " ".join(
            model.recommendation.rationale
        )
    for model in _rv8("r07_pow_nonnorm")["models"].values():
        assert all(s.kind != "ln" for s in model.norms_found)


def test_distributed_code_is_read_from_its_launch_not_its_comments() -> None:
    """Several processes: ``init_process_group``, DDP, ``devices=2`` or ``devices=16``;
    not ``devices=1``, nor a comment that names DDP."""
    from normsuite.analysis.context import _runs_distributed

    assert _runs_distributed("trainer = Trainer(devices=16)")
    assert _runs_distributed("dist.init_process_group('nccl')")
    assert not _runs_distributed("trainer = Trainer(devices=1)")
    assert not _runs_distributed("# no DistributedDataParallel here\nmodel = Net()")
