"""``--files PATTERN`` is expanded without the glob module where the pattern is only in
its last part; the names are glob's own, for any such pattern and directory."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttsops.forensics.commands import _glob, expand_globs

names = st.lists(st.text("ab.1-_", min_size=1, max_size=6).filter(lambda n: n not in (".", "..")),
                 max_size=12, unique=True)
patterns = st.text("ab.1-_*?[]!", min_size=1, max_size=7).filter(
    lambda p: any(c in p for c in "*?["))  # expand_globs expands only those


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=names, pattern=patterns, where=st.sampled_from(["", "d/", "d//", "ABS"]))
def test_a_last_part_pattern_finds_what_glob_finds(tmp_path, names, pattern, where):
    d = tmp_path / "d"
    if d.exists():
        for p in d.iterdir():
            p.rmdir() if p.is_dir() else p.unlink()
    d.mkdir(exist_ok=True)
    for n in names:
        (d / n).touch()
    prefix = f"{d}/" if where == "ABS" else where
    old = os.getcwd()
    os.chdir(tmp_path if where else d)
    try:
        assert sorted(_glob(prefix + pattern)) == sorted(glob.glob(prefix + pattern))
    finally:
        os.chdir(old)


def test_files_named_or_patterned(tmp_path: Path, monkeypatch):
    for n in ("app.log.1.gz", "app.log.2.gz", ".app.log.3.gz"):
        (tmp_path / n).touch()
    monkeypatch.chdir(tmp_path)
    assert expand_globs(("app.log.*.gz", "x")) == ("app.log.1.gz", "app.log.2.gz", "x")
    assert expand_globs(("nothing.*",)) == ("nothing.*",)  # kept: the reader says so
    assert expand_globs((f"{tmp_path}/*/x",)) == (f"{tmp_path}/*/x",)
