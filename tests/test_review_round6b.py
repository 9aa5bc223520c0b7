"""An independent review of the sixth round's fixes found where they reached too far:
each test is one such place, on a reproduction in ``fixtures/review6b/``."""

from __future__ import annotations

from pathlib import Path

from normsuite.analysis import project
from normsuite.analysis.analyze import analyze_source
from normsuite.analysis.runner import analyze_paths
from normsuite.analysis.types import AnalysisOptions

FIXTURES = Path(__file__).parent / "fixtures" / "review6b"


def _net(name: str, **options: object):
    path = FIXTURES / name
    result = analyze_source(path.read_text(), str(path), AnalysisOptions(**options))
    (model,) = [m for m in result.models if m.name == "Net"]
    return model


def test_a_batch_halved_after_an_out_of_memory_error_is_not_fixed() -> None:
    """``bs //= 2`` in the except branch of the loop that builds the loader: unknown."""
    assert _net("r01_oom_halving.py").batch_size.per_device is None


def test_a_batch_shrunk_per_stage_is_not_fixed() -> None:
    """``bs //= 4`` at the end of the loop over stages: 128, 32, 8 -> unknown."""
    assert _net("r02_stage_loop.py").batch_size.per_device is None


def test_a_config_changed_by_a_method_or_a_helper_is_not_read() -> None:
    """``cfg.update(yaml...)`` and ``apply_overrides(cfg, path)`` (``setattr``) between the
    config and the loader: the default is not the batch."""
    assert _net("r04_easydict_update.py").batch_size.per_device is None
    assert _net("r04b_dataclass_mutated_by_helper.py").batch_size.per_device is None


def test_a_sanity_check_call_is_not_the_training_run() -> None:
    """``sanity_check()`` calls ``train(..., batch_size=2)``; the run is 128."""
    assert _net("r05_sanity_call.py").batch_size.per_device == 128


def test_a_model_handed_to_training_helpers_is_not_a_frozen_teacher() -> None:
    """``main()`` calls ``model.eval()`` before validation; ``train_one_epoch(model, ...)``
    trains it: the batch of 8 holds."""
    assert _net("r08_frozen_scope.py").batch_size.per_device == 8


def test_an_evaluation_functions_loader_name_is_its_own() -> None:
    """``evaluate()`` loops over its ``loader`` under no_grad; ``train()``'s ``loader`` is
    another one, read with ``next(iter(loader))``: its batch of 4 holds."""
    assert _net("r14_loader_name_reused.py").batch_size.per_device == 4


def test_only_the_parser_the_script_calls_brings_flags() -> None:
    """options.py has ``get_train_args`` (``--batch_size`` 64) and ``get_test_args`` (1):
    train.py calls the first, so 64, not the test parser's 1."""
    project.clear()
    results = analyze_paths([str(FIXTURES / "r06_options_two_parsers" / "train.py")])
    (model,) = [m for r in results for m in r.models if m.name == "Net"]
    assert model.batch_size.per_device == 64


def test_an_acgan_score_head_beside_a_class_head_is_a_critic() -> None:
    """The discriminator's head block holds ``Linear(f, 1)`` (real/fake) and
    ``Linear(f, n_classes)``: still a GAN file (D9), its BN kept at batch 8."""
    path = FIXTURES / "r12_acgan_head_block.py"
    result = analyze_source(path.read_text(), str(path), AnalysisOptions(batch_size=8))
    for model in result.models:
        assert model.domain is not None and model.domain.startswith("D9"), model.name
