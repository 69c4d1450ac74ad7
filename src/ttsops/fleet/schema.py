"""The tables, created when missing: on one server, or on every shard of a cluster.

``ttsops_logs``: one row per record (and one per line that is no record, ``level = ''``),
a MergeTree partitioned by day and ordered by event and time. The golden fields are
typed columns (the SQL of ``--source`` uses them); ``keys``/``vals`` hold every field as
written (18.16 has no ``Map``: ``vals[indexOf(keys, 'voice')]``); ``text`` is the record
as written, so the Python half of a query reads exactly what the files held. With a
cluster, ``ttsops_logs_local`` is that MergeTree on every shard and ``ttsops_logs`` a
``Distributed`` table over them (rows sharded by file: a batch of one file is one
insert on one shard, which keeps resuming exact).

``ttsops_ids``: the id lookup of ``trace`` -- for each id value records hold in one of
their id fields (``indexformat.ID_KEYS``), per insert and day, the events and the first
and last time it was written with, ordered by the id. ``ttsops_syn``,
``ttsops_stage_hist``, ``ttsops_open``, ``ttsops_stage_recs``: ``stages`` from the
syntheses of each insert (``synsql``, ``sqlstages``). ``ttsops_complete``: the fields of
each ``synthesis_complete`` record as columns, for ``patterns`` (``fieldsql``).
Materialized views on the logs' MergeTree fill them as rows are inserted (on every
shard: ``<name>_local`` there, ``<name>`` a ``Distributed`` table over them). A
database shipped by an older ttsops, which lacks some, gets them on the next ``ship``
(``ensure``: filled from the rows already there, then the views created); until then
``--source`` reads the logs' rows, as before.

``ttsops_ship_ledger`` (on the server of the URL): what ``ship`` sent, per host and
file identity, batch by batch.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from ..indexformat import ID_KEYS
from .client import FleetError, call, connect
from .sqlwhere import lit
from .url import ChUrl

if TYPE_CHECKING:
    from pathlib import Path

TABLE = "ttsops_logs"
LOCAL = "ttsops_logs_local"
LEDGER = "ttsops_ship_ledger"
IDS = "ttsops_ids"

# the golden fields: typed columns beside keys/vals (strings: '' when absent)
STRING_FIELDS = ("id", "request_id", "trace_id", "status", "error_code", "warning_code",
                 "stage", "voice", "lang", "engine", "format", "model_stage", "exc_type")
NUMBER_FIELDS = ("duration_ms", "queue_ms", "elapsed_ms", "text_len")

COLUMNS: list[tuple[str, str]] = [
    ("date", "Date"),
    ("ts", "String"),
    ("host", "String"),
    ("file", "String"),
    ("path", "String"),
    ("file_ts", "String"),
    ("seq", "UInt64"),
    ("offset", "UInt64"),
    ("logger", "String"),
    ("level", "String"),
    ("event", "String"),
    *[(f, "String") for f in STRING_FIELDS],
    *[(f, "Nullable(Float64)") for f in NUMBER_FIELDS],
    ("keys", "Array(String)"),
    ("vals", "Array(String)"),
    ("traceback", "Array(String)"),
    ("text", "String"),
]
NAMES = [c for c, _ in COLUMNS]


def _columns_sql() -> str:
    return ",\n  ".join(f"`{c}` {t}" for c, t in COLUMNS)


def merge_tree(db: str, table: str) -> str:
    return (f"CREATE TABLE IF NOT EXISTS `{db}`.`{table}` (\n  {_columns_sql()}\n) "
            "ENGINE = MergeTree() PARTITION BY date ORDER BY (event, ts)")


def distributed(db: str, cluster: str) -> str:
    return (f"CREATE TABLE IF NOT EXISTS `{db}`.`{TABLE}` AS `{db}`.`{LOCAL}` "
            f"ENGINE = Distributed({cluster}, {db}, {LOCAL}, cityHash64(host, file))")


def ledger(db: str) -> str:
    return (f"CREATE TABLE IF NOT EXISTS `{db}`.`{LEDGER}` (`host` String, `file` String, "
            "`path` String, `offset` UInt64, `records` UInt64, `shipped_at` DateTime) "
            "ENGINE = MergeTree() ORDER BY (host, file)")


def _ids_select(db: str, source: str, where: str = "1") -> str:
    """The lookup rows of the rows of ``source``: per id value and day, the events it
    was written with and its first and last time (a view: per insert)."""
    keys = ", ".join(f"'{k}'" for k in ID_KEYS)
    return (f"SELECT arrayJoin(arrayDistinct(arrayFilter((v, k) -> v != '' AND k IN "
            f"({keys}), vals, keys))) AS idv, groupUniqArray(event) AS events, "
            f"min(ts) AS lo, max(ts) AS hi, date FROM `{db}`.`{source}` WHERE {where} "
            "GROUP BY idv, date")


# the lookups by id: small granules, so that a few hundred ids scattered over the key
# read a few hundred small granules, not most of the table
_FINE = "SETTINGS index_granularity = 256"


class Derived(NamedTuple):
    """A table kept beside the logs: its name, columns and engine, the SELECT of its
    rows from those of the logs' table that meet a condition (or, with ``reads``, from
    all the rows of that derived table: its view is on that table's inserts)."""

    name: str
    body: str
    select: Callable[[str], str]
    reads: str | None = None


def derived(db: str, source: str, chain: str = "view") -> list[Derived]:
    """The tables kept beside the logs of ``source``, in the order they are made.
    ``chain`` (``view_chain``): where a view sees the rows another view writes --
    ``view``, the view itself (18.16), or ``table``, its target table (current servers)."""
    from . import fieldsql as fs
    from . import synsql as st

    blocks = functools.partial(st.block_selects, db, source)
    syn = f"{st.SYN}_view" if chain == "view" else (
        f"{st.SYN}_local" if source == LOCAL else st.SYN)
    return [
        Derived(IDS, "(`idv` String, `events` Array(String), `lo` String, `hi` String, "
                     f"`date` Date) ENGINE = MergeTree() ORDER BY idv {_FINE}",
                functools.partial(_ids_select, db, source)),
        Derived(st.SYN, f"({st.SYN_COLUMNS}) ENGINE = MergeTree() ORDER BY hid {_FINE}",
                lambda w: blocks(w)[st.SYN]),
        # the components of the syntheses the view above makes (joined once per insert)
        Derived(st.HIST, f"({st.HIST_COLUMNS}) ENGINE = SummingMergeTree() "
                         "ORDER BY (host, comp, val)",
                lambda _w: st.hist_of_syn(db, syn), reads=st.SYN),
        Derived(st.OPEN, f"({st.OPEN_COLUMNS}) ENGINE = MergeTree() ORDER BY hid",
                lambda w: blocks(w)[st.OPEN]),
        Derived(st.RECS, f"({st.RECS_COLUMNS}) ENGINE = MergeTree() ORDER BY hid {_FINE}",
                lambda w: blocks(w)[st.RECS]),
        Derived(fs.COMPLETE, f"({fs.COLUMNS}) ENGINE = MergeTree() ORDER BY (date, ts)",
                functools.partial(fs.select, db, source)),
    ]


class State(NamedTuple):
    """What one server holds of a database, asked in one statement (``state``): its
    version, the names of the database's tables, and the definitions of its views."""

    version: str
    names: frozenset[str]
    views: dict[str, str]


def state(c: Any, db: str) -> State:
    rows = call(c, "SELECT version(), groupArray(name), groupArray(if(endsWith(name, "
                   "'_view'), create_table_query, '')) FROM system.tables WHERE "
                   "database = %(d)s", {"d": db})
    version, names, queries = rows[0]
    return State(str(version), frozenset(names),
                 {n: str(q) for n, q in zip(names, queries, strict=True) if q})


def _ensure_derived(c: Any, db: str, source: str, local: bool, st: State) -> None:
    """The derived tables of one server, each filled from the rows there (day by day;
    one that another's view fills, from all of that table), then the view that keeps it
    filled. Without the view (a database of an older ttsops, or an upgrade cut short)
    the table is made again from the rows, and so is a table its view reads, or that
    reads it (``ttsops_stage_hist`` and ``ttsops_syn``: made together, or neither).
    ``st``: the server's state before (``state``); a server that has them all, with
    views made for its kind (``chain``), is sent nothing."""
    tables = derived(db, source, chain(c, db, st.version))
    redo = {t.name for t in tables if f"{t.name}_view" not in st.names}
    for t in tables:  # a view made for the other kind of server sees no rows here
        if t.reads is not None and t.name not in redo and not _reads(st, t):
            redo.add(t.name)
    for t in tables:
        if t.reads is not None and {t.name, t.reads} & redo:
            redo |= {t.name, t.reads}
    days: list[Any] | None = None
    for t in tables:
        if t.name not in redo:
            continue
        target, view = (f"{t.name}_local" if local else t.name), f"{t.name}_view"
        for dep in tables:  # (a view that reads this table goes first)
            if dep.reads == t.name:
                call(c, f"DROP TABLE IF EXISTS `{db}`.`{dep.name}_view`")
        call(c, f"DROP TABLE IF EXISTS `{db}`.`{view}`")
        call(c, f"DROP TABLE IF EXISTS `{db}`.`{target}`")
        call(c, f"CREATE TABLE `{db}`.`{target}` {t.body}")
        if t.reads is not None:
            call(c, f"INSERT INTO `{db}`.`{target}` {t.select('1')}")
        else:
            if days is None:
                days = [r[0] for r in call(c, f"SELECT DISTINCT date FROM `{db}`.`{source}`")]
            for d in days:
                call(c, f"INSERT INTO `{db}`.`{target}` "
                        f"{t.select(f'date = toDate({lit(d.isoformat())})')}",
                     settings={"max_memory_usage": 8_000_000_000})
        call(c, f"CREATE MATERIALIZED VIEW IF NOT EXISTS `{db}`.`{view}` TO `{db}`.`{target}` "
                f"AS {t.select('1')}")


# view_chain's answers by server version: asked once per process, and remembered in
# the user's cache for the next (a live shipper runs a ship every look)
_CHAINS: dict[str, str] = {}


def _chain_file() -> Path:
    from pathlib import Path  # (not at the start of every --source command)

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ttsops" / "fleet" / "view_chain.json"


def _remembered() -> dict[str, str]:
    try:
        got = json.loads(_chain_file().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(got, dict):
        return {}
    return {str(k): v for k, v in got.items() if v in ("view", "table")}


def _remember(version: str, answer: str) -> None:
    """Into the cache file (written whole, then renamed: a reader sees the old or the
    new; a cache that cannot be written is asked again next time)."""
    f = _chain_file()
    try:
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_name(f"{f.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**_remembered(), version: answer}, sort_keys=True))
        os.replace(tmp, f)
    except OSError:
        pass


def chain(c: Any, db: str, version: str) -> str:
    """``view_chain`` of a server of ``version``: how a view chain runs is a matter of
    the server's code, so the answer is asked of the server once per version (per
    process, and once per user's cache: a live shipper's look is a new process), and
    again when the server at the address is another version."""
    got = _CHAINS.get(version) or _remembered().get(version)
    if got is None:
        got = view_chain(c, db)
        _remember(version, got)
    _CHAINS[version] = got
    return got


def view_chain(c: Any, db: str) -> str:
    """Where this server runs a materialized view that reads the rows another view
    writes: on the inserts into that view (``view``: 18.16) or into its target table
    (``table``: current servers; they never run a view whose table is a view). Asked
    of the server itself, with three small tables that are dropped again."""
    import secrets

    p = f"`{db}`.`_ttsops_probe_{secrets.token_hex(4)}"  # (two ships at once: two probes)
    views, tables = (f"{p}_v1`", f"{p}_v2`"), (f"{p}_src`", f"{p}_mid`", f"{p}_out`")

    def drop() -> None:
        for name in (*views, *tables):
            call(c, f"DROP TABLE IF EXISTS {name}")

    drop()
    try:
        for name in tables:
            call(c, f"CREATE TABLE {name} (`x` UInt8) ENGINE = Memory")
        call(c, f"CREATE MATERIALIZED VIEW {views[0]} TO {tables[1]} AS SELECT x FROM "
                f"{tables[0]}")
        call(c, f"CREATE MATERIALIZED VIEW {views[1]} TO {tables[2]} AS SELECT x FROM "
                f"{tables[1]}")
        call(c, f"INSERT INTO {tables[0]} SELECT toUInt8(1)")
        seen = call(c, f"SELECT count() FROM {tables[2]}")[0][0]
    finally:
        drop()
    return "table" if seen else "view"


def _reads(st: State, t: Derived) -> bool:
    """Does the view of ``t`` (which reads another derived table) read what
    ``derived`` reads for this server (``view_chain``)?"""
    have_q = st.views.get(f"{t.name}_view", "").strip()
    want = re.search(r"FROM\s+(\S+)\s*$", t.select("1"))
    have = re.search(r"\bFROM\s+(\S+)\s*$", have_q) if have_q else None
    return bool(want and have and have.group(1).replace("`", "")
                == want.group(1).replace("`", ""))


def has_derived(client: Any, url: ChUrl, *names: str) -> bool:
    """Are the derived tables ``names`` there, complete (made by ``ensure``: last the
    views on one server, or on a cluster the ``Distributed`` tables over the shards')?"""
    want = {n if url.cluster else f"{n}_view" for n in names}
    rows = call(client, "SELECT name FROM system.tables WHERE database = %(d)s AND "
                        "name IN %(t)s", {"d": url.database, "t": tuple(sorted(want))})
    return want <= {r[0] for r in rows}


def has_ids(client: Any, url: ChUrl) -> bool:
    return has_derived(client, url, IDS)


def shards(client: Any, url: ChUrl) -> list[tuple[str, int]]:
    """(address, native port) of every shard of ``url.cluster``, from ``system.clusters``
    (asked once per client)."""
    known = getattr(client, "ttsops_shards", None)
    if known is not None and known[0] == url.cluster:
        return list(known[1])
    rows = call(client, "SELECT host_address, port FROM system.clusters WHERE cluster = "
                        "%(c)s ORDER BY shard_num, replica_num", {"c": url.cluster})
    if not rows:
        raise FleetError(f"{url}: the server knows no cluster {url.cluster!r} "
                         "(remote_servers in its config)")
    got = [(str(h), int(p)) for h, p in rows]
    with contextlib.suppress(AttributeError):  # (a client that takes no attributes)
        client.ttsops_shards = (url.cluster, got)
    return got


def ensure(client: Any, url: ChUrl) -> None:
    """Create the database and tables that are missing (idempotent). Each server is
    asked what it holds in one statement (``state``); one that holds everything, with
    views made for its kind of server, is sent nothing more."""
    db = url.database
    if url.cluster:
        conns = [connect(url, host, port, check=False) for host, port in shards(client, url)]
        try:
            states = []
            for c in conns:
                st = state(c, db)
                if not {LOCAL, TABLE} <= st.names:
                    call(c, f"CREATE DATABASE IF NOT EXISTS `{db}`")
                    call(c, merge_tree(db, LOCAL))
                    call(c, distributed(db, url.cluster))
                _ensure_derived(c, db, LOCAL, local=True, st=st)
                states.append(st)
            for c, st in zip(conns, states, strict=True):
                # last: the mark of complete derived tables (has_derived)
                for name in (t.name for t in derived(db, LOCAL)):
                    if name not in st.names:
                        call(c, f"CREATE TABLE IF NOT EXISTS `{db}`.`{name}` AS "
                                f"`{db}`.`{name}_local` ENGINE = Distributed("
                                f"{url.cluster}, {db}, {name}_local, rand())")
        finally:
            for c in conns:
                c.disconnect()
        call(client, ledger(db))
    else:
        st = state(client, db)
        if TABLE not in st.names:
            call(client, f"CREATE DATABASE IF NOT EXISTS `{db}`")
            call(client, merge_tree(db, TABLE))
        _ensure_derived(client, db, TABLE, local=False, st=st)
        if LEDGER not in st.names:
            call(client, ledger(db))


def settle(client: Any, url: ChUrl, shipped: int = 0) -> None:
    """After a ship (of ``shipped`` rows): the per-block counts of ``stages`` merged
    into one part per server (the server sums them in the background anyway; a query
    then reads a few thousand rows at once, not one batch of them per insert). When
    the ship brought at least half of the logs' rows (a first ship, a backfill), the
    tables ``stages`` looks the spanning ids up in (``ttsops_syn``,
    ``ttsops_stage_recs``) are merged into one part too, on every server at once: a
    lookup reads each part's granule of every id (right after a month's ship, seven
    parts a server). Rewriting them only then costs at most twice the rows shipped
    over the database's life; a smaller ship (a live shipper's rotated file) leaves
    them to the server's background merges."""
    from .synsql import HIST, RECS, SYN

    db = url.database
    suffix = "_local" if url.cluster else ""
    nodes = shards(client, url) if url.cluster else [(None, None)]
    conns = [client if host is None else connect(url, host, port) for host, port in nodes]
    try:
        parts = [{str(t): (int(n), int(r)) for t, n, r in call(
            c, "SELECT table, count(), sum(rows) FROM system.parts WHERE database = "
               "%(d)s AND active AND table IN %(t)s GROUP BY table",
            {"d": db, "t": tuple(f"{n}{suffix}" for n in (TABLE, HIST, SYN, RECS))})}
            for c in conns]
        total = sum(p.get(f"{TABLE}{suffix}", (0, 0))[1] for p in parts)
        merge = (HIST, SYN, RECS) if shipped and 2 * shipped >= total else (HIST,)
        _optimize(db, [(c, f"{n}{suffix}") for c, p in zip(conns, parts, strict=True)
                       for n in merge if p.get(f"{n}{suffix}", (0, 0))[0] > 1])
    finally:
        for c in conns:
            if c is not client:
                c.disconnect()


def _optimize(db: str, todo: list[tuple[Any, str]]) -> None:
    """``OPTIMIZE TABLE ... FINAL`` of (connection, table) pairs: each server's in
    turn, the servers at once (a thread each)."""
    import threading

    by: dict[int, list[tuple[Any, str]]] = {}
    for c, name in todo:
        by.setdefault(id(c), []).append((c, name))
    errors: list[BaseException] = []

    def run(items: list[tuple[Any, str]]) -> None:
        try:
            for c, name in items:
                call(c, f"OPTIMIZE TABLE `{db}`.`{name}` FINAL")
        except BaseException as e:  # (raised in the caller's thread below)
            errors.append(e)

    threads = [threading.Thread(target=run, args=(items,)) for items in by.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def exists(client: Any, url: ChUrl) -> bool:
    rows = call(client, "SELECT count() FROM system.tables WHERE database = %(d)s AND "
                        "name = %(t)s", {"d": url.database, "t": TABLE})
    return bool(rows and rows[0][0])
