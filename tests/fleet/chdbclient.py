"""A current ClickHouse engine for the tests, in this process: ``chdb`` (embedded
ClickHouse, the engine of current servers; no server process, no port) behind the two
calls the fleet code makes of a ``clickhouse_driver.Client``: ``execute(sql, params)``
(results as the driver gives them: tuples of Python values, through Arrow) and, for
``ship``, an insert of the blocks ``fleet.native`` encodes (written as a ``Native``
file and inserted from it, so the current engine parses the same bytes). Used to run
the SQL of ``--source`` and of the tables ``ship`` keeps on a current engine as well
as on Debian's 18.16 (``test_current_engine``)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar


class ChdbClient:
    """One chdb session (a data directory of its own) that answers like the driver."""

    def __init__(self, path: Path) -> None:
        from chdb import session

        self.path = path
        self.session = session.Session(str(path))
        self.ttsops_addr = f"chdb:{path}"
        self.version = self.execute("SELECT version()")[0][0]

    def execute(self, sql: str, params: Any = None, **_kw: Any) -> list[tuple[Any, ...]]:
        import pyarrow as pa
        from clickhouse_driver.util.escape import escape_param, escape_params

        if isinstance(params, list):  # INSERT ... VALUES of these rows
            sql += " " + ", ".join(
                "(" + ", ".join(str(escape_param(v, _Context())) for v in row) + ")"
                for row in params)
        elif params:
            sql = sql % escape_params(params, _Context())
        got = self.session.query(sql, "Arrow")
        data = got.bytes()
        if not data:
            return []
        table = pa.ipc.open_file(pa.BufferReader(data)).read_all()
        cols = [table.column(i).to_pylist() for i in range(table.num_columns)]
        return list(zip(*cols, strict=True))

    def execute_iter(self, sql: str, params: Any = None, **kw: Any) -> Iterator[tuple[Any, ...]]:
        return iter(self.execute(sql, params, **kw))

    def insert_block(self, table: str, n_rows: int, columns: list[tuple[str, str, bytes]]
                     ) -> None:
        """``INSERT`` of one block of ``fleet.native`` columns: the current engine reads
        them as its ``Native`` format (the protocol's block without its packet head)."""
        from ttsops.fleet.wire import varint

        with tempfile.NamedTemporaryFile(dir=self.path, suffix=".native", delete=False) as f:
            f.write(varint(len(columns)) + varint(n_rows))
            for name, typ, data in columns:
                for s in (name, typ):
                    b = s.encode()
                    f.write(varint(len(b)) + b)
                f.write(data)
        names = ", ".join(f"`{n}`" for n, _t, _d in columns)
        structure = ", ".join(f"`{n}` {t}" for n, t, _d in columns)
        try:
            self.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM "
                         f"file('{f.name}', Native, '{structure}')")
        finally:
            Path(f.name).unlink()

    def disconnect(self) -> None:
        pass

    def close(self) -> None:
        self.session.close()


class _Context:
    """What the driver's parameter escaping asks of a connection's context."""

    class server_info:
        @staticmethod
        def get_timezone() -> str:
            return "UTC"

    client_settings: ClassVar[dict[str, Any]] = {}
