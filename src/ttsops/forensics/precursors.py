"""``logs precursors``: for each burst of errors, the warnings that came before it.

"ERROR is the symptom, WARNING is the cause": a burst is ``min_errors`` or more ERROR
records of one code with no gap longer than ``gap``. For each burst, the WARNING records
in the look-back before its first error are grouped by code (or event) and ranked by

1. relatedness: same code family as the error (storage, engine, capacity, audio, input,
   client) and same resource (path, engine, model, voice: equal, or one path inside the
   other);
2. elevation: the warning's rate in the look-back against its rate over the whole scan
   (a warning that is always there explains nothing);
3. lead time: how long before the burst it first appeared (the earliest related signal
   is the cause; those that start with the burst are co-symptoms); an error of the same
   family within ``CLOSE_S`` before the burst scores one more point;
4. a registry warning code before a bare event of the same family.

A burst counts for a window when it overlaps it: one that began before ``--since`` is
reported with its real start (``before_window``), and its look-back is before that start.

A candidate is *supported* (worth naming as the cause) when it has at least
``MIN_SUPPORT`` records, or is one error of the same family shortly (``CLOSE_S``) before
the burst (a model that failed to load, then every request fails). A single warning, or a
lone error hours earlier, is not. Codes the client causes (registry status < 500, not a
capacity code: empty text, unknown voice...) are weak: they never make a finding alone.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from ..errors import REGISTRY
from ..logformat.dialects import level_needles
from ..logline import Record
from .output import Report, Table, safe
from .scan import Query, Scan
from .sources import Snapshot
from .timeargs import human_duration, shift, ts_to_epoch

FAMILIES: dict[str, set[str]] = {
    "storage": {"DISK_FULL", "CACHE_WRITE_FAILED", "CACHE_DIR_USAGE_HIGH", "CACHE_CORRUPT",
                "LOG_WRITE_FAILED", "cache_health", "cache_dir_usage", "cache_write_failed",
                "cache_evict", "log_write_recovered", "log_rotate_failed"},
    "engine": {"MODEL_LOAD_FAILED", "MODEL_LOAD_TIMEOUT", "ENGINE_NOT_READY", "ENGINE_CRASHED",
               "ENGINE_FAILED", "model_load_failed", "engine_load", "worker_restarted",
               "worker_died"},
    "capacity": {"QUEUE_FULL", "SYNTHESIS_TIMEOUT", "RATE_LIMITED", "queue_full"},
    "audio": {"SCIPY_FFT_INVALID", "AUDIO_ENCODE_FAILED"},
    "input": {"TEXT_EMPTY", "TEXT_TOO_LONG", "TEXT_INVALID", "TEXT_SANITIZED", "VOICE_UNKNOWN",
              "VOICE_FALLBACK", "MODEL_UNKNOWN", "FORMAT_UNSUPPORTED", "SPEED_OUT_OF_RANGE",
              "INVALID_REQUEST", "BODY_TOO_LARGE"},
    "client": {"WEBUI_PLAYBACK_FAILED", "UNAUTHORIZED", "NOT_FOUND", "webui_event"},
}
FAMILY_OF = {name: fam for fam, names in FAMILIES.items() for name in names}
RESOURCE_KEYS = ("path", "engine", "model", "voice", "device")
NEEDLES = level_needles("ERROR", "CRITICAL", "WARNING")  # aliases (WARN, FATAL) included
MIN_SUPPORT = 3  # records of a candidate before it is a precursor (unless CLOSE_S below)
CLOSE_S = 900.0  # one error of the same family this soon before the burst is enough
MAX_EXTEND = 8  # look-backs to go further back for a burst that began before the scan


def client_caused(code: str | None) -> bool:
    """A code the caller causes (bad input, auth, its own rate): registry status < 500,
    capacity codes excepted (a full queue is the server's)."""
    spec = REGISTRY.get((code or "").strip("()"))
    if spec is None:
        return FAMILY_OF.get(code or "") in ("input",)
    return spec.status < 500 and FAMILY_OF.get(spec.code) != "capacity"


def close_error(c: dict[str, object]) -> bool:
    """Is the candidate an error of the burst's family just (``CLOSE_S``) before it?"""
    return (str(c["level"]) != "WARNING" and bool(c["same_family"])
            and float(c["lead_s"]) <= CLOSE_S)  # type: ignore[arg-type]


def supported(c: dict[str, object]) -> bool:
    """Enough evidence to name a candidate as the cause of its burst (see the module)."""
    if client_caused(str(c.get("key"))) or c.get("family") in ("input", "client"):
        return False
    return int(c["count"]) >= MIN_SUPPORT or close_error(c)  # type: ignore[call-overload]


def family(code: str | None, event: str) -> str | None:
    return FAMILY_OF.get(code or "") or FAMILY_OF.get(event)


def _related_resource(a: dict[str, set[str]], b: dict[str, set[str]]) -> bool:
    for k in RESOURCE_KEYS:
        for x in a.get(k, ()):
            for y in b.get(k, ()):
                if x == y or (k == "path" and (x.startswith(y.rstrip("/") + "/")
                                               or y.startswith(x.rstrip("/") + "/"))):
                    return True
    return False


@dataclass
class Burst:
    code: str
    event: str
    start: str
    end: str
    count: int = 0
    resources: dict[str, set[str]] = field(default_factory=dict)
    example_id: str | None = None
    candidates: list[dict[str, object]] = field(default_factory=list)
    in_window: int = 0  # errors at or after the collector's ``since``
    before_window: bool = False  # began before ``since``

    @property
    def client(self) -> bool:
        return client_caused(self.code)


@dataclass
class _Warn:
    ts: str
    t: float
    key: str
    event: str
    code: str | None
    resources: dict[str, str]
    level: str = "WARNING"


class Precursors:
    """Collector: one pass, warnings kept only within the look-back."""

    def __init__(self, lookback_s: float = 6 * 3600, min_errors: int = 3,
                 gap_s: float = 600.0, utc: bool = True, since: str | None = None) -> None:
        self.since = since  # bursts ending before it are dropped by ``overlapping``
        self.lookback_s = lookback_s
        self.min_errors = min_errors
        self.gap_s = gap_s
        self.utc = utc
        self.recent: deque[_Warn] = deque()
        # code -> (burst, time of its last error, warnings before its first error)
        self.open: dict[str, tuple[Burst, float, list[_Warn]]] = {}
        self.bursts: list[Burst] = []
        self.warn_total: Counter[str] = Counter()
        self.t_first: float | None = None
        self.t_last: float | None = None
        self.finished = False

    def feed(self, rec: Record) -> None:
        if rec.level not in ("WARNING", "ERROR", "CRITICAL"):
            return
        t = ts_to_epoch(rec.ts, self.utc)
        if self.t_first is None:
            self.t_first = t
        self.t_last = t
        f = rec.fields
        if rec.level == "WARNING":
            code = f.get("warning_code") or f.get("error_code")
            key = code or rec.event or "(no code)"
            self.warn_total[key] += 1
            self.recent.append(_Warn(rec.ts, t, key, rec.event, code,
                                     {k: f[k] for k in RESOURCE_KEYS if k in f}))
            while self.recent and self.recent[0].t < t - self.lookback_s:
                self.recent.popleft()
            return
        code = f.get("error_code") or f"({rec.event})"
        # an error can be the cause of a burst of another code (a model that failed to
        # load, then every request fails): errors are candidates too
        self.warn_total[code] += 1
        self.recent.append(_Warn(rec.ts, t, code, rec.event, f.get("error_code"),
                                 {k: f[k] for k in RESOURCE_KEYS if k in f}, "ERROR"))
        while self.recent and self.recent[0].t < t - self.lookback_s:
            self.recent.popleft()
        cur = self.open.get(code)
        if cur is not None and t - cur[1] <= self.gap_s:
            burst, _last, snap = cur
            burst.count += 1
            burst.end = rec.ts
            self.open[code] = (burst, t, snap)
        else:
            if cur is not None:
                self._close(code)
            burst = Burst(code, rec.event, rec.ts, rec.ts, 1)
            snap = [w for w in self.recent if w.t >= t - self.lookback_s and w.t < t]
            self.open[code] = (burst, t, snap)
        if self.since is None or rec.ts >= self.since:
            burst.in_window += 1
        for k in RESOURCE_KEYS:
            if k in f:
                burst.resources.setdefault(k, set()).add(f[k])
        if burst.example_id is None:
            burst.example_id = f.get("id") or f.get("request_id")

    def _close(self, code: str) -> None:
        burst, _t, snap = self.open.pop(code)
        if burst.count >= self.min_errors:
            burst.candidates = self._rank(burst, snap)
            self.bursts.append(burst)

    def _rank(self, burst: Burst, snap: list[_Warn]) -> list[dict[str, object]]:
        fam = family(burst.code.strip("()") if burst.code.startswith("(") else burst.code,
                     burst.event)
        t_burst = ts_to_epoch(burst.start, self.utc)
        groups: dict[str, list[_Warn]] = {}
        for w in snap:
            if w.key != burst.code:
                groups.setdefault(w.key, []).append(w)
        out = []
        for key, ws in groups.items():
            wfam = family(ws[0].code, ws[0].event)
            res: dict[str, set[str]] = {}
            for w in ws:
                for k, v in w.resources.items():
                    res.setdefault(k, set()).add(v)
            fam_match = fam is not None and wfam == fam
            res_match = _related_resource(burst.resources, res)
            lead = t_burst - ws[0].t
            window = min(self.lookback_s, t_burst - (self.t_first or t_burst)) or 1.0
            out.append({"key": key, "level": ws[0].level, "event": ws[0].event,
                        "count": len(ws),
                        "first": ws[0].ts, "last": ws[-1].ts, "lead_s": lead,
                        "family": wfam, "same_family": fam_match, "same_resource": res_match,
                        "_window": window})
        return out

    def finish(self) -> list[Burst]:
        if self.finished:
            return self.bursts
        self.finished = True
        for code in list(self.open):
            self._close(code)
        span = max(1.0, (self.t_last or 0.0) - (self.t_first or 0.0))
        for b in self.bursts:
            for c in b.candidates:
                window = float(c.pop("_window"))  # type: ignore[arg-type]
                rate_lb = int(c["count"]) / window  # type: ignore[call-overload]
                rate_all = self.warn_total[str(c["key"])] / span
                lift = rate_lb / rate_all if rate_all else 0.0
                c["lift"] = round(lift, 2)
                c["elevated"] = lift >= 2.0
                # an error of the same family just before the burst (a model that did
                # not load): a cause even when the scan is too short to show elevation
                c["score"] = 2 * c["same_family"] + int(c["same_resource"]) + \
                    2 * c["elevated"] + int(close_error(c))  # type: ignore[operator]
                c["supported"] = supported(c)
            b.candidates.sort(key=lambda c: (-int(c["score"]), not c["supported"],  # type: ignore[call-overload]
                                             -float(c["lead_s"]),  # type: ignore[arg-type]
                                             str(c["key"]).startswith("("), str(c["key"])))
            b.before_window = self.since is not None and b.start < self.since
        self.bursts.sort(key=lambda b: b.start)
        return self.bursts

    def overlapping(self) -> list[Burst]:
        """The bursts (after ``finish``) that overlap ``[since, ...)``."""
        return [b for b in self.bursts if self.since is None or b.end >= self.since]


def collect(snap: Snapshot, since: str | None, until: str | None, col: Precursors,
            use_index: bool = True, start: str | None = None) -> None:
    """Feed ``col`` from ``start`` (default: ``since`` minus the look-back) to ``until``."""
    if start is None:
        start = shift(since, -col.lookback_s) if since else None
    scan = Scan(snap, Query(start, until, needles=NEEDLES, use_index=use_index,
                            tracebacks=False))
    for rec in scan.records():
        col.feed(rec)


def truncated(bursts: list[Burst], start: str | None, lookback_s: float,
              gap_s: float) -> str | None:
    """The earliest start of a burst whose look-back the scan from ``start`` does not
    cover, or that may have begun before ``start`` (its first error is within ``gap_s``
    of it); None when there is none."""
    if start is None:
        return None
    edge = shift(start, max(lookback_s, gap_s))
    early = [b.start for b in bursts if b.start < edge]
    return min(early) if early else None


def overlapping_bursts(snap: Snapshot, since: str | None, until: str | None, *,
                       lookback_s: float, min_errors: int = 3, gap_s: float = 600.0,
                       use_index: bool = True, utc: bool = True,
                       col: Precursors | None = None) -> list[Burst]:
    """The bursts overlapping ``[since, until)``, each with its real start and the
    candidates of the look-back before it: for a burst that began before ``since`` the
    scan is started again earlier, until it covers the burst's start and its look-back
    (at most ``MAX_EXTEND`` times).
    ``col``: a collector already fed from ``since - lookback`` (finished or not)."""
    if col is None:
        col = Precursors(lookback_s, min_errors, gap_s, utc, since)
        collect(snap, since, until, col, use_index)
    col.finish()
    start = shift(since, -lookback_s) if since else None
    for _ in range(MAX_EXTEND):
        early = truncated(col.overlapping(), start, lookback_s, gap_s)
        if early is None or start is None:
            break
        # back far enough for an earlier error of the burst (within gap_s) and for the
        # look-back before it: unchanged, the burst is then not truncated any more
        start = shift(early, -(lookback_s + gap_s))
        col = Precursors(lookback_s, min_errors, gap_s, utc, since)
        collect(snap, since, until, col, use_index, start=start)
        col.finish()
    return col.overlapping()


def run(snap: Snapshot, since: str | None, until: str | None, *, lookback_s: float,
        min_errors: int = 3, gap_s: float = 600.0, top: int = 5,
        use_index: bool = True) -> Report:
    bursts = overlapping_bursts(snap, since, until, lookback_s=lookback_s,
                                min_errors=min_errors, gap_s=gap_s, use_index=use_index)
    rep = Report("precursors", problems=snap.problems)
    rep.summary = {"window": f"{since or 'start'} .. {until or 'end'}",
                   "look-back": human_duration(lookback_s), "bursts": len(bursts)}
    bt = Table("precursors", "warnings before each burst of errors (best first)",
               ["#", "error_code", "errors", "burst_start", "rank", "signal", "count",
                "first_seen", "lead", "family", "resource", "lift"])
    for i, b in enumerate(bursts, 1):
        cands = b.candidates[:top] if top else b.candidates
        bstart = f"{b.start} (before window)" if b.before_window else b.start
        if not cands:
            bt.rows.append([i, b.code, b.count, bstart, "", "(nothing before it)", "", "",
                            "", "", "", ""])
        for r, c in enumerate(cands, 1):
            sig = f"{c['key']} ({str(c['level']).lower()})"
            bt.rows.append([i, b.code, b.count, bstart, r, sig, c["count"], c["first"],
                            human_duration(float(c["lead_s"])),  # type: ignore[arg-type]
                            "same" if c["same_family"] else c["family"] or "-",
                            "same" if c["same_resource"] else "-", c["lift"]])
    rep.tables.append(bt)
    for i, b in enumerate(bursts, 1):
        if b.before_window:
            rep.text.append(f"burst {i}: {safe(b.code)} began at {b.start}, before the window"
                            f" ({b.in_window} of its {b.count} errors are in the window)")
        if b.candidates and int(b.candidates[0]["score"]) >= 3 \
                and b.candidates[0]["supported"]:  # type: ignore[call-overload]
            c = b.candidates[0]
            rep.text.append(
                f"burst {i}: {b.count} x {safe(b.code)} from {b.start}; first sign: "
                f"{safe(str(c['key']))} ({c['count']} {str(c['level']).lower()} "
                f"record{'' if c['count'] == 1 else 's'}, "
                f"the first {human_duration(float(c['lead_s']))} earlier)")  # type: ignore[arg-type]
    rep.data = {"bursts": [{"code": b.code, "event": b.event, "start": b.start, "end": b.end,
                            "count": b.count, "in_window": b.in_window,
                            "before_window": b.before_window, "example": b.example_id,
                            "resources": {k: sorted(v) for k, v in b.resources.items()},
                            "precursors": b.candidates} for b in bursts]}
    if not bursts:
        rep.text.append(f"no bursts of >= {min_errors} errors of one code in this window")
    return rep
