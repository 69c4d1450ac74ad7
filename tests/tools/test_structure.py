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
