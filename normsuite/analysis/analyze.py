"""``analyze_source``: one file's source -> models, recommendations and all findings.

Pure Python: parses with :mod:`ast`, never imports or executes the analyzed code, never
imports torch. ``# noqa`` and select/ignore are applied by the caller (the runner).

>>> src = '''
... import torch.nn as nn
... class LBNNet(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.conv1 = nn.Conv2d(3, 64, kernel_size=3, padding=1)
...         self.ln1 = nn.LayerNorm(64)
...     def forward(self, x):
...         return self.ln1(self.conv1(x))
... '''
>>> result = analyze_source(src, "m.py", AnalysisOptions(batch_size=32))
>>> [f.code for f in result.findings], result.models[0].recommendation.norm
(['NRM002'], 'bn')
"""

from __future__ import annotations

import ast
from dataclasses import replace

from .context import FileContext, ModelContext, build_context
from .extract import BudgetExceeded
from .recommend import recommend
from .rules import run_rules
from .types import AnalysisOptions, FileResult, ModelReport, NormSite


def analyze_source(source: str, path: str, options: AnalysisOptions) -> FileResult:
    """Analyze one file's source. Raises SyntaxError / RecursionError / ValueError (bad
    config) for input that cannot be analyzed; the caller turns them into one line."""
    tree = ast.parse(source, filename=path)
    ctx = build_context(tree, source, path, options)
    ctx.index.steps = 0
    try:
        findings = run_rules(ctx)
    except BudgetExceeded:  # a pathological file: report what the models already say
        findings = []
    notices = ctx.index.limits.notices()  # a cap hit is reported, never silent
    models = [_report(m) for m in ctx.models]
    if notices:
        models = [_partial(m) for m in models]
    return FileResult(path=path, models=models, findings=findings, notices=notices)


def _partial(model: ModelReport) -> ModelReport:
    """A recommendation made from a partly analyzed file: low confidence, and it says so."""
    rec = model.recommendation
    if rec is None:
        return model
    note = "the analysis of this file was cut short by a cap (see the notice): layers may miss"
    return replace(
        model,
        recommendation=replace(rec, confidence="low", assumptions=[*rec.assumptions, note]),
    )


def analyze_context(source: str, path: str, options: AnalysisOptions) -> FileContext:
    """The full analysis context (IR, traced flow) for tools that want more than the result."""
    return build_context(ast.parse(source, filename=path), source, path, options)


def _report(model: ModelContext) -> ModelReport:
    sites = []
    for path, layer in model.norm_layers():
        kind = layer.norm_kind or (layer.backbone.norm if layer.backbone else "none")
        sites.append(NormSite(path, kind, layer.line, layer.code, layer.num_channels))
    return ModelReport(
        name=model.name,
        line=model.line,
        architecture=model.architecture,
        architecture_evidence=list(model.evidence),
        norms_found=sites,
        batch_size=model.batch,
        recommendation=recommend(model),
    )
