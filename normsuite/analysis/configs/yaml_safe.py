"""Reading a config without letting it take the machine: a size cap, and for YAML the
alias and expanded-size caps of :mod:`normsuite._yaml_limits`.

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

from normsuite import _yaml_limits

DEFAULT_MAX_SIZE = 2 * 1024 * 1024  # bytes; real training configs are a few kB
SIZE_ENV = _yaml_limits.SIZE_ENV


class ConfigReadError(ValueError):
    """A config that cannot be read; ``str()`` is one line saying what to do."""


def _cap(env: str, default: int) -> int:
    raw = os.environ.get(env, "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else default


def load_yaml_text(text: str, name: str) -> Any:
    """Parse YAML text under the alias and expanded-size caps of
    :mod:`normsuite._yaml_limits` (shared with ``normsuite fit``); errors are one-line
    :class:`ConfigReadError`."""
    try:
        return _yaml_limits.load_yaml_text(text, f"config {name}")
    except _yaml_limits.YAMLLimitError as exc:
        raise ConfigReadError(str(exc)) from None


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
