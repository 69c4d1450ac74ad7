"""Insert blocks encoded here, column by column, from Polars' buffers: ClickHouse's
native format written with numpy, without a Python object per value.

``clickhouse_driver`` encodes an insert from Python lists, item by item (a ``str`` per
value, a ``list`` per array); a ship's columns come from Polars, so turning them into
lists and the driver's encoding of those lists was most of the shipper's CPU. The
format (the same on 18.16 and current servers): a ``String`` is a varint length and the
bytes; ``Array(T)`` the cumulative sizes (``UInt64``) and then the items as a column of
``T``; ``Nullable(T)`` a byte per row (1: null) and then the values; ``Date`` days since
1970 (``UInt16``); numbers little-endian. ``insert`` sends such a block through the
driver's connection (the driver's own code for the query, the server's sample block,
the end of the insert and its errors); only the data packet is written here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from .wire import varint

Column = tuple[str, str, bytes]  # (name, ClickHouse type, the column's encoded data)
_EPOCH = dt.date(1970, 1, 1)


def strings(s: Any) -> bytes:
    """A Polars ``String`` series (no nulls) as a native ``String`` column."""
    import polars as pl

    n = len(s)
    if n == 0:
        return b""
    size = s.str.len_bytes().to_numpy().astype(np.int64)
    data = np.frombuffer(s.str.join("").cast(pl.Binary).item(), np.uint8)
    return _interleave(size, data)


def _interleave(size: Any, data: Any) -> bytes:
    """Each item's varint length before its bytes (``data``: the items' bytes, in
    order, ``size`` each)."""
    width = 1 + sum((size >= (1 << (7 * k))).astype(np.int64) for k in range(1, 5))
    rec = width + size
    start = np.cumsum(rec) - rec
    total = int(rec.sum())
    out = np.empty(total, np.uint8)
    if bool((size == 1).all()):  # every item one byte long
        out[0::2] = size
        out[1::2] = data
        return out.tobytes()
    heads = np.zeros(total, np.bool_)
    for k in range(int(width.max())):
        sel = width > k
        at = start[sel] + k
        b = (size[sel] >> (7 * k)) & 0x7F
        b |= (width[sel] > k + 1) * 0x80
        out[at] = b
        heads[at] = True
    out[~heads] = data
    return out.tobytes()


def same_string(value: str, n: int) -> bytes:
    """``n`` times ``value`` as a native ``String`` column."""
    b = value.encode()
    return (varint(len(b)) + b) * n


def string_arrays(s: Any) -> bytes:
    """A Polars ``List(String)`` series (no null lists or items) as ``Array(String)``."""
    import polars as pl

    if len(s) == 0:
        return b""
    sizes = s.list.len().fill_null(0).to_numpy().astype("<u8")
    items = s.explode(empty_as_null=False, keep_nulls=False).drop_nulls().cast(pl.String)
    return np.cumsum(sizes, dtype="<u8").tobytes() + strings(items)


def nullable_floats(s: Any) -> bytes:
    """A Polars ``Float64`` series as ``Nullable(Float64)``."""
    nulls = s.is_null().to_numpy().astype(np.uint8)
    vals = s.fill_null(0.0).to_numpy().astype("<f8")
    return nulls.tobytes() + vals.tobytes()


def uint64s(values: Any) -> bytes:
    return np.asarray(values, dtype="<u8").tobytes()


def dates(day: dt.date, n: int) -> bytes:
    return np.full(n, (day - _EPOCH).days, "<u2").tobytes()


class Mismatch(Exception):
    """The table's columns are not those encoded (a table made by another program)."""


def insert(client: Any, query: str, n_rows: int, columns: list[Column]) -> None:
    """``INSERT ... VALUES`` of one block of ``n_rows`` rows, already encoded, through
    ``client`` (a ``clickhouse_driver.Client``; no compression). The server's sample
    block must name the same columns and types, in order (``Mismatch``, before any row
    is sent: the insert is cancelled by the disconnect)."""
    from clickhouse_driver import defines
    from clickhouse_driver.block import BlockInfo, ColumnOrientedBlock
    from clickhouse_driver.protocol import ClientPacketTypes
    from clickhouse_driver.varint import write_varint
    from clickhouse_driver.writer import write_binary_str, write_binary_uint8

    with client.disconnect_on_error(query, None):
        conn = client.connection
        if conn.compression:
            raise Mismatch("compressed connection")
        conn.send_query(query)
        conn.send_external_tables(None)
        sample = client.receive_sample_block()
        want = [(name, typ) for name, typ, _data in columns]
        got = list(sample.columns_with_types) if sample is not None else []
        if got != want:
            first = next((i for i, (g, w) in enumerate(zip(got, want, strict=False))
                          if g != w),
                         min(len(got), len(want)))
            have = " ".join(got[first]) if first < len(got) else "nothing"
            need = " ".join(want[first]) if first < len(want) else "nothing"
            raise Mismatch(f"the table's columns are not ttsops' (column {first + 1}: "
                           f"{have}, not {need})")
        rev = conn.server_info.used_revision
        out = conn.fout
        write_varint(ClientPacketTypes.DATA, out)
        if rev >= defines.DBMS_MIN_REVISION_WITH_TEMPORARY_TABLES:
            write_binary_str("", out)
        if rev >= defines.DBMS_MIN_REVISION_WITH_BLOCK_INFO:
            BlockInfo().write(out)
        write_varint(len(columns), out)
        write_varint(n_rows, out)
        for name, typ, data in columns:
            write_binary_str(name, out)
            write_binary_str(typ, out)
            if rev >= defines.DBMS_MIN_REVISION_WITH_CUSTOM_SERIALIZATION:
                write_binary_uint8(0, out)
            out.write(data)
        out.flush()
        client.receive_profile_events()
        conn.send_data(ColumnOrientedBlock())  # the end of the data
        client.receive_profile_events()
        client.receive_end_of_insert_query()
