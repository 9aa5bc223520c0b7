"""`normsuite advise`: the advice `recommend` gives, without a file.

``normsuite advise --arch cnn2d --batch-size 8 --devices 4`` asks the same function that
``recommend`` asks for every model it finds (:func:`normsuite.advice.advise`), with the
architecture and batch given on the command line. Never imports torch or lightning.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict
from enum import Enum
from typing import Any

import typer

from normsuite.advice import ARCHITECTURES


class AdviseFormat(str, Enum):
    text = "text"
    json = "json"


Architecture = Enum("Architecture", {a: a for a in ARCHITECTURES}, type=str)  # type: ignore[misc]

ARCH = typer.Option(..., "--arch", help="The model's architecture.", show_default=False)
BATCH = typer.Option(
    None, "--batch-size", "-b", help="Per-device batch size (leave out if unknown)."
)
DEVICES = typer.Option(1, "--devices", help="Number of devices (GPUs x nodes).")
ACCUMULATE = typer.Option(1, "--accumulate", help="Gradient accumulation steps.")
CHANNELS = typer.Option(None, "--channels", help="Channels of the first norm (for GN groups).")
TASK = typer.Option(
    None, "--task", help="What the model is for, e.g. classification, detection, segmentation."
)
FORMAT = typer.Option(AdviseFormat.text, "--format", help="Output format.")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"normsuite advise: error: {message}", err=True)
    return typer.Exit(2)


def _advice(arch: str, batch: int | None, devices: int, accumulate: int, **more: Any) -> Any:
    """:func:`normsuite.advice.advise`, passing ``task`` only where it takes one."""
    from normsuite.advice import advise as advise_fn

    params = inspect.signature(advise_fn).parameters
    task = more.pop("task", None)
    if task is not None:
        name = next((n for n in ("task", "domain") if n in params), None)
        if name is None:
            raise ValueError(
                "--task is not used by this version's advice rules; leave it out "
                "(`normsuite recommend` on the model file sees the task from its code)"
            )
        more[name] = task
    return advise_fn(arch, batch, devices=devices, accumulate=accumulate, **more)


def render_text(arch: str, advice: Any, batch: int | None, devices: int, accumulate: int) -> str:
    """The advice as ``recommend`` prints a model's recommendation."""
    setup = "batch unknown" if batch is None else f"batch {batch}/device"
    if devices != 1:
        setup += f" x {devices} devices"
    if accumulate != 1:
        setup += f" x {accumulate} accumulated"
    rules = f"; rules {', '.join(advice.rules)}" if advice.rules else ""
    lines = [
        f"{arch}, {setup} (cli)",
        f"  recommend: {advice.norm} (confidence {advice.confidence}{rules})",
    ]
    for title, items in (
        ("why", advice.rationale),
        ("assumed", advice.assumptions),
        ("would change it", advice.would_change),
    ):
        if items:
            lines.append(f"  {title}:")
            lines.extend(f"    - {item}" for item in items)
    if advice.alternatives:
        lines.append(f"  also good: {', '.join(advice.alternatives)}")
    return "\n".join(lines)


def advise(
    arch: Architecture = ARCH,  # type: ignore[valid-type]
    batch_size: int | None = BATCH,
    devices: int = DEVICES,
    accumulate: int = ACCUMULATE,
    channels: int | None = CHANNELS,
    task: str | None = TASK,
    output_format: AdviseFormat = FORMAT,
) -> None:
    """Which normalization to use for an architecture and batch size, with cited reasons.

    The same advice `normsuite recommend` gives for a model file, without a file:
    `normsuite advise --arch cnn2d --batch-size 8 --devices 4`.
    """
    name = arch.value if isinstance(arch, Enum) else str(arch)
    for flag, value in (
        ("--batch-size", batch_size),
        ("--devices", devices),
        ("--accumulate", accumulate),
        ("--channels", channels),
    ):
        if value is not None and value < 1:
            raise _fail(f"{flag} must be at least 1, got {value}")
    if task is not None and not task.strip():
        raise _fail("--task is empty; name the task, e.g. detection, or leave it out")
    more: dict[str, Any] = {"channels": channels}
    if task is not None:
        more["task"] = task.strip()
    try:
        result = _advice(name, batch_size, devices, accumulate, **more)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if output_format is AdviseFormat.json:
        doc = {
            "architecture": name,
            "batch_size": {"per_device": batch_size, "devices": devices, "accumulate": accumulate},
            "advice": asdict(result),
        }
        typer.echo(json.dumps(doc, indent=2))
    else:
        typer.echo(render_text(name, result, batch_size, devices, accumulate))
