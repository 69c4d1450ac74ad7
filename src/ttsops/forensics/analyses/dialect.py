"""Which dialect the logs are written in, and what the reader converted (``logs check``).

Fed every record of the scan (their ``Record.dialect`` flags say what the parser met)
and the Assembler's stage-time decisions; gives one table: the form of the lines (text
or JSON, and whose keys), then each conversion with how many records it touched and an
example, and a one-line verdict.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from ...logformat import Record
from ...logformat import record as R
from ...logformat.dialects import LEVEL_ALIASES
from ...logformat.jsonkeys import NAMES
from ...logformat.units import unit_value
from .answer import Table

# what ``units.UNIT`` matches, as a value in the sidecar's JSON (its white space escaped)
_UNIT_JSON = r'": "[0-9]+(?:\.[0-9]+)?(?: |\\[a-z0-9]{1,5})?(?:[A-Za-z]{1,8}|%)"'
# the values that surely match: digits, maybe a fraction, maybe a space, then letters or
# '%', the whole value (a value is the only JSON string after '": ')
_UNIT_JSON_PLAIN = r'": "[0-9]+(?:\.[0-9]+)? ?(?:[A-Za-z]{1,8}|%)"'
_JSON = R.JSON_OWN | R.JSON_STDLIB | R.JSON_STRUCTLOG


class DialectStats:
    """Collector: ``feed`` every record, then ``rows`` / ``to_json`` / ``verdict``."""

    def __init__(self) -> None:
        self.records = 0
        self.flags: Counter[int] = Counter()  # flag -> records with it
        self.examples: dict[str, str] = {}
        self.units = 0
        self.stage_time = 0
        self.stage_elapsed = 0
        self.aliases: Counter[str] = Counter()

    def _example(self, key: str, text: str) -> None:
        if key not in self.examples:
            self.examples[key] = text[:160]

    def feed(self, rec: Record) -> None:
        self.records += 1
        d = rec.dialect
        if d:
            for bit in (R.LENIENT, R.FREE_TEXT, R.LEVEL_ALIAS, R.UNSTRUCTURED, R.BARE_ID,
                        R.JSON_OWN, R.JSON_STDLIB, R.JSON_STRUCTLOG, R.METRIC):
                if d & bit:
                    self.flags[bit] += 1
            self._examples_of(rec)
            if d & R.LEVEL_ALIAS:
                self.aliases[rec.level] += 1
        if rec.event == "stage_time":
            self.stage_time += 1
            if "elapsed_ms" in rec.fields:
                self.stage_elapsed += 1
        self._units(rec.fields)

    def feed_frame(self, df: Any, rows_of: Callable[[list[int]], Any] | None = None,
                   ) -> None:
        """``feed`` every record of a sidecar frame (``sidecar.frames``: columns ts,
        logger, level, event, fields, tb, dialect, k_elapsed_ms, and ``units`` when it
        has it), counted by Polars; only the records an example is still wanted from
        are made records and looked at one by one (without ``units``: also those that
        may hold a unit suffix). ``rows_of(rows)``: those rows with every record column
        (``sidecar.frame_rows``), for a frame without ``fields``."""
        import polars as pl

        from ..reading.sidecar import RECORD_COLUMNS, UNITS, records_of

        take = rows_of if rows_of is not None else \
            (lambda rows: df[sorted(rows)].select(RECORD_COLUMNS))

        n = df.height
        if n == 0:
            return
        self.records += n
        d = pl.col("dialect")
        bits = (R.LENIENT, R.FREE_TEXT, R.LEVEL_ALIAS, R.UNSTRUCTURED, R.BARE_ID,
                R.JSON_OWN, R.JSON_STDLIB, R.JSON_STRUCTLOG, R.METRIC)
        counts = df.select(*[((d & b) != 0).sum().alias(str(b)) for b in bits],
                           st=(pl.col("event") == "stage_time").sum(),
                           el=((pl.col("event") == "stage_time")
                               & pl.col("k_elapsed_ms").is_not_null()).sum()).row(0)
        for b, c in zip(bits, counts, strict=False):
            if c:
                self.flags[b] += c
        self.stage_time += counts[-2]
        self.stage_elapsed += counts[-1]
        if counts[bits.index(R.LEVEL_ALIAS)]:
            for lv, c in (df.lazy().filter((d & R.LEVEL_ALIAS) != 0).select("level")
                          .collect().get_column("level").value_counts().rows()):
                self.aliases[lv] += c
        # the first record of each kind an example is still wanted for
        want = [b for b, key in ((R.FREE_TEXT, "free_text"), (R.UNSTRUCTURED, "unstructured"),
                                 (R.METRIC, "metric"), (R.BARE_ID, "bare_id"))
                if key not in self.examples]
        firsts: set[int] = set()
        want = [b for b in want if counts[bits.index(b)]]
        if want:
            got = df.select(*[((d & b) != 0).arg_true().first().alias(str(b)) for b in want])
            firsts.update(got.row(0))
        if firsts:
            probe = DialectStats()
            probe.examples = self.examples
            for rec in records_of(take(sorted(firsts))):
                probe._examples_of(rec)
        if UNITS not in df.columns:
            self._units_frame(df)
            return
        # the flag the sidecar keeps: counted; the example from the first that has one
        u = pl.col(UNITS)
        n, first = df.select(u.sum().alias("n"), u.arg_true().first().alias("i")).row(0)
        self.units += n
        if first is not None and "units" not in self.examples:
            self._units(json.loads(take([first]).get_column("fields")[0]), count=False)

    def _units_frame(self, df: Any) -> None:
        """``_units`` of every record of a frame: the records whose JSON
        holds a value that is a number then at most a plain space then letters or '%'
        counted by Polars; the few others that may hold one (white space escaped in the
        JSON) read one by one."""
        import polars as pl

        rows = df.with_row_index("_row")
        fs = pl.col("fields")
        cand = (rows.lazy().select("_row", "fields").filter(fs.str.contains(_UNIT_JSON))
                .with_columns(sure=fs.str.contains(_UNIT_JSON_PLAIN)).collect())
        if not cand.height:
            return
        sure = pl.col("sure")
        n, first = cand.select(sure.sum(), pl.col("_row").filter(sure).first()).row(0)
        self.units += n
        # the example from the first record that has one, as ``feed`` takes it
        other = cand.filter(~sure).select("_row", "fields").rows()
        for row, text in other:
            if first is not None and row > first and "units" not in self.examples:
                self._units(json.loads(rows.get_column("fields")[first]), count=False)
            self._units(json.loads(text))
        if first is not None and "units" not in self.examples:
            self._units(json.loads(rows.get_column("fields")[first]), count=False)

    def _examples_of(self, rec: Record) -> None:
        d = rec.dialect
        if d & R.FREE_TEXT:
            self._example("free_text", ", ".join(
                f"{k}={v}" for k, v in rec.fields.items() if k != "msg")
                + f" | msg: {rec.fields.get('msg', '')}")
        if d & R.UNSTRUCTURED:
            self._example("unstructured", f"{rec.level} {rec.fields.get('msg', '')}")
        if d & R.METRIC:
            self._example("metric", ", ".join(f"{k}={v}" for k, v in rec.fields.items()))
        if d & R.BARE_ID:
            self._example("bare_id", f"id={rec.fields.get('id')} from: "
                                     f"{rec.fields.get('msg', '')}")

    def _units(self, fields: Mapping[str, str], count: bool = True) -> None:
        got = unit_value(fields)
        if got is not None:
            self.units += count
            self._example("units", f"{got[0]}={got[1]} read as {got[2]}")

    def verdict(self, stage_modes: Mapping[str, int]) -> str:
        n = self.records
        if n == 0:
            return "no records"
        js = {bit: self.flags[bit] for bit in (R.JSON_OWN, R.JSON_STDLIB, R.JSON_STRUCTLOG)
              if self.flags[bit]}
        text = n - sum(js.values())
        forms = []
        if text:
            foreign = (self.flags[R.LENIENT] or self.flags[R.UNSTRUCTURED]
                       or self.flags[R.LEVEL_ALIAS] or stage_modes.get("cumulative", 0)
                       or (self.stage_time and self.stage_elapsed < self.stage_time))
            forms.append("tutorial-style text (plain Python logging, "
                         "'%(asctime)s - %(name)s - %(levelname)s - %(message)s')"
                         if foreign else "ttsops' own text")
        forms += [NAMES[bit] for bit in js]
        return " + ".join(forms)

    def rows(self, stage_modes: Mapping[str, int]) -> list[list[object]]:
        """[aspect, recognised, records, what was done / example]."""
        f = self.flags
        n = self.records
        js = f[R.JSON_OWN] + f[R.JSON_STDLIB] + f[R.JSON_STRUCTLOG]
        cum, per = stage_modes.get("cumulative", 0), stage_modes.get("per-stage", 0)
        ex = self.examples.get
        rows: list[list[object]] = [
            ["dialect", self.verdict(stage_modes), n, ""],
            ["text lines", "yes" if n - js else "no", n - js,
             "TIMESTAMP - LOGGER - LEVEL - event: key=value, ..."],
        ]
        for bit in (R.JSON_OWN, R.JSON_STRUCTLOG, R.JSON_STDLIB):
            if f[bit]:
                rows.append(["JSON lines", NAMES[bit], f[bit],
                             "message text read with the record grammar"
                             if bit != R.JSON_OWN else ""])
        rows += [
            ["stage_time", "cumulative (time since the request started)" if cum > per
             else "per-stage" if cum + per else "-", cum + per,
             f"{cum} syntheses read as cumulative and converted to per-stage times "
             f"(difference from the stage before), {per} as per-stage"
             + (f"; {self.stage_elapsed} of {self.stage_time} stage_time records carry "
                "elapsed_ms" if self.stage_time else "")],
            ["free text after a value", "yes" if f[R.FREE_TEXT] else "no", f[R.FREE_TEXT],
             "the bare token kept as the value, the text as msg"
             + (f": {ex('free_text')}" if ex("free_text") else "")],
            ["unit suffixes", "yes" if self.units else "no", self.units,
             "the leading number read where a number is wanted"
             + (f": {ex('units')}" if ex("units") else "")],
            ["level aliases", ", ".join(f"{a}->{lv}" for a, lv in LEVEL_ALIASES.items()
                                        if self.aliases[lv]) or "no",
             f[R.LEVEL_ALIAS], "counted under the level they stand for (CRITICAL with the "
                               "errors)"],
            ["unstructured lines", "yes" if f[R.UNSTRUCTURED] else "no", f[R.UNSTRUCTURED],
             "event 'unstructured', the text as msg"
             + (f": {ex('unstructured')}" if ex("unstructured") else "")],
            ["key=value-only lines", "yes" if f[R.METRIC] else "no", f[R.METRIC],
             "event 'metric'" + (f": {ex('metric')}" if ex("metric") else "")],
            ["ids named in free text", "yes" if f[R.BARE_ID] else "no", f[R.BARE_ID],
             "the record given that id" + (f": {ex('bare_id')}" if ex("bare_id") else "")],
            ["lenient fields", "yes" if f[R.LENIENT] else "no", f[R.LENIENT],
             "values with spaces or text between fields, read up to the next ', key='"],
        ]
        return rows

    def table(self, stage_modes: Mapping[str, int]) -> Table:
        t = Table("dialect", "log dialect recognised, and what was converted",
                  ["aspect", "recognised", "records", "conversion"])
        t.rows = self.rows(stage_modes)
        return t

    def to_json(self, stage_modes: Mapping[str, int]) -> dict[str, object]:
        return {"dialect": self.verdict(stage_modes),
                "aspects": [dict(zip(("aspect", "recognised", "records", "conversion"), r,
                                     strict=True)) for r in self.rows(stage_modes)]}

