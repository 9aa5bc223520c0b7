"""The one error type of ``normsuite compare``: bad input, reported as one line."""

from __future__ import annotations


class CompareError(ValueError):
    """A comparison cannot run as asked; the message is one line that says what to do."""
