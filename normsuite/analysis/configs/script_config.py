"""The config a script runs with, without ``--config``: the file a
``@hydra.main(config_path="conf", config_name="config")`` decorator names, or the YAML a
script loads itself (``cfg = yaml.safe_load(open("config.yaml"))``), relative to the
script or the project root.

>>> import ast
>>> fn = ast.parse("@hydra.main(config_path='conf', config_name='config')\\ndef f(cfg): ...")
>>> decorated_config(fn.body[0], "/repo/train.py")
'/repo/conf/config.yaml'
"""

from __future__ import annotations

import ast
import os
from typing import Any

from .yaml_config import resolve_interpolations, yaml_mapping
from .yaml_safe import ConfigReadError


def decorated_config(fn: ast.AST, script: str) -> str | None:
    """The YAML file ``fn``'s ``@hydra.main(...)`` names (a path; it may not exist)."""
    for deco in getattr(fn, "decorator_list", []):
        if not (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute)):
            continue
        owner = deco.func.value
        if deco.func.attr != "main" or not (isinstance(owner, ast.Name) and owner.id == "hydra"):
            continue
        kw = {k.arg: k.value for k in deco.keywords if k.arg}
        folder, name = kw.get("config_path"), kw.get("config_name")
        if not (isinstance(folder, ast.Constant) and isinstance(folder.value, str)):
            return None  # no folder (or a computed one): the config is not on disk here
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
            return None
        file = name.value if name.value.endswith(".yaml") else name.value + ".yaml"
        return os.path.join(os.path.dirname(os.path.abspath(script)), folder.value, file)
    return None


def config_value(path: str, keys: list[str]) -> Any:
    """The value at ``keys`` (``cfg.data.batch_size`` -> ["data", "batch_size"]) of the
    composed config at ``path``; None when it is not there."""
    try:
        data = yaml_mapping(path) if os.path.isfile(path) else None
    except (ConfigReadError, OSError, ValueError):
        return None
    node: Any = resolve_interpolations(data) if data is not None else None
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


_LOADERS = frozenset({"safe_load", "load", "full_load"})


def loaded_yaml(tree: ast.Module, name: str, flags: dict[str, Any]) -> str | None:
    """The file name of ``name = yaml.safe_load(f)`` (``f`` opened by ``with open(...)``),
    ``yaml.safe_load(open("c.yaml"))`` or ``OmegaConf.load("c.yaml")``: the first
    ``.yaml``/``.yml`` string in the path expression, or the string default of an
    argparse flag it reads (``args.config`` in ``flags``). None when the name is bound
    otherwise too, or no file name is written."""
    values = [
        stmt.value
        for stmt in ast.walk(tree)
        if isinstance(stmt, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets)
    ]
    if len(values) != 1 or not isinstance(values[0], ast.Call):
        return None
    call = values[0]
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr in _LOADERS) or not call.args:
        return None
    source = call.args[0]
    if isinstance(source, ast.Name):  # with open(path) as f: cfg = yaml.safe_load(f)
        opened = [
            item.context_expr
            for node in ast.walk(tree)
            if isinstance(node, ast.With)
            for item in node.items
            if isinstance(item.optional_vars, ast.Name) and item.optional_vars.id == source.id
        ]
        source = opened[0] if len(opened) == 1 else source
    for node in ast.walk(source):
        text = node.value if isinstance(node, ast.Constant) else None
        if isinstance(text, str) and text.endswith((".yaml", ".yml")):
            return text
        if isinstance(node, ast.Attribute) and isinstance(flags.get(node.attr), str):
            value = flags[node.attr]
            if value.endswith((".yaml", ".yml")):
                return value
    return None


def find_config(file: str, script: str, root: str) -> str | None:
    """``file`` beside the script, else under the project root."""
    for folder in (os.path.dirname(os.path.abspath(script)), root):
        path = os.path.join(folder, file)
        if os.path.isfile(path):
            return path
    return None
