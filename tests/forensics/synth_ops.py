"""Made-up records of a few ids, as hypothesis draws them, cut into files: the joins of
syntheses (``synth_frames``, ``diagnose_parts``) are held to each other on them."""

from __future__ import annotations

from hypothesis import strategies as st

from ttsops.logformat.record import Record
from ttsops.logline import STAGES

OP = st.tuples(st.sampled_from(["synthesis_start", "stage_time", "synthesis_complete",
                                "audio_metrics", "synthesis_failed", "other_warning"]),
                st.sampled_from(["ts_a", "ts_b", "ts_c", ""]),
                st.sampled_from([*STAGES[:3], "", "custom"]),
                st.sampled_from(["5", "12.5", "30 ms", "x", "", "7"]),
                st.booleans())


def records(ops: list[tuple[str, str, str, str, bool]]) -> list[Record]:
    out = []
    for i, (ev, sid, stage, num, flag) in enumerate(ops):
        f: dict[str, str] = {"id": sid} if sid else {}
        lvl = "INFO"
        if ev == "synthesis_start":
            f.update(voice="alloy" if flag else "", text_len=num)
        elif ev == "stage_time":
            f.update(stage=stage, duration_ms=num)
            if flag:
                f["elapsed_ms"] = num
        elif ev == "synthesis_complete":
            f.update(status="failed" if flag else "success", duration_ms=num, queue_ms=num)
            if flag:
                f.update(error_code="DISK_FULL", voice="nova")
        elif ev == "audio_metrics":
            f.update(rms=num, peak="0.5")
        elif ev == "synthesis_failed":
            lvl = "ERROR"
            if flag:
                f["where"] = stage
        else:
            lvl = "WARNING"
        out.append(Record(f"2024-06-12 00:00:{i // 1000:02d},{i % 1000:03d}", "app", lvl,
                          ev, f, [], 0))
    return out


def cut(recs: list[Record], cuts: list[int]) -> list[list[Record]]:
    """``recs`` as files of the given sizes, in turn."""
    files: list[list[Record]] = []
    pos = k = 0
    while pos < len(recs):
        files.append(recs[pos:pos + cuts[k % len(cuts)]])
        pos, k = pos + len(files[-1]), k + 1
    return files
