"""`# noqa`, select/ignore and `[tool.normsuite]`: parsing and precedence (CLI flags win)."""

from __future__ import annotations

from pathlib import Path

import pytest
from normsuite.cli.main import app
from typer.testing import CliRunner

from normsuite.analysis import config as cfg
from normsuite.analysis import runner
from normsuite.analysis.noqa import ALL, filter_findings, parse_suppressions
from normsuite.analysis.types import AnalysisOptions, FileResult, Finding

SOURCE = """\
import torch.nn as nn
a = nn.LayerNorm(64)  # noqa: NRM002
b = nn.LayerNorm(64)  # noqa
c = nn.LayerNorm(64)  # noqa: E501
d = nn.LayerNorm(64)  # NOQA:nrm002, NRM011
e = "# noqa"
f = nn.LayerNorm(64)
"""


def _finding(code: str, line: int) -> Finding:
    return Finding(code=code, message=f"{code} here", line=line, col=5)


def _fake(findings: list[Finding]) -> runner.Analyzer:
    """An analyzer that returns fixed findings and records the options it got."""

    def analyze(source: str, path: str, options: AnalysisOptions) -> FileResult:
        analyze.calls.append(options)  # type: ignore[attr-defined]
        return FileResult(path=path, findings=list(findings))

    analyze.calls = []  # type: ignore[attr-defined]
    return analyze


# ------------------------------------------------------------------------ noqa


def test_noqa_comments_parsed_per_line() -> None:
    s = parse_suppressions(SOURCE)
    assert s.lines[2] == frozenset({"NRM002"})
    assert s.lines[3] == ALL
    assert s.lines[4] == frozenset({"E501"})
    assert s.lines[5] == frozenset({"NRM002", "NRM011"})
    assert 6 not in s.lines  # inside a string literal: not a comment
    assert 7 not in s.lines
    assert s.file == frozenset()


def test_noqa_filters_exactly_the_suppressed_findings() -> None:
    findings = [_finding("NRM002", n) for n in range(2, 8)] + [_finding("NRM001", 2)]
    kept = filter_findings(findings, SOURCE)
    kept_at = sorted((f.line, f.code) for f in kept)
    # line 2 keeps NRM001 (only NRM002 named), line 3 bare noqa drops all, line 4's E501
    # is another tool's code, line 5 names NRM002, lines 6-7 have no comment
    assert kept_at == [(2, "NRM001"), (4, "NRM002"), (6, "NRM002"), (7, "NRM002")]


def test_file_level_noqa() -> None:
    src = "# normsuite: noqa: NRM013\nx = 1\n"
    kept = filter_findings([_finding("NRM013", 2), _finding("NRM002", 2)], src)
    assert [f.code for f in kept] == ["NRM002"]
    assert filter_findings([_finding("NRM002", 2)], "# normsuite: noqa\nx = 1\n") == []


def test_noqa_on_unterminated_source_falls_back_to_line_scan() -> None:
    s = parse_suppressions('x = 1  # noqa: NRM003\ny = """open\n')
    assert s.lines[1] == frozenset({"NRM003"})


# ------------------------------------------------------------------------ config


def test_parse_config_reads_the_table() -> None:
    text = '[tool.normsuite]\nselect = ["nrm0"]\nignore = ["NRM013"]\nbatch-size = 8\n'
    c = cfg.parse_config(text, "p.toml")
    assert (c.select, c.ignore, c.batch_size, c.max_file_size) == (("NRM0",), ("NRM013",), 8, None)
    assert cfg.parse_config("[tool.normsuite]\nbatch_size = 4\n").batch_size == 4
    assert cfg.parse_config("[project]\nname = 'x'\n", "p.toml") == cfg.FileConfig(path="p.toml")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[tool.normsuite]\nbatchsize = 8\n", "unknown key 'batchsize'"),
        ("[tool.normsuite]\nbatch-size = 0\n", "`batch-size` must be a positive integer"),
        ("[tool.normsuite]\nbatch-size = true\n", "`batch-size` must be a positive integer"),
        ("[tool.normsuite]\nignore = [1]\n", "`ignore` must be a list of rule codes"),
        ("[tool.normsuite\n", "invalid TOML"),
    ],
)
def test_bad_config_is_one_line_error(text: str, needle: str) -> None:
    with pytest.raises(cfg.ConfigError) as info:
        cfg.parse_config(text, "p.toml")
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_nearest_pyproject_with_a_table_wins(tmp_path: Path) -> None:
    cfg.clear_cache()
    (tmp_path / "pyproject.toml").write_text('[tool.normsuite]\nignore = ["NRM001"]\n')
    inner = tmp_path / "pkg" / "sub"
    inner.mkdir(parents=True)
    (tmp_path / "pkg" / "pyproject.toml").write_text("[project]\nname = 'pkg'\n")  # no table
    (inner / "m.py").write_text("x = 1\n")
    assert cfg.find_config(str(inner / "m.py")).ignore == ("NRM001",)
    (inner / "pyproject.toml").write_text('[tool.normsuite]\nignore = ["NRM002"]\n')
    cfg.clear_cache()
    assert cfg.find_config(str(inner / "m.py")).ignore == ("NRM002",)


@pytest.mark.parametrize(
    ("cli_select", "cli_ignore", "config", "enabled"),
    [
        # code, then what decides it
        ((), (), cfg.FileConfig(), {"NRM002": True, "NRM013": True}),
        ((), (), cfg.FileConfig(ignore=("NRM013",)), {"NRM002": True, "NRM013": False}),
        ((), (), cfg.FileConfig(select=("NRM00",)), {"NRM002": True, "NRM013": False}),
        (("NRM013",), (), cfg.FileConfig(ignore=("NRM013",)), {"NRM002": False, "NRM013": True}),
        (("NRM",), (), cfg.FileConfig(select=("NRM002",)), {"NRM002": True, "NRM013": True}),
        ((), ("NRM002",), cfg.FileConfig(select=("NRM002",)), {"NRM002": False, "NRM013": False}),
        (("NRM0",), ("NRM01",), cfg.FileConfig(), {"NRM002": True, "NRM013": False}),
    ],
)
def test_select_ignore_precedence(
    cli_select: tuple[str, ...],
    cli_ignore: tuple[str, ...],
    config: cfg.FileConfig,
    enabled: dict[str, bool],
) -> None:
    for code, expected in enabled.items():
        got = cfg.rule_enabled(code, cli_select=cli_select, cli_ignore=cli_ignore, config=config)
        assert got is expected, code


def test_runner_applies_config_cli_and_noqa_together(tmp_path: Path) -> None:
    cfg.clear_cache()
    (tmp_path / "pyproject.toml").write_text(
        '[tool.normsuite]\nignore = ["NRM013"]\nbatch-size = 8\n'
    )
    model = tmp_path / "m.py"
    model.write_text("a = 1\nb = 2  # noqa: NRM001\nc = 3\n")
    fake = _fake([_finding("NRM013", 1), _finding("NRM001", 2), _finding("NRM002", 3)])

    (result,) = runner.analyze_paths([str(model)], analyzer=fake)
    assert [f.code for f in result.findings] == ["NRM002"]
    assert fake.calls[-1].default_batch_size == 8  # config batch size reaches the analyzer

    opts = AnalysisOptions(select=("NRM013", "NRM001"), batch_size=32)
    (result,) = runner.analyze_paths([str(model)], opts, analyzer=fake)
    # --select beats the config's ignore; noqa still applies to NRM001
    assert [f.code for f in result.findings] == ["NRM013"]
    assert fake.calls[-1].batch_size == 32

    isolated = runner.RunSettings(use_config=False)
    (result,) = runner.analyze_paths([str(model)], settings=isolated, analyzer=fake)
    assert [f.code for f in result.findings] == ["NRM013", "NRM002"]
    assert fake.calls[-1].default_batch_size is None


def test_cli_reports_a_bad_config_once(tmp_path: Path) -> None:
    cfg.clear_cache()
    (tmp_path / "pyproject.toml").write_text("[tool.normsuite]\nselect = 3\n")
    (tmp_path / "m.py").write_text("x = 1\n")
    (tmp_path / "n.py").write_text("x = 1\n")
    res = CliRunner().invoke(app, ["check", str(tmp_path)])
    assert res.exit_code == 2
    (line,) = res.output.strip().splitlines()  # once, not once per file
    assert "`select` must be a list of rule codes" in line
    cfg.clear_cache()


@pytest.mark.parametrize(
    ("key", "typo", "closest"),
    [("select", "NMR002", "NRM002"), ("ignore", "NRM0013", "NRM013"), ("select", "NMR", "NRM")],
)
def test_config_rejects_unknown_codes_naming_the_closest(key: str, typo: str, closest: str) -> None:
    with pytest.raises(cfg.ConfigError) as info:
        cfg.parse_config(f'[tool.normsuite]\n{key} = ["NRM001", "{typo}"]\n', "/p/pyproject.toml")
    message = str(info.value)
    assert message.startswith("/p/pyproject.toml [tool.normsuite]: ")
    assert f"unknown rule code {typo!r} in `{key}`; did you mean {closest!r}?" in message
    # valid codes, prefixes and "all" still parse (normalized)
    ok = cfg.parse_config(f'[tool.normsuite]\n{key} = ["nrm00", "NRM013", "all"]\n')
    assert getattr(ok, key) == ("NRM00", "NRM013", "NRM")


def test_cli_config_typo_is_one_line_and_exit_2(tmp_path: Path) -> None:
    # before: `select = ["NMR002"]` matched no rule, so every rule was off: "All checks passed"
    cfg.clear_cache()
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.normsuite]\nselect = ["NMR002"]\n')
    (project / "m.py").write_text("import torch.nn as nn\nx = nn.GroupNorm(3, 64)\n")
    (project / "n.py").write_text("x = 1\n")
    for command in ("check", "recommend"):
        res = CliRunner().invoke(app, [command, str(project)])
        assert res.exit_code == 2, res.output
        assert res.output.strip().splitlines() == [
            f"normsuite {command}: error: {project / 'pyproject.toml'} [tool.normsuite]: "
            "unknown rule code 'NMR002' in `select`; did you mean 'NRM002'? "
            "(`normsuite rule` lists the codes)"
        ]
    cfg.clear_cache()


def test_cli_rejects_unknown_codes_in_select_and_ignore(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("x = 1\n")
    for flag in ("--select", "--ignore"):
        res = CliRunner().invoke(app, ["check", str(tmp_path / "m.py"), flag, "NRM002,XYZ1"])
        assert res.exit_code == 2
        (line,) = res.output.strip().splitlines()
        assert line.startswith(
            f"normsuite check: error: unknown rule code 'XYZ1' in {flag}; did you mean 'NRM0"
        )
        assert line.endswith("? (`normsuite rule` lists the codes)")
    res = CliRunner().invoke(app, ["check", str(tmp_path / "m.py"), "--ignore", "NMR002"])
    assert "did you mean 'NRM002'?" in res.output


def test_unknown_noqa_codes_are_warned_others_left_alone(tmp_path: Path) -> None:
    from normsuite.analysis.noqa import unknown_noqa_codes

    source = "x = 1  # noqa: NMR999, E501, NPY002, NRM002\ny = 2  # normsuite: noqa: NRN002\n"
    notices = unknown_noqa_codes(source)
    assert [(n.line, n.kind) for n in notices] == [(1, "noqa"), (2, "noqa")]
    assert notices[0].message.startswith("unknown rule code 'NMR999' in `# noqa`; did you mean")
    assert "'NRN002'" in notices[1].message and not any(n.incomplete for n in notices)
    path = tmp_path / "m.py"
    path.write_text(source)
    res = CliRunner().invoke(app, ["check", str(path), "--isolated"])
    assert res.exit_code == 0  # a warning, not an error
    assert f"{path}:1: warning: unknown rule code 'NMR999' in `# noqa`" in res.output


def test_unknown_noqa_codes_read_only_real_comments(monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo inside a string is no comment; a file whose noqa comments are all bare or
    other tools' is not tokenized at all (the raw-text pre-scan)."""
    from normsuite.analysis import noqa

    in_string = 's = "# noqa: NMR002"\nx = 1  # noqa: NMR003\n'
    assert [(n.line, "'NMR003'" in n.message) for n in noqa.unknown_noqa_codes(in_string)] == [
        (2, True)
    ]

    def no_tokenizing(source: str) -> list[tuple[int, str]]:
        raise AssertionError("tokenized a file without a code of ours")

    monkeypatch.setattr(noqa, "_comments", no_tokenizing)
    others = "import os  # noqa: F401\nx = 1  # noqa\ny = 2  # noqa: E501, NRM002\n"
    assert noqa.unknown_noqa_codes(others) == []
