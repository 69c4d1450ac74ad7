"""The one place that talks to ClickHouse: ``clickhouse_driver`` (native protocol: works
with Debian's 18.16 as with current servers), imported when first used."""

from __future__ import annotations

from typing import Any, NoReturn

from .url import ChUrl


class FleetError(Exception):
    """No answer from the database (not installed, unreachable, refused): one line, exit 2.
    ``code``: the server's error code, when the server refused the statement (60: no
    such table, 81: no such database)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


UNKNOWN_TABLE = 60
UNKNOWN_DATABASE = 81


def unknown_table(e: FleetError) -> bool:
    """Was ``e`` the server saying that a table (or the database) of the statement is
    not there?"""
    return e.code in (UNKNOWN_TABLE, UNKNOWN_DATABASE)


def connect(url: ChUrl, host: str | None = None, port: int | None = None,
            database: str = "default", check: bool = True, light: bool = False) -> Any:
    """A connected ``clickhouse_driver.Client`` (to ``url``'s server, or to ``host:port``
    with ``url``'s credentials: a shard). Its database is ``default``: every statement
    names ``url.database`` itself (it may not exist yet). With ``check`` false, no
    ``SELECT 1`` is sent: the connection is made by the first statement (a query of
    one statement: one round trip fewer), whose errors ``call`` turns into the same
    ``FleetError``. ``light``: a client for queries (``Light``) that does not import the
    driver unless it must (``--source``'s commands: a third of their CPU)."""
    if light:
        return Light(url, host, port, database)
    import logging
    import os

    # the driver's Date column builds a table of every day 1900..2299 on import (half a
    # second of every command); lazily, it holds the days it meets. The driver reads the
    # variable when it is imported: set for that import only, so that the environment of
    # the process (a library caller's, and every process it starts) is left as it was
    lut = "CLICKHOUSE_DRIVER_LASY_DATE_LUT"
    added = lut not in os.environ
    if added:
        os.environ[lut] = "2024-01-01:2024-01-02"
    # the driver logs a failed connection with its traceback; the error below says it
    logging.getLogger("clickhouse_driver").setLevel(logging.CRITICAL)
    try:
        from clickhouse_driver import Client
    except ImportError:
        raise FleetError("ClickHouse support is not installed: pip install "
                         "'ttsops[clickhouse]' (clickhouse-driver)") from None
    finally:
        if added:
            os.environ.pop(lut, None)
    client = Client(host or url.host, port=port or url.port, user=url.user,
                    password=url.password, database=database,
                    connect_timeout=5, send_receive_timeout=300,
                    settings={"insert_distributed_sync": 1})
    client.ttsops_addr = f"{host or url.host}:{port or url.port}"
    if check:
        call(client, "SELECT 1")
    return client


class Light:
    """The queries' client: ``wire`` (the native protocol without the driver) until it
    meets what it does not read (``wire.Unsupported``), then the driver for that
    statement and the rest. Answers ``execute`` and ``execute_iter`` as the driver."""

    def __init__(self, url: ChUrl, host: str | None, port: int | None, database: str) -> None:
        from .wire import Wire

        self.where = (url, host, port, database)
        self.wire = Wire(host or url.host, port or url.port, url.user, url.password,
                         database)
        self.driver: Any = None
        self.ttsops_addr = f"{host or url.host}:{port or url.port}"

    def _to_driver(self) -> Any:
        self.wire.disconnect()
        if self.driver is None:
            url, host, port, database = self.where
            self.driver = connect(url, host, port, database, check=False)
        return self.driver

    def execute(self, sql: str, params: Any = None, **kw: Any) -> Any:
        from .wire import Unsupported

        if self.driver is None:
            try:
                return self.wire.execute(sql, params, kw.get("settings"))
            except Unsupported:
                pass
        return self._to_driver().execute(sql, params, **kw)

    def execute_iter(self, sql: str, params: Any = None, **kw: Any) -> Any:
        import itertools

        from .wire import Unsupported

        if self.driver is None:
            try:
                rows = self.wire.execute_iter(sql, params, kw.get("settings"))
                first = next(rows, None)  # (what it does not read is met here)
            except Unsupported:
                pass
            else:
                return iter(()) if first is None else itertools.chain([first], rows)
        return self._to_driver().execute_iter(sql, params, **kw)

    def disconnect(self) -> None:
        self.wire.disconnect()
        if self.driver is not None:
            self.driver.disconnect()


def call(client: Any, sql: str, params: Any = None, where: str = "", **kw: Any) -> Any:
    """``client.execute`` with the driver's errors as ``FleetError`` (one line)."""
    try:
        return client.execute(sql, params, **kw)
    except Exception as e:
        call_error(client, e, where)


def call_error(client: Any, e: Exception, where: str = "") -> NoReturn:
    """Raise the driver's error ``e`` as ``FleetError`` (one line); another error as it is."""
    from . import wire

    if isinstance(e, wire.NetworkError):
        raise FleetError(f"cannot reach ClickHouse at {where or _addr(client)}: "
                         f"{_first_line(e)}") from None
    if isinstance(e, wire.ServerError):
        raise FleetError(f"ClickHouse {where or _addr(client)}: {_first_line(e)}",
                         e.code) from None
    if isinstance(e, OSError | EOFError):
        raise FleetError(f"ClickHouse {where or _addr(client)}: {_first_line(e)}") from None
    from clickhouse_driver import errors

    if isinstance(e, errors.NetworkError):
        raise FleetError(f"cannot reach ClickHouse at {where or _addr(client)}: "
                         f"{_first_line(e)}") from None
    if isinstance(e, errors.ServerException):
        raise FleetError(f"ClickHouse {where or _addr(client)}: {_first_line(e)}",
                         getattr(e, "code", None)) from None
    if isinstance(e, (errors.Error, OSError, EOFError)):
        raise FleetError(f"ClickHouse {where or _addr(client)}: {_first_line(e)}") from None
    raise e


def _addr(client: Any) -> str:
    return str(getattr(client, "ttsops_addr", "?"))


def _first_line(e: BaseException) -> str:
    msg = str(getattr(e, "message", "") or e).strip()
    line = msg.splitlines()[0] if msg else type(e).__name__
    return line[:300]
