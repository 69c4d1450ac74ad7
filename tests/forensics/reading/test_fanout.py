"""Filtering on forked worker processes (``fanout``): the same records, read statistics,
counters and problems as filtering in the caller, damaged input included."""

from __future__ import annotations

import pytest

from ttsops.forensics.reading import fanout, scan
from ttsops.forensics.reading.scan import Query, Scan
from ttsops.forensics.reading.sources import open_snapshot

from .test_sources import _write

pytestmark = pytest.mark.skipif(not fanout.available(), reason="needs fork")


def _run(d, monkeypatch, fan: bool, **q):
    monkeypatch.setattr(scan, "FANOUT_BYTES", 0 if fan else 1 << 60)
    calls: list[int] = []
    real = fanout.items

    def counting(units, select, workers):
        calls.append(len(units))
        yield from real(units, select, workers)

    monkeypatch.setattr(fanout, "items", counting)
    with open_snapshot([d]) as snap:
        sc = Scan(snap, Query(**q), workers=2)
        recs = [(r.ts, r.fields.get("seq"), tuple(r.traceback)) for r in sc.records()]
        stats = (vars(sc.stats.read), vars(sc.stats.counters), sc.stats.skipped_by_file)
        problems = [(p.path, p.message) for p in snap.problems]
    assert bool(calls) == fan
    return recs, stats, problems


@pytest.mark.parametrize("q", [
    {"needles": ("synthesis_start",)},
    {"needles": ("ts_0000007",), "use_index": False},
    {"needles": ("ERROR",), "tracebacks": False},
    {"since": "2024-06-12 00:02:00,000", "until": "2024-06-12 00:07:30,000"},
    {"since": "2024-06-12 00:02:00,000", "until": "2024-06-12 00:07:30,000",
     "use_index": False},
], ids=["needle", "needle-noindex", "heads-only", "window", "window-noindex"])
def test_same_answer_as_filtering_in_the_caller(tmp_path, monkeypatch, q):
    d = _write(tmp_path, 3000)
    alone = _run(d, monkeypatch, False, **q)
    fanned = _run(d, monkeypatch, True, **q)
    assert fanned == alone
    assert alone[0], "the query selects something"


def test_heads_only_drops_tracebacks_not_records(tmp_path, monkeypatch):
    d = _write(tmp_path, 3000)
    full, _, _ = _run(d, monkeypatch, True, needles=("ERROR",))
    heads, _, _ = _run(d, monkeypatch, True, needles=("ERROR",), tracebacks=False)
    assert [r[:2] for r in heads] == [r[:2] for r in full]
    assert all(r[2] for r in full) and not any(r[2] for r in heads)


def test_a_damaged_file_is_reported_once_and_the_rest_answered(tmp_path, monkeypatch):
    d = _write(tmp_path, 3000)
    victim = d / "app.log.3.gz"
    full = victim.read_bytes()
    victim.write_bytes(full[: len(full) // 2])
    for use_index in (True, False):
        alone = _run(d, monkeypatch, False, needles=("synthesis_start",), use_index=use_index)
        fanned = _run(d, monkeypatch, True, needles=("synthesis_start",), use_index=use_index)
        assert fanned == alone
        assert len(fanned[2]) == 1 and "app.log.3.gz" in fanned[2][0][0]


def test_several_hosts_fanned_out_merge_as_when_read_in_the_caller(tmp_path, monkeypatch):
    """Streams of several directories are read at once (merged by time): each forks its
    own pool while the other's reads may be running."""
    a = _write(tmp_path / "host-a", 3000, start=1718150400.0)
    b = _write(tmp_path / "host-b", 3000, start=1718150400.1, prefix="tb_")
    got = {}
    for fan in (False, True):
        monkeypatch.setattr(scan, "FANOUT_BYTES", 0 if fan else 1 << 60)
        with open_snapshot([a, b]) as snap:
            got[fan] = [(r.ts, r.fields["id"]) for r in
                        Scan(snap, Query(needles=("synthesis_start",)), workers=2).records()]
    assert got[True] == got[False] and len(got[True]) == 6000
    assert [t for t, _ in got[True]] == sorted(t for t, _ in got[True])
