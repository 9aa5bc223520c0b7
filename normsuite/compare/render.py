"""Showing a :class:`~normsuite.compare.results.CompareResult`: Rich tables or JSON."""

from __future__ import annotations

import json

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .results import NOISE_RULE, CellSummary, CompareResult, Stat

_VERDICT_STYLE = {
    "agrees": "green",
    "disagrees": "red",
    "inconclusive": "yellow",
    "not tested": "yellow",
    "no advice": "dim",
}


def _pm(stat: Stat | None, scale: float = 1.0, digits: int = 1) -> str:
    if stat is None:
        return "-"
    if stat.std is None:
        return f"{stat.mean * scale:.{digits}f}"
    return f"{stat.mean * scale:.{digits}f} ± {stat.std * scale:.{digits}f}"


def cells_table(result: CompareResult) -> Table:
    """Mean ± std over seeds of every (batch size, norm) cell."""
    table = Table(title="normsuite compare: mean ± std over seeds", title_justify="left")
    for name, justify in [
        ("batch", "right"),
        ("norm", "left"),
        ("lr", "right"),
        ("seeds", "right"),
        ("val acc %", "right"),
        ("val loss", "right"),
        ("ms/step", "right"),
        ("memory MB", "right"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    notes = any(c.refused for c in result.cells)
    if notes:
        table.add_column("note")
    winners = {b.batch_size: b.winner for b in result.batches}
    for batch in result.batch_sizes:
        for norm in result.norms:
            cell = result.cell(norm, batch)
            if cell is None:
                continue
            style = "bold" if winners.get(batch) == norm else ""
            row = [
                str(batch),
                norm,
                f"{cell.lr:.3g}",
                str(cell.acc.n if cell.trained else 0),
                _pm(cell.stats.get("val_acc"), 100.0),
                _pm(cell.stats.get("val_loss"), digits=3),
                _pm(cell.stats.get("step_ms"), digits=1),
                _pm(cell.stats.get("mem_mb"), digits=2),
            ]
            if notes:
                row.append(_refused_note(cell))
            table.add_row(*row, style=style)
        table.add_section()
    return table


def _refused_note(cell: CellSummary) -> Text:
    if not cell.refused:
        return Text("")
    seeds = "" if not cell.trained else f" ({cell.refused_seeds} seed(s))"
    return Text(f"refused: {cell.refused}{seeds}", style="yellow")


def verdict_table(result: CompareResult) -> Table:
    """Winner per batch size, the noise note, the advice and whether the evidence agrees."""
    table = Table(title="winner per batch size vs normsuite.advice", title_justify="left")
    for name in ("batch", "winner", "lead (pts)", "evidence", "advice", "agrees?"):
        table.add_column(name)
    for batch in result.batches:
        lead = "-"
        if batch.comparisons:
            closest = min(batch.comparisons, key=lambda c: c.delta)
            lead = f"+{closest.delta * 100:.1f} over {closest.norm}"
        advice = "-"
        if batch.advice is not None:
            rules = f" ({', '.join(batch.advice.rules)})" if batch.advice.rules else ""
            advice = f"{batch.advice.norm}{rules}"
        table.add_row(
            str(batch.batch_size),
            batch.winner or "-",
            lead,
            batch.note,
            advice,
            Text(batch.verdict, style=_VERDICT_STYLE[batch.verdict]),
        )
    return table


def render_text(result: CompareResult, console: Console) -> None:
    """Print both tables, the noise rule and where the results live."""
    parts = [cells_table(result), verdict_table(result), Text(f"Noise rule: {NOISE_RULE}.")]
    scaling = result.settings.get("lr_scaling")
    if scaling:
        base = result.settings.get("base_lr"), result.settings.get("base_batch")
        origin = f" from LR {base[0]:g} at batch {base[1]}" if None not in base else ""
        why = result.settings.get("lr_scaling_why")
        parts.append(Text(f"LR scaling: {scaling}{origin}" + (f"; {why}." if why else ".")))
    memory = {r.get("mem_kind") for r in result.records if r.get("mem_kind")}
    for kind in sorted(memory):
        parts.append(Text(f"Memory: {MEMORY_NOTES.get(kind, kind)}."))
    if result.out_dir:
        parts.append(Text(f"Results: {result.out_dir}"))
    console.print(Group(*parts))


MEMORY_NOTES = {
    "cuda_max_allocated": "torch.cuda.max_memory_allocated during training (all tensors)",
    "params_grads_saved": (
        "parameters + gradients + tensors saved for backward in one training step "
        "(measured with torch.autograd.graph.saved_tensors_hooks; CPU has no allocator peak)"
    ),
}


def render_json(result: CompareResult) -> str:
    """The ``--format json`` document."""
    return json.dumps(result.to_dict(), indent=2, default=str)
