"""The fields ``patterns`` asks about, as written, one column each: SQL shared by the
table ``ship`` keeps beside the logs (``schema.derived``: ``ttsops_complete``, one row
per ``synthesis_complete`` record, filled by a materialized view) and by
``patterns --source`` (``sqlpatterns``), which reads it, or the logs' ``keys``/``vals``
where it is missing.

On 18.16 a field that is no golden column is ``vals[indexOf(keys, 'f')]``: every
``synthesis_complete`` row's two arrays read and decompressed (most of ``patterns``'
time on a month). Here each field of a synthesis's complete record
(``patterns.COMPLETE_FIELDS``) is a ``String`` column of its value as written
(``v_<field>``, '' when absent) with a ``UInt8`` saying whether it was there
(``h_<field>``: absent is kept apart from empty); the pseudo-fields (``day``, ``hour``,
...: from the record's time, level, event, logger) hold what ``filters.with_pseudo``
gives, a field of that name winning. A query reads the few columns it groups by.

``FIELDS`` is the table's layout: a database keeps the table it was given, so a field
added to ``COMPLETE_FIELDS`` later is answered the general way (``covers``) until the
table is made anew under another name.
"""

from __future__ import annotations

from .sqlwhere import lit

COMPLETE = "ttsops_complete"

# the pseudo-fields of a record (filters.with_pseudo): from its time, level, event, logger
PSEUDO = {"ts": "ts", "level": "level", "event": "event", "logger": "logger",
          "day": "substring(ts, 1, 10)", "hour": "substring(ts, 1, 13)",
          "minute": "substring(ts, 1, 16)"}
# the fields of the table (patterns.COMPLETE_FIELDS when it was made; a test holds them)
FIELDS = ("id", "request_id", "trace_id", "status", "duration_ms", "queue_ms", "text_len",
          "audio_size_kb", "rtf", "cache_hit", "cache_saved", "model_stage", "error_code",
          "ts", "level", "event", "logger", "hour", "minute", "day")


def value(f: str, n: int | None = None) -> tuple[str, str]:
    """(is ``f`` present, its value) as SQL on the logs' ``keys``/``vals``, for a
    record's fields with pseudo-fields; with ``n`` its index in ``keys`` (0 when absent)
    is named ``i<n>``."""
    at = f"indexOf(keys, {lit(f)})" if n is None else f"(indexOf(keys, {lit(f)}) AS i{n})"
    i = at if n is None else f"i{n}"
    if f in PSEUDO:  # a field of that name wins (setdefault)
        return "1", f"if({at} > 0, vals[{i}], {PSEUDO[f]})"
    return f"{at} > 0", f"vals[{i}]"  # vals[0]: ''


def column(f: str) -> tuple[str, str]:
    """(is ``f`` present, its value) as SQL on ``COMPLETE``'s columns."""
    return ("1" if f in PSEUDO else f"h_{f}"), f"v_{f}"


def covers(fields: list[str]) -> bool:
    """Does ``COMPLETE`` hold these fields?"""
    return set(fields) <= set(FIELDS)


COLUMNS = ", ".join(["`date` Date", "`ts` String", "`host` String",
                     *(f"`h_{f}` UInt8" for f in FIELDS if f not in PSEUDO),
                     *(f"`v_{f}` String" for f in FIELDS)])


def select(db: str, source: str, where: str = "1") -> str:
    """``COMPLETE``'s rows from the rows of ``source`` (a view's block, or the rows
    already there when a database of an older ttsops is upgraded)."""
    cols = ["date", "ts", "host"]
    for f in FIELDS:
        if f not in PSEUDO:
            cols.append(f"toUInt8({value(f)[0]}) AS h_{f}")
    cols += [f"{value(f)[1]} AS v_{f}" for f in FIELDS]
    return (f"SELECT {', '.join(cols)} FROM `{db}`.`{source}` "
            f"WHERE event = 'synthesis_complete' AND {where}")
