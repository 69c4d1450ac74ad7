"""The key test of issue 18: every supported ``logs`` command answers ``--source`` (the
logs shipped to ClickHouse: one server, and a two-shard cluster behind a Distributed
table) exactly as it answers ``--dir`` on the same files: the same JSON, less the
accounting of what was read (files, blocks, bytes)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from console import TTSOPS
from forensics.forensics_helpers import Ran, entry_in_process

from .conftest import some_ids
from .shared import Answers

READ_KEYS = {"read", "files read", "files", "file", "written", "size"}
# ``check``'s items about files (index, duplicates, overlap, rotation sizes...): a
# database holds records, not files (answered there for the one stream per host)
FILE_ITEMS = {"indexed", "duplicate_files", "file_overlap", "split_ids", "interleaving",
              "rotation_sizes"}


def ttsops(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """The installed console script in a subprocess: for what is about the process (the
    entry point, exit status, one line on stderr)."""
    return subprocess.run([*TTSOPS, *args], capture_output=True, text=True, timeout=300,
                          check=check, env={**os.environ, "TTSOPS_LOG_UTC": "true"})


def in_process(*args: str) -> Ran:
    """``ttsops ARGS`` run in this process through the console script's function, for the
    shipping and the answers compared below (this file asks ~200 questions: a Python start
    and the imports of each were most of its time). The environment ``ttsops()`` gives,
    set per run."""
    return entry_in_process(*args, env={"TTSOPS_LOG_UTC": "true"})


def norm(x: object) -> object:
    """The answer without the accounting of the read (which files, blocks, bytes)."""
    if isinstance(x, dict) and (x.get("name") in FILE_ITEMS or x.get("item") in FILE_ITEMS):
        return None
    if isinstance(x, dict):
        return {k: norm(v) for k, v in x.items() if k not in READ_KEYS}
    if isinstance(x, list):
        return [norm(v) for v in x]
    return x


def answer(args: list[str], run: Callable[..., Ran | subprocess.CompletedProcess[str]]
           = in_process) -> tuple[int, object]:
    p = run("logs", *args, "--json")
    assert "Traceback" not in p.stderr, p.stderr
    try:
        out = json.loads(p.stdout)
    except ValueError:
        pytest.fail(f"{args}: no JSON (exit {p.returncode}): {p.stderr[-500:]}")
    if args[0] == "check" and isinstance(out, dict):
        # pass/fail over all items counts the file items (FILE_ITEMS) too
        out.pop("passed", None)
        out.get("summary", {}).pop("items failed", None)
        return 0, norm(out)
    if isinstance(out, dict) and "empty" in out:
        out["empty"] = out["empty"].split(" in ")[0]  # "... in N files": the read
    return p.returncode, norm(out)


def files_answer(file_answers: Answers, args: list[str]) -> tuple[int, object]:
    """``answer(args)`` on the files (``--dir``), kept in ``file_answers`` once asked (by
    any test of the run that asks it)."""
    return file_answers.get(tuple(args), lambda: answer(args))


def commands(ids: list[str]) -> list[list[str]]:
    return [
        ["window"],
        ["window", "--since", "2024-06-12 03:00", "--until", "2024-06-12 09:30"],
        ["trace", ids[0]],
        ["trace", *ids[1:]],
        ["trace", "ts_nosuchid"],
        ["top", "errors"],
        ["top", "warnings", "-n", "0"],
        ["patterns"],
        ["patterns", "--by", "voice,error_code", "--where", "status=failed"],
        ["patterns", "--event", "*", "--by", "level"],
        ["patterns", "--where", "status=failed", "--by", "text_len,error_code"],
        ["patterns", "--where", "error_code=", "--by", "status,day"],
        ["patterns", "--since", "2024-06-12 04:00", "--until", "2024-06-12 09:00", "--by",
         "minute,level", "--where", "status!=success"],
        ["stages"],
        ["stages", "--by", "voice", "--since", "2024-06-12 06:00"],
        ["cache"],
        ["audio"],
        ["precursors"],
        ["diagnose", "--since", "2024-06-12 08:00"],
        ["alerts"],
        ["alerts", "--since", "2024-06-12 12:00"],
        ["cache", "--since", "2024-06-12 05:00", "--interval", "30m"],
        ["audio", "--since", "2024-06-12 04:00", "--until", "2024-06-12 20:00"],
        ["precursors", "--since", "2024-06-12 06:00", "--lookback", "2h"],
        ["patterns", "--since", "2024-06-12 05:00", "--by", "voice,hour"],
        ["check"],
        ["report", "-o", "{tmp}/report.html", "--since", "2024-06-12 02:00"],
    ]


def assert_agree(cmds: list[list[str]], files: list[str], url: str,
                 file_answers: Answers | None = None, tmp: Path | None = None) -> None:
    """Every command of ``cmds`` answers from ``url`` as with ``files`` (``--dir D``...)
    added; ``file_answers``: where the files' answers are kept once asked (for the next
    call, and the run's other processes); ``{tmp}`` in a command: ``tmp``. (A kept
    answer's key holds ``{tmp}`` itself: ``report -o {tmp}/report.html`` is one question
    whatever the directory -- the path is only in what ``norm`` drops, ``written`` -- asked
    once by the tests of the run that ask it, each with a directory of its own.)"""
    differ = []
    for raw in cmds:
        args = raw if tmp is None else [a.replace("{tmp}", str(tmp)) for a in raw]
        key = (*raw, *files)
        want = (answer([*args, *files]) if file_answers is None
                else file_answers.get(key, lambda args=args: answer([*args, *files])))
        got = answer([*args, "--source", url])
        if got != want:
            differ.append((args, want, got))
    assert not differ, f"{len(differ)} differ: " + "\n".join(
        f"{a}: files {json.dumps(w)[:1500]}\n  source {json.dumps(g)[:1500]}"
        for a, w, g in differ[:3])


def ship(paths: list[str], url: str, host: str) -> dict:
    p = in_process("logs", "ship", *paths, "--to", url, "--host", host, "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.fixture(scope="module")
def shipped(ch_single, ch_cluster, corpora) -> dict[str, dict[str, str]]:
    """Each corpus shipped to the single server and to the cluster: URL per corpus."""
    port = ch_single.tcp_port
    c0 = ch_cluster[0].tcp_port
    urls: dict[str, dict[str, str]] = {"single": {}, "cluster": {}}
    for name, d in corpora.items():
        urls["single"][name] = f"clickhouse://127.0.0.1:{port}/{name}"
        urls["cluster"][name] = f"clickhouse://127.0.0.1:{c0}/{name}?cluster=ttsops_test"
        for where in urls.values():
            got = ship([str(d)], where[name], d.name)  # the label --dir gives
            assert got["rows"] > 0
    return urls


@pytest.mark.parametrize("corpus", ["sim", "tut", "json"])
@pytest.mark.parametrize("where", ["single", "cluster"])
def test_source_answers_as_the_files_do(shipped, corpora, corpus, where, dir_answers,
                                        tmp_path_factory):
    d = str(corpora[corpus])
    url = shipped[where][corpus]
    ids = some_ids(corpora[corpus], 3)
    assert len(ids) == 3
    tmp = tmp_path_factory.getbasetemp() / f"source-agreement-{corpus}"  # same for both
    tmp.mkdir(exist_ok=True)
    assert_agree(commands(ids), ["--dir", d], url, dir_answers, tmp)


def test_the_console_script_answers_as_the_runs_in_process(shipped, corpora, dir_answers):
    """The answers compared here are taken in-process (``in_process``): the installed
    script in a subprocess gives the same ones, from the database and from the files
    (click's path and the click-free one of ``window``/``trace``)."""
    url = shipped["cluster"]["tut"]
    d = str(corpora["tut"])
    ids = some_ids(corpora["tut"], 2)
    for args in (["window", "--source", url], ["stages", "--by", "voice", "--source", url],
                 ["window", "--dir", d], ["trace", *ids, "--dir", d],
                 ["diagnose", "--dir", d]):
        # (an in-process answer from the files: kept once asked, here or by another test)
        here = files_answer(dir_answers, args) if "--dir" in args else answer(args)
        assert answer(args, run=ttsops) == here, args


def test_cluster_spreads_rows_over_both_shards(shipped, ch_cluster, corpora):
    from clickhouse_driver import Client

    counts = []
    for s in ch_cluster:
        c = Client("127.0.0.1", port=s.tcp_port)
        counts.append(c.execute("SELECT count() FROM sim.ttsops_logs_local")[0][0])
        c.disconnect()
    assert all(n > 0 for n in counts), counts
    c = Client("127.0.0.1", port=ch_cluster[1].tcp_port)
    total = c.execute("SELECT count() FROM sim.ttsops_logs")[0][0]
    assert total == sum(counts)


def test_source_usage_errors(shipped, corpora):
    url = shipped["single"]["sim"]
    for args, says in (
            (["window", "--source", "http://x/y"], "clickhouse://"),
            (["window", "--source", "clickhouse://127.0.0.1:1/sim"], "cannot reach"),
            (["window", "--source", url.replace("/sim", "/nosuchdb")], "no table"),
            (["window", "--source", url, "--dir", str(corpora["sim"])], "excludes")):
        p = ttsops("logs", *args)
        assert p.returncode == 2, (args, p.stderr)
        assert says in p.stderr and "Traceback" not in p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_sql_answers_from_the_shipped_rows(shipped, corpora, dir_answers):
    url = shipped["cluster"]["sim"]
    p = ttsops("logs", "sql", "SELECT count() AS n FROM ttsops_logs WHERE event = "
               "'synthesis_start'", "--source", url, "--json")
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    _rc, window = files_answer(dir_answers, ["window", "--dir", str(corpora["sim"])])
    assert got == {"columns": ["n"], "rows": [[window["started"]]]}
    bad = ttsops("logs", "sql", "SELEC 1", "--source", url)
    assert bad.returncode == 2 and "Syntax error" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_several_hosts_answer_as_several_dirs(ch_cluster, corpora):
    """Two hosts shipped into one database: ``--source`` answers as ``--dir A --dir B``
    (the streams merged by time, each labelled with its host)."""
    url = f"clickhouse://127.0.0.1:{ch_cluster[1].tcp_port}/both?cluster=ttsops_test"
    both = [corpora["sim"], corpora["tut"]]
    for d in both:
        ship([str(d)], url, d.name)
    dirs = [x for d in both for x in ("--dir", str(d))]
    ids = some_ids(corpora["sim"], 1) + some_ids(corpora["tut"], 1)
    assert_agree([["window"], ["trace", *ids], ["top", "errors"], ["patterns"],
                  ["stages", "--by", "voice"], ["diagnose"]], dirs, url)


@pytest.mark.parametrize("where", ["single", "cluster"])
def test_stages_is_answered_by_sql_on_whole_numbers(shipped, where):
    """The tutorial-style logs (whole-millisecond stage times, cumulative) are answered
    by the SQL of ``sqlstages`` itself -- not by the general way the agreement test
    above would also accept -- and the simulator's (fractional times) are not."""
    from ttsops.fleet import sqlstages
    from ttsops.fleet.client import connect
    from ttsops.fleet.url import parse_url

    for corpus, sql in (("tut", True), ("sim", False)):
        url = parse_url(shipped[where][corpus])
        c = connect(url)
        try:
            rep = sqlstages.answer(c, url, None, None, 5)
        finally:
            c.disconnect()
        assert (rep is not None) == sql, corpus
        if rep is not None:
            assert rep.data["stage_time"]["cumulative"] > 0
            assert [r["component"] for r in rep.data["rows"]][-1] == "end_to_end"
