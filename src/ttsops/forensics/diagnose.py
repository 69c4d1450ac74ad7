"""``logs diagnose``: the three steps at once, as ranked findings in plain words.

One pass over ``[since - lookback, until)`` feeds every collector: window counts, top
codes with ``where``, failure patterns in the inputs, latency by time bucket (which
component made a slow period slow, against the baseline of the other buckets),
precursors of error bursts, audio anomalies, web page playback errors, failures that
were answered with 2xx, model load failures, the cache disk. A second, index-pruned
pass fetches one example trace per finding.
"""

from __future__ import annotations

from array import array
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..logline import STAGES, Record
from .assemble import Assembler, Synthesis
from .audio import AudioStats
from .cache import CacheStats
from .filters import Buckets
from .output import Report, Table, safe
from .precursors import Precursors, client_caused, overlapping_bursts
from .precursors import best as best_precursor
from .scan import Query, Scan
from .sources import LogFile, Snapshot
from .stats import median, sig
from .timeargs import epoch_to_ts, human_duration, shift, ts_to_epoch
from .top import TopCodes, hint
from .trace import find, timelines
from .window import WindowCounts

COMPONENTS = ("queue_wait", *STAGES)
DIMENSIONS = ("text_len", "voice", "lang", "format", "engine", "cache_hit", "model_stage")
TEXT_LEN_BUCKETS = Buckets("text_len", (0, 1, 64, 512, 2000, 4096))
SEVERITY = {3: "critical", 2: "high", 1: "medium", 0: "info"}
# a client-caused failure code (4xx: the caller's input) is "high" only when it is this
# share of all syntheses, or this many times its rate in the look-back (a spike)
CLIENT_HIGH_SHARE = 0.05
CLIENT_SPIKE = 3.0
RECENT_IDS = 200_000  # ids of completed syntheses remembered for the web page's reports


@dataclass
class Finding:
    severity: int
    kind: str
    title: str
    details: list[str] = field(default_factory=list)
    affected: int = 0
    example: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    client: bool = False  # caused by the caller (4xx): ranks below server findings


def _client_severity(n: int, total: int, base_n: int, base_total: int) -> int:
    """Severity of ``n`` failures of a client-caused code among ``total`` syntheses:
    background noise (medium) unless a large share or a spike against the look-back."""
    if n < 10:
        return 1
    if total and n / total >= CLIENT_HIGH_SHARE:
        return 2
    if base_total and total:
        base_rate = base_n / base_total
        if base_rate == 0.0 or (n / total) >= CLIENT_SPIKE * base_rate:
            return 2
    return 1


class LatencyBuckets:
    """Per time bucket: end-to-end and component times of successful uncached syntheses."""

    def __init__(self, bucket_s: float, utc: bool = True) -> None:
        self.bucket_s = bucket_s
        self.utc = utc
        self.b: dict[float, dict[str, array[float]]] = defaultdict(
            lambda: defaultdict(lambda: array("d")))
        self.slowest: dict[float, tuple[float, str]] = {}

    def rebucket(self, bucket_s: float) -> None:
        """Merge into coarser buckets (a multiple of the current size, epoch-aligned):
        values in time order, the slowest the first largest as when fed directly."""
        if bucket_s == self.bucket_s:
            return
        merged: dict[float, dict[str, array[float]]] = defaultdict(
            lambda: defaultdict(lambda: array("d")))
        slowest: dict[float, tuple[float, str]] = {}
        for k in sorted(self.b):
            nk = k - k % bucket_s
            for comp, vals in self.b[k].items():
                merged[nk][comp].extend(vals)
            if k in self.slowest and self.slowest[k][0] > slowest.get(nk, (0.0, ""))[0]:
                slowest[nk] = self.slowest[k]
        self.b, self.slowest, self.bucket_s = merged, slowest, bucket_s

    def feed(self, s: Synthesis) -> None:
        if s.status != "success" or s.get("cache_hit") == "true" or s.e2e is None:
            return
        t = ts_to_epoch(s.ts, self.utc)
        key = t - t % self.bucket_s
        d = self.b[key]
        d["e2e"].append(s.e2e)
        d["queue_wait"].append(s.queue or 0.0)
        for st in STAGES:
            d[st].append(s.stages.get(st, 0.0))
        if s.e2e > self.slowest.get(key, (0.0, ""))[0]:
            self.slowest[key] = (s.e2e, s.id)

    def slow_periods(self, since_t: float | None, factor: float = 1.5,
                     min_n: int = 5) -> list[dict[str, Any]]:
        keys = sorted(k for k, d in self.b.items() if len(d["e2e"]) >= min_n)
        if len(keys) < 3:
            return []
        all_e2e = [x for k in keys for x in self.b[k]["e2e"]]
        base = median(all_e2e)
        slow = {k for k in keys if median(self.b[k]["e2e"]) > factor * base}
        normal = [k for k in keys if k not in slow]
        if not normal:
            return []
        base_e2e = median([x for k in normal for x in self.b[k]["e2e"]])
        base_comp = {c: median([x for k in normal for x in self.b[k][c]]) for c in COMPONENTS}
        periods: list[list[float]] = []
        for k in sorted(slow):
            if since_t is not None and k + self.bucket_s <= since_t:
                continue
            if periods and k - periods[-1][-1] <= 2 * self.bucket_s:
                periods[-1].append(k)
            else:
                periods.append([k])
        out = []
        for ks in periods:
            e2e = [x for k in ks for x in self.b[k]["e2e"]]
            comp = {c: median([x for k in ks for x in self.b[k][c]]) for c in COMPONENTS}
            delta = {c: comp[c] - base_comp[c] for c in COMPONENTS}
            culprit = max(delta, key=lambda c: delta[c])
            ex = max((self.slowest[k] for k in ks), default=(0.0, ""))[1]
            out.append({"start": epoch_to_ts(ks[0], self.utc),
                        "end": epoch_to_ts(ks[-1] + self.bucket_s, self.utc),
                        "n": len(e2e), "p50_ms": median(e2e), "baseline_p50_ms": base_e2e,
                        "component": culprit, "component_p50_ms": comp[culprit],
                        "component_baseline_ms": base_comp[culprit],
                        "delta_ms": delta, "example": ex})
        return out

    def shares(self) -> dict[str, float]:
        tot = {c: 0.0 for c in COMPONENTS}
        e2e = 0.0
        for d in self.b.values():
            e2e += sum(d["e2e"])
            for c in COMPONENTS:
                tot[c] += sum(d[c])
        return {c: v / e2e for c, v in tot.items()} if e2e else {}


class FailurePatterns:
    """Failures per code against every value of a few input dimensions."""

    def __init__(self) -> None:
        self.total: dict[str, Counter[str]] = {d: Counter() for d in (*DIMENSIONS, "len_b")}
        self.fail: dict[str, Counter[tuple[str, str]]] = {d: Counter() for d in self.total}
        self.codes: Counter[str] = Counter()
        self.first: dict[str, str] = {}
        self.last: dict[str, str] = {}
        self.where: dict[str, Counter[str]] = defaultdict(Counter)
        self.stage: dict[str, Counter[str]] = defaultdict(Counter)
        self.example: dict[str, str] = {}
        self.n = 0

    def feed(self, s: Synthesis) -> None:
        self.n += 1
        vals = {d: s.get(d) or "(none)" for d in DIMENSIONS}
        vals["len_b"] = TEXT_LEN_BUCKETS.label(s.get("text_len"))
        for d, v in vals.items():
            self.total[d][v] += 1
        if s.status != "failed":
            return
        code = s.get("error_code") or "(no code)"
        self.codes[code] += 1
        self.first.setdefault(code, s.ts)
        self.last[code] = s.ts
        self.example.setdefault(code, s.id)
        if s.failed is not None and s.failed.fields.get("where"):
            self.where[code][s.failed.fields["where"]] += 1
        self.stage[code][s.get("model_stage") or "?"] += 1
        for d, v in vals.items():
            self.fail[d][(code, v)] += 1

    def pattern(self, code: str) -> dict[str, Any] | None:
        """The input value that best marks ``code``'s failures; ``model_stage`` (where
        they failed, not what was asked: some writers set it on failures only, where it
        marks them all) only when no input value does."""
        best = self._best(code, [d for d in (*DIMENSIONS, "len_b") if d != "model_stage"]) \
            or self._best(code, ["model_stage"])
        if best is None:
            return None
        _s, d, v, cov, prec = best
        return {"field": "text_len" if d == "len_b" else d, "value": v, "bucket": d == "len_b",
                "coverage": cov, "precision": prec, "total_with_value": self.total[d][v]}

    def _best(self, code: str, dims: list[str]) -> tuple[float, str, str, float, float] | None:
        n = self.codes[code]
        best: tuple[float, str, str, float, float] | None = None
        for d in dims:
            for (c, v), k in self.fail[d].items():
                if c != code:
                    continue
                coverage = k / n
                precision = k / self.total[d][v]
                score = coverage * precision
                if best is None or score > best[0] + 1e-9:
                    best = (score, d, v, coverage, precision)
        if best is None or best[3] < 0.5 or best[4] < 0.5:
            return None
        return best


LOG_TROUBLE = ("log_write_recovered", "log_file_reopened", "log_rotate_failed")


def _worker_findings(deaths: list[Record]) -> list[Finding]:
    """Engine workers that died (crash, kill) or were killed for hanging past the timeout."""
    out = []
    died = [r for r in deaths if r.event == "worker_died"]
    killed = [r for r in deaths if r.event == "worker_killed"]
    if died:
        how = Counter(r.fields.get("signal") or f"exit code {r.fields.get('exitcode', '?')}"
                      for r in died)
        jobs = [r.fields["job"] for r in died if r.fields.get("job")]
        fd = Finding(2, "worker_died", f"{len(died)} engine worker(s) died ("
                     + ", ".join(f"{n} x {k}" for k, n in how.most_common())
                     + f"), first at {died[0].ts}; {len(jobs)} synthesis(es) running on them "
                     "failed with ENGINE_CRASHED", affected=len(jobs),
                     example=jobs[0] if jobs else None)
        fd.details.append("each worker was restarted (worker_restarted); other requests were "
                          f"not affected; hint for ENGINE_CRASHED: {hint('ENGINE_CRASHED')}")
        fd.data = {"died": len(died), "how": dict(how), "jobs": jobs[:100]}
        out.append(fd)
    if killed:
        jobs = [r.fields["job"] for r in killed if r.fields.get("job")]
        fd = Finding(2, "worker_hung", f"{len(killed)} synthesis(es) hung past the timeout "
                     f"(SYNTHESIS_TIMEOUT), first at {killed[0].ts}; their workers were "
                     "killed and replaced", affected=len(killed),
                     example=jobs[0] if jobs else None)
        fd.details.append(f"hint for SYNTHESIS_TIMEOUT: {hint('SYNTHESIS_TIMEOUT')}")
        fd.data = {"killed": len(killed), "jobs": jobs[:100]}
        out.append(fd)
    return out


def _log_findings(trouble: list[Record]) -> list[Finding]:
    """The log itself: writes that failed and were held, files removed or replaced under
    the writer, rotations that failed."""
    out = []
    rec = [r for r in trouble if r.event == "log_write_recovered"]
    if rec:
        dropped = sum(int(r.fields.get("dropped", "0") or 0) for r in rec)
        secs = sum(float(r.fields.get("failed_s", "0") or 0) for r in rec)
        fd = Finding(2 if dropped else 1, "log_write", f"writing the log failed {len(rec)} "
                     f"time(s) for {secs:.1f} s in all (LOG_WRITE_FAILED: "
                     f"{rec[0].fields.get('error', '?')}); "
                     + (f"{dropped} lines were dropped" if dropped else
                        "the lines were held and written once it worked again, none lost"),
                     affected=dropped)
        fd.details.extend(f"recovered at {r.ts} after {r.fields.get('failed_s')} s"
                          for r in rec[:5])
        fd.details.append(f"hint: {hint('LOG_WRITE_FAILED')}")
        fd.data = {"failures": len(rec), "seconds": secs, "dropped": dropped}
        out.append(fd)
    reopened = [r for r in trouble if r.event == "log_file_reopened"]
    if reopened:
        reasons = Counter(r.fields.get("reason", "?") for r in reopened)
        fd = Finding(1, "log_file", "app.log was " + ", ".join(
            f"{k} {n} time(s)" for k, n in reasons.items()) + " while the service was "
            f"writing it (first at {reopened[0].ts}); the writer recreated it: records "
            "written before that went with the old file", affected=len(reopened))
        fd.details.append(f"path {reopened[0].fields.get('path', '?')}")
        fd.data = {"reasons": dict(reasons)}
        out.append(fd)
    rot = [r for r in trouble if r.event == "log_rotate_failed"]
    if rot:
        fd = Finding(1, "log_rotate", f"log rotation failed {len(rot)} time(s) (first at "
                     f"{rot[0].ts}: {rot[0].fields.get('error', '?')}); app.log grew past "
                     "its size limit meanwhile, nothing lost", affected=len(rot))
        fd.details.append(f"hint: {hint('LOG_WRITE_FAILED')}")
        fd.data = {"failures": len(rot)}
        out.append(fd)
    return out


def _pct(x: float) -> str:
    return f"{100.0 * x:.1f}%"


def _frame_hits(scan: Scan, tap_frame: Callable[[LogFile, Any], None],
                columns: Sequence[str]) -> Iterator[tuple[Record, LogFile]]:
    """``scan.hits()`` from the sidecars' frames, each handed to ``tap_frame`` first."""
    from . import sidecar

    cols = list(sidecar.RECORD_COLUMNS)
    cols += [c for c in columns if c not in cols]
    for f, df in sidecar.frames(scan, cols):
        tap_frame(f, df)
        for rec in sidecar.records_of(df):
            yield rec, f


def run(snap: Snapshot, since: str | None, until: str | None, *, lookback_s: float = 6 * 3600,
        use_index: bool = True, utc: bool = True,
        tap: Callable[[Record, LogFile], None] | None = None,
        progress: Callable[[int], None] | None = None,
        tap_frame: Callable[[LogFile, Any], None] | None = None,
        frame_columns: Sequence[str] = (), audio: AudioStats | None = None) -> Report:
    """The findings. ``tap`` is called with every record of [since, until) and its file,
    in order, from the same pass (``report`` draws its charts from it: one read, not
    two); or, when the records come from sidecars (one stream, every file with one, no
    ``since``), ``tap_frame`` instead with each file's frame (``frame_columns`` of it)
    before its records. ``audio``: the collector fed every synthesis of the window (the
    caller's, to share this pass's join)."""
    from .cache import BASE_S, span_of

    # buckets of BASE_S while reading, merged once the span is known from the records
    # themselves (so the answer never depends on how the files are compressed)
    bucket_s = BASE_S
    start = shift(since, -lookback_s) if since else None
    win = WindowCounts(keep_ids=False)
    errs, warns = TopCodes("errors"), TopCodes("warnings")
    pats = FailurePatterns()
    lat = LatencyBuckets(bucket_s, utc)
    audio = AudioStats() if audio is None else audio
    pre = Precursors(lookback_s, utc=utc, since=since)
    cache = CacheStats(interval_s=bucket_s, utc=utc)
    asm = Assembler()
    failed_ids: set[str] = set()
    failed_2xx: list[str] = []
    webui_err: Counter[tuple[str, str]] = Counter()
    webui_ids: list[str] = []
    webui_status: dict[str, str | None] = {}  # id a report names -> its synthesis status
    recent: OrderedDict[str, str] = OrderedDict()  # id -> status, recent syntheses
    webui_noid = 0
    base_codes: Counter[str] = Counter()  # failures per code in the look-back
    base_total = 0
    model_fail: list[Record] = []
    engine_ok: list[str] = []
    worker_deaths: list[Record] = []
    log_trouble: list[Record] = []
    scan = Scan(snap, Query(start, until, use_index=use_index), progress=progress)
    hits: Iterable[tuple[Record, LogFile]] = scan.hits()
    if tap_frame is not None and since is None:
        from . import sidecar, vector

        if len(scan.streams()) == 1 and vector.available() and sidecar.covered(scan):
            hits = _frame_hits(scan, tap_frame, frame_columns)
            tap = None
    for rec, lf in hits:
        in_win = since is None or rec.ts >= since
        if tap is not None and in_win:
            tap(rec, lf)
        pre.feed(rec)
        s = asm.feed(rec)
        if s is not None and s.complete is not None:
            lat.feed(s)  # lookback too: the baseline
            st_s = s.status or "?"
            recent[s.id] = st_s
            if len(recent) > RECENT_IDS:
                recent.popitem(last=False)
            if s.id in webui_status and webui_status[s.id] is None:
                webui_status[s.id] = st_s
            if not in_win:
                base_total += 1
                if s.status == "failed":
                    base_codes[s.get("error_code") or "(no code)"] += 1
            if in_win:
                pats.feed(s)
                audio.feed(s)
                if s.status == "failed":
                    failed_ids.add(s.id)
        if not in_win:
            continue
        win.feed(rec)
        errs.feed(rec)
        warns.feed(rec)
        cache.feed(rec)
        ev = rec.event
        f = rec.fields
        if ev == "http_request" and f.get("id") in failed_ids:
            st = f.get("status", "")
            if st.startswith("2"):
                failed_2xx.append(f["id"])
        elif ev == "webui_event" and f.get("kind") == "error" and f.get("verified") == "true":
            # only reports whose synthesis token the server checked (webui.py): anyone can
            # post a report, nobody can post one for another's synthesis
            webui_err[(f.get("detail") or "", f.get("ua") or "")] += 1
            wid = f.get("id") or ""
            if not wid:
                webui_noid += 1
            elif len(webui_status) < 100_000:
                webui_status.setdefault(wid, recent.get(wid))
            if len(webui_ids) < 1000 and wid:
                webui_ids.append(wid)
        elif ev == "model_load_failed":
            model_fail.append(rec)
        elif ev == "engine_load":
            engine_ok.append(rec.ts)
        elif ev in ("worker_died", "worker_killed"):
            worker_deaths.append(rec)
        elif ev in LOG_TROUBLE:
            log_trouble.append(rec)
    first = ts_to_epoch(win.first, utc) if win.first else None
    last = ts_to_epoch(win.last, utc) if win.last else None
    lo_t, hi_t = span_of(since, until, first, last, utc)
    span = (hi_t - lo_t) if lo_t is not None and hi_t is not None else 86400.0
    bucket_s = float(min(3600, max(300, int(span / 48) // 300 * 300)))
    lat.rebucket(bucket_s)
    cache.rebucket(bucket_s)
    findings: list[Finding] = []
    total = sum(win.complete.values())
    nfail = win.complete.get("failed", 0)
    # --- model load ---------------------------------------------------------------------
    for rec in model_fail[:3]:
        f = rec.fields
        after = [t for t in engine_ok if t > rec.ts]
        dep = [c for c in pats.codes if c in ("ENGINE_NOT_READY", "SYNTHESIS_TIMEOUT",
                                                 "MODEL_LOAD_TIMEOUT")]
        fd = Finding(3, "model_load", f"the model failed to load at {rec.ts} "
                     f"({f.get('error_code', '?')}, engine {f.get('engine', '?')})", affected=1)
        fd.details.append(f"model {f.get('model', '?')}; took {f.get('duration_ms', '?')} ms; "
                          f"where {f.get('where', '?')}; {f.get('exc_type', '')}")
        if rec.traceback:
            fd.details.append("last traceback line: " + rec.traceback[-1][:200])
        if dep:
            n = sum(pats.codes[c] for c in dep)
            fd.affected += n
            fd.details.append(f"then {n} syntheses failed with {', '.join(dep)}")
        fd.details.append(f"recovered: engine loaded at {after[0]}" if after
                          else "no successful engine_load after it in this window")
        fd.data = {"ts": rec.ts, "fields": f, "recovered": after[0] if after else None}
        findings.append(fd)
    # --- failures -------------------------------------------------------------------------
    if total:
        rate = nfail / total
        sev = 3 if rate >= 0.10 else 2 if rate >= 0.02 else 1 if nfail else 0
        top = pats.codes.most_common(5)
        fd = Finding(sev, "failure_rate", f"failure rate {_pct(rate)} ({nfail} of {total} "
                     "syntheses)", affected=nfail)
        for code, n in top:
            where = pats.where[code].most_common(1)
            fd.details.append(f"{code}: {n} ({_pct(n / nfail)} of failures)"
                              + (" (client input, 4xx)" if client_caused(code) else "")
                              + (f", where {where[0][0]}" if where else ""))
        fd.data = {"rate": rate, "failed": nfail, "total": total, "codes": dict(top)}
        findings.append(fd)
        for code, n in top[:4]:
            p = pats.pattern(code)
            if p is None:
                continue
            val = p["value"]
            what = f"{p['field']} in {val}" if p["bucket"] else f"{p['field']}={val}"
            stage = pats.stage[code].most_common(1)[0][0]
            where = pats.where[code].most_common(1)
            client = client_caused(code)
            sev = _client_severity(n, total, base_codes[code], base_total) if client else \
                2 if n >= 10 else 1
            fd = Finding(sev, "input_pattern",
                         f"{code} fails the inputs with {what}"
                         + (" (client error, 4xx)" if client else ""), affected=n,
                         example=pats.example.get(code), client=client)
            fd.details.append(
                f"{_pct(p['coverage'])} of the {n} {code} failures have {what}; "
                f"{_pct(p['precision'])} of the {p['total_with_value']} syntheses with {what}"
                f" failed with it; stage {stage}"
                + (f"; where {where[0][0]}" if where else ""))
            fd.details.append(f"between {pats.first[code]} and {pats.last[code]}; "
                              f"hint: {hint(code)}")
            if client:
                fd.details.append("the caller's input: rejected with a 4xx, not a server fault"
                                  + (f"; {base_codes[code]} of {base_total} in the look-back"
                                     if base_total else ""))
            fd.data = dict(p, error_code=code, stage=stage, client=client,
                           where=where[0][0] if where else None)
            findings.append(fd)
    if failed_2xx:
        findings.append(Finding(3, "failed_2xx", f"{len(failed_2xx)} failed syntheses were "
                                "answered with HTTP 2xx", [f"e.g. {failed_2xx[0]}"],
                                len(failed_2xx), failed_2xx[0]))
    # --- latency ------------------------------------------------------------------------
    since_t = ts_to_epoch(since, utc) if since else None
    for p in lat.slow_periods(since_t):
        c = p["component"]
        fd = Finding(2, "slow_period", f"slow from {p['start']} to {p['end']}: p50 end to end "
                     f"{p['p50_ms']:.0f} ms against {p['baseline_p50_ms']:.0f} ms; "
                     f"{c} is the slow part", affected=p["n"], example=p["example"])
        fd.details.append(f"{c}: p50 {p['component_p50_ms']:.0f} ms against "
                          f"{p['component_baseline_ms']:.0f} ms normally (+"
                          f"{p['delta_ms'][c]:.0f} ms); the other components changed by "
                          + ", ".join(f"{k} {v:+.0f}" for k, v in p["delta_ms"].items()
                                      if k != c) + " ms")
        if c == "queue_wait":
            fd.details.append("the stages themselves did not slow down: requests waited for "
                              "a worker (add workers or reduce load; see QUEUE_FULL)")
        fd.data = p
        findings.append(fd)
    shares = lat.shares()
    if shares:
        big = max(shares, key=lambda c: shares[c])
        findings.append(Finding(0, "time_share", f"most time goes to {big} "
                                f"({_pct(shares[big])} of end-to-end time of uncached "
                                "successful syntheses)",
                                [", ".join(f"{k} {_pct(v)}" for k, v in shares.items())],
                                data={"shares": shares}))
    # --- precursors -------------------------------------------------------------------------
    bursts = overlapping_bursts(snap, since, until, lookback_s=lookback_s, use_index=use_index,
                                utc=utc, col=pre)
    for b in bursts:
        c = best_precursor(b)
        if c is None:
            continue
        sev = 3 if b.in_window >= 20 else 2
        if b.weak:
            sev = 1
        ncand = int(c["count"])  # type: ignore[call-overload]
        fd = Finding(sev, "precursor",
                     f"{b.count} x {b.code} from {b.start}"
                     + (f" (began before the window; {b.in_window} in it)"
                        if b.before_window else "")
                     + f": preceded by {c['key']} ({ncand} {str(c['level']).lower()} "
                     f"record{'s' if ncand != 1 else ''}, the first "
                     f"{human_duration(float(c['lead_s']))} earlier)",  # type: ignore[arg-type]
                     affected=b.in_window, example=b.example_id, client=b.client)
        fd.details.append(f"same family: {c['same_family']}, same resource: "
                          f"{c['same_resource']}, {c['lift']}x its usual rate; "
                          f"hint for {b.code}: {hint(b.code)}")
        fd.data = {"burst": {"code": b.code, "start": b.start, "end": b.end,
                             "count": b.count, "in_window": b.in_window,
                             "before_window": b.before_window}, "precursor": c}
        findings.append(fd)
    findings += _worker_findings(worker_deaths) + _log_findings(log_trouble)
    # --- cache disk -------------------------------------------------------------------------
    end_t = ts_to_epoch(win.last, utc) if win.last else None
    gauge = cache.gauge(end_t)
    slope, eta = cache.trend(end_t=end_t)
    if gauge is not None and gauge["stale"]:
        # a gauge is never extrapolated past its last reading: say how old it is
        age = human_duration(float(gauge["age_s"]))  # type: ignore[arg-type]
        findings.append(Finding(
            0, "cache_disk", f"cache disk last reported {gauge['usage']}% at "
            f"{str(gauge['ts'])[:19]}, {age} before the end of the logs",
            ["no newer cache_health reading: where it is written only above a threshold "
             "(the tutorial: 85%), usage has been below it since; not extrapolated"],
            data={"usage": gauge["usage"], "ts": gauge["ts"], "age_s": gauge["age_s"],
                  "stale": True, "slope": None, "eta_s": None}))
    elif gauge is not None and (float(gauge["usage"]) >= 85.0  # type: ignore[arg-type]
                                or (eta is not None and eta < 86400)):
        last = gauge["usage"]
        findings.append(Finding(2, "cache_disk", f"cache disk at {last}%"
                                + (f", full in ~{human_duration(eta)} at {slope:+.2f} %/h"
                                   if eta else "")
                                + f" (reading of {str(gauge['ts'])[:19]}, "
                                f"{human_duration(float(gauge['age_s']))} before the end of "  # type: ignore[arg-type]
                                "the logs)",
                                data={"usage": last, "slope": slope, "eta_s": eta,
                                      "ts": gauge["ts"], "age_s": gauge["age_s"],
                                      "stale": False}))
    wf = cache.warnings.get("CACHE_WRITE_FAILED", 0)
    if wf:
        findings.append(Finding(1, "cache_write", f"{wf} cache writes failed "
                                "(CACHE_WRITE_FAILED, first "
                                f"{cache.first_warning.get('CACHE_WRITE_FAILED')}"
                                "); audio was still served but will be recomputed",
                                affected=wf))
    # --- audio --------------------------------------------------------------------------
    anomalies = audio.anomalies(5.0, 20)
    if anomalies:
        groups: Counter[tuple[str, str]] = Counter((str(a["group"][0]), str(a["metric"]))  # type: ignore[index]
                                                   for a in anomalies)
        ids = sorted({str(a["id"]) for a in anomalies})
        (g, m), n = groups.most_common(1)[0]
        sel = [a for a in anomalies if a["group"][0] == g and a["metric"] == m]  # type: ignore[index]
        fd = Finding(1, "audio", f"{len(ids)} syntheses with anomalous audio; most: {n} x "
                     f"{m} on voice {g} (median {sig(float(sel[0]['median']))}, "  # type: ignore[arg-type]
                     f"these {sig(min(float(a['value']) for a in sel))}.."  # type: ignore[arg-type]
                     f"{sig(max(float(a['value']) for a in sel))})",  # type: ignore[arg-type]
                     affected=len(ids), example=str(sel[0]["id"]))
        fd.details.append(f"from {sel[0]['ts']} to {sel[-1]['ts']}; `ttsops logs audio` "
                          "lists them (per-voice baseline, median ± 5·1.4826·MAD)")
        note = audio.baseline_note(20, ["voice"])
        if note:
            fd.details.append(note + ": not checked")
        fd.data = {"ids": ids, "groups": {f"{a}/{b}": k for (a, b), k in groups.items()}}
        findings.append(fd)
    elif audio.n:
        note = audio.baseline_note(20, ["voice"])
        if note and len(audio.thin_groups(20)) == len(audio.group_sizes()):
            # no baseline at all: this is "not checked", never "audio fine"
            findings.append(Finding(0, "audio", f"audio not checked: {audio.n} syntheses "
                                    "with audio_metrics, too few per voice for a baseline",
                                    [note], data={"no_baseline": True, "n": audio.n}))
        elif note:
            findings.append(Finding(0, "audio", "no anomalous audio in the voices with a "
                                    "baseline; some voices could not be checked", [note],
                                    data={"no_baseline": False, "n": audio.n}))
    # --- web page -------------------------------------------------------------------------
    if webui_err:
        n = sum(webui_err.values())
        (detail, ua), k = webui_err.most_common(1)[0]
        fd = Finding(2 if n >= 10 else 1, "webui", f"the web page reported {n} playback "
                     "errors (the play button 'does nothing')", affected=n,
                     example=webui_ids[0] if webui_ids else None)
        fd.details.append(f"{k} of them: {detail or '(no detail)'} "
                          + (f"on {ua}" if ua else "(user agent not logged)"))
        sts = Counter("unseen" if v is None else "success" if v == "success" else "failed"
                      for v in webui_status.values())
        nid = len(webui_status)
        if sts["success"] == nid and nid:
            fd.details.append("the server answered these syntheses successfully: the problem "
                              "is in the browser (autoplay policy, codec, network)")
        elif sts["success"]:
            fd.details.append(f"the server answered {sts['success']} of the {nid} syntheses "
                              "they name successfully: for those the problem is in the "
                              "browser (autoplay policy, codec, network)")
        if sts["failed"]:
            fd.details.append(f"{sts['failed']} reports name syntheses that failed on the "
                              "server")
        if sts["unseen"]:
            fd.details.append(f"{sts['unseen']} reports name syntheses this log does not have")
        if webui_noid:
            fd.details.append(f"{webui_noid} reports name no synthesis id")
        fd.data = {"errors": n, "by_detail_ua": [[d, u, c] for (d, u), c in
                                                 webui_err.most_common()],
                   "ids": {"success": sts["success"], "failed": sts["failed"],
                           "unseen": sts["unseen"], "no_id": webui_noid}}
        findings.append(fd)
    findings.sort(key=lambda f: (-f.severity, f.client, -f.affected))
    # --- example traces ------------------------------------------------------------------
    examples = sorted({f.example for f in findings if f.example})
    traces: dict[str, list[Record]] = {}
    if examples:
        hits, _ = find(snap, examples, start, until, use_index)
        for rec, _f in hits:
            for sid in examples:
                if rec.fields.get("id") == sid or rec.fields.get("request_id") == sid:
                    traces.setdefault(sid, []).append(rec)
    rep = Report("diagnose", problems=snap.problems)
    rep.summary = {"window": f"{since or 'start'} .. {until or 'end'}",
                   "records": win.records, "syntheses": total,
                   "failure rate": _pct(nfail / total) if total else "-",
                   "findings": len(findings)}  # as many as are listed, info included
    t = Table("findings", "findings, most severe first", ["rank", "severity", "kind", "finding",
                                                          "affected", "example"])
    for i, f in enumerate(findings, 1):
        t.rows.append([i, SEVERITY[f.severity], f.kind, f.title, f.affected, f.example or ""])
    rep.tables.append(t)
    for i, f in enumerate(findings, 1):
        color = {3: "red", 2: "yellow", 1: "cyan", 0: "dim"}[f.severity]
        # titles and details hold log values (codes, user agents, details): safe()
        rep.text.append(f"[bold {color}]{i}. {safe('[' + SEVERITY[f.severity] + ']')}[/] "
                        f"{safe(f.title)}")
        rep.text.extend(f"   {safe(d)}" for d in f.details)
        if f.example and f.example in traces:
            recs = traces[f.example]
            rep.text.append(f"   example {safe(f.example)}: " + " → ".join(
                safe(r.event or "(text)") for r in recs))
            for tl in timelines(recs):
                rep.text.extend("   " + line for line in tl.render()[1:])
        rep.text.append("")
    rep.data = {"findings": [{"rank": i, "severity": SEVERITY[f.severity], "kind": f.kind,
                              "title": f.title, "details": f.details, "affected": f.affected,
                              "example": f.example, "data": f.data}
                             for i, f in enumerate(findings, 1)],
                "top_errors": [{"code": c, "count": s.count, "where": dict(s.where)}
                               for c, s in errs.ranked()[:5]],
                "top_warnings": [{"code": c, "count": s.count} for c, s in warns.ranked()[:5]]}
    if win.records == 0:
        rep.empty = f"no records between {since or 'the start'} and {until or 'the end'}"
    return rep
