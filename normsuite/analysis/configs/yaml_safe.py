"""Reading a YAML config without letting it take the machine: a size cap and an alias cap.

YAML aliases (``*a``) let a few hundred bytes describe billions of nodes ("billion
laughs"); PyYAML shares the objects, but anything that walks the result would not finish.
Both caps fail with one line saying which cap and how to raise it.

>>> load_yaml_text("a: &x [1, 2]\\nb: *x\\n", "c.yaml")
{'a': [1, 2], 'b': [1, 2]}
"""

from __future__ import annotations

import os
import stat
from typing import Any

import yaml

DEFAULT_MAX_SIZE = 2 * 1024 * 1024  # bytes; real training configs are a few kB
DEFAULT_MAX_ALIASES = 1000
SIZE_ENV = "NORMSUITE_MAX_CONFIG_SIZE"
ALIAS_ENV = "NORMSUITE_MAX_YAML_ALIASES"


class ConfigReadError(ValueError):
    """A config that cannot be read; ``str()`` is one line saying what to do."""


def _cap(env: str, default: int) -> int:
    raw = os.environ.get(env, "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else default


def _loader(max_aliases: int, name: str) -> type[yaml.SafeLoader]:
    class BoundedLoader(yaml.SafeLoader):
        aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
            if self.check_event(yaml.AliasEvent):
                BoundedLoader.aliases += 1
                if BoundedLoader.aliases > max_aliases:
                    raise ConfigReadError(
                        f"config {name} uses more than {max_aliases} YAML aliases (the alias "
                        f"cap; an alias bomb?); raise it with {ALIAS_ENV}=<count> if it is real"
                    )
            return super().compose_node(parent, index)

    return BoundedLoader


def load_yaml_text(text: str, name: str) -> Any:
    """Parse YAML text under the alias cap; errors are one-line :class:`ConfigReadError`."""
    loader = _loader(_cap(ALIAS_ENV, DEFAULT_MAX_ALIASES), name)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigReadError(
            f"config {name}{where} is not valid YAML; fix it or drop --config"
        ) from None
    except RecursionError:
        raise ConfigReadError(f"config {name} is nested too deeply to read; simplify it") from None


def read_text(path: str) -> str:
    """A config file's text, refused above the size cap before it is read."""
    name = os.path.basename(path)
    cap = _cap(SIZE_ENV, DEFAULT_MAX_SIZE)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):  # a fifo would block the read forever
            raise ConfigReadError(f"config {path} is not a regular file; pass a YAML/Python file")
        size = st.st_size
        if size > cap:
            raise ConfigReadError(
                f"config {name} is {size / 1048576:.1f} MB, over the {cap / 1048576:.1f} MB "
                f"size cap for configs; raise it with {SIZE_ENV}=<bytes>"
            )
        with open(path, "rb") as handle:
            data = handle.read(cap + 1)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise ConfigReadError(f"config {path} not found; pass an existing config file") from None
    except OSError as exc:
        raise ConfigReadError(f"config {path}: cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigReadError(
            f"config {path} is not UTF-8 text; pass a YAML or Python config"
        ) from None


def load_yaml(path: str) -> Any:
    return load_yaml_text(read_text(path), os.path.basename(path))
