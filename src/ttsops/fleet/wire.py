"""A small client of ClickHouse's native protocol for the queries of ``--source``:
``execute`` and ``execute_iter`` as ``clickhouse_driver.Client`` answers them (rows as
tuples: ``String`` a ``str``, numbers ``int``/``float``, ``Date`` a ``datetime.date``,
``Nullable`` ``None``, ``Array`` a ``list``, ``Tuple`` a ``tuple``), without importing
the driver: its import is ~80 ms of CPU, half of what a query command costs the client
(``trace --source`` reads three rows).

It speaks the protocol of revision 54213 -- answered in its plainest form (no
compression, no server logs, profile events, or settings as strings: a server answers
in the client's revision) -- over a plain socket.
What it does not read (a type not above, a packet it does not know, a hello refused
or cut off -- a server that might not take this revision, or wrong credentials: the
driver's answer is the one said --, a setting it cannot write) raises ``Unsupported``
before a row is returned, and the caller's ``Light`` client answers that statement and
the rest with the driver. It is tested against 18.16 only (no current server runs
here; ``chdb`` has no port). Errors of the server are ``ServerError`` (code and
message), a lost connection ``NetworkError``; ``client.call`` turns both into
``FleetError``."""

from __future__ import annotations

import datetime as dt
import socket
import struct
from collections.abc import Iterator
from typing import Any

REVISION = 54213  # the client's protocol revision (see above)
_WITH_TEMP_TABLES = 50264
_WITH_TOTAL_ROWS = 51554
_WITH_BLOCK_INFO = 51903
_WITH_CLIENT_INFO = 54032
_WITH_TIMEZONE = 54058
_WITH_QUOTA_KEY = 54060
# settings the client writes (before revision 54429 a setting is written as its type)
_SETTINGS = {"max_block_size": "uint", "max_memory_usage": "uint",
             "distributed_product_mode": "str"}
_EPOCH = dt.date(1970, 1, 1)
_NUMBERS = {"UInt8": "B", "UInt16": "H", "UInt32": "I", "UInt64": "Q", "Int8": "b",
            "Int16": "h", "Int32": "i", "Int64": "q", "Float32": "f", "Float64": "d"}


class Unsupported(Exception):
    """Something this client does not read (the driver answers instead)."""


class ServerError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NetworkError(Exception):
    pass


class Wire:
    """One connection (made at the first statement)."""

    def __init__(self, host: str, port: int, user: str, password: str,
                 database: str = "default", connect_timeout: float = 5,
                 timeout: float = 300) -> None:
        self.addr = (host, port)
        self.login = (database, user, password)
        self.timeouts = (connect_timeout, timeout)
        self.sock: socket.socket | None = None
        self.buf = b""
        self.pos = 0
        self.revision = REVISION

    # -- the connection
    def _connect(self) -> None:
        try:
            host, port = self.addr
            # (an ASCII name as bytes: a str is encoded by the idna codec, whose import
            # -- stringprep, unicodedata -- is a few ms of every command)
            name: str | bytes = host.encode() if host.isascii() else host
            self.sock = socket.create_connection(
                (name, port), timeout=self.timeouts[0])  # type: ignore[arg-type]
            self.sock.settimeout(self.timeouts[1])
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:
            self.sock = None
            raise NetworkError(f"{e.strerror or e} ({self.addr[0]}:{self.addr[1]})") from None
        try:
            self._hello()
        except (NetworkError, ServerError) as e:
            # refused or cut off after the connection was made: a server that may not
            # take this revision (or the credentials); the driver asks again, and its
            # answer is the one said
            self.disconnect()
            raise Unsupported(f"hello: {e}") from None

    def _hello(self) -> None:
        db, user, password = self.login
        out = bytearray()
        _uv(out, 0)
        for s in ("ttsops",):
            _str(out, s)
        for v in (1, 0, REVISION):
            _uv(out, v)
        for s in (db, user, password):
            _str(out, s)
        self._send(out)
        kind = self._uvarint()
        if kind == 2:
            raise self._exception()
        if kind != 0:
            raise NetworkError(f"hello answered with packet {kind}")
        self._string()
        self._uvarint()
        self._uvarint()
        server_rev = self._uvarint()
        self.revision = min(server_rev, REVISION)
        if self.revision >= _WITH_TIMEZONE:
            self._string()

    def disconnect(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None
                self.buf, self.pos = b"", 0

    def _send(self, data: bytes | bytearray) -> None:
        assert self.sock is not None
        try:
            self.sock.sendall(data)
        except OSError as e:
            self.disconnect()
            raise NetworkError(str(e)) from None

    def _fill(self, n: int) -> None:
        """At least ``n`` bytes unread in ``buf``."""
        assert self.sock is not None
        have = len(self.buf) - self.pos
        chunks = [self.buf[self.pos:]] if have else []
        while have < n:
            try:
                got = self.sock.recv(max(65536, n - have))
            except OSError as e:
                self.disconnect()
                raise NetworkError(str(e)) from None
            if not got:
                self.disconnect()
                raise NetworkError("the server closed the connection")
            chunks.append(got)
            have += len(got)
        self.buf, self.pos = b"".join(chunks), 0

    def _take(self, n: int) -> bytes:
        if len(self.buf) - self.pos < n:
            self._fill(n)
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def _uvarint(self) -> int:
        shift = result = 0
        while True:
            if self.pos >= len(self.buf):
                self._fill(1)
            b = self.buf[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result
            shift += 7

    def _string(self) -> str:
        return self._take(self._uvarint()).decode("utf-8", "replace")

    # -- statements
    def execute(self, sql: str, params: Any = None, settings: dict[str, Any] | None = None,
                **_kw: Any) -> list[tuple[Any, ...]]:
        return list(self.execute_iter(sql, params, settings))

    def execute_iter(self, sql: str, params: Any = None,
                     settings: dict[str, Any] | None = None, **_kw: Any
                     ) -> Iterator[tuple[Any, ...]]:
        if params:
            sql = sql % {k: _literal(v) for k, v in params.items()}
        if self.sock is None:
            self._connect()
        self._query(sql, settings or {})
        return self._rows()

    def _query(self, sql: str, settings: dict[str, Any]) -> None:
        rev = self.revision
        out = bytearray()
        _uv(out, 1)  # Query
        _str(out, "")  # query id
        if rev >= _WITH_CLIENT_INFO:
            out.append(1)  # initial query
            for s in ("", "", "0.0.0.0:0"):
                _str(out, s)
            out.append(1)  # TCP
            for s in ("", socket.gethostname(), "ttsops"):
                _str(out, s)
            for v in (1, 0, REVISION):
                _uv(out, v)
            if rev >= _WITH_QUOTA_KEY:
                _str(out, "")
        for name, value in settings.items():
            kind = _SETTINGS.get(name)
            if kind is None:
                raise Unsupported(f"setting {name}")
            _str(out, name)
            if kind == "uint":
                _uv(out, int(value))
            else:
                _str(out, str(value))
        _str(out, "")  # the end of the settings
        _uv(out, 2)  # stage: complete
        _uv(out, 0)  # no compression
        _str(out, sql)
        _uv(out, 2)  # an empty Data block: no external tables
        if rev >= _WITH_TEMP_TABLES:
            _str(out, "")
        if rev >= _WITH_BLOCK_INFO:
            out += b"\x01\x00\x02\xff\xff\xff\xff\x00"
        out += b"\x00\x00"
        self._send(out)

    def _rows(self) -> Iterator[tuple[Any, ...]]:
        """The rows of the statement sent, block by block, to its end of stream. A
        surprise before the first row is ``Unsupported`` (the connection closed)."""
        sent = False
        try:
            while True:
                kind = self._uvarint()
                if kind == 1:  # Data
                    cols = self._block()
                    if cols and cols[0]:
                        sent = True
                        yield from zip(*cols, strict=True)
                elif kind == 2:
                    raise self._exception()
                elif kind == 3:  # Progress
                    self._uvarint()
                    self._uvarint()
                    if self.revision >= _WITH_TOTAL_ROWS:
                        self._uvarint()
                elif kind == 5:  # end of stream
                    return
                elif kind == 6:  # profile info
                    for _ in range(3):
                        self._uvarint()
                    self._take(1)
                    self._uvarint()
                    self._take(1)
                elif kind in (7, 8):  # totals, extremes: not asked for
                    self._block()
                else:
                    raise Unsupported(f"packet {kind}")
        except Unsupported:
            self.disconnect()
            if sent:
                raise NetworkError("unexpected data from the server") from None
            raise
        except ServerError:
            raise
        except GeneratorExit:  # the reader stopped: the rest is not read
            self.disconnect()
            raise

    def _exception(self) -> ServerError:
        code = struct.unpack("<i", self._take(4))[0]
        name = self._string()
        # (the driver's ServerException.message: the name unless it is DB::Exception)
        message = ("" if name == "DB::Exception" else f"{name}. ") + self._string()
        self._string()
        nested = self._take(1)[0]
        while nested:  # (the first is the one said)
            self._take(4)
            for _ in range(3):
                self._string()
            nested = self._take(1)[0]
        return ServerError(code, message)

    def _block(self) -> list[list[Any]]:
        if self.revision >= _WITH_TEMP_TABLES:
            self._string()
        if self.revision >= _WITH_BLOCK_INFO:
            while True:
                field = self._uvarint()
                if field == 0:
                    break
                self._take(1 if field == 1 else 4)
        ncols = self._uvarint()
        nrows = self._uvarint()
        cols = []
        for _ in range(ncols):
            self._string()
            typ = self._string()
            cols.append(self._column(typ, nrows))
        return cols

    def _column(self, typ: str, n: int) -> list[Any]:
        if typ == "String":
            return self._strings(n)
        code = _NUMBERS.get(typ)
        if code is not None:
            return list(struct.unpack(f"<{n}{code}", self._take(n * struct.calcsize(code))))
        if typ == "Date":
            days = struct.unpack(f"<{n}H", self._take(2 * n))
            return [_EPOCH + dt.timedelta(days=d) for d in days]
        if typ.startswith("Nullable(") and typ.endswith(")"):
            nulls = self._take(n)
            vals = self._column(typ[9:-1], n)
            return [None if nulls[i] else v for i, v in enumerate(vals)]
        if typ.startswith("Array(") and typ.endswith(")"):
            ends = struct.unpack(f"<{n}Q", self._take(8 * n))
            items = self._column(typ[6:-1], ends[-1] if n else 0)
            out, at = [], 0
            for e in ends:
                out.append(items[at:e])
                at = e
            return out
        if typ.startswith("Tuple(") and typ.endswith(")"):
            parts = [self._column(t, n) for t in _split(typ[6:-1])]
            return list(zip(*parts, strict=True))
        raise Unsupported(f"type {typ}")

    def _strings(self, n: int) -> list[Any]:
        out: list[Any] = []
        add = out.append
        for _ in range(n):
            size = self._uvarint()
            b = self._take(size)
            try:
                add(b.decode())
            except UnicodeDecodeError:  # (as the driver gives it)
                add(b)
        return out


def _split(types: str) -> list[str]:
    """The types of ``Tuple(...)``'s inside, split at the top-level commas."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(types):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(types[start:i].strip())
            start = i + 1
    out.append(types[start:].strip())
    if any(" " in t for t in out):  # named elements (``Tuple(a String)``)
        raise Unsupported(f"type Tuple({types})")
    return out


def varint(v: int) -> bytes:
    """``v`` (>= 0) as the native protocol's unsigned LEB128 varint."""
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _uv(out: bytearray, v: int) -> None:
    out += varint(v)


def _str(out: bytearray, s: str) -> None:
    b = s.encode()
    _uv(out, len(b))
    out += b


def _literal(v: Any) -> str:
    """A parameter as the driver writes it into the statement."""
    if isinstance(v, str):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, tuple):
        return "(" + ", ".join(_literal(x) for x in v) + ")"
    if isinstance(v, list):
        return "[" + ", ".join(_literal(x) for x in v) + "]"
    raise Unsupported(f"parameter {type(v).__name__}")
