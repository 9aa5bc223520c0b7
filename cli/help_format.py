"""Help screens: a flag is shown as a flag, as in plain Click and older Typer.

Typer >= 0.2x prints a type column for every option, so ``--resume``, ``--plot/--no-plot``
and ``--help`` showed ``<bool>`` as if they took a value. Typer prints an option's metavar
in place of its type; an empty metavar on flags (which never take a value) leaves the
column blank and changes nothing else: parsing and error messages use the option names.
"""

from __future__ import annotations

import functools
from typing import Any

from typer.core import TyperCommand, TyperGroup, TyperOption


def plain_flags(params: list[Any]) -> list[Any]:
    """Give every flag an empty metavar (idempotent; ``--help`` is created lazily, so this
    runs on each ``get_params``)."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    return params


@functools.cache
def with_plain_flags(cls: type[TyperCommand]) -> type[TyperCommand]:
    """``cls`` (any Typer command class, custom ones too) with flags shown without a type.

    >>> with_plain_flags(TyperCommand).__name__
    'PlainFlagsTyperCommand'
    """

    def get_params(self: TyperCommand, ctx: Any) -> list[Any]:
        return plain_flags(super(command, self).get_params(ctx))

    command = type(f"PlainFlags{cls.__name__}", (cls,), {"get_params": get_params})
    return command


class PlainFlagsGroup(TyperGroup):
    """The ``normsuite`` group: its own flags (``--version``, ``--help``) without a type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return plain_flags(super().get_params(ctx))
