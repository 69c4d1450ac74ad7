"""A small unindexed scan reads in the calling thread (the read-ahead threads would only
wait for the GIL the caller's search holds); a large one, or one told how many threads
to use (``TTSOPS_LOGS_WORKERS``), reads ahead on threads. The answer is the same."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from ttsops.forensics.reading import parallel
from ttsops.forensics.reading import scan as scan_mod
from ttsops.forensics.reading.scan import Query, Scan
from ttsops.forensics.reading.sources import open_snapshot


def _logs(tmp_path: Path) -> list[Path]:
    out = []
    for n in range(1, 4):
        lines = [f"2024-06-12 1{n}:{i // 60 % 60:02d}:{i % 60:02d},000 - app - INFO - "
                 f"synthesis_complete: id=ts_{n}{i:06x}, status="
                 f"{'failed' if i % 7 == 0 else 'success'}" for i in range(3000)]
        p = tmp_path / f"app.log.{n}.gz"
        p.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
        out.append(p)
    return out


def _read(files: list[Path], monkeypatch: pytest.MonkeyPatch,
          ) -> tuple[list[tuple[str, str]], bool]:
    """(the records read, whether a read-ahead thread read a unit)."""
    produced = []
    plain = parallel.ReadAhead._produce

    def produce(self: parallel.ReadAhead[bytes], u: parallel.Unit[bytes]) -> None:
        produced.append(u.key)  # only a read-ahead thread runs this
        plain(self, u)
    monkeypatch.setattr(parallel.ReadAhead, "_produce", produce)
    with open_snapshot([], files, use_index=False) as snap:
        got = [(rec.ts, rec.fields["id"]) for rec in Scan(
            snap, Query(needles=("synthesis_complete",), require=("failed",))).records()]
    return got, bool(produced)


def test_a_small_scan_reads_in_the_calling_thread(tmp_path, monkeypatch):
    files = _logs(tmp_path)
    monkeypatch.delenv("TTSOPS_LOGS_WORKERS", raising=False)
    small, threads = _read(files, monkeypatch)
    assert not threads and len(small) == 3 * 429
    monkeypatch.setattr(scan_mod, "THREAD_BYTES", 1)  # as if the files were large
    large, threads = _read(files, monkeypatch)
    assert threads and large == small


@pytest.mark.parametrize("n", ["1", "2"])
def test_the_setting_says_how_many_threads(tmp_path, monkeypatch, n):
    files = _logs(tmp_path)
    monkeypatch.setenv("TTSOPS_LOGS_WORKERS", n)
    got, threads = _read(files, monkeypatch)
    assert threads == (n != "1") and len(got) == 3 * 429


def test_a_few_blocks_are_inflated_without_loading_isal(tmp_path):
    """A read of a few index blocks (a trace, a window's ends) inflates them with the
    standard zlib (importing isal would cost more); the lines are the same either way."""
    import io
    import subprocess
    import sys

    from ttsops.logindex import write_block_gzip

    lines = [f"2024-06-12 10:{i // 60 % 60:02d}:{i % 60:02d},000 - app - INFO - "
             f"synthesis_complete: id=ts_{i:08x}, status=success" for i in range(20000)]
    path = tmp_path / "app.log.1.gz"
    with open(path, "wb") as f:
        write_block_gzip(io.BytesIO(("\n".join(lines) + "\n").encode()), f, 65536)
    code = (
        "import sys\n"
        "from ttsops.forensics.reading import _inflate\n"
        "from ttsops.forensics.reading.scan import Query, Scan\n"
        "from ttsops.forensics.reading.sources import open_snapshot\n"
        "if sys.argv[2] == 'large': _inflate.SMALL_READ = -1\n"
        "import ttsops.forensics.reading.scan as s; s.SMALL_READ = _inflate.SMALL_READ\n"
        "with open_snapshot([], [sys.argv[1]]) as snap:\n"
        "    got = [r.fields['id'] for r in Scan(snap, Query(ids=('ts_00001234',),\n"
        "           needles=('ts_00001234',))).records()]\n"
        "print(got, 'isal' in sys.modules)\n")
    out = {how: subprocess.run([sys.executable, "-c", code, str(path), how], check=True,
                               capture_output=True, text=True).stdout.split()
           for how in ("small", "large")}
    assert out["small"] == ["['ts_00001234']", "False"]
    assert out["large"] == ["['ts_00001234']", "True"]
