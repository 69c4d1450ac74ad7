"""Fleet scale: the logs of many hosts in a ClickHouse database.

``url`` (the ``clickhouse://`` address), ``schema`` (the tables, created when missing,
on every shard of a cluster), ``ship`` (``ttsops logs ship``: each file once, resumable),
``source`` (``--source URL``: a query's records from the database, the counts as SQL).
``clickhouse_driver`` (the optional extra ``clickhouse``) is imported only by ``client``,
and only when a database is used.
"""
