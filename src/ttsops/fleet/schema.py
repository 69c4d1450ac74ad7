"""The tables, created when missing: on one server, or on every shard of a cluster.

``ttsops_logs``: one row per record (and one per line that is no record, ``level = ''``),
a MergeTree partitioned by day and ordered by event and time. The golden fields are
typed columns (the SQL of ``--source`` uses them); ``keys``/``vals`` hold every field as
written (18.16 has no ``Map``: ``vals[indexOf(keys, 'voice')]``); ``text`` is the record
as written, so the Python half of a query reads exactly what the files held. With a
cluster, ``ttsops_logs_local`` is that MergeTree on every shard and ``ttsops_logs`` a
``Distributed`` table over them (rows sharded by file: a batch of one file is one
insert on one shard, which keeps resuming exact).

``ttsops_ship_ledger`` (on the server of the URL): what ``ship`` sent, per host and
file identity, batch by batch.
"""

from __future__ import annotations

from typing import Any

from .client import FleetError, call, connect
from .url import ChUrl

TABLE = "ttsops_logs"
LOCAL = "ttsops_logs_local"
LEDGER = "ttsops_ship_ledger"

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


def shards(client: Any, url: ChUrl) -> list[tuple[str, int]]:
    """(address, native port) of every shard of ``url.cluster``, from ``system.clusters``."""
    rows = call(client, "SELECT host_address, port FROM system.clusters WHERE cluster = "
                        "%(c)s ORDER BY shard_num, replica_num", {"c": url.cluster})
    if not rows:
        raise FleetError(f"{url}: the server knows no cluster {url.cluster!r} "
                         "(remote_servers in its config)")
    return [(str(h), int(p)) for h, p in rows]


def ensure(client: Any, url: ChUrl) -> None:
    """Create the database and tables that are missing (idempotent)."""
    db = url.database
    if url.cluster:
        for host, port in shards(client, url):
            c = connect(url, host, port)
            call(c, f"CREATE DATABASE IF NOT EXISTS `{db}`")
            call(c, merge_tree(db, LOCAL))
            call(c, distributed(db, url.cluster))
            c.disconnect()
    else:
        call(client, f"CREATE DATABASE IF NOT EXISTS `{db}`")
        call(client, merge_tree(db, TABLE))
    call(client, ledger(db))


def exists(client: Any, url: ChUrl) -> bool:
    rows = call(client, "SELECT count() FROM system.tables WHERE database = %(d)s AND "
                        "name = %(t)s", {"d": url.database, "t": TABLE})
    return bool(rows and rows[0][0])
