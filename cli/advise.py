"""`normsuite advise`: the advice `recommend` gives, without a file.

``normsuite advise --arch cnn2d --batch-size 8 --devices 4`` asks the same function that
``recommend`` asks for every model it finds (:func:`normsuite.advice.advise`), with the
architecture and batch given on the command line. Never imports torch or lightning.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import Enum
from typing import Any

import typer

from normsuite.advice import ARCHITECTURES
from normsuite.analysis.report import advice_sections, headline


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
    None,
    "--task",
    help="What the model is for: classification, detection, segmentation, or a domain with "
    "its own norm practice (see `normsuite rule`), e.g. diffusion.",
)
FORMAT = typer.Option(AdviseFormat.text, "--format", help="Output format.")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"normsuite advise: error: {message}", err=True)
    return typer.Exit(2)


# The recognition rules B1-B11 are about these tasks (ImageNet classification, COCO
# detection and segmentation in the GN and "Rethinking BatchNorm" papers): same advice.
RECOGNITION_TASKS = ("classification", "detection", "segmentation", "recognition")


def _domain(task: str) -> str | None:
    """The id of the domain (``normsuite.advice.DOMAINS``, where this version has them) that
    ``task`` names by id or by a word of its name: ``diffusion`` -> the diffusion U-Net one."""
    import normsuite.advice as advice

    key = task.strip().lower()
    for domain_id, domain in getattr(advice, "DOMAINS", {}).items():
        if key == domain_id.lower() or key in domain.name.lower():
            return domain_id
    return None


def _known_tasks() -> list[str]:
    import normsuite.advice as advice

    domains = getattr(advice, "DOMAINS", {})
    return [*RECOGNITION_TASKS, *(f"{i} ({d.name})" for i, d in domains.items())]


def _advice(
    arch: str, batch: int | None, devices: int, accumulate: int, channels: int | None, task: str
) -> Any:
    """What ``recommend`` asks for a model: :func:`normsuite.advice.advise`, or for a model
    of a domain with its own norm practice, ``advise_domain`` (same functions, same text)."""
    import normsuite.advice as advice

    if task and task not in RECOGNITION_TASKS:
        domain = _domain(task)
        if domain is None or not hasattr(advice, "advise_domain"):
            raise ValueError(
                f"unknown task {task!r}; use one of: {', '.join(_known_tasks())}, or leave "
                "--task out"
            )
        return advice.advise_domain(domain, batch)
    return advice.advise(arch, batch, devices=devices, accumulate=accumulate, channels=channels)


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
        f"  recommend: {headline(advice)} (confidence {advice.confidence}{rules})",
    ]
    lines.extend(advice_sections(advice.rationale, advice.assumptions, advice.would_change))
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
    task_key = task.strip().lower() if task is not None else ""
    try:
        result = _advice(name, batch_size, devices, accumulate, channels, task_key)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if output_format is AdviseFormat.json:
        doc = {
            "architecture": name,
            "batch_size": {"per_device": batch_size, "devices": devices, "accumulate": accumulate},
            "task": task_key or None,
            "advice": asdict(result),
        }
        typer.echo(json.dumps(doc, indent=2))
    else:
        text = render_text(name, result, batch_size, devices, accumulate)
        if task_key in RECOGNITION_TASKS:
            text += f"\n  task: {task_key} (the recognition rules B1-B11 apply as they are)"
        typer.echo(text)
