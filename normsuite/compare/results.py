"""Aggregation of finished cells: mean +- std per (norm, batch size), the winner per batch
size, whether the win is inside the seed noise, and whether the evidence agrees with advice.

Pure Python plus scipy (for Welch's t-test); no torch import.

The noise rule, stated once:

- both norms have >= 3 seeds: the difference is *inside the noise* when Welch's t-test
  (unequal variances) gives a two-sided p > 0.05;
- 2 seeds: when the means differ by less than the sum of their standard deviations;
- 1 seed: the noise is *unknown* (run more seeds to tell).

The verdict against the advice is "inconclusive" when the comparison that decides it (the
winner against the advised norm, or against the runners-up when the advice won) has
unknown noise: one seed cannot tell a 1-point lead from seed luck.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Noise = Literal["clear", "inside noise", "unknown"]
Verdict = Literal["agrees", "disagrees", "inconclusive", "not tested", "no advice"]

P_THRESHOLD = 0.05
METRICS = ("val_acc", "val_loss", "step_ms", "mem_mb")


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (``None`` with a single value) of one metric."""

    mean: float
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        values = [float(v) for v in values]
        std = statistics.stdev(values) if len(values) >= 2 else None
        return cls(mean=statistics.fmean(values), std=std, n=len(values))


@dataclass(frozen=True)
class CellSummary:
    """All seeds of one (norm, batch size) cell."""

    norm: str
    batch_size: int
    lr: float
    values: dict[str, list[float]]
    stats: dict[str, Stat]
    refused: str | None = None  # e.g. "BN at batch 1, see NRM005": seeds that could not train
    refused_seeds: int = 0

    @property
    def acc(self) -> Stat:
        return self.stats["val_acc"]

    @property
    def trained(self) -> bool:
        """At least one seed trained and was evaluated."""
        return "val_acc" in self.stats


@dataclass(frozen=True)
class Comparison:
    """The winner's lead over one other norm at one batch size."""

    norm: str
    delta: float  # winner's mean accuracy minus this norm's
    noise: Noise
    p_value: float | None


@dataclass(frozen=True)
class AdviceView:
    """What ``normsuite.advice.advise`` recommends for one batch size (the parts shown)."""

    norm: str
    rules: tuple[str, ...] = ()
    rationale: str = ""


@dataclass(frozen=True)
class BatchSummary:
    """Verdict at one batch size."""

    batch_size: int
    winner: str | None  # None when every norm at this batch size was refused
    tied: tuple[str, ...]  # norms whose gap to the winner is inside the noise
    comparisons: tuple[Comparison, ...]
    advice: AdviceView | None
    verdict: Verdict
    note: str
    refused: tuple[str, ...] = ()  # norms that could not train here (BN at batch 1)


@dataclass
class CompareResult:
    """Everything a comparison produced; ``to_dict()`` is the ``--format json`` document."""

    cells: list[CellSummary]
    batches: list[BatchSummary]
    records: list[dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)
    out_dir: str | None = None

    @property
    def norms(self) -> list[str]:
        return list(dict.fromkeys(c.norm for c in self.cells))

    @property
    def batch_sizes(self) -> list[int]:
        return sorted({c.batch_size for c in self.cells})

    def cell(self, norm: str, batch_size: int) -> CellSummary | None:
        for summary in self.cells:
            if summary.norm == norm and summary.batch_size == batch_size:
                return summary
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "out_dir": self.out_dir,
            "noise_rule": NOISE_RULE,
            "cells": [
                {
                    "norm": c.norm,
                    "batch_size": c.batch_size,
                    "lr": c.lr,
                    "seeds": len(c.values.get("val_acc", [])),
                    "refused": c.refused,
                    **{name: asdict(stat) for name, stat in c.stats.items()},
                }
                for c in self.cells
            ],
            "batch_sizes": [asdict(b) for b in self.batches],
            "runs": self.records,
        }


NOISE_RULE = (
    "inside noise: Welch t-test p > 0.05 when both norms have >= 3 seeds; with 2 seeds, "
    "means closer than the sum of their standard deviations; 1 seed: unknown"
)


def welch_p_value(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances) for the means of a and b.

    Zero variance in both samples gives 1.0 for equal means and 0.0 otherwise (scipy
    returns NaN there, which says nothing useful about a deterministic difference).
    """
    from scipy import stats  # lazy: scipy.stats costs ~0.5 s to import

    if statistics.pvariance(a) == 0 and statistics.pvariance(b) == 0:
        return 1.0 if statistics.fmean(a) == statistics.fmean(b) else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def noise_test(a: Sequence[float], b: Sequence[float]) -> tuple[Noise, float | None]:
    """Is the gap between the means of ``a`` and ``b`` inside the seed noise? (module doc)."""
    if statistics.fmean(a) == statistics.fmean(b):
        return "inside noise", None  # a dead heat is no win, whatever the seed count
    if len(a) >= 3 and len(b) >= 3:
        p = welch_p_value(a, b)
        return ("inside noise" if p > P_THRESHOLD else "clear"), p
    if len(a) >= 2 and len(b) >= 2:
        gap = abs(statistics.fmean(a) - statistics.fmean(b))
        spread = statistics.stdev(a) + statistics.stdev(b)
        return ("inside noise" if gap < spread else "clear"), None
    return "unknown", None


def norm_family(spec: str) -> str:
    """The family a spec belongs to, for comparing advice with a tested norm.

    ``"gn:16"`` and ``"GroupNorm"`` are both ``"gn"``. Uses NormSpec when available so that
    aliases resolve; falls back to the text before ``:``.
    """
    try:
        from normsuite.norms.spec import NormSpec

        return NormSpec.parse(spec).kind
    except (ImportError, ValueError, AttributeError):
        return spec.split(":")[0].strip().lower()


def summarize_cells(records: Iterable[Mapping[str, Any]]) -> list[CellSummary]:
    """Group run records by (norm, batch size), in the order the norms first appear."""
    groups: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["norm"], int(record["batch_size"])), []).append(record)
    norm_order = list(dict.fromkeys(norm for norm, _ in groups))
    summaries = []
    for norm, batch in sorted(groups, key=lambda k: (norm_order.index(k[0]), k[1])):
        runs = sorted(groups[(norm, batch)], key=lambda r: r.get("seed", 0))
        values = {
            m: [float(r[m]) for r in runs if r.get(m) is not None and math.isfinite(r[m])]
            for m in METRICS
        }
        stats = {m: Stat.of(v) for m, v in values.items() if v}
        refusals = [r["refused"] for r in runs if r.get("refused")]
        summaries.append(
            CellSummary(
                norm=norm,
                batch_size=batch,
                lr=float(runs[0]["lr"]),
                values=values,
                stats=stats,
                refused=refusals[0] if refusals else None,
                refused_seeds=len(refusals),
            )
        )
    return summaries


def judge_batch(
    cells: Sequence[CellSummary],
    advice: AdviceView | None,
    batch_size: int,
    refused: Sequence[CellSummary] = (),
) -> BatchSummary:
    """Winner (highest mean validation accuracy), ties inside the noise, and the verdict.

    ``cells`` are the norms that trained; ``refused`` those that could not (BN at batch 1):
    they take no part in the ranking, and advice for a refused norm disagrees.
    """
    names = tuple(c.norm for c in refused)
    why = "; ".join(f"{c.norm} refused: {c.refused}" for c in refused)
    advised = norm_family(advice.norm) if advice is not None else None
    if not cells:
        if advice is None:
            return BatchSummary(batch_size, None, (), (), None, "no advice", why, names)
        if advised in {norm_family(n) for n in names}:
            verdict: Verdict = "disagrees"
            note = f"{why}; advice was {advice.norm}"
        else:
            verdict, note = "not tested", f"{why}; advice {advice.norm} was not in the grid"
        return BatchSummary(batch_size, None, (), (), advice, verdict, note, names)
    ranked = sorted(cells, key=lambda c: -c.acc.mean)
    winner = ranked[0]
    comparisons = []
    for other in ranked[1:]:
        noise, p = noise_test(winner.values["val_acc"], other.values["val_acc"])
        comparisons.append(Comparison(other.norm, winner.acc.mean - other.acc.mean, noise, p))
    tied = tuple(c.norm for c in comparisons if c.noise == "inside noise")
    # a refused norm counts as tested: advice for it disagrees with the evidence
    tested = [c.norm for c in cells] + list(names)
    verdict, note = _verdict(winner.norm, tied, comparisons, tested, advice)
    if refused:
        note = f"{note}; {why}"
    return BatchSummary(
        batch_size, winner.norm, tied, tuple(comparisons), advice, verdict, note, names
    )


def _verdict(
    winner: str,
    tied: Sequence[str],
    comparisons: Sequence[Comparison],
    tested: Sequence[str],
    advice: AdviceView | None,
) -> tuple[Verdict, str]:
    unknown = [c for c in comparisons if c.noise == "unknown"]
    if tied:
        lead = f"{winner} leads, inside the seed noise of {', '.join(tied)}"
    elif unknown:
        lead = f"{winner} leads; 1 seed, so the noise is unknown"
    else:
        lead = f"{winner} wins outside the seed noise" if comparisons else f"only {winner}"
    if advice is None:
        return "no advice", lead
    family = norm_family(advice.norm)
    matches = [n for n in tested if norm_family(n) == family]
    if not matches:
        return "not tested", f"{lead}; advice {advice.norm} was not in the grid"
    if family in {norm_family(n) for n in tied}:
        return "agrees", lead  # inside the measured noise of the winner: cannot be told apart
    # the comparison that decides the verdict: the winner against the advised norm, or,
    # when the advice won, the winner against each runner-up it had to beat
    if norm_family(winner) == family:
        deciding = [c for c in comparisons if c.norm not in tied]
    else:
        deciding = [c for c in comparisons if norm_family(c.norm) == family][:1]
    if any(c.noise == "unknown" for c in deciding):
        why = ", ".join(f"{c.norm} by {c.delta * 100:.1f} pts" for c in deciding)
        return "inconclusive", (
            f"{winner} leads {why} with one seed, so the noise is unknown; "
            f"advice was {advice.norm}; run 2+ seeds (--seeds 3) to decide"
        )
    if norm_family(winner) == family:
        return "agrees", lead
    return "disagrees", f"{lead}; advice was {advice.norm}"


def summarize(
    records: Sequence[Mapping[str, Any]],
    advice: Mapping[int, AdviceView] | None = None,
    *,
    settings: Mapping[str, Any] | None = None,
    out_dir: str | None = None,
) -> CompareResult:
    """Turn run records (one per finished cell) into a :class:`CompareResult`.

    Example:
        >>> recs = [
        ...     {"norm": n, "batch_size": 2, "seed": s, "lr": 0.1, "val_acc": a}
        ...     for n, s, a in [("bn", 0, 0.5), ("bn", 1, 0.6), ("gn", 0, 0.9), ("gn", 1, 0.92)]
        ... ]
        >>> summarize(recs).batches[0].winner
        'gn'
    """
    cells = summarize_cells(records)
    batches = []
    for batch in sorted({c.batch_size for c in cells}):
        at_batch = [c for c in cells if c.batch_size == batch and c.trained]
        refused = [c for c in cells if c.batch_size == batch and c.refused and not c.trained]
        if at_batch or refused:
            batches.append(judge_batch(at_batch, (advice or {}).get(batch), batch, refused))
    return CompareResult(
        cells=cells,
        batches=batches,
        records=[dict(r) for r in records],
        settings=dict(settings or {}),
        out_dir=out_dir,
    )
