"""Training entry points: which code trains a model, and which loaders are NOT training.

The batch BatchNorm sees is the batch of the loop that trains the model: a ``__main__``
block or ``main()`` that steps an optimizer, a ``Trainer.fit``, a ``LightningCLI``. That
code is often in another file (``train.py`` imports ``TinySegNet`` from ``model.py``), so
:func:`project_batches` looks for the scripts of the project that train a given class.

Not training batches: loaders under ``torch.no_grad()`` / ``inference_mode()``, in
functions or variables named for validation, test, prediction, evaluation, benchmarks or
profiling, and a bare argparse ``--batch-size`` of a script that never trains.

>>> trains("loss.backward()\\noptimizer.step()"), trains("model.eval()")
(True, False)
"""

from __future__ import annotations

import ast
import functools
import os
import re
from dataclasses import replace
from typing import Any, NamedTuple

from .norm_behaviour import attribute_chain, bn_freezes, own_nodes, train_after
from .project import display_path
from .tree_facts import tree_facts

# Text that shows a file trains something (a plain scan: cheap, and only a filter).
TRAINING_WORDS = (
    ".backward(",
    "training_step",
    "configure_optimizers",
    ".fit(",
    "LightningCLI",
    "optimizer.step(",
    "opt.step(",
    ".step()",
    "TrainingArguments(",  # Hugging Face: Trainer(model, args).train()
)
_NOT_TRAINING = ("val", "test", "eval", "predict", "infer", "bench", "profil", "calib")
_WORD_SPLIT = re.compile(r"[^a-z]+")
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
MAX_WALK = 5000  # files looked at for training scripts per project
MAX_SCRIPT_SIZE = 512 * 1024
_SKIP_DIRS = frozenset({"venv", "site-packages", "__pycache__", "node_modules", "build", "dist"})


@functools.lru_cache(maxsize=64)  # asked once per model of a file, and of its scripts
def trains(source: str) -> bool:
    """Whether a source text shows training (backward, an optimizer step, a fit, a CLI)."""
    return any(word in source for word in TRAINING_WORDS)


def inference_only(source: str) -> bool:
    """A file that puts a model in eval mode or turns gradients off and never trains: its
    loaders feed inference (``model.eval()`` paths), not BatchNorm in training."""
    marks = (".eval()", "no_grad", "inference_mode")
    return not trains(source) and any(m in source for m in marks)


def eval_name(name: str) -> bool:
    """``val_loader``, ``testloader``, ``evaluate``, ``benchmark`` -> True; ``train`` -> False.

    >>> [eval_name(n) for n in ("val_loader", "test_dl", "train_loader", "interval")]
    [True, True, False, False]
    """
    return any(w.startswith(_NOT_TRAINING) for w in _WORD_SPLIT.split(name.lower()) if w)


def not_a_training_script(relpath: str) -> bool:
    """A file whose name or folder says benchmark, profiling, test or evaluation
    (``benchmark.py``, ``tests/test_model.py``, ``profile_step.py``) and never training:
    its batch (timm's ``benchmark.py -b 1``, a smoke test's 2) is not the training batch.

    >>> [not_a_training_script(p) for p in ("benchmark.py", "tests/test_net.py", "train.py")]
    [True, True, False]
    >>> not_a_training_script("train_eval.py"), not_a_training_script("bench/finetune.py")
    (False, False)
    """
    words = [w for w in _WORD_SPLIT.split(relpath.lower().removesuffix(".py")) if w]
    if any(w.startswith(_TRAINING_NAMES) for w in words):
        return False
    return any(w.startswith(_NOT_TRAINING) for w in words)


_TRAINING_NAMES = ("train", "fit", "finetun", "pretrain")


def not_training(
    node: ast.Call, no_grad: bool, functions: list[str], targets: list[str], index: Any
) -> bool:
    """Whether a ``DataLoader(...)`` call is plainly not a training loader."""
    if no_grad:
        return True
    if any(eval_name(n) for n in functions) or any(eval_name(n) for n in targets):
        return True
    dataset = node.args[0] if node.args else None
    for kw in node.keywords:
        if kw.arg == "dataset":
            dataset = kw.value
    text = index.qualname(dataset) if isinstance(dataset, (ast.Name, ast.Attribute)) else None
    return bool(text and eval_name(text.split(".")[-1]))


# ---------------------------------------------------------------------- across files
def training_scripts(project: Any) -> list[tuple[str, frozenset[str]]]:
    """(path, identifiers) of the project's files that train something; walked once per
    project (a model class is then looked up by name without reading a file again)."""
    cached = getattr(project, "_scripts", None)
    if cached is not None:
        return cached
    found: list[tuple[str, frozenset[str]]] = []
    train_functions: set[str] = set()
    loaders: list[tuple[str, _LinkFacts]] = []  # files with a loader that do not train here
    penalized: list[tuple[str, str]] = []  # files computing a gradient penalty, with text
    importers: list[tuple[str, str]] = []  # files that may train a critic with one
    seen = 0
    # without a project marker the root is just the file's folder (say /tmp): its own
    # scripts and one level down, not everything below it
    deep = project.marked
    for dirpath, dirnames, filenames in os.walk(project.root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS)
        if not deep and dirpath != project.root:
            dirnames[:] = []
        for name in sorted(filenames):
            if not name.endswith((".py", ".ipynb")):
                continue
            seen += 1
            path = os.path.join(dirpath, name)
            if not_a_training_script(os.path.relpath(path, project.root)):
                continue
            try:
                if os.path.getsize(path) > MAX_SCRIPT_SIZE or not os.path.isfile(path):
                    continue
                with open(path, encoding="utf-8", errors="replace") as handle:
                    text = handle.read()
            except OSError:
                continue
            if name.endswith(".ipynb"):  # a notebook that trains: its code cells
                text = _notebook_code(text)
            if "create_graph" in text and penalizes(text):  # a gradient penalty
                penalized.append((path, text))
            if "create_graph" in text or "penalty" in text:  # who may train a critic
                importers.append((path, text))
            if trains(text):
                found.append((path, frozenset(_IDENTIFIER.findall(text))))
                train_functions.update(_training_functions(text))
            elif "DataLoader" in text:
                loaders.append((path, _LinkFacts.of(text)))
        if seen > MAX_WALK:
            break
    # A script whose loop is a helper of another file (torchvision's references:
    # ``train_one_epoch(model, loader, optimizer)`` imported from engine.py) trains too.
    for path, facts in loaders:
        if any(facts.imports_and_calls(name) for name in train_functions):
            found.append((path, facts.identifiers))
    project._scripts = found
    project.memo["penalized"] = penalized
    project.memo["importers"] = importers
    return found


# autograd.grad(..., create_graph=True), under any name (``torch_grad``): a penalty on the
# input gradient (by text: the files are read once per project for training_scripts)
_CREATE_GRAPH = re.compile(r"create_graph\s*=\s*True")
_GRAD_CALL = re.compile(r"grad\s*\(")
# what makes a second-order gradient a penalty, not MAML or a Hessian-vector product: the
# gradient norm pulled to 1 (WGAN-GP), or a penalty named as such (R1, gradient_penalty)
_PENALTY_WORDS = re.compile(r"penalty|lambda_gp|\bgp\b|\br1\b|norm[^\n]{0,40}?-\s*1\b", re.I)
_FROM_IMPORT = re.compile(r"^\s*from\s+(\.*[\w.]*)\s+import\s+(?:\(([^)]*)\)|([^\n]*))", re.M)


def penalizes(text: str) -> bool:
    """The code computes a gradient penalty: ``grad(..., create_graph=True)`` (under any
    name) and the penalty's own marks (``(g.norm(2, dim=1) - 1) ** 2``, ``gradient_penalty``)."""
    return bool(
        _CREATE_GRAPH.search(text) and _GRAD_CALL.search(text) and _PENALTY_WORDS.search(text)
    )


_TOP_NAMES = re.compile(r"^(?:def|class)\s+(\w+)", re.M)


def penalized_elsewhere(project: Any, model_path: str, class_name: str) -> str | None:
    """Another file of the project that trains ``class_name`` of ``model_path`` with a
    gradient penalty: it imports the class from that file and computes the penalty
    itself (``train_gp.py``, a LightningModule in ``lit.py``) or calls a helper that does,
    imported from a third file (``from losses import gradient_penalty``). Its path, else
    None. A class of the same name in another package is another class."""
    training_scripts(project)
    penalized = project.memo.get("penalized", [])
    if not penalized:
        return None  # (most projects: nothing to read per model)
    key = ("penalized-class", model_path, class_name)
    if key not in project.memo:
        project.memo[key] = _penalized_by(project, os.path.abspath(model_path), class_name)
    return project.memo[key]


def _penalized_by(project: Any, model_path: str, class_name: str) -> str | None:
    penalized = project.memo["penalized"]
    helpers = project.memo.get("penalty-helpers")
    if helpers is None:  # names a penalizing file defines -> that file
        helpers = project.memo["penalty-helpers"] = {
            name: os.path.abspath(path)
            for path, text in penalized
            for name in _TOP_NAMES.findall(text)
        }
    imports = project.memo.setdefault("imports-of", {})
    for path, text in project.memo.get("importers", []):
        if os.path.abspath(path) == model_path or class_name not in text:
            continue
        if path not in imports:
            imports[path] = _imports_from(text)
        imported = imports[path]
        modules = [imported[class_name]] if class_name in imported else imported.get("*", [])
        if not any(
            os.path.abspath(project.module_file(m, path) or "") == model_path for m in modules
        ):
            continue  # (``from models import *``: PyTorch-GAN's scripts)
        own = penalizes(text)
        used = any(
            name != "*"
            and helpers.get(name) is not None
            and os.path.abspath(project.module_file(module, path) or "") == helpers[name]
            for name, module in imported.items()
        )
        if own or used:
            return display_path(path, project.root)
    return None


def _imports_from(text: str) -> dict[str, Any]:
    """name -> module of the ``from module import a, b as c`` lines of a file (``c`` ->
    the module for an alias); ``"*"`` -> the star-imported modules."""
    out: dict[str, Any] = {"*": []}
    for module, grouped, plain in _FROM_IMPORT.findall(text):
        for item in (grouped or plain).split(","):
            parts = item.split()
            if parts == ["*"]:
                out["*"].append(module)
            elif parts:
                out[parts[-1]] = module
    return out


def _notebook_code(text: str) -> str:
    """The code cells of a notebook as one program ("" when it is no notebook)."""
    from .notebook import NotebookError, read_notebook

    try:
        return read_notebook(text, "").text
    except NotebookError:
        return ""


_TOP_DEF = re.compile(r"^def (\w+)\(", re.MULTILINE)
# Where a top-level function's body ends: the next top-level statement (not the `):` of a
# signature split over lines, nor a comment in column 0).
_TOP_LEVEL = re.compile(
    r"^(?:async def |def |class |@|if |for |while |with |try:|[A-Za-z_][\w.]*\s*[=(])",
    re.MULTILINE,
)
_GENERIC = frozenset({"main", "run", "train", "fit"})  # too common to link two files by


def _training_functions(text: str) -> set[str]:
    """Top-level functions of a file whose own body trains (``train_one_epoch``)."""
    out: set[str] = set()
    for m in _TOP_DEF.finditer(text):
        end = _TOP_LEVEL.search(text, m.end())
        body = text[m.end() : end.start() if end else len(text)]
        if m.group(1) not in _GENERIC and trains(body):
            out.add(m.group(1))
    return out


_CALLED = re.compile(r"(\.?)([A-Za-z_]\w*)\s*\(")


class _LinkFacts(NamedTuple):
    """What a file that builds a loader imports and calls (kept instead of its text)."""

    identifiers: frozenset[str]
    imported: frozenset[str]  # names on its import lines
    called: frozenset[str]  # name( calls
    called_attr: frozenset[str]  # .name( calls

    @classmethod
    def of(cls, text: str) -> _LinkFacts:
        lines = [x for x in text.splitlines() if x.lstrip().startswith(("import ", "from "))]
        calls = _CALLED.findall(text)
        return cls(
            frozenset(_IDENTIFIER.findall(text)),
            frozenset(_IDENTIFIER.findall(" ".join(lines))),
            frozenset(n for dot, n in calls if not dot),
            frozenset(n for dot, n in calls if dot),
        )

    def imports_and_calls(self, name: str) -> bool:
        """``from engine import train_one_epoch`` and a call of it, or ``engine.name(``."""
        return (name in self.imported and name in self.called) or name in self.called_attr


def project_batches(project: Any, model_path: str, class_name: str) -> list[tuple[int, str]]:
    """(per-device batch, where) of each training script of ``class_name`` (see
    :func:`project_scans`)."""
    return [(value, where) for value, where, _ in project_scans(project, model_path, class_name)]


def project_scans(project: Any, model_path: str, class_name: str) -> list[tuple[int, str, Any]]:
    """Training batches of the scripts of the project that build ``class_name`` from
    ``model_path``: (per-device batch, "train.py:9 ..."), one per script that says."""
    from .batch import scan_file  # batch.py imports this module

    model_path = os.path.abspath(model_path)
    out: list[tuple[int, str, Any]] = []
    for path, words in training_scripts(project):
        if os.path.abspath(path) == model_path:
            continue
        factories = _factory_names(project, model_path, class_name)
        if class_name not in words and not words & factories:
            continue
        index = project.index(path)
        built = _builds(index, model_path, class_name, factories) if index is not None else None
        if built is None:
            continue
        key = ("batch-scan", path)
        scan = project.memo.get(key)
        if scan is None:
            try:
                scan = scan_file(index)
            except Exception:
                continue
            project.memo[key] = scan
        if scan.batch is not None:
            label = display_path(path, project.root)
            value, where = scan.batch
            if path.endswith(".ipynb"):  # lines of the joined cells -> cell positions
                where = _cell_places(where, path)
            # the script's devices/accumulation come with its batch (train.py runs
            # Trainer(devices=8, sync_batchnorm=True)), their sources named like the batch
            scan = replace(
                scan,
                devices=_relabel(scan.devices, label),
                accumulate=_relabel(scan.accumulate, label),
                divided=scan.divided.replace("file:", f"{label}:", 1) if scan.divided else None,
                frozen_parts=frozen_parts(index, built),
                built_by=(built, index),
            )
            out.append((value, where.replace("file:", f"{label}:", 1), scan))
    return out


def _relabel(sourced: Any, label: str) -> Any:
    if sourced is None:
        return None
    value, where = sourced
    return value, where.replace("file:", f"{label}:", 1)


def _cell_places(where: str, path: str) -> str:
    """``file:23 ...`` of a notebook's joined code as ``file:cell 6:line 4 ...``."""
    from .files import read_source
    from .notebook import NotebookError, read_notebook

    try:
        nb = read_notebook(read_source(path), path)
    except (NotebookError, OSError, ValueError):
        return where

    def place(m: re.Match[str]) -> str:
        line = m.group(1) or m.group(2)
        cell, inner = nb.place(int(line))
        return f"{'file:' if m.group(1) else ''}cell {cell}:line {inner}"

    return re.sub(r"\bfile:(\d+)|\bline (\d+)", place, where)


def _builds(
    index: Any, model_path: str, class_name: str, factories: frozenset[str] = frozenset()
) -> ast.Call | None:
    """The call by which the script constructs (or hands to LightningCLI) that class of that
    file, directly or through a factory function of the project that returns it
    (``build_model(...)`` whose body is ``return UNetSmall(...)``); None if it does not."""
    for node in tree_facts(index).of(ast.Call):
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called in factories and _factory_of(index, node, model_path, class_name):
            if run_frozen(index, node):
                continue
            return node
        for expr in (node.func, *node.args):
            if not isinstance(expr, (ast.Name, ast.Attribute)):
                continue
            qual = index.qualname(expr) or ""
            if qual.split(".")[-1] != class_name:
                continue
            value = index.eval(expr, {}, None)
            home = getattr(value, "home", None)
            view = getattr(home, "project", None)
            if view is not None and os.path.abspath(view.path) == model_path:
                if run_frozen(index, node):
                    continue  # a distillation teacher: eval(), no gradients, no optimizer
                return node
    return None


def _factory_names(project: Any, model_path: str, class_name: str) -> frozenset[str]:
    """Names of the module-level functions of the model's file and of its package's
    ``__init__.py`` that return the class (``def resnet18(): return ResNet(...)``,
    ``build_model`` in ``models/__init__.py``): a script that calls one of them trains the
    class without naming it. Read from the parsed trees only (no index is built)."""
    key = ("factory-names", model_path, class_name)
    if key not in project.memo:
        package = os.path.join(os.path.dirname(model_path), "__init__.py")
        names: set[str] = set()
        for path in (model_path, package):
            names |= _returned_classes(project, path).get(class_name, set())
        project.memo[key] = frozenset(names)
    return project.memo[key]


def _returned_classes(project: Any, path: str) -> dict[str, set[str]]:
    """Class name -> the module-level functions of ``path`` that return an instance of it
    (``return ResNet(...)``), once per file."""
    key = ("returned-classes", path)
    if key not in project.memo:
        from .files import SourceError, read_source

        out: dict[str, set[str]] = {}
        try:
            tree = project.parse(path, read_source(path)) if os.path.isfile(path) else None
        except (SourceError, SyntaxError, ValueError, RecursionError, MemoryError):
            tree = None
        for fn in tree.body if tree is not None else ():
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for name in _returned_names(fn):
                    out.setdefault(name, set()).add(fn.name)
        project.memo[key] = out
    return project.memo[key]


def _returned_names(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """The names called in ``return Name(...)`` / ``return mod.Name(...)`` of ``fn``."""
    out: set[str] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Call):
            func = node.value.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called:
                out.add(called)
    return out


def _factory_of(index: Any, call: ast.Call, model_path: str, class_name: str) -> bool:
    """``call`` calls a factory of the project that returns ``class_name`` of ``model_path``."""
    return (model_path, class_name) in _factory_returns(index, call)


def _factory_returns(index: Any, call: ast.Call) -> set[tuple[str, str]]:
    """(file, class) of the model classes that the module-level function of another file of
    the project called by ``call`` builds in a ``return`` (one level, branches not read)."""
    if not isinstance(call.func, (ast.Name, ast.Attribute)) or index.project is None:
        return set()
    qual = index.qualname(call.func) or ""
    if not qual or ("." not in qual and qual not in index.imports):
        return set()  # a name of this file or a builtin: not another file's factory
    fn = index.project.lookup(index.imports.get(qual, qual))
    node, home = getattr(fn, "node", None), getattr(fn, "home", None)
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or home is None:
        return set()
    out: set[tuple[str, str]] = set()
    for ret in ast.walk(node):
        if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Call):
            value = home.eval(ret.value.func, {}, None)
            view = getattr(getattr(value, "home", None), "project", None)
            name = getattr(value, "name", None)
            if view is not None and isinstance(name, str):
                out.add((os.path.abspath(view.path), name))
    return out


def run_frozen(index: Any, call: ast.Call) -> bool:
    """The model built by ``call`` is bound to a name that the script puts in eval mode or
    freezes (``teacher.eval()``, ``requires_grad_(False)``), never back in train mode, and
    whose parameters no optimizer receives: it is run, not trained."""
    facts = tree_facts(index)
    name = _bound_name(facts, call)
    if name is None:
        return False
    # a model built inside a function is that function's local: another function's
    # ``model.eval()`` (an evaluation helper's parameter) is another model
    scope = _enclosing_function(facts, call)
    frozen = False
    for node in facts.nodes_in(scope, (ast.Call,)) if scope is not None else facts.of(ast.Call):
        if any(isinstance(a, ast.Name) and a.id == name for a in node.args) or any(
            isinstance(k.value, ast.Name) and k.value.id == name for k in node.keywords
        ):
            return False  # handed to a helper (train_one_epoch(model, ...)) that may train it
        func = node.func
        if not isinstance(func, ast.Attribute):
            continue
        owner = func.value.id if isinstance(func.value, ast.Name) else None
        if owner == name and func.attr == "train":
            return False
        if owner == name and (func.attr == "eval" or func.attr == "requires_grad_"):
            frozen = True
        if func.attr == "parameters" and owner == name and _in_optimizer(node, facts):
            return False
    return frozen


def _enclosing_function(facts: Any, node: ast.AST) -> ast.AST | None:
    """The innermost function definition around ``node`` (None at module level)."""
    line = getattr(node, "lineno", 0)
    around = [
        fn
        for kind in (ast.FunctionDef, ast.AsyncFunctionDef)
        for fn in facts.of(kind)
        if fn.lineno <= line <= (fn.end_lineno or fn.lineno)
    ]
    return max(around, key=lambda fn: fn.lineno, default=None)


def _bound_name(facts: Any, call: ast.Call) -> str | None:
    """The name ``call``'s result is assigned to (``model = Segmenter()``), if one."""
    return next(
        (
            stmt.targets[0].id
            for stmt in facts.of(ast.Assign)
            if len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and any(sub is call for sub in ast.walk(stmt.value))
        ),
        None,
    )


def frozen_parts(index: Any, call: ast.Call) -> tuple[str, ...]:
    """Submodules of the model built by ``call`` that the training code keeps in eval mode
    (``model.train(); model.backbone.eval()`` before the batches; ``""``: the whole model's
    BatchNorm, by a BN eval loop or ``model.apply(set_bn_eval)``): they normalize with
    stored statistics, whatever the batch (B10). Only where nothing can put them back in
    train mode: in a scope that trains (``backward()`` or ``step()``), after every
    ``train()`` of that scope; no other scope calls ``train()`` on that name, and the scope
    hands the model to no function after it (``train_one_epoch(model, ...)`` may call
    ``model.train()``).

    >>> from types import SimpleNamespace
    >>> src = "model = Net()\\nfor e in range(3):\\n    model.train()\\n"
    >>> src += "    model.backbone.eval()\\n    model(x).sum().backward()\\n"
    >>> tree = ast.parse(src)
    >>> frozen_parts(SimpleNamespace(tree=tree, memo={}, functions={}), tree.body[0].value)
    ('backbone',)
    """
    name = _bound_name(tree_facts(index), call)
    if name is None:
        return ()
    out: set[str] = set()
    for scope in [index.tree, *tree_facts(index).of(ast.FunctionDef)]:
        nodes = own_nodes(scope)
        calls = [n for n in nodes if isinstance(n, ast.Call)]
        if not any(_attr_name(c) in ("backward", "step") for c in calls):
            continue
        frozen: dict[str, int] = {}
        for c in calls:
            chain = attribute_chain(c.func.value) if isinstance(c.func, ast.Attribute) else None
            if chain and chain[0] == name and len(chain) > 1 and _attr_name(c) == "eval":
                frozen[".".join(chain[1:])] = c.lineno
        for chain, line in bn_freezes(nodes, getattr(index, "functions", {})):
            if chain[0] == name:
                frozen[".".join(chain[1:])] = line
        for part, line in frozen.items():
            handed_on = any(
                c.lineno > line and any(isinstance(a, ast.Name) and a.id == name for a in c.args)
                for c in calls
            )
            if not (
                train_after(calls, name, line)
                or handed_on
                or _trained_elsewhere(index, calls, name)
            ):
                out.add(part)
    return tuple(sorted(out))


def _trained_elsewhere(index: Any, own: list[ast.Call], name: str) -> bool:
    """A scope other than the one whose calls are ``own`` calls ``<name>...train()``."""
    mine = {id(c) for c in own}
    return any(
        _attr_name(c) == "train"
        and (attribute_chain(c.func.value) or [""])[0] == name  # type: ignore[attr-defined]
        and id(c) not in mine
        for c in tree_facts(index).of(ast.Call)
    )


def _attr_name(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else ""


def _in_optimizer(params: ast.Call, facts: Any) -> bool:
    """``name.parameters()`` handed to a call other than a loop or a list (an optimizer,
    ``chain(...)``, parameter groups)."""
    for node in facts.of(ast.Call):
        if node is params:
            continue
        if any(sub is params for arg in node.args for sub in ast.walk(arg)) or any(
            sub is params for k in node.keywords for sub in ast.walk(k.value)
        ):
            callee = node.func.attr if isinstance(node.func, ast.Attribute) else ""
            callee = callee or (node.func.id if isinstance(node.func, ast.Name) else "")
            if callee not in ("list", "sum", "len", "enumerate", "filter", "map"):
                return True
    return False
