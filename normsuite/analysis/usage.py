"""Which classes are blocks of other classes, so that ``recommend`` advises whole models.

A class is a *block* when another module class builds it (``self.ff = FeedForward(d)``),
refers to it in its body, or is given it as an argument (``ResNet(Bottleneck, [3, 4, 6,
3])``, ``partial(Block, ...)``). Blocks are judged in their parent's context (an FFN inside
a Transformer is part of a transformer) and, by default, not advised on their own.

Across files only names are known: :func:`used_names` lists the class names a class refers
to, and :func:`hide_blocks` drops every model whose name another analyzed model uses.

>>> import ast
>>> from normsuite.analysis.extract import ModuleIndex
>>> src = '''
... import torch.nn as nn
... class FF(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.fc = nn.Linear(4, 4)
... class Net(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.ff = FF()
... '''
>>> index = ModuleIndex(ast.parse(src), src)
>>> block_parents(index)
{'FF': 'Net'}
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import replace
from pathlib import PurePath

from .extract import ModuleIndex
from .ir import ClassInfo
from .tree_facts import called_name, tree_facts
from .types import FileResult


def used_names(cls: ClassInfo, index: ModuleIndex) -> list[str]:
    """Classes imported from other modules that ``cls``'s body refers to, as
    ``"module.Name"`` (the module's last dotted part: ``from .blocks import Bottleneck`` ->
    ``"blocks.Bottleneck"``); names of the same file are handled by :func:`block_parents`."""
    imported = _imports(index)
    own = {cls.name, *(b.split(".")[-1] for b in cls.bases)}
    found: dict[str, None] = {}
    for name in _loaded_names(cls, index):
        if name in own or name not in imported:
            continue
        module = imported[name]
        if not module.startswith(("torch", "typing", "collections", "dataclasses", "enum")):
            found[f"{module.rsplit('.', 1)[-1]}.{name}"] = None
    return list(found)


def _local_names(cls: ClassInfo, index: ModuleIndex) -> set[str]:
    """Module classes of this file that ``cls``'s body refers to (other than itself and its
    bases)."""
    own = {cls.name, *(b.split(".")[-1] for b in cls.bases)}
    return {n for n in _loaded_names(cls, index) if n in index.classes and n not in own}


def _loaded_names(cls: ClassInfo, index: ModuleIndex) -> list[str]:
    """Names read in ``cls``'s body, in order (from the file's one walk)."""
    return tree_facts(index).loads_in(cls.node)


def _imports(index: ModuleIndex) -> dict[str, str]:
    """Imported class-like name -> the module it comes from (relative imports too)."""
    key = ("imported-classes",)
    if key not in index.memo:
        out: dict[str, str] = {}
        for node in tree_facts(index).of(ast.ImportFrom):
            if node.module:
                for alias in node.names:
                    name = alias.asname or alias.name
                    if name.lstrip("_")[:1].isupper():
                        out[name] = node.module
        index.memo[key] = out
    return index.memo[key]


def _name_of(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
        return node.id
    return None


def tree_nodes(index: ModuleIndex) -> dict[type, list[ast.AST]]:
    """Every node of the file's tree by its type, from the file's one walk: the questions
    asked of a whole file (calls, assignments, loops) share it."""
    return tree_facts(index).by_type


def block_parents(index: ModuleIndex) -> dict[str, str]:
    """Module class name -> the module class of this file that uses it as a block."""
    parents: dict[str, str] = {}
    facts = tree_facts(index)
    # A class that builds the block (``LlamaDecoderLayer(config, i)``) is its parent before
    # one that only names it (transformers' PreTrainedModel lists its blocks in
    # ``_can_record_outputs`` and ``isinstance`` checks, and comes first in the file).
    for cls in index.classes.values():
        own = {cls.name, *(b.split(".")[-1] for b in cls.bases)} | _ancestors(cls)
        for name in facts.calls_in(cls.node):
            if name in index.classes and name not in own:
                parents.setdefault(name, cls.name)
    for cls in index.classes.values():
        for name in _local_names(cls, index):
            if name not in _ancestors(cls):
                parents.setdefault(name, cls.name)
    calls: list[ast.Call] = tree_facts(index).of(ast.Call)
    # Instances bound to a name (attn = Attention(512, 512)), handed on below.
    built: dict[str, str] = {}
    for stmt in tree_facts(index).of(ast.Assign):
        value = stmt.value
        if (
            len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id in index.classes
        ):
            built[stmt.targets[0].id] = value.func.id
    # Blocks handed to a model class: ResNet(Bottleneck, ...), or an instance of one
    # (Decoder(..., attn) with attn = Attention(...): Bahdanau seq2seq), anywhere in the file.
    for node in calls:
        if not isinstance(node.func, ast.Name):
            continue
        parent = node.func.id
        if parent not in index.classes:
            continue
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            for sub in ast.walk(arg):
                name = _name_of(sub)
                name = built.get(name, name) if name not in index.classes else name
                if name and name != parent and name in index.classes:
                    parents.setdefault(name, parent)
    # Blocks built by module-level helper functions (torchvision's _stack builds
    # _InvertedResidual for MNASNet): the helper is their parent.
    for fn in index.functions.values():
        for name in facts.calls_in(fn):
            if name in index.classes and name not in parents and _helper(fn, index):
                parents[name] = fn.name
    # Blocks handed to a builder function: _swin_transformer(block=SwinTransformerBlockV2).
    for node in calls:
        if called_name(node.func) in _NOT_BUILDERS:
            continue
        for kw in node.keywords:
            name = _name_of(kw.value)
            block_word = kw.arg and any(w in kw.arg.lower() for w in _BLOCK_WORDS)
            if block_word and name in index.classes and name not in parents:
                parents[name] = called_name(node.func) or "a builder"
    # A class never is its own block's block: break cycles (A uses B, B uses A).
    return {c: p for c, p in parents.items() if parents.get(p) != c}


# Keywords that hand a block class to a builder (a model class given to a builder, as in
# timm's build_model_with_cfg(ConvNeXt, ...), is the model itself, not a block).
_BLOCK_WORDS = ("block", "layer", "cell", "unit", "mlp", "attn", "norm", "act", "downsample")
# Calls that take a class as an argument without building it.
_NOT_BUILDERS = frozenset(
    {
        "isinstance",
        "issubclass",
        "super",
        "type",
        "print",
        "getattr",
        "hasattr",
        "setattr",
        "register",
        "apply",
    }
)


def _helper(fn: ast.FunctionDef, index: ModuleIndex) -> bool:
    """A function whose result feeds a model class (it is called inside a class body), as
    opposed to a model constructor such as ``def resnet18(): return ResNet(...)``."""
    key = ("called-in-classes",)
    if key not in index.memo:  # one walk of the class bodies per file, not one per question
        facts = tree_facts(index)
        index.memo[key] = {
            name for cls in index.classes.values() for name in facts.calls_in(cls.node)
        }
    return fn.name in index.memo[key]


def _ancestors(cls: ClassInfo) -> set[str]:
    out: set[str] = set()
    parent = cls.parent
    while parent is not None and parent.name not in out:
        out.add(parent.name)
        parent = parent.parent
    return out


def top_parent(name: str, parents: dict[str, str]) -> str:
    """The outermost class that (transitively) uses ``name``."""
    seen = {name}
    while name in parents and parents[name] not in seen:
        name = parents[name]
        seen.add(name)
    return name


def hide_blocks(results: Sequence[FileResult]) -> list[FileResult]:
    """The results with only top-level models: classes no other analyzed class uses (in
    its file, or by name in another file). Findings are kept as they are."""
    # A user that itself has nothing to say (its blocks live in another file) hides nothing.
    used = {n for r in results for m in r.models if m.abstain is None for n in m.uses}
    out = []
    for result in results:
        stem = PurePath(result.path).stem
        # a direct block of a model that abstains (DeepLabV3, handed its head as an
        # argument) is shown: its advice is the only one the file has for those layers
        silent = {m.name for m in result.models if m.abstain is not None}
        models = [
            m
            for m in result.models
            if (m.part_of is None or (m.part_of in silent and m.block_of == m.part_of))
            and f"{stem}.{m.name}" not in used
        ]
        out.append(replace(result, models=models) if len(models) != len(result.models) else result)
    return out


__all__ = ["block_parents", "hide_blocks", "top_parent", "used_names"]
