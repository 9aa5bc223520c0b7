"""Help screens: a flag is shown as a flag, as in plain Click and older Typer.

Typer >= 0.2x prints a type column for every option, so ``--resume``, ``--plot/--no-plot``
and ``--help`` showed ``<bool>`` as if they took a value. Typer prints an option's metavar
in place of its type; an empty metavar on flags (which never take a value) leaves the
column blank and changes nothing else: parsing and error messages use the option names.
"""

from __future__ import annotations

import functools
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption


def plain_flags(params: list[Any]) -> list[Any]:
    """Give every flag an empty metavar (idempotent; ``--help`` is created lazily, so this
    runs on each ``get_params``)."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    return params


@functools.cache
def with_plain_flags(cls: type[Any]) -> type[Any]:
    """``cls`` (a Typer command or group class, custom ones too) with flags shown without a
    type: a subclass whose ``get_params`` applies :func:`plain_flags`.

    >>> with_plain_flags(TyperCommand).__name__
    'PlainFlagsTyperCommand'
    """

    def get_params(self: Any, ctx: Any) -> list[Any]:
        return plain_flags(super(subclass, self).get_params(ctx))

    subclass = type(f"PlainFlags{cls.__name__}", (cls,), {"get_params": get_params})
    return subclass


def apply_plain_flags(app: typer.Typer) -> None:
    """Show flags without a type in the help of ``app`` and of every command registered so
    far. Classes set elsewhere (``typer.Typer(cls=...)``, ``app.command(cls=...)``) are kept
    as the base classes, so this composes with other customizations."""
    group = app.info.cls
    app.info.cls = with_plain_flags(group if isinstance(group, type) else TyperGroup)
    for info in app.registered_commands:
        command = info.cls
        info.cls = with_plain_flags(command if isinstance(command, type) else TyperCommand)
