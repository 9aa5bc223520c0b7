"""Extraction: ``ast`` -> IR. Finds the ``nn.Module`` classes of a file and "instantiates"
them statically by evaluating their ``__init__`` with a tiny, side-effect free evaluator.

The evaluator knows constants, arithmetic, lists/tuples/dicts, comprehensions, loops over
known iterables, ``if`` on known conditions, same-file helper functions and methods, layer
constructors (``nn.Conv2d``...), containers, ``functools.partial``, and torchvision/timm
model constructors. Whatever it cannot know becomes ``UNKNOWN``; it never guesses.

>>> src = "import torch.nn as nn\\nclass M(nn.Module):\\n def __init__(self, c=8):\\n"
>>> src += "  super().__init__()\\n  self.bn = nn.BatchNorm2d(c * 2)\\n"
>>> mod = ModuleIndex(ast.parse(src), src)
>>> mod.instantiate(mod.classes["M"]).attrs["bn"].num_channels
16
"""

from __future__ import annotations

import ast
import builtins
import operator
import re
from collections.abc import Iterable
from typing import Any, NamedTuple

from .factories import FACTORY_NAMES, call_factory
from .ir import (
    KNOWN_LAYERS,
    UNKNOWN,
    UNKNOWN_KWARGS,
    BackboneInfo,
    ClassInfo,
    Layer,
    LayerClass,
    ModuleInstance,
)
from .limits import (  # caps hit are reported
    MAX_DEPTH,
    MAX_FOREIGN_STEPS,
    MAX_LOOP,
    MAX_STEPS,
    LimitLog,
)
from .symbols import ExternalFunction, PlainClass, TorchSubclass, relocate
from .torch_subclass import subclass_meaning
from .undecided import DEFAULTED, UndecidedCode, defaulted_names

_MODULE_BASES = {
    "torch.nn.Module",
    "torch.nn.modules.module.Module",
    "nn.Module",
    "Module",
    "lightning.LightningModule",
    "lightning.pytorch.LightningModule",
    "pytorch_lightning.LightningModule",
    "lightning.pytorch.core.LightningModule",
    "pytorch_lightning.core.LightningModule",
    "L.LightningModule",
    "pl.LightningModule",
    "LightningModule",
}
_CONTAINER_BASES = {"Sequential", "ModuleList", "ModuleDict"}
# Libraries whose classes the analyzer knows: a base from them that is not a module or a
# layer (torch.utils.data.Dataset, typing.NamedTuple, abc.ABC) is not an unknown module.
_KNOWN_LIBRARIES = frozenset(
    {
        "torch",
        "nn",
        "torchvision",
        "lightning",
        "pytorch_lightning",
        "pl",
        "L",
        "typing",
        "abc",
        "collections",
        "enum",
        "dataclasses",
        "numpy",
        "np",
        "builtins",
    }
)
_TORCH_NN_PREFIXES = ("torch.nn.", "nn.", "torch.nn.modules.")

_BACKBONE_RE = re.compile(
    r"^(?P<family>resnet|resnext|wide_resnet|regnet|densenet|vgg|convnext|vit|deit|swin|"
    r"mobilenet|efficientnet|mnasnet|shufflenet|squeezenet|alexnet|googlenet|inception)"
    r"(?P<rest>\w*)$"
)
_TRANSFORMER_FAMILIES = {"vit", "deit", "swin"}
_LN_FAMILIES = {"convnext"} | _TRANSFORMER_FAMILIES
_NO_NORM = {"alexnet", "squeezenet"}

_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_CONST_TYPES = (int, float, str, bool, type(None))
_SIMPLE_BUILTINS = {
    "len": len,
    "min": min,
    "max": max,
    "int": int,
    "float": float,
    "abs": abs,
    "round": round,
    "sum": sum,
    "bool": bool,
    "str": str,
}


class BudgetExceeded(Exception):
    """The file needs more evaluation than the budget allows; results stay partial."""


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


def backbone_info(name: str, library: str, kwargs: dict[str, Any]) -> BackboneInfo | None:
    """Known torchvision/timm model functions: family, architecture and norm.

    >>> backbone_info("resnet50", "torchvision", {}).norm
    'bn'
    >>> backbone_info("vgg16", "torchvision", {}).norm
    'none'
    """
    short = name.split("/")[-1].split(".")[0].lower()
    m = _BACKBONE_RE.match(short)
    if not m:
        return None
    family = m.group("family")
    if family == "vgg":
        norm = "bn" if short.endswith("_bn") else "none"
    elif family in _NO_NORM:
        norm = "none"
    elif family in _LN_FAMILIES:
        norm = "ln"
    else:
        norm = "bn"
    norm_layer = kwargs.get("norm_layer")
    if isinstance(norm_layer, LayerClass):
        from .ir import NORM_KINDS

        norm = NORM_KINDS.get(norm_layer.type, "unknown")
    elif norm_layer is not None:
        norm = "unknown"  # a norm_layer the evaluator cannot resolve: no BN rules on it
    weights = kwargs.get("weights", kwargs.get("pretrained"))
    pretrained = weights is not None and weights is not False and weights != "None"
    if weights is UNKNOWN:
        pretrained = True  # weights=ResNet50_Weights.DEFAULT and friends
    arch = "transformer" if family in _TRANSFORMER_FAMILIES else "cnn2d"
    return BackboneInfo(short, library, family, arch, norm, pretrained)


# Star imports followed: modules per file and files deep (YOLOv5's models.common is one
# module one step away; transformers' lazy __init__ chain star-imports every model).
MAX_STAR_MODULES = 8
MAX_STAR_DEPTH = 2


def _buffers_only(body: list[ast.stmt]) -> bool:
    """A loop body that only registers buffers or parameters (Cooijmans' per-time-step
    running statistics): nothing in it builds a layer, however long the loop."""
    return bool(body) and all(
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Call)
        and isinstance(stmt.value.func, ast.Attribute)
        and stmt.value.func.attr in ("register_buffer", "register_parameter")
        for stmt in body
    )


class ModuleIndex(UndecidedCode):
    """Everything the file defines at module level, and the evaluator over it."""

    def __init__(
        self, tree: ast.Module, source: str, *, project: Any = None, label: str | None = None
    ) -> None:
        self.tree = tree
        self.source = source
        # project.Project resolving names imported from other files (None: this file only);
        # label: this file's path in the project when it is read as a dependency
        self.project = project
        self.label = label
        self.torch_subclasses: dict[str, TorchSubclass] = {}  # class GN32(nn.GroupNorm)
        self.lazy: dict[str, ast.stmt] = {}  # module-level assignments not yet evaluated
        self.foreign_steps = 0  # evaluation spent in other files for this one
        self.imports: dict[str, str] = {}  # local name -> dotted origin
        self.star_modules: list[str] = []  # ``from common import *`` (YOLOv5's models)
        self._star_names: dict[str, str | None] = {}
        self._class_attrs: dict[tuple[int, str], Any] = {}  # see _class_attribute
        self.functions: dict[str, ast.FunctionDef] = {}
        self.class_nodes: dict[str, ast.ClassDef] = {}
        self.classes: dict[str, ClassInfo] = {}  # nn.Module subclasses only
        self.env: dict[str, Any] = {}  # module-level constants and objects
        self.steps = 0
        self._cache: dict[tuple[str, str], ModuleInstance] = {}
        self._depth = 0
        self._running: list[int] = []  # the functions being executed, innermost last
        self._lines: list[str] | None = None
        # (instance id, abstract input) -> traced result; shared by all models of the file
        # so a block used by many models is traced once per input (see shapes.FlowTracer).
        self.flow_cache: dict[tuple[int, Any], Any] = {}
        self.memo: dict[Any, Any] = {}  # other per-file caches (context.py)
        self.exhausted = False  # the evaluation budget ran out during an instantiation
        self._standalone = False  # the next __init__ bound is a model's, called by nobody
        self._rest: list[ast.stmt] = []  # statements after the if being run (_exec_body)
        self._alt: list[Layer] | None = None  # layers a skipped path would return (_shadow)
        self._fed: tuple[ast.Call, frozenset[str], int] | None = None  # see _call_function
        self.limits = LimitLog()  # every cap hit, with its line: never a silent limit
        self._node: ast.AST | None = None  # the statement/expression being evaluated
        self._bare_call: ast.Call | None = None  # the call of the running ``f(...)`` statement
        self._collect()

    def segment(self, node: ast.expr, limit: int = 200) -> str:
        """Source text of ``node`` on one line (``ast.get_source_segment`` re-splits the whole
        file on every call, which made big files quadratic)."""
        if self._lines is None:
            self._lines = self.source.splitlines()
        end = node.end_lineno or node.lineno
        rows = self._lines[node.lineno - 1 : end]
        if not rows:
            return ""
        if len(rows) == 1:
            text = rows[0].encode()[node.col_offset : node.end_col_offset].decode(errors="replace")
        else:
            first = rows[0].encode()[node.col_offset :].decode(errors="replace")
            last = rows[-1].encode()[: node.end_col_offset].decode(errors="replace")
            text = " ".join([first, *rows[1:-1], last])
            text = " ".join(text.split()).replace("( ", "(").replace(" )", ")")
        return text[:limit]

    # ------------------------------------------------------------------ module level
    def _collect(self) -> None:
        for node in _statements(self.tree.body):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.imports[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        self.imports[top] = top
            elif isinstance(node, ast.ImportFrom) and (node.module or node.level):
                # relative imports keep their dots (".base.Backbone"): project.py reads them
                module = "." * node.level + (node.module or "")
                sep = "" if module.endswith(".") else "."
                for alias in node.names:
                    if alias.name == "*":
                        self.star_modules.append(module)
                        continue
                    self.imports[alias.asname or alias.name] = f"{module}{sep}{alias.name}"
        for node in self.tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions[node.name] = node  # type: ignore[assignment]
            elif isinstance(node, ast.ClassDef):
                self.class_nodes[node.name] = node
        for name in self.class_nodes:
            self._class_info(name, set())
        for node in self.tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                if self.label is not None:  # a dependency: evaluate a name when it is used
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for t in targets:
                        if isinstance(t, ast.Name):
                            self.lazy[t.id] = node
                    continue
                try:
                    self._exec_stmt(node, self.env, None)
                except (BudgetExceeded, _Return):
                    break
                except Exception:
                    continue

    def materialize(self, name: str) -> Any:
        """A dependency's module-level name, evaluated on first use (a timm model file's
        ``default_cfgs = {...}`` is never needed by the files that import its blocks)."""
        stmt = self.lazy.pop(name)
        try:
            self._exec_stmt(stmt, self.env, None)
        except (BudgetExceeded, RecursionError):
            raise
        except Exception:
            return UNKNOWN
        return self.env.get(name, UNKNOWN)

    def qualname(self, node: ast.AST) -> str | None:
        """Dotted name of ``node`` with import aliases resolved (``nn.Conv2d`` -> torch.nn...)."""
        if isinstance(node, ast.Name):
            found = self.imports.get(node.id)
            if found is None and self.star_modules:
                found = self.star_origin(node.id)
            return found or node.id
        if isinstance(node, ast.Attribute):
            base = self.qualname(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def star_origin(self, name: str, depth: int = 0) -> str | None:
        """``module.name`` for a name this file takes from ``from module import *``: a torch
        layer of ``torch.nn``, or a name a project module defines or re-exports. None for
        the file's own names and names no star module has, and past the star budget: a
        package facade that star-imports hundreds of modules (transformers' ``__init__``
        chain) is not searched."""
        if name in self._star_names:
            return self._star_names[name]
        if depth > MAX_STAR_DEPTH or len(self.star_modules) > MAX_STAR_MODULES:
            return None
        self._star_names[name] = None  # a cycle of star imports ends here
        found = None
        if not self._defines(name):
            for module in self.star_modules:
                sep = "" if module.endswith(".") else "."
                candidate = f"{module}{sep}{name}"
                if module.split(".")[0] == "torch":
                    if layer_type_of(candidate) is not None:
                        found = candidate
                        break
                elif self.project is not None and self.project.exports(module, name, depth):
                    # an import the module makes (``nn`` of ``import torch.nn as nn``) is
                    # what it names, not a name of that module
                    found = self.project.import_alias(module, name) or candidate
                    break
        self._star_names[name] = found
        return found

    def _defines(self, name: str) -> bool:
        """A name bound at the top of this file (not by a star import)."""
        return (
            name in self.imports
            or name in self.class_nodes
            or name in self.functions
            or name in self.lazy
            or name in self.env
            or any(
                isinstance(t, ast.Name) and t.id == name
                for node in self.tree.body
                if isinstance(node, ast.Assign)
                for t in node.targets
            )
        )

    def _class_info(self, name: str, seen: set[str]) -> ClassInfo | None:
        if name in self.classes:
            return self.classes[name]
        node = self.class_nodes.get(name)
        if node is None or name in seen:
            return None
        seen.add(name)
        bases = [q for q in (self.qualname(b) for b in node.bases) if q]
        parent = None
        is_module = False
        lightning = False
        base_type = None
        unresolved: list[str] = []
        for base in bases:
            last = base.split(".")[-1]
            if base in self.class_nodes and base != name:
                info = self._class_info(base, seen)
                if info is None and base in self.torch_subclasses:
                    self._torch_subclass(name, self.torch_subclasses[base].type)
                if info is not None:
                    parent, is_module = info, True
                    lightning = lightning or info.lightning
                    base_type = base_type or info.base_type
                elif base not in self.torch_subclasses:
                    # a plain base of this file over a third-party one (mmpose's BaseHead
                    # over mmengine's BaseModule): judged by what __init__ builds
                    unresolved += self.third_party_bases(base, {name})
            elif layer_type_of(base) not in (None, *_CONTAINER_BASES):
                self._torch_subclass(name, layer_type_of(base))  # type: ignore[arg-type]
            elif base in _MODULE_BASES or (
                last in ("Module", "LightningModule") and _is_torchish(base)
            ):
                is_module = True
                lightning = lightning or last == "LightningModule"
            elif last in _CONTAINER_BASES and _is_torchish(base):
                is_module, base_type = True, last
            elif self.project is not None and (found := self.project.lookup(base, self)):
                if isinstance(found, ClassInfo):  # defined in another file of the project
                    parent, is_module = found, True
                    lightning = lightning or found.lightning
                    base_type = base_type or found.base_type
                elif isinstance(found, (TorchSubclass, LayerClass)):
                    self._torch_subclass(name, found.type)
                elif isinstance(found, PlainClass):
                    unresolved += found.home.third_party_bases(found.node.name, {name})
                else:
                    unresolved.append(base)
            elif "." in base and base.split(".")[0] not in _KNOWN_LIBRARIES:
                unresolved.append(base)  # third-party: judged by what __init__ builds
        if name in self.torch_subclasses:
            return None  # a layer, not a model: calls build the torch parent
        if not is_module and not (unresolved and _builds_layers(node, self)):
            return None  # a third-party base whose subclass builds nn layers is a module
        methods = {
            n.name: n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
        info = ClassInfo(name, node, bases, methods, parent, lightning, base_type)  # type: ignore[arg-type]
        info.home = self
        info.unresolved_bases = unresolved
        self.classes[name] = info
        return info

    def third_party_bases(self, name: str, seen: set[str], depth: int = 0) -> list[str]:
        """The third-party classes (``mmengine.model.BaseModule``) at the root of the plain
        class ``name``'s bases, through this file and the project (bounded)."""
        node = self.class_nodes.get(name)
        if node is None or name in seen or depth > 8:
            return []
        seen = seen | {name}
        out: list[str] = []
        for base in (q for q in (self.qualname(b) for b in node.bases) if q):
            if base in self.class_nodes:
                out += self.third_party_bases(base, seen, depth + 1)
            elif "." in base and base.split(".")[0] not in _KNOWN_LIBRARIES:
                found = self.project.lookup(base, self) if self.project is not None else None
                if isinstance(found, PlainClass):
                    out += found.home.third_party_bases(found.node.name, seen, depth + 1)
                elif found is None or found is UNKNOWN:
                    out.append(base)
        return out

    def _torch_subclass(self, name: str, type_: str) -> None:
        node = self.class_nodes[name]
        if _moves_axes(node) and type_ not in ("LayerNorm", "RMSNorm"):
            # forward() permutes around the parent: the parent's shape meaning is gone, so
            # the class stays opaque (silent rather than wrong)
            return
        # A LayerNorm/RMSNorm subclass that moves the channels last (SDCascadeLayerNorm,
        # SegFormer's LayerNorm) normalizes channels: a channel LN (subclass_meaning).
        self.torch_subclasses[name] = TorchSubclass(subclass_meaning(type_, node), node, self)

    # ------------------------------------------------------------------ instantiation
    def instantiate(
        self, cls: ClassInfo, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> ModuleInstance:
        """Evaluate ``cls.__init__(*args, **kwargs)`` statically (cached per arguments)."""
        kwargs = kwargs or {}
        if cls.home is not None and cls.home is not self:  # defined in another file
            run = lambda: cls.home.instantiate(cls, args, kwargs)  # noqa: E731
            return self._in_home(cls.home, run, ModuleInstance(cls))
        key = (cls.name, repr((args, sorted(kwargs.items(), key=lambda kv: kv[0]))))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        inst = ModuleInstance(cls)
        self._cache[key] = inst  # before running: a recursive class sees itself, not a loop
        init = cls.method("__init__")
        if init is None and cls.base_type == "Sequential" and args:
            # class TimestepEmbedSequential(nn.Sequential, TimestepBlock) with only a
            # forward of its own (guided-diffusion): built as nn.Sequential(*layers)
            items = args[0].values() if len(args) == 1 and isinstance(args[0], dict) else args
            inst.seq_children = [a for a in items if isinstance(a, Layer)]
        if init is not None and self._depth < MAX_DEPTH:
            owner = _owner_of(cls, "__init__")
            if self._depth > 0:
                self._call_function(init, (inst, *args), kwargs, inst, owner)
                return inst
            # Built with no arguments (a model analyzed alone): its ``**kwargs`` hold
            # whatever its callers pass (``bias=False``...), not nothing.
            self._standalone = not args and not kwargs
            try:
                self._call_function(init, (inst, *args), kwargs, inst, owner)
            except BudgetExceeded:
                # Keep what __init__ assigned before the budget ran out (a partial model
                # beats none); the caller sees ``exhausted`` and stops after this class.
                self.exhausted = True
                self._depth = 0
        return inst

    def _call_function(
        self,
        fn: ast.FunctionDef,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        inst: ModuleInstance | None,
        owner: ClassInfo | None = None,
    ) -> Any:
        fed, self._fed = self._fed, None  # consumed here, whatever happens next
        if self._depth >= MAX_DEPTH:
            self.cap_hit("depth")
            return UNKNOWN
        if owner is not None and owner.home is not None and owner.home is not self:
            home = owner.home  # a method of a class of another file: run it there
            return self._in_home(home, lambda: home._call_function(fn, args, kwargs, inst, owner))
        if id(fn) in self._running and any(a is UNKNOWN for a in (*args, *kwargs.values())):
            # fastai's init_cnn(m): ``for l in m.children(): init_cnn(l)``, a recursion
            # over what cannot be read: it would only run to the depth cap
            return UNKNOWN
        env = self._bind(fn, args, kwargs)
        env["__class__"] = owner
        if fed is not None:
            # A helper called with the caller's defaulted parameters (``self._make_head(
            # hidden, out)``): its ifs on them are read both ways too.
            call, defaulted, offset = fed
            params = [p.arg for p in (*fn.args.posonlyargs, *fn.args.args)]
            names = {
                params[i + offset]
                for i, a in enumerate(call.args)
                if isinstance(a, ast.Name) and a.id in defaulted and i + offset < len(params)
            }
            names |= {
                k.arg
                for k in call.keywords
                if k.arg and isinstance(k.value, ast.Name) and k.value.id in defaulted
            }
            if names:
                env[DEFAULTED] = frozenset(env.get(DEFAULTED, frozenset()) | names)
        self._depth += 1
        self._running.append(id(fn))
        try:
            self._exec_body(fn.body, env, inst)
        except _Return as ret:
            return ret.value
        finally:
            self._depth -= 1
            self._running.pop()
        return None

    def _external_call(
        self, callee: ExternalFunction, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """A helper function of another file, run there once per distinct arguments (timm's
        ``create_conv2d`` is called by every block with the same few arguments)."""
        home = callee.home
        if not _function_builds(callee.node, home, 0):
            return UNKNOWN  # to_2tuple, make_divisible...: as for any unknown helper
        try:
            key = ("call", id(callee.node), repr((args, sorted(kwargs.items()))))
        except Exception:
            key = None
        if key is not None and key in home.memo:
            return home.memo[key]
        out = self._in_home(home, lambda: home._call_function(callee.node, args, kwargs, None))
        if key is not None:
            home.memo[key] = out
        return out

    def _in_home(self, home: ModuleIndex, run: Any, fallback: Any = UNKNOWN) -> Any:
        """Run ``run()`` in another file's index, sharing the call depth and the budget.
        Work done in other files has its own, smaller budget per analyzed file (results are
        cached in their file, so the next file that uses them gets them for free); past it,
        ``fallback`` (an opaque block, as without the project index)."""
        if self.foreign_steps > MAX_FOREIGN_STEPS:
            self.cap_hit("foreign")  # never silent: said once per line, as a notice
            return fallback
        depth, start = home._depth, self.steps
        home._depth, home.steps = max(home._depth, self._depth + 1), self.steps
        try:
            return run()
        finally:
            home._depth = depth
            self.steps = max(self.steps, home.steps)
            self.foreign_steps += self.steps - start
            if self.steps > MAX_STEPS:
                raise BudgetExceeded

    def _bind(self, fn: ast.FunctionDef, args: tuple[Any, ...], kwargs: dict[str, Any]):
        a = fn.args
        params = [*a.posonlyargs, *a.args]
        env: dict[str, Any] = {}
        defaults = [self.eval(d, self.env, None) for d in a.defaults]
        first_default = len(params) - len(defaults)
        for i, p in enumerate(params):
            if i < len(args):
                env[p.arg] = args[i]
            elif p.arg in kwargs:
                env[p.arg] = kwargs[p.arg]
            elif i >= first_default:
                env[p.arg] = defaults[i - first_default]
            else:
                env[p.arg] = UNKNOWN
        for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=False):
            if p.arg in kwargs:
                env[p.arg] = kwargs[p.arg]
            else:
                env[p.arg] = self.eval(d, self.env, None) if d is not None else UNKNOWN
        if a.vararg:
            env[a.vararg.arg] = tuple(args[len(params) :]) if len(args) > len(params) else ()
        if a.kwarg:
            names = {p.arg for p in params} | {p.arg for p in a.kwonlyargs}
            env[a.kwarg.arg] = {k: v for k, v in kwargs.items() if k not in names}
            if self._standalone and fn.name == "__init__":
                env[a.kwarg.arg] = {UNKNOWN_KWARGS: UNKNOWN}
        self._standalone = False
        if fn.name == "__init__" and self._depth == 0:
            # Parameters of the analyzed model left at their default: an ``if`` they decide
            # is read both ways (the analyzer made this call up; the configuration a user
            # trains may pass others). A block its parent builds (``BasicBlock(64, 64)``) is
            # configured by that call: its defaults are what runs (callers' own defaulted
            # names still reach it through ``_fed``).
            given = {p.arg for p in params[: len(args)]} | set(kwargs)
            env[DEFAULTED] = frozenset(
                p.arg
                for p in [*params, *a.kwonlyargs]
                if p.arg not in given and p.arg != "self" and env.get(p.arg) is not UNKNOWN
            )
        return env

    # ------------------------------------------------------------------ statements
    def _exec_body(self, body: list[ast.stmt], env: dict[str, Any], inst: Any) -> None:
        for i, stmt in enumerate(body):
            if isinstance(stmt, ast.If):
                self._rest = body[i + 1 :]  # what runs when the if does not return
            self._exec_stmt(stmt, env, inst)

    def _tick(self, node: ast.AST | None = None) -> None:
        self.steps += 1
        if node is not None:
            self._node = node  # where a cap is hit (just a store: this runs per node)
        if self.steps > MAX_STEPS:
            self.cap_hit("steps")
            raise BudgetExceeded

    def _binop(self, op: type, left: Any, right: Any) -> Any:
        """:func:`_binop`, recording a ``[x] * n`` refused for ``n`` over :data:`MAX_LOOP`."""
        value = _binop(op, left, right)
        if (
            value is UNKNOWN
            and op is ast.Mult
            and isinstance(left, list)
            and isinstance(right, int)
            and right > MAX_LOOP
        ):
            self.cap_hit("loop")
        return value

    def cap_hit(self, cap: str) -> None:
        """Record that a cap ("steps", "depth", "loop") cut the evaluation at this line."""
        self.limits.hit(cap, getattr(self._node, "lineno", None))

    def _exec_stmt(self, stmt: ast.stmt, env: dict[str, Any], inst: Any) -> None:
        self._tick(stmt)
        if isinstance(stmt, ast.Assign):
            attrs = [
                t.attr
                for t in stmt.targets
                if isinstance(t, ast.Attribute)
                and isinstance(t.value, ast.Name)
                and t.value.id == "self"
            ]
            saved, self._alt = self._alt, ([] if attrs else self._alt)
            try:
                value = self.eval(stmt.value, env, inst)
            finally:
                alts, self._alt = self._alt, saved
            if attrs and alts and isinstance(inst, ModuleInstance):
                inst.alternates.extend((a, layer) for a in attrs for layer in alts)
            for target in stmt.targets:
                self._assign(target, value, env, inst)
            if isinstance(stmt.value, ast.IfExp):
                self._other_side(stmt.value, stmt.targets, value, env, inst)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            self._assign(stmt.target, self.eval(stmt.value, env, inst), env, inst)
        elif isinstance(stmt, ast.AugAssign):
            cur = self.eval(stmt.target, env, inst)
            rhs = self.eval(stmt.value, env, inst)
            self._assign(stmt.target, self._binop(type(stmt.op), cur, rhs), env, inst)
        elif isinstance(stmt, ast.Expr):
            if isinstance(stmt.value, ast.Call):
                self._bare_call = stmt.value  # its result is dropped (see _method_call)
                self.eval(stmt.value, env, inst)
        elif isinstance(stmt, ast.Return):
            raise _Return(self.eval(stmt.value, env, inst) if stmt.value else None)
        elif isinstance(stmt, ast.If):
            rest, self._rest = self._rest, []
            test = self.eval(stmt.test, env, inst)
            defaulted = defaulted_names(stmt.test, env)
            if test is UNKNOWN or defaulted:
                # Unknown condition, or one decided only by a parameter's default (the
                # configuration a caller trains may take the other branch): both branches.
                self._exec_branches(stmt, env, inst, test, defaulted, rest)
            elif test:
                self._exec_body(stmt.body, env, inst)
            else:
                self._exec_body(stmt.orelse, env, inst)
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            if _buffers_only(stmt.body):
                return  # for i in range(784): self.register_buffer(...): no layer to see
            items = self._iterate(self.eval(stmt.iter, env, inst))
            if items is None:
                self._exec_unknown_loop(stmt, env, inst)
                return
            for item in items:
                self._assign(stmt.target, item, env, inst)
                self._exec_body(stmt.body, env, inst)
        elif isinstance(stmt, ast.While):
            # while ch < max_ch: (DCGAN_D of the WGAN repo): how often is not known, what
            # the body builds is seen, as for a loop over an unknown iterable
            self._exec_unknown_loop(stmt, env, inst)
        elif isinstance(stmt, (ast.With, ast.AsyncWith, ast.Try)):
            self._exec_body(stmt.body, env, inst)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            env[stmt.name] = _LocalFunction(stmt)  # type: ignore[arg-type]

    def _assign(self, target: ast.expr, value: Any, env: dict[str, Any], inst: Any) -> None:
        if isinstance(target, ast.Name):
            env[target.id] = value
        elif isinstance(target, ast.Attribute):
            is_self = isinstance(target.value, ast.Name) and target.value.id == "self"
            if is_self and isinstance(inst, ModuleInstance):
                inst.attrs.pop(target.attr, None)  # keep assignment order of the last set
                inst.attrs[target.attr] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            values = value if isinstance(value, (tuple, list)) else None
            if values is not None and len(values) != len(target.elts):
                values = None
            for i, elt in enumerate(target.elts):
                self._assign(elt, values[i] if values is not None else UNKNOWN, env, inst)
        elif isinstance(target, ast.Subscript):
            container = self.eval(target.value, env, inst)
            key = self.eval(target.slice, env, inst)
            if isinstance(container, dict) and _hashable(key):
                container[key] = value
            elif (
                isinstance(container, Layer)
                and container.type == "ModuleDict"
                and isinstance(value, Layer)
            ):
                if not isinstance(key, str):
                    # self.stages[name] = ... in a loop over an unknown dict: one entry
                    # stands for them, named by its key expression (``stages.[name]``)
                    key = f"[{ast.unparse(target.slice)}]"
                if key in container.child_names:  # the same key assigned again: replaced
                    container.children[container.child_names.index(key)] = value
                else:
                    container.children.append(value)
                    container.child_names.append(key)

    def _iterate(self, value: Any) -> list[Any] | None:
        if isinstance(value, (list, tuple, range, str, dict)):
            items = list(value)
        elif isinstance(value, Layer) and value.type in ("ModuleList", "Sequential"):
            items = list(value.children)
        else:
            return None
        if len(items) > MAX_LOOP:
            self.cap_hit("loop")
            return None
        return items

    # ------------------------------------------------------------------ expressions
    def eval(self, node: ast.expr | None, env: dict[str, Any], inst: Any) -> Any:
        """Evaluate ``node``; anything not statically known is ``UNKNOWN``."""
        if node is None:
            return None
        self._tick(node)
        try:
            return self._eval(node, env, inst)
        except (BudgetExceeded, _Return, RecursionError):
            raise
        except Exception:
            return UNKNOWN

    def _class_attribute(self, cls: ClassInfo, attr: str) -> Any:
        """``self.norm_cls`` read from a class-level ``norm_cls = nn.BatchNorm2d`` (or
        ``expansion = 4``) of the class or a base, evaluated in its file: a layer class or
        a constant; anything else (a module instance shared by every object) is unknown.
        Asked on every read of an attribute ``__init__`` did not set: kept per class."""
        key = (id(cls.node), attr)
        if key not in self._class_attrs:
            self._class_attrs[key] = self._read_class_attribute(cls, attr)
        return self._class_attrs[key]

    def _read_class_attribute(self, cls: ClassInfo, attr: str) -> Any:
        seen: ClassInfo | None = cls
        for _ in range(16):
            if seen is None:
                return UNKNOWN
            for stmt in seen.node.body:
                target = stmt.target if isinstance(stmt, ast.AnnAssign) else None
                if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                    target = stmt.targets[0]
                if isinstance(target, ast.Name) and target.id == attr:
                    value = getattr(stmt, "value", None)
                    if value is None or (isinstance(value, ast.Call) and not _is_partial(value)):
                        return UNKNOWN
                    home = seen.home if seen.home is not None else self
                    found = home.eval(value, {}, None)
                    static = isinstance(found, (LayerClass, int, float, str, bool, tuple))
                    return found if static else UNKNOWN
            seen = seen.parent
        return UNKNOWN

    def _eval(self, node: ast.expr, env: dict[str, Any], inst: Any) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            if node.id in self.env:
                return self.env[node.id]
            if node.id in self.lazy:
                return self.materialize(node.id)
            return self._global(node)
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                if isinstance(inst, ModuleInstance):
                    if node.attr in inst.attrs:
                        return inst.attrs[node.attr]
                    return self._class_attribute(inst.cls, node.attr)
                return UNKNOWN
            base = self.eval(node.value, env, inst)
            if isinstance(base, Layer) and base.instance is not None:
                return base.instance.attrs.get(node.attr, UNKNOWN)
            if base is UNKNOWN or base is None:
                return self._global(node)
            return UNKNOWN
        if isinstance(node, ast.BinOp):
            return self._binop(
                type(node.op), self.eval(node.left, env, inst), self.eval(node.right, env, inst)
            )
        if isinstance(node, ast.UnaryOp):
            v = self.eval(node.operand, env, inst)
            if v is UNKNOWN:
                return UNKNOWN
            if isinstance(node.op, ast.USub) and isinstance(v, (int, float)):
                return -v
            if isinstance(node.op, ast.Not):
                return not v
            return UNKNOWN
        if isinstance(node, (ast.List, ast.Tuple)):
            out: list[Any] = []
            for elt in node.elts:
                if isinstance(elt, ast.Starred):
                    inner = self._iterate(self.eval(elt.value, env, inst))
                    if inner is None:
                        return UNKNOWN
                    out.extend(inner)
                else:
                    out.append(self.eval(elt, env, inst))
            return out if isinstance(node, ast.List) else tuple(out)
        if isinstance(node, ast.Dict):
            d: dict[Any, Any] = {}
            for k, v in zip(node.keys, node.values, strict=False):
                if k is None:
                    inner = self.eval(v, env, inst)
                    if isinstance(inner, dict):
                        d.update(inner)
                    continue
                key = self.eval(k, env, inst)
                if _hashable(key):
                    d[key] = self.eval(v, env, inst)
            return d
        if isinstance(node, ast.Compare):
            left = self.eval(node.left, env, inst)
            for op, comp in zip(node.ops, node.comparators, strict=False):
                right = self.eval(comp, env, inst)
                if left is UNKNOWN or right is UNKNOWN or type(op) not in _CMPOPS:
                    return UNKNOWN
                if not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.BoolOp):
            values = [self.eval(v, env, inst) for v in node.values]
            if any(v is UNKNOWN for v in values):
                return UNKNOWN
            if isinstance(node.op, ast.And):
                return all(values)
            return next((v for v in values if v), values[-1])
        if isinstance(node, ast.IfExp):
            test = self.eval(node.test, env, inst)
            if test is UNKNOWN:
                return UNKNOWN  # an attribute's layers on both sides: see _other_side
            return self.eval(node.body if test else node.orelse, env, inst)
        if isinstance(node, ast.Subscript):
            base = self.eval(node.value, env, inst)
            key = self.eval(node.slice, env, inst)
            if key is UNKNOWN or base is UNKNOWN:
                return UNKNOWN
            if isinstance(base, Layer):
                if isinstance(key, int) and base.children:
                    return base.children[key]
                if isinstance(key, str) and key in base.child_names:
                    return base.children[base.child_names.index(key)]
                return UNKNOWN
            if isinstance(base, (list, tuple, dict, str)):
                return base[key]
            return UNKNOWN
        if isinstance(node, ast.Slice):
            parts = [self.eval(p, env, inst) for p in (node.lower, node.upper, node.step)]
            return UNKNOWN if any(p is UNKNOWN for p in parts) else slice(*parts)
        if isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
            items = self._comprehension(node.generators, [node.elt], env, inst)
            if items is None:
                return self._unknown_comprehension(node, env, inst)
            return [i[0] for i in items]
        if isinstance(node, ast.DictComp):
            items = self._comprehension(node.generators, [node.key, node.value], env, inst)
            if items is None:
                return UNKNOWN
            return {k: v for k, v in items if _hashable(k)}
        if isinstance(node, ast.JoinedStr):
            return UNKNOWN
        if isinstance(node, ast.Call):
            return self._call(node, env, inst)
        if isinstance(node, ast.Lambda):
            return _LocalLambda(node)
        return UNKNOWN

    def _comprehension(
        self, gens: list[ast.comprehension], elts: list[ast.expr], env: dict[str, Any], inst: Any
    ) -> list[list[Any]] | None:
        results: list[list[Any]] = []

        def run(i: int, scope: dict[str, Any]) -> bool:
            if i == len(gens):
                results.append([self.eval(e, scope, inst) for e in elts])
                if len(results) > MAX_LOOP:
                    self.cap_hit("loop")
                    return False
                return True
            items = self._iterate(self.eval(gens[i].iter, scope, inst))
            if items is None:
                return False
            for item in items:
                inner = dict(scope)
                self._assign(gens[i].target, item, inner, inst)
                conds = [self.eval(c, inner, inst) for c in gens[i].ifs]
                if any(c is UNKNOWN for c in conds):
                    return False
                if all(conds) and not run(i + 1, inner):
                    return False
            return True

        return results if run(0, dict(env)) else None

    def _global(self, node: ast.expr) -> Any:
        """A name that is not a local: a layer class, a file class/function, or unknown."""
        qual = self.qualname(node)
        if qual is None:
            return UNKNOWN
        # The file's own classes win over torch names: ConvNeXt's repository defines its
        # own channels-first ``class LayerNorm(nn.Module)``.
        if qual in self.classes:
            return self.classes[qual]
        if qual in self.functions:
            return self.functions[qual]
        if qual in self.torch_subclasses:
            return self.torch_subclasses[qual].value()
        if qual in self.class_nodes:
            # A non-module class of the file: a thin subclass of a torch norm is that norm.
            base = norm_subclass(self, self.class_nodes[qual])
            return LayerClass(base) if base is not None else UNKNOWN
        layer_type = layer_type_of(qual)
        if layer_type is not None:
            return LayerClass(layer_type)
        if self.project is not None and not _special_call(qual):
            return self.project.lookup(qual, self)
        return UNKNOWN

    # ------------------------------------------------------------------ calls
    def _call(self, node: ast.Call, env: dict[str, Any], inst: Any) -> Any:
        func = node.func
        # Methods on values: list.append, self.add_module, super().__init__...
        if isinstance(func, ast.Attribute):
            handled, value = self._method_call(node, func, env, inst)
            if handled:
                return value
        callee = self.eval(func, env, inst)
        qual = self.qualname(func) or ""
        if not _callable(callee, qual):
            return UNKNOWN  # arguments are expressions: skipping them changes nothing
        args, kwargs = self._args(node, env, inst)
        if args is None:
            return UNKNOWN
        if isinstance(callee, (ast.FunctionDef, _LocalFunction, _BoundMethod)):
            offset = 1 if isinstance(callee, _BoundMethod) else 0
            self._fed = (node, env.get(DEFAULTED) or frozenset(), offset)
        return self._apply(callee, qual, args, kwargs, node, inst)

    def _args(self, node: ast.Call, env: dict[str, Any], inst: Any):
        args: list[Any] = []
        for a in node.args:
            if isinstance(a, ast.Starred):
                inner = self._iterate(self.eval(a.value, env, inst))
                if inner is None:
                    return None, None
                args.extend(inner)
            else:
                args.append(self.eval(a, env, inst))
        kwargs: dict[str, Any] = {}
        for kw in node.keywords:
            if kw.arg is None:
                inner = self.eval(kw.value, env, inst)
                if isinstance(inner, dict):
                    kwargs.update({str(k): v for k, v in inner.items()})
                else:
                    kwargs[UNKNOWN_KWARGS] = UNKNOWN  # **kwargs may hold any parameter
            else:
                kwargs[kw.arg] = self.eval(kw.value, env, inst)
        return tuple(args), kwargs

    def _apply(
        self,
        callee: Any,
        qual: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        node: ast.Call,
        inst: Any,
    ) -> Any:
        if isinstance(callee, LayerClass):
            merged = {**dict(callee.kwargs), **kwargs}
            return self._make_layer(callee.type, (*callee.args, *args), merged, node)
        if isinstance(callee, _Partial):
            merged = {**callee.kwargs, **kwargs}
            return self._apply(callee.callee, "", (*callee.args, *args), merged, node, inst)
        if isinstance(callee, ClassInfo):
            if self._depth >= MAX_DEPTH:
                self.cap_hit("depth")
                return self._layer("Custom", node)
            layer = self._layer("Custom", node, args, kwargs)
            layer.instance = self.instantiate(callee, args, kwargs)
            return layer
        if isinstance(callee, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return self._call_function(callee, args, kwargs, None)  # type: ignore[arg-type]
        if isinstance(callee, _LocalFunction):
            return self._call_function(callee.node, args, kwargs, inst)
        if isinstance(callee, _LocalLambda):  # norm_layer=lambda c: nn.GroupNorm(16, c)
            params = [a.arg for a in callee.node.args.args]
            if kwargs or len(args) != len(params):
                return UNKNOWN
            return self.eval(callee.node.body, dict(zip(params, args, strict=True)), inst)
        if isinstance(callee, TorchSubclass):
            type_ = callee.type_for(args, kwargs)
            args, kwargs = callee.parent_args(args, kwargs)
            if type_ == "Custom":  # which dim it normalizes is not known here: opaque
                return self._opaque(node)
            return self._make_layer(type_, args, kwargs, node)
        if isinstance(callee, ExternalFunction):
            out = self._external_call(callee, args, kwargs)
            return relocate(out, self.label, self.segment(node), node)
        if isinstance(callee, _BoundMethod):
            owner = _owner_of(callee.inst.cls, callee.node.name)
            return self._call_function(
                callee.node, (callee.inst, *args), kwargs, callee.inst, owner
            )
        last = qual.split(".")[-1]
        if last == "partial" and args and isinstance(args[0], LayerClass):
            base = args[0]
            return LayerClass(
                base.type, (*base.args, *args[1:]), (*base.kwargs, *sorted(kwargs.items()))
            )
        if last == "partial" and args and isinstance(args[0], (ClassInfo, ast.FunctionDef)):
            return _Partial(args[0], args[1:], kwargs)
        if last in FACTORY_NAMES:  # build_norm_layer, get_norm, spectral_norm, ...
            make = lambda t, a, k: self._make_layer(t, a, k, node)  # noqa: E731
            return call_factory(last, args, kwargs, make, self.memo)
        if "norm_layer" in kwargs:
            kwargs = {**kwargs, "norm_layer": self._norm_layer(kwargs["norm_layer"])}
        if last == "create_model" and args and isinstance(args[0], str):
            info = backbone_info(args[0], "timm", kwargs)
            if info is not None:
                return self._layer("Backbone", node, args, kwargs, backbone=info)
        if _is_model_function(qual):
            info = backbone_info(last, qual.split(".")[0], kwargs)
            if info is not None:
                return self._layer("Backbone", node, args, kwargs, backbone=info)
        value = _builtin(last if "." not in qual else qual, args, kwargs)
        if value is UNKNOWN and _over_loop_cap(last, args):
            self.cap_hit("loop")
        return value

    def _norm_layer(self, value: Any) -> Any:
        """``norm_layer=lambda c: nn.GroupNorm(32, c)``: the layer class the lambda builds."""
        if isinstance(value, _LocalLambda) and isinstance(value.node.body, ast.Call):
            callee = self.eval(value.node.body.func, {}, None)
            if isinstance(callee, LayerClass):
                return LayerClass(callee.type)
        return value

    def _method_call(
        self, node: ast.Call, func: ast.Attribute, env: dict[str, Any], inst: Any
    ) -> tuple[bool, Any]:
        attr = func.attr
        owner = func.value
        # super().__init__(...) / Parent.__init__(self, ...): run the parent's __init__.
        if attr == "__init__":
            parent = self._super_target(owner, env)
            args, kwargs = self._args(node, env, inst)
            if isinstance(owner, ast.Name) and args:
                args = args[1:]  # Parent.__init__(self, ...)
            if parent is not None and isinstance(inst, ModuleInstance) and args is not None:
                init = parent.method("__init__")
                if init is not None:
                    self._call_function(
                        init, (inst, *args), kwargs or {}, inst, _owner_of(parent, "__init__")
                    )
            elif isinstance(inst, ModuleInstance) and args and inst.cls.base_type == "Sequential":
                # super().__init__(OrderedDict(conv=..., norm=...)): the named children
                items = args[0].values() if len(args) == 1 and isinstance(args[0], dict) else args
                inst.seq_children = [a for a in items if isinstance(a, Layer)]
            return True, None
        if isinstance(owner, ast.Name) and owner.id == "self" and isinstance(inst, ModuleInstance):
            if attr in ("add_module", "register_module"):
                args, _ = self._args(node, env, inst)
                if args and len(args) == 2 and isinstance(args[1], Layer):
                    name = args[0] if isinstance(args[0], str) else _unknown_name(node)
                    inst.attrs[name] = _named(args[1], name)
                return True, None
            fn = inst.cls.method(attr)
            if fn is not None:
                args, kwargs = self._args(node, env, inst)
                if args is None:
                    return True, UNKNOWN
                owner_cls = _owner_of(inst.cls, attr)
                if (
                    node is self._bare_call
                    and owner_cls is not None
                    and owner_cls.home not in (None, self)
                    and not _method_may_build(fn, inst.cls, owner_cls.home)
                ):
                    # inherited from another file, its result dropped, and it can neither
                    # build a layer nor set what the model reads (transformers' post_init
                    # -> gradient checkpointing, run for every model): not run
                    return True, UNKNOWN
                self._fed = (node, env.get(DEFAULTED) or frozenset(), 1)
                bound = tuple(args) if is_static(fn) else (inst, *args)  # no self to bind
                return True, self._call_function(fn, bound, kwargs, inst, owner_cls)
            return False, None
        if attr == "add_module" and not _looks_global(owner, self):
            # ``self.blocks.add_module(name, layer)`` on a container: one more child.
            target = self.eval(owner, env, inst)
            if isinstance(target, Layer) and target.type in ("ModuleList", "Sequential"):
                args, _ = self._args(node, env, inst)
                if args and len(args) == 2 and isinstance(args[1], Layer):
                    target.children.append(args[1])
                    target.child_names.append(str(args[0]))
                return True, None
        if attr in ("append", "extend", "insert", "update", "setdefault") and not _looks_global(
            owner, self
        ):
            target = self.eval(owner, env, inst)
            args, kwargs = self._args(node, env, inst)
            if args is None:
                return True, None
            if isinstance(target, list):
                if attr == "append" and len(args) == 1:
                    target.append(args[0])
                elif attr == "extend" and len(args) == 1:
                    more = self._iterate(args[0])
                    if more is not None:
                        target.extend(more)
                elif attr == "insert" and len(args) == 2 and isinstance(args[0], int):
                    target.insert(args[0], args[1])
            elif isinstance(target, dict) and attr == "update" and args:
                if isinstance(args[0], dict):
                    target.update(args[0])
            elif isinstance(target, dict) and attr == "setdefault" and len(args) == 2:
                # kwargs.setdefault("bias", False): the default only when no caller set it
                # (an opaque **kwargs may have: then it stays unknown)
                if args[0] not in target and UNKNOWN_KWARGS not in target:
                    target[args[0]] = args[1]
            elif isinstance(target, Layer) and target.type in ("ModuleList", "Sequential"):
                new = [args[0]] if attr == "append" and args else self._iterate(args[0])
                if new is None:
                    new = [UNKNOWN]
                for layer in new:
                    if layer is UNKNOWN:
                        layer = self._opaque(node)  # a module it cannot build: not identity
                    if isinstance(layer, Layer):
                        target.child_names.append(str(len(target.children)))
                        target.children.append(layer)
            return True, None
        if attr in ("keys", "values", "items") and not node.args:
            target = self.eval(owner, env, inst)
            if isinstance(target, dict):
                return True, list(getattr(target, attr)())
            if isinstance(target, Layer) and target.type == "ModuleDict":
                pairs = list(zip(target.child_names, target.children, strict=False))
                if attr == "keys":
                    return True, [k for k, _ in pairs]
                if attr == "values":
                    return True, [v for _, v in pairs]
                return True, [tuple(p) for p in pairs]
        return False, None

    def _super_target(self, owner: ast.expr, env: dict[str, Any]) -> ClassInfo | None:
        cls = env.get("__class__")
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name):
            if owner.func.id == "super" and isinstance(cls, ClassInfo):
                return cls.parent
            return None
        if isinstance(owner, ast.Name) and owner.id in self.classes:
            return self.classes[owner.id]
        return None

    def _layer(
        self,
        type_: str,
        node: ast.Call,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        backbone: BackboneInfo | None = None,
    ) -> Layer:
        code = self.segment(node)
        return Layer(
            type=type_,
            line=node.lineno,
            col=node.col_offset,
            code=code,
            args=args,
            kwargs=dict(kwargs or {}),
            backbone=backbone,
            end_line=node.end_lineno,
            end_col=node.end_col_offset,
            file=self.label,
        )

    def _make_layer(
        self, type_: str, args: tuple[Any, ...], kwargs: dict[str, Any], node: ast.Call
    ) -> Layer:
        layer = self._layer(type_, node, args, kwargs)
        if type_ == "Sequential":
            if len(args) == 1 and isinstance(args[0], dict):  # OrderedDict([...])
                for name, child in args[0].items():
                    if isinstance(child, Layer):
                        layer.children.append(child)
                        layer.child_names.append(str(name))
            else:
                for i, child in enumerate(args):
                    if child is UNKNOWN:
                        # A module the evaluator cannot build (a block class passed as an
                        # argument): the flow through it is unknown, not shape-keeping.
                        child = self._opaque(node)
                    if isinstance(child, Layer):
                        layer.children.append(child)
                        layer.child_names.append(str(i))
        elif type_ == "ModuleList" and args:
            items = self._iterate(args[0])
            for i, child in enumerate([UNKNOWN] if items is None else items):
                if child is UNKNOWN:
                    child = self._opaque(node)
                if isinstance(child, Layer):
                    layer.children.append(child)
                    layer.child_names.append(str(i))
        elif type_ == "ModuleDict" and args:
            items = args[0].items() if isinstance(args[0], dict) else args[0]
            for pair in items if isinstance(items, Iterable) else ():
                if (
                    isinstance(pair, (list, tuple))
                    and len(pair) == 2
                    and isinstance(pair[1], Layer)
                ):
                    layer.children.append(pair[1])
                    layer.child_names.append(str(pair[0]))
        elif type_ in ("TransformerEncoder", "TransformerDecoder"):
            inner = layer.arg("encoder_layer" if type_ == "TransformerEncoder" else "decoder_layer")
            if isinstance(inner, Layer):
                layer.children.append(inner)
                layer.child_names.append("layers.0")
        return layer


def _statements(body: list[ast.stmt]) -> Iterable[ast.stmt]:
    """Every statement, nested ones included, without descending into expressions (imports
    are statements: a full ``ast.walk`` would cost as much as the parse itself)."""
    stack = list(reversed(body))
    while stack:
        stmt = stack.pop()
        yield stmt
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            inner = getattr(stmt, name, None)
            if inner:
                stack.extend(reversed(inner))


class _LocalFunction:
    """A function defined inside another function (a nested helper)."""

    def __init__(self, node: ast.FunctionDef) -> None:
        self.node = node


class _LocalLambda:
    def __init__(self, node: ast.Lambda) -> None:
        self.node = node


class _BoundMethod:
    def __init__(self, inst: ModuleInstance, node: ast.FunctionDef) -> None:
        self.inst = inst
        self.node = node


class _Partial:
    """``functools.partial(ResBlock1d, expand=2)`` of a file's class or function: calling it
    builds the class with the bound arguments first (a block passed as ``block_fn``)."""

    def __init__(self, callee: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.callee = callee
        self.args = args
        self.kwargs = kwargs


def _owner_of(cls: ClassInfo, method: str) -> ClassInfo | None:
    """The class in the chain that defines ``method`` (for ``super()`` inside it)."""
    c: ClassInfo | None = cls
    while c is not None:
        if method in c.methods:
            return c
        c = c.parent
    return None


def _function_builds(fn: ast.FunctionDef, index: ModuleIndex, depth: int) -> bool:
    """Whether a helper of another file can return a layer: it calls a torch layer, a
    module class, or (a few levels deep) another helper that does. Helpers that only
    compute numbers or pick classes are not run: that keeps timm-sized trees fast."""
    key = ("builds", id(fn))
    if key in index.memo:
        return index.memo[key]
    index.memo[key] = False  # recursion guard
    found = any(
        isinstance(sub, ast.Call) and _function_builds_call(sub, index, depth)
        for sub in ast.walk(fn)
    )
    index.memo[key] = found
    return found


def _method_may_build(fn: ast.FunctionDef, cls: ClassInfo, home: ModuleIndex) -> bool:
    """Whether a method (of ``cls``'s chain, defined in ``home``) may change what the
    analysis sees of an instance of ``cls``. Conservative: "yes" when it refers to a layer,
    a module class or a norm/conv factory (called or not: ``return nn.BatchNorm2d``,
    ``partial(nn.BatchNorm2d, ...)``), calls a capitalized name, a parameter, a local or
    computed callable (``n = self._norm; n(c)``, ``getattr(nn, t)(c)``) or a callable
    attribute (``self.norm_layer(c)``), calls ``add_module``/``setattr(self, ...)``, stores
    or mutates an attribute that an ``__init__`` or ``forward`` of the chain reads
    (``self.width = ...``, ``self.blocks.append(b)``), or calls a method that may (searched
    through every method it reaches, cycles included; past 8 calls deep, "yes")."""
    key = ("method-builds", id(fn), id(cls))
    if key not in home.memo:
        home.memo[key] = _may_build(fn, cls, _chain_attributes(cls), home, set(), 0)
    return home.memo[key]


def _may_build(
    fn: ast.FunctionDef,
    cls: ClassInfo,
    attributes: tuple[frozenset[str], frozenset[str]],
    home: ModuleIndex,
    seen: set[int],
    depth: int,
) -> bool:
    """Depth-first search from ``fn``. ``attributes``: :func:`_chain_attributes` of
    ``cls``. ``seen`` holds the methods already searched: a method met again adds nothing
    that was not searched."""
    if id(fn) in seen:
        return False
    if depth > 8:
        return True
    seen.add(id(fn))
    facts = _method_facts(fn, home)
    if facts.builds:
        return True
    stored, read = attributes
    if facts.touched & read:
        return True
    for name in facts.self_calls:  # self.<name>(...): the instance's class decides
        method = cls.method(name)
        if method is None:
            # add_module, or an attribute holding a callable (self.norm_layer(c)); a
            # method of nn.Module itself (self.named_children()) builds nothing
            if name in _REGISTERS or name in stored:
                return True
            continue
        owner = _owner_of(cls, name)
        where = owner.home if owner is not None and owner.home is not None else home
        if _may_build(method, cls, attributes, where, seen, depth + 1):
            return True
    return False


def is_static(fn: ast.FunctionDef) -> bool:
    """A ``@staticmethod``: called through ``self``, it takes no ``self``."""
    names = [getattr(d, "id", None) or getattr(d, "attr", None) for d in fn.decorator_list]
    return "staticmethod" in names


class _MethodFacts(NamedTuple):
    builds: bool  # a call or reference that may build a layer, other than self.<m>(...)
    self_calls: list[str]  # names called as self.<name>(...)
    touched: frozenset[str]  # self attributes stored or mutated


_MUTATORS = frozenset({"append", "extend", "insert", "update", "setdefault", "add"})


def _method_facts(fn: ast.FunctionDef, home: ModuleIndex) -> _MethodFacts:
    """What one method does that may matter (see :func:`_method_may_build`), once per
    method."""
    key = ("method-facts", id(fn))
    if key in home.memo:
        return home.memo[key]
    params = {a.arg for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)}
    origins = _local_origins(fn)
    builds, self_calls, touched = False, {}, set()
    passive: set[int] = set()  # isinstance(m, nn.Conv2d), Base.method: names not built
    for node in ast.walk(fn):
        if isinstance(node, ast.Attribute):
            passive.add(id(node.value))
            if _is_self(node.value) and isinstance(node.ctx, ast.Store):
                touched.add(node.attr)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") in _INSPECTORS:
            passive.update(id(a) for a in node.args)
            passive.update(id(e) for a in node.args if isinstance(a, ast.Tuple) for e in a.elts)
        if (
            isinstance(node, (ast.Name, ast.Attribute))
            and isinstance(node.ctx, ast.Load)
            and id(node) not in passive
        ):
            qual = home.qualname(node) or ""
            builds = qual in home.classes or (layer_type_of(qual) is not None and "." in qual)
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Attribute)
            and _is_self(node.value.value)
        ):
            touched.add(node.value.attr)  # self.layers[k] = ...
        if builds or not isinstance(node, ast.Call):
            if builds:
                break
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if isinstance(func, ast.Attribute) and _is_self(func.value):
            self_calls[name] = None
        elif isinstance(func, ast.Attribute) and name in _MUTATORS:
            target = func.value  # self.blocks.append(b)
            if isinstance(target, ast.Attribute) and _is_self(target.value):
                touched.add(target.attr)
        elif not isinstance(func, (ast.Name, ast.Attribute)):
            builds = True  # getattr(nn, kind)(c), self.norms[0](c): a computed callable
        elif (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Call)
            and getattr(func.value.func, "id", "") == "super"
        ):
            builds = True  # super().build(): a method of a base, maybe of another file
        elif isinstance(func, ast.Name) and name in params:
            builds = True  # norm_layer(dim)
        elif isinstance(func, ast.Name) and name in origins:
            # a local callable: n = self._norm / getattr(self, "_norm") is self._norm(...)
            attr = origins[name]
            if attr is None:
                builds = True  # anything else it may hold
            else:
                self_calls[attr] = None
        elif name in ("setattr", "__setattr__"):
            builds = bool(node.args) and _is_self(node.args[0])  # setattr(child, ...): its own
        elif name in FACTORY_NAMES or name in _REGISTERS:
            builds = True
        elif name[:1].isupper():
            builds = name not in _BUILTINS and not name.endswith(("Error", "Warning", "Exception"))
        else:
            builds = bool(name) and _function_builds_call(node, home, 0)
        if builds:
            break
    home.memo[key] = _MethodFacts(builds, list(self_calls), frozenset(touched))
    return home.memo[key]


# Calls that look at a class without building it.
_INSPECTORS = frozenset({"isinstance", "issubclass", "getattr", "hasattr", "type", "id"})


def _local_origins(fn: ast.FunctionDef) -> dict[str, str | None]:
    """Local names of ``fn`` -> the ``self`` attribute they are bound to (``n = self._norm``,
    ``n = getattr(self, "_norm")``), or None when bound to anything else."""
    out: dict[str, str | None] = {}
    for node in ast.walk(fn):
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
            targets, value = [node.target], node.value
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            targets = [node.target]
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            targets = [i.optional_vars for i in node.items if i.optional_vars is not None]
        for target in targets:
            for name in (n.id for n in ast.walk(target) if isinstance(n, ast.Name)):
                attr = _self_attribute(value) if isinstance(target, ast.Name) else None
                out[name] = attr if name not in out or out[name] == attr else None
    return out


def _self_attribute(value: ast.expr | None) -> str | None:
    """``self.X`` or ``getattr(self, "X")`` -> ``"X"``."""
    if isinstance(value, ast.Attribute) and _is_self(value.value):
        return value.attr
    if (
        isinstance(value, ast.Call)
        and getattr(value.func, "id", "") == "getattr"
        and len(value.args) >= 2
        and _is_self(value.args[0])
        and isinstance(value.args[1], ast.Constant)
        and isinstance(value.args[1].value, str)
    ):
        return value.args[1].value
    return None


def _chain_attributes(cls: ClassInfo) -> tuple[frozenset[str], frozenset[str]]:
    """(the attributes any method of ``cls``'s chain stores on ``self``, the attributes its
    ``__init__`` and ``forward`` methods read from ``self``)."""
    stored: set[str] = set()
    read: set[str] = set()
    chain: ClassInfo | None = cls
    for _ in range(32):  # as ClassInfo.method: a bounded walk up the bases
        if chain is None:
            break
        own_stored, own_read = _own_attributes(chain)
        stored |= own_stored
        read |= own_read
        chain = chain.parent
    return frozenset(stored), frozenset(read)


def _own_attributes(cls: ClassInfo) -> tuple[frozenset[str], frozenset[str]]:
    """:func:`_chain_attributes` of the class's own methods, once per class (a base such as
    transformers' PreTrainedModel, with hundreds of methods, is shared by every model)."""
    memo = cls.home.memo if cls.home is not None else {}
    key = ("own-attributes", id(cls))
    if key not in memo:
        stored: set[str] = set()
        read: set[str] = set()
        for name, method in cls.methods.items():
            for node in ast.walk(method):
                if isinstance(node, ast.Attribute) and _is_self(node.value):
                    if isinstance(node.ctx, ast.Store):
                        stored.add(node.attr)
                    elif name in ("__init__", "forward"):
                        read.add(node.attr)
        memo[key] = (frozenset(stored), frozenset(read))
    return memo[key]


_REGISTERS = frozenset({"add_module", "register_module"})
_BUILTINS = frozenset(dir(builtins))


def _is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"


def _function_builds_call(call: ast.Call, index: ModuleIndex, depth: int) -> bool:
    """A call of ``index``'s code that builds a layer (see :func:`_function_builds`)."""
    qual = index.qualname(call.func) or ""
    if not qual or qual in ("super", "isinstance"):
        return False
    if qual in index.classes or qual in index.torch_subclasses:
        return True
    if layer_type_of(qual) is not None and "." in qual:
        return True
    if qual in index.functions:
        return depth < 3 and _function_builds(index.functions[qual], index, depth + 1)
    if index.project is not None and "." in qual:
        value = index.project.lookup(qual, index)
        if isinstance(value, (ClassInfo, TorchSubclass, LayerClass)):
            return True
        if isinstance(value, ExternalFunction):
            return depth < 3 and _function_builds(value.node, value.home, depth + 1)
    return False


_AXIS_MOVES = frozenset(
    {
        "permute",
        "transpose",
        "movedim",
        "moveaxis",
        "swapaxes",
        "view",
        "reshape",
        "flatten",
        "rearrange",
        "unflatten",
    }
)


def _moves_axes(node: ast.ClassDef) -> bool:
    """Whether a class's own ``forward`` moves or reshapes axes around the parent's."""
    for stmt in node.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name == "forward":
            for sub in ast.walk(stmt):
                if isinstance(sub, ast.Call):
                    func = sub.func
                    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                    if name in _AXIS_MOVES:
                        return True
    return False


def _special_call(qual: str) -> bool:
    """Model factories the evaluator reads by name (``timm.create_model("resnet50")``,
    ``torchvision.models.resnet50``): not followed into their source."""
    last = qual.split(".")[-1]
    return last == "create_model" or (
        _is_model_function(qual) and _BACKBONE_RE.match(last.lower()) is not None
    )


def _builds_layers(node: ast.ClassDef, index: ModuleIndex) -> bool:
    """Whether the class's ``__init__`` constructs a known torch layer (``nn.Conv2d(...)``)."""
    for stmt in node.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name == "__init__":
            for sub in ast.walk(stmt):
                if isinstance(sub, ast.Call):
                    qual = index.qualname(sub.func)
                    if qual and "." in qual and layer_type_of(qual) is not None:
                        return True
    return False


def _named(value: Any, name: str) -> Any:
    return value


_BUILTIN_NAMES = frozenset(
    {
        *_SIMPLE_BUILTINS,
        "range",
        "list",
        "tuple",
        "enumerate",
        "zip",
        "reversed",
        "sorted",
        "dict",
        "OrderedDict",
        "collections.OrderedDict",
        "partial",
        "functools.partial",
        "create_model",
    }
)


def _callable(callee: Any, qual: str) -> bool:
    """Whether evaluating a call to ``callee`` can produce anything but UNKNOWN."""
    if isinstance(callee, (LayerClass, ClassInfo, ast.FunctionDef, ast.AsyncFunctionDef)):
        return True
    if qual.split(".")[-1] in FACTORY_NAMES:
        return True
    if isinstance(callee, (_LocalFunction, _BoundMethod, TorchSubclass, ExternalFunction)):
        return True
    if isinstance(callee, (_Partial, _LocalLambda)):
        return True
    return (
        qual in _BUILTIN_NAMES
        or qual.split(".")[-1] in ("partial", "create_model")
        or _is_model_function(qual)
    )


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return value is not UNKNOWN


def _is_torchish(qual: str) -> bool:
    return qual.startswith(("torch.", "nn.", "lightning", "pytorch_lightning", "L.", "pl.")) or (
        "." not in qual
    )


def _looks_global(owner: ast.expr, index: ModuleIndex) -> bool:
    return isinstance(owner, ast.Name) and owner.id in index.imports


def _unknown_name(call: ast.Call) -> str:
    """A name for ``add_module(f"conv{i}", ...)`` with ``i`` unknown: the f-string's text
    with ``*`` for the unknown parts (``conv*``), distinct per call so the layers of one
    loop body do not overwrite each other."""
    arg = call.args[0] if call.args else None
    if isinstance(arg, ast.JoinedStr):
        parts = [
            v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "*"
            for v in arg.values
        ]
        return "".join(parts)
    return f"module@{call.lineno}"


def _is_partial(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name == "partial"


def layer_type_of(qual: str) -> str | None:
    """``torch.nn.Conv2d`` -> ``Conv2d`` for layers the analyzer knows; else None.

    >>> layer_type_of("torch.nn.BatchNorm2d"), layer_type_of("torchvision.ops.FrozenBatchNorm2d")
    ('BatchNorm2d', 'FrozenBatchNorm2d')
    """
    last = qual.split(".")[-1]
    if last not in KNOWN_LAYERS:
        return None
    if qual == last or qual.startswith(_TORCH_NN_PREFIXES):
        return last
    vendored = ("FrozenBatchNorm2d", "LayerNorm2d", "DropPath", "RMSNorm", "LayerNorm", "Permute")
    if last in vendored and qual.startswith(("torchvision.", "timm.")):
        return last
    if last == "Rearrange" and qual.startswith("einops."):
        return last
    return None


def norm_subclass(index: ModuleIndex, node: ast.ClassDef) -> str | None:
    """The torch norm a file class is, when it only subclasses it: ``class
    FP32LayerNorm(nn.LayerNorm)`` whose ``forward`` returns ``super().forward(x.float())``
    and whose ``__init__`` (if any) passes its arguments through. None otherwise (a
    subclass with its own forward may normalize other dims: timm's channels-first
    LayerNorm2d permutes around ``F.layer_norm``)."""
    from .ir import NORM_KINDS

    bases = [index.qualname(b) or "" for b in node.bases]
    types = [layer_type_of(b) for b in bases if b not in index.class_nodes]
    norms = [t for t in types if t in NORM_KINDS]
    if len(norms) != 1 or len(node.bases) != 1:
        return None
    for item in node.body:
        if not isinstance(item, ast.FunctionDef):
            continue
        if item.name == "forward":
            calls = [
                n
                for n in ast.walk(item)
                if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and n.func.attr == "forward"
                and isinstance(n.func.value, ast.Call)
                and isinstance(n.func.value.func, ast.Name)
                and n.func.value.func.id == "super"
            ]
            if not calls:
                return None
            moves = {"permute", "transpose", "movedim", "swapaxes", "rearrange", "view"}
            if any(
                isinstance(n, ast.Call)
                and (getattr(n.func, "attr", None) in moves or getattr(n.func, "id", None) in moves)
                for n in ast.walk(item)
            ):
                return None  # super().forward on moved axes: a channels-first norm
        elif item.name == "__init__":
            a = item.args
            if a.args[1:] or a.kwonlyargs or not (a.vararg and a.kwarg):
                return None  # its own parameters: the positions may mean other things
    return norms[0]


def _is_model_function(qual: str) -> bool:
    return qual.startswith(("torchvision.models", "timm.models", "timm.")) or (
        "." in qual and qual.split(".")[0] in ("models", "tvm", "torchvision")
    )


def _binop(op: type, left: Any, right: Any) -> Any:
    if left is UNKNOWN or right is UNKNOWN or op not in _BINOPS:
        return UNKNOWN
    if op is ast.Add and isinstance(left, list) and isinstance(right, list):
        return left + right
    if op is ast.Add and isinstance(left, tuple) and isinstance(right, tuple):
        return left + right
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        if op is ast.Pow and abs(right) > 64:
            return UNKNOWN
        return _BINOPS[op](left, right)
    if op is ast.Mult and isinstance(left, list) and isinstance(right, int) and right <= MAX_LOOP:
        return left * right
    return UNKNOWN


def _over_loop_cap(name: str, args: tuple[Any, ...]) -> bool:
    """Whether ``range(*args)`` was refused for being longer than :data:`MAX_LOOP`."""
    if name != "range" or not args or not all(isinstance(a, int) for a in args):
        return False
    try:
        return len(range(*args)) > MAX_LOOP
    except (TypeError, ValueError):
        return False


def _builtin(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The few pure builtins the evaluator runs on constant arguments."""
    if any(a is UNKNOWN for a in args):
        return UNKNOWN
    if name == "range" and all(isinstance(a, int) for a in args) and 1 <= len(args) <= 3:
        r = range(*args)
        return r if len(r) <= MAX_LOOP else UNKNOWN
    plain = all(isinstance(a, (*_CONST_TYPES, list, tuple, range)) for a in args)
    if name in _SIMPLE_BUILTINS and args and plain:
        return _SIMPLE_BUILTINS[name](*args)
    if name in ("list", "tuple", "enumerate", "zip", "reversed", "sorted"):
        seqs = [list(a) if isinstance(a, (list, tuple, range, dict)) else None for a in args]
        if any(s is None for s in seqs):
            return UNKNOWN
        if name == "list":
            return list(seqs[0]) if seqs else []
        if name == "tuple":
            return tuple(seqs[0]) if seqs else ()
        if name == "enumerate" and seqs:
            return list(enumerate(seqs[0], kwargs.get("start", args[1] if len(args) > 1 else 0)))
        if name == "zip":
            return [tuple(t) for t in zip(*seqs, strict=False)]
        if name == "reversed" and seqs:
            return list(reversed(seqs[0]))
        if name == "sorted" and seqs:
            return sorted(seqs[0])
    if name in ("OrderedDict", "collections.OrderedDict", "dict"):
        if not args:
            return dict(kwargs)
        if isinstance(args[0], dict):
            return dict(args[0])
        if isinstance(args[0], (list, tuple)):
            pairs = args[0]
            if all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs):
                return {k: v for k, v in pairs if _hashable(k)}
    return UNKNOWN
