"""LightningCLI and Hydra YAML configs.

LightningCLI: ``data.init_args.batch_size`` or ``data.batch_size``; ``trainer.devices``
(4, [0, 1], "0,1"; -1 and "auto" are unknown), ``trainer.num_nodes``,
``accumulate_grad_batches``, ``sync_batchnorm``.

Hydra: the ``defaults:`` list is composed from the config's folder (``datamodule: mnist``
reads ``datamodule/mnist.yaml`` into ``datamodule``; ``_self_`` orders the primary
config, last by default), ``${a.b}`` interpolations that lead to a literal are resolved,
and ``batch_size`` is found anywhere under ``data`` / ``datamodule`` / ``loader``
(training entries before validation/test ones).

>>> facts({"data": {"init_args": {"batch_size": 2}}, "trainer": {"devices": 4}}, "c.yaml").batch
(2, 'config:c.yaml data.init_args.batch_size=2')
"""

from __future__ import annotations

import os
import re
from typing import Any

from ..entrypoints import eval_name
from .scan import ConfigScan, device_count, positive_int
from .yaml_safe import load_yaml

MAX_DEPTH = 8  # nested defaults lists
MAX_NODES = 20_000  # nodes visited while searching a composed config
_DATA_KEYS = ("data", "datamodule", "data_module", "loader", "loaders", "dataloader", "dataset")
_INTERP = re.compile(r"^\$\{([A-Za-z_][\w.]*)\}$")


_SUBCOMMANDS = ("fit", "validate", "test", "predict")
# Keys that hold the training batch (``train_batch_size: 2`` beside ``eval_batch_size``).
BATCH_KEYS = ("batch_size", "train_batch_size", "batch_size_train", "per_device_train_batch_size")


def read_yaml_config(path: str) -> ConfigScan:
    data = yaml_mapping(path)
    if data is None:
        return ConfigScan()
    return facts(resolve_interpolations(data), os.path.basename(path))


def read_yaml_configs(paths: list[str]) -> ConfigScan:
    """Several ``--config`` files, merged key by key before reading them, as LightningCLI
    does (``trainer.num_nodes`` of one file and ``trainer.devices`` of a later one)."""
    merged: dict[str, Any] = {}
    for path in paths:
        data = yaml_mapping(path)
        if data is not None:
            merged = merge(merged, _flat_init_args(data))
    name = ", ".join(os.path.basename(p) for p in paths)
    return facts(resolve_interpolations(merged), name)


def _flat_init_args(data: dict[str, Any]) -> dict[str, Any]:
    """``data: {init_args: {batch_size: 3}}`` and ``data: {batch_size: 3}`` are one
    argument to LightningCLI: one key, so that the later file's wins when they merge."""
    out = dict(data)
    for key, section in data.items():
        if isinstance(section, dict) and isinstance(section.get("init_args"), dict):
            rest = {k: v for k, v in section.items() if k != "init_args"}
            out[key] = {**rest, **section["init_args"]}
    return out


def yaml_mapping(path: str) -> dict[str, Any] | None:
    """The mapping a YAML config stands for: Hydra defaults composed, a LightningCLI
    ``fit:`` section over the shared keys."""
    data = load_yaml(path)
    if isinstance(data, dict) and isinstance(data.get("defaults"), list):
        data = compose(path, data, 0)
    if not isinstance(data, dict):
        return None
    fit = data.get("fit")
    if isinstance(fit, dict) and fit.keys() & {"trainer", "data", "model"}:
        # LightningCLI keyed by subcommand (``fit: {trainer: ..., data: ...}``): the
        # training run reads the fit section over the shared keys
        shared = {k: v for k, v in data.items() if k not in _SUBCOMMANDS}
        data = merge(shared, fit)
    return data


# ---------------------------------------------------------------------- Hydra
def compose(path: str, data: dict[str, Any], depth: int) -> dict[str, Any]:
    """Merge a Hydra primary config with its ``defaults`` (group files of its folder)."""
    folder = os.path.dirname(os.path.abspath(path))
    out: dict[str, Any] = {}
    own = {k: v for k, v in data.items() if k != "defaults"}
    self_done = False
    for entry in data.get("defaults") or []:
        if entry == "_self_":
            out, self_done = merge(out, own), True
            continue
        for group, option in _entries(entry):
            if depth >= MAX_DEPTH or not isinstance(option, str):
                continue
            file = os.path.join(folder, group, option + ".yaml")
            if not os.path.isfile(file):
                file = os.path.join(folder, group + ".yaml") if option == "" else file
            if not os.path.isfile(file):
                continue
            loaded = load_yaml(file)
            if not isinstance(loaded, dict):
                continue
            if isinstance(loaded.get("defaults"), list):
                loaded = compose(file, loaded, depth + 1)
            package = _package(file, group)
            out = merge(out, _nest(package, loaded))
    return out if self_done else merge(out, own)


def _entries(entry: Any) -> list[tuple[str, Any]]:
    if isinstance(entry, str):  # "datamodule/mnist" or a config of the same folder
        group, _, option = entry.rpartition("/")
        return [(group, option)] if group else [("", entry)]
    if isinstance(entry, dict):
        out = []
        for key, value in entry.items():
            key = str(key).removeprefix("override ").strip()
            out.append((key.split("@")[0], value))
        return out
    return []


def _package(file: str, group: str) -> str:
    """Where a group file lands: its ``# @package`` header, else the group path."""
    try:
        with open(file, encoding="utf-8", errors="replace") as handle:
            head = handle.readline()
    except OSError:
        head = ""
    m = re.match(r"#\s*@package\s+(\S+)", head)
    if m:
        return "" if m.group(1) == "_global_" else m.group(1)
    return group.replace("/", ".")


def _nest(package: str, value: dict[str, Any]) -> dict[str, Any]:
    for part in reversed([p for p in package.split(".") if p]):
        value = {part: value}
    return value


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve_interpolations(root: dict[str, Any]) -> dict[str, Any]:
    """``${a.b}`` values replaced by what ``a.b`` holds, when that leads to a literal."""
    budget = [MAX_NODES]

    def lookup(dotted: str, hops: int) -> Any:
        node: Any = root
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        if isinstance(node, str) and hops < 8:
            m = _INTERP.match(node)
            if m:
                return lookup(m.group(1), hops + 1)
        return node if isinstance(node, (int, float, str, list)) else None

    def walk(node: Any) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            return node
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, str):
            m = _INTERP.match(node)
            if m:
                found = lookup(m.group(1), 0)
                return found if found is not None else node
        return node

    return walk(root)


# ---------------------------------------------------------------------- facts
def facts(data: dict[str, Any], name: str) -> ConfigScan:
    """Batch, devices, accumulation and SyncBN from a (composed) config mapping."""
    out = ConfigScan()
    found = _batch_size(data)
    if found is not None:
        key, value = found
        section = data.get(key.split(".")[0])
        if isinstance(section, dict):
            target = section.get("_target_") or section.get("class_path")
            out.data_target = target if isinstance(target, str) else None
        if isinstance(value, int):
            out.batch = (value, f"config:{name} {key}={value}")
        else:
            out.batch_unreadable = f"config:{name} {key}={value}"
            out.notes.append(
                f"{name}: {key}={value} is set at run time; the batch is unknown (pass "
                "--batch-size)"
            )
    trainer = data.get("trainer")
    if isinstance(trainer, dict):
        trainer = trainer.get("init_args", trainer) if "class_path" in trainer else trainer
        raw = trainer.get("devices", trainer.get("gpus"))
        devices = device_count(raw)
        nodes = positive_int(trainer.get("num_nodes")) or 1
        if devices is not None:
            where = f"config:{name} trainer.devices={devices}"
            if nodes > 1:
                where += f" x num_nodes={nodes}"
            out.devices = (devices * nodes, where)
        elif raw is not None:
            out.notes.append(
                f"{name}: trainer.devices={raw!r} depends on the machine; pass --devices"
            )
        accumulate = positive_int(trainer.get("accumulate_grad_batches"))
        if accumulate is not None:
            out.accumulate = (accumulate, f"config:{name} trainer.accumulate_grad_batches")
        out.sync = trainer.get("sync_batchnorm") is True
    return out


def _batch_size(data: dict[str, Any]) -> tuple[str, int | str] | None:
    """``batch_size`` (or ``train_batch_size``...) under a data/datamodule/loader section,
    training entries first. A value that is no literal (``${oc.env:BS}``, an interpolation
    that leads nowhere) is returned as its text: it overrides the code, with a value
    unknown here."""
    hits: list[tuple[int, str, int | str]] = []  # (rank, dotted key, value)
    budget = [MAX_NODES]

    def walk(node: Any, path: list[str]) -> None:
        budget[0] -= 1
        if budget[0] < 0 or not isinstance(node, dict):
            return
        for key, value in node.items():
            key = str(key)
            readable = positive_int(value) is not None
            if key in BATCH_KEYS and (readable or _runtime_value(value)):
                words = [p for p in path if p != "init_args"]
                if any(eval_name(p) for p in words):
                    continue  # val/test/predict loaders
                rank = 0 if any("train" in p for p in [*words, key]) else 1
                hits.append((rank, ".".join([*path, key]), value))
            elif isinstance(value, dict):
                walk(value, [*path, key])

    for key in _DATA_KEYS:
        if isinstance(data.get(key), dict):
            walk(data[key], [key])
    if not hits and isinstance(data.get("model"), dict):
        # LightningCLI: a LightningModule that builds its own loaders takes its batch as an
        # init argument (``model.batch_size`` / ``model.init_args.batch_size``); read only
        # when no data section says it
        model = data["model"]
        for section in (model, model.get("init_args")):
            if isinstance(section, dict):
                for key in BATCH_KEYS:
                    value = section.get(key)
                    if positive_int(value) is not None or _runtime_value(value):
                        prefix = "model.init_args." if section is not model else "model."
                        hits.append((2, prefix + key, value))
    if not hits:
        return None
    _, key, value = min(hits, key=lambda h: (h[0], len(h[1])))
    return key, value


def _runtime_value(value: Any) -> bool:
    """A ``${...}`` the composition could not turn into a literal (an environment variable,
    a resolver, a key of another config)."""
    return isinstance(value, str) and value.strip().startswith("${")
