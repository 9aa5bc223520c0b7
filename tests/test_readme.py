"""The README's runnable examples run, and print what the README says they print.

A fenced block is tested when the line before it (blank lines aside) is the HTML comment
``<!-- readme-test: run -->``, which GitHub does not render. Other blocks are never run, so
sections without the marker cannot break this test. What a marked block may be:

- ``console``: lines starting with ``$ `` are shell commands (``\\`` continues a line), the
  lines after each command are its expected output (stdout and stderr together);
- ``pycon``: a doctest session (``>>>`` / ``...`` prompts, exceptions as doctest writes them);
- ``python`` or ``bash``: a script that must exit 0; when the next block is marked
  ``<!-- readme-test: output -->``, that block is its expected stdout.

Outputs are compared line by line after dropping colour codes and trailing spaces and
writing the repository root as ``.``; ``...`` stands for any text, as in doctest (use it
for values that differ between runs, not to hide output). Commands run in the repository
root with this virtual environment's ``normsuite`` and ``python`` first on PATH.

After a deliberate change of output, rewrite the expected outputs in place with
``python tests/test_readme.py --update`` and review the diff.
"""

from __future__ import annotations

import difflib
import doctest
import itertools
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKER = re.compile(r"^<!--\s*readme-test:\s*(\w+)\s*-->$")
FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)\s*$")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
RUNNABLE = ("console", "pycon", "python", "bash")
TIMEOUT_S = 120


@dataclass
class Block:
    """One fenced block: its language, body and where it sits in the README (0-based)."""

    lang: str
    body: list[str]
    start: int  # the opening fence's line
    end: int  # the closing fence's line
    marker: str | None  # "run", "output" or None
    output: Block | None = field(default=None, repr=False)  # the block marked output after it

    @property
    def name(self) -> str:
        first = next((line for line in self.body if line.strip()), "")
        return f"README.md:{self.start + 1} {self.lang} {first[:40]}"


def parse(lines: list[str]) -> list[Block]:
    """Every fenced block, with the marker comment in front of it, if any."""
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, lang = opening.groups()
        j = i + 1
        while j < len(lines) and lines[j].strip() != fence:
            j += 1
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        mark = MARKER.match(lines[k].strip()) if k >= 0 else None
        blocks.append(Block(lang, lines[i + 1 : j], i, j, mark.group(1) if mark else None))
        i = j + 1
    for before, after in itertools.pairwise(blocks):
        if after.marker == "output":
            before.output = after
    return blocks


def marked(blocks: list[Block]) -> list[Block]:
    return [b for b in blocks if b.marker == "run"]


def normalize(text: str) -> str:
    text = ANSI.sub("", text).replace(str(ROOT) + os.sep, "").replace(str(ROOT), ".")
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(NO_COLOR="1", TERM="dumb", COLUMNS="100")  # warnings are kept: a warning wall fails
    env.pop("FORCE_COLOR", None)
    return env


def _run(command: list[str] | str) -> tuple[int, str]:
    shell = isinstance(command, str)
    done = subprocess.run(
        command,
        shell=shell,
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        executable="/bin/bash" if shell else None,
    )
    return done.returncode, done.stdout + done.stderr


def console_steps(body: list[str]) -> list[tuple[str, list[str], list[str]]]:
    """Each ``$ cmd`` (with ``\\`` continuations): the command, its README lines, and the
    expected output lines after it."""
    steps: list[tuple[str, list[str], list[str]]] = []
    lines = iter(body)
    for line in lines:
        if line.startswith("$ "):
            raw, command = [line], line[2:]
            while command.endswith("\\"):
                raw.append(next(lines))
                command = command[:-1] + " " + raw[-1].strip()
            steps.append((command, raw, []))
        elif steps:
            steps[-1][2].append(line)
        elif line.strip():
            raise AssertionError(f"output before the first `$ ` command: {line!r}")
    return steps


def _matches(want: str, got: str) -> bool:
    return doctest.OutputChecker().check_output(want + "\n", got + "\n", doctest.ELLIPSIS)


def _diff(want: str, got: str) -> str:
    lines = difflib.unified_diff(
        want.splitlines(), got.splitlines(), "README says", "the command printed", lineterm=""
    )
    return "\n".join(lines)


def check(block: Block) -> list[str]:
    """Run one marked block; the list of mismatches (empty when it matches the README)."""
    problems = []
    if block.lang == "console":
        steps = console_steps(block.body)
        if not steps:
            return ["a console block marked to run has no `$ ` command"]
        for command, _, expected in steps:
            _, got = _run(command)
            want = normalize("\n".join(expected))
            got = normalize(got)
            if not _matches(want, got):
                problems.append(f"$ {command}\n{_diff(want, got)}")
    elif block.lang == "pycon":
        test = doctest.DocTestParser().get_doctest(
            "\n".join(block.body), {}, block.name, str(README), block.start + 1
        )
        if not test.examples:
            return ["a pycon block marked to run has no >>> example"]
        report: list[str] = []
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        runner.run(test, out=report.append, clear_globs=True)
        problems.extend(report)
    elif block.lang in ("python", "bash"):
        command = [sys.executable, "-c"] if block.lang == "python" else ["bash", "-e", "-c"]
        code, got = _run([*command, "\n".join(block.body)])
        if code != 0:
            problems.append(f"exit code {code}:\n{got}")
        elif block.output is not None:
            want, got = normalize("\n".join(block.output.body)), normalize(got)
            if not _matches(want, got):
                problems.append(_diff(want, got))
    else:
        problems.append(f"cannot run a {block.lang or 'plain'} block; use one of {RUNNABLE}")
    return problems


BLOCKS = parse(README.read_text(encoding="utf-8").splitlines())


def test_markers_are_well_placed() -> None:
    """Every marker is one this test knows and sits on a block it can use: none is skipped."""
    text = README.read_text(encoding="utf-8").splitlines()
    comments = [i for i, line in enumerate(text) if line.strip().startswith("<!-- readme-test")]
    assert all(MARKER.match(text[i].strip()) for i in comments), "malformed readme-test marker"
    marked_lines = sum(1 for b in BLOCKS if b.marker)
    assert marked_lines == len(comments), "a readme-test marker is not followed by a block"
    for block in BLOCKS:
        assert block.marker in (None, "run", "output"), f"{block.name}: unknown marker"
        assert block.marker != "run" or block.lang in RUNNABLE, f"{block.name}: not runnable"
        if block.marker == "output":
            assert any(b.output is block and b.marker == "run" for b in BLOCKS), (
                f"{block.name}: an output block must follow a block marked run"
            )
    assert len(marked(BLOCKS)) >= 4, "the Quick-start style examples should be marked to run"


def test_parser_on_a_sample() -> None:
    sample = [
        "text",
        "<!-- readme-test: run -->",
        "```console",
        "$ echo a \\",
        "    b",
        "a b",
        "```",
        "```python",
        "print(1)",
        "```",
    ]
    blocks = parse(sample)
    assert [b.marker for b in blocks] == ["run", None]
    assert console_steps(blocks[0].body) == [("echo a  b", sample[3:5], ["a b"])]
    assert check(blocks[0]) == []
    blocks[0].body[-1] = "a c"
    assert "-a c" in check(blocks[0])[0]  # a wrong quoted output is caught
    assert _matches("x ... z", "x yyy z") and not _matches("x z", "x y z")


@pytest.mark.parametrize("block", marked(BLOCKS), ids=lambda b: b.name)
def test_readme_block(block: Block) -> None:
    problems = check(block)
    assert not problems, (
        f"{block.name}: the README and the program disagree "
        "(python tests/test_readme.py --update rewrites console and output blocks):\n"
        + "\n\n".join(problems)
    )


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    seen: dict[str, int] = {}
    anchors = set()
    in_fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        if in_fence or not line.startswith("#"):
            continue
        slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


DOCS = ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS)
def test_links_stay_inside_the_repository(doc: str) -> None:
    """Relative links point at files of this repository (and at headings that exist)."""
    path = ROOT / doc
    text = path.read_text(encoding="utf-8")
    for mention in re.findall(r"(?:\.\./)+[\w./-]+", text):  # quoted paths, linked or not
        resolved = (path.parent / mention).resolve()
        assert resolved.is_relative_to(ROOT), f"{doc}: {mention} is outside the repository"
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto: outside links are fine
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        assert resolved.is_relative_to(ROOT), f"{doc}: {target} leaves the repository"
        assert resolved.exists(), f"{doc}: {target} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved), f"{doc}: no heading for #{anchor}"


def update() -> int:
    """Rewrite the expected output of marked console blocks and output blocks in place."""
    lines = README.read_text(encoding="utf-8").splitlines()
    changed = 0
    for block in reversed(marked(parse(lines))):  # bottom up: earlier line numbers hold
        if block.lang == "console":
            body: list[str] = []
            for command, raw, expected in console_steps(block.body):
                _, got = _run(command)
                got_lines = normalize(got).splitlines()
                want = normalize("\n".join(expected))
                blank = len(expected) - len("\n".join(expected).rstrip("\n").splitlines())
                keep = (
                    expected if _matches(want, "\n".join(got_lines)) else got_lines + [""] * blank
                )
                body += [*raw, *keep]
            if body != block.body:
                lines[block.start + 1 : block.end] = body
                changed += 1
        elif block.output is not None:
            _, got = _run(
                [sys.executable, "-c", "\n".join(block.body)]
                if block.lang == "python"
                else ["bash", "-e", "-c", "\n".join(block.body)]
            )
            out = block.output
            want = normalize("\n".join(out.body))
            if not _matches(want, normalize(got)):
                lines[out.start + 1 : out.end] = normalize(got).splitlines()
                changed += 1
    README.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{changed} block(s) rewritten; pycon blocks are checked, not rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(update() if sys.argv[1:] == ["--update"] else pytest.main([__file__, "-q"]))
