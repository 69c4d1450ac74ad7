from __future__ import annotations

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttsops.config import Settings, settings_table


def test_env_prefix_and_seed_request_id_header(monkeypatch):
    monkeypatch.setenv("TTSOPS_QUEUE_SIZE", "7")
    monkeypatch.setenv("REQUEST_ID_HEADER", "X-Correlation-ID")
    s = Settings()
    assert s.queue_size == 7 and s.request_id_header == "X-Correlation-ID"
    monkeypatch.setenv("TTSOPS_REQUEST_ID_HEADER", "X-Req")
    assert Settings().request_id_header == "X-Req"


def test_bad_values_are_refused(monkeypatch):
    monkeypatch.setenv("TTSOPS_LOG_FORMAT", "xml")
    with pytest.raises(pydantic.ValidationError):
        Settings()


def test_table_covers_every_setting_with_help():
    rows = settings_table()
    assert len(rows) == len(Settings.model_fields)
    assert all(env.startswith("TTSOPS_") and help_ for env, _, help_ in rows)


# --- the rows `ttsops logs` reads without pydantic (ttsops.knobs) ----------------------

def _table_value(name: str, raw: str):
    """What the table (pydantic) makes of ``raw`` for the setting ``name``: the value, or
    the one-line message of its refusal."""
    from ttsops.knobs import KNOBS, describe

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(KNOBS[name].env, raw)
        try:
            return ("ok", getattr(Settings(), name))
        except pydantic.ValidationError as e:
            return ("bad", describe(e))


def test_knob_rows_are_the_tables_rows():
    from ttsops.knobs import KNOBS

    kinds = {"int": int, "float": float, "bool": bool}
    for name, k in KNOBS.items():
        field = Settings.model_fields[name]
        assert field.default == k.default and field.description == k.description
        if k.kind == "choice":
            assert set(field.annotation.__args__) == set(k.choices)
        else:
            assert field.annotation is kinds[k.kind]
    shown = {env: (default, help_) for env, default, help_ in settings_table()}
    assert shown["TTSOPS_LOGS_WORKERS"] == ("0", KNOBS["logs_workers"].description)


_SPELLINGS = st.one_of(
    st.text(alphabet="0123456789.-+ eE_xabtrufalsyonTRUEFALSEAUTOREADOFFalwaysnever",
            max_size=8),
    st.sampled_from(["0", "1", "8", "100", "90.5", "101", "-1", "true", "False", "YES",
                     "off", "auto", " Read ", "ALWAYS", "never", "", " 7", "5.0", "1e2",
                     "٣", "²", "1_000", "0x10", "nan", "inf"]))


@settings(max_examples=300, deadline=None)
@given(raw=_SPELLINGS, name=st.sampled_from(sorted(
    ["log_utc", "logs_workers", "logs_vector", "logs_sidecar", "logs_progress_bytes",
     "cache_disk_warn_percent"])))
def test_knobs_read_every_spelling_as_the_table_does(raw, name):
    """The dependency-free reader gives the table's value for every spelling, and for a
    bad one the table's own message (as ``ttsops serve`` words it)."""
    from ttsops import knobs

    want = _table_value(name, raw)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(knobs.KNOBS[name].env, raw)
        try:
            got = ("ok", knobs.value(name))
        except knobs.SettingError as e:
            got = ("bad", str(e))
    assert got == want
    if got[0] == "ok":
        assert type(got[1]) is type(want[1])


def test_knobs_default_when_unset(monkeypatch):
    from ttsops import knobs

    for k in knobs.KNOBS.values():
        monkeypatch.delenv(k.env, raising=False)
    assert {n: knobs.value(n) for n in knobs.KNOBS} == \
        {n: getattr(Settings(), n) for n in knobs.KNOBS}


@pytest.mark.parametrize("command", [["window"], ["stages"], ["tail"]])
@pytest.mark.parametrize(("var", "raw"), [("TTSOPS_LOGS_WORKERS", "many"),
                                          ("TTSOPS_LOGS_PROGRESS_BYTES", "-1"),
                                          ("TTSOPS_LOGS_VECTOR", "sometimes"),
                                          ("TTSOPS_LOG_UTC", "maybe")])
def test_bad_logs_setting_is_one_line_and_exit_2(tmp_path, command, var, raw):
    """A bad value of a setting the logs commands read: the table's message, exit 2, no
    traceback, on the click-free path (window) and click's (stages, tail) alike."""
    import os
    import subprocess

    (tmp_path / "app.log").write_text("")
    env = {**os.environ, var: raw}
    p = subprocess.run(["ttsops", "logs", *command[:1], "--dir", str(tmp_path),
                        *command[1:]], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith(f"ttsops logs: error: invalid setting: {var}={raw!r}: ")
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr


def test_quick_path_reads_its_settings_without_pydantic(tmp_path):
    """``ttsops logs window`` with every logs setting given a good value never imports
    pydantic (its start-up is most of a small query's time)."""
    import os
    import subprocess
    import sys

    (tmp_path / "app.log").write_text("")
    env = {**os.environ, "TTSOPS_LOGS_WORKERS": "2", "TTSOPS_LOGS_VECTOR": "Never",
           "TTSOPS_LOGS_SIDECAR": "off", "TTSOPS_LOGS_PROGRESS_BYTES": "1000",
           "TTSOPS_LOG_UTC": "true", "TTSOPS_CACHE_DISK_WARN_PERCENT": "80"}
    code = ("import sys; sys.argv = ['ttsops', 'logs', 'window', '--json', '--dir', "
            f"{str(tmp_path)!r}]\nfrom ttsops.entry import main\ntry:\n    main()\n"
            "finally:\n    print('pydantic' in sys.modules, file=sys.stderr)")
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.stderr.strip().splitlines()[-1] == "False", p.stderr
