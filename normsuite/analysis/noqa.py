"""``# noqa`` suppression comments, the ruff way.

- ``# noqa`` on a line suppresses every finding on that line;
- ``# noqa: NRM002`` (or ``# noqa: NRM002, NRM011``) suppresses only those codes; codes of
  other tools (``# noqa: E501``) suppress nothing of ours;
- ``# normsuite: noqa`` anywhere in the file suppresses all findings in it;
  ``# normsuite: noqa: NRM013`` only that code.

Only real comments count (found with :mod:`tokenize`), not ``# noqa`` inside a string.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from normsuite.analysis.types import Finding, Notice

_NOQA = re.compile(
    r"#\s*(?P<file>normsuite:\s*)?noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?",
    re.IGNORECASE,
)

ALL = frozenset({"*"})  # marker: suppress every code


@dataclass
class Suppressions:
    """Codes suppressed per line (1-based) and for the whole file."""

    lines: dict[int, frozenset[str]] = field(default_factory=dict)
    file: frozenset[str] = frozenset()

    def suppresses(self, finding: Finding) -> bool:
        for codes in (self.file, self.lines.get(finding.line, frozenset())):
            if codes and (codes == ALL or finding.code in codes):
                return True
        return False


def _comments(source: str) -> Iterable[tuple[int, str]]:
    import tokenize  # lazy: only files that mention noqa need it

    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                yield tok.start[0], tok.string
    except (tokenize.TokenError, SyntaxError):
        # incomplete source: fall back to the line scan (may see '#' inside strings)
        for number, line in enumerate(source.splitlines(), start=1):
            if "#" in line:
                yield number, line[line.index("#") :]


def parse_suppressions(source: str) -> Suppressions:
    """Collect the ``noqa`` comments of a source text.

    >>> s = parse_suppressions("x = 1  # noqa: NRM002\\ny = 2  # noqa\\n")
    >>> sorted(s.lines[1]), s.lines[2] == ALL
    (['NRM002'], True)
    """
    result = Suppressions()
    if "noqa" not in source.lower():  # the common case: skip tokenizing
        return result
    file_codes: set[str] = set()
    for line, comment in _comments(source):
        for match in _NOQA.finditer(comment):
            codes = match.group("codes")
            parsed = (
                ALL if codes is None else frozenset(c.upper() for c in re.split(r"[,\s]+", codes))
            )
            if match.group("file"):
                file_codes |= parsed
            else:
                result.lines[line] = result.lines.get(line, frozenset()) | parsed
    if "*" in file_codes:
        result.file = ALL
    else:
        result.file = frozenset(file_codes)
    for line, codes in result.lines.items():
        if "*" in codes:
            result.lines[line] = ALL
    return result


def filter_findings(findings: Iterable[Finding], source: str) -> list[Finding]:
    """The findings that no ``noqa`` comment in ``source`` suppresses."""
    findings = list(findings)
    if not findings:
        return findings
    suppressions = parse_suppressions(source)
    return [f for f in findings if not suppressions.suppresses(f)]


def _looks_like_ours(code: str) -> bool:
    """``NRM999`` or a near-miss prefix (``NMR002``, ``NRN002``): a typo of one of our codes,
    as opposed to another tool's code (``E501``, ``NPY002``) that suppresses nothing here."""
    from difflib import SequenceMatcher

    letters = code.rstrip("0123456789")
    if letters == "NRM":
        return True
    return (
        2 <= len(letters) <= 4
        and letters.startswith("N")
        and SequenceMatcher(None, letters, "NRM").ratio() >= 0.6
    )


def _codes(match: re.Match[str]) -> list[str]:
    """The codes a ``# noqa: ...`` match names, upper case (none for a bare ``# noqa``)."""
    return [raw.upper() for raw in re.split(r"[,\s]+", match.group("codes") or "") if raw]


def unknown_noqa_codes(source: str) -> list[Notice]:
    """A warning per ``# noqa`` code that looks like ours but names no rule: such a typo
    suppresses nothing while the comment says otherwise. Other tools' codes are left alone.

    >>> [n.message for n in unknown_noqa_codes("x = 1  # noqa: NMR002, E501\\n")]
    ["unknown rule code 'NMR002' in `# noqa`; did you mean 'NRM002'? (it suppresses nothing)"]
    """
    if "noqa" not in source.lower():
        return []
    from normsuite.analysis.catalog import RULES
    from normsuite.analysis.config import closest_code

    # The raw text first: most noqa comments are bare or name other tools' codes (F401),
    # and tokenizing a file costs a third of parsing it. Only a code that could be a typo
    # of ours is confirmed with the tokenizer (a '#' inside a string is no comment).
    if not any(
        _looks_like_ours(code) and code not in RULES
        for match in _NOQA.finditer(source)
        for code in _codes(match)
    ):
        return []
    notices: list[Notice] = []
    for line, comment in _comments(source):
        for match in _NOQA.finditer(comment):
            for code in _codes(match):
                if code not in RULES and _looks_like_ours(code):
                    notices.append(
                        Notice(
                            kind="noqa",
                            message=f"unknown rule code {code!r} in `# noqa`; did you mean "
                            f"{closest_code(code)!r}? (it suppresses nothing)",
                            line=line,
                        )
                    )
    return notices
