"""Property-based fuzzing of the analyzer CLI: generated modules (hypothesmith) and mutated
real model files go through `check` and `recommend` in every format. Whatever the input:
exit code 0/1/2, never a traceback, JSON and SARIF always parse.

Bounded for CI (about 10-30 s on a 2-core box): a fixed number of examples, no deadline,
derandomized so that a failure reproduces on every run.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
hypothesmith = pytest.importorskip("hypothesmith")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from normsuite.cli.main import app  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEEDS = sorted(
    p
    for folder in (ROOT / "tests" / "fixtures", ROOT / "recipes" / "models")
    for p in folder.rglob("*.py")
)
FORMATS = ("text", "json", "sarif", "github")
FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _run_everything(source: str) -> None:
    """Every command in every format on ``source``; assert the contract of each run."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed.py"
        path.write_bytes(source.encode("utf-8", "surrogatepass"))
        for command in ("check", "recommend"):
            for fmt in FORMATS:
                res = CliRunner().invoke(app, [command, str(path), "--format", fmt, "--isolated"])
                context = f"{command} --format {fmt}"
                assert res.exception is None or isinstance(res.exception, SystemExit), (
                    context,
                    repr(res.exception),
                )
                allowed = {0, 1, 2} if command == "check" else {0, 2}
                assert res.exit_code in allowed, (context, res.exit_code, res.output)
                assert "Traceback" not in res.output, context
                if fmt == "json":
                    doc = json.loads(res.stdout)
                    assert doc["summary"]["files"] == 1
                elif fmt == "sarif":
                    doc = json.loads(res.stdout)
                    assert doc["version"] == "2.1.0"
                # stderr: one line per problem, each naming the file
                for line in res.stderr.splitlines():
                    assert line.startswith(str(path)), (context, line)


@st.composite
def mutated_models(draw: st.DrawFn) -> str:
    """A real model file with a few edits: lines deleted, duplicated or swapped, text
    inserted, numbers changed, the file cut short."""
    lines = draw(st.sampled_from(SEEDS)).read_text(encoding="utf-8").splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "number", "cut"]))
        if edit == "delete":
            del lines[i : i + draw(st.integers(1, 5))]
        elif edit == "duplicate":
            lines.insert(i, lines[i])
        elif edit == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif edit == "insert":
            text = draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=20))
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + text + lines[i][at:]
        elif edit == "number":
            number = draw(st.sampled_from(["0", "-1", "1", "3", "1024", "10**9", "None", "''"]))
            lines[i] = "".join(number if ch.isdigit() else ch for ch in lines[i])
        else:
            lines = lines[:i]
    return "".join(lines)


def test_seed_files_exist() -> None:
    assert len(SEEDS) >= 5  # the mutation fuzzer needs real models to start from


@FUZZ
@given(mutated_models())
def test_mutated_real_models_never_crash_the_cli(source: str) -> None:
    _run_everything(source)


@FUZZ
@given(hypothesmith.from_grammar())
def test_generated_modules_never_crash_the_cli(source: str) -> None:
    _run_everything(source)
