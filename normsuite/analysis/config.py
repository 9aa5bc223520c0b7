"""``[tool.normsuite]`` in the nearest ``pyproject.toml``, and how it merges with CLI flags.

Example ``pyproject.toml``::

    [tool.normsuite]
    select = ["NRM"]          # rule codes or prefixes; default: all
    ignore = ["NRM013"]
    batch-size = 8            # per-device batch assumed when the file does not say
    max-file-size = 2000000   # bytes
    extend-exclude = ["legacy", "scripts/*.py"]  # globs; `exclude` replaces the defaults

Precedence (like ruff): CLI flags win. ``--select`` replaces ``select`` and overrides an
``ignore`` entry for the codes it names; ``--ignore`` adds to ``ignore``; ``--batch-size``
beats the file's own batch size, which beats ``batch-size`` here.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

KNOWN_KEYS = ("select", "ignore", "batch-size", "max-file-size", "exclude", "extend-exclude")


class ConfigError(Exception):
    """An invalid ``[tool.normsuite]`` table; ``str()`` is one line saying what to fix:
    every problem of the table at once, so one edit fixes them all."""


@dataclass(frozen=True)
class FileConfig:
    """The settings of one ``[tool.normsuite]`` table (empty when there is none)."""

    path: str | None = None  # the pyproject.toml it came from
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    batch_size: int | None = None
    max_file_size: int | None = None
    # glob patterns, relative to this file's folder (see normsuite.analysis.exclude);
    # None: the default exclusions. ``exclude`` replaces them, ``extend-exclude`` adds.
    exclude: tuple[str, ...] | None = None
    extend_exclude: tuple[str, ...] = ()


def closest_code(code: str) -> str:
    """The known rule code (or prefix) nearest to a mistyped one: ``NMR002`` -> ``NRM002``."""
    from difflib import get_close_matches

    from normsuite.analysis.catalog import RULES

    # compare with prefixes of the same length too, so `NMR00` suggests `NRM00`
    candidates = sorted({known[: len(code)] for known in RULES} | set(RULES))
    close = get_close_matches(code.strip().upper(), candidates, n=1, cutoff=0.0)
    return close[0] if close else "NRM"


def known_code(code: str) -> str | None:
    """``code`` normalized (upper case, ``all`` -> ``NRM``) when it is a rule code or a prefix
    of one, else None.

    >>> known_code("nrm00"), known_code("NMR002")
    ('NRM00', None)
    """
    from normsuite.analysis.catalog import RULES

    normal = code.strip().upper()
    if normal == "ALL":
        return "NRM"
    if normal and any(known.startswith(normal) for known in RULES):
        return normal
    return None


def _codes(table: dict[str, Any], key: str, problems: list[str]) -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f'`{key}` must be a list of rule codes, e.g. ["NRM002"]')
        return ()
    codes = []
    for raw in value:
        code = known_code(raw)
        if code is None:  # a typo would otherwise silently turn every rule off
            problems.append(
                f"unknown rule code {raw.strip()!r} in `{key}`; did you mean "
                f"{closest_code(raw)!r}? (`normsuite rule` lists the codes)"
            )
            continue
        codes.append(code)
    return tuple(codes)


def _patterns(table: dict[str, Any], key: str, problems: list[str]) -> tuple[str, ...] | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.append(f'`{key}` must be a list of glob patterns, e.g. ["build", "tests/*.py"]')
        return None
    return tuple(v.strip() for v in value)


def _positive_int(table: dict[str, Any], key: str, problems: list[str]) -> int | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        problems.append(f"`{key}` must be a positive integer, got {value!r}")
        return None
    return value


def parse_config(text: str, path: str = "pyproject.toml") -> FileConfig:
    """Parse the ``[tool.normsuite]`` table of a pyproject.toml text.

    >>> parse_config('[tool.normsuite]\\nignore = ["NRM013"]\\nbatch-size = 8').batch_size
    8
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}; fix the file") from None
    table = data.get("tool", {}).get("normsuite")
    if table is None:
        return FileConfig(path=path)
    where = f"{path} [tool.normsuite]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    # accept snake_case too: people type both
    table = {k.replace("_", "-"): v for k, v in table.items()}
    problems: list[str] = []  # collected, not raised one at a time
    for key in sorted(set(table) - set(KNOWN_KEYS)):
        problems.append(f"unknown key {key!r}; known keys: {', '.join(KNOWN_KEYS)}")
    config = FileConfig(
        path=path,
        select=_codes(table, "select", problems),
        ignore=_codes(table, "ignore", problems),
        batch_size=_positive_int(table, "batch-size", problems),
        max_file_size=_positive_int(table, "max-file-size", problems),
        exclude=_patterns(table, "exclude", problems),
        extend_exclude=_patterns(table, "extend-exclude", problems) or (),
    )
    if len(problems) == 1:
        raise ConfigError(f"{where}: {problems[0]}")
    if problems:  # all at once, numbered, still one line
        listed = " ".join(f"({i}) {p};" for i, p in enumerate(problems, start=1))
        raise ConfigError(f"{where}: {len(problems)} problems: {listed.rstrip(';')}")
    return config


@lru_cache(maxsize=256)
def _config_in(directory: str) -> FileConfig:
    """The config that applies to files in ``directory`` (nearest pyproject.toml upwards)."""
    here = Path(directory)
    candidate = here / "pyproject.toml"
    if candidate.is_file():
        try:
            text = candidate.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{candidate}: cannot read: {exc}") from None
        config = parse_config(text, str(candidate))
        # like ruff: a pyproject.toml without [tool.normsuite] does not stop the search
        if config != FileConfig(path=str(candidate)):
            return config
    if here.parent == here:
        return FileConfig()
    return _config_in(str(here.parent))


def find_config(path: str) -> FileConfig:
    """The ``[tool.normsuite]`` settings for a file (or ``-`` = the current folder)."""
    start = os.getcwd() if path == "-" else os.path.dirname(os.path.abspath(path))
    return _config_in(start)


def clear_cache() -> None:
    """Forget cached configs (tests edit pyproject.toml files between runs)."""
    _config_in.cache_clear()


def matches(code: str, selectors: tuple[str, ...]) -> bool:
    """True when ``code`` equals one selector or starts with it (``NRM00`` matches ``NRM002``)."""
    return any(code.startswith(s) for s in selectors)


def rule_enabled(
    code: str,
    *,
    cli_select: tuple[str, ...] = (),
    cli_ignore: tuple[str, ...] = (),
    config: FileConfig = FileConfig(),
) -> bool:
    """Whether findings of ``code`` are reported, CLI flags winning over the config.

    >>> cfg = FileConfig(ignore=("NRM013",))
    >>> rule_enabled("NRM013", config=cfg)
    False
    >>> rule_enabled("NRM013", cli_select=("NRM013",), config=cfg)
    True
    """
    select = cli_select or config.select or ("",)
    if not matches(code, select) or matches(code, cli_ignore):
        return False
    return not (matches(code, config.ignore) and not matches(code, cli_select))
