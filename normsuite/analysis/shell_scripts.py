"""The command lines a project's shell scripts run a training script with.

A ``train.sh`` holding ``python train.py --batch-size 2`` says more about the batch than
``add_argument("--batch-size", default=32)``: :func:`script_invocations` returns the
arguments each such line passes, so that they beat the defaults as a command line would.
Shell variables assigned in the same file (``BS=2`` ... ``--batch-size $BS``) are
substituted; any other variable stays as written, and the caller reads it as unknown.

>>> import os, tempfile
>>> root = tempfile.mkdtemp()
>>> _ = open(os.path.join(root, "train.py"), "w").write("")
>>> _ = open(os.path.join(root, "run.sh"), "w").write("BS=2\\npython train.py --bs $BS\\n")
>>> [(argv, os.path.basename(path), line) for argv, path, line in
...  script_invocations(os.path.join(root, "train.py"), root)]
[(['--bs', '2'], 'run.sh', 2)]
"""

from __future__ import annotations

import os
import re
import shlex

# Where projects keep their launch scripts (not searched deeper: a vendored tree's
# scripts are not this project's).
_FOLDERS = ("", "scripts", "script", "tools", "experiments", "exps", "run", "bash", "sh")
_MAX_FILES = 64
_MAX_BYTES = 200_000
# Scripts named for evaluation or demos do not train (eval.sh running train.py --eval).
_NOT_TRAINING = re.compile(r"eval|test|infer|demo|predict|bench|export|profile", re.I)
_LAUNCHERS = re.compile(r"^(python[\d.]*|torchrun|accelerate|deepspeed|horovodrun|srun)$")
_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Za-z_]\w*)=(\S*)\s*$")
_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)")
_SEPARATORS = frozenset({";", "&&", "||", "|", "&", "(", ")"})


def script_invocations(script: str, root: str) -> list[tuple[list[str], str, int]]:
    """(the arguments after the script, the shell file, its line) for each line of a
    ``*.sh`` file in the script's folder, the project root or its ``scripts/``-like folders
    that runs
    ``script`` with Python (``python``, ``torchrun``, ``accelerate launch``; by path or
    as ``-m package.module``)."""
    return [
        (argv, path, line)
        for path in _shell_files(script, root)
        for argv, line in _invocations(path, script)
    ]


def _shell_files(script: str, root: str) -> list[str]:
    folders = [os.path.dirname(script)] + [os.path.join(root, f) for f in _FOLDERS]
    found: list[str] = []
    for folder in dict.fromkeys(os.path.normpath(f) for f in folders):
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            path = os.path.join(folder, name)
            if name.endswith(".sh") and not _NOT_TRAINING.search(name) and os.path.isfile(path):
                found.append(path)
    return found[:_MAX_FILES]


def _invocations(path: str, script: str) -> list[tuple[list[str], int]]:
    try:
        if os.path.getsize(path) > _MAX_BYTES:
            return []
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    variables: dict[str, str] = {}
    out = []
    for line_no, line in _logical_lines(text):
        assigned = _ASSIGN.match(line)
        if assigned:
            variables[assigned.group(1)] = assigned.group(2).strip("\"'")
            continue
        try:
            lexer = shlex.shlex(_substitute(line, variables), posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            tokens = list(lexer)
        except ValueError:  # an unclosed quote: not a line we can read
            continue
        for command in _commands(tokens):
            argv = _arguments_of(command, script)
            if argv is not None:
                out.append((argv, line_no))
    return out


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines with ``\\`` continuations joined, each with the number of its first line."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 1
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if raw.rstrip().endswith("\\"):
            pending.append(raw.rstrip()[:-1])
            continue
        out.append((start, " ".join([*pending, raw])))
        pending = []
    if pending:
        out.append((start, " ".join(pending)))
    return out


def _substitute(line: str, variables: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name in variables:
            return variables[name]
        if match.group(2) is not None:  # ${BS:-4}
            return match.group(2)
        return match.group(0)  # unknown: stays "$BS", which is not a number

    return _VARIABLE.sub(value, line)


def _commands(tokens: list[str]) -> list[list[str]]:
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token in _SEPARATORS:
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def _arguments_of(command: list[str], script: str) -> list[str] | None:
    """The arguments ``command`` passes to ``script``, or None if it does not run it."""
    launched = False
    for i, token in enumerate(command):
        base = os.path.basename(token)
        if _LAUNCHERS.match(base):
            launched = True
        elif launched and token == "-m" and i + 1 < len(command):
            module = command[i + 1].replace(".", "/") + ".py"
            if _names(script, module):
                return command[i + 2 :]
        elif launched and token.endswith(".py"):
            return command[i + 1 :] if _names(script, token) else None
    return None


def _names(script: str, written: str) -> bool:
    """``written`` (``train.py``, ``./tools/train.py``, ``../train.py``) can be ``script``:
    the same file name, and the folders it spells out end the script's path."""
    parts = [p for p in written.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    tail = os.path.normpath(script).split(os.sep)[-len(parts) :] if parts else []
    return bool(parts) and tail == parts
