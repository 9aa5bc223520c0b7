"""Batch size, device count and gradient accumulation: from the CLI, the file, a config.

Precedence per field: ``AnalysisOptions`` (CLI flags) > the analyzed file
(``DataLoader(batch_size=...)``, LightningDataModule ``__init__`` defaults, argparse
defaults, ``Trainer(devices=..., num_nodes=..., accumulate_grad_batches=...)``) > a
LightningCLI YAML (``options.config_path``) > ``options.default_batch_size`` > unknown.

>>> import ast
>>> src = "from torch.utils.data import DataLoader\\nBS = 8\\n"
>>> src += "loader = DataLoader(ds, batch_size=BS)"
>>> from normsuite.analysis.extract import ModuleIndex
>>> scan_file(ModuleIndex(ast.parse(src), src)).batch
(8, 'file:3 DataLoader(batch_size=8)')
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, replace
from typing import Any

from .bindings import Bindings, argument, param_names, replace_root, root_name
from .config_fields import field_default
from .configs.script_config import config_value, decorated_config, find_config, loaded_yaml
from .entrypoints import (
    eval_name,
    inference_only,
    not_training,
    project_scans,
    trains,
)
from .extract import ModuleIndex
from .ir import UNKNOWN, ClassInfo
from .norm_behaviour import own_nodes
from .parsers import parser_files
from .project import display_path
from .shell_scripts import script_invocations
from .symbols import PlainClass
from .tree_facts import called_name, tree_facts
from .types import AnalysisOptions, BatchInfo

Sourced = tuple[int, str]  # (value, where it came from)
# The scan walks the whole tree: skip it when none of these words is in the source.
_SCAN_WORDS = (
    "DataLoader",
    "Trainer",
    "TrainingArguments",
    "add_argument",
    "sync_batchnorm",
    "DataModule",
    "convert_sync",
)

_BATCH_FLAGS = ("--batch-size", "--batch_size", "--bs", "--batchsize", "--train-batch-size")
_DEVICE_FLAGS = ("--devices", "--gpus", "--num-gpus", "--num_gpus", "--world-size")
_ACCUM_FLAGS = ("--accumulate", "--accumulate-grad-batches", "--accumulate_grad_batches")
_ACCUM_FLAGS += ("--grad-accum", "--grad_accum", "--gradient-accumulation-steps")


@dataclass
class BatchScan:
    """What one source (the file or a config) says, each with its origin."""

    batch: Sourced | None = None
    devices: Sourced | None = None
    accumulate: Sourced | None = None
    sync: bool = False  # SyncBatchNorm conversion / Trainer(sync_batchnorm=True)
    # the batch is a default (a signature, argparse or dataclass default) that a config
    # given with --config overrides, as LightningCLI does; a literal in the code is not
    weak: bool = False
    # where the code divides the batch by the device count (batch_size // world_size):
    # the per-device batch then depends on the machine, so it is unknown
    divided: str | None = None
    # submodules of the model the script trains that it keeps in eval mode (BatchInfo)
    frozen_parts: tuple[str, ...] = ()
    # (the call that builds the model, the script's index) when another file trains it
    built_by: Any = None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


def _devices(value: Any) -> int | None:
    """Trainer ``devices``: 4, [0, 1], "2", "0,1"; "auto" and -1 are unknown statically."""
    if isinstance(value, (list, tuple)):
        return len(value) or None
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return _int(int(text))
        parts = [p for p in text.split(",") if p.strip()]
        if len(parts) > 1 and all(p.strip().isdigit() for p in parts):
            return len(parts)
        return None
    return _int(value)


class _Scanner(ast.NodeVisitor):
    def __init__(self, index: ModuleIndex) -> None:
        self.index = index
        self.funcs: list[ast.FunctionDef] = []
        self.classes: list[ast.ClassDef] = []
        # score, line, value, origin (a default's line), passed_at (a constructor call's)
        # (score, line, batch, origin, passed at, what: "DataLoader(batch_size=8)")
        self.loaders: list[tuple[int, int, int, int | str | None, int | None, str]] = []
        self.argparse: dict[str, tuple[int, int]] = {}  # dest -> (value, line)
        # DataModules defined here, or of other files and built or handed to LightningCLI
        # here: (class, its file's index, the call building it, functions, classes around)
        self._datamodules: list[tuple[ast.ClassDef, Any, ast.Call | None, list, list]] = []
        self.trainer: dict[str, Sourced] = {}
        self.sync = False
        self._pending: list[tuple[ast.expr, ast.Call, str, list, list]] = []
        self._no_grad = 0  # inside ``with torch.no_grad()`` / ``inference_mode()``
        self._targets: list[str] = []  # names the current statement assigns
        self._excluded: set[int] = set()  # DataLoader calls that are not training loaders
        # line of the default the last resolve() used ("config.py:7" in another file)
        self.origin: int | str | None = None
        self.passed_at: int | None = None  # line of the call whose argument it used instead
        # argparse beyond add_argument: dest -> the "__batch"-style keys its flags fill,
        # flag -> dest, parser.set_defaults(...) (they beat argument defaults in any order),
        # the literal lists of parse_args([...]) (notebooks), names bound to vars(args)
        self._dest_keys: dict[str, list[str]] = {}
        self._flag_dest: dict[str, str] = {}
        self._parser_defaults: dict[str, tuple[Any, int]] = {}
        self._argv: list[tuple[list[Any], int]] = []
        self._vars_names: set[str] = set()
        self._imported_flags: dict[str, list[str]] = {}  # flags of parsers in other files
        # obj.attr = value statements, by (obj, attr): (line, value, block)
        self._attr_sets: dict[tuple[str, str], list[tuple[int, ast.expr, tuple]]] = {}
        self._line: int | None = None  # the line of the call whose arguments are resolved
        self._call: ast.Call | None = None  # that call
        # the branches (statement, field) around the node being visited, and around calls
        self._block: tuple[tuple[int, str], ...] = ()
        self._call_blocks: dict[int, tuple[tuple[int, str], ...]] = {}
        # training DataLoaders whose batch_size could not be read (cfg["train"]["bs"])
        self.unread_loaders: list[int] = []
        # loaders whose batch could not be read at all, with their score: when the best
        # is one of them, the training batch is unknown (not the validation loader's 1)
        self.unread_scores: list[int] = []
        # names iterated (for x in va, [.. for x in va], enumerate(va)): under no_grad?
        self._iterated: dict[tuple[int | None, str], list[bool]] = {}  # (function, name)
        self._loader_names: dict[int, list[tuple[int | None, str]]] = {}  # loader -> names
        self._loops: list[tuple[int | None, ast.expr, ast.For]] = []  # (function, iterable, loop)
        self.bindings = Bindings(index.tree)  # locals of functions, calls of module-level functions
        self._depth = 0  # resolving an argument at a call site, inside a resolve

    def visit_With(self, node: ast.With) -> None:
        quals = [
            self.index.qualname(getattr(i.context_expr, "func", i.context_expr)) or ""
            for i in node.items
        ]
        grad_off = any(q.split(".")[-1] in ("no_grad", "inference_mode") for q in quals)
        if self.funcs:
            self.bindings.assign(self.funcs[-1], node, self._block)
        self._no_grad += grad_off
        self.generic_visit(node)
        self._no_grad -= grad_off

    visit_AsyncWith = visit_With  # type: ignore[assignment]

    def visit_Assign(self, node: ast.Assign) -> None:
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        value = node.value
        if (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id == "vars"
        ):  # opt = vars(parser.parse_args()): opt["bs"] reads an argparse dest
            self._vars_names.update(names)
        names += [t.attr for t in node.targets if isinstance(t, ast.Attribute)]
        if self.funcs:
            self.bindings.assign(self.funcs[-1], node, self._block)
        for t in node.targets:  # cfg.batch_size = 2 after cfg = TrainConfig()
            owner = t.value if isinstance(t, ast.Attribute) else None
            if isinstance(owner, ast.Name) and owner.id != "self":
                key = (owner.id, t.attr)  # type: ignore[union-attr]
                self._attr_sets.setdefault(key, []).append((node.lineno, node.value, self._block))
        self._targets.extend(names)
        self.generic_visit(node)
        del self._targets[len(self._targets) - len(names) :]

    def _branches(self, node: ast.stmt, fields: tuple[str, ...]) -> None:
        """Visit each branch of ``node`` under its own block (an assignment in one branch
        does not hold in the other, nor after the statement for sure)."""
        for name in node._fields:
            value = getattr(node, name)
            if name in fields:
                self._block = (*self._block, (id(node), name))
                for item in value:
                    self.visit(item)
                self._block = self._block[:-1]
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        self.visit(item)
            elif isinstance(value, ast.AST):
                self.visit(value)

    def visit_If(self, node: ast.If) -> None:
        self._branches(node, ("body", "orelse"))

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if self.funcs:
            self.bindings.assign(self.funcs[-1], node, self._block)
        self.generic_visit(node)

    visit_AugAssign = visit_AnnAssign  # type: ignore[assignment]

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        if self.funcs:
            self.bindings.walrus(self.funcs[-1], node, self._block)
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        if isinstance(node, (ast.For, ast.AsyncFor)):
            self._iterates(node.iter)
            scope = id(self.funcs[-1]) if self.funcs else None
            self._loops.append((scope, node.iter, node))
            if self.funcs:
                self.bindings.assign(self.funcs[-1], node, self._block)
        self._branches(node, ("body", "orelse"))

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self._iterates(node.iter)
        self.generic_visit(node)

    def _iterates(self, expr: ast.expr) -> None:
        """Note a loop over a name (``va``, ``enumerate(va)``, ``tqdm(va)``), and whether
        it runs with gradients off."""
        expr = _wrapped(expr)[-1]
        if isinstance(expr, ast.Name):  # per function: evaluate()'s own ``loader``
            scope = id(self.funcs[-1]) if self.funcs else None
            self._iterated.setdefault((scope, expr.id), []).append(self._no_grad > 0)

    visit_AsyncFor = visit_For  # type: ignore[assignment]
    visit_While = visit_For  # type: ignore[assignment]

    def visit_Try(self, node: ast.Try) -> None:
        self._branches(node, ("body", "handlers", "orelse", "finalbody"))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.classes.append(node)
        bases = [self.index.qualname(b) or "" for b in node.bases]
        if any(b.split(".")[-1] == "LightningDataModule" for b in bases):
            self._datamodules.append((node, self.index, None, [], [node]))
        self.generic_visit(node)
        self.classes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.funcs.append(node)
        self.generic_visit(node)
        self.funcs.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Call(self, node: ast.Call) -> None:
        self._call_blocks[id(node)] = self._block
        self.bindings.call(node, self.funcs, self._block)
        qual = self.index.qualname(node.func) or ""
        last = qual.split(".")[-1]
        if last == "convert_sync_batchnorm":
            self.sync = True
        elif last == "add_argument":
            self._argparse(node)
        elif last == "set_defaults":
            for k in node.keywords:
                value = self.index.eval(k.value, {}, None) if k.arg else UNKNOWN
                if k.arg and isinstance(value, (int, str, list)):
                    self._parser_defaults[k.arg] = (value, node.lineno)
        elif last in ("parse_args", "parse_known_args") and node.args:
            argv = _argv_of(node.args[0])  # ([] too: the command line is ignored)
            if argv is not None:
                self._argv.append((argv, node.lineno))
        elif self._other_datamodules(node):
            pass
        elif last in ("DataLoader", "Trainer", "Fabric", "TrainingArguments"):
            if last == "DataLoader" and not_training(
                node, self._no_grad > 0, [f.name for f in self.funcs], self._targets, self.index
            ):
                self._excluded.add(id(node))
            scope = id(self.funcs[-1]) if self.funcs else None
            self._loader_names[id(node)] = [(scope, t) for t in self._targets]
            # Resolved after the walk: argparse defaults may come later in the file.
            self._pending.append((node.func, node, last, list(self.funcs), list(self.classes)))
        self.generic_visit(node)

    def _other_datamodules(self, node: ast.Call) -> bool:
        """Note a LightningDataModule of another file of the project that this call builds
        (``dm = RandomDataModule(batch_size=1)``) or is handed (``LightningCLI(Model,
        RandomDataModule)``): its batch is read in :meth:`finish`."""
        found = False
        for expr in (node.func, *node.args):
            if not isinstance(expr, (ast.Name, ast.Attribute)):
                continue
            cls = self.index.eval(expr, {}, None)
            if not isinstance(cls, (ClassInfo, PlainClass)) or cls.home in (None, self.index):
                continue
            if _is_datamodule(cls.node, cls.home):
                built = node if expr is node.func else None
                self._datamodules.append(
                    (cls.node, cls.home, built, list(self.funcs), list(self.classes))
                )
                found = True
        return found

    def datamodule_batches(self) -> list[tuple[int | None, str, bool]]:
        """(batch or None when unreadable, where, weak) of each DataModule of another file."""
        out: list[tuple[int | None, str, bool]] = []
        for cls, home, call, funcs, classes in self._datamodules:
            self._line = call.lineno if call is not None else 0  # no line: no later set
            self._call = call
            init = _init_of(cls)
            param = next(
                (p for p in _BATCH_PARAMS if (param_names(init) if init else []).count(p)), None
            )
            if init is None or param is None:
                continue
            if home is self.index:  # defined here: the calls of this file that build it
                passed = self._passed(cls.name, init, param)
                if passed is UNKNOWN:
                    out.append((None, f"file:{init.lineno}", False))
                    continue
                if passed is not None:
                    where = f"file:{self.passed_at} {cls.name}({param}={passed})"
                    out.append((passed, where, self.origin is not None))
                    continue
            expr = _argument(call, init, param) if call is not None else None
            if expr is None:  # the signature default, read in the DataModule's file
                value = _int(_param_default(init, param, home))
                where = f"file:{init.lineno}" if home is self.index else _where(home, init.lineno)
                out.append((value, f"{where} {cls.name}({param}={value})", True))
                continue
            value = _int(self.resolve(expr, funcs, classes)) if expr is not _OPAQUE else None
            where = f"file:{call.lineno} {cls.name}({param}={value})"
            out.append((value, where, self.origin is not None))
        return out

    def _argparse(self, node: ast.Call) -> None:
        flags = [
            a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
        ]
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        if not flags or "default" not in kw:
            return
        value = self.index.eval(kw["default"], {}, None)
        if not isinstance(value, (int, str, list)):
            return
        long = next((f for f in flags if f.startswith("--")), flags[0])
        dest = kw.get("dest")
        name = dest.value if isinstance(dest, ast.Constant) else long.lstrip("-").replace("-", "_")
        name = str(name)
        keys = [name]
        for flag in flags:
            self._flag_dest[flag] = name
            for group, key in ((_BATCH_FLAGS, "batch"), (_DEVICE_FLAGS, "devices")):
                if flag in group:
                    keys.append(f"__{key}")
            if flag in _ACCUM_FLAGS:
                keys.append("__accumulate")
        self._dest_keys[name] = keys
        for key in keys:
            self.argparse[key] = (value, node.lineno)  # type: ignore[assignment]

    def _argparse_overrides(self) -> None:
        """parser.set_defaults(batch_size=2) beats ``default=64`` (argparse: parser-level
        defaults always win), and ``parse_args(["--batch-size", "2"])`` beats both."""
        for dest, (value, line) in self._parser_defaults.items():
            for key in self._dest_keys.get(dest, [dest]):
                self.argparse[key] = (value, line)
        for argv, line in self._argv:
            for i, item in enumerate(argv):
                if not isinstance(item, str) or not item.startswith("-"):
                    continue
                flag, eq, text = item.partition("=")
                if not eq:
                    nxt = argv[i + 1] if i + 1 < len(argv) else None
                    text = nxt if isinstance(nxt, str) and not nxt.startswith("-") else ""
                dest = self._flag_dest.get(flag)
                if dest is None:
                    continue
                value = _number(text)
                for key in self._dest_keys.get(dest, [dest]):
                    # a value the list does not spell out (a variable) is unknown, never the default
                    self.argparse[key] = (value, line)

    def _only_without_gradients(self, node: ast.Call) -> bool:
        """``va = DataLoader(...)`` looped over only under ``torch.no_grad()``."""
        uses = [u for n in self._loader_names.get(id(node), []) for u in self._iterated.get(n, [])]
        return bool(uses) and all(uses)

    def _strips_batch_axis(self, node: ast.Call, batch: int) -> bool:
        """The loop over this loader hands the model something else than its batch: a
        loader of episodes (``batch_size=1``) whose item the model gets unwrapped
        (``model(support[0])``, ``images = batch["images"].squeeze(0)``,
        ``x.flatten(0, 1)``, ``collate_fn=lambda b: b[0]``), or of tasks, one per step of a
        ``range`` loop (MAML's ``net(x_spt[i])``). Only what reaches a model call counts:
        ``labels.squeeze()`` for the loss or ``save_image(x[0])`` keeps the batch."""
        collate = next((k.value for k in node.keywords if k.arg == "collate_fn"), None)
        if (
            batch == 1
            and isinstance(collate, ast.Lambda)
            and _first_item(collate.body, {_arg0(collate)})
        ):
            return True
        for loop, chain in self._loops_over(node):
            item = loop.target
            outer = chain[0]
            if (
                isinstance(outer, ast.Call)
                and isinstance(outer.func, ast.Name)
                and outer.func.id == "enumerate"
                and isinstance(item, ast.Tuple)
                and len(item.elts) == 2
            ):
                item = item.elts[1]  # for i, batch in enumerate(loader)
            unpacked = isinstance(item, (ast.Tuple, ast.List))
            targets = {n.id for n in ast.walk(item) if isinstance(n, ast.Name)}
            counters = _range_counters(loop.body)
            for fed in _model_inputs(loop.body, self.index):
                if _unwraps(fed, targets, unpacked, counters, episode=batch == 1):
                    return True

        return False

    def _loops_over(self, node: ast.Call) -> list[tuple[ast.For, list[ast.expr]]]:
        """The loops over this loader (``for x in DataLoader(...)``, ``for i, b in
        enumerate(loader)`` with ``loader`` bound to it in the same function), each with
        its iterable's levels (outside in)."""
        names = self._loader_names.get(id(node), [])
        out = []
        for scope, iterable, loop in self._loops:
            chain = _wrapped(iterable)
            if node in chain or any(
                isinstance(e, ast.Name) and (scope, e.id) in names for e in chain
            ):
                out.append((loop, chain))
        return out

    def _views(self, node: ast.Call) -> int:
        """The number of views of each batch the loop over this loader hands the model in
        one forward (``model(torch.cat([aug(x), aug(x)]))``: 2), or 0."""
        for loop, _ in self._loops_over(node):
            targets = {n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name)}
            for fed in _model_inputs(loop.body, self.index):
                views = _joined_views(fed, targets)
                if views:
                    return views
        return 0

    def _imported_parsers(self) -> None:
        """Flags of the parsers this file takes from other files of its project
        (``args = get_args()``, ``TrainOptions().parse()``): their defaults, named where
        they are written, for the dests this file does not add itself."""
        view = self.index.project
        if view is None or "(" not in self.index.source:
            return
        for path, nodes in parser_files(self.index):
            key = ("argparse", path, tuple(id(n) for n in nodes))
            flags = view.project.memo.get(key)
            if flags is None:
                dep = view.project.index(path)
                other = _Scanner(dep)
                for node in nodes:
                    other.visit(node)
                other._argparse_overrides()
                label = display_path(path, view.project.root)
                values = {
                    dest: (value, line if isinstance(line, str) else f"{label}:{line}")
                    for dest, (value, line) in other.argparse.items()
                }
                flags = (values, other._flag_keys())
                view.project.memo[key] = flags
            values, flag_keys = flags
            for dest, found in values.items():
                self.argparse.setdefault(dest, found)
            for flag, keys in flag_keys.items():
                self._imported_flags.setdefault(flag, keys)

    def _flag_keys(self) -> dict[str, list[str]]:
        """flag -> the keys of :attr:`argparse` it sets (``--bs`` -> batch_size, __batch)."""
        return {f: self._dest_keys.get(d, [d]) for f, d in self._flag_dest.items()}

    def _shell_overrides(self) -> None:
        """The batch, device and accumulation flags the project's shell scripts run this
        script with (``train.sh``: ``python train.py --batch-size 2``) beat the defaults.
        Command lines that disagree (an invocation without the flag keeps the default), or
        one that spells out no number (a loop variable), make the value unknown."""
        view = self.index.project
        if view is None or self._argv or not self.argparse:
            return  # parse_args([...]) in the file ignores the command line
        key = ("shell", view.path)
        found = view.project.memo.get(key)
        if found is None:
            found = view.project.memo[key] = script_invocations(view.path, view.project.root)
        flag_keys = {
            flag: keys
            for flag, keys in {**self._imported_flags, **self._flag_keys()}.items()
            if any(k in _RUN_KEYS or _RUN_WORDS.search(k) for k in keys)  # not --lr 0.1
        }
        lines = [
            _flag_values(argv, flag_keys, f"{display_path(path, view.project.root)}:{line}")
            for argv, path, line in found
        ]
        for name in {name for given in lines for name in given}:
            values = [given.get(name, self.argparse.get(name)) for given in lines]
            numbers = {v[0] for v in values if v is not None}
            if len(numbers) == 1 and isinstance(next(iter(numbers)), int):
                self.argparse[name] = next(v for v in values if v is not None)
            else:  # a loop variable, or lines that disagree: no one value
                where = next(v[1] for v in values if v is not None)
                self.argparse[name] = (UNKNOWN, where)

    def resolve(self, expr: ast.expr, funcs: list[ast.FunctionDef], classes: list) -> Any:
        """A constant for ``expr``: literal, module constant, parameter default, argparse
        default (``args.batch_size``) or the enclosing class's ``__init__`` default
        (``self.batch_size``, ``self.hparams.batch_size``)."""
        self.origin = self.passed_at = None
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
            sets = self._attr_sets.get((expr.value.id, expr.attr), [])
            around = self._call_blocks.get(id(self._call), ()) if self._call is not None else ()
            before = [
                (n, v)
                for n, v, block in sets
                if self._line is not None and n < self._line and around[: len(block)] == block
            ]
            if before:  # the last assignment before the call wins over a class default
                line, node = before[-1]
                value = self.index.eval(node, {}, None)
                self.origin = line
                return value  # UNKNOWN when set from something not readable here
        if self._call is not None:
            # bs = 4 / cfg = TrainConfig() / batch_size = cfg.train.batch_size in a function
            around = self._call_blocks.get(id(self._call), ())
            bound = self.bindings.substitute(expr, funcs, self._call.lineno, around)
            if bound is None and isinstance(expr, ast.Name):
                return UNKNOWN  # a local whose value at the loader is not sure
            expr = bound or expr  # (args.batch_size of args, _ = parse_known_args(): flags)
            passed = self._from_callers(expr, funcs)
            if passed is not None:
                return passed  # train(model, batch_size=8): what the callers pass
            configured = self._from_script_config(expr, funcs)
            if configured is not None:
                return configured
        value = self.index.eval(expr, {}, None)
        if value is not UNKNOWN:
            return value
        if isinstance(expr, ast.Name):
            for fn in reversed(funcs):
                found = _param_default(fn, expr.id, self.index)
                if found is not None:
                    self.origin = fn.lineno
                    return found
            return UNKNOWN
        if (
            isinstance(expr, ast.Subscript)
            and isinstance(expr.value, ast.Name)
            and expr.value.id in self._vars_names
            and isinstance(expr.slice, ast.Constant)
            and expr.slice.value in self.argparse
        ):  # opt = vars(parser.parse_args()); opt["bs"] (not cfg["train"]["batch_size"])
            self.origin = self.argparse[expr.slice.value][1]
            return self.argparse[expr.slice.value][0]
        if isinstance(expr, ast.Attribute):
            attr = expr.attr
            root = expr.value
            if isinstance(root, ast.Attribute) and root.attr == "hparams":
                root = root.value
            if isinstance(root, ast.Name) and root.id == "self" and classes:
                init = _init_of(classes[-1])
                found = _param_default(init, attr, self.index)
                if found is None or init is None:
                    return UNKNOWN
                passed = self._passed(classes[-1].name, init, attr)
                if passed is not None:
                    return passed  # RandomDataModule(batch_size=1) beats its default 32
                self.origin = init.lineno  # a signature default: a config may override it
                return found
            if attr in self.argparse:
                self.origin = self.argparse[attr][1]
                return self.argparse[attr][0]
            found = field_default(expr, self.index, funcs)  # a @dataclass / NamedTuple default
            if found is not None:
                self.origin = found[1]
                return found[0]
        return UNKNOWN

    def _from_callers(self, expr: ast.expr, funcs: list[ast.FunctionDef]) -> Any:
        """``expr`` rooted in a parameter of a module-level function the file calls
        (``def train(model, batch_size)`` ... ``train(net, batch_size=8)``, ``main(cfg)``
        with ``cfg.batch_size``): the smallest value the training calls give it, the
        default where a call passes nothing; UNKNOWN when a call passes what cannot be
        read; None when the file never calls the function (its default or a config
        holds)."""
        name = root_name(expr)
        fn = next((f for f in reversed(funcs) if name in param_names(f)), None)
        if fn is None or fn not in self.index.tree.body or self._depth >= 3:
            return None
        calls = [
            c
            for c in self.bindings.calls.get(fn.name, [])
            if not any(eval_name(f.name) or _trial_name(f.name) for f in c[1])
        ]
        found: list[tuple[int, int, int | str | None, int | None]] = []
        for call, caller_funcs, _ in calls:
            arg = argument(call, fn, name or "")
            if arg is False:
                return UNKNOWN  # passed through *args / **kwargs
            if arg is None and not _has_default(fn, name or ""):
                return None  # train() under @hydra.main: a decorator passes it
            saved = self._line, self._call
            self._line, self._call, self._depth = call.lineno, call, self._depth + 1
            try:
                if arg is None:  # the default holds for this call: read at module level
                    default = _default_expr(fn, name or "")
                    value = _int(self.resolve(replace_root(expr, default), [], []))
                    origin, at = self.origin or fn.lineno, None
                else:
                    assert isinstance(arg, ast.expr)
                    value = _int(self.resolve(replace_root(expr, arg), caller_funcs, []))
                    origin, at = self.origin, self.passed_at
                    if origin is None and at is None:
                        at = call.lineno  # a literal passed here
            finally:
                (self._line, self._call), self._depth = saved, self._depth - 1
            if value is None:
                return UNKNOWN
            found.append((value, call.lineno, origin, at))
        if not found:
            return None
        value, _, self.origin, self.passed_at = min(found, key=lambda t: (t[0], t[1]))
        return value

    def _from_script_config(self, expr: ast.expr, funcs: list[ast.FunctionDef]) -> Any:
        """``cfg.data.batch_size`` in ``@hydra.main(config_path="conf",
        config_name="config") def train(cfg)``, or ``cfg["train"]["batch_size"]`` of
        ``cfg = yaml.safe_load(...)`` of a file the script names: the value in that
        config (a default, which the command line may override), else None."""
        name, keys = root_name(expr), []
        node = expr
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            if isinstance(node, ast.Attribute):
                keys.insert(0, node.attr)
            elif isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                keys.insert(0, node.slice.value)
            else:
                return None
            node = node.value
        fn = next((f for f in reversed(funcs) if name in param_names(f)), None)
        view = self.index.project
        script = getattr(view, "path", None)
        path = decorated_config(fn, script) if fn is not None and script and keys else None
        if path is None and fn is None and name and script and keys:
            flags = {dest: value for dest, (value, _) in self.argparse.items()}
            file = loaded_yaml(self.index.tree, name, flags)
            path = find_config(file, script, view.project.root) if file else None
        if path is None:
            return None
        value = config_value(path, keys)
        if _int(value) is None:
            return None
        self.origin = f"{display_path(path, view.project.root)} {'.'.join(keys)}"
        return value

    def _passed(self, cls_name: str, init: ast.FunctionDef, param: str) -> Any:
        """What the file's constructions of ``cls_name`` pass for ``param`` of its
        ``__init__``: the smallest such value (``self.passed_at`` its line), UNKNOWN when a
        call passes something unreadable (``**cfg``, a runtime value), None when no call
        passes it (the default holds)."""
        values: list[tuple[int, int, int | None]] = []  # value, call line, argparse line
        for call in tree_facts(self.index).of(ast.Call):
            if not (isinstance(call.func, ast.Name) and call.func.id == cls_name):
                continue
            expr = _argument(call, init, param)
            if expr is None:
                continue
            value = _int(self.index.eval(expr, {}, None)) if expr is not _OPAQUE else None
            default_line = None
            if value is None and isinstance(expr, ast.Attribute) and expr.attr in self.argparse:
                # RandomDataModule(args.batch_size): an argparse default, which a config or
                # the command line may override
                value, default_line = self.argparse[expr.attr]
                value = _int(value)
            if value is None:
                return UNKNOWN  # a caller passes what this reading cannot know: silent
            values.append((value, call.lineno, default_line))
        if not values:
            return None
        value, self.passed_at, self.origin = min(values, key=lambda t: (t[0], t[1]))
        return value

    def _training_arguments(
        self, node: ast.Call, kw: dict[str, ast.expr], funcs: list[Any], classes: list[Any]
    ) -> None:
        """Hugging Face ``TrainingArguments(per_device_train_batch_size=4,
        gradient_accumulation_steps=2)``: the per-device training batch (HF's default of 8
        when it is not given is not read: unknown), and the accumulation."""
        expr = kw.get("per_device_train_batch_size")
        value = _int(self.resolve(expr, funcs, classes)) if expr is not None else None
        if value is not None:
            what = f"TrainingArguments(per_device_train_batch_size={value})"
            self.loaders.append((3, node.lineno, value, self.origin, self.passed_at, what))
        steps = kw.get("gradient_accumulation_steps")
        accumulate = _int(self.resolve(steps, funcs, classes)) if steps is not None else None
        if accumulate is not None:
            where = (
                f"file:{node.lineno} TrainingArguments(gradient_accumulation_steps={accumulate})"
            )
            self.trainer["accumulate_grad_batches"] = (accumulate, where)

    def finish(self) -> None:
        self._argparse_overrides()
        self._imported_parsers()
        self._shell_overrides()
        for _func, node, last, funcs, classes in self._pending:
            self._line, self._call = node.lineno, node
            kw = {k.arg: k.value for k in node.keywords if k.arg}
            if last == "DataLoader":
                if id(node) in self._excluded or self._only_without_gradients(node):
                    continue  # validation / no_grad / benchmark loaders: not what BN trains on
                expr = kw.get("batch_size", node.args[1] if len(node.args) > 1 else None)
                if expr is None:
                    expr = _from_kwargs_dict(node, "batch_size", funcs, self.index.tree)
                if expr is None:
                    continue
                value = _int(self.resolve(expr, funcs, classes))
                if value is not None and self._strips_batch_axis(node, value):
                    value = None  # one episode or task per item: the model sees what is inside
                if value is None:
                    self.unread_scores.append(_loader_score(node, kw, self.index))
                    if any(isinstance(n, (ast.Subscript, ast.Call)) for n in ast.walk(expr)):
                        # cfg["train"]["batch_size"], cfg.get("bs"): read from a structure
                        # filled at run time, not from a flag (a bare name or self.attr
                        # that is not resolved may still be the flag's value)
                        self.unread_loaders.append(node.lineno)
                    continue
                score = _loader_score(node, kw, self.index)
                what = f"DataLoader(batch_size={value})"
                views = self._views(node)
                if views:  # SimCLR: the views of each batch go through BN together
                    what += f" x {views} views (torch.cat)"
                    value *= views
                self.loaders.append((score, node.lineno, value, self.origin, self.passed_at, what))
            elif last == "TrainingArguments":
                self._training_arguments(node, kw, funcs, classes)
            else:
                for key in ("devices", "gpus", "num_nodes", "accumulate_grad_batches"):
                    if key in kw:
                        raw = self.resolve(kw[key], funcs, classes)
                        value = _devices(raw) if key in ("devices", "gpus") else _int(raw)
                        if value is not None:
                            where = f"file:{node.lineno} Trainer({key}={value})"
                            self.trainer[key] = (value, where)
                sync = kw.get("sync_batchnorm")
                if isinstance(sync, ast.Constant) and sync.value is True:
                    self.sync = True


_BATCH_PARAMS = ("batch_size", "train_batch_size", "batch_size_train", "train_bs", "bs")


_RUN_KEYS = ("__batch", "__devices", "__accumulate")
# dests of flags that set the batch, devices or accumulation under other names
# (--per_device_train_batch_size, --num_gpus, --grad_accum_steps)
_RUN_WORDS = re.compile(r"batch|^bs$|devices|gpus|accum")


class CommandLine(str):
    """Where a value was passed on a command line (``train.sh:2 passes --bs 2``), not a
    default written in the code."""


def _argv_of(expr: ast.expr) -> list[Any] | None:
    """The list a notebook hands ``parse_args``: ``["--bs", "2"]`` or ``"--bs 2".split()``
    (an element that is not a literal is unknown)."""
    if isinstance(expr, (ast.List, ast.Tuple)):
        return [e.value if isinstance(e, ast.Constant) else UNKNOWN for e in expr.elts]
    if (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr == "split"
        and not expr.args
        and isinstance(expr.func.value, ast.Constant)
        and isinstance(expr.func.value.value, str)
    ):
        return list(expr.func.value.value.split())
    return None


def _flag_values(
    argv: list[str], flag_keys: dict[str, list[str]], where: str
) -> dict[str, tuple[Any, str]]:
    """The argparse keys one command line sets: ``--bs 2``, ``--bs=2``, ``-b2`` and an
    abbreviation argparse accepts (``--batch`` for ``--batch-size``); a value that is not
    a number (``$BS`` unset) is unknown."""
    out: dict[str, tuple[Any, str]] = {}
    for i, item in enumerate(argv):
        flag, eq, text = item.partition("=")
        if flag not in flag_keys and flag.startswith("--"):
            longer = [f for f in flag_keys if f.startswith(flag)]
            flag = longer[0] if len(longer) == 1 else flag
        elif flag not in flag_keys and not flag.startswith("--") and flag[:2] in flag_keys:
            flag, eq, text = flag[:2], "=", item[2:]  # -b2
        if flag not in flag_keys:
            continue
        if not eq:
            text = argv[i + 1] if i + 1 < len(argv) else ""
        value = _number(text)
        for key in flag_keys[flag]:
            out[key] = (value, CommandLine(f"{where} passes {flag} {text or '?'}"))
    return out


def _number(text: str) -> Any:
    """``"2"`` -> 2; anything else (``$BS``, ``²``) is unknown."""
    return int(text) if text.isascii() and text.isdigit() else UNKNOWN


def _stated(where: int | str, value: Any, kind: str = "default") -> str:
    """``config.py:7 default 2``, or a command line as it is (``train.sh:2 passes
    --batch-size 2``)."""
    if isinstance(where, CommandLine):
        return where
    return f"{_at(where)} {kind} {value}"


def _wrapped(expr: ast.expr) -> list[ast.expr]:
    """``enumerate(tqdm(loader))``, ``tqdm(loader)``, ``loader``: each level, outside in."""
    chain = [expr]
    while isinstance(expr, ast.Call) and expr.args:
        expr = expr.args[0]
        chain.append(expr)
    return chain


def _arg0(fn: ast.Lambda) -> str | None:
    return fn.args.args[0].arg if fn.args.args else None


def _root(expr: ast.expr) -> str | None:
    """The name an expression starts from: ``batch`` of ``batch["x"].squeeze(0)``."""
    while isinstance(expr, (ast.Attribute, ast.Subscript, ast.Call)):
        expr = expr.func if isinstance(expr, ast.Call) else expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def _first_item(
    expr: ast.AST, names: set[str | None], counters: frozenset[str] = frozenset()
) -> bool:
    """``x[0]`` of one of ``names``, or ``x[i]`` with ``i`` a ``range`` loop's counter
    (MAML's ``for i in range(task_num): net(x_spt[i])``)."""
    if not (
        isinstance(expr, ast.Subscript)
        and isinstance(expr.value, ast.Name)
        and expr.value.id in names
    ):
        return False
    index = expr.slice
    if isinstance(index, ast.Name):
        return index.id in counters
    return isinstance(index, ast.Constant) and index.value == 0


def _range_counters(body: list[ast.stmt]) -> frozenset[str]:
    """The names ``for i in range(...)`` loops inside ``body`` count with."""
    return frozenset(
        n.target.id
        for stmt in body
        for n in ast.walk(stmt)
        if isinstance(n, ast.For)
        and isinstance(n.target, ast.Name)
        and isinstance(n.iter, ast.Call)
        and isinstance(n.iter.func, ast.Name)
        and n.iter.func.id == "range"
    )


def _unwraps(
    node: ast.expr, targets: set[str], unpacked: bool, counters: frozenset[str], episode: bool
) -> bool:
    """Whether ``node`` takes the batch axis off a loop variable. A task index
    (``x_spt[i]``, ``i`` a ``range`` counter) of an unpacked item always does; at batch 1
    (an episode per item) so do ``support[0]``, ``.squeeze(0)``, ``.squeeze()``,
    ``torch.squeeze(x, 0)`` and ``.flatten(0, 1)``. ``batch[0]`` of a whole batch is its
    first field and keeps the batch."""
    if unpacked and _first_item(node, set(targets), counters):
        index = node.slice  # type: ignore[attr-defined]
        return episode or isinstance(index, ast.Name)
    if not episode or not isinstance(node, ast.Call):
        return False
    func = node.func
    if not isinstance(func, ast.Attribute):
        return False
    args = [a.value if isinstance(a, ast.Constant) else None for a in node.args]
    args += [k.value.value for k in node.keywords if isinstance(k.value, ast.Constant)]
    if func.attr == "squeeze" and isinstance(func.value, ast.Name) and func.value.id == "torch":
        # torch.squeeze(x, 0)
        return bool(node.args) and _root(node.args[0]) in targets and args[1:] in ([], [0])
    if _root(func.value) not in targets:
        return False
    if func.attr == "squeeze":
        return args in ([], [0])
    return func.attr == "flatten" and args[:2] == [0, 1]


def _joined_views(node: ast.expr, targets: set[str]) -> int:
    """How many views of the loop's batch ``torch.cat([v1, v2])`` (dim 0) puts in one
    forward (SimCLR: 2, so BN sees twice the loader's batch); 0 when it is not that."""
    if not (isinstance(node, ast.Call) and called_name(node.func) == "cat" and node.args):
        return 0
    dim = next((k.value for k in node.keywords if k.arg == "dim"), None)
    dim = dim if dim is not None else (node.args[1] if len(node.args) > 1 else None)
    if dim is not None and not (isinstance(dim, ast.Constant) and dim.value == 0):
        return 0
    parts = node.args[0]
    if not isinstance(parts, (ast.List, ast.Tuple)):
        return 0
    reads = [{n.id for n in ast.walk(p) if isinstance(n, ast.Name)} & targets for p in parts.elts]
    if not all(reads) or len(reads) < 2:
        return 0  # a part that is not a view of the batch (a memory bank): not a multiple
    return len(reads)


_NOT_MODELS = frozenset({"print", "len", "save_image", "make_grid", "imshow", "str", "repr"})
_LOSS_WORDS = ("loss", "criterion", "crit", "metric", "acc", "log", "writer", "plot", "show")


def _model_inputs(body: list[ast.stmt], index: ModuleIndex) -> list[ast.expr]:
    """What the loop body hands a model: the arguments of calls of a local or ``self``
    attribute (``model(x)``, ``self.net(x)``), not of torch functions, builtins, losses
    or loggers; a name among them stands for the expression last assigned to it."""
    assigned: dict[str, ast.expr] = {}
    fed: list[ast.expr] = []
    for stmt in _statements(body):
        for n in ast.walk(stmt):
            if not isinstance(n, ast.Call):
                continue
            func = n.func
            if isinstance(func, ast.Name):
                name = func.id
                if name in _NOT_MODELS or name in index.imports or name in index.functions:
                    continue
            elif isinstance(func, ast.Attribute) and _root(func) == "self":
                name = func.attr
            else:
                continue
            if any(word in name.lower() for word in _LOSS_WORDS):
                continue
            for arg in [*n.args, *(k.value for k in n.keywords)]:
                fed.append(assigned.get(arg.id, arg) if isinstance(arg, ast.Name) else arg)
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    assigned[target.id] = stmt.value
                elif isinstance(target, ast.Tuple) and isinstance(stmt.value, ast.Tuple):
                    for t, v in zip(target.elts, stmt.value.elts, strict=False):
                        if isinstance(t, ast.Name):
                            assigned[t.id] = v
    return fed


def _statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """The simple statements of ``body``, nested blocks opened, in order."""
    out: list[ast.stmt] = []
    for stmt in body:
        nested = [getattr(stmt, f, []) for f in ("body", "orelse", "finalbody")]
        if any(nested) and not isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
            if isinstance(stmt, (ast.If, ast.While)):
                out.append(ast.Expr(stmt.test))
            for block in nested:
                out += _statements(block)
        else:
            out.append(stmt)
    return out


def _is_datamodule(node: ast.ClassDef, home: Any) -> bool:
    """A LightningDataModule subclass, directly or through a class of the project."""
    for _ in range(8):
        quals = [home.qualname(b) or "" for b in node.bases]
        if any(q.split(".")[-1] == "LightningDataModule" for q in quals):
            return True
        parent = home.eval(node.bases[0], {}, None) if node.bases else None
        if not isinstance(parent, (ClassInfo, PlainClass)) or parent.home is None:
            return False
        node, home = parent.node, parent.home
    return False


def _where(home: Any, line: int) -> str:
    """``file:N`` for a line of the scanned file; ``data/module.py:N`` in another file."""
    view = getattr(home, "project", None)
    if view is None:
        return f"file:{line}"
    return f"{display_path(view.path, view.project.root)}:{line}"


_OPAQUE = ast.Constant(value=None)  # an argument hidden in ``*args`` / ``**kwargs``


def _changes_dict(node: ast.AST, names: list[str]) -> bool:
    """A subscript store, ``|=``, ``.update(...)`` or ``.setdefault(...)`` on one of ``names``."""
    if isinstance(node, ast.AugAssign):  # loader_args |= {...}
        return isinstance(node.target, ast.Name) and node.target.id in names
    if isinstance(node, ast.Assign):  # loader_args["batch_size"] = ...
        return any(
            isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and t.value.id in names
            for t in node.targets
        )
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("update", "setdefault", "__setitem__")
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in names
    )


def _from_kwargs_dict(
    call: ast.Call, key: str, funcs: list[ast.FunctionDef], tree: ast.Module
) -> ast.expr | None:
    """The ``key`` entry of a dict passed as ``**name`` (Pytorch-UNet's ``loader_args =
    dict(batch_size=batch_size, ...)`` then ``DataLoader(ds, **loader_args)``), bound by
    the last assignment before the call in the enclosing function (or the module)."""
    names = [k.value.id for k in call.keywords if k.arg is None and isinstance(k.value, ast.Name)]
    scope: ast.AST = funcs[-1] if funcs else tree
    found: ast.expr | None = None
    nodes = own_nodes(scope)  # this function's statements, not its nested functions'
    if any(_changes_dict(node, names) for node in nodes):
        return None  # loader_args["batch_size"] = ..., loader_args.update(...): not a literal
    for node in nodes:
        if not isinstance(node, ast.Assign) or node.lineno > call.lineno:
            continue
        if not any(isinstance(t, ast.Name) and t.id in names for t in node.targets):
            continue
        value = node.value
        entry = None
        if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "dict":
            entry = next((k.value for k in value.keywords if k.arg == key), None)
        elif isinstance(value, ast.Dict):
            entry = next(
                (
                    v
                    for k, v in zip(value.keys, value.values, strict=True)
                    if isinstance(k, ast.Constant) and k.value == key
                ),
                None,
            )
        if entry is not None and (found is None or node.lineno >= found.lineno):
            found = entry
    return found


def _argument(call: ast.Call, init: ast.FunctionDef, param: str) -> ast.expr | None:
    """The expression ``call`` passes for ``param`` of ``init`` (a method: ``self`` is not
    passed); ``_OPAQUE`` when a ``*args`` / ``**kwargs`` may hold it; None when not passed."""
    for kw in call.keywords:
        if kw.arg == param:
            return kw.value
    params = [p.arg for p in (*init.args.posonlyargs, *init.args.args)][1:]
    if param in params:
        i = params.index(param)
        positional = [a for a in call.args if not isinstance(a, ast.Starred)]
        if len(positional) == len(call.args) and i < len(positional):
            return positional[i]
    if any(isinstance(a, ast.Starred) for a in call.args) or any(
        kw.arg is None for kw in call.keywords
    ):
        return _OPAQUE
    return None


def _init_of(cls: ast.ClassDef) -> ast.FunctionDef | None:
    for n in cls.body:
        if isinstance(n, ast.FunctionDef) and n.name == "__init__":
            return n
    return None


_TRIAL_WORDS = ("sanity", "smoke", "debug", "dryrun", "overfit")
_TRIAL_EXACT = frozenset({"check", "quick", "find", "dry", "try"})


def _trial_name(name: str) -> bool:
    """``sanity_check``, ``smoke_test``, ``debug_run``, ``find_lr``: a function that runs
    training briefly to try it, not the training run (its batch 2 is not the batch).

    >>> _trial_name("sanity_check"), _trial_name("main"), _trial_name("train_from_checkpoint")
    (True, False, False)
    """
    words = [w for w in name.lower().split("_") if w]
    return any(w.startswith(_TRIAL_WORDS) or w in _TRIAL_EXACT for w in words)


def _has_default(fn: ast.FunctionDef, name: str) -> bool:
    default = _default_expr(fn, name)
    return not (isinstance(default, ast.Constant) and default.value is None)


def _default_expr(fn: ast.FunctionDef, name: str) -> ast.expr:
    """The default expression of parameter ``name`` (``None``'s constant when it has none)."""
    a = fn.args
    params = [*a.posonlyargs, *a.args]
    pairs = list(zip(params[len(params) - len(a.defaults) :], a.defaults, strict=True))
    pairs += [(p, d) for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None]
    return next((d for p, d in pairs if p.arg == name), ast.Constant(value=None))


def _param_default(fn: ast.FunctionDef | None, name: str, index: ModuleIndex) -> Any:
    if fn is None:
        return None
    a = fn.args
    params = [*a.posonlyargs, *a.args]
    offset = len(params) - len(a.defaults)
    for i, p in enumerate(params):
        if p.arg == name and i >= offset:
            value = index.eval(a.defaults[i - offset], {}, None)
            return None if value is UNKNOWN else value
    for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=False):
        if p.arg == name and d is not None:
            value = index.eval(d, {}, None)
            return None if value is UNKNOWN else value
    return None


def divided_by_devices(index: ModuleIndex) -> str | None:
    """``file:LINE`` of the first ``<...batch...> // <a count>`` (or ``/``) in the file: the
    lightning-hydra-template's ``batch_size // trainer.world_size``, pytorch/examples'
    ``int(args.batch_size / ngpus_per_node)``, a config's ``batch_size // grad_accum``."""
    if "batch" not in index.source:
        return None
    for node in tree_facts(index).of(ast.BinOp):
        if not isinstance(node.op, (ast.Div, ast.FloorDiv)):
            continue
        left = ast.unparse(node.left).lower()
        # by the device count, or by any count the code reads (a dataclass's
        # __post_init__: batch_size // grad_accum_steps): the batch BN sees is derived.
        # A batch *size*: ``num_batches // accumulate`` counts steps, not samples.
        if "batch_size" in left and not isinstance(node.right, ast.Constant):
            return f"file:{node.lineno}"
    return None


def _loader_score(node: ast.Call, kw: dict[str, ast.expr], index: ModuleIndex) -> int:
    """How surely a loader feeds training: 2 for ``shuffle=True``, 1 for "train" in it."""
    shuffle = kw.get("shuffle")
    score = 2 * (isinstance(shuffle, ast.Constant) and shuffle.value is True)
    return score + ("train" in index.segment(node, limit=10_000).lower())


def _at(line: int | str) -> str:
    """``file:12`` for a line of the scanned file; ``options.py:12`` is already a place."""
    return line if isinstance(line, str) else f"file:{line}"


def scan_file(index: ModuleIndex) -> BatchScan:
    """Batch size, devices, accumulation and SyncBN use, as the analyzed file states them."""
    s = _Scanner(index)
    if not any(word in index.source for word in _SCAN_WORDS):
        return BatchScan()
    s.visit(index.tree)
    s.finish()
    out = BatchScan(sync=s.sync, divided=divided_by_devices(index))
    if inference_only(index.source):
        s.loaders, s.argparse = [], {}  # a script that only evaluates: no training batch
    if s.loaders and max(s.unread_scores, default=-1) >= max(t[0] for t in s.loaders):
        pass  # the likeliest training loader's batch cannot be read: unknown, not another's
    elif s.loaders:
        # the best-scored loaders (shuffled / named train); of those, the smallest batch
        best = max(t[0] for t in s.loaders)
        _, line, value, origin, passed_at, what = min(
            (t for t in s.loaders if t[0] == best), key=lambda t: t[2]
        )
        out.weak = origin is not None
        if passed_at is not None:  # the constructor call that sets it
            out.batch = (value, f"file:{passed_at} passes {value} -> DataLoader at line {line}")
        elif origin is not None and origin != line:  # say where the number is written
            if isinstance(origin, str):  # config.py:7, a default in another file
                out.batch = (value, f"{_stated(origin, value)} -> DataLoader at file:{line}")
            else:
                out.batch = (value, f"file:{origin} default {value} -> DataLoader at line {line}")
        else:
            out.batch = (value, f"file:{line} {what}")
        others = sorted({(t[2], t[1]) for t in s.loaders} - {(value, line)})
        if others:
            listed = ", ".join(f"{v} at line {n}" for v, n in others[:4])
            out.batch = (value, f"{out.batch[1]} (other loaders: {listed})")
    elif (dms := s.datamodule_batches()) and all(value for value, _, _ in dms):
        # the smallest of the DataModules defined or built here; one that cannot be read
        # (``RandomDataModule(**cfg)``): silent
        value, where, weak = min(dms, key=lambda t: t[0] or 0)
        out.batch, out.weak = (value, where), weak  # type: ignore[assignment]
    elif (
        "__batch" in s.argparse
        and _int(s.argparse["__batch"][0])
        and not s.unread_loaders
        and trains(index.source)
    ):
        # an argparse default alone counts only in a script that trains (a profiling
        # block's --batch-size 1 is not the training batch), and not when the training
        # loader takes its batch from elsewhere (a YAML read at run time)
        value, line = s.argparse["__batch"]
        out.batch, out.weak = (value, _stated(line, value, "argparse default")), True
    devices = s.trainer.get("devices") or s.trainer.get("gpus")
    if devices is None and "__devices" in s.argparse:
        value, line = s.argparse["__devices"]
        count = _devices(value)
        if count:
            devices = (count, _stated(line, value, "argparse default"))
    nodes = s.trainer.get("num_nodes")
    if devices is not None and nodes is not None and nodes[0] > 1:
        devices = (devices[0] * nodes[0], f"{devices[1]} x num_nodes={nodes[0]}")
    out.devices = devices
    out.accumulate = s.trainer.get("accumulate_grad_batches")
    if out.accumulate is None and "__accumulate" in s.argparse:
        value, line = s.argparse["__accumulate"]
        if _int(value):
            out.accumulate = (value, _stated(line, value, "argparse default"))
    return out


def scan_config(paths: str | tuple[str, ...]) -> Any:
    """LightningCLI / Hydra YAML or OpenMMLab Python configs (``configs/``): the batch,
    devices, accumulation and SyncBN they set; later files win."""
    from .configs import read_configs

    return read_configs((paths,) if isinstance(paths, str) else tuple(paths))


def resolve(options: AnalysisOptions, file: BatchScan, config: Any) -> BatchInfo:
    """Combine the sources field by field: CLI > file > config > default batch size, except
    that a config beats a batch the code only states as a default (LightningCLI: command
    line > --config > signature defaults).

    ``source`` names where the batch size came from ("cli", "file:12 DataLoader(...)",
    "config:...", "default", "unknown"), then where devices/accumulation came from if set.
    """
    cfg = config or BatchScan()

    def pick(cli: int | None, *found: Sourced | None) -> tuple[int | None, str]:
        if cli is not None:
            return cli, "cli"
        for item in found:
            if item is not None:
                return item[0], item[1]
        return None, "unknown"

    strong, weak = (None, file.batch) if file.weak else (file.batch, None)
    if getattr(cfg, "batch_unreadable", None) and cfg.batch is None:
        weak = None  # the config overrides the code's default with a run-time value
    batch, source = pick(options.batch_size, strong, cfg.batch, weak)
    if file.divided and source != "cli":
        # the code hands each device (or step) batch_size // world_size: a count it reads
        batch = None
        source = f"unknown: {file.divided} divides the batch by a count read at run time"
    if batch is None and weak is None and getattr(cfg, "batch_unreadable", None):
        source = f"unknown: {cfg.batch_unreadable}"
    if batch is None and options.default_batch_size is not None:
        batch, source = options.default_batch_size, "default"
    devices, dev_source = pick(options.devices, file.devices, cfg.devices)
    accumulate, acc_source = pick(options.accumulate, file.accumulate, cfg.accumulate)
    if devices is not None and dev_source != source:
        source += f"; devices={devices} from {dev_source}"
    if accumulate is not None and acc_source != source:
        source += f"; accumulate={accumulate} from {acc_source}"
    return BatchInfo(
        per_device=batch,
        devices=devices or 1,
        accumulate=accumulate or 1,
        source=source,
        weak=batch is not None and weak is not None and source == weak[1],
        frozen_parts=list(file.frozen_parts),
    )


def batch_from_scripts(
    options: AnalysisOptions,
    file: BatchScan,
    config: BatchScan | None,
    project: Any,
    path: str,
    class_name: str,
) -> tuple[BatchInfo, bool, Any]:
    """The batch of a model trained by other scripts of its project (``train.py`` builds
    ``TinySegNet`` from ``model.py``): the smallest training batch, every source listed,
    with that script's devices and accumulation; whether that script syncs BN; and (the
    call that builds the model there, the script's index), or None."""
    found = sorted(project_scans(project, path, class_name), key=lambda t: (t[0], t[1]))
    if not found:
        return resolve(options, file, config), False, None
    value, where, scan = found[0]
    if len(found) > 1:
        where += " (also: " + ", ".join(f"{v} from {w}" for v, w, _ in found[1:4]) + ")"
    merged = replace(
        file,
        batch=(value, where),
        weak=scan.weak,  # the script's batch may be a default it states
        devices=file.devices or scan.devices,
        accumulate=file.accumulate or scan.accumulate,
        sync=file.sync or scan.sync,
        divided=file.divided or scan.divided,
        frozen_parts=scan.frozen_parts,
    )
    return resolve(options, merged, config), scan.sync, scan.built_by
