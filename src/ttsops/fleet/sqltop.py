"""``logs top errors|warnings --source``: the codes' counts, first and last seen, their
``where`` and events as ``GROUP BY``s in the database (the file engine's ``top``
report, built from the grouped rows). One host only: the example id and the order of
equal ``where`` counts follow the reading order, which for one host is its files'
order (the first record's time) and the records' order in them; several hosts go the
general way (``source``)."""

from __future__ import annotations

from typing import Any

from .client import call
from .schema import TABLE
from .url import ChUrl

_LEVELS = {"errors": ("ERROR", "CRITICAL"), "warnings": ("WARNING",)}
# the reading order of one host's rows, as a string that sorts like it
_KEY = ("concat(file_ts, '|', file, '|', reverse(substring(reverse(concat("
        "'00000000000000000000', toString(seq))), 1, 20)))")


def _code(kind: str) -> str:
    fallback = "if(event != '', concat('(', event, ')'), '(no code)')"
    if kind == "errors":
        return f"if(error_code != '', error_code, {fallback})"
    return (f"if(warning_code != '', warning_code, if(error_code != '', error_code, "
            f"{fallback}))")


def hosts(client: Any, url: ChUrl) -> int:
    return int(call(client, f"SELECT uniqExact(host) FROM `{url.database}`.`{TABLE}`")[0][0])


def report(client: Any, url: ChUrl, since: str | None, until: str | None, kind: str,
           top: int) -> Any:
    from ..forensics.analyses.answer import Report, Table
    from ..forensics.analyses.top import hint
    from .sqlwhere import where_sql

    table = f"`{url.database}`.`{TABLE}`"
    levels = ", ".join(f"'{x}'" for x in _LEVELS[kind])
    where = where_sql(since, until, [f"level IN ({levels})"])
    code = _code(kind)
    idv = "if(id != '', id, request_id)"
    codes = call(client, f"""
        SELECT {code} AS c, count(), min(ts), max(ts), argMinIf({idv}, {_KEY}, {idv} != '')
        FROM {table} WHERE {where} GROUP BY c""")
    wheres = call(client, f"""
        SELECT {code} AS c, vals[indexOf(keys, 'where')] AS w, count(), min({_KEY})
        FROM {table} WHERE {where} AND w != '' GROUP BY c, w""")
    events = call(client, f"""
        SELECT {code} AS c, event, count(), min({_KEY})
        FROM {table} WHERE {where} GROUP BY c, event""")
    by_where: dict[str, list[tuple[int, str, str]]] = {}
    for c, w, n, first in wheres:
        by_where.setdefault(c, []).append((int(n), first, w))
    by_event: dict[str, list[tuple[str, str, int]]] = {}
    for c, ev, n, first in events:
        by_event.setdefault(c, []).append((first, ev, int(n)))
    total = sum(int(r[1]) for r in codes)
    ranked = sorted(codes, key=lambda r: (-r[1], r[0]))
    rep = Report(f"top {kind}")
    rep.summary = {"window": f"{since or 'start'} .. {until or 'end'}",
                   f"{kind[:-1]} records": total, "distinct codes": len(ranked)}
    t = Table("codes", f"top {kind}", ["code", "count", "share_%", "first_seen", "last_seen",
                                       "where", "hint", "example"])
    data = []
    for c, n, first, last, example in ranked:
        # Counter.most_common: by count, equal counts in the order first seen
        ws = sorted(by_where.get(c, []), key=lambda x: (-x[0], x[1]))
        wdict = {w: k for k, _f, w in sorted(by_where.get(c, []), key=lambda x: x[1])}
        evs = {ev: k for _f, ev, k in sorted(by_event.get(c, []))}
        data.append({"code": c, "count": n, "first": first, "last": last, "where": wdict,
                     "events": evs, "hint": hint(c), "example": example or None})
        if not top or len(t.rows) < top:
            where_s = "; ".join(f"{w} ({k})" for k, _f, w in ws[:3]) or "-"
            t.rows.append([c, n, round(100.0 * n / total, 2), first, last, where_s, hint(c),
                           example or ""])
    rep.tables.append(t)
    rep.data = {"total": total, "codes": data}
    if not ranked:
        rep.text.append(f"no {kind[:-1].upper()} records in this window")
    return rep
