"""The alert rules evaluated over another pass's frames (``alerts.Shared``: ``report``
feeds them diagnose's frames, so the sidecars are read once) give the record path's
episodes on the same files: random records (hypothesis) split into rotated files and a
live one (a file without a sidecar: read again for the rules with their literal
pre-filter), every rule set of ``alert_logs``; and the report's page is the one
it makes with the rules' own read."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ttsops.forensics.analyses import alerts as alerts_mod
from ttsops.forensics.analyses import diagnose
from ttsops.forensics.analyses.rules import load as load_rules
from ttsops.forensics.reading.sources import open_snapshot
from ttsops.forensics.rendering import report as report_mod

from .alert_logs import RECORDS, RULE_SETS, drawn_logs, linked_from, read_once, read_whole, rules_of


def _record_path(logs: Path, rules: list[Any], monkeypatch: Any) -> list[dict[str, Any]]:
    with monkeypatch.context() as m:
        m.setenv("TTSOPS_LOGS_SIDECAR", "off")
        with open_snapshot([logs], []) as snap:
            eps, _ = alerts_mod.evaluate(snap, None, None, rules)
    return [e.to_json() for e in eps]


def _shared(logs: Path, rules: list[Any]) -> list[dict[str, Any]] | None:
    """The episodes from diagnose's pass, fed as ``report`` feeds them."""
    with open_snapshot([logs], []) as snap:
        sh = alerts_mod.Shared(snap, None, None, rules)
        diagnose.run(snap, None, None, tap=lambda _r, _f: None, tap_frame=sh.feed,
                     frame_columns=sh.columns)
        got = sh.finish()
    return None if got is None else [e.to_json() for e in got]


def _whole_read(logs: Path) -> None:
    with open_snapshot([logs], []) as snap:
        diagnose.run(snap, None, None)


def _agree(logs: Path, rules: list[Any], monkeypatch: Any, records: bool = True,
           whole_read: Path | None = None) -> None:
    """The record path's episodes = the shared frames'. With ``whole_read`` (a
    directory: ``logs``, whose files those of ``logs`` are links to, read whole once
    into its ``cache``) that read's cache is copied in instead of reading again."""
    want = _record_path(logs, rules, monkeypatch)
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "auto")  # the first whole read writes them
    read_whole(logs, whole_read, _whole_read)
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "read")
    got = _shared(logs, rules)
    if got is None:  # (no frame to feed: the rules' own read, as cheap, answers) where
        # nothing has a record, or no file a sidecar (read record by record: ``covered``)
        sidecars = any(p for d in (logs, Path(os.environ["XDG_CACHE_HOME"]))
                       for p in d.rglob("*.parquet"))
        assert not sidecars or (not records and not want)
        return
    assert json.dumps(got) == json.dumps(want)


# a failure episode ends at the first record after its window empties: in the live file
# (no sidecar), records the rules' pre-filter drops must not move the time on
@example(items=[("INFO", "synthesis_complete", "status=failed")] * 2
         + [("INFO", "webui_event", "kind=play")] * 3
         + [("INFO", "synthesis_complete", "status=success")],
         gaps=[0, 1, 200, 200, 200, 1], cuts=[2], rules="kinds")
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(RECORDS, min_size=1, max_size=60), gaps=st.data(),
       cuts=st.lists(st.integers(0, 60), min_size=1, max_size=3),
       rules=st.sampled_from(sorted(RULE_SETS)))
def test_shared_frames_give_the_record_paths_episodes(tmp_path_factory, monkeypatch, items,
                                                      gaps, cuts, rules):
    d, logs = drawn_logs(tmp_path_factory, monkeypatch, "shared", items, gaps, cuts)
    _agree(logs, rules_of(rules, d), monkeypatch,
           records=any(lv != "RAW" for lv, _ev, _body in items))


@pytest.fixture(scope="module")
def dialect_read(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tutorial-style log in the dialects (``logs``), read whole by ``diagnose`` once
    (``cache``)."""
    from ..reading.test_sidecar import _day

    return read_once(tmp_path_factory, _day(tmp_path_factory.mktemp("shared-dialect")),
                     "shared-dialect-read", _whole_read)


@pytest.mark.parametrize("rules", sorted(RULE_SETS))
def test_the_dialect_day_agrees(dialect_read, tmp_path, monkeypatch, rules):
    """A tutorial-style log in the dialects, split into rotated files and a live one."""
    logs = linked_from(dialect_read, tmp_path, monkeypatch)
    _agree(logs, rules_of(rules, tmp_path), monkeypatch, whole_read=dialect_read)


def test_the_report_is_the_one_with_the_rules_own_read(incident, tmp_path, monkeypatch):
    """``report`` with the rules over diagnose's frames = with their own read (``Shared``
    answering nothing), the page and the summary; and the shared frames answered."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "auto")
    with open_snapshot([incident[0]], []) as snap:
        diagnose.run(snap, None, None)
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "read")

    def page() -> str:
        with open_snapshot([incident[0]], []) as snap:
            html, summary = report_mod.build(snap, None, None, rules=load_rules())
        return "\n".join(ln for ln in html.splitlines() if "generated 20" not in ln) \
            + json.dumps(summary, sort_keys=True)

    answered: list[bool] = []
    real = alerts_mod.Shared.finish

    def spy(self: Any) -> Any:
        got = real(self)
        answered.append(got is not None)
        return got

    monkeypatch.setattr(alerts_mod.Shared, "finish", spy)
    shared = page()
    assert answered == [True]
    assert "alert episodes" in shared
    monkeypatch.setattr(alerts_mod.Shared, "finish", lambda self: None)
    assert page() == shared


def test_the_rules_pre_filtered_read_writes_no_sidecar(tmp_path, monkeypatch):
    """The rules read files without a sidecar with their literal pre-filter (the frames'
    path: ``sidecar.frames`` of a scan with needles): with ``TTSOPS_LOGS_SIDECAR=auto``
    that read must not be kept as the files' sidecars (it holds only the records with a
    rule's literal), so a later whole-data read answers as the line path does."""
    from ..reading.test_sidecar import _day

    logs = _day(tmp_path)
    rules = rules_of("shipped", tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def records() -> int:
        with open_snapshot([logs], []) as snap:
            return int(diagnose.run(snap, None, None).summary["records"])

    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "off")
    want = records()
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "auto")
    with open_snapshot([logs], []) as snap:
        alerts_mod.evaluate(snap, None, None, rules)
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "read")
    assert records() == want
