"""Analyzer cases from real code (issue 13), one test per case, on copies in
``tests/fixtures/cases``: each file reproduces a class of mistake ``normsuite check`` made on
public repositories."""

from __future__ import annotations

from pathlib import Path

from normsuite.analysis.analyze import analyze_source
from normsuite.analysis.types import AnalysisOptions, FileResult

CASES = Path(__file__).parent / "fixtures" / "cases"


def run(name: str) -> FileResult:
    path = CASES / name
    return analyze_source(path.read_text(), str(path), AnalysisOptions())


def codes(result: FileResult) -> list[tuple[str, int]]:
    return [(f.code, f.line) for f in result.findings]


def test_a14_momentum_message_states_pytorch_convention() -> None:
    (f,) = run("a14_momentum_msg.py").findings
    assert f.code == "NRM009"
    # PyTorch: running = (1 - m) * running + m * batch, so m = 0.99 takes 99% of each batch.
    assert "99% of each new batch" in f.message
    assert "running = (1 - momentum) * running + momentum * batch" in f.message
    assert "momentum=0.01" in f.message
    assert "keeps only" not in f.message


def test_a13_positional_eps_is_flagged_with_what_was_meant() -> None:
    result = run("a13_eps_positional.py")
    assert codes(result) == [("NRM014", 9), ("NRM014", 12)]
    gan, twice = result.findings
    # BatchNorm2d(c, 0.8) is eps=0.8; Keras momentum 0.8 is PyTorch momentum 0.2.
    assert "eps=0.8" in gan.message and "momentum=0.2" in gan.message
    assert "eps=32" in twice.message  # c // 2 with c = 64, passed again as eps


def test_a15_weight_decay_after_to_device_on_an_imported_model() -> None:
    (f,) = run("a15_wd_to_device.py").findings
    assert (f.code, f.line) == ("NRM010", 7)
    assert "weight_decay=0.0005" in f.message
    assert "assuming the model has affine norm layers" in f.message  # model not in the file


def test_c12_weight_decay_from_kwargs_is_unknown() -> None:
    assert codes(run("c12_wd_kwargs.py")) == []


def test_a01_loop_over_an_unknown_config_list_is_still_seen() -> None:
    result = run("a01_loop_unknown_iterable.py")
    assert codes(result) == [("NRM001", 19)]
    (model,) = result.models
    assert model.architecture == "cnn2d"
    assert [s.code for s in model.norms_found] == ["nn.BatchNorm2d(w)"]
    assert model.norms_found[0].num_channels is None  # w is unknown: no width guessed


def test_c10_both_branches_of_a_constructor_if_are_seen() -> None:
    # The default out=0 builds an Identity head; build() trains the Linear+BN head.
    assert codes(run("c10_default_branch.py")) == [("NRM001", 12)]


def test_a03_block_passed_as_argument_leaves_channels_unknown() -> None:
    result = run("a03_param_block_channels.py")
    assert codes(result) == []  # no NRM011 from assumed unchanged stage channels
    for model in result.models:
        rec = model.recommendation
        assert rec is None or all(s.suggested == s.current for s in rec.layers), rec


def test_a04_bias_false_passed_by_every_caller_through_kwargs() -> None:
    assert codes(run("a04_kwargs_bias.py")) == []


def test_a05_pre_norm_output_with_a_second_consumer_keeps_its_bias() -> None:
    assert codes(run("a05_second_consumer.py")) == []


def test_r14_bias_in_a_shared_wrapper_points_at_the_call_site() -> None:
    (f,) = run("r14_nrm001_shared_wrapper.py").findings
    assert (f.code, f.line) == ("NRM001", 17)  # PadConv(3, 32, 9), not the Conv2d inside
    assert "give PadConv a `bias` parameter" in f.message
    assert "line 19" in f.message  # the output layer that needs the bias


def test_nrm010_reads_a_sibling_model_file_when_the_model_is_imported(tmp_path: Path) -> None:
    from normsuite.analysis.runner import analyze_paths

    train = "import torch\nfrom nets import Net\nnet = Net().to('cuda')\n"
    train += "opt = torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=5e-4)\n"
    (tmp_path / "train.py").write_text(train)
    mlp = "import torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n"
    mlp += "        super().__init__()\n        self.fc = nn.Linear(4, 2)\n"
    (tmp_path / "nets.py").write_text(mlp)
    (result,) = analyze_paths([str(tmp_path / "train.py")])
    assert result.findings == []  # no norm layer to decay in nets.Net
    (tmp_path / "nets.py").write_text(mlp + "        self.bn = nn.BatchNorm1d(2)\n")
    (result,) = analyze_paths([str(tmp_path / "train.py")])
    assert [(f.code, f.line) for f in result.findings] == [("NRM010", 4)]


def test_a18_nrm005_page_example_says_what_the_rule_needs() -> None:
    # The old page example triggers NRM005 now: its DataLoader is not an inference loader
    # (no eval(), no no_grad), and BN in train mode fails at batch 1 whether this file trains
    # or not. The page also shows the training and names --batch-size 1;
    # tests/test_rule_docs.py checks that its example triggers NRM005.
    from normsuite.analysis.report import rule_doc

    assert codes(run("a18_rule_doc_example.py")) == [("NRM005", 4)]
    inference = (CASES / "a18_rule_doc_example.py").read_text() + "model.eval()\n"
    assert analyze_source(inference, "a18.py", AnalysisOptions()).findings == []
    page = rule_doc("NRM005")
    assert page is not None and "--batch-size 1" in page
    src = (CASES / "a18_rule_doc_example.py").read_text()
    trained = src + "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    result = analyze_source(trained, "a18.py", AnalysisOptions())
    assert [(f.code, f.line) for f in result.findings] == [("NRM005", 4)]
    cli = analyze_source(src, "a18.py", AnalysisOptions(batch_size=1))
    assert [(f.code, f.line) for f in cli.findings] == [("NRM005", 4)]


def test_r14_variant_wrapper_output_use_in_another_class_of_the_file() -> None:
    (f,) = run("r14b_wrapper_output_in_other_class.py").findings
    assert (f.code, f.line) == ("NRM001", 17)  # the call site in Encoder, not line 8
    assert "line 27" in f.message and "`bias` parameter" in f.message


def test_c10_head_of_the_other_branch_gets_feature_advice_not_a_crash() -> None:
    path = CASES / "c10_default_branch.py"
    result = analyze_source(path.read_text(), str(path), AnalysisOptions(batch_size=2))
    assert result.error is None
    assert codes(result) == [("NRM001", 12), ("NRM006", 13)]
    nrm006 = result.findings[1].message
    assert "(N, C) features" in nrm006 and "ResNet-50" not in nrm006  # B11, not CNN numbers
    (model,) = result.models
    (site,) = model.norms_found
    assert site.num_channels is None  # hidden=0 is the default's "off", not a width
