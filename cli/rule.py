"""`normsuite rule`: list the analyzer rules, or print one rule's documentation."""

from __future__ import annotations

import sys

import typer

CODE = typer.Argument(
    None,
    help="A rule code such as NRM002, or `domains` (the domain exceptions to the advice, "
    "with their sources); omit to list all rules.",
)


def rule(code: str | None = CODE) -> None:
    """Explain a rule (what it does, why it is bad, example, fix), or list all rules."""
    from normsuite.analysis.catalog import RULES
    from normsuite.analysis.report import rule_doc

    if code is None:
        _list_rules()
        return
    key = code.strip().upper()
    if key in ("DOMAINS", *_domain_ids()):
        from normsuite.advice import domains_doc

        _print_markdown(domains_doc())
        return
    if key not in RULES:
        import difflib

        close = difflib.get_close_matches(key, list(RULES), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        typer.echo(
            f"normsuite rule: error: unknown rule {code!r}{hint}; run `normsuite rule` "
            "to list the codes",
            err=True,
        )
        raise typer.Exit(2)
    info = RULES[key]
    _print_markdown(rule_doc(key) or f"# {info.code} ({info.name})\n\n{info.summary}\n")


def _domain_ids() -> tuple[str, ...]:
    from normsuite.advice import DOMAINS

    return tuple(DOMAINS)


def _print_markdown(doc: str) -> None:
    from rich.console import Console

    console = Console(file=sys.stdout)
    if console.is_terminal:
        from rich.markdown import Markdown

        console.print(Markdown(doc))
    else:
        typer.echo(doc.rstrip("\n"))


def _list_rules() -> None:
    from rich.console import Console

    from normsuite.analysis.catalog import RULES

    console = Console(file=sys.stdout)
    if console.is_terminal:
        from rich.table import Table

        table = Table("Code", "Name", "Severity", "Summary")
        for info in RULES.values():
            table.add_row(info.code, info.name, info.severity, info.summary)
        console.print(table)
        return
    for info in RULES.values():
        typer.echo(f"{info.code}\t{info.name}\t{info.severity}\t{info.summary}")
