"""``report`` and ``tail`` on logs written by plain stdlib ``logging``: the report
covers the whole data on whole-file gzip without an index and draws a damaged file's
hole as missing data; ``tail -n N`` counts records (a record with its traceback), also
with ``--json``."""

from __future__ import annotations

import json
import re

from ttsops.forensics.reading.scan import Query, Scan
from ttsops.forensics.reading.sources import open_snapshot
from ttsops.forensics.reading.timeargs import epoch_to_ts
from ttsops.forensics.rendering.report import Collect, holes

from .. import stdlib_logs as sl
from ..forensics_helpers import cli


def _day(d):
    # 24 h, one synthesis every 3 minutes, rotated (whole-file gzip, no index) ~8 times
    return sl.write_day(d, requests=480, every_s=180.0, max_bytes=20_000)


def _report(d, out) -> dict:
    code, stdout, err = cli("report", "--dir", str(d), "-o", str(out), "--json")
    assert code in (0, 3), err
    return json.loads(stdout)["summary"]


def test_report_covers_the_whole_data_on_whole_file_gzip(tmp_path):
    d = tmp_path / "logs"
    ids = _day(d)
    assert len(list(d.glob("app.log.*.gz"))) >= 6
    summary = _report(d, tmp_path / "r.html")
    # was: the live file's span only (the last rotation), beside whole-day counts
    last = epoch_to_ts(1718150400.0 + 479 * 180.0 + 0.517)  # the last synthesis_complete
    assert summary["window"] == f"2024-06-12 00:00:00,000 .. {last}"
    assert summary["syntheses"] == len(ids)
    assert summary["missing spans"] == 0


def _bars(fig: str) -> list[float]:
    return [float(x) for x in re.findall(r'<rect class="mark" x="([\d.]+)"', fig)]


def test_a_damaged_files_hole_is_missing_data_not_a_dip(tmp_path):
    d = tmp_path / "logs"
    _day(d)
    victim = d / "app.log.4.gz"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])  # truncated: its second half is lost
    out = tmp_path / "r.html"
    summary = _report(d, out)
    assert summary["missing spans"] == 1
    page = out.read_text()
    fig = page[page.index('data-chart="requests"'):page.index('data-chart="error_codes"')]
    m = re.search(r'<rect class="missing" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', fig)
    assert m, "no missing-data band in the requests chart"
    gx, gw = float(m.group(1)), float(m.group(2))
    assert gw > 5
    # no bar inside the band: those buckets are "no data", not "few requests"
    assert not [x for x in _bars(fig) if gx - 0.5 <= x < gx + gw - 1]
    assert "app.log.4.gz" in page[page.index("Lost to damage"):]
    # the band spans from the last record read before the damage to the first after it
    with open_snapshot([d]) as snap:
        col = Collect()
        scan = Scan(snap, Query())
        for rec, f in scan.hits():
            col.feed(rec, str(f.path))
        (a, b, why) = holes(snap, col, True)[0]
        after = next(f for f in snap.files if f.name == "app.log.3.gz")
        assert epoch_to_ts(b)[:19] == col.file_span[str(after.path)][0][:19]
        assert epoch_to_ts(a)[:19] == col.file_span[str(victim)][1][:19]
        assert "truncated" in why


def _ends_with_traceback(d):
    d.mkdir(parents=True)
    clock = sl.Clock(1718150400.0)
    h = sl.handler(d / "app.log", clock=clock)
    lg = sl.logger_for(h)
    for i in range(5):
        clock.t += 1
        sl.synthesis(lg, clock, f"ts_{i:08x}")
    clock.t += 1
    try:
        raise RuntimeError("scipy.fft failed on input len=1024")
    except RuntimeError:
        lg.exception("synthesis_failed: id=ts_last, error_code=SCIPY_FFT_INVALID, "
                     "where=audio_render")
    h.close()


def test_tail_n_counts_records_with_their_traceback(tmp_path):
    d = tmp_path / "logs"
    _ends_with_traceback(d)
    code, out, err = cli("tail", "--dir", str(d), "-n", "2", "--for", "0s", "--no-alerts")
    assert code == 0, err
    lines = out.splitlines()
    # was: the last two physical lines (the end of the traceback, without its record)
    assert lines[0][:4] == "2024" and "synthesis_complete: id=ts_00000004" in lines[0]
    assert "synthesis_failed: id=ts_last" in lines[1]
    assert lines[2] == "Traceback (most recent call last):"
    assert lines[-1].startswith("RuntimeError: scipy.fft failed")
    assert "2 records" in err


def test_tail_json_n_prints_the_last_records(tmp_path):
    d = tmp_path / "logs"
    _ends_with_traceback(d)
    code, out, err = cli("tail", "--dir", str(d), "-n", "2", "--for", "0s", "--no-alerts",
                         "--json")
    assert code == 0, err
    objs = [json.loads(x) for x in out.splitlines()]
    assert [o["event"] for o in objs] == ["synthesis_complete", "synthesis_failed"]
    assert objs[1]["id"] == "ts_last" and objs[1]["error_code"] == "SCIPY_FFT_INVALID"
    tb = objs[1]["traceback"]
    assert tb[0] == "Traceback (most recent call last):" and "RuntimeError" in tb[-1]
