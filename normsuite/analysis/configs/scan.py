"""What a training config says about the batch: per-device batch, devices, accumulation,
SyncBatchNorm, each with where it came from (``config:cli.yaml data.batch_size=2``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Sourced = tuple[int, str]


@dataclass
class ConfigScan:
    """The facts of one or more configs (later files win field by field)."""

    batch: Sourced | None = None
    devices: Sourced | None = None
    accumulate: Sourced | None = None
    sync: bool = False
    notes: list[str] = field(default_factory=list)  # e.g. "trainer.devices=-1: count unknown"
    # the class the batch is handed to (``_target_`` / ``class_path`` of its section): its
    # code may divide it by the device count
    data_target: str | None = None
    # The config sets the batch to what cannot be read statically (``${oc.env:BS}``): it
    # still overrides the code's defaults, so the batch is unknown. Where, for the source.
    batch_unreadable: str | None = None

    def merge(self, later: ConfigScan) -> ConfigScan:
        later_sets = later.batch is not None or later.batch_unreadable is not None
        return ConfigScan(
            batch=later.batch if later_sets else self.batch,
            batch_unreadable=later.batch_unreadable if later_sets else self.batch_unreadable,
            devices=later.devices or self.devices,
            accumulate=later.accumulate or self.accumulate,
            sync=self.sync or later.sync,
            notes=[*self.notes, *later.notes],
            data_target=later.data_target if later_sets else self.data_target,
        )

    @property
    def empty(self) -> bool:
        return (
            self.batch is None
            and self.batch_unreadable is None
            and self.devices is None
            and self.accumulate is None
        )


def positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


def device_count(value: Any) -> int | None:
    """Trainer ``devices``: 4, [0, 1], "2", "0,1"; "auto" and -1 are unknown statically."""
    if isinstance(value, (list, tuple)):
        return len(value) or None
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return positive_int(int(text))
        parts = [p for p in text.split(",") if p.strip()]
        if len(parts) > 1 and all(p.strip().isdigit() for p in parts):
            return len(parts)
        return None
    return positive_int(value)
