"""Fixes (``normsuite check --fix/--diff/--unsafe-fixes``): what each fix writes, the
safe/unsafe split, that a fix never creates a finding, and that diffs apply."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest
from normsuite.cli.main import app
from typer.testing import CliRunner

from normsuite.analysis.analyze import analyze_source
from normsuite.analysis.fixes import apply_fixes, fix_source, fixes_for
from normsuite.analysis.types import AnalysisOptions, Finding

FIXTURES = Path(__file__).parent / "fixtures"
HEAD = "import torch.nn as nn\n\n\nclass M(nn.Module):\n    def __init__(self):\n"
HEAD += "        super().__init__()\n"


def findings(source: str) -> list[Finding]:
    return analyze_source(source, "m.py", AnalysisOptions()).findings


def fixed(source: str, unsafe: bool) -> str:
    text, _ = fix_source(source, findings(source), findings, unsafe=unsafe)
    return text


def body(*lines: str) -> str:
    return HEAD + "".join(f"        {line}\n" for line in lines)


@pytest.mark.parametrize(
    ("line", "safe", "unsafe"),
    [
        # eps passed positionally: safe writes the keyword it already is; unsafe reads it
        # as the Keras momentum it was copied from (PyTorch momentum = 1 - Keras momentum).
        (
            "self.bn = nn.BatchNorm2d(64, 0.8)",
            "nn.BatchNorm2d(64, eps=0.8)",
            "nn.BatchNorm2d(64, momentum=0.2)",
        ),
        ("self.bn = nn.BatchNorm2d(64, 64)", "nn.BatchNorm2d(64, eps=64)", "nn.BatchNorm2d(64)"),
        (
            "self.bn = nn.BatchNorm1d(8, 0.5, 0.1)",
            "nn.BatchNorm1d(8, eps=0.5, momentum=0.1)",
            "nn.BatchNorm1d(8, eps=0.5, momentum=0.1)",
        ),
        (
            "self.n = nn.InstanceNorm2d(8, True)",
            "nn.InstanceNorm2d(8, eps=True)",
            "nn.InstanceNorm2d(8, affine=True)",
        ),
        # momentum: only unsafe (it changes the running statistics)
        (
            "self.bn = nn.BatchNorm2d(64, momentum=0.99)",
            "momentum=0.99",
            "nn.BatchNorm2d(64, momentum=0.01)",
        ),
        (
            "self.bn = nn.BatchNorm1d(64, 1e-3, 0.9)",
            "nn.BatchNorm1d(64, 1e-3, 0.9)",
            "nn.BatchNorm1d(64, 1e-3, 0.1)",
        ),
        # GroupNorm(C, G) swapped back
        ("self.gn = nn.GroupNorm(64, 16)", "nn.GroupNorm(64, 16)", "nn.GroupNorm(16, 64)"),
    ],
)
def test_safe_and_unsafe_fix_text(line: str, safe: str, unsafe: str) -> None:
    src = body(line)
    assert safe in fixed(src, unsafe=False)
    assert unsafe in fixed(src, unsafe=True)


def test_bias_false_is_unsafe_and_goes_where_the_bias_is() -> None:
    forward = "    def forward(self, x):\n        return self.bn(self.conv(x))\n"
    for conv, want in [
        ("nn.Conv2d(3, 8, 3)", "nn.Conv2d(3, 8, 3, bias=False)"),
        ("nn.Conv2d(3, 8, 3, bias=True)", "nn.Conv2d(3, 8, 3, bias=False)"),
        ("nn.Conv2d(3, 8, 3, 1, 0, 1, 1, True)", "nn.Conv2d(3, 8, 3, 1, 0, 1, 1, False)"),
    ]:
        src = body(f"self.conv = {conv}", "self.bn = nn.BatchNorm2d(8)") + forward
        assert [f.code for f in findings(src)] == ["NRM001"]
        assert fixed(src, unsafe=False) == src  # drops a state_dict key: not safe
        out = fixed(src, unsafe=True)
        assert want in out and findings(out) == []


def test_no_fix_through_opaque_kwargs() -> None:
    src = "import torch.nn as nn\nkw = load()\nbn = nn.BatchNorm2d(64, 0.8, **kw)\n"
    f = Finding("NRM014", "", line=3, col=6)
    assert fixes_for(src, [f], unsafe=True) == []


def test_a_fix_that_would_create_a_finding_is_dropped() -> None:
    # Swapping GroupNorm(96, 48) gives GroupNorm(48, 96): 2 channels per group (NRM004).
    src = body("self.gn = nn.GroupNorm(96, 48)", "self.bn = nn.BatchNorm2d(64, momentum=0.9)")
    before = {(f.code, f.line) for f in findings(src)}
    text, applied = fix_source(src, findings(src), findings, unsafe=True)
    assert [f.code for f in applied] == ["NRM009"]
    assert "nn.GroupNorm(96, 48)" in text and "momentum=0.1" in text
    assert {(f.code, f.line) for f in findings(text)} <= before


@pytest.mark.parametrize("path", sorted((FIXTURES / "rules").glob("*.py")), ids=lambda p: p.name)
def test_fixing_any_fixture_parses_and_adds_no_finding(path: Path) -> None:
    src = path.read_text()
    before = [(f.code, f.line) for f in findings(src)]
    for unsafe in (False, True):
        text = fixed(src, unsafe)
        ast.parse(text)
        after = [(f.code, f.line) for f in findings(text)]
        assert set(after) <= set(before), (unsafe, after, before)
        assert len(text.splitlines()) == len(src.splitlines())


def test_overlapping_fixes_apply_once() -> None:
    src = body("self.bn = nn.BatchNorm2d(64, 0.8)")
    f = findings(src)
    both = fixes_for(src, f, unsafe=False) + fixes_for(src, f, unsafe=True)
    assert apply_fixes(src, both).count("eps=") + apply_fixes(src, both).count("momentum=") == 1


# ---------------------------------------------------------------- CLI

GAN = FIXTURES / "cases" / "a13_eps_positional.py"


def test_cli_fix_writes_safe_fixes_and_reports_what_is_left(tmp_path: Path) -> None:
    target = tmp_path / "gan.py"
    target.write_text(GAN.read_text())
    res = CliRunner().invoke(app, ["check", "--fix", "--isolated", str(target)])
    assert res.exit_code == 0, res.output  # eps written as a keyword: nothing left
    assert "nn.BatchNorm2d(c, eps=0.8)" in target.read_text()
    assert "Fixed 2 findings; 2 have an unsafe fix (--unsafe-fixes)." in res.stderr


def test_cli_unsafe_fixes_and_diff_leave_the_file_alone(tmp_path: Path) -> None:
    target = tmp_path / "gan.py"
    target.write_text(GAN.read_text())
    res = CliRunner().invoke(app, ["check", "--diff", "--unsafe-fixes", "--isolated", str(target)])
    assert res.exit_code == 1
    assert target.read_text() == GAN.read_text()
    assert "+            nn.BatchNorm2d(c, momentum=0.2)," in res.stdout
    assert res.stdout.startswith(f"--- {target}\n+++ {target}\n")


@pytest.mark.parametrize("tool", ["patch", "git"])
def test_diff_applies_with_patch_and_git_apply(
    tmp_path: Path, tool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gan.py").write_text(GAN.read_text())
    res = CliRunner().invoke(app, ["check", "--diff", "--unsafe-fixes", "--isolated", "gan.py"])
    assert res.exit_code == 1
    cmd = ["patch", "-p0"] if tool == "patch" else ["git", "apply", "-p0", "-"]
    if tool == "git":
        subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(cmd, input=res.stdout, text=True, cwd=tmp_path, check=True, capture_output=True)
    want = fixed(GAN.read_text(), unsafe=True)
    assert (tmp_path / "gan.py").read_text() == want
    assert "momentum=0.2" in want and "nn.BatchNorm2d(c // 2)" in want


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fix", "-"], "--fix and --diff need files on disk, not stdin"),
        (["--unsafe-fixes", "x.py"], "--unsafe-fixes only applies with --fix or --diff"),
    ],
)
def test_cli_fix_usage_errors(args: list[str], message: str) -> None:
    res = CliRunner().invoke(app, ["check", *args])
    assert res.exit_code == 2
    assert message in res.stderr


def test_cli_fix_on_a_file_it_cannot_write_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "gan.py"
    target.write_text(GAN.read_text())

    def refuse(self: Path, data: bytes) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "write_bytes", refuse)  # root ignores chmod: refuse directly
    res = CliRunner().invoke(app, ["check", "--fix", "--isolated", str(target)])
    assert res.exit_code == 2
    assert f"{target}: error: cannot write fixes (Permission denied)" in res.stderr
    assert "Traceback" not in res.output and "Fixed 0 findings" in res.stderr
    assert target.read_text() == GAN.read_text()


def test_eps_from_a_name_gets_only_the_safe_fix() -> None:
    # eps_value = 0.8 is read by the rule, but the fixer only rewrites literals it sees
    src = "import torch.nn as nn\n\nk = 0.8\n\n\nclass M(nn.Module):\n"
    src += "    def __init__(self):\n        super().__init__()\n"
    src += "        self.bn = nn.BatchNorm2d(64, k)\n"
    assert [f.code for f in findings(src)] == ["NRM014"]
    out = fixed(src, unsafe=True)
    assert "nn.BatchNorm2d(64, eps=k)" in out  # never "dropped" nor guessed


def test_cli_fix_leaves_unsafe_findings_reported_with_exit_1(tmp_path: Path) -> None:
    src = body("self.conv = nn.Conv2d(3, 8, 3)", "self.bn = nn.BatchNorm2d(8)")
    src += "    def forward(self, x):\n        return self.bn(self.conv(x))\n"
    target = tmp_path / "m.py"
    target.write_text(src)
    res = CliRunner().invoke(app, ["check", "--fix", "--isolated", str(target)])
    assert res.exit_code == 1  # NRM001 is still there: its fix is unsafe
    assert "NRM001" in res.stdout and target.read_text() == src
    assert "Fixed 0 findings; 1 has an unsafe fix (--unsafe-fixes)." in res.stderr
    res = CliRunner().invoke(app, ["check", "--fix", "--unsafe-fixes", "--isolated", str(target)])
    assert res.exit_code == 0 and "bias=False" in target.read_text()
    again = CliRunner().invoke(app, ["check", "--fix", "--unsafe-fixes", "--isolated", str(target)])
    assert again.exit_code == 0 and "Fixed 0 findings." in again.stderr  # idempotent


def test_a_swapped_groupnorm_with_a_variable_is_swapped_back() -> None:
    """``GroupNorm(c, 32)`` with c = 128 (NRM014's page example): the rule worked the swap
    out from the values, so the unsafe fix swaps the texts back, and nothing is left."""
    src = body("c = 128", "self.gn = nn.GroupNorm(c, 32)")
    assert "NRM014" in [f.code for f in findings(src)]
    out = fixed(src, unsafe=True)
    assert "nn.GroupNorm(32, c)" in out and findings(out) == []
    assert fixed(src, unsafe=False) == src
