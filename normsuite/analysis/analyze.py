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
import os
import re
from dataclasses import replace

from normsuite.advice import DOMAINS

from .context import FileContext, ModelContext, build_context, held_model
from .domains import detect, gradient_penalty
from .extract import BudgetExceeded
from .factories import REPARAM
from .ir import CONV_DIMS
from .project import project_for
from .recommend import abstain_reason, recommend, structural_abstain
from .rules import run_rules
from .types import (
    AnalysisOptions,
    FileResult,
    LayerSuggestion,
    ModelReport,
    NormSite,
    Recommendation,
)


def analyze_source(source: str, path: str, options: AnalysisOptions) -> FileResult:
    """Analyze one file's source. Raises SyntaxError / RecursionError / ValueError (bad
    config) for input that cannot be analyzed; the caller turns them into one line."""
    tree = _parse(source, path)
    ctx = build_context(tree, source, path, options)
    ctx.index.steps = 0
    try:
        findings = run_rules(ctx)
    except BudgetExceeded:  # a pathological file: report what the models already say
        findings = []
    notices = ctx.index.limits.notices()  # a cap hit is reported, never silent
    domains = {id(m): detect(m, ctx) if structural_abstain(m) is None else None for m in ctx.models}
    _inherit_domains(ctx, domains)
    models = _agree_with_parents([_report(m, ctx, domains) for m in ctx.models])
    if notices:
        models = [_partial(m) for m in models]
    return FileResult(path=path, models=models, findings=findings, notices=notices)


def _parse(source: str, path: str) -> ast.Module:
    """Parse, sharing the tree with the project index when the file is on disk."""
    if path != "-" and os.path.isfile(path):
        return project_for(path).project.parse(path, source)
    return ast.parse(source, filename=path)


def _agree_with_parents(models: list[ModelReport]) -> list[ModelReport]:
    """A block judged as part of a model of this file never contradicts that model's
    advice for the same layer (a ConvLSTM cell alone keeps its gate BN, which its
    forecaster, stepping it over time, turns into LayerNorm as NRM007 says): where they
    differ, the block defers to its parent's advice."""
    by_name = {m.name: m for m in models}
    out = []
    for model in models:
        parent = by_name.get(model.part_of or "")
        if parent is None or model.recommendation is None or parent.recommendation is None:
            out.append(model)
            continue
        advice = {(s.line, s.current): _target(s) for s in parent.recommendation.layers}
        differ = [
            s.site or s.current
            for s in model.recommendation.layers
            if advice.get((s.line, s.current), _target(s)) != _target(s)
        ]
        if differ:
            reason = (
                f"judged in {parent.name}'s context, whose advice for {', '.join(differ)} "
                f"differs from this class's alone: see {parent.name}"
            )
            model = replace(model, recommendation=None, abstain=reason)
        out.append(model)
    return out


_LAYER_FAMILY = re.compile(
    r'^(\w+) \(channels unknown|build_norm\("(\w+)'
    r"|(FrozenBatchNorm|SyncBatchNorm|BatchNorm|GroupNorm|LayerNorm|InstanceNorm|RMSNorm)"
)
_SPEC_OF = {
    "FrozenBatchNorm": "frozenbn",
    "SyncBatchNorm": "syncbn",
    "BatchNorm": "bn",
    "GroupNorm": "gn",
    "LayerNorm": "ln",
    "InstanceNorm": "in",
    "RMSNorm": "rms",
}


def _target(site: LayerSuggestion) -> str:
    """What a suggestion does to its layer: "keep", or the norm family it puts there (the
    same advice may be written with the channel expression, its value, or neither).

    >>> _target(LayerSuggestion("bn", 3, "nn.BatchNorm1d(c)", "ln (channels unknown: ...)"))
    'ln'
    >>> _target(LayerSuggestion("bn", 3, "nn.BatchNorm1d(c)", "nn.LayerNorm(128)"))
    'ln'
    """
    if site.suggested == site.current:
        return "keep"
    found = _LAYER_FAMILY.search(site.suggested)
    if found is None:
        return site.suggested
    return found.group(1) or found.group(2) or _SPEC_OF[found.group(3)]


_WIDTH_FREE_FIX = re.compile(r'^normsuite\.build_norm\("\w+(:\d+)?", (?!\d+[,)])')


def _one_fix_per_line(rec: Recommendation) -> Recommendation:
    """One line of code built at several widths gets one piece of advice: where one width
    keeps the layer and another needs ``build_norm("gn", c)`` (which picks G for every
    width; a ``norm_layer=lambda c: nn.GroupNorm(16, c)`` at 32 and 64 channels), all get
    the fix. A fix written for one width (a literal) is left per site."""
    fixes: dict[tuple[int, str], str] = {}
    for site in rec.layers:
        if site.suggested != site.current and _WIDTH_FREE_FIX.match(site.suggested):
            fixes.setdefault((site.line, site.current), site.suggested)
    if not fixes:
        return rec
    layers = [
        replace(site, suggested=fixes[(site.line, site.current)])
        if site.suggested == site.current and (site.line, site.current) in fixes
        else site
        for site in rec.layers
    ]
    return replace(rec, layers=layers)


def _partial(model: ModelReport) -> ModelReport:
    """A recommendation made from a partly analyzed file: low confidence, and it says so."""
    note = "the analysis of this file was cut short by a cap (see the notice): layers may miss"
    rec = model.recommendation
    if rec is None:
        # an abstention's reason ("no layers a norm would follow") may only be the cap's doing
        return replace(model, abstain=note) if model.abstain is not None else model
    return replace(
        model,
        recommendation=replace(rec, confidence="low", assumptions=[*rec.assumptions, note]),
    )


def analyze_context(source: str, path: str, options: AnalysisOptions) -> FileContext:
    """The full analysis context (IR, traced flow) for tools that want more than the result."""
    return build_context(ast.parse(source, filename=path), source, path, options)


def _inherit_domains(ctx: FileContext, domains: dict[int, str | None]) -> None:
    """A block takes the domain of the model it is part of (SRGAN's ResidualBlock keeps its
    generator's BN: D9), as NRM006 does; a block with a domain of its own keeps it."""
    by_name = {m.name: m for m in ctx.models}
    for model in ctx.models:
        if domains[id(model)] is not None or structural_abstain(model) is not None:
            continue
        seen = {model.name}
        parent = by_name.get(model.part_of) if model.part_of else None
        while parent is not None and parent.name not in seen:
            seen.add(parent.name)
            if domains.get(id(parent)):
                domains[id(model)] = domains[id(parent)]
                break
            parent = by_name.get(parent.part_of) if parent.part_of else None


_ADVERSARIAL = frozenset({"D2", "D3", "D9"})  # critics, spectral-norm discriminators, GANs


def _weight_normalized(model: ModelContext, sites: list[NormSite]) -> bool:
    """No feature norm, and most of the model's conv/Linear layers wrapped in
    ``weight_norm`` (one weight-normalized head on a CNN does not make the design)."""
    if model.norm_layers():
        return False
    wrapped = sum(1 for site in sites if site.kind == "weight_norm")
    weighted = len(
        {
            id(layer)
            for _, layer in model.layers
            if layer.type in CONV_DIMS or layer.type in ("Linear", "LazyLinear")
        }
    )
    return wrapped >= 2 and 2 * wrapped >= weighted


def _networks_with_own_domains(
    model: ModelContext, ctx: FileContext, domains: dict[int, str | None]
) -> list[str]:
    """The networks ``model`` holds directly (attributes that are models of this file) when
    they are several and one has a norm practice of its own: a Lightning GAN module holding
    a generator and a WGAN-GP critic is not one CNN to advise (its critic's BN is D2's)."""
    if model.root.instance is None:
        return []
    by_name = {m.name: m for m in ctx.models}
    held: list[ModelContext] = []
    for value in model.root.instance.attrs.values():
        inst = getattr(value, "instance", None)
        other = by_name.get(inst.cls.name) if inst is not None else None
        foreign = inst is not None and inst.cls.home not in (None, ctx.index)
        if other is None and foreign and gradient_penalty(ctx):
            # a network of another file (nets.py's Critic in lit.py's LightningModule):
            # judged here, where its training (the gradient penalty) is
            other = held_model(inst.cls.name, value, ctx, model)
            domains[id(other)] = detect(other, ctx) if structural_abstain(other) is None else None
        if other is not None and other is not model and other not in held:
            held.append(other)
    own = domains.get(id(model))
    adversarial = [m for m in held if domains.get(id(m)) in _ADVERSARIAL and domains[id(m)] != own]
    if len(held) < 2 or not adversarial:
        return []  # one network made of parts (FastSpeech2's PostNet is D6: still one)
    return [f"{m.name} ({domains[id(m)]})" if domains.get(id(m)) else m.name for m in held]


def _report(
    model: ModelContext, ctx: FileContext, domains: dict[int, str | None] | None = None
) -> ModelReport:
    sites = []
    for path, layer in model.norm_layers():
        kind = layer.norm_kind or (layer.backbone.norm if layer.backbone else "none")
        sites.append(NormSite(path, kind, layer.line, layer.code, layer.num_channels))
    # spectral_norm(conv) / weight_norm(linear): weight reparametrizations, listed and kept.
    reparam = ctx.index.memo.get(REPARAM, {})
    seen: set[int] = set()
    for path, layer in model.layers:
        if id(layer) in reparam and id(layer) not in seen:
            seen.add(id(layer))
            wrapper = reparam[id(layer)][0]
            sites.append(NormSite(path, wrapper, layer.line, layer.code, layer.out_channels))
    if domains is None:
        domains = {id(model): detect(model, ctx) if structural_abstain(model) is None else None}
    domain = domains[id(model)]
    reason = abstain_reason(model, domain)
    if reason is None and domain is None and _weight_normalized(model, sites):
        # encodec's SEANet, HiFi-GAN, WaveNet: weight normalization is the design's norm
        reason = (
            "its layers are weight-normalized (weight_norm, Salimans & Kingma 2016) and it has "
            "no feature norm: a batch-independent design (audio codecs, vocoders) that the "
            "feature-norm rules B1-B11 do not say to change"
        )
    networks = _networks_with_own_domains(model, ctx, domains) if reason is None else []
    if networks:
        reason = (
            f"holds several networks trained together ({', '.join(networks)}), each with its "
            "own norm practice: each is advised on its own (--all-modules)"
        )
    return ModelReport(
        name=model.name,
        line=model.line,
        architecture=model.architecture,
        architecture_evidence=list(model.evidence),
        norms_found=sites,
        batch_size=model.batch,
        recommendation=None if reason else _one_fix_per_line(recommend(model, domain)),
        abstain=reason,
        part_of=model.part_of,
        block_of=model.block_of,
        uses=list(model.uses),
        domain=f"{domain}: {DOMAINS[domain].name}" if domain else None,
        unresolved_bases=list(model.root.instance.cls.unresolved_bases)
        if model.root.instance is not None
        else [],
    )
