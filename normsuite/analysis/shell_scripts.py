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
# cd "$(dirname "$0")": the shell file's own folder
_SCRIPT_DIR = re.compile(r'\$\(\s*dirname\s+"?\$(?:0|\{0\}|\{BASH_SOURCE(?:\[0\])?\})"?\s*\)')
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
        for argv, line in _invocations(path, script, root)
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


def _invocations(path: str, script: str, root: str) -> list[tuple[list[str], int]]:
    try:
        if os.path.getsize(path) > _MAX_BYTES:
            return []
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    here = os.path.dirname(path)
    # Where relative paths start: the caller's folder is not known, so the script's
    # folder or the project root until a ``cd`` says; [] after a ``cd`` we cannot follow.
    folders = list(dict.fromkeys([here, root]))
    saved: list[list[str]] = []
    variables: dict[str, str] = {}
    out = []
    for line_no, line in _logical_lines(_SCRIPT_DIR.sub(here.replace("\\", "/"), text)):
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
            if command == ["("]:  # a subshell's cd ends with it
                saved.append(folders)
                continue
            if command == [")"]:
                folders = saved.pop() if saved else folders
                continue
            if command[0] in ("cd", "pushd"):
                folders = _moved(folders, command[1:])
                continue
            argv = _arguments_of(command, script, folders)
            if argv is not None:
                out.append((argv, line_no))
    return out


def _moved(folders: list[str], args: list[str]) -> list[str]:
    """The folders a ``cd`` leads to: none when its target is not written out."""
    if len(args) != 1 or "$" in args[0] or "`" in args[0] or args[0] == "-":
        return []
    target = os.path.expanduser(args[0])
    if os.path.isabs(target):
        return [os.path.normpath(target)]
    return list(dict.fromkeys(os.path.normpath(os.path.join(f, target)) for f in folders))


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
    """The commands of a line, with ``["("]`` and ``[")"]`` where a subshell opens and
    closes."""
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token in _SEPARATORS:
            commands += [[token], []] if token in ("(", ")") else [[]]
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def _arguments_of(command: list[str], script: str, folders: list[str]) -> list[str] | None:
    """The arguments ``command`` passes to ``script``, or None if it does not run it (a
    relative path is taken from each of ``folders``)."""
    launched = False
    for i, token in enumerate(command):
        base = os.path.basename(token)
        if _LAUNCHERS.match(base):
            launched = True
        elif launched and token == "-m" and i + 1 < len(command):
            module = command[i + 1].replace(".", "/") + ".py"
            return command[i + 2 :] if _runs(script, module, folders) else None
        elif launched and token.endswith(".py"):
            return command[i + 1 :] if _runs(script, token, folders) else None
    return None


def _runs(script: str, written: str, folders: list[str]) -> bool:
    """``written`` (``train.py``, ``./tools/train.py``, ``../train.py``) is ``script``
    when taken from one of ``folders``."""
    target = os.path.normpath(script)
    if os.path.isabs(written):
        return os.path.normpath(written) == target
    return any(os.path.normpath(os.path.join(f, written)) == target for f in folders)
