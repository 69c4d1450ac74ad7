"""Alert rules: the file format and its errors, the episode semantics of each kind, and
the shipped rules over the simulated incident, checked against the records themselves."""

from __future__ import annotations

import json

import pytest

from ttsops.forensics.analyses.rules import KINDS, Engine, RuleError, load
from ttsops.logline import Record, iter_records

from ..forensics_helpers import cli, cli_json


def _rules(tmp_path, text: str):
    p = tmp_path / "rules.toml"
    p.write_text(text)
    return load(p)


def test_the_shipped_rules_load_and_cover_every_kind():
    rules = load()
    assert {r.kind for r in rules} == set(KINDS)
    assert len({r.name for r in rules}) == len(rules)


@pytest.mark.parametrize(("text", "message"), [
    ("[[rule]\nname=", "not valid TOML"),
    ("x = 1", "no [[rule]] tables"),
    ('[[rule]]\nname="a"\nkind="often"', "kind must be one of"),
    ('[[rule]]\nname="a"\nkind="match"\nwhere="x=1"\ncolour="red"', "unknown key(s) colour"),
    ('[[rule]]\nname="a"\nkind="rate"\nabove=0.1', "rate needs 'where'"),
    ('[[rule]]\nname="a"\nkind="percentile"\nabove=1', "needs 'field'"),
    ('[[rule]]\nname="a"\nkind="match"\nwhere="x>>1"', "> needs a number"),
    ('[[rule]]\nname="a"\nkind="count"\nwhere="x=1"\nwithin="soon"', "not a duration"),
    ('[[rule]]\nname="a"\nkind="match"\nwhere="x=1"\n[[rule]]\nname="a"\nkind="match"\n'
     'where="y=1"', "must be unique"),
    ('[[rule]]\nname="a"\nkind="rate"\nwhere="x=1"\nabove="abc"',
     "rule 'a': above must be a number, not 'abc'"),
    ('[[rule]]\nname="a"\nkind="count"\nwhere="x=1"\ncount="many"',
     "rule 'a': count must be a whole number, not 'many'"),
    ('[[rule]]\nname="a"\nkind="count"\nwhere="x=1"\ncount=[1]',
     "rule 'a': count must be a whole number, not [1]"),
    ('[[rule]]\nname="a"\nkind="count"\nwhere="x=1"\ncount=2.5',
     "rule 'a': count must be a whole number"),
    ('[[rule]]\nname="a"\nkind="rate"\nwhere="x=1"\nabove=0.1\nmin_count="some"',
     "rule 'a': min_count must be a whole number"),
    ('[[rule]]\nname="a"\nkind="percentile"\nfield="x"\nabove=1\nq="high"',
     "rule 'a': q must be a number"),
    ('[[rule]]\nname="a"\nkind="match"\nwhere=5', "rule 'a': where: conditions must be"),
    ('[[rule]]\nname="a"\nkind="match"\nevent=[1]', "rule 'a': event must be a string"),
    ('rule = [1]', "rule 1 is not a table"),
])
def test_bad_rules_files_are_refused_with_a_clear_message(tmp_path, text, message):
    import re

    with pytest.raises(RuleError, match=re.escape(message)):
        _rules(tmp_path, text)
    p = tmp_path / "rules.toml"
    (tmp_path / "app.log").write_text("2024-06-12 00:00:00,000 - t - INFO - e: x=1\n")
    rc, _out, err = cli("alerts", "--dir", str(tmp_path), "--rules", str(p))
    assert rc == 2 and message in err and "Traceback" not in err


def _rec(sec: int, event: str, **fields: str) -> Record:
    m, s = divmod(sec, 60)
    h, m = divmod(m, 60)
    return Record(f"2024-06-12 {h:02d}:{m:02d}:{s:02d},000", "t", "INFO", event, fields)


def test_rate_rule_wavering_at_the_threshold_is_one_episode(tmp_path):
    rules = _rules(tmp_path, '[[rule]]\nname="fail"\nkind="rate"\nevent="synthesis_complete"'
                             '\nwhere="status=failed"\nabove=0.2\nover="60s"\nmin_count=5\n')
    eng = Engine(rules)
    # 10 s apart; failures make the rate cross 20% up and down for a while, then stop
    pattern = [0] * 10 + [1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0] + [0] * 20
    fired = []
    for i, bad in enumerate(pattern):
        r = _rec(i * 10, "synthesis_complete", status="failed" if bad else "success")
        fired += [(a.ts, a.value) for a in eng.feed(r)]
    eps = eng.finish()
    assert len(eps) == 1 and len(fired) == 1
    # fired at the second failure: 2 of 7 records in the last 60 s
    assert eps[0].ts == _rec(130, "x").ts and fired[0][1] == pytest.approx(2 / 7)
    assert eps[0].resolved is not None


def test_match_rule_one_episode_per_burst_and_count_rule(tmp_path):
    rules = _rules(tmp_path, '[[rule]]\nname="m"\nkind="match"\nwhere="error_code=X"\n'
                             'quiet="5m"\n[[rule]]\nname="c"\nkind="count"\n'
                             'where="error_code=X"\ncount=3\nwithin="1m"\n'
                             'resolve_after="0s"\n')
    eng = Engine(rules)
    times = [0, 20, 40, 50, 400, 410, 1500]
    for t in range(0, 1600, 5):
        eng.feed(_rec(t, "e", error_code="X" if t in times else "Y"))
    got = [(a.rule, a.ts) for a in eng.finish()]
    assert got == [("m", _rec(0, "").ts), ("c", _rec(40, "").ts), ("m", _rec(400, "").ts),
                   ("m", _rec(1500, "").ts)]


def test_percentile_rule(tmp_path):
    rules = _rules(tmp_path, '[[rule]]\nname="p"\nkind="percentile"\nevent="stage_time"\n'
                             'select="stage=llm_inference"\nfield="duration_ms"\nq=50\n'
                             'above=1000\nover="100s"\nmin_count=3\n')
    eng = Engine(rules)
    vals = [500, 600, 700, 1500, 1600, 1700, 1800, 500, 500, 500, 500, 500]
    out = []
    for i, v in enumerate(vals):
        eng.feed(_rec(i * 10, "stage_time", stage="other", duration_ms="99999"))
        out += eng.feed(_rec(i * 10 + 1, "stage_time", stage="llm_inference",
                             duration_ms=str(v)))
    # at +51 s: 500 600 700 1500 1600 1700, median (700 + 1500) / 2
    assert [(a.ts, a.value) for a in out] == [(_rec(51, "").ts, 1100.0)]


def _records(d):
    import gzip

    files = sorted(d.glob("app.log.*.gz"), key=lambda p: -int(p.name.split(".")[2]))
    lines = [ln for p in files for ln in gzip.decompress(p.read_bytes()).decode().splitlines()]
    lines += (d / "app.log").read_text().splitlines()
    return list(iter_records(lines))


def test_shipped_rules_over_the_incident_fire_where_the_records_say(incident):
    d, truth = incident
    rep = cli_json("alerts", "--dir", str(d))
    eps = rep["episodes"]
    by = {}
    for e in eps:
        by.setdefault(e["rule"], []).append(e)
    recs = _records(d)
    # the model failed to load once: one critical episode at that record
    assert [e["ts"] for e in by["model_load_failed"]] == [truth["injected"]["model_load"]["ts"]]
    # the cache disk: the third cache_health in a row above 90% (reports are 5 min apart)
    run, want = 0, None
    for r in recs:
        if r.event == "cache_health":
            run = run + 1 if float(r.fields["usage"].rstrip("%")) > 90 else 0
            if run == 3 and want is None:
                want = r.ts
    assert by["cache_disk_high"][0]["ts"] == want
    # DISK_FULL: the third ERROR record with that code within 10 minutes
    full = [r.ts for r in recs if r.fields.get("error_code") == "DISK_FULL"
            and r.level == "ERROR"]
    assert by["disk_full"][0]["ts"] == full[2]
    assert len(by["disk_full"]) == 1
    # the failing hour of the incident raises the failure-rate alert inside it
    a, b = truth["injected"]["failing_pattern"]["window"]
    assert any(a <= e["ts"] < b for e in by["failure_rate"])
    assert json.dumps(eps)  # serialisable


def test_alerts_table_and_csv(incident):
    d, _ = incident
    rc, out, _ = cli("alerts", "--dir", str(d), "--csv")
    assert rc == 0
    assert out.splitlines()[0] == "fired,rule,severity,value,detail,example,ended"
    assert "model_load_failed" in out


def test_numbers_may_be_written_as_strings(tmp_path):
    rules = _rules(tmp_path, '[[rule]]\nname="a"\nkind="rate"\nwhere="x=1"\nabove="0.5"\n'
                             'min_count="4"\n[[rule]]\nname="b"\nkind="count"\nwhere="x=1"\n'
                             'count="7"\n')
    assert (rules[0].above, rules[0].min_count, rules[1].count) == (0.5, 4, 7)
