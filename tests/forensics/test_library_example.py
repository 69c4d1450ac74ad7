"""The README's library example runs as written (only the log directory changed) and its
answers are the CLI's: ``Report.to_json()`` is what ``--json`` prints, with no click."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

from console import TTSOPS

README = Path(__file__).resolve().parents[2] / "README.md"


def example() -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- library-example -->\n```python\n(.*?)```", text, re.S)
    assert m, "the README's library example is gone"
    return m.group(1)


def cli_json(*args: str) -> dict:
    out = subprocess.run([*TTSOPS, "logs", *args, "--json"], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)


def test_the_readme_library_example_answers_as_the_cli(incident):
    logs, _truth = incident
    code = example()
    assert 'LOG_DIR = "/var/log/ttsops"' in code
    code = code.replace('"/var/log/ttsops"', repr(str(logs)))
    ns: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), ns)
    win, slow = ns["win"], ns["slow"]
    assert win.to_json() == cli_json("window", "-d", str(logs), "--since",
                                     "2024-06-12 14:00:00")
    assert slow.to_json() == cli_json("stages", "-d", str(logs), "--by", "voice")
    # it printed what it said it would: the counts and one row per voice and stage
    printed = out.getvalue().splitlines()
    assert printed[0].startswith(f"{win.data['records']} records, failure rate ")
    assert len(printed) == 1 + len(slow.table("stages").rows) > 1
    assert win.data["records"] > 0


def test_the_library_does_not_import_click():
    code = ("import sys\n"
            "from ttsops.forensics.analyses import stages, window\n"
            "from ttsops.forensics.reading.sources import open_snapshot\n"
            "assert 'click' not in sys.modules, sorted(m for m in sys.modules if 'click' in m)\n")
    subprocess.run([sys.executable, "-c", code], check=True)
