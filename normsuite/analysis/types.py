"""Result types shared by the analyzer core, the reporters and the CLI.

These are the stable interface of ``normsuite.analysis``: the JSON output is
``FileResult.to_dict()`` per file. Add fields only in a backward compatible way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    """One rule violation at a place in a file."""

    code: str  # "NRM002"
    message: str  # says what is wrong and what to do
    line: int  # 1-based
    col: int  # 1-based, like ruff
    severity: Severity = "warning"
    end_line: int | None = None
    end_col: int | None = None
    model: str | None = None  # the class the finding belongs to, if any
    # "blocks.py:13": the layer it is about is built in another file (the finding is at the
    # call of this file that builds it)
    layer_at: str | None = None


@dataclass(frozen=True)
class BatchInfo:
    """Per-device batch size, device count and accumulation, with where they came from."""

    per_device: int | None
    devices: int = 1
    accumulate: int = 1
    source: str = "unknown"  # "cli", "file:12 DataLoader(batch_size=32)", "config:...", "default"
    # the batch is a default the code states (a signature, argparse or DataModule default),
    # not a value the training code or a config sets
    weak: bool = False
    # submodules (attribute paths of the model) that the training script keeps in eval
    # mode (``model.backbone.eval()`` after ``model.train()``): their BN statistics are frozen
    frozen_parts: list[str] = field(default_factory=list)

    @property
    def global_batch(self) -> int | None:
        if self.per_device is None:
            return None
        return self.per_device * self.devices * self.accumulate


@dataclass(frozen=True)
class NormSite:
    """A normalization layer found in a model."""

    name: str  # attribute path, e.g. "layer1.0.bn1"
    kind: str  # "bn" | "syncbn" | "frozenbn" | "gn" | "ln" | "in" | "rms" | ...
    line: int
    code: str  # source of the constructor call, e.g. "nn.BatchNorm2d(64)"
    num_channels: int | None = None


@dataclass(frozen=True)
class LayerSuggestion:
    """The concrete layer to put at one norm site."""

    site: str
    line: int
    current: str  # "nn.BatchNorm2d(64)"
    suggested: str  # "nn.GroupNorm(32, 64)"


@dataclass(frozen=True)
class Recommendation:
    norm: str  # a norm spec: "bn" | "syncbn" | "gn" | "ln" | "rms" | "frozenbn"
    layers: list[LayerSuggestion] = field(default_factory=list)
    rationale: list[str] = field(default_factory=list)  # sentences with rule ids and numbers
    rules: list[str] = field(default_factory=list)  # advice rule ids, e.g. ["B2", "B4"]
    assumptions: list[str] = field(default_factory=list)
    would_change: list[str] = field(default_factory=list)
    confidence: Literal["high", "medium", "low"] = "medium"
    alternatives: list[str] = field(default_factory=list)  # other good norms, e.g. ["syncbn"]
    # Batch unknown: ``norm`` holds at a per-device batch >= 16, this norm below it.
    below_bn_batch: str | None = None


@dataclass(frozen=True)
class ModelReport:
    name: str
    line: int
    architecture: str  # cnn1d | cnn2d | cnn3d | rnn | transformer | mlp | hybrid | unknown
    architecture_evidence: list[str] = field(default_factory=list)
    norms_found: list[NormSite] = field(default_factory=list)
    batch_size: BatchInfo = field(default_factory=lambda: BatchInfo(per_device=None))
    recommendation: Recommendation | None = None
    # Why there is no recommendation ("architecture unknown: ..."), when there is none.
    abstain: str | None = None
    # The model class of the same file this class is a block of (judged in its context).
    part_of: str | None = None
    # The class that uses it directly (part_of is the top of that chain).
    block_of: str | None = None
    # Class names this class builds or is given as blocks (hides them across files).
    uses: list[str] = field(default_factory=list)
    domain: str | None = None  # a domain with its own norm practice (advice.DOMAINS)
    # bases from outside the project (not read): the model is analyzed from its own layers
    unresolved_bases: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Notice:
    """Something about a file that is not a finding: a cap the analyzer hit (``kind``
    "limit": the result is incomplete) or a ``# noqa`` code no rule has (``kind`` "noqa")."""

    kind: Literal["limit", "noqa"]
    message: str  # one line
    line: int | None = None  # 1-based, where it happened
    incomplete: bool = False  # True: findings and recommendations of the file may be missing
    cap: str | None = None  # kind "limit": "steps" | "depth" | "loop" | "foreign"
    cap_value: int | None = None


@dataclass
class FileResult:
    path: str
    models: list[ModelReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None  # one line; set when the file could not be analyzed
    # where the error is, when it has a place in the file (a syntax error); 1-based
    error_line: int | None = None
    error_col: int | None = None
    notices: list[Notice] = field(default_factory=list)

    @property
    def incomplete(self) -> bool:
        """True when a cap was hit: the file was analyzed only in part."""
        return any(n.incomplete for n in self.notices)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AnalysisOptions:
    """What the caller knows better than the file (CLI flags, config)."""

    batch_size: int | None = None
    devices: int | None = None
    accumulate: int | None = None
    config_path: str | None = None  # a LightningCLI YAML
    # several --config files (later win); config_path is the one-file form of this
    config_paths: tuple[str, ...] = ()
    default_batch_size: int | None = None  # from [tool.normsuite]
    select: tuple[str, ...] = ()  # rule codes or prefixes; empty = all
    ignore: tuple[str, ...] = ()
    all_modules: bool = False  # recommend: every class, not only top-level models

    @property
    def configs(self) -> tuple[str, ...]:
        """Every config to read, in order."""
        return self.config_paths or ((self.config_path,) if self.config_path else ())
