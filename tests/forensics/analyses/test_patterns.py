"""patterns: grouped counts, joined fields, buckets, filters."""

from __future__ import annotations

import pytest

from ttsops.forensics.reading.filters import FilterError, parse_buckets, parse_where

from ..forensics_helpers import cli, cli_json


def test_failures_by_code_and_text_len_equal_the_truth(incident):
    d, truth = incident
    rep = cli_json("patterns", "--dir", str(d), "--where", "status=failed",
                   "--by", "error_code,text_len")
    got = sorted([g["key"]["error_code"], g["key"]["text_len"], g["count"]]
                 for g in rep["groups"])
    assert got == sorted(truth["failed_by_code_text_len"])


def test_buckets_and_start_fields(incident):
    d, truth = incident
    rep = cli_json("patterns", "--dir", str(d), "--where", "status=failed",
                   "--by", "text_len,error_code", "--bucket", "text_len=0,1,64,512,2000,4096")
    groups = {(g["key"]["text_len"], g["key"]["error_code"]): g["count"] for g in rep["groups"]}
    assert groups[("[2000,4096)", "SCIPY_FFT_INVALID")] == \
        truth["injected"]["failing_pattern"]["count"]
    assert groups[("[0,1)", "TEXT_EMPTY")] == truth["failed_by_code"]["TEXT_EMPTY"]
    # voice only exists in synthesis_start: joined
    rep = cli_json("patterns", "--dir", str(d), "--where", "error_code=VOICE_UNKNOWN",
                   "--by", "voice")
    assert [(g["key"]["voice"], g["count"]) for g in rep["groups"]] == \
        [("alice", truth["failed_by_code"]["VOICE_UNKNOWN"])]


def test_event_mode_and_numeric_where(incident):
    d, truth = incident
    rep = cli_json("patterns", "--dir", str(d), "--event", "cache_dir_usage",
                   "--where", "used_percent>=95", "--by", "action")
    assert {g["key"]["action"] for g in rep["groups"]} == {"evict"}
    rep = cli_json("patterns", "--dir", str(d), "--event", "cache_dir_usage", "--by", "event")
    assert rep["groups"][0]["count"] == truth["events"]["cache_dir_usage"]


def test_no_match_exits_1(incident):
    d, _ = incident
    rc, _out, err = cli("patterns", "--dir", str(d), "--where", "error_code=NOPE")
    assert rc == 1 and "no syntheses match error_code=NOPE" in err


def test_filter_grammar():
    c = parse_where(["status=failed,text_len>=2000", "voice!=alloy", "error_code~FFT"])
    assert [str(x) for x in c] == ["status=failed", "text_len>=2000", "voice!=alloy",
                                   "error_code~FFT"]
    f = {"status": "failed", "text_len": "2048 chars", "voice": "nova",
         "error_code": "SCIPY_FFT_INVALID"}
    assert all(x(f) for x in c)
    assert not c[1]({"text_len": "86 chars"})
    with pytest.raises(FilterError):
        parse_where(["text_len<abc"])
    with pytest.raises(FilterError):
        parse_where(["nonsense"])
    b = parse_buckets(["text_len=0,1,64"])["text_len"]
    assert [b.label(v) for v in ("0", "1", "63", "64", "-1", None)] == \
        ["[0,1)", "[1,64)", "[1,64)", ">=64", "<0", "(none)"]
    with pytest.raises(FilterError):
        parse_buckets(["text_len="])


def _grep_count(d, needle: str) -> int:
    """What ``zcat -f app.log* | grep -c NEEDLE`` answers."""
    import gzip

    n = 0
    for f in sorted(d.iterdir()):
        if not f.name.startswith("app.log") or f.name.endswith(".idx"):
            continue
        data = gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()
        n += sum(1 for ln in data.decode("utf-8", "replace").splitlines() if needle in ln)
    return n


def test_total_ignores_where(incident):
    # the total is every synthesis (every record of the event) in the range, not only
    # those the --where literal pre-filter let through (was: syntheses == matching)
    d, truth = incident
    rep = cli_json("patterns", "--dir", str(d), "--where", "status=failed",
                   "--by", "text_len,error_code")
    assert rep["total"] == _grep_count(d, " - synthesis_complete: ") == \
        truth["events"]["synthesis_complete"]
    assert rep["matching"] == sum(truth["failed_by_code"].values()) < rep["total"]
    rep = cli_json("patterns", "--dir", str(d), "--event", "stage_time",
                   "--where", "stage=llm_inference")
    assert rep["total"] == _grep_count(d, " - stage_time: ") == truth["events"]["stage_time"]
    assert rep["matching"] == _grep_count(d, "stage=llm_inference") < rep["total"]
    # in a window: the same as without the literal pre-filter (a non-literal condition)
    w = ("--since", "2024-06-12 06:00", "--until", "2024-06-12 09:00")
    a = cli_json("patterns", "--dir", str(d), *w, "--where", "status=failed")
    b = cli_json("patterns", "--dir", str(d), *w, "--where", "status~^failed$")
    assert a["total"] == b["total"] and a["matching"] == b["matching"]
    assert a["total"] == cli_json("patterns", "--dir", str(d), *w)["total"]


def test_total_same_in_json_and_text(tmp_path):
    from ttsops.simulate import SimConfig, generate

    reps = []
    for fmt in ("text", "json"):
        out = tmp_path / fmt
        generate(out, SimConfig(requests=400, seed=3, scenarios=("failures",), fmt=fmt,
                                duration_s=6 * 3600.0), tmp_path / f"{fmt}.truth.json")
        reps.append([cli_json("patterns", "--dir", str(out), *args)
                     for args in (("--where", "status=failed"),
                                  ("--event", "stage_time", "--where", "stage=llm_inference"))])
    for (a, b) in zip(*reps, strict=True):
        assert (a["total"], a["matching"], a["groups"]) == (b["total"], b["matching"],
                                                            b["groups"])
    assert reps[0][0]["total"] == 400 and reps[0][0]["matching"] < 400
