"""patterns: grouped counts, joined fields, buckets, filters."""

from __future__ import annotations

import pytest

from ttsops.forensics.filters import FilterError, parse_buckets, parse_where

from .forensics_helpers import cli, cli_json


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
