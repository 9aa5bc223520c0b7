"""``--trace``: RUN a model file in a subprocess and record what each norm layer really sees.

This is the one place in ``normsuite.analysis`` that executes user code, and only when the
user asks for it. The file is imported by a child ``python -c`` process (so torch is never
imported into the analyzer's process), every ``nn.Module`` class defined in it that needs
no constructor arguments is built (or just ``--model NAME``), and one forward pass runs on
a small random input under ``torch.no_grad()`` with forward hooks on every norm layer.

Example:
    >>> from normsuite.analysis.trace import trace_file
    >>> trace_file("recipes/models/article_unfixed.py", model="LBNNet").models[0]["error"]
    ... # doctest: +SKIP
    "RuntimeError: Given normalized_shape=[64], expected input with shape [*, 64], ..."
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from normsuite.analysis.files import SourceError, read_source
from normsuite.analysis.types import AnalysisOptions, FileResult, NormSite

MARKER = "@@NORMSUITE_TRACE@@"
DEFAULT_TIMEOUT = 120.0

# The child program. It is a plain string so that the parent never imports torch.
_CHILD = r"""
import importlib.util, inspect, json, os, sys, traceback
path, wanted, shape = sys.argv[1], sys.argv[2] or None, json.loads(sys.argv[3])
out = {"models": [], "error": None}
def done():
    sys.stdout.write("\n" + MARKER + json.dumps(out) + "\n"); sys.stdout.flush(); sys.exit(0)
def one_line(exc):
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"
sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
try:  # the user's file first: it imports torch itself, or fails fast without it
    spec = importlib.util.spec_from_file_location("__normsuite_trace__", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
except BaseException as exc:
    out["error"] = "importing the file failed: " + one_line(exc); done()
try:
    import torch
    from torch import nn
except Exception as exc:
    out["error"] = "cannot import torch: " + one_line(exc); done()
torch.manual_seed(0)
torch.set_num_threads(1)
classes = [(n, c) for n, c in vars(module).items() if isinstance(c, type)
           and issubclass(c, nn.Module) and c.__module__ == module.__name__]
if wanted:
    found = [(n, c) for n, c in classes if n == wanted]
    if not found:
        names = ", ".join(n for n, _ in classes) or "none"
        out["error"] = f"no nn.Module class {wanted!r} in the file (found: {names})"; done()
    classes = found
NORM_TYPES = tuple(t for t in (
    getattr(nn.modules.batchnorm, "_NormBase", None), nn.GroupNorm, nn.LayerNorm,
    nn.LocalResponseNorm, getattr(nn, "RMSNorm", None)) if t is not None)
def is_norm(m):
    return isinstance(m, NORM_TYPES) or ("Norm" in type(m).__name__ and not list(m.children()))
def guess_input(model):
    for m in model.modules():
        if list(m.children()):
            continue
        n = 2
        if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)):
            return torch.randn(n, m.in_channels, 64)
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            return torch.randn(n, m.in_channels, 32, 32)
        if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)):
            return torch.randn(n, m.in_channels, 8, 16, 16)
        if isinstance(m, nn.Linear):
            return torch.randn(n, m.in_features)
        if isinstance(m, nn.Embedding):
            return torch.randint(0, m.num_embeddings, (n, 16))
        if isinstance(m, nn.LayerNorm):  # a pre-LN block: tokens (N, L, C)
            return torch.randn(n, 16, *m.normalized_shape)
        width = getattr(m, "input_size", getattr(m, "embed_dim", None))
        if isinstance(m, (nn.RNNBase, nn.MultiheadAttention)):
            return torch.randn(n, 16, width) if m.batch_first else torch.randn(16, n, width)
        return None
    return None
def make_input(model):
    if not shape:
        return guess_input(model)
    for m in model.modules():
        if not list(m.children()):
            if isinstance(m, nn.Embedding):
                return torch.randint(0, m.num_embeddings, tuple(shape))
            break
    return torch.randn(*shape)
def describe(m, x):
    s = list(x.shape)
    if isinstance(m, nn.LayerNorm) or type(m).__name__ == "RMSNorm":
        k = len(getattr(m, "normalized_shape", ()) or (1,))
        want = list(getattr(m, "normalized_shape", ()) or [])
        return f"normalizes the last {k} dim(s): input has {s[-k:]}, layer expects {want}"
    if isinstance(m, nn.LocalResponseNorm):
        return f"across dim 1 (size {s[1] if len(s) > 1 else '?'})"
    if len(s) >= 2:
        return f"channels = dim 1 (size {s[1]}) of a rank-{len(s)} input"
    return f"rank-{len(s)} input"
TARGET = os.path.abspath(path)
def build(cls):
    # Record the line of the user's file that constructed each module, so a traced layer
    # can be matched to the static site at that line: the static analysis shares one site
    # among the layers a loop or comprehension builds (blocks.0 for blocks.0-3).
    original = nn.Module.__init__
    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        frame = sys._getframe(1)
        while frame is not None and os.path.abspath(frame.f_code.co_filename) != TARGET:
            frame = frame.f_back
        if frame is not None:  # keyed weakly by the module: ids of dead temporaries recur
            try:
                BUILT_AT[self] = frame.f_lineno
            except TypeError:  # a module class that defines __eq__ without __hash__
                pass
    nn.Module.__init__ = init
    try:
        return cls().eval()
    finally:
        nn.Module.__init__ = original
import weakref
BUILT_AT = weakref.WeakKeyDictionary()
for name, cls in classes:
    entry = {"name": name, "input_shape": None, "layers": [], "error": None, "skipped": None}
    out["models"].append(entry)
    try:
        sig = inspect.signature(cls.__init__)
        required = [p.name for p in list(sig.parameters.values())[1:]
                    if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    except (TypeError, ValueError):
        required = []
    if required:
        entry["skipped"] = "its constructor needs arguments: " + ", ".join(required)
        continue
    try:
        model = build(cls)
    except BaseException as exc:
        entry["error"] = "building it failed: " + one_line(exc); continue
    x = make_input(model)
    if x is None:
        entry["skipped"] = "cannot guess its input; pass --model NAME --input-shape 8,3,32,32"
        continue
    entry["input_shape"] = list(x.shape)
    names = {m: n for n, m in model.named_modules()}
    seen = []
    def pre(m, args):
        t = args[0] if args and isinstance(args[0], torch.Tensor) else None
        seen.append({"name": names.get(m, "?"), "type": type(m).__name__,
                     "line": BUILT_AT.get(m),
                     "input_shape": list(t.shape) if t is not None else None,
                     "layout": describe(m, t) if t is not None else "?",
                     "num_features": getattr(m, "num_features", getattr(m, "num_channels", None)),
                     "normalized_shape": list(getattr(m, "normalized_shape", []) or []) or None,
                     "output_shape": None})
    def post(m, args, result):
        if isinstance(result, torch.Tensor) and seen:
            seen[-1]["output_shape"] = list(result.shape)
    handles = []
    for m in model.modules():
        if is_norm(m):
            handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    try:
        with torch.no_grad():
            model(x)
    except BaseException as exc:
        entry["error"] = one_line(exc)
        if seen and seen[-1]["output_shape"] is None:
            entry["failed_at"] = seen[-1]["name"]
    for h in handles:
        h.remove()
    entry["layers"] = seen
done()
""".replace("MARKER", repr(MARKER))


@dataclass
class TraceResult:
    """What ``--trace`` saw for one file; ``models`` holds one dict per model class."""

    path: str
    models: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def static_view(source: str, path: str, options: AnalysisOptions) -> dict[str, dict[str, dict]]:
    """What the static analysis believes each layer receives: model -> layer path ->
    ``{"rank", "channel_dim", "channels", "kind"}`` (``None`` where it does not know).

    Best effort: an analyzer failure gives an empty view, never an error.
    """
    try:
        from normsuite.analysis.context import build_context

        ctx = build_context(ast.parse(source), source, path, options)
    except Exception:  # the trace must not fail because the static side did
        return {}
    view: dict[str, dict[str, dict]] = {}
    for model in ctx.models:
        sites = view.setdefault(model.name, {})
        for app in model.apps:
            if app.path and app.path not in sites:
                t = app.inp
                cdim = t.cdim if t.cdim is None or t.cdim >= 0 or t.rank is None else t.rank - 1
                sites[app.path] = {
                    "rank": t.rank,
                    "channel_dim": cdim,
                    "channels": t.channels,
                    "kind": t.kind,
                }
    return view


def _describe_static(s: dict[str, Any]) -> str:
    parts = [f"rank {s['rank']}" if s.get("rank") is not None else "rank ?"]
    if s.get("channels") is not None:
        where = f" at dim {s['channel_dim']}" if s.get("channel_dim") is not None else ""
        parts.append(f"{s['channels']} channels{where}")
    return ", ".join(parts)


def _compare_static(name: str, shape: list[int], s: dict[str, Any]) -> str | None:
    """A sentence when the static belief about one layer input disagrees with the run."""
    rank, cdim, channels = s.get("rank"), s.get("channel_dim"), s.get("channels")
    if rank is not None and rank != len(shape):
        return f"{name}: static view {_describe_static(s)}, trace saw {shape}"
    known = cdim is not None and channels is not None and -len(shape) <= cdim < len(shape)
    if known and shape[cdim] != channels:
        return (
            f"{name}: static view {_describe_static(s)}, trace saw {shape} "
            f"(dim {cdim} is {shape[cdim]})"
        )
    return None


def match_site(layer: dict[str, Any], sites: list[NormSite]) -> NormSite | None:
    """The static norm site a traced layer is: same source line and layer type, else the
    same attribute path.

    Matching by path alone misses every layer a loop or comprehension builds after the
    first (``blocks.1.ln1`` ... when the static view has one ``blocks.0.ln1`` site).
    """
    from normsuite.analysis.ir import NORM_KINDS

    line, kind = layer.get("line"), NORM_KINDS.get(layer.get("type") or "")
    if line is not None:
        same_line = [s for s in sites if s.line == line]
        typed = [s for s in same_line if kind is not None and s.kind == kind]
        typed = typed or [s for s in same_line if f"{layer.get('type')}(" in s.code]
        if typed:
            by_name = [s for s in typed if s.name == layer["name"]]
            return (by_name or typed)[0]
    return next((s for s in sites if s.name == layer["name"]), None)


def _differences(
    model: dict[str, Any], static: FileResult | None, view: dict[str, dict] | None = None
) -> list[str]:
    """Where the run disagrees with (or confirms) the static analysis of the same class."""
    if static is None:
        return []
    report = next((m for m in static.models if m.name == model["name"]), None)
    if report is None:
        return ["the static analysis did not find this class as a model"]
    diffs: list[str] = []
    sites = {s.name: s for s in report.norms_found}
    matched: dict[str, NormSite] = {}  # traced layer name -> the static site it is
    for layer in model["layers"]:
        site = match_site(layer, report.norms_found)
        if site is not None:
            matched[layer["name"]] = site
    used = {site.name for site in matched.values()}
    for layer in model["layers"]:
        site = matched.get(layer["name"])
        believed = (view or {}).get(layer["name"])
        if believed is None and site is not None:
            believed = (view or {}).get(site.name)
        if believed is not None:
            layer["static"] = _describe_static(believed)
            if layer["input_shape"] is not None:
                diff = _compare_static(layer["name"], layer["input_shape"], believed)
                if diff:
                    diffs.append(diff)
        if site is None:
            diffs.append(
                f"{layer['name']} ({layer['type']}) ran on {layer['input_shape']} but the "
                "static analysis did not see this norm layer"
            )
            continue
        shape = layer["input_shape"] or []
        if site.num_channels is not None and len(shape) >= 2:
            if layer.get("normalized_shape"):
                actual = shape[-1]
                where = "last dim"
            else:
                actual = shape[1]
                where = "dim 1"
            if actual != site.num_channels:
                diffs.append(
                    f"{layer['name']}: the layer is built for {site.num_channels} channels, "
                    f"the input's {where} is {actual} (shape {shape})"
                )
    if not model.get("error"):
        for name, site in sites.items():
            if name not in used and not model.get("skipped"):
                diffs.append(f"{name} (line {site.line}) was not called in forward()")
    failed = matched.get(model.get("failed_at") or "")
    if failed is not None:
        line = failed.line
        failed = model["failed_at"]
        codes = sorted({f.code for f in static.findings if f.line == line})
        if codes:
            diffs.append(f"forward failed at {failed}: confirms {', '.join(codes)} (line {line})")
        else:
            diffs.append(f"forward failed at {failed} (line {line}); the static view saw no error")
    return diffs


def trace_file(
    path: str,
    *,
    static: FileResult | None = None,
    options: AnalysisOptions | None = None,
    model: str | None = None,
    input_shape: tuple[int, ...] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    python: str = sys.executable,
) -> TraceResult:
    """Import ``path`` in a subprocess, run each model once, return the norm-layer shapes.

    RUNS THE FILE'S CODE. ``static``: the static result of the same file (and ``options``,
    the analysis options it was made with), to list differences from the static view.
    A failing forward pass is a result (``model["error"]``), not an error;
    ``TraceResult.error`` is set only when the file could not be imported or run at all.
    """
    cmd = [python, "-c", _CHILD, path, model or "", json.dumps(list(input_shape or []))]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return TraceResult(path, error=f"the traced run took over {timeout:g} s; stopped")
    except OSError as exc:
        return TraceResult(path, error=f"cannot start {python}: {exc.strerror or exc}")
    payload = None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARKER):
            payload = json.loads(line[len(MARKER) :])
            break
    if payload is None:
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return TraceResult(path, error=f"the traced run died: {last}")
    result = TraceResult(path, models=payload["models"], error=payload["error"])
    view: dict[str, dict[str, dict]] = {}
    if static is not None:
        try:
            view = static_view(read_source(path), path, options or AnalysisOptions())
        except SourceError:
            view = {}
    for entry in result.models:
        entry["differences"] = _differences(entry, static, view.get(entry["name"]))
    return result
