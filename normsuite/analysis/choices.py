"""Layers a model holds but never runs: the entries of a choice its ``forward`` makes once.

``self.norms = nn.ModuleDict({"bn": nn.BatchNorm2d(c), "gn": nn.GroupNorm(32, c)})`` with
``forward`` applying ``self.norms[self.norm]`` and ``self.norm = "gn"`` set in
``__init__``: the BatchNorm is registered (its parameters exist) but never sees a batch,
so no batch rule applies to it and no advice is given for it. Only a choice the whole
class makes the same way counts: every use of the dict is a subscript by a constant or by
an attribute that only ``__init__`` assigns; anything else (``.items()``, a key computed
at run time, a setter method) keeps every entry.
"""

from __future__ import annotations

import ast

from .ir import ClassInfo, Layer, ModuleInstance
from .tree_facts import self_attribute


def unused_entries(instance: ModuleInstance, selected: dict[int, set[str]]) -> set[int]:
    """Ids of the layers (entries and what is inside them) of ``instance``'s ModuleDicts
    that no method picks, given the keys forward picked (``FlowTracer.selected``)."""
    unused: set[int] = set()
    for inst in _instances(instance):
        classes = _class_chain(inst.cls)
        if classes is None:
            continue  # a base class outside the file may use the dict any way it likes
        for attr, value in inst.attrs.items():
            if not isinstance(value, Layer) or value.type != "ModuleDict":
                continue
            keys = selected.get(id(value))
            constants = _fixed_choice(classes, attr)
            if not keys or constants is None:
                continue
            for name, child in zip(value.child_names, value.children, strict=False):
                if name not in keys | constants:
                    unused.add(id(child))
                    unused.update(id(layer) for _, layer in child.walk(name))
    return unused


def _instances(instance: ModuleInstance) -> list[ModuleInstance]:
    out = [instance]
    for _, layer in instance.walk():
        if layer.instance is not None and layer.instance not in out:
            out.append(layer.instance)
    return out


def _class_chain(cls: ClassInfo) -> list[ast.ClassDef] | None:
    """The class and its module-class parents, or None where a parent is not read (a base
    in another file or package, whose methods could switch the choice)."""
    chain: list[ast.ClassDef] = []
    current: ClassInfo | None = cls
    while current is not None:
        chain.append(current.node)
        if current.unresolved_bases:
            return None
        current = current.parent
    return chain


def _fixed_choice(classes: list[ast.ClassDef], attr: str) -> set[str] | None:
    """The constant keys ``self.<attr>`` is read with, when every use of it in the classes
    is its assignment in ``__init__`` or a subscript by a constant or by ``self.<key>``
    that only ``__init__`` assigns; else None (a choice made at run time)."""
    init_only = _assigned_only_in_init(classes)
    constants: set[str] = set()
    for cls in classes:
        for method in cls.body:
            if not isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            parents = {id(c): p for p in ast.walk(method) for c in ast.iter_child_nodes(p)}
            for node in ast.walk(method):
                if self_attribute(node) != attr:
                    continue
                if isinstance(node.ctx, ast.Store) and method.name == "__init__":  # type: ignore[attr-defined]
                    continue
                parent = parents.get(id(node))
                if not (isinstance(parent, ast.Subscript) and parent.value is node):
                    return None
                key = parent.slice
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    constants.add(key.value)  # self.nets["D"] in discriminate(): used
                elif self_attribute(key) not in init_only:
                    return None
    return constants


def _assigned_only_in_init(classes: list[ast.ClassDef]) -> set[str]:
    stored: dict[str, set[str]] = {}
    for cls in classes:
        for method in cls.body:
            if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(method):
                    name = self_attribute(node)
                    if name is not None and isinstance(node.ctx, ast.Store):  # type: ignore[attr-defined]
                        stored.setdefault(name, set()).add(method.name)
    return {name for name, where in stored.items() if where == {"__init__"}}
