"""``logs diagnose``, step two: judging. Findings from the collected data
(:class:`~.diagnose_collect.Collected`), each with a severity from the rules of
``SEVERITY_RULES`` (data, not code), ranked most severe first. Nothing here reads a file
or writes markup.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ...logline import Record
from ..reading.timeargs import human_duration, ts_to_epoch
from .diagnose_collect import Collected
from .precursors import best as best_precursor
from .precursors import client_caused
from .stats import sig
from .top import hint

SEVERITY = {3: "critical", 2: "high", 1: "medium", 0: "info"}
ANY = 1e-300  # a threshold that any positive measure reaches


@dataclass(frozen=True)
class Rule:
    """The severity of one kind of finding: that of the first step whose threshold the
    finding's measure reaches (``>=``), else ``default``."""

    measure: str
    default: int
    steps: tuple[tuple[float, int], ...] = ()

    def severity(self, x: float = 0.0) -> int:
        for threshold, sev in self.steps:
            if x >= threshold:
                return sev
        return self.default


# the severity rules, one per kind of finding (and variant): what is measured, and the
# severity for each threshold it reaches
SEVERITY_RULES: dict[str, Rule] = {
    "model_load": Rule("a load failure", 3),
    "failure_rate": Rule("failed / completed syntheses", 0,
                         ((0.10, 3), (0.02, 2), (ANY, 1))),
    # a server fault marked by an input value: high from 10 failures on
    "input_pattern": Rule("failures with the code", 1, ((10, 2),)),
    "failed_2xx": Rule("failed syntheses answered 2xx", 3),
    "slow_period": Rule("a slow period", 2),
    "time_share": Rule("share of end-to-end time", 0),
    # a burst of errors with a precursor: critical from 20 in the window (weak: medium)
    "precursor": Rule("errors of the burst in the window", 2, ((20, 3),)),
    "precursor_weak": Rule("a weak precursor", 1),
    "worker_died": Rule("dead workers", 2),
    "worker_hung": Rule("hung syntheses", 2),
    "log_write": Rule("log lines dropped", 1, ((1, 2),)),
    "log_file": Rule("log file recreated", 1),
    "log_rotate": Rule("failed rotations", 1),
    "cache_disk": Rule("disk usage % or time to full", 2),
    "cache_disk_stale": Rule("an old disk reading", 0),
    "cache_write": Rule("failed cache writes", 1),
    "audio": Rule("syntheses with anomalous audio", 1),
    "audio_unchecked": Rule("voices without a baseline", 0),
    "webui": Rule("playback errors reported by the page", 1, ((10, 2),)),
}
# a client-caused failure code (4xx: the caller's input) is "high" only when it is this
# share of all syntheses, or this many times its rate in the look-back (a spike); medium
# below CLIENT_MIN failures
CLIENT_MIN = 10
CLIENT_HIGH_SHARE = 0.05
CLIENT_SPIKE = 3.0
CACHE_DISK_HIGH = 85.0  # % usage
CACHE_DISK_ETA_S = 86400.0  # full within a day


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


def pct(x: float) -> str:
    return f"{100.0 * x:.1f}%"


def client_severity(n: int, total: int, base_n: int, base_total: int) -> int:
    """Severity of ``n`` failures of a client-caused code among ``total`` syntheses:
    background noise (medium) unless a large share or a spike against the look-back."""
    if n < CLIENT_MIN:
        return 1
    if total and n / total >= CLIENT_HIGH_SHARE:
        return 2
    if base_total and total:
        base_rate = base_n / base_total
        if base_rate == 0.0 or (n / total) >= CLIENT_SPIKE * base_rate:
            return 2
    return 1


def _sev(kind: str, x: float = 0.0) -> int:
    return SEVERITY_RULES[kind].severity(x)


def _model_load_findings(c: Collected) -> list[Finding]:
    out = []
    for rec in c.model_fail[:3]:
        f = rec.fields
        after = [t for t in c.engine_ok if t > rec.ts]
        dep = [code for code in c.pats.codes if code in ("ENGINE_NOT_READY",
                                                         "SYNTHESIS_TIMEOUT",
                                                         "MODEL_LOAD_TIMEOUT")]
        fd = Finding(_sev("model_load"), "model_load", f"the model failed to load at "
                     f"{rec.ts} ({f.get('error_code', '?')}, engine {f.get('engine', '?')})",
                     affected=1)
        fd.details.append(f"model {f.get('model', '?')}; took {f.get('duration_ms', '?')} ms; "
                          f"where {f.get('where', '?')}; {f.get('exc_type', '')}")
        if rec.traceback:
            fd.details.append("last traceback line: " + rec.traceback[-1][:200])
        if dep:
            n = sum(c.pats.codes[code] for code in dep)
            fd.affected += n
            fd.details.append(f"then {n} syntheses failed with {', '.join(dep)}")
        fd.details.append(f"recovered: engine loaded at {after[0]}" if after
                          else "no successful engine_load after it in this window")
        fd.data = {"ts": rec.ts, "fields": f, "recovered": after[0] if after else None}
        out.append(fd)
    return out


def _failure_findings(c: Collected) -> list[Finding]:
    """The failure rate, then the input patterns of its top codes."""
    total, nfail, pats = c.total, c.nfail, c.pats
    if not total:
        return []
    rate = nfail / total
    top = pats.codes.most_common(5)
    fd = Finding(_sev("failure_rate", rate), "failure_rate", f"failure rate {pct(rate)} "
                 f"({nfail} of {total} syntheses)", affected=nfail)
    for code, n in top:
        where = pats.where[code].most_common(1)
        fd.details.append(f"{code}: {n} ({pct(n / nfail)} of failures)"
                          + (" (client input, 4xx)" if client_caused(code) else "")
                          + (f", where {where[0][0]}" if where else ""))
    fd.data = {"rate": rate, "failed": nfail, "total": total, "codes": dict(top)}
    out = [fd]
    for code, n in top[:4]:
        p = pats.pattern(code)
        if p is None:
            continue
        val = p["value"]
        what = f"{p['field']} in {val}" if p["bucket"] else f"{p['field']}={val}"
        stage = pats.stage[code].most_common(1)[0][0]
        where = pats.where[code].most_common(1)
        client = client_caused(code)
        sev = client_severity(n, total, c.base_codes[code], c.base_total) if client else \
            _sev("input_pattern", n)
        fd = Finding(sev, "input_pattern",
                     f"{code} fails the inputs with {what}"
                     + (" (client error, 4xx)" if client else ""), affected=n,
                     example=pats.example.get(code), client=client)
        fd.details.append(
            f"{pct(p['coverage'])} of the {n} {code} failures have {what}; "
            f"{pct(p['precision'])} of the {p['total_with_value']} syntheses with {what}"
            f" failed with it; stage {stage}"
            + (f"; where {where[0][0]}" if where else ""))
        fd.details.append(f"between {pats.first[code]} and {pats.last[code]}; "
                          f"hint: {hint(code)}")
        if client:
            fd.details.append("the caller's input: rejected with a 4xx, not a server fault"
                              + (f"; {c.base_codes[code]} of {c.base_total} in the look-back"
                                 if c.base_total else ""))
        fd.data = dict(p, error_code=code, stage=stage, client=client,
                       where=where[0][0] if where else None)
        out.append(fd)
    return out


def _failed_2xx_findings(c: Collected) -> list[Finding]:
    if not c.failed_2xx:
        return []
    return [Finding(_sev("failed_2xx"), "failed_2xx", f"{len(c.failed_2xx)} failed "
                    "syntheses were answered with HTTP 2xx", [f"e.g. {c.failed_2xx[0]}"],
                    len(c.failed_2xx), c.failed_2xx[0])]


def _latency_findings(c: Collected) -> list[Finding]:
    out = []
    since_t = ts_to_epoch(c.since, c.utc) if c.since else None
    for p in c.lat.slow_periods(since_t):
        comp = p["component"]
        fd = Finding(_sev("slow_period"), "slow_period", f"slow from {p['start']} to "
                     f"{p['end']}: p50 end to end {p['p50_ms']:.0f} ms against "
                     f"{p['baseline_p50_ms']:.0f} ms; {comp} is the slow part",
                     affected=p["n"], example=p["example"])
        fd.details.append(f"{comp}: p50 {p['component_p50_ms']:.0f} ms against "
                          f"{p['component_baseline_ms']:.0f} ms normally (+"
                          f"{p['delta_ms'][comp]:.0f} ms); the other components changed by "
                          + ", ".join(f"{k} {v:+.0f}" for k, v in p["delta_ms"].items()
                                      if k != comp) + " ms")
        if comp == "queue_wait":
            fd.details.append("the stages themselves did not slow down: requests waited for "
                              "a worker (add workers or reduce load; see QUEUE_FULL)")
        fd.data = p
        out.append(fd)
    shares = c.lat.shares()
    if shares:
        big = max(shares, key=lambda k: shares[k])
        out.append(Finding(_sev("time_share"), "time_share", f"most time goes to {big} "
                           f"({pct(shares[big])} of end-to-end time of uncached "
                           "successful syntheses)",
                           [", ".join(f"{k} {pct(v)}" for k, v in shares.items())],
                           data={"shares": shares}))
    return out


def _precursor_findings(c: Collected) -> list[Finding]:
    out = []
    for b in c.bursts:
        cand = best_precursor(b)
        if cand is None:
            continue
        sev = _sev("precursor_weak") if b.weak else _sev("precursor", b.in_window)
        ncand = int(cand["count"])
        fd = Finding(sev, "precursor",
                     f"{b.count} x {b.code} from {b.start}"
                     + (f" (began before the window; {b.in_window} in it)"
                        if b.before_window else "")
                     + f": preceded by {cand['key']} ({ncand} {str(cand['level']).lower()} "
                     f"record{'s' if ncand != 1 else ''}, the first "
                     f"{human_duration(float(cand['lead_s']))} earlier)",
                     affected=b.in_window, example=b.example_id, client=b.client)
        fd.details.append(f"same family: {cand['same_family']}, same resource: "
                          f"{cand['same_resource']}, {cand['lift']}x its usual rate; "
                          f"hint for {b.code}: {hint(b.code)}")
        fd.data = {"burst": {"code": b.code, "start": b.start, "end": b.end,
                             "count": b.count, "in_window": b.in_window,
                             "before_window": b.before_window}, "precursor": cand}
        out.append(fd)
    return out


def _worker_findings(deaths: list[Record]) -> list[Finding]:
    """Engine workers that died (crash, kill) or were killed for hanging past the timeout."""
    out = []
    died = [r for r in deaths if r.event == "worker_died"]
    killed = [r for r in deaths if r.event == "worker_killed"]
    if died:
        how = Counter(r.fields.get("signal") or f"exit code {r.fields.get('exitcode', '?')}"
                      for r in died)
        jobs = [r.fields["job"] for r in died if r.fields.get("job")]
        fd = Finding(_sev("worker_died"), "worker_died", f"{len(died)} engine worker(s) "
                     "died (" + ", ".join(f"{n} x {k}" for k, n in how.most_common())
                     + f"), first at {died[0].ts}; {len(jobs)} synthesis(es) running on them "
                     "failed with ENGINE_CRASHED", affected=len(jobs),
                     example=jobs[0] if jobs else None)
        fd.details.append("each worker was restarted (worker_restarted); other requests were "
                          f"not affected; hint for ENGINE_CRASHED: {hint('ENGINE_CRASHED')}")
        fd.data = {"died": len(died), "how": dict(how), "jobs": jobs[:100]}
        out.append(fd)
    if killed:
        jobs = [r.fields["job"] for r in killed if r.fields.get("job")]
        fd = Finding(_sev("worker_hung"), "worker_hung", f"{len(killed)} synthesis(es) hung "
                     f"past the timeout (SYNTHESIS_TIMEOUT), first at {killed[0].ts}; their "
                     "workers were killed and replaced", affected=len(killed),
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
        fd = Finding(_sev("log_write", dropped), "log_write", f"writing the log failed "
                     f"{len(rec)} time(s) for {secs:.1f} s in all (LOG_WRITE_FAILED: "
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
        fd = Finding(_sev("log_file"), "log_file", "app.log was " + ", ".join(
            f"{k} {n} time(s)" for k, n in reasons.items()) + " while the service was "
            f"writing it (first at {reopened[0].ts}); the writer recreated it: records "
            "written before that went with the old file", affected=len(reopened))
        fd.details.append(f"path {reopened[0].fields.get('path', '?')}")
        fd.data = {"reasons": dict(reasons)}
        out.append(fd)
    rot = [r for r in trouble if r.event == "log_rotate_failed"]
    if rot:
        fd = Finding(_sev("log_rotate"), "log_rotate", f"log rotation failed {len(rot)} "
                     f"time(s) (first at {rot[0].ts}: {rot[0].fields.get('error', '?')}); "
                     "app.log grew past its size limit meanwhile, nothing lost",
                     affected=len(rot))
        fd.details.append(f"hint: {hint('LOG_WRITE_FAILED')}")
        fd.data = {"failures": len(rot)}
        out.append(fd)
    return out


def _cache_findings(c: Collected) -> list[Finding]:
    out = []
    end_t = ts_to_epoch(c.win.last, c.utc) if c.win.last else None
    gauge = c.cache.gauge(end_t)
    slope, eta = c.cache.trend(end_t=end_t)
    if gauge is not None and gauge["stale"]:
        # a gauge is never extrapolated past its last reading: say how old it is
        age = human_duration(float(gauge["age_s"]))
        out.append(Finding(
            _sev("cache_disk_stale"), "cache_disk", f"cache disk last reported "
            f"{gauge['usage']}% at {str(gauge['ts'])[:19]}, {age} before the end of the logs",
            ["no newer cache_health reading: where it is written only above a threshold "
             "(the tutorial: 85%), usage has been below it since; not extrapolated"],
            data={"usage": gauge["usage"], "ts": gauge["ts"], "age_s": gauge["age_s"],
                  "stale": True, "slope": None, "eta_s": None}))
    elif gauge is not None and (float(gauge["usage"]) >= CACHE_DISK_HIGH
                                or (eta is not None and eta < CACHE_DISK_ETA_S)):
        usage = gauge["usage"]
        out.append(Finding(_sev("cache_disk"), "cache_disk", f"cache disk at {usage}%"
                           + (f", full in ~{human_duration(eta)} at {slope:+.2f} %/h"
                              if eta else "")
                           + f" (reading of {str(gauge['ts'])[:19]}, "
                           f"{human_duration(float(gauge['age_s']))} before the end of "
                           "the logs)",
                           data={"usage": usage, "slope": slope, "eta_s": eta,
                                 "ts": gauge["ts"], "age_s": gauge["age_s"],
                                 "stale": False}))
    wf = c.cache.warnings.get("CACHE_WRITE_FAILED", 0)
    if wf:
        out.append(Finding(_sev("cache_write"), "cache_write", f"{wf} cache writes failed "
                           "(CACHE_WRITE_FAILED, first "
                           f"{c.cache.first_warning.get('CACHE_WRITE_FAILED')}"
                           "); audio was still served but will be recomputed",
                           affected=wf))
    return out


def _audio_findings(c: Collected) -> list[Finding]:
    audio = c.audio
    anomalies = audio.anomalies(5.0, 20)
    if anomalies:
        groups: Counter[tuple[str, str]] = Counter((str(a["group"][0]), str(a["metric"]))
                                                   for a in anomalies)
        ids = sorted({str(a["id"]) for a in anomalies})
        (g, m), n = groups.most_common(1)[0]
        sel = [a for a in anomalies if a["group"][0] == g and a["metric"] == m]
        fd = Finding(_sev("audio"), "audio", f"{len(ids)} syntheses with anomalous audio; "
                     f"most: {n} x {m} on voice {g} (median {sig(float(sel[0]['median']))}, "
                     f"these {sig(min(float(a['value']) for a in sel))}.."
                     f"{sig(max(float(a['value']) for a in sel))})",
                     affected=len(ids), example=str(sel[0]["id"]))
        fd.details.append(f"from {sel[0]['ts']} to {sel[-1]['ts']}; `ttsops logs audio` "
                          "lists them (per-voice baseline, median ± 5·1.4826·MAD)")
        note = audio.baseline_note(20, ["voice"])
        if note:
            fd.details.append(note + ": not checked")
        fd.data = {"ids": ids, "groups": {f"{a}/{b}": k for (a, b), k in groups.items()}}
        return [fd]
    if audio.n:
        note = audio.baseline_note(20, ["voice"])
        if note and len(audio.thin_groups(20)) == len(audio.group_sizes()):
            # no baseline at all: this is "not checked", never "audio fine"
            return [Finding(_sev("audio_unchecked"), "audio", f"audio not checked: "
                            f"{audio.n} syntheses with audio_metrics, too few per voice for "
                            "a baseline", [note], data={"no_baseline": True, "n": audio.n})]
        if note:
            return [Finding(_sev("audio_unchecked"), "audio", "no anomalous audio in the "
                            "voices with a baseline; some voices could not be checked",
                            [note], data={"no_baseline": False, "n": audio.n})]
    return []


def _webui_findings(c: Collected) -> list[Finding]:
    if not c.webui_err:
        return []
    n = sum(c.webui_err.values())
    (detail, ua), k = c.webui_err.most_common(1)[0]
    fd = Finding(_sev("webui", n), "webui", f"the web page reported {n} playback "
                 "errors (the play button 'does nothing')", affected=n,
                 example=c.webui_ids[0] if c.webui_ids else None)
    fd.details.append(f"{k} of them: {detail or '(no detail)'} "
                      + (f"on {ua}" if ua else "(user agent not logged)"))
    sts = Counter("unseen" if v is None else "success" if v == "success" else "failed"
                  for v in c.webui_status.values())
    nid = len(c.webui_status)
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
    if c.webui_noid:
        fd.details.append(f"{c.webui_noid} reports name no synthesis id")
    fd.data = {"errors": n, "by_detail_ua": [[d, u, k] for (d, u), k in
                                             c.webui_err.most_common()],
               "ids": {"success": sts["success"], "failed": sts["failed"],
                       "unseen": sts["unseen"], "no_id": c.webui_noid}}
    return [fd]


def judge(c: Collected) -> list[Finding]:
    """The findings, most severe first (server faults before the caller's at the same
    severity, then the most affected first)."""
    findings = (_model_load_findings(c) + _failure_findings(c) + _failed_2xx_findings(c)
                + _latency_findings(c) + _precursor_findings(c)
                + _worker_findings(c.worker_deaths) + _log_findings(c.log_trouble)
                + _cache_findings(c) + _audio_findings(c) + _webui_findings(c))
    findings.sort(key=lambda f: (-f.severity, f.client, -f.affected))
    return findings
