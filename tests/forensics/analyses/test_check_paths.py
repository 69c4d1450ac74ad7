"""``logs check`` has two paths: over the sidecars' frames by Polars (``check_frames``,
``check_ids``: the single-record checks, then the joins by id) and record by record (the
files without a sidecar: standard input, the live file, ``TTSOPS_LOGS_SIDECAR=off``).
On the same files they give the same answer -- the JSON, the table, the ids written by
``--ids-out`` -- on logs written the tutorial's way (never-completed ids, tracebacks),
several processes rotating one file (real processes, and the deterministic stand-in),
the dialect fixture (cumulative stage_time, free text, WARN/FATAL, unstructured lines),
the simulator's own logs; in a window; with ``--stage-time``; and where the record
path's bounds on open ids are reached (the frame path then does what the record path
does)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ttsops.forensics.analyses.check import Checker

from .. import stdlib_logs as sl
from ..dialect_fixture import write as write_dialect
from ..forensics_helpers import cli
from ..linked_logs import link_files


def _answers(files: list[str], extra: tuple[str, ...], ids_out: Path,
             formats: tuple[tuple[str, ...], ...] = (("--json",), ())) -> list[Any]:
    out: list[Any] = []
    for fmt in formats:
        if ids_out.exists():
            ids_out.unlink()
        code, text, err = cli("check", *files, *extra, *fmt, "--ids-out", str(ids_out))
        assert code in (0, 1), err
        out.append((code, text.replace(str(ids_out), "IDS"), ids_out.read_text()))
    return out


def _agree(monkeypatch: pytest.MonkeyPatch, tmp: Path, files: list[str],
           extra: tuple[str, ...] = ()) -> list[Any]:
    """The answer record by record, then (sidecars written) from the frames: equal, and
    the frames really read."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp / "cache"))
    tmp.mkdir(exist_ok=True)
    ids = tmp / "ids.txt"
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "off")
    line = _answers(files, extra, ids)
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "auto")
    # a whole read writes the sidecars; its answer is compared when there is no window
    # (with one, the one read that writes them is enough: its answer is not compared;
    # none where an earlier call wrote them in this cache)
    first = [] if extra and list((tmp / "cache").rglob("*.parquet")) else \
        _answers(files, (), ids, (("--json",),) if extra else (("--json",), ()))
    assert list((tmp / "cache").rglob("*.parquet")), "no sidecar written"
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "read")
    frames = []
    real = Checker.frame_ids

    def spy(self: Checker, f: Any, df: Any, no: int) -> None:
        frames.append(df.height)
        real(self, f, df, no)

    monkeypatch.setattr(Checker, "frame_ids", spy)
    got = _answers(files, extra, ids)
    assert sum(frames) > 0, "the frame path was not taken"
    assert got == line
    if not extra:
        assert first == line
    return got


def test_tutorial_style_logs(tmp_path, monkeypatch):
    d = tmp_path / "logs"
    ids = sl.write_day(d, requests=600, max_bytes=30_000,
                       incomplete=frozenset(range(7, 600, 41)),
                       tracebacks=frozenset(range(3, 600, 97)))
    got = _agree(monkeypatch, tmp_path, ["--dir", str(d)])
    never = got[0][2].split()
    assert len(never) >= 12 and set(never) <= set(ids)  # (the last may still be running)


def test_tutorial_style_logs_in_a_window_and_read_cumulative(tmp_path, monkeypatch):
    d = tmp_path / "logs"
    sl.write_day(d, requests=600, max_bytes=30_000, incomplete=frozenset(range(5, 600, 37)))
    _agree(monkeypatch, tmp_path, ["--dir", str(d)],
           ("--since", "2024-06-12 00:40:00", "--until", "2024-06-12 03:10:00"))
    for mode in ("cumulative", "per-stage"):
        _agree(monkeypatch, tmp_path, ["--dir", str(d)], ("--stage-time", mode))


def test_several_writers_taking_turns(tmp_path, monkeypatch):
    d = tmp_path / "logs"
    sl.shared_file_writers(d, every_s=0.5)
    got = _agree(monkeypatch, tmp_path, ["--dir", str(d)])
    assert "several processes appear to write" in got[1][1]


def test_several_processes_rotating_one_file(tmp_path, monkeypatch):
    d = tmp_path / "logs"
    sl.multi_writer(d, writers=3, per_writer=600, max_bytes=30_000)
    got = _agree(monkeypatch, tmp_path, ["--dir", str(d)])
    assert got[0][0] == 1


def test_the_record_paths_bounds_reached(tmp_path, monkeypatch):
    # a few open ids and syntheses kept: the oldest dropped, as the record path drops them
    monkeypatch.setattr(Checker, "ID_FILE_MAX", 3)
    d = tmp_path / "logs"
    sl.shared_file_writers(d, every_s=0.5)
    _agree(monkeypatch, tmp_path, ["--dir", str(d)])
    monkeypatch.setattr(Checker, "MAX_PENDING", 2)
    _agree(monkeypatch, tmp_path / "b", ["--dir", str(d)])


def test_the_dialect_fixture(tmp_path, monkeypatch):
    d = tmp_path / "logs"
    write_dialect(d, requests=400, seed=3)
    got = _agree(monkeypatch, tmp_path, ["--dir", str(d)])
    assert "cumulative" in got[0][1]


def test_the_simulators_logs(incident, tmp_path, monkeypatch):
    logs, _truth = incident
    d = tmp_path / "logs"
    link_files(logs, d)  # (the sidecars are written beside nothing shared)
    _agree(monkeypatch, tmp_path, ["--dir", str(d)])


def test_the_frame_path_reads_no_field_json_from_sidecars(tmp_path, monkeypatch):
    # the unit suffixes and synthesis_failed's ``where`` come from their own columns; the
    # JSON of the fields only for the few records the examples are taken from
    from ttsops.forensics.reading import sidecar

    asked: list[list[str]] = []
    real = sidecar.read_frame

    def spy(p: Any, key: str, columns: list[str], *a: Any) -> Any:
        asked.append(list(columns))
        return real(p, key, columns, *a)

    monkeypatch.setattr(sidecar, "read_frame", spy)
    d = tmp_path / "logs"
    write_dialect(d, requests=400, seed=5)
    got = _agree(monkeypatch, tmp_path, ["--dir", str(d)])
    assert asked and all("fields" not in c and "units" in c and "k_where" in c
                         for c in asked)
    assert "unit suffixes" in got[1][1] and "read as" in got[1][1]
