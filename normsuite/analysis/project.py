"""The project index: which file a module name means, and what a name imported from
another file of the project is (a model class, a torch layer subclass, a helper function,
a constant).

Lazy by design: nothing is walked up front. A name is resolved when the evaluator meets it,
by probing the few files Python itself would import (the importer's folder, the folder
above its package, the project root and its ``src/``), and each file read as a dependency
is parsed once and kept (LRU). Analysing one file of a package reads only what it imports.

>>> import os, tempfile
>>> d = tempfile.mkdtemp()
>>> src = "import torch.nn as nn\\nclass B(nn.Module): pass\\n"
>>> _ = open(os.path.join(d, "base.py"), "w").write(src)
>>> view = project_for(os.path.join(d, "model.py"))
>>> view.lookup("base.B", None).name
'B'
"""

from __future__ import annotations

import ast
import os
import re
from collections import OrderedDict
from functools import lru_cache
from typing import Any

from .files import SourceError, read_source
from .ir import UNKNOWN
from .symbols import ExternalFunction, PlainClass

MAX_CACHED = 128  # dependency files kept parsed (an LRU: hot bases stay, memory stays low)
MAX_TREES = 32  # parsed trees kept for a file read both as a target and as a dependency
MAX_CHAIN = 8  # re-exports followed (``__init__.py`` importing from ``.base``)
_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
# Top-level modules never in the project: skip the file probes for their names.
_EXTERNAL = frozenset(
    {
        "torch",
        "torchvision",
        "torchaudio",
        "numpy",
        "np",
        "lightning",
        "pytorch_lightning",
        "pl",
        "L",
        "nn",
        "F",
        "math",
        "os",
        "sys",
        "typing",
        "functools",
        "collections",
        "dataclasses",
        "itertools",
        "abc",
        "enum",
        "re",
        "json",
        "logging",
        "warnings",
        "copy",
        "einops",
        "scipy",
        "pandas",
    }
)


@lru_cache(maxsize=4096)
def find_root(directory: str) -> str:
    """The nearest folder at or above ``directory`` holding a project marker
    (pyproject.toml, setup.py, setup.cfg, .git); without one, the outermost package
    around ``directory`` (an installed ``site-packages/timm``), else ``directory``."""
    here = directory
    installed = os.sep + "site-packages" + os.sep in directory + os.sep or (
        os.sep + "dist-packages" + os.sep in directory + os.sep
    )
    while not installed:  # an installed package is its own project, not the venv's owner
        if any(os.path.exists(os.path.join(here, m)) for m in _MARKERS):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    top = _package_top(directory)
    found = directory if top == directory else _outermost_package(directory, top)
    if installed:
        return found
    return _script_folder(found) or found


_SCRIPT_LEVELS = 2  # folders above a model folder searched for the script that imports it
_MAX_SCRIPTS = 64  # top-level .py files read per folder, at most


def _script_folder(found: str) -> str | None:
    """The folder a script runs from that imports ``found``'s modules as a package: without
    a project marker, ``run.py`` beside ``nets/`` doing ``from nets.net import Net`` (Python
    puts run.py's folder on sys.path). Up to two folders up, read once per folder."""
    here, best = found, None
    for _ in range(_SCRIPT_LEVELS):
        parent = os.path.dirname(here)
        if parent == here:
            break
        prefix = os.path.relpath(found, parent).replace(os.sep, ".")
        if _imports_from(parent, prefix):
            best = parent
        here = parent
    return best


@lru_cache(maxsize=1024)
def _imports_from(folder: str, module: str) -> bool:
    """A top-level ``.py`` file of ``folder`` imports ``module`` or a module under it."""
    pattern = re.compile(rf"^\s*(?:from|import)\s+{re.escape(module)}(?:\.|\s|$)", re.M)
    try:
        with os.scandir(folder) as entries:
            # regular files only: opening a fifo named x.py would block for ever
            paths = sorted(e.path for e in entries if e.name.endswith(".py") and e.is_file())
    except OSError:
        return False
    for path in paths[:_MAX_SCRIPTS]:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                if pattern.search(handle.read(200_000)):
                    return True
        except OSError:
            continue
    return False


def _outermost_package(directory: str, top: str) -> str:
    """The child of ``top`` on the way to ``directory`` (the top-level package folder)."""
    rel = os.path.relpath(directory, top)
    return os.path.join(top, rel.split(os.sep)[0])


@lru_cache(maxsize=4096)
def _package_top(directory: str) -> str:
    """The folder above the outermost package containing ``directory`` (where Python's
    ``sys.path`` entry for it must be)."""
    here = directory
    while os.path.isfile(os.path.join(here, "__init__.py")):
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    return here


class Project:
    """Files of one project root, read on demand as dependencies."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.marked = any(os.path.exists(os.path.join(root, m)) for m in _MARKERS) or (
            os.path.isfile(os.path.join(root, "__init__.py"))
        )
        self._indexes: OrderedDict[str, Any] = OrderedDict()
        self._building: set[str] = set()
        self._files: dict[tuple[str, str], str | None] = {}
        self._scripts: list[tuple[str, frozenset[str]]] | None = None  # entrypoints.py
        self._trees: OrderedDict[str, tuple[str, ast.Module]] = OrderedDict()
        self._lookups: dict[tuple[str, str], Any] = {}
        self.memo: dict[Any, Any] = {}  # per-project results of other modules

    # ------------------------------------------------------------------ module -> file
    def module_file(self, module: str, importer: str) -> str | None:
        """The file a module name means when imported from ``importer`` (a path), or None.

        ``module`` may be relative (``.base``, ``..layers``)."""
        here = os.path.dirname(importer)
        level = len(module) - len(module.lstrip("."))
        if level:
            base = here
            for _ in range(level - 1):
                base = os.path.dirname(base)
            rest = module[level:]
            return self._probe(base, rest) if rest else _init(base)
        for base in self._search_dirs(here):
            found = self._probe(base, module)
            if found:
                return found
        return None

    def _search_dirs(self, here: str) -> list[str]:
        dirs = [here, _package_top(here), self.root, os.path.join(self.root, "src")]
        return list(dict.fromkeys(dirs))

    def _probe(self, base: str, module: str) -> str | None:
        key = (base, module)
        if key not in self._files:
            stem = os.path.join(base, *module.split("."))
            found = None
            for candidate in (stem + ".py", os.path.join(stem, "__init__.py")):
                if os.path.isfile(candidate):
                    found = candidate
                    break
            self._files[key] = found
        return self._files[key]

    # ------------------------------------------------------------------ files -> indexes
    def index(self, path: str) -> Any:
        """The ModuleIndex of a dependency file (cached), or None when it cannot be read."""
        path = os.path.abspath(path)
        if path in self._indexes:
            self._indexes.move_to_end(path)
            return self._indexes[path]
        if path in self._building:
            return None  # an import cycle: the file is being read right now
        from .extract import BudgetExceeded, ModuleIndex

        self._building.add(path)
        try:
            source = read_source(path)
            if path.endswith(".ipynb"):  # a training notebook: its code cells, in order
                from .notebook import NotebookError, read_notebook

                try:
                    source = read_notebook(source, path).text
                except NotebookError:
                    source = ""
            tree = self.parse(path, source)
            label = display_path(path, self.root)
            index = ModuleIndex(tree, source, project=ProjectView(self, path), label=label)
        except (SourceError, SyntaxError, ValueError, RecursionError, MemoryError):
            index = None
        except BudgetExceeded:
            index = None
        finally:
            self._building.discard(path)
        self._indexes[path] = index
        if len(self._indexes) > MAX_CACHED:
            self._indexes.popitem(last=False)
        return index

    def parse(self, path: str, source: str) -> ast.Module:
        """``ast.parse`` once per file and source: a file analyzed after being read as a
        dependency (or the other way round) is not parsed twice."""
        path = os.path.abspath(path)
        cached = self._trees.get(path)
        if cached is not None and cached[0] == source:
            self._trees.move_to_end(path)
            return cached[1]
        dep = self._indexes.get(path)  # read as a dependency: its index keeps the tree
        if dep is not None and dep.source == source:
            return dep.tree
        tree = ast.parse(source, filename=path)
        self._trees[path] = (source, tree)
        if len(self._trees) > MAX_TREES:
            self._trees.popitem(last=False)
        return tree

    # ------------------------------------------------------------------ names
    def lookup(self, qual: str, importer: str, depth: int = 0) -> Any:
        """What the dotted name ``qual`` (as a file imports it) is in the project:
        a ClassInfo, a TorchSubclass, an ExternalFunction, a constant, or UNKNOWN."""
        key = (qual, importer if qual.startswith(".") else _dirname(importer))
        if key in self._lookups:
            return self._lookups[key]
        found = self._lookup(qual, importer, depth)
        if not self._building:  # inside an import cycle a name may be missing for now
            self._lookups[key] = found
        return found

    def _lookup(self, qual: str, importer: str, depth: int) -> Any:
        stripped = qual.lstrip(".")
        if (
            depth > MAX_CHAIN
            or not stripped
            or (stripped == qual and qual.split(".")[0] in _EXTERNAL)
        ):
            return UNKNOWN
        dots = qual[: len(qual) - len(stripped)]
        parts = stripped.split(".")
        for cut in range(len(parts) - 1, -1, -1):
            if cut == 0 and not dots:
                break
            module = dots + ".".join(parts[:cut])
            path = self.module_file(module, importer)
            if path is None:
                continue
            if len(parts) - cut != 1:
                return UNKNOWN  # an attribute of a member (``mod.Class.attr``): not followed
            dep = self.index(path)
            return UNKNOWN if dep is None else self.member(dep, path, parts[cut], depth)
        return UNKNOWN

    def member(self, dep: Any, path: str, name: str, depth: int) -> Any:
        """A top-level name of a dependency file."""
        if name in dep.classes:
            return dep.classes[name]
        if name in dep.torch_subclasses:
            return dep.torch_subclasses[name].value()
        if name in dep.class_nodes:
            return PlainClass(dep.class_nodes[name], dep)
        if name in dep.functions:
            return ExternalFunction(dep.functions[name], dep)
        if name in dep.env:
            return dep.env[name]
        if name in dep.lazy:
            return dep.materialize(name)
        if name in dep.imports:  # a re-export: ``from .base import Backbone`` in __init__.py
            return self.lookup(dep.imports[name], path, depth + 1)
        origin = dep.star_origin(name) if dep.star_modules else None
        if origin is not None:  # ``from .common import *`` in __init__.py
            return self.lookup(origin, path, depth + 1)
        return UNKNOWN

    def import_alias(self, module: str, importer: str, name: str) -> str | None:
        """What ``name`` means when ``from module import *`` brings an import of that module
        (``import torch.nn as nn`` in Pytorch-UNet's unet_parts.py): "torch.nn"."""
        path = self.module_file(module, importer)
        dep = self.index(path) if path is not None else None
        if dep is None or name.startswith("_"):
            return None
        if name in dep.imports:
            return dep.imports[name]
        # fastai's ``from ...torch_basics import *``, whose ``from .torch_imports import *``
        # brings ``import torch.nn as nn``: the name as the deeper module imports it
        origin = dep.star_origin(name, 1) if dep.star_modules else None
        return origin if origin is not None and origin.split(".")[0] == "torch" else None

    def exports(self, module: str, importer: str, name: str, depth: int = 0) -> bool:
        """Whether ``from module import *`` (as ``importer`` imports it) brings ``name``: the
        module defines it at top level or re-exports it (not ``_private`` names, which a
        star import skips without ``__all__``)."""
        path = self.module_file(module, importer)
        dep = self.index(path) if path is not None else None
        if dep is None:
            return False
        if name.startswith("_") and "__all__" not in dep.lazy and "__all__" not in dep.env:
            return False
        return dep._defines(name) or (
            bool(dep.star_modules) and dep.star_origin(name, depth + 1) is not None
        )


class ProjectView:
    """A project as one of its files sees it (relative imports start from that file)."""

    def __init__(self, project: Project, path: str) -> None:
        self.project = project
        self.path = path

    def lookup(self, qual: str, index: Any = None) -> Any:
        return self.project.lookup(qual, self.path)

    def exports(self, module: str, name: str, depth: int = 0) -> bool:
        return self.project.exports(module, self.path, name, depth)

    def import_alias(self, module: str, name: str) -> str | None:
        return self.project.import_alias(module, self.path, name)

    def plain_class(self, qual: str) -> tuple[ast.ClassDef, Any] | None:
        """A class that is not a module (a ``@dataclass`` config), with its file's index."""
        found = self.lookup(qual)
        if isinstance(found, PlainClass):
            return found.node, found.home
        return None


def display_path(path: str, root: str) -> str:
    """``path`` as a user reads it: relative to the working folder when under it, else to
    the project root."""
    cwd = os.getcwd()
    if os.path.commonpath([cwd, path]) == cwd:
        return os.path.relpath(path, cwd)
    return os.path.relpath(path, root)


@lru_cache(maxsize=8192)
def _dirname(path: str) -> str:
    return os.path.dirname(path)


def _init(directory: str) -> str | None:
    candidate = os.path.join(directory, "__init__.py")
    return candidate if os.path.isfile(candidate) else None


_PROJECTS: dict[str, Project] = {}


def project_for(path: str) -> ProjectView:
    """The project a file on disk belongs to (one Project per root, per process)."""
    path = os.path.abspath(path)
    root = find_root(os.path.dirname(path))
    project = _PROJECTS.get(root)
    if project is None:
        project = _PROJECTS[root] = Project(root)
    return ProjectView(project, path)


def clear() -> None:
    """Forget every project (tests rewrite files between runs)."""
    _PROJECTS.clear()
    find_root.cache_clear()
    _imports_from.cache_clear()
    _package_top.cache_clear()
