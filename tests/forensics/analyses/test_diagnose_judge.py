"""diagnose's severity rules, as data: the thresholds of the table give the severities the
findings have always had."""

from __future__ import annotations

import pytest

from ttsops.forensics.analyses.diagnose_judge import (
    SEVERITY,
    SEVERITY_RULES,
    Rule,
    client_severity,
)


@pytest.mark.parametrize(("failed", "total", "want"), [
    (0, 1000, 0), (1, 10**9, 1), (19, 1000, 1), (20, 1000, 2), (99, 1000, 2),
    (100, 1000, 3), (1000, 1000, 3)])
def test_failure_rate_thresholds(failed: int, total: int, want: int) -> None:
    assert SEVERITY_RULES["failure_rate"].severity(failed / total) == want


@pytest.mark.parametrize(("kind", "measure", "want"), [
    ("input_pattern", 9, 1), ("input_pattern", 10, 2),
    ("webui", 9, 1), ("webui", 10, 2),
    ("precursor", 19, 2), ("precursor", 20, 3), ("precursor_weak", 500, 1),
    ("log_write", 0, 1), ("log_write", 1, 2),
    ("model_load", 0, 3), ("failed_2xx", 0, 3), ("time_share", 0, 0),
    ("cache_disk", 0, 2), ("cache_disk_stale", 0, 0)])
def test_table_rules(kind: str, measure: float, want: int) -> None:
    assert SEVERITY_RULES[kind].severity(measure) == want


def test_every_rule_is_a_known_severity() -> None:
    for rule in SEVERITY_RULES.values():
        sevs = {rule.default, *(s for _t, s in rule.steps)}
        assert sevs <= set(SEVERITY)
        # steps from the highest threshold down: the first reached wins
        ths = [t for t, _s in rule.steps]
        assert ths == sorted(ths, reverse=True)


def test_first_step_reached_wins() -> None:
    r = Rule("x", 0, ((10.0, 3), (5.0, 2)))
    assert [r.severity(x) for x in (0, 5, 9.9, 10, 11)] == [0, 2, 2, 3, 3]


@pytest.mark.parametrize(("n", "total", "base_n", "base_total", "want"), [
    (9, 100, 0, 0, 1),          # few: medium whatever the share
    (50, 1000, 0, 0, 2),        # 5% of all syntheses
    (49, 1000, 0, 0, 1),        # below the share, no look-back to compare with
    (20, 1000, 0, 1000, 2),     # never in the look-back: a spike
    (20, 1000, 10, 1000, 1),    # twice its look-back rate: not a spike
    (30, 1000, 10, 1000, 2),    # three times: a spike
])
def test_client_severity(n: int, total: int, base_n: int, base_total: int,
                         want: int) -> None:
    assert client_severity(n, total, base_n, base_total) == want
