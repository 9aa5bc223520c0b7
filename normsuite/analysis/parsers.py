"""Argument parsers a training script takes from another file of its project.

``args = get_args()`` with ``get_args`` in ``options.py``, or pix2pix/CycleGAN's
``opt = TrainOptions().parse()`` whose ``--batch_size`` is added by ``BaseOptions`` in
``options/base_options.py``: :func:`parser_files` names the files whose
``add_argument`` defaults the script's ``args.batch_size`` reads. Only a function or class
that itself builds or parses a parser counts (a model factory imported from ``train.py``
does not bring ``train.py``'s flags along).
"""

from __future__ import annotations

import ast
from typing import Any

from .tree_facts import tree_facts

_PARSING = frozenset({"add_argument", "parse_args", "parse_known_args", "ArgumentParser"})
MAX_BASES = 4  # TrainOptions -> BaseOptions -> ...: deeper chains are not followed


def parser_files(index: Any) -> list[tuple[str, list[ast.AST]]]:
    """(path, the definitions whose ``add_argument`` calls count) of the project files that
    define the parsers ``index``'s file calls, or whose parsed arguments it imports: only
    the parser the script uses, not a test parser beside it in ``options.py``."""
    view = index.project
    if view is None:
        return []
    out = _imported_arguments(index)
    for call in tree_facts(index).of(ast.Call):
        func = call.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call):
            func = func.value.func  # TrainOptions().parse(): the class
        qual = index.qualname(func) if isinstance(func, (ast.Name, ast.Attribute)) else None
        module, _, name = (qual or "").rpartition(".")
        if not module:
            continue
        for found in _defining_files(view, module, name, index.project.path, 0):
            if found[0] not in [p for p, _ in out]:
                out.append(found)
    return out


def _imported_arguments(index: Any) -> list[tuple[str, list[ast.AST]]]:
    """Files of the project whose module-level ``args = parser.parse_args()`` this file
    imports (``from config import args``: the parse runs at import)."""
    view = index.project
    out: list[tuple[str, list[ast.AST]]] = []
    for qual in set(index.imports.values()):
        module, _, name = qual.rpartition(".")
        path = view.project.module_file(module, view.path) if module else None
        dep = view.project.index(path) if path is not None else None
        if dep is None or "add_argument" not in dep.source:
            continue
        for stmt in dep.tree.body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else []
            if any(isinstance(t, ast.Name) and t.id == name for t in targets) and any(
                isinstance(c, ast.Call)
                and isinstance(c.func, ast.Attribute)
                and c.func.attr in ("parse_args", "parse_known_args")
                for c in ast.walk(stmt.value)
            ):
                out.append((path, [dep.tree]))  # the module's own parser, run at import
                break
    return out


def _defining_files(
    view: Any, module: str, name: str, importer: str, depth: int
) -> list[tuple[str, list[ast.AST]]]:
    """The file of ``module.name`` when it is a function or class that builds or parses an
    argument parser, and the files of the classes it derives from that add arguments."""
    path = view.project.module_file(module, importer)
    dep = view.project.index(path) if path is not None else None
    if dep is None or depth > MAX_BASES:
        return []
    node = next(
        (
            s
            for s in dep.tree.body
            if isinstance(s, (ast.FunctionDef, ast.ClassDef)) and s.name == name
        ),
        None,
    )
    if node is None:
        return []
    out: list[tuple[str, list[ast.AST]]] = []
    for base in node.bases if isinstance(node, ast.ClassDef) else ():
        base_module, _, base_name = (dep.qualname(base) or "").rpartition(".")
        if base_module:  # a base in another file (BaseOptions in base_options.py)
            out += _defining_files(view, base_module, base_name, path, depth + 1)
    if not (out or _parses(node, dep)):
        return []
    # the definition and the functions of its file it calls (get_args -> get_parser)
    called = set(tree_facts(dep).calls_in(node))
    helpers = [s for s in dep.tree.body if isinstance(s, ast.FunctionDef) and s.name in called]
    return [(path, [node, *helpers]), *out] if "add_argument" in dep.source else out


def _parses(node: ast.AST, dep: Any) -> bool:
    """Whether ``node`` builds or parses an argument parser, itself or through a function
    of its file that it calls (``get_args`` -> ``get_parser().parse_args()``)."""
    facts = tree_facts(dep)
    called = set(facts.calls_in(node))
    if _calls_parsing(node, dep):
        return True
    return any(
        _calls_parsing(s, dep)
        for s in dep.tree.body
        if isinstance(s, ast.FunctionDef) and s.name in called
    )


def _calls_parsing(node: ast.AST, dep: Any) -> bool:
    facts = tree_facts(dep)
    if set(facts.calls_in(node)) & _PARSING:
        return True
    calls = facts.nodes_in(node, (ast.Call,))
    return any(isinstance(c.func, ast.Attribute) and c.func.attr in _PARSING for c in calls)
