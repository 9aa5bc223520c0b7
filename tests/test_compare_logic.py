"""normsuite.compare without training: grid, LR rule, store + resume, noise and agreement."""

from __future__ import annotations

import io
import json
import math
import statistics

import pytest
from rich.console import Console

from normsuite.compare.grid import (
    GridError,
    expand_grid,
    parse_batch_sizes,
    parse_lrs,
    parse_norms,
    scale_lr,
)
from normsuite.compare.plot import plot_accuracy
from normsuite.compare.render import render_json, render_text
from normsuite.compare.results import AdviceView, noise_test, summarize, welch_p_value
from normsuite.compare.store import ResultStore, StoreError

# --- grid and learning-rate rule ------------------------------------------------------------


def test_scale_lr_rules_by_hand() -> None:
    assert scale_lr(0.1, 32, 8, "linear") == pytest.approx(0.025)
    assert scale_lr(0.1, 32, 64, "linear") == pytest.approx(0.2)
    assert scale_lr(0.1, 32, 8, "sqrt") == pytest.approx(0.05)  # sqrt(1/4) = 1/2
    assert scale_lr(0.1, 32, 2, "none") == 0.1
    with pytest.raises(GridError, match="none, linear, sqrt"):
        scale_lr(0.1, 32, 8, "cubic")


def test_expand_grid_order_lr_and_overrides() -> None:
    cells = expand_grid(["bn", "gn"], [2, 8], seeds=2, base_lr=0.04, base_batch=8, lrs={2: 0.5})
    assert [(c.norm, c.batch_size, c.seed) for c in cells] == [
        ("bn", 2, 0), ("gn", 2, 0), ("bn", 8, 0), ("gn", 8, 0),
        ("bn", 2, 1), ("gn", 2, 1), ("bn", 8, 1), ("gn", 8, 1),
    ]  # fmt: skip
    assert {c.lr for c in cells if c.batch_size == 2} == {0.5}  # explicit LR wins
    assert {c.lr for c in cells if c.batch_size == 8} == {0.04}  # base batch keeps base LR
    assert len({c.key for c in cells}) == 8
    with pytest.raises(GridError, match=r"\[4\].*not in --batch-sizes"):
        expand_grid(["bn"], [2, 8], 1, base_lr=0.1, base_batch=8, lrs={4: 0.1})
    with pytest.raises(GridError, match="--seeds must be >= 1"):
        expand_grid(["bn"], [2], 0, base_lr=0.1, base_batch=8)


@pytest.mark.parametrize(
    ("parser", "text", "match"),
    [
        (parse_batch_sizes, "2,x", "'x' in '2,x' is not one"),
        (parse_batch_sizes, "2,0", "positive integers"),
        (parse_batch_sizes, "4,4", "twice"),
        (parse_lrs, "2:0.1,8", "'8' is not one"),
        (parse_lrs, "2:-1", "BATCH:LR"),
        (parse_lrs, "a:0.1", "BATCH:LR"),
        (parse_norms, " , ", "comma-separated"),
        (parse_norms, "bn,bn", "twice"),
    ],
)
def test_option_parsers_reject_malformed_input(parser, text: str, match: str) -> None:
    with pytest.raises(GridError, match=match):
        parser(text)


def test_option_parsers_accept_good_input() -> None:
    assert parse_batch_sizes("32, 2,8") == [2, 8, 32]
    assert parse_lrs("2:0.01,8:2e-2") == {2: 0.01, 8: 0.02}
    assert parse_norms("bn, gn:16,ln") == ["bn", "gn:16", "ln"]


# --- noise rule ---------------------------------------------------------------------------


def _t4_two_sided_p(t: float) -> float:
    """Two-sided p of Student's t with 4 degrees of freedom, closed form (independent of scipy)."""
    u = t * t / 4
    cdf = 0.5 + 3 / 8 * t / math.sqrt(1 + u) * (1 - t * t / (12 * (1 + u)))
    return 2 * (1 - cdf)


def test_welch_p_value_matches_hand_computation() -> None:
    a, b = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]
    # equal variances 1 and n=3 each: t = 3 / sqrt(2/3), Welch df = 4 exactly
    t = 3 / math.sqrt(2 / 3)
    assert welch_p_value(a, b) == pytest.approx(_t4_two_sided_p(t), rel=1e-9)
    assert welch_p_value([0.5] * 3, [0.5] * 3) == 1.0  # no variance, same mean
    assert welch_p_value([0.5] * 3, [0.6] * 3) == 0.0  # no variance, different mean


def test_noise_rule_by_seed_count() -> None:
    # 2 seeds: gap 0.36 vs std sum 0.0707 + 0.0141 -> outside the noise
    assert noise_test([0.9, 0.92], [0.5, 0.6]) == ("clear", None)
    # 2 seeds: gap 0.01 vs std sum 0.0707 + 0.0283 -> inside
    assert noise_test([0.8, 0.9], [0.84, 0.88])[0] == "inside noise"
    # 3 seeds: Welch p = 0.021 (< 0.05) -> clear; the same gap with wide spread -> inside
    assert noise_test([4.0, 5.0, 6.0], [1.0, 2.0, 3.0])[0] == "clear"
    noise, p = noise_test([4.0, 8.0, 0.0], [1.0, 5.0, 0.0])
    assert noise == "inside noise" and p is not None and p > 0.05
    assert noise_test([0.9], [0.5]) == ("unknown", None)


# --- aggregation, winner and agreement ------------------------------------------------------


def _records(table: dict[tuple[str, int], list[float]]) -> list[dict]:
    return [
        {"norm": n, "batch_size": b, "seed": s, "lr": 0.1, "val_acc": a, "val_loss": 1 - a}
        for (n, b), accs in table.items()
        for s, a in enumerate(accs)
    ]


def test_summary_mean_std_winner_and_verdicts() -> None:
    records = _records(
        {
            ("bn", 2): [0.50, 0.60],
            ("gn", 2): [0.90, 0.92],
            ("bn", 32): [0.95, 0.93],
            ("gn", 32): [0.94, 0.93],
            ("bn", 8): [0.80, 0.82],
            ("gn", 8): [0.70, 0.72],
        }
    )
    advice = {2: AdviceView("gn", ("B2",)), 8: AdviceView("gn:32", ("B2",)), 32: AdviceView("bn")}
    result = summarize(records, advice)
    bn2 = result.cell("bn", 2)
    assert bn2 is not None
    assert bn2.acc.mean == pytest.approx(0.55)
    assert bn2.acc.std == pytest.approx(statistics.stdev([0.5, 0.6]))
    by_batch = {b.batch_size: b for b in result.batches}
    assert by_batch[2].winner == "gn" and by_batch[2].tied == ()
    assert by_batch[2].verdict == "agrees"
    assert by_batch[2].comparisons[0].delta == pytest.approx(0.36)
    # batch 8: bn clearly wins, advice (gn:32, same family as gn) disagrees
    assert by_batch[8].winner == "bn" and by_batch[8].verdict == "disagrees"
    # batch 32: bn 0.94 +- 0.014 vs gn 0.935 +- 0.007 -> tie; advice bn agrees
    assert by_batch[32].winner == "bn" and by_batch[32].tied == ("gn",)
    assert by_batch[32].verdict == "agrees"
    assert "inside the seed noise" in by_batch[32].note
    # advice for a tied loser also agrees: the evidence cannot separate them
    tied_other = summarize(records, {32: AdviceView("GroupNorm")})
    assert tied_other.batches[-1].verdict == "agrees"


def test_verdict_not_tested_and_no_advice_and_single_seed() -> None:
    records = _records({("bn", 4): [0.7], ("ln", 4): [0.6]})
    (batch,) = summarize(records, {4: AdviceView("gn")}).batches
    assert batch.verdict == "not tested" and "not in the grid" in batch.note
    assert "noise is unknown" in batch.note
    assert summarize(records).batches[0].verdict == "no advice"


@pytest.mark.parametrize("advised", ["gn", "bn"])
def test_one_seed_verdict_is_inconclusive_either_way(advised: str) -> None:
    # before: BN 0.61 vs GN 0.60 with one seed each gave "disagrees" (advice gn) although
    # the same note said the noise was unknown
    records = _records({("bn", 4): [0.61], ("gn", 4): [0.60]})
    (batch,) = summarize(records, {4: AdviceView(advised, ("B2",))}).batches
    assert batch.winner == "bn" and batch.comparisons[0].noise == "unknown"
    assert batch.verdict == "inconclusive"
    assert batch.note == (
        "bn leads gn by 1.0 pts with one seed, so the noise is unknown; "
        f"advice was {advised}; run 2+ seeds (--seeds 3) to decide"
    )
    doc = json.loads(render_json(summarize(records, {4: AdviceView(advised)})))
    assert doc["batch_sizes"][0]["verdict"] == "inconclusive"
    console = Console(file=io.StringIO(), width=200, color_system=None)
    render_text(summarize(records, {4: AdviceView(advised)}), console)
    assert "inconclusive" in console.file.getvalue()
    # with measured noise the same means decide: 2 seeds each, gap 0.01 > std sum 0.0014
    two = _records({("bn", 4): [0.61, 0.61], ("gn", 4): [0.60, 0.601]})
    (batch,) = summarize(two, {4: AdviceView(advised)}).batches
    assert batch.verdict == ("agrees" if advised == "bn" else "disagrees")


def test_json_and_plot(tmp_path) -> None:
    result = summarize(_records({("bn", 2): [0.5, 0.6], ("gn", 2): [0.9, 0.92],
                                 ("bn", 16): [0.9, 0.91], ("gn", 16): [0.9, 0.9]}))  # fmt: skip
    doc = json.loads(render_json(result))
    assert {c["norm"] for c in doc["cells"]} == {"bn", "gn"}
    assert doc["batch_sizes"][0]["winner"] == "gn"
    assert len(doc["runs"]) == 8 and "Welch" in doc["noise_rule"]
    png = plot_accuracy(result, tmp_path / "sub" / "acc.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- result store and resume ------------------------------------------------------------------


def test_store_append_resume_torn_line_and_fingerprint(tmp_path) -> None:
    settings = {"recipe": {"a": 1}, "norms": ["bn", "gn"]}
    store = ResultStore.open(tmp_path, settings, resume=False)
    store.append({"key": "bn|2|0", "val_acc": 0.5})
    store.append({"key": "gn|2|0", "val_acc": 0.9})
    # simulate a crash in the middle of writing the third line
    with store.results_path.open("a") as handle:
        handle.write('{"key": "bn|8|0", "val_ac')

    with pytest.raises(StoreError, match="pass --resume"):
        ResultStore.open(tmp_path, settings, resume=False)
    with pytest.raises(StoreError, match=r"different settings \(changed: norms\)"):
        ResultStore.open(tmp_path, {**settings, "norms": ["bn", "ln"]}, resume=True)

    resumed = ResultStore.open(tmp_path, {"norms": ["bn", "gn"], "recipe": {"a": 1}}, resume=True)
    assert set(resumed.finished()) == {"bn|2|0", "gn|2|0"}  # torn line dropped
    resumed.append({"key": "bn|8|0", "val_acc": 0.7})
    assert set(resumed.finished()) == {"bn|2|0", "gn|2|0", "bn|8|0"}
    lines = resumed.results_path.read_text().splitlines()
    assert all(json.loads(line)["fingerprint"] == resumed.fingerprint for line in lines)


def test_store_rejects_foreign_folder(tmp_path) -> None:
    (tmp_path / "results.jsonl").write_text('{"key": "x"}\n')
    with pytest.raises(StoreError, match=r"no manifest\.json"):
        ResultStore.open(tmp_path, {}, resume=True)
    (tmp_path / "manifest.json").write_text("not json")
    with pytest.raises(StoreError, match="not a normsuite compare manifest"):
        ResultStore.open(tmp_path, {}, resume=True)


def test_compare_package_and_cli_module_do_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, normsuite.compare, normsuite.compare.render, normsuite.cli.compare; "
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- refused cells (BN at batch 1) --------------------------------------------------------------


def _refused(norm: str, batch: int, seeds: int = 2) -> list[dict]:
    label = f"BN at batch {batch}, see NRM005"
    return [
        {"norm": norm, "batch_size": batch, "seed": s, "lr": 0.1, "val_acc": None,
         "val_loss": None, "refused": label, "reason": "BatchNorm layer ..."}
        for s in range(seeds)
    ]  # fmt: skip


def test_refused_cells_are_rows_not_winners() -> None:
    records = _refused("bn", 1) + _records({("gn", 1): [0.6, 0.62], ("bn", 4): [0.7, 0.71]})
    result = summarize(records, {1: AdviceView("gn", ("B8",)), 4: AdviceView("bn")})
    bn1 = result.cell("bn", 1)
    assert bn1 is not None and not bn1.trained and bn1.refused_seeds == 2
    at_one, at_four = result.batches
    assert at_one.winner == "gn" and at_one.refused == ("bn",) and at_one.comparisons == ()
    assert at_one.verdict == "agrees" and "bn refused: BN at batch 1, see NRM005" in at_one.note
    assert at_four.winner == "bn" and at_four.refused == ()
    # advice for the refused norm disagrees: it could not even train
    (at_one,) = summarize(records[:4], {1: AdviceView("bn")}).batches
    assert at_one.verdict == "disagrees" and "advice was bn" in at_one.note

    console = Console(file=io.StringIO(), width=200, color_system=None)
    render_text(result, console)
    rows = [line for line in console.file.getvalue().splitlines() if "refused:" in line]
    assert len(rows) == 2  # the cell row and the verdict row
    assert "│     1 │ bn   │" in rows[0] and "refused: BN at batch 1, see NRM005" in rows[0]
    doc = json.loads(render_json(result))
    assert {(c["norm"], c["batch_size"]): c["seeds"] for c in doc["cells"]}[("bn", 1)] == 0


def test_every_norm_refused_at_a_batch_size(tmp_path) -> None:
    records = _refused("bn", 1) + _records({("bn", 8): [0.7, 0.71]})
    at_one = summarize(records, {1: AdviceView("gn")}).batches[0]
    assert at_one.winner is None and at_one.verdict == "not tested"
    assert at_one.note == "bn refused: BN at batch 1, see NRM005; advice gn was not in the grid"
    assert summarize(records).batches[0].verdict == "no advice"
    console = Console(file=io.StringIO(), width=200, color_system=None)
    render_text(summarize(records, {1: AdviceView("gn")}), console)  # no crash on winner None
    png = plot_accuracy(summarize(records), tmp_path / "acc.png")  # refused cells: not plotted
    assert png.read_bytes()[:4] == b"\x89PNG"


# --- defaults: seeds and LR scaling by optimizer --------------------------------------------------


def _recipe(model_args: dict, **extra) -> dict:
    return {
        "model": {"class_path": "normsuite.NormClassifier", "init_args": dict(model_args)},
        "data": {"class_path": "normsuite.data.FakeDataModule", "init_args": {"batch_size": 8}},
        **extra,
    }


def test_default_seeds_and_lr_scaling_follow_the_optimizer() -> None:
    from normsuite.compare.grid import default_lr_scaling
    from normsuite.compare.recipe import resolve_settings

    adamw = resolve_settings(_recipe({"lr": 0.01}), norms="bn")  # NormClassifier's default
    assert adamw.seeds == 3
    assert adamw.lr_scaling == "sqrt" and "Malladi" in adamw.lr_scaling_why
    sgd = resolve_settings(_recipe({"lr": 0.1, "optimizer": "sgd"}), norms="bn")
    assert sgd.lr_scaling == "linear" and "Goyal" in sgd.lr_scaling_why
    cli_sgd = _recipe(
        {}, optimizer={"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1}}
    )  # a LightningCLI optimizer: section
    assert resolve_settings(cli_sgd, norms="bn").lr_scaling == "linear"
    # the recipe's compare block wins over the default, the option over both
    block = _recipe({"lr": 0.1, "optimizer": "sgd"}, compare={"lr_scaling": "none", "seeds": 5})
    from_block = resolve_settings(block, norms="bn")
    assert (from_block.lr_scaling, from_block.seeds) == ("none", 5)
    opt = resolve_settings(_recipe({"lr": 0.1, "optimizer": "sgd"}), norms="bn", lr_scaling="sqrt")
    assert opt.lr_scaling == "sqrt" and opt.lr_scaling_why == "set by --lr-scaling"
    assert default_lr_scaling("torch.optim.RMSprop")[0] == "sqrt"
    assert default_lr_scaling("Lion")[0] == "none" and default_lr_scaling(None)[0] == "none"
    # where the rule came from is shown, but does not change the fingerprint (resume works)
    assert "lr_scaling_why" not in opt.fingerprint_fields()


def test_lr_scaling_rejects_unknown_rule() -> None:
    from normsuite.compare import CompareError
    from normsuite.compare.recipe import resolve_settings

    with pytest.raises(CompareError, match="--lr-scaling must be one of none, linear, sqrt"):
        resolve_settings(_recipe({"lr": 0.1}), norms="bn", lr_scaling="cubic")
    old = _recipe({"lr": 0.1}, compare={"lr_rule": "linear"})  # the option's former name
    with pytest.raises(CompareError, match="lr_rule is now lr_scaling"):
        resolve_settings(old, norms="bn")
