"""The command lines a project's shell scripts run a training script with.

A ``train.sh`` holding ``python train.py --batch-size 2`` says more about the batch than
``add_argument("--batch-size", default=32)``: :func:`script_invocations` returns the
arguments each such line passes, so that they beat the defaults as a command line would.
Shell variables assigned once in the file (``BS=2`` ... ``--batch-size $BS``) are
substituted; a variable assigned twice (a debug branch) or not at all stays as written,
and the caller reads it as unknown. Lines that evaluate, debug or only print a usage
(``--eval``, ``echo python train.py ...``, a heredoc's body) are not training runs.

>>> import os, tempfile
>>> root = tempfile.mkdtemp()
>>> _ = open(os.path.join(root, "train.py"), "w").write("")
>>> _ = open(os.path.join(root, "run.sh"), "w").write("BS=2  # paper\\npython train.py --bs $BS\\n")
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
_MAX_FILES = 200
_MAX_BYTES = 200_000
# Scripts named for evaluation, debugging or demos do not train (eval.sh, validate.sh,
# debug.sh, smoke_test.sh); matched on the words of the name (latest.sh is not "test").
_NOT_TRAINING = (
    "eval", "test", "infer", "demo", "predict", "bench", "export", "profil", "valid",
    "debug", "smoke", "sanity", "dry", "quick", "toy", "vis",
)  # fmt: skip
# Flags that make a run of the training script something else than training.
_NOT_TRAINING_FLAGS = frozenset(
    {
        "eval", "evaluate", "evaluation", "eval_only", "test", "test_only", "validate",
        "val_only", "dry_run", "debug", "predict", "inference", "infer", "smoke_test",
        "export", "benchmark", "profile", "demo", "fast_dev_run",
    }
)  # fmt: skip
_LAUNCHERS = re.compile(r"^(python[\d.]*|torchrun|accelerate|deepspeed|horovodrun)$")
# Words that may come before the launcher: wrappers and their options are skipped.
_WRAPPERS = frozenset({"nohup", "time", "exec", "env", "nice", "sudo", "stdbuf", "srun", "uv"})
_LAUNCHER_MODULES = ("torch.distributed", "accelerate")  # python -m torch.distributed.run ...
_NAME = re.compile(r"^[A-Za-z_]\w*$")
_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")
# cd "$(dirname "$0")": the shell file's own folder
_SCRIPT_DIR = re.compile(r'\$\(\s*dirname\s+"?\$(?:0|\{0\}|\{BASH_SOURCE(?:\[0\])?\})"?\s*\)')
_HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?")
_COMMENT = re.compile(r"(^|\s)#.*$")
_SEPARATORS = frozenset({";", "&&", "||", "|", "&", "(", ")"})


def script_invocations(script: str, root: str) -> list[tuple[list[str], str, int]]:
    """(the arguments after the script, the shell file, its line) for each line of a
    ``*.sh`` file in the script's folder, the project root or its ``scripts/``-like
    folders that trains with ``script`` (``python``, ``torchrun``, ``accelerate launch``;
    by path or as ``-m package.module``)."""
    return [
        (argv, path, line)
        for path in _shell_files(script, root)
        for argv, line in _invocations(path, script, root)
        if not _evaluates(argv)
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
            if name.endswith(".sh") and _trains(name) and os.path.isfile(path):
                found.append(path)
    return found[:_MAX_FILES]


def _trains(name: str) -> bool:
    words = re.split(r"[^a-z]+", name[:-3].lower())
    return not any(w.startswith(_NOT_TRAINING) for w in words if w)


def _evaluates(argv: list[str]) -> bool:
    flags = {a.split("=")[0].lstrip("-").replace("-", "_") for a in argv if a.startswith("-")}
    return bool(flags & _NOT_TRAINING_FLAGS)


def _invocations(path: str, script: str, root: str) -> list[tuple[list[str], int]]:
    try:
        if os.path.getsize(path) > _MAX_BYTES:
            return []
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    here = os.path.dirname(path)
    lines = _logical_lines(_SCRIPT_DIR.sub(here.replace("\\", "/"), text))
    variables = _assignments(lines)
    # Where relative paths start: the caller's folder is not known, so the script's
    # folder or the project root until a ``cd`` says; [] after a ``cd`` we cannot follow.
    folders = list(dict.fromkeys([here, root]))
    saved: list[list[str]] = []
    out = []
    for line_no, line in lines:
        for command in _commands(_words(_substitute(line, variables))):
            if command == ["("]:  # a subshell's cd ends with it
                saved.append(folders)
            elif command == [")"]:
                folders = saved.pop() if saved else folders
            elif command[0] in ("cd", "pushd"):
                folders = _moved(folders, command[1:])
            elif command[0] in ("bash", "sh") and command[1:2] == ["-c"] and len(command) > 2:
                for inner in _commands(_words(command[2])):
                    argv = _arguments_of(inner, script, folders)
                    if argv is not None:
                        out.append((argv, line_no))
            else:
                argv = _arguments_of(command, script, folders)
                if argv is not None:
                    out.append((argv, line_no))
    return out


def _words(line: str) -> list[str]:
    try:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = ""  # comments are cut before: ``run#3`` is one word
        return list(lexer)
    except ValueError:  # an unclosed quote: not a line we can read
        return []


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines with ``\\`` continuations joined and comments cut, each with the number of
    its first line; a heredoc's body (a file the script writes) is left out."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 1
    heredoc: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if heredoc is not None:
            if raw.strip() == heredoc:
                heredoc = None
            continue
        if not pending:
            start = number
        stripped = raw.rstrip()
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        line = _COMMENT.sub("", " ".join([*pending, raw]))
        pending = []
        marker = _HEREDOC.search(line)
        if marker:
            heredoc = marker.group(1)
            line = line[: marker.start()]
        out.append((start, line))
    if pending:
        out.append((start, " ".join(pending)))
    return out


def _assignments(lines: list[tuple[int, str]]) -> dict[str, str]:
    """Variables assigned exactly once with one value (``BS=2``, ``export BS=2 LR=0.1``,
    ``BS=${BS:-2}``); one assigned twice with different values (a debug branch) is not
    known."""
    values: dict[str, set[str]] = {}
    for _, line in lines:
        words = _words(line)
        if words and words[0] in ("export", "declare", "local", "readonly"):
            words = words[1:]
        if not words or not all("=" in w and _NAME.match(w.split("=")[0]) for w in words):
            continue
        for word in words:
            name, _, value = word.partition("=")
            known = {n: next(iter(v)) for n, v in values.items() if len(v) == 1}
            values.setdefault(name, set()).add(_substitute(value, known, own=name))
    return {name: next(iter(v)) for name, v in values.items() if len(v) == 1}


def _substitute(line: str, variables: dict[str, str], own: str | None = None) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name in variables and name != own:
            return variables[name]
        if match.group(2) is not None:  # ${BS:-4}
            return match.group(2)
        return match.group(0)  # unknown: stays "$BS", which is not a number

    return _VARIABLE.sub(value, line)


def _moved(folders: list[str], args: list[str]) -> list[str]:
    """The folders a ``cd`` leads to: none when its target is not written out."""
    if len(args) != 1 or "$" in args[0] or "`" in args[0] or args[0] == "-":
        return []
    target = os.path.expanduser(args[0])
    if os.path.isabs(target):
        return [os.path.normpath(target)]
    return list(dict.fromkeys(os.path.normpath(os.path.join(f, target)) for f in folders))


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
    relative path is taken from each of ``folders``). The command must start with the
    launcher, after environment assignments and wrappers (``nohup``, ``srun -N 1``):
    ``echo python train.py`` runs nothing."""
    launched = wrapped = False
    for i, token in enumerate(command):
        base = os.path.basename(token)
        if not launched:
            if _LAUNCHERS.match(base):
                launched = True
            elif base in _WRAPPERS:
                wrapped = True
            elif token.startswith("-") or _is_assignment(token):
                continue
            elif not (wrapped and (command[i - 1].startswith("-") or command[i - 1] in _WRAPPERS)):
                return None  # not a wrapper's word or option value: another program
        elif token == "-m" and i + 1 < len(command):
            module = command[i + 1]
            if module.startswith(_LAUNCHER_MODULES):
                continue  # python -m torch.distributed.launch --nproc_per_node 2 train.py
            path = module.replace(".", "/") + ".py"
            return command[i + 2 :] if _runs(script, path, folders) else None
        elif token.endswith(".py"):
            return command[i + 1 :] if _runs(script, token, folders) else None
    return None


def _is_assignment(token: str) -> bool:
    return "=" in token and bool(_NAME.match(token.split("=")[0]))


def _runs(script: str, written: str, folders: list[str]) -> bool:
    """``written`` (``train.py``, ``./tools/train.py``, ``../train.py``) is ``script``
    when taken from one of ``folders``."""
    target = os.path.normpath(script)
    if os.path.isabs(written):
        return os.path.normpath(written) == target
    return any(os.path.normpath(os.path.join(f, written)) == target for f in folders)
