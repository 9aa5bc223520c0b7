"""SARIF 2.1.0 output (for GitHub code scanning and other SARIF viewers).

One run; ``tool.driver.rules`` lists every NRM rule with its doc page as ``help``;
each finding is a ``result``; files that could not be analyzed become
``toolExecutionNotifications`` of the invocation (``executionSuccessful`` false), and so
do notices (a cap hit makes ``executionSuccessful`` false too: the analysis is incomplete).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from normsuite import __version__
from normsuite.analysis.catalog import RULES
from normsuite.analysis.report import rule_doc
from normsuite.analysis.types import FileResult

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/normsuite/normsuite"
_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def _uri(path: str) -> str:
    """A URI reference for a result location: relative paths stay relative (posix)."""
    if path == "-":
        return "stdin"
    pure = PurePath(path)
    if pure.is_absolute():
        return Path(path).as_uri()
    # percent-encode what a URI reference cannot hold (spaces, '#', '%', ...)
    return quote(pure.as_posix())


def _rules() -> list[dict[str, Any]]:
    rules = []
    for info in RULES.values():
        rule: dict[str, Any] = {
            "id": info.code,
            "name": info.name,
            "shortDescription": {"text": info.summary},
            "defaultConfiguration": {"level": _LEVEL[info.severity]},
            "properties": {"source": info.source} if getattr(info, "source", "") else {},
        }
        doc = rule_doc(info.code)
        if doc:
            rule["help"] = {"text": doc, "markdown": doc}
        rules.append(rule)
    return rules


def to_sarif_dict(results: Sequence[FileResult]) -> dict[str, Any]:
    """The SARIF log as a dict (valid against the official 2.1.0 schema)."""
    index = {code: i for i, code in enumerate(RULES)}
    sarif_results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    complete = True  # every file analyzed in full (no error, no cap hit)
    for result in results:
        uri = _uri(result.path)
        if result.error:
            location: dict[str, Any] = {"artifactLocation": {"uri": uri}}
            if result.error_line is not None:
                error_region = {"startLine": max(1, result.error_line)}
                if result.error_col is not None:
                    error_region["startColumn"] = max(1, result.error_col)
                location["region"] = error_region
            complete = False
            notifications.append(
                {
                    "level": "error",
                    "message": {"text": result.error},
                    "locations": [{"physicalLocation": location}],
                }
            )
            continue
        for notice in result.notices:
            where: dict[str, Any] = {"artifactLocation": {"uri": uri}}
            if notice.line is not None:
                where["region"] = {"startLine": max(1, notice.line)}
            notifications.append(
                {
                    "level": "warning",
                    "message": {"text": notice.message},
                    "locations": [{"physicalLocation": where}],
                }
            )
            complete = complete and not notice.incomplete
        for f in result.findings:
            region: dict[str, int] = {"startLine": max(1, f.line), "startColumn": max(1, f.col)}
            if f.end_line is not None:
                region["endLine"] = max(region["startLine"], f.end_line)
            if f.end_col is not None:
                region["endColumn"] = max(1, f.end_col)
            item: dict[str, Any] = {
                "ruleId": f.code,
                "level": _LEVEL.get(f.severity, "warning"),
                "message": {"text": f.message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": uri},
                            "region": region,
                        }
                    }
                ],
            }
            if f.code in index:
                item["ruleIndex"] = index[f.code]
            if f.model:
                item["properties"] = {"model": f.model}
            sarif_results.append(item)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "normsuite",
                        "version": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": _rules(),
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": complete,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": sarif_results,
            }
        ],
    }


def render_sarif(results: Sequence[FileResult]) -> str:
    return json.dumps(to_sarif_dict(results), indent=2)
