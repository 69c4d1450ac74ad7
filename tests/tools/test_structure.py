"""tools/structure.py: each check finds what it is meant to find in a small package made
for the test, and the service half of the code base has nothing to report."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "structure.py"

# the service half (issue 17); the forensics half is added when its layout lands
SERVICE_HALF = ["ttsops.engines", "ttsops.pipeline", "ttsops.workers", "ttsops.server",
                "ttsops.cache", "ttsops.config", "ttsops.logsink", "ttsops.cli"]


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("structure_tool", TOOL)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look the module up
    spec.loader.exec_module(mod)
    return mod


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / "src" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text), encoding="utf-8")
    return root / "src"


@pytest.fixture
def tool() -> ModuleType:
    return load_tool()


def test_sizes_are_measured(tool, tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(101))
    src = write(tmp_path, {"pkg/__init__.py": "", "pkg/big.py": "x = 1\n" * 501,
                           "pkg/fn.py": f"def long():\n{body}\n\n\ndef short():\n    pass\n"})
    found = tool.check(["pkg"], src)
    assert [(v.kind, v.message) for v in found] == [
        ("module-lines", "pkg.big: 501 lines (limit 500)"),
        ("function-lines", "pkg.fn.long: 102 lines (limit 100)")]


def test_private_names_from_other_modules_are_found(tool, tmp_path):
    src = write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "_secret = 1\nPUBLIC = 2\n__all__ = ['PUBLIC']\n",
        "pkg/_shared.py": "helper = 1\n",
        "pkg/b.py": """
            from . import _shared, a
            from .a import PUBLIC, __all__

            def f():
                from .a import _secret
                return _secret + PUBLIC + a._secret + _shared.helper
            """,
        "pkg/c.py": "from . import _shared\nfrom ._shared import helper\n",
    })
    found = tool.check(["pkg"], src)
    assert [(v.path.endswith("b.py"), v.line, v.kind, v.message) for v in found] == [
        (True, 6, "private-import", "pkg.b imports pkg.a._secret"),
        (True, 7, "private-import", "pkg.b uses pkg.a._secret")]


def test_cycles_count_function_level_imports_but_not_type_checking(tool, tmp_path):
    src = write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from . import b\n",
        "pkg/b.py": "def f():\n    from . import a\n    return a\n",
        "pkg/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                    "    from . import d\n",
        "pkg/d.py": "from . import c\n",
        "other/__init__.py": "",
        "other/x.py": "import other.y\n",
        "other/y.py": "from other import x\n",
    })
    found = tool.check(["pkg"], src)
    assert [(v.kind, v.message) for v in found] == [
        ("import-cycle", "pkg.a -> pkg.b -> pkg.a")]
    found = tool.check(["other"], src)  # the top package of the names given
    assert [(v.kind, v.message) for v in found] == [
        ("import-cycle", "other.x -> other.y -> other.x")]


def test_an_unknown_package_is_one_line_and_status_2():
    run = subprocess.run([sys.executable, str(TOOL), "ttsops.nosuchthing"],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert "no module or package 'ttsops.nosuchthing'" in run.stderr
    assert "Traceback" not in run.stderr


def test_the_service_half_has_nothing_to_report():
    run = subprocess.run([sys.executable, str(TOOL), *SERVICE_HALF],
                         capture_output=True, text=True)
    assert run.stdout == "" and run.returncode == 0, run.stdout


def test_the_whole_package_has_nothing_to_report():
    """Issue 17's rules over all of ttsops: the forensics half and the fleet too."""
    run = subprocess.run([sys.executable, str(TOOL), "ttsops"], capture_output=True, text=True)
    assert run.stdout == "" and run.returncode == 0, run.stdout


def small_layers(tool):
    L = tool.Layer
    return (L("base", ("pkg", "pkg.util")),
            L("low", ("pkg.low.*",), ("base",)),
            L("high", ("pkg.high.*",), ("low", "base")),
            L("cli", ("pkg.cli", "pkg.high.cli"), ("high", "low", "base"), click=True))


def test_wrong_way_imports_are_found_right_way_ones_are_not(tool, tmp_path):
    src = write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/util.py": "X = 1\n",
        "pkg/low/__init__.py": "",
        "pkg/low/a.py": """
            from typing import TYPE_CHECKING
            from .. import util
            if TYPE_CHECKING:
                from ..high import b  # types only: not a dependency at run time

            def f():
                from ..high.c import Y  # inside a function: counted
                return Y + util.X
            """,
        "pkg/high/__init__.py": "",
        "pkg/high/b.py": "from ..low import a\nimport pkg.util\n",
        "pkg/high/c.py": "Y = 2\n",
        "pkg/high/cli.py": "import click\nfrom .. import util\n",
        "pkg/cli.py": "import click\nfrom .high import b, cli\n",
    })
    found = tool.check(["pkg"], src, layers=small_layers(tool))
    assert [(v.path.endswith("a.py"), v.line, v.kind, v.message) for v in found] == [
        (True, 8, "layer", "pkg.low.a (low) imports pkg.high.c (high)")]


def test_click_outside_the_cli_layer_and_modules_in_no_layer_are_found(tool, tmp_path):
    src = write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/util.py": "",
        "pkg/low/__init__.py": "",
        "pkg/low/a.py": "def f():\n    from click.utils import echo\n    return echo\n",
        "pkg/stray.py": "import click.testing\n",
        "pkg/cli.py": "import click\n",
    })
    found = tool.check(["pkg"], src, layers=small_layers(tool))
    assert [(v.line, v.kind, v.message) for v in found] == [
        (2, "click", "pkg.low.a (low) imports click: only the CLI layer may"),
        (1, "layer", "pkg.stray is in no layer of the table")]


def test_a_table_naming_an_unknown_layer_or_a_module_twice_is_refused(tool):
    L = tool.Layer
    with pytest.raises(ValueError, match="unknown"):
        tool.LayerTable([L("a", ("p.*",), ("nosuch",))])
    with pytest.raises(ValueError, match="two layers"):
        tool.LayerTable([L("a", ("p.*",)), L("b", ("p.*",))])


# one import planted the wrong way in each of these modules of a copy of src/ttsops:
# (module, the import, the message expected)
PLANTED = [
    # reading below analyses below rendering below the CLI layer
    ("forensics/reading/scan.py", "from ..analyses import window",
     "ttsops.forensics.reading.scan (reading) imports ttsops.forensics.analyses.window "
     "(analyses)"),
    ("forensics/analyses/top.py", "from ..rendering import output",
     "ttsops.forensics.analyses.top (analyses) imports ttsops.forensics.rendering.output "
     "(rendering)"),
    ("forensics/rendering/output.py", "from .. import commands",
     "ttsops.forensics.rendering.output (rendering) imports ttsops.forensics.commands (cli)"),
    # engines below pipeline below workers below server
    ("engines/fake.py", "from ..pipeline import types",
     "ttsops.engines.fake (engines) imports ttsops.pipeline.types (pipeline)"),
    ("pipeline/stages.py", "from .. import workers",
     "ttsops.pipeline.stages (pipeline) imports ttsops.workers (workers)"),
    ("workers/pool.py", "from ..server import ids",
     "ttsops.workers.pool (workers) imports ttsops.server.ids (server)"),
    # the shared modules below everything; the two halves apart; fleet beside reading
    ("config.py", "from .server import clientaddr",
     "ttsops.config (shared) imports ttsops.server.clientaddr (server)"),
    ("pipeline/runner.py", "from ..forensics.reading import scan",
     "ttsops.pipeline.runner (pipeline) imports ttsops.forensics.reading.scan (reading)"),
    ("forensics/reading/sources.py", "from ..analyses.answer import Report",
     "ttsops.forensics.reading.sources (reading) imports ttsops.forensics.analyses.answer "
     "(analyses)"),
    ("fleet/ship.py", "from ..forensics.analyses import top",
     "ttsops.fleet.ship (fleet) imports ttsops.forensics.analyses.top (analyses)"),
]


def test_the_table_refuses_wrong_way_imports_planted_in_the_package(tool, tmp_path):
    """The real table over a copy of src/ with imports planted the wrong way (inside a
    function, the least visible place), and click below the CLI layer."""
    import shutil

    shutil.copytree(ROOT / "src" / "ttsops", tmp_path / "ttsops",
                    ignore=shutil.ignore_patterns("__pycache__", "static", "*.html"))
    for module, line, _ in PLANTED:
        planted = tmp_path / "ttsops" / module
        text = planted.read_text(encoding="utf-8")
        planted.write_text(f"{text}\n\ndef _planted():\n    {line}\n", encoding="utf-8")
    output = tmp_path / "ttsops" / "forensics" / "rendering" / "output.py"
    output.write_text(output.read_text(encoding="utf-8") + "\nimport click\n",
                      encoding="utf-8")
    found = [v for v in tool.check(["ttsops"], tmp_path) if v.kind in ("layer", "click")]
    assert sorted(v.message for v in found) == sorted([
        *(message for _, _, message in PLANTED),
        "ttsops.forensics.rendering.output (rendering) imports click: only the CLI layer may"])
