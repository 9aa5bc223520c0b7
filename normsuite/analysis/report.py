"""Renderers for analysis results: text (Rich or plain), JSON and GitHub annotations.

SARIF lives in :mod:`normsuite.analysis.sarif`. All renderers take the list of
``FileResult`` that :func:`normsuite.analysis.runner.analyze_paths` returns; ``command``
is ``"check"`` (findings) or ``"recommend"`` (recommendations first, then findings).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from normsuite import __version__
from normsuite.advice import BN_MIN_BATCH
from normsuite.analysis.types import FileResult, Finding, ModelReport, Notice, Recommendation

Command = Literal["check", "recommend"]
JSON_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Summary:
    files: int  # every path given or found, including those that could not be analyzed
    models: int
    findings: int
    errors: int  # files that could not be analyzed
    by_severity: dict[str, int]
    by_code: dict[str, int]
    incomplete: int = 0  # files analyzed only in part: a cap was hit (see limits.py)

    @property
    def analyzed(self) -> int:
        """Files that were read and analyzed (``files`` minus ``errors``)."""
        return self.files - self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "analyzed": self.analyzed,
            "models": self.models,
            "findings": self.findings,
            "errors": self.errors,
            "incomplete": self.incomplete,
            "by_severity": self.by_severity,
            "by_code": self.by_code,
        }


def summarize(results: Sequence[FileResult]) -> Summary:
    findings = [f for r in results for f in r.findings]
    return Summary(
        files=len(results),
        models=sum(len(r.models) for r in results),
        findings=len(findings),
        errors=sum(1 for r in results if r.error),
        incomplete=sum(1 for r in results if r.incomplete and not r.error),
        by_severity=dict(sorted(Counter(f.severity for f in findings).items())),
        by_code=dict(sorted(Counter(f.code for f in findings).items())),
    )


def rule_doc(code: str) -> str | None:
    """The Markdown doc page of a rule (``normsuite rule NRM002``), or None if it has none."""
    from importlib.resources import files

    page = files("normsuite").joinpath("analysis", "docs", f"{code.upper()}.md")
    try:
        return page.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None


def error_line(result: FileResult) -> str:
    """``path: error: reason`` (``path: internal error: ...`` for analyzer bugs)."""
    assert result.error is not None
    if result.error.startswith("internal error"):
        return f"{result.path}: {result.error}"
    return f"{result.path}: error: {result.error}"


def notice_line(result: FileResult, notice: Notice) -> str:
    """``path:line: warning: message`` for a notice (a cap hit, a mistyped noqa code)."""
    where = f"{result.path}:{notice.line}" if notice.line else result.path
    return f"{where}: warning: {notice.message}"


# --------------------------------------------------------------------------- JSON


def to_json_dict(
    results: Sequence[FileResult],
    *,
    command: Command,
    traces: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON document: ``{"version", "schema_version", "command", "files", "summary"}``."""
    files = []
    for result in results:
        entry = result.to_dict()
        if traces and result.path in traces:
            entry["trace"] = traces[result.path]
        files.append(entry)
    return {
        "version": __version__,
        "schema_version": JSON_SCHEMA_VERSION,
        "command": command,
        "files": files,
        "summary": summarize(results).to_dict(),
    }


def render_json(
    results: Sequence[FileResult],
    *,
    command: Command,
    traces: Mapping[str, Any] | None = None,
) -> str:
    return json.dumps(to_json_dict(results, command=command, traces=traces), indent=2)


# --------------------------------------------------------------------------- GitHub


def _escape_data(text: str) -> str:
    # the workflow-command escaping of @actions/core (toCommandValue / escapeData)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


_GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _annotation(level: str, path: str, message: str, title: str, **where: int | None) -> str:
    props = [f"file={_escape_property(path)}"]
    props += [f"{k}={v}" for k, v in where.items() if v is not None]
    props.append(f"title={_escape_property(title)}")
    return f"::{level} {','.join(props)}::{_escape_data(message)}"


def render_github(results: Sequence[FileResult], *, command: Command) -> str:
    """GitHub Actions workflow commands, one annotation per line.

    >>> from normsuite.analysis.types import Finding
    >>> r = FileResult("m.py", findings=[Finding("NRM002", "use a channel LayerNorm", 3, 9)])
    >>> render_github([r], command="check")
    '::warning file=m.py,line=3,col=9,title=NRM002::use a channel LayerNorm'
    """
    lines: list[str] = []
    for result in results:
        if result.error:
            lines.append(
                _annotation(
                    "error",
                    result.path,
                    error_line(result),
                    "normsuite",
                    line=result.error_line,
                    col=result.error_col,
                )
            )
            continue
        for notice in result.notices:
            lines.append(
                _annotation("warning", result.path, notice.message, "normsuite", line=notice.line)
            )
        if command == "recommend":
            for model in result.models:
                if model.recommendation is not None:
                    lines.append(
                        _annotation(
                            "notice",
                            result.path,
                            _recommendation_sentence(model),
                            f"normsuite: {model.name}",
                            line=model.line,
                        )
                    )
        for f in result.findings:
            lines.append(
                _annotation(
                    _GITHUB_LEVEL.get(f.severity, "warning"),
                    result.path,
                    f.message,
                    f.code,
                    line=f.line,
                    col=f.col,
                    endLine=f.end_line,
                    endColumn=f.end_col,
                )
            )
    return "\n".join(lines)


# --------------------------------------------------------------------------- text


def _batch_text(model: ModelReport) -> str:
    b = model.batch_size
    if b.per_device is None:
        return f"batch unknown ({b.source})"
    parts = [f"batch {b.per_device}/device"]
    if b.devices != 1:
        parts.append(f"x {b.devices} devices")
    if b.accumulate != 1:
        parts.append(f"x {b.accumulate} accumulated")
    return " ".join(parts) + f" ({b.source})"


def _recommendation_sentence(model: ModelReport) -> str:
    rec = model.recommendation
    if rec is None:
        return f"{model.name}: no recommendation"
    rules = f" [{', '.join(rec.rules)}]" if rec.rules else ""
    text = f"{model.name} ({model.architecture}, {_batch_text(model)}): use {headline(rec)}{rules}"
    if rec.rationale:
        text += f". {rec.rationale[0]}"
    return text


def _finding_line(path: str, f: Finding) -> str:
    where = f"line {f.line}" if ":cell " in path else str(f.line)  # notebook.ipynb:cell 3
    return f"{path}:{where}:{f.col}: {f.code} [{f.severity}] {f.message}"


def _summary_line(results: Sequence[FileResult], command: Command) -> str:
    """One truthful line: files that failed come first, and the counts are of the files
    actually analyzed (a missing path or a syntax error is not a file that "passed")."""
    s = summarize(results)
    analyzed = _plural(s.analyzed, "file")
    problems = []
    if s.errors:
        problems.append(f"{_plural(s.errors, 'file')} could not be analyzed")
    if s.incomplete:  # a cap was hit: never "All checks passed"
        problems.append(f"{_plural(s.incomplete, 'file')} analyzed only in part (a cap was hit)")
    failed = "; ".join(problems)
    if command == "recommend":
        text = f"Analyzed {analyzed}: {_plural(s.models, 'model')}"
        if s.findings:
            text += f", {_plural(s.findings, 'finding')}"
        return text + (f"; {failed}." if failed else ".")
    if s.findings:
        sev = ", ".join(_plural(n, k) for k, n in s.by_severity.items())
        found = f"{_plural(s.findings, 'finding')} ({sev}) in {analyzed}"
        return f"{failed}; found {found}." if failed else f"Found {found}."
    if failed:
        return f"{failed}; no findings in {analyzed}."
    return f"All checks passed ({analyzed})."


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 or word == "info" else f"{n} {word}s"


def _plain_model(path: str, model: ModelReport) -> list[str]:
    where = f"line {model.line}" if ":cell " in path else str(model.line)
    lines = [f"{path}:{where}: {model.name} [{model.architecture}] {_batch_text(model)}"]
    if model.norms_found:
        found = ", ".join(
            f"{n.name}={n.code} [{n.kind}] (line {n.line})" for n in model.norms_found
        )
        lines.append(f"  norms found: {found}")
    else:
        lines.append("  norms found: none")
    if model.unresolved_bases:
        bases = ", ".join(model.unresolved_bases)
        lines.append(f"  bases not read: {bases} (outside the project: judged by what it builds)")
    if model.part_of:
        lines.append(f"  judged as part of {model.part_of}")
    if model.domain:
        lines.append(f"  domain: {model.domain} (`normsuite rule domains`)")
    rec = model.recommendation
    if rec is None:
        lines.append(f"  recommend: none ({model.abstain or 'nothing to recommend'})")
        return lines
    rules = f"; rules {', '.join(rec.rules)}" if rec.rules else ""
    lines.append(f"  recommend: {headline(rec)} (confidence {rec.confidence}{rules})")
    for s in rec.layers:
        change = "keep" if s.current == s.suggested else f"-> {s.suggested}"
        lines.append(f"    line {s.line} {s.site}: {s.current} {change}")
    lines.extend(advice_sections(rec.rationale, rec.assumptions, rec.would_change))
    return lines


def headline(rec: Recommendation | Any) -> str:
    """``bn``, or ``bn at batch >= 16, gn below`` when the batch is unknown (a
    Recommendation, or an ``Advice``)."""
    if getattr(rec, "below_bn_batch", None) is None:
        return rec.norm
    return f"{rec.norm} at a per-device batch >= {BN_MIN_BATCH}, {rec.below_bn_batch} below"


def advice_sections(
    rationale: Sequence[str], assumptions: Sequence[str], would_change: Sequence[str]
) -> list[str]:
    """The "why / assumed / would change it" lines of a recommendation, as `recommend`
    prints them (`normsuite advise` prints the same)."""
    lines: list[str] = []
    for title, items in (
        ("why", rationale),
        ("assumed", assumptions),
        ("would change it", would_change),
    ):
        if items:
            lines.append(f"  {title}:")
            lines.extend(f"    - {item}" for item in items)
    return lines


def render_plain(
    results: Sequence[FileResult],
    *,
    command: Command,
    traces: Mapping[str, Any] | None = None,
) -> str:
    """Plain text for pipes and logs (file errors are not included: they go to stderr)."""
    lines: list[str] = []
    for result in results:
        if result.error:
            continue
        if command == "recommend":
            if not result.models:
                lines.append(f"{result.path}: no nn.Module subclass found")
            for model in result.models:
                lines.extend(_plain_model(result.path, model))
        lines.extend(_finding_line(result.path, f) for f in result.findings)
        if traces and result.path in traces:
            lines.extend(trace_lines(traces[result.path]))
    lines.append(_summary_line(results, command))
    return "\n".join(lines)


def trace_lines(trace: Mapping[str, Any]) -> list[str]:
    """Plain lines for one file's ``--trace`` result (see :mod:`normsuite.analysis.trace`)."""
    lines: list[str] = []
    if trace.get("error"):
        lines.append(f"  trace: error: {trace['error']}")
    for model in trace.get("models", []):
        if model.get("skipped"):
            lines.append(f"  trace {model['name']}: skipped, {model['skipped']}")
            continue
        head = f"  trace {model['name']}: input {model.get('input_shape')}"
        if model.get("error"):
            head += f"; forward failed: {model['error']}"
        lines.append(head)
        for layer in model.get("layers", []):
            static = f"; static view: {layer['static']}" if layer.get("static") else ""
            lines.append(
                f"    {layer['name']} {layer['type']}: input {layer['input_shape']}, "
                f"{layer.get('layout', '?')}{static}"
            )
        lines.extend(f"    vs static: {d}" for d in model.get("differences", []))
    return lines


def render_rich(
    results: Sequence[FileResult],
    console: Any,
    *,
    command: Command,
    traces: Mapping[str, Any] | None = None,
) -> None:
    """Tables for a terminal (``console`` is a ``rich.console.Console``)."""
    from rich.table import Table
    from rich.text import Text

    style = {"error": "bold red", "warning": "yellow", "info": "cyan"}
    for result in results:
        if result.error:
            continue
        if command == "recommend":
            if not result.models:
                console.print(Text(f"{result.path}: no nn.Module subclass found", style="dim"))
            for model in result.models:
                _rich_model(console, result.path, model)
        if result.findings:
            table = Table(title=f"{result.path}: findings", title_justify="left")
            table.add_column("Line:Col", justify="right", no_wrap=True)
            table.add_column("Code", no_wrap=True)
            table.add_column("Severity", no_wrap=True)
            table.add_column("Message")
            for f in result.findings:
                table.add_row(
                    f"{f.line}:{f.col}",
                    f.code,
                    Text(f.severity, style=style.get(f.severity, "")),
                    f.message,
                )
            console.print(table)
        if traces and result.path in traces:
            for line in trace_lines(traces[result.path]):
                console.print(Text(line))
    summary = _summary_line(results, command)
    s = summarize(results)
    colour = "red" if s.errors or s.incomplete or (command == "check" and s.findings) else "green"
    console.print(Text(summary, style=f"bold {colour}"))


def _rich_model(console: Any, path: str, model: ModelReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    rec = model.recommendation
    title = f"{escape(path)}:{model.line} [bold]{escape(model.name)}[/bold] ({model.architecture})"
    console.print(
        title, highlight=False
    )  # not the table's title: that would wrap at the table's width
    table = Table(show_header=True)
    table.add_column("Layer")
    table.add_column("Line", justify="right")
    table.add_column("Now")
    table.add_column("Use")
    if rec is not None and rec.layers:
        for s in rec.layers:
            table.add_row(s.site, str(s.line), s.current, f"[green]{s.suggested}[/green]")
    else:
        for n in model.norms_found:
            table.add_row(n.name, str(n.line), n.code, "")
    console.print(table)
    console.print(f"  {_batch_text(model)}")
    if model.part_of:
        console.print(f"  judged as part of {escape(model.part_of)}")
    if model.domain:
        console.print(f"  domain: {escape(model.domain)} (`normsuite rule domains`)")
    if rec is None:
        reason = escape(model.abstain or "nothing to recommend")
        console.print(f"  [dim]recommend: none ({reason})[/dim]")
        return
    rules = f"; rules {', '.join(rec.rules)}" if rec.rules else ""
    console.print(
        f"  recommend [bold green]{escape(headline(rec))}[/bold green] "
        f"(confidence {rec.confidence}{rules})"
    )
    for title, items in (
        ("why", rec.rationale),
        ("assumed", rec.assumptions),
        ("would change it", rec.would_change),
    ):
        if items:
            console.print(f"  [bold]{title}[/bold]:")
            for item in items:
                console.print(f"    - {item}", markup=False, highlight=False)
