"""Reading a recipe for ``normsuite compare`` and resolving the comparison settings.

A compare recipe is an ordinary LightningCLI config (``model``, ``data``, ``trainer``, ...)
with an optional ``compare:`` block that holds the defaults of the grid; command-line
options win over it::

    compare:
      norms: [bn, gn]
      batch_sizes: [2, 4, 16, 64]
      seeds: 3           # default 3
      epochs: 1          # or max_steps: 200
      lr_scaling: linear # none | linear | sqrt; default: by the optimizer (see below)
      lrs: {2: 0.01}     # optional explicit LR per batch size

The LR scaling default follows the recipe's optimizer: ``linear`` for SGD, ``sqrt`` for
Adam-family, ``none`` when compare cannot tell (:func:`~normsuite.compare.grid.default_lr_scaling`).

Pure Python (yaml only), so that every bad option fails before torch or lightning load.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import CompareError
from .grid import (
    DEFAULT_SEEDS,
    LR_SCALINGS,
    GridError,
    default_lr_scaling,
    parse_batch_sizes,
    parse_lrs,
    parse_norms,
)

# Trainer options a compare cell keeps from the recipe; everything else (loggers,
# checkpoints, callbacks, devices, epochs) is decided by compare itself.
KEPT_TRAINER_KEYS = (
    "accelerator",
    "precision",
    "gradient_clip_val",
    "gradient_clip_algorithm",
    "accumulate_grad_batches",
)


@dataclass
class CompareSettings:
    """Everything that decides the results of a comparison (its fingerprint is stored)."""

    recipe: dict[str, Any]
    norms: list[str]
    batch_sizes: list[int]
    seeds: int
    max_steps: int | None = None
    epochs: float | None = None
    lr_scaling: str = "linear"
    lrs: dict[int, float] = field(default_factory=dict)
    base_lr: float | None = None
    base_batch: int | None = None
    lr_path: tuple[str, ...] = ()
    lr_scaling_why: str = ""  # where lr_scaling came from; shown, not part of the fingerprint

    def fingerprint_fields(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("lr_scaling_why")
        data["lrs"] = {str(k): v for k, v in sorted(self.lrs.items())}
        data["lr_path"] = ".".join(self.lr_path)
        return data


def load_recipe(config: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """A LightningCLI config as a dict, from a YAML path or a mapping (copied)."""
    if isinstance(config, Mapping):
        data: Any = copy.deepcopy(dict(config))
    else:
        path = Path(config)
        if not path.is_file():
            raise CompareError(f"config {str(path)!r} does not exist; pass --config recipes/X.yaml")
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CompareError(f"cannot read config {str(path)!r}: {first}") from None
    if not isinstance(data, dict):
        raise CompareError("the config must be a YAML mapping with model: and data: sections")
    for section in ("model", "data"):
        if not isinstance(data.get(section), dict) or "class_path" not in data[section]:
            raise CompareError(
                f"the config has no {section}: section with a class_path; compare needs a "
                "LightningCLI recipe such as recipes/mnist1d_convnet1d_bn.yaml"
            )
    return data


def _init_args(recipe: Mapping[str, Any], section: str) -> dict[str, Any]:
    args = recipe[section].setdefault("init_args", {})
    if not isinstance(args, dict):
        raise CompareError(f"{section}.init_args in the config must be a mapping")
    return args


def _class_default(class_path: str, name: str) -> Any:
    """Default of constructor argument ``name`` of ``class_path`` (imports that class)."""
    import importlib
    import inspect

    module_name, _, attr = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
        param = inspect.signature(cls).parameters.get(name)
    except (ImportError, AttributeError, ValueError, TypeError):
        return None
    if param is None or param.default is inspect.Parameter.empty:
        return None
    return param.default


def _locate_lr(recipe: Mapping[str, Any]) -> tuple[tuple[str, ...], float | None]:
    """Where the recipe sets the learning rate: model.init_args.lr or optimizer.init_args.lr."""
    model_args = recipe["model"].get("init_args") or {}
    if "lr" in model_args:
        return ("model", "init_args", "lr"), float(model_args["lr"])
    optimizer = recipe.get("optimizer")
    if isinstance(optimizer, dict) and "lr" in (optimizer.get("init_args") or {}):
        return ("optimizer", "init_args", "lr"), float(optimizer["init_args"]["lr"])
    default = _class_default(recipe["model"]["class_path"], "lr")
    if isinstance(default, (int, float)):
        return ("model", "init_args", "lr"), float(default)
    return (), None


def _optimizer(recipe: Mapping[str, Any]) -> str | None:
    """The optimizer's name: a LightningCLI ``optimizer:`` section, else the model's
    ``optimizer`` argument (NormClassifier's ``sgd`` / ``adamw``) or its default."""
    optimizer = recipe.get("optimizer")
    if isinstance(optimizer, dict) and isinstance(optimizer.get("class_path"), str):
        return optimizer["class_path"].rsplit(".", 1)[-1]
    if isinstance(optimizer, str):
        return optimizer.rsplit(".", 1)[-1]
    name = (recipe["model"].get("init_args") or {}).get("optimizer")
    if name is None:
        name = _class_default(recipe["model"]["class_path"], "optimizer")
    return name if isinstance(name, str) else None


def _check_spellings(norms: Sequence[str]) -> None:
    """Misspelt norm names fail here, before torch loads (NormSpec is pure Python)."""
    from normsuite.norms.spec import NormSpec

    for norm in norms:
        try:
            NormSpec.parse(norm)
        except ValueError as exc:
            first = str(exc).strip().splitlines()[0]
            raise CompareError(f"--norms {norm!r}: {first}") from None


def _as_list(value: Any, parse, option: str) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return parse(value)
    if isinstance(value, (int, float)) and option == "--batch-sizes":
        return parse(str(value))
    if isinstance(value, Sequence):
        return parse(",".join(str(v) for v in value))
    raise GridError(f"{option} must be a list, got {value!r}")


def resolve_settings(
    recipe: dict[str, Any],
    *,
    norms: str | Sequence[str] | None = None,
    batch_sizes: str | Sequence[int] | None = None,
    seeds: int | None = None,
    max_steps: int | None = None,
    epochs: float | None = None,
    lr_scaling: str | None = None,
    lrs: str | Mapping[int, float] | None = None,
) -> CompareSettings:
    """Merge the recipe's ``compare:`` block with explicit options (which win) and validate.

    The ``compare:`` block is removed from ``recipe`` (LightningCLI would reject it).
    """
    block = recipe.pop("compare", None) or {}
    if not isinstance(block, dict):
        raise CompareError("the config's compare: section must be a mapping")
    unknown = sorted(
        set(block) - {"norms", "batch_sizes", "seeds", "max_steps", "epochs", "lr_scaling", "lrs"}
    )
    if unknown:
        renamed = "; lr_rule is now lr_scaling" if "lr_rule" in unknown else ""
        raise CompareError(
            f"unknown keys in the config's compare: section: {', '.join(unknown)}{renamed}"
        )
    data_args = _init_args(recipe, "data")
    _init_args(recipe, "model")

    norm_list = _as_list(norms if norms is not None else block.get("norms"), parse_norms, "--norms")
    if norm_list is None:
        raise CompareError("no norms to compare: pass --norms bn,gn (or compare.norms)")
    _check_spellings(norm_list)
    base_batch = data_args.get("batch_size")
    if base_batch is None:
        base_batch = _class_default(recipe["data"]["class_path"], "batch_size")
    sizes = batch_sizes if batch_sizes is not None else block.get("batch_sizes")
    size_list = _as_list(sizes, parse_batch_sizes, "--batch-sizes")
    if size_list is None:
        if base_batch is None:
            raise CompareError("no batch sizes: pass --batch-sizes 2,8,32")
        size_list = [int(base_batch)]
    seed_count = seeds if seeds is not None else block.get("seeds", DEFAULT_SEEDS)
    if not isinstance(seed_count, int) or seed_count < 1:
        raise CompareError(f"--seeds must be an integer >= 1, got {seed_count!r}")

    steps = max_steps if max_steps is not None else None
    epoch_count = epochs if epochs is not None else None
    if steps is None and epoch_count is None:
        steps, epoch_count = block.get("max_steps"), block.get("epochs")
    if steps is not None and epoch_count is not None:
        raise CompareError("give either --max-steps or --epochs, not both")
    if steps is None and epoch_count is None:
        trainer = recipe.get("trainer") or {}
        if (trainer.get("max_steps") or -1) > 0:
            steps = int(trainer["max_steps"])
        else:
            epoch_count = float(trainer.get("max_epochs") or 1)
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise CompareError(f"--max-steps must be an integer >= 1, got {steps!r}")
    if epoch_count is not None and not (float(epoch_count) > 0):
        raise CompareError(f"--epochs must be > 0, got {epoch_count!r}")

    if lr_scaling is not None:
        rule, why = lr_scaling, "set by --lr-scaling"
    elif "lr_scaling" in block:
        rule, why = block["lr_scaling"], "set by the recipe's compare.lr_scaling"
    else:
        rule, why = default_lr_scaling(_optimizer(recipe))
    if rule not in LR_SCALINGS:
        raise CompareError(f"--lr-scaling must be one of {', '.join(LR_SCALINGS)}, got {rule!r}")
    lr_map = lrs if lrs is not None else block.get("lrs")
    if isinstance(lr_map, str):
        lr_map = parse_lrs(lr_map)
    elif isinstance(lr_map, Mapping):
        lr_map = parse_lrs(",".join(f"{k}:{v}" for k, v in lr_map.items()))
    lr_map = dict(lr_map or {})

    lr_path, base_lr = _locate_lr(recipe)
    missing = [b for b in size_list if b not in lr_map]
    if missing and (base_lr is None or not lr_path):
        raise CompareError(
            "the recipe sets no learning rate (model.init_args.lr or optimizer.init_args.lr); "
            "add one or pass --lrs for every batch size"
        )
    if missing and rule != "none" and base_batch is None:
        raise CompareError(
            "the recipe sets no data.init_args.batch_size to scale the learning rate from; "
            "add one, pass --lr-scaling none, or pass --lrs"
        )
    return CompareSettings(
        recipe=recipe,
        norms=norm_list,
        batch_sizes=size_list,
        seeds=seed_count,
        max_steps=steps,
        epochs=float(epoch_count) if epoch_count is not None else None,
        lr_scaling=rule,
        lrs=lr_map,
        base_lr=base_lr,
        base_batch=int(base_batch) if base_batch is not None else None,
        lr_path=lr_path,
        lr_scaling_why=why,
    )
