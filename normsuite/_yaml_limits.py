"""Bounded YAML: a size cap, an alias cap and an expanded-size cap. Pure Python (no torch).

YAML aliases let a few hundred bytes describe billions of nodes ("billion laughs": 9 levels
of 10 aliases each is 10**9 leaves from 90 aliases). PyYAML shares the aliased objects, so
loading is cheap, but anything that walks or copies the result (jsonargparse, LightningCLI's
config dump) expands it and takes the machine's memory. The caps, each with the environment
variable that raises it:

- file size: ``NORMSUITE_MAX_CONFIG_SIZE`` bytes (default 2 MiB; real configs are a few kB);
- aliases: ``NORMSUITE_MAX_YAML_ALIASES`` (default 1000);
- nodes after expanding every alias: ``NORMSUITE_MAX_YAML_NODES`` (default 1,000,000).

Every failure is a :class:`YAMLLimitError` whose message is one line naming the file, the
cap and how to raise it. (``normsuite.analysis.configs.yaml_safe`` uses the same variable
names for the analyzer's configs.)

Example:
    >>> load_yaml_text("a: &x [1, 2]\\nb: *x\\n", "c.yaml")
    {'a': [1, 2], 'b': [1, 2]}
"""

from __future__ import annotations

import os
import stat
from typing import Any

import yaml

__all__ = [
    "ALIAS_ENV",
    "NODES_ENV",
    "SIZE_ENV",
    "YAMLLimitError",
    "check_yaml_text",
    "load_yaml",
    "load_yaml_text",
    "read_config_text",
]

SIZE_ENV = "NORMSUITE_MAX_CONFIG_SIZE"
ALIAS_ENV = "NORMSUITE_MAX_YAML_ALIASES"
NODES_ENV = "NORMSUITE_MAX_YAML_NODES"
DEFAULT_MAX_SIZE = 2 * 1024 * 1024
DEFAULT_MAX_ALIASES = 1000
DEFAULT_MAX_NODES = 1_000_000


class YAMLLimitError(ValueError):
    """A YAML config over a cap, unreadable or invalid; ``str()`` is one line."""


def _cap(env: str, default: int) -> int:
    raw = os.environ.get(env, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else default


def _loader_class(name: str, max_aliases: int) -> type[yaml.SafeLoader]:
    class BoundedLoader(yaml.SafeLoader):
        """SafeLoader that stops composing past ``max_aliases`` aliases."""

        aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
            if self.check_event(yaml.AliasEvent):
                BoundedLoader.aliases += 1
                if BoundedLoader.aliases > max_aliases:
                    raise YAMLLimitError(
                        f"{name}: more than {max_aliases} YAML aliases (the alias cap; an "
                        f"alias bomb?); raise it with {ALIAS_ENV}=<count> if the file is real"
                    )
            return super().compose_node(parent, index)

    return BoundedLoader


def _expanded_size(root: yaml.Node, cap: int, name: str) -> int:
    """Nodes in ``root`` with every alias expanded, counted without expanding (memoized).

    Iterative post-order walk: no recursion limit on deep files, linear in distinct nodes.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # on the current path: meeting one again is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        if not done:
            if key in open_nodes:
                raise YAMLLimitError(
                    f"{name}: a YAML alias refers to a node that contains it (a recursive "
                    "structure, infinite when expanded); remove the self-reference"
                )
            open_nodes.add(key)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if not done:
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        open_nodes.discard(key)
        total = 1 + sum(sizes.get(id(child), 1) for child in children)
        if total > cap:
            raise YAMLLimitError(
                f"{name}: expands to more than {cap:,} YAML nodes through its aliases (the "
                f"expanded-size cap; an alias bomb?); raise it with {NODES_ENV}=<count> if the "
                "file is real"
            )
        sizes[key] = total
    return sizes[id(root)]


def _parse(text: str, name: str, construct: bool) -> Any:
    loader = _loader_class(name, _cap(ALIAS_ENV, DEFAULT_MAX_ALIASES))(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, _cap(NODES_ENV, DEFAULT_MAX_NODES), name)
        return loader.construct_document(node) if construct else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise YAMLLimitError(f"{name}: {problem}{where}; fix the YAML syntax") from None
    except RecursionError:
        raise YAMLLimitError(f"{name}: nested too deeply to read; flatten the YAML") from None
    finally:
        loader.dispose()


def load_yaml_text(text: str, name: str = "<yaml>") -> Any:
    """Parse ``text`` under the alias and expanded-size caps."""
    return _parse(text, name, construct=True)


def check_yaml_text(text: str, name: str = "<yaml>") -> None:
    """Raise :class:`YAMLLimitError` if ``text`` breaks a cap or is not YAML; build nothing."""
    _parse(text, name, construct=False)


def read_config_text(path: str | os.PathLike[str]) -> str:
    """The text of a config file: a regular file under the size cap, UTF-8."""
    name = os.fspath(path)
    cap = _cap(SIZE_ENV, DEFAULT_MAX_SIZE)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):  # a fifo or device would block the read forever
            raise YAMLLimitError(f"{name}: not a regular file; pass a YAML file")
        if info.st_size > cap:
            raise YAMLLimitError(
                f"{name}: {info.st_size:,} bytes, over the config size cap of {cap:,} bytes; "
                f"raise it with {SIZE_ENV}=<bytes> if the file is real"
            )
        with open(path, "rb") as handle:
            data = handle.read(cap + 1)
    except (FileNotFoundError, NotADirectoryError):
        raise YAMLLimitError(f"{name}: not found; pass an existing YAML file") from None
    except IsADirectoryError:
        raise YAMLLimitError(f"{name}: is a folder; pass a YAML file") from None
    except OSError as exc:
        raise YAMLLimitError(f"{name}: cannot read ({exc.strerror or exc})") from None
    if len(data) > cap:  # grew since stat
        raise YAMLLimitError(
            f"{name}: over the config size cap of {cap:,} bytes; raise it with {SIZE_ENV}=<bytes>"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise YAMLLimitError(f"{name}: not UTF-8 text; pass a YAML file") from None


def load_yaml(path: str | os.PathLike[str]) -> Any:
    """Read and parse a YAML file under every cap."""
    return load_yaml_text(read_config_text(path), os.fspath(path))
