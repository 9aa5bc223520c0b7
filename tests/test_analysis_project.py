"""The project index: names resolved across files (bases, wrappers, helpers, constants),
torch layer subclasses keeping their parent's meaning, third-party bases.

Fixtures in tests/fixtures/project/ are copies of the analyzer cases (a02_pkg, r29_pkg,
r05, a09b) plus a src/ layout package with relative imports written for these tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from normsuite.analysis import project
from normsuite.analysis.runner import analyze_paths
from normsuite.analysis.types import FileResult

FIX = Path(__file__).parent / "fixtures" / "project"
# single-file cases shared with tests/test_recommend_cases.py (one copy of each)
CASES = Path(__file__).parent / "fixtures" / "recommend"


def _by_name(results: list[FileResult]) -> dict[str, FileResult]:
    return {os.path.relpath(r.path, FIX): r for r in results}


def _codes(result: FileResult) -> list[tuple[str, int]]:
    return [(f.code, f.line) for f in result.findings]


def test_base_class_in_another_file_is_resolved() -> None:
    """a02: FusionNeck(Backbone), Backbone in base.py -> model found, NRM001 at line 11."""
    results = _by_name(analyze_paths([str(FIX / "a02_pkg")]))
    head = results["a02_pkg/fpn_head.py"]
    assert [m.name for m in head.models] == ["FusionNeck"]
    assert head.models[0].architecture == "cnn2d"
    assert _codes(head) == [("NRM001", 11)]


def test_base_class_resolved_when_the_file_is_analyzed_alone() -> None:
    """Analysing one file of a package still reads what it imports (and only that)."""
    project.clear()
    (head,) = analyze_paths([str(FIX / "a02_pkg" / "fpn_head.py")])
    assert _codes(head) == [("NRM001", 11)]
    view = project.project_for(str(FIX / "a02_pkg" / "fpn_head.py"))
    read = {os.path.basename(p) for p, index in view.project._indexes.items() if index}
    assert read == {"base.py"}


def test_wrapper_from_another_file_feeds_the_norm() -> None:
    """r29: ConvNorm (Conv1d with bias) from layers.py before BatchNorm1d -> NRM001 at the
    call in model.py, naming the layer's own place."""
    results = _by_name(analyze_paths([str(FIX / "r29_pkg")]))
    model = results["r29_pkg/model.py"]
    nrm001 = [f for f in model.findings if f.code == "NRM001"]
    assert [f.line for f in nrm001] == [10, 11]
    assert "layers.py:9" in nrm001[0].message
    assert not [f for f in results["r29_pkg/layers.py"].findings if f.code == "NRM001"]


def test_layernorm_subclass_is_a_layernorm() -> None:
    """r05: FP32LayerNorm(nn.LayerNorm) on a conv map -> NRM002, as for nn.LayerNorm."""
    (result,) = analyze_paths([str(CASES / "r05_layernorm_subclass.py")])
    assert ("NRM002", 13) in _codes(result)
    assert [m.name for m in result.models] == ["FrontEnd"]  # the norm class is no model


def test_groupnorm_subclass_is_a_gn_norm_site() -> None:
    """a09b: GroupNorm32(nn.GroupNorm) -> a norm site of kind gn with 128 channels."""
    (result,) = analyze_paths([str(CASES / "a09b_gn_subclass.py")])
    (model,) = result.models
    assert [(s.kind, s.num_channels) for s in model.norms_found] == [("gn", 128)]


@pytest.fixture(scope="module")
def src_layout() -> dict[str, FileResult]:
    project.clear()
    return _by_name(analyze_paths([str(FIX / "src_layout")]))


def test_src_layout_relative_imports_and_constants(src_layout: dict[str, FileResult]) -> None:
    """``from .. import ConvBN`` (a re-export in __init__.py), ``from ..layers import``,
    a constant WIDTH = 48 from constants.py, a helper function returning a Sequential."""
    net = src_layout["src_layout/src/netpkg/models/net.py"]
    model = next(m for m in net.models if m.name == "Net")
    sites = {s.name: (s.kind, s.num_channels) for s in model.norms_found}
    assert sites == {"stem.bn": ("bn", 48), "extra.1": ("bn", 96), "norm": ("ln", 48)}
    # the helper-made and wrapper-made convs keep their bias: NRM001 at the helper's call
    # in net.py; the wrapper ConvBN reports its own conv in layers.py, once (not again at
    # its call in net.py, line 11)
    assert _codes(net) == [("NRM001", 12)]
    assert _codes(src_layout["src_layout/src/netpkg/layers.py"]) == [("NRM001", 18)]


def test_subclass_with_own_init_passes_its_super_arguments(
    src_layout: dict[str, FileResult],
) -> None:
    """MyLN(dim) calls super().__init__(dim, eps=1e-6): an LN over 48 channels."""
    net = src_layout["src_layout/src/netpkg/models/net.py"]
    model = next(m for m in net.models if m.name == "Net")
    assert any(s.name == "norm" and s.num_channels == 48 for s in model.norms_found)


def test_lstm_cell_subclass_keeps_its_meaning(src_layout: dict[str, FileResult]) -> None:
    """MyLSTM(nn.LSTMCell) imported from another file: the decoder is recurrent."""
    net = src_layout["src_layout/src/netpkg/models/net.py"]
    decoder = next(m for m in net.models if m.name == "Decoder")
    assert decoder.architecture == "rnn"
    assert "LSTMCell" in decoder.architecture_evidence


def test_third_party_base_building_layers_is_analyzed(src_layout: dict[str, FileResult]) -> None:
    """``Head(some_lib.BaseModel)`` builds nn layers: analyzed, its unread base listed;
    ``Settings(BaseModel)`` builds none and ``Images(Dataset)`` is torch's: no model."""
    result = src_layout["src_layout/scripts/third_party.py"]
    assert [m.name for m in result.models] == ["Head"]
    assert result.models[0].unresolved_bases == ["some_lib.models.BaseModel"]
    assert result.to_dict()["models"][0]["unresolved_bases"] == ["some_lib.models.BaseModel"]
    # ... and in recommend's text output
    from normsuite.cli.main import app
    from typer.testing import CliRunner

    path = str(FIX / "src_layout" / "scripts" / "third_party.py")
    out = CliRunner().invoke(app, ["recommend", path, "--isolated"]).output
    assert "  bases not read: some_lib.models.BaseModel (outside the project" in out


def test_import_cycle_terminates(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(
        "import torch.nn as nn\nfrom b import B\nclass A(B):\n"
        "    def __init__(self):\n        super().__init__()\n        self.bn = nn.BatchNorm2d(4)\n"
    )
    (tmp_path / "b.py").write_text("from a import A\nclass B(A):\n    pass\n")
    results = analyze_paths([str(tmp_path)])
    assert all(r.error is None for r in results)


def test_module_file_probes_like_python(tmp_path: Path) -> None:
    """Script folder, the folder above the package, the root's src/, relative imports."""
    (tmp_path / "pyproject.toml").write_text("")
    pkg = tmp_path / "src" / "pkg" / "sub"
    pkg.mkdir(parents=True)
    for d in (pkg.parent, pkg):
        (d / "__init__.py").write_text("")
    (pkg / "m.py").write_text("")
    (pkg.parent / "layers.py").write_text("")
    proj = project.Project(str(tmp_path))
    importer = str(pkg / "m.py")
    assert proj.module_file("pkg.layers", importer) == str(pkg.parent / "layers.py")
    assert proj.module_file("..layers", importer) == str(pkg.parent / "layers.py")
    assert proj.module_file(".", importer) == str(pkg / "__init__.py")
    assert proj.module_file("missing", importer) is None


def test_torch_subclass_as_a_class_value(tmp_path: Path) -> None:
    """``partial(GroupNorm32, 8)`` and a subclass of it imported from another file are
    GroupNorm too."""
    (tmp_path / "norms.py").write_text(
        "import torch.nn as nn\nclass GroupNorm32(nn.GroupNorm):\n"
        "    def forward(self, x):\n        return super().forward(x.float()).type(x.dtype)\n"
    )
    (tmp_path / "net.py").write_text(
        "import functools\nimport torch.nn as nn\nfrom norms import GroupNorm32\n"
        "class GN(GroupNorm32):\n    pass\n"
        "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        norm = functools.partial(GroupNorm32, 8)\n"
        "        self.a = norm(64)\n        self.b = GN(3, 64)\n"
    )
    project.clear()
    (result,) = analyze_paths([str(tmp_path / "net.py")])
    (model,) = result.models
    assert [(s.kind, s.num_channels) for s in model.norms_found] == [("gn", 64), ("gn", 64)]
    assert any(f.code == "NRM003" for f in result.findings)  # GN(3, 64): 64 % 3 != 0


def test_layernorm_subclass_that_permutes_is_a_channel_layernorm(tmp_path: Path) -> None:
    """``forward`` permutes to channels-last around ``super().forward``: a channel LN over
    the conv map (no NRM002), as in Stable Cascade and SegFormer."""
    (tmp_path / "m.py").write_text(
        "import torch.nn as nn\n"
        "class ChannelLN(nn.LayerNorm):\n"
        "    def forward(self, x):\n"
        "        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)\n"
        "class Block(nn.Module):\n"
        "    def __init__(self, c=64):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(c, c, 3, padding=1)\n"
        "        self.norm = ChannelLN(c, elementwise_affine=False)\n"
        "    def forward(self, x):\n        return self.norm(self.conv(x))\n"
    )
    (result,) = analyze_paths([str(tmp_path / "m.py")])
    assert [f.code for f in result.findings] == []
    assert [(s.kind, s.num_channels) for s in result.models[0].norms_found] == [("ln", 64)]


def test_installed_package_is_its_own_project(tmp_path: Path) -> None:
    """A package in a venv's site-packages inside a project is not that project's code."""
    (tmp_path / "pyproject.toml").write_text("")
    sub = tmp_path / ".venv" / "lib" / "site-packages" / "pkg" / "sub"
    sub.mkdir(parents=True)
    (sub.parent / "__init__.py").write_text("")
    (sub / "__init__.py").write_text("")
    assert project.find_root(str(sub)) == str(sub.parent)
    assert project.find_root(str(tmp_path)) == str(tmp_path)


BASE_WITH_METHODS = """
import torch.nn as nn

class Base(nn.Module):
    def _stem(self, width, norm_layer):
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3), norm_layer(width))

    def _build(self, width, norm_layer):
        self._step_one(width, norm_layer)

    def _step_one(self, width, norm_layer):
        self._step_two(width, norm_layer)

    def _step_two(self, width, norm_layer):
        self._step_three(width, norm_layer)

    def _step_three(self, width, norm_layer):
        self._stem(width, norm_layer)  # four calls deep: still seen

    def post_init(self):
        self.ready = True
        self.enable(); self.disable()  # a cycle that builds nothing

    def enable(self):
        if getattr(self.config, "on", False):
            self.disable()
        setattr(self.child, "flag", True)

    def disable(self):
        self.enable()
"""


def test_inherited_methods_of_another_file_run_only_when_they_may_build(tmp_path: Path) -> None:
    """A base class method of another file that builds nothing (transformers' ``post_init``:
    a cycle of gradient-checkpointing helpers, run for every model) is not run; one that
    builds, through a parameter and four ``self.`` calls deep, is."""
    from normsuite.analysis import extract

    (tmp_path / "base.py").write_text(BASE_WITH_METHODS)
    (tmp_path / "net.py").write_text(
        "import torch.nn as nn\nfrom base import Base\n"
        "class Net(Base):\n    def __init__(self):\n        super().__init__()\n"
        "        self._build(32, nn.BatchNorm2d)\n        self.post_init()\n"
        "        self.fc = nn.Linear(32, 10, bias=True)\n"
    )
    project.clear()
    ran: list[str] = []
    original = extract.ModuleIndex._call_function

    def spy(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        ran.append(fn.name)
        return original(self, fn, *args, **kwargs)

    extract.ModuleIndex._call_function = spy  # type: ignore[method-assign]
    try:
        (result,) = analyze_paths([str(tmp_path / "net.py")], jobs=1)
    finally:
        extract.ModuleIndex._call_function = original  # type: ignore[method-assign]
    (model,) = result.models
    assert [(s.kind, s.num_channels) for s in model.norms_found] == [("bn", 32)]
    assert "_step_three" in ran and "_stem" in ran
    assert not {"post_init", "enable", "disable"} & set(ran)
    assert any(f.code == "NRM001" for f in result.findings)  # Conv2d(bias) -> BN, found


def test_finding_in_inherited_code_is_reported_where_the_code_is(tmp_path: Path) -> None:
    """``class V6(V5): pass`` (transformers' modular files) inherits a Conv-with-bias -> BN
    of another file: the finding is that file's (once, where the fix goes), not repeated at
    each subclass's class statement; a call in the subclass's own file still gets its own."""
    (tmp_path / "v5.py").write_text(
        "import torch.nn as nn\nclass V5(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.conv = nn.Conv2d(3, 8, 3)\n"
        "        self.bn = nn.BatchNorm2d(8)\n"
        "    def forward(self, x):\n        return self.bn(self.conv(x))\n"
    )
    (tmp_path / "v6.py").write_text(
        "import torch.nn as nn\nfrom v5 import V5\nclass V6(V5):\n    pass\n"
        "class V6Head(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.body = V5()\n        self.proj = nn.Linear(8, 8)\n"
        "        self.norm = nn.BatchNorm1d(8)\n"
        "    def forward(self, x):\n"
        "        return self.norm(self.proj(self.body(x).mean((2, 3))))\n"
    )
    project.clear()
    results = {Path(r.path).name: r for r in analyze_paths([str(tmp_path)], jobs=1)}
    assert _codes(results["v5.py"]) == [("NRM001", 5)]
    # V6 adds nothing: silent. V6Head's `V5()` call repeats v5.py's finding: dropped when
    # v5.py is in the run (one finding, as in one file), kept when v6.py is checked alone.
    # Its own Linear -> BatchNorm1d is its own.
    assert _codes(results["v6.py"]) == [("NRM001", 9)]
    project.clear()
    (alone,) = analyze_paths([str(tmp_path / "v6.py")], jobs=1)
    assert _codes(alone) == [("NRM001", 8), ("NRM001", 9)]


def test_inherited_helpers_that_set_up_the_model_still_run() -> None:
    """Inherited methods of another file that build nothing themselves but register a layer
    (``self.norm = m``), fill a container (``self.blocks.append``), return a layer class
    (``return nn.BatchNorm2d``, ``partial(nn.BatchNorm2d, ...)``), call a callable
    attribute (``self.norm_layer(c)``) or set a width the model reads (``self.width =
    cfg * 2``) are run: every finding below is lost when they are skipped."""
    project.clear()
    results = _by_name(analyze_paths([str(FIX / "inherited_helpers")], jobs=1))
    net = results["inherited_helpers/net.py"]
    assert _codes(net) == [
        ("NRM001", 7),  # A: self._register(nn.BatchNorm2d(8))
        ("NRM001", 16),  # B: self._add(...) twice
        ("NRM001", 27),  # C: norm = self.get_norm()
        ("NRM001", 36),  # D: self._make_norm(8) -> self.norm_layer(c)
        ("NRM003", 46),  # E: self._dims(8) -> GroupNorm(32, 16)
    ]
    # Mid.norm() returns functools.partial(nn.BatchNorm2d, ...): run, NRM001 at P (line 13).
    # (N's self.build() -> super().build() in a third file is not followed by the evaluator,
    # with or without the skip: no finding at N either way.)
    results = _by_name(analyze_paths([str(FIX / "inherited_helpers_mro")], jobs=1))
    assert _codes(results["inherited_helpers_mro/net.py"]) == [("NRM001", 13)]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        # norm_cls = nn.BatchNorm2d (read since class attributes are): BN after V5's biased
        # conv2 (NRM001), trained at batch 2 (NRM006)
        ("class_attr", [("NRM001", 5), ("NRM006", 5)]),
        ("hook", [("NRM001", 3)]),  # overrides the norm_cls() its base's __init__ calls
        ("forward", [("NRM001", 2), ("NRM011", 2)]),  # its own forward: BN(3) sees 8 channels
    ],
)
def test_subclass_with_anything_of_its_own_keeps_its_findings(
    case: str, expected: list[tuple[str, int]]
) -> None:
    """Only a subclass that renames its base (``pass``) hands its findings to the base's
    file; one with a class attribute, a hook or a forward of its own changes what is built
    or how it is used, and the findings stay at it."""
    project.clear()
    results = _by_name(analyze_paths([str(FIX / "subclass_own" / case)], jobs=1))
    assert _codes(results[f"subclass_own/{case}/v6.py"]) == expected


STAR_COMMON = """\
import torch.nn as nn


class Conv(nn.Module):
    def __init__(self, c1, c2, k=1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, 1, k // 2)

    def forward(self, x):
        return self.conv(x)


class Base(nn.Module):
    pass


class _Hidden(nn.Module):
    pass
"""

STAR_MODEL = """\
import torch.nn as nn

{imports}


class Focus(nn.Module):
    def __init__(self, c1=3, c2=32):
        super().__init__()
        self.conv = Conv(c1 * 4, c2, 3)
        self.bn = nn.BatchNorm2d(c2)

    def forward(self, x):
        return self.bn(self.conv(x))


class Head(Base):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 32)
        self.bn = nn.BatchNorm1d(32)

    def forward(self, x):
        return self.bn(self.fc(x))
"""


@pytest.mark.parametrize(
    "layout",
    ["direct", "reexported by the package"],
)
def test_star_imports_resolve_like_named_imports(tmp_path: Path, layout: str) -> None:
    """YOLOv5's ``from models.common import *``: a wrapper and a base class taken by a star
    import are read as with ``from common import Conv, Base``."""
    if layout == "direct":
        folder, imports = tmp_path, "from common import *  # noqa: F403"
    else:
        folder = tmp_path / "pkg"
        folder.mkdir()
        (folder / "__init__.py").write_text("from .common import *  # noqa: F403\n")
        imports = "from pkg import Base, Conv"
    (folder / "common.py").write_text(STAR_COMMON)
    (folder / "yolo.py").write_text(STAR_MODEL.format(imports=imports))
    project.clear()
    (result,) = [r for r in analyze_paths([str(tmp_path)]) if r.path.endswith("yolo.py")]
    assert sorted(m.name for m in result.models) == ["Focus", "Head"]
    assert [(f.code, f.line) for f in result.findings] == [("NRM001", 9), ("NRM001", 19)]


def test_star_import_skips_private_names(tmp_path: Path) -> None:
    (tmp_path / "common.py").write_text(STAR_COMMON)
    (tmp_path / "m.py").write_text(
        "import torch.nn as nn\nfrom common import *\n\n\nclass H(_Hidden):\n"
        "    def __init__(self):\n        super().__init__()\n"
    )
    project.clear()
    (result,) = analyze_paths([str(tmp_path / "m.py")])
    assert result.models == [] and result.error is None


def test_finding_in_a_block_of_another_file_is_reported_once(tmp_path: Path) -> None:
    """blocks.py reports its own biased conv; model.py, which builds the block, repeats it
    only when blocks.py is not part of the run."""
    (tmp_path / "blocks.py").write_text(
        "import torch.nn as nn\n\n\nclass Block(nn.Module):\n"
        "    def __init__(self, c, norm_layer=nn.BatchNorm2d):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(c, c, 1)\n        self.bn = norm_layer(c)\n\n"
        "    def forward(self, x):\n        return self.bn(self.conv(x))\n"
    )
    (tmp_path / "model.py").write_text(
        "import torch.nn as nn\nfrom blocks import Block\n\n\nclass Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.layer = Block(16)\n\n"
        "    def forward(self, x):\n        return self.layer(x)\n"
    )
    project.clear()
    both = {os.path.basename(r.path): _codes(r) for r in analyze_paths([str(tmp_path)])}
    assert both == {"blocks.py": [("NRM001", 7)], "model.py": []}
    project.clear()
    (alone,) = analyze_paths([str(tmp_path / "model.py")])
    (nrm001,) = alone.findings
    assert (nrm001.line, nrm001.layer_at) == (8, nrm001.layer_at) and nrm001.layer_at.endswith(
        "blocks.py:7"
    )


def test_star_import_facade_is_not_searched_module_by_module(tmp_path: Path) -> None:
    """A package __init__ that star-imports many modules (transformers' lazy facade) is not
    searched for every unknown name: the budget gives up (silent), and nothing hangs."""
    from normsuite.analysis.extract import MAX_STAR_MODULES

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    n = MAX_STAR_MODULES + 4
    (pkg / "__init__.py").write_text("".join(f"from .m{i} import *\n" for i in range(n)))
    for i in range(n):
        (pkg / f"m{i}.py").write_text(f"X{i} = {i}\n")
    (tmp_path / "use.py").write_text(
        "import torch.nn as nn\nfrom pkg import X3\n\n\nclass M(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(4, X3)\n"
    )
    project.clear()
    (result,) = analyze_paths([str(tmp_path / "use.py")])
    assert result.error is None
    view = project.project_for(str(tmp_path / "use.py"))
    read = {os.path.basename(p) for p, index in view.project._indexes.items() if index}
    assert read == {"__init__.py"}  # the facade itself, none of its star modules


def test_a_dependency_analyzed_later_is_parsed_and_walked_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """base.py is read as fpn_head.py's dependency, then analyzed itself: one parse and one
    walk of its tree serve both (each cost ~1/2 of the analysis of a file; timm re-parsed
    44 of its 304 files before the tree was shared)."""
    import ast

    from normsuite.analysis import tree_facts

    project.clear()
    parsed: list[str] = []
    walked: list[int] = []
    real_parse, real_walk = ast.parse, tree_facts.TreeFacts._walk

    def counting_parse(source: str, filename: str = "<unknown>", *args, **kwargs):  # type: ignore[no-untyped-def]
        parsed.append(os.path.basename(filename))
        return real_parse(source, filename, *args, **kwargs)

    def counting_walk(self, tree):  # type: ignore[no-untyped-def]
        walked.append(id(tree))
        return real_walk(self, tree)

    monkeypatch.setattr(ast, "parse", counting_parse)
    monkeypatch.setattr(tree_facts.TreeFacts, "_walk", counting_walk)
    monkeypatch.setattr(project, "MAX_TREES", 0)  # as after 32 other files in a big run
    pkg = FIX / "a02_pkg"
    results = _by_name(analyze_paths([str(pkg / "fpn_head.py"), str(pkg / "base.py")], jobs=1))
    assert [m.name for m in results["a02_pkg/base.py"].models] == ["Backbone"]
    assert parsed.count("base.py") == 1
    assert len(walked) == len(set(walked))  # no tree walked twice


def test_a_plain_base_over_a_third_party_module_base() -> None:
    """mmpose's HeatmapHead(BaseHead), BaseHead(BaseModule) with BaseModule from mmengine:
    the chain reaches a third-party base, and HeatmapHead builds nn layers, so it is a
    module (it was "no nn.Module subclass found" in every file, even in one file)."""
    project.clear()
    pkg = FIX / "mm_chain"
    results = _by_name(analyze_paths([str(pkg)]))
    head = results["mm_chain/mmpose_lite/models/heads/heatmap_head.py"]
    (model,) = head.models
    assert model.name == "HeatmapHead"
    assert model.unresolved_bases == ["mmengine.model.BaseModule"]
    assert _codes(head) == [("NRM001", 14)]
    assert not results["mm_chain/mmpose_lite/models/heads/base_head.py"].models


def test_a_plain_base_over_a_third_party_base_in_one_file() -> None:
    from normsuite.analysis.analyze import analyze_source
    from normsuite.analysis.types import AnalysisOptions

    source = (
        "import torch.nn as nn\nfrom mmengine.model import BaseModule\n\n\n"
        "class BaseHead(BaseModule):\n    def predict(self, x):\n        return self(x)\n\n\n"
        "class Head(BaseHead):\n    def __init__(self):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(8, 8, 3)\n        self.bn = nn.BatchNorm2d(8)\n\n"
        "    def forward(self, x):\n        return self.bn(self.conv(x))\n\n\n"
        "class Helper:\n    def __init__(self):\n        self.table = {}\n"
    )
    result = analyze_source(source, "-", AnalysisOptions())
    assert [m.name for m in result.models] == ["Head"]
    assert [f.code for f in result.findings] == ["NRM001"]


def test_a_frozen_teacher_is_not_trained_by_the_distillation_script(tmp_path) -> None:
    """distill.py runs Teacher under eval()/no_grad with requires_grad_(False) and trains
    Student at batch 4: NRM006 for Student only; the Teacher's batch is unknown. Once the
    script hands the teacher's parameters to the optimizer too, it trains both."""
    import shutil

    project.clear()
    results = _by_name(analyze_paths([str(FIX / "distill")]))
    nets = results["distill/nets.py"]
    batches = {m.name: m.batch_size.per_device for m in nets.models}
    assert batches == {"Teacher": None, "Student": 4}
    assert [(f.code, f.model) for f in nets.findings] == [("NRM006", "Student")]

    copy = tmp_path / "distill"
    shutil.copytree(FIX / "distill", copy)
    script = copy / "distill.py"
    script.write_text(
        script.read_text().replace(
            "SGD(student.parameters()", "SGD([*student.parameters(), *teacher.parameters()]"
        )
    )
    project.clear()
    both = {os.path.basename(r.path): r for r in analyze_paths([str(copy)])}["nets.py"]
    assert {m.name: m.batch_size.per_device for m in both.models} == {"Teacher": 4, "Student": 4}


def test_a_training_script_beats_the_model_files_smoke_test_loader(tmp_path) -> None:
    """resnet_cifar.py's __main__ runs one DataLoader(batch_size=1) without training;
    main.py trains the model at 128: the batch is 128 (it was 1: NRM005 and "gn")."""
    project.clear()
    results = _by_name(analyze_paths([str(FIX / "smoke_test")]))
    model_file = results["smoke_test/resnet_cifar.py"]
    (model,) = model_file.models
    assert model.batch_size.per_device == 128
    assert "main.py:16" in model.batch_size.source
    assert not model_file.findings
    # without a training script the file's own loader is all there is (c13): it counts
    import shutil

    shutil.copy(FIX / "smoke_test" / "resnet_cifar.py", tmp_path / "resnet_cifar.py")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    project.clear()
    (alone,) = analyze_paths([str(tmp_path / "resnet_cifar.py")], jobs=1)
    assert alone.models[0].batch_size.per_device == 1


def test_devices_and_sync_come_with_the_scripts_batch(tmp_path) -> None:
    """train.py runs Trainer(devices=8, sync_batchnorm=True) at 4 per device: BN sees 32,
    so no NRM006/NRM008, as when the training code is in model.py. Without the sync the
    8 devices still come along: NRM008 (sync the statistics), not "1 device"."""
    import shutil

    project.clear()
    results = _by_name(analyze_paths([str(FIX / "script_trainer")]))
    (model,) = results["script_trainer/model.py"].models
    assert (model.batch_size.per_device, model.batch_size.devices) == (4, 8)
    assert not results["script_trainer/model.py"].findings

    copy = tmp_path / "script_trainer"
    shutil.copytree(FIX / "script_trainer", copy)
    train = copy / "train.py"
    train.write_text(train.read_text().replace("sync_batchnorm=True", "sync_batchnorm=False"))
    project.clear()
    unsynced = {os.path.basename(r.path): r for r in analyze_paths([str(copy)])}["model.py"]
    assert {f.code for f in unsynced.findings} == {"NRM008"}


def test_a_model_built_through_a_factory_function_gets_the_scripts_batch() -> None:
    """train.py calls models.build_model(), whose body returns UNetSmall(...): the script
    trains UNetSmall at batch 2 (the class name never appears in the script)."""
    project.clear()
    results = _by_name(analyze_paths([str(FIX / "factory")]))
    unet = results["factory/models/unet_small.py"]
    assert {m.name: m.batch_size.per_device for m in unet.models}["UNetSmall"] == 2
    assert {f.code for f in unet.findings} == {"NRM006"}


def test_a_model_built_by_a_function_of_its_own_file() -> None:
    """``from net import resnet_tiny``; ``model = resnet_tiny()`` where net.py has
    ``def resnet_tiny(): return ResNet(16)`` (torchvision's style): trained at batch 4."""
    project.clear()
    results = _by_name(analyze_paths([str(FIX / "factory_own")]))
    assert results["factory_own/net.py"].models[0].batch_size.per_device == 4


TRAIN_SCRIPT = """
import argparse
import torch
from {module} import Net

parser = argparse.ArgumentParser()
parser.add_argument("-b", "--batch-size", default=4, type=int)


def main():
    args = parser.parse_args()
    loader = torch.utils.data.DataLoader(None, batch_size=args.batch_size, shuffle=True)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), 3e-4)
    for x, y in loader:
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


if __name__ == "__main__":
    main()
"""
SMALL_BN_NET = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, bias=False)
        self.bn = nn.BatchNorm2d(64)

    def forward(self, x):
        return self.bn(self.conv(x))
"""


@pytest.mark.parametrize("package", [False, True])
def test_a_script_importing_a_model_folder_without_a_project_marker(tmp_path, package) -> None:
    """SimCLR / Pytorch-UNet without .git: ``run.py`` beside ``nets/`` does ``from nets.net
    import Net`` (a folder, or a package). Python puts run.py's folder on sys.path, so that
    folder is the project, and the model gets the script's batch (NRM006 at batch 4)."""
    nets = tmp_path / "nets"
    nets.mkdir()
    if package:
        (nets / "__init__.py").write_text("")
    (nets / "net.py").write_text(SMALL_BN_NET)
    (tmp_path / "run.py").write_text(TRAIN_SCRIPT.format(module="nets.net"))
    project.clear()
    (result,) = analyze_paths([str(nets / "net.py")])
    assert result.models[0].batch_size.per_device == 4
    assert [f.code for f in result.findings] == ["NRM006"]


def test_nn_through_a_project_star_import(tmp_path) -> None:
    """Pytorch-UNet's unet_model.py gets ``nn`` only from ``from .unet_parts import *``."""
    pkg = tmp_path / "unet"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "unet_parts.py").write_text(SMALL_BN_NET.replace("class Net", "class DoubleConv"))
    (pkg / "unet_model.py").write_text(
        "from .unet_parts import *\n\n\nclass UNet(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.inc = DoubleConv()\n"
        "        self.outc = nn.Conv2d(64, 2, 1)\n\n"
        "    def forward(self, x):\n        return self.outc(self.inc(x))\n"
    )
    project.clear()
    (result,) = analyze_paths([str(pkg / "unet_model.py")])
    assert [m.name for m in result.models] == ["UNet"]
    assert [n.kind for n in result.models[0].norms_found] == ["bn"]


def test_a_fifo_beside_a_model_folder_is_never_opened(tmp_path) -> None:
    """The search for the script that imports ``nets/`` reads the .py files of the folder
    above: a fifo named ``x.py`` there must not block it (a subprocess with a timeout)."""
    nets = tmp_path / "nets"
    nets.mkdir()
    (nets / "net.py").write_text(SMALL_BN_NET)
    os.mkfifo(tmp_path / "pipe.py")
    out = subprocess.run(
        [sys.executable, "-m", "normsuite.cli.main", "check", str(nets / "net.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
