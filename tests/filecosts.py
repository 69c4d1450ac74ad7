"""What each test file costs, so that ``.ci/run`` hands the slow files out first.

``.ci/run`` runs the suite on every core with ``--dist loadfile`` (a file's tests in one
process, so its module fixtures are made once) and ``--no-loadscope-reorder``: the files
go to the processes in collection order, each process taking the next file when it is
free. ``tests/conftest.py`` orders the collection by the seconds in ``filecosts.json``,
dearest first (longest-processing-time first), so that no process is left running one
slow file at the end while the others are idle. A file not in the table (added since the
table was measured) goes first, in its usual order: it may be dear, and a dear file
handed out last runs alone at the end; the order changes no test's outcome, only when
it runs.

Refresh the table from a run's JUnit XML (one process or several; a measured run, not
one on a loaded machine, if you can)::

    pytest -n auto --dist loadfile --junitxml=/tmp/suite.xml
    python tests/filecosts.py /tmp/suite.xml
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

TABLE = Path(__file__).with_name("filecosts.json")


def load(table: Path = TABLE) -> dict[str, float]:
    """``{"tests/x/test_y.py": seconds}``; empty when the table is missing or unreadable
    (the suite then runs in its usual order)."""
    try:
        data = json.loads(table.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def from_junit(xml: Path, root: Path) -> dict[str, float]:
    """Seconds per test file (setup, call and teardown of its tests) from JUnit XML;
    ``root`` is the directory the test ids are relative to (the project's)."""
    costs: dict[str, float] = defaultdict(float)
    for case in ET.parse(xml).iter("testcase"):
        cls = case.get("classname", "")
        # "tests.x.test_y" / "tests.x.test_y.TestClass" -> tests/x/test_y.py
        parts = cls.split(".")
        for n in range(len(parts), 0, -1):
            path = root.joinpath(*parts[:n]).with_suffix(".py")
            if path.is_file():
                costs[path.relative_to(root).as_posix()] += float(case.get("time", 0))
                break
    return dict(costs)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    costs = from_junit(Path(argv[0]), Path(__file__).resolve().parent.parent)
    TABLE.write_text(json.dumps({k: round(v, 1) for k, v in
                                 sorted(costs.items(), key=lambda kv: -kv[1])}, indent=0)
                     + "\n", encoding="utf-8")
    print(f"{len(costs)} files, {sum(costs.values()):.0f} s in all -> {TABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
