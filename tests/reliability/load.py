"""Load, soak and a SIGKILL under load, against a real `ttsops serve` (shared by the tests
and bench/reliability.py). Clients are asyncio tasks on keep-alive connections; every
request carries its own X-Request-ID so that the log can be matched against what the
clients received."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import os
import signal
import statistics
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ttsops.logline import Record
from ttsops.logsink import LogSink

from .kit import SPEECH, body, gzip_ok, log_files, read_log, start_server


@dataclass
class Shot:
    """One request as the client saw it."""

    rid: str
    sent: float
    done: float | None = None
    status: int | None = None
    code: str | None = None
    sid: str | None = None
    error: str | None = None
    retry_after: str | None = None

    @property
    def latency(self) -> float:
        return (self.done or self.sent) - self.sent


@dataclass
class Phase:
    name: str
    clients: int
    seconds: float
    shots: list[Shot] = field(default_factory=list)

    @property
    def answered(self) -> list[Shot]:
        return [s for s in self.shots if s.status is not None]

    def outcomes(self) -> Counter[str]:
        return Counter(f"{s.status} {s.code}" if s.code else str(s.status)
                       for s in self.answered)

    def latency_ms(self, ok: bool = True) -> dict[str, float]:
        xs = sorted(1000.0 * s.latency for s in self.answered
                    if (s.status == 200) == ok)
        if not xs:
            return {}
        return {"n": len(xs), "p50": xs[len(xs) // 2], "p99": xs[min(len(xs) - 1,
                                                                       int(len(xs) * 0.99))],
                "max": xs[-1]}


async def _client(port: int, phase: Phase, idx: int, stop_at: float,
                  pause_after_429: float, repeat: int | None = None) -> None:
    """One keep-alive connection sending one request after the other (a minimal HTTP/1.1
    client: httpx's pool is itself the bottleneck with hundreds of connections)."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as e:
        phase.shots.append(Shot(f"{phase.name}-{idx}-x", time.monotonic(),
                                error=type(e).__name__))
        return
    n = 0
    try:
        while time.monotonic() < stop_at:
            shot = Shot(f"{phase.name}-{idx}-{n}", time.monotonic())
            phase.shots.append(shot)
            n += 1
            text = (f"{phase.name} client {idx} says {n}." if repeat is None
                    else f"The same {(idx + n) % repeat} again.")  # repeated: cache hits
            payload = json.dumps(body(text, response_format="pcm")).encode()
            writer.write(b"POST " + SPEECH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: application/json\r\nX-Request-ID: "
                         + shot.rid.encode() + b"\r\nContent-Length: "
                         + str(len(payload)).encode() + b"\r\n\r\n" + payload)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    headers[k.strip().lower()] = v.strip()
                data = await reader.readexactly(int(headers.get(b"content-length", b"0")))
            except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                shot.error = type(e).__name__  # the server went away (the kill drill)
                return
            shot.done = time.monotonic()
            shot.status = int(head[9:12])
            sid = headers.get(b"x-synthesis-id")
            shot.sid = sid.decode() if sid else None
            ra = headers.get(b"retry-after")
            shot.retry_after = ra.decode() if ra else None
            if shot.status >= 400:
                try:
                    shot.code = json.loads(data)["error"]["code"]
                except (ValueError, KeyError, TypeError):
                    shot.code = "(no error body)"
            if shot.status == 429:
                await asyncio.sleep(pause_after_429)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def run_phase(url: str, name: str, clients: int, seconds: float,
              pause_after_429: float = 0.05, repeat: int | None = None) -> Phase:
    """``clients`` concurrent clients, each sending one request after the other; every
    text new (uncached), or one of ``repeat`` texts (cache hits after the first)."""
    phase = Phase(name, clients, seconds)

    async def main() -> None:
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(_client(_port(url), phase, i, stop_at, pause_after_429,
                                       repeat) for i in range(clients)))

    asyncio.run(main())
    return phase


# --- memory ------------------------------------------------------------------------------

def rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler:
    """Samples the RSS of one process every ``every`` seconds in a thread."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        self.pid = pid
        self.every = every
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            kb = rss_kb(self.pid)
            if kb is not None:
                self.samples.append((time.monotonic() - t0, kb))
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._t.join()


def trend(samples: list[tuple[float, int]], skip: float = 0.0) -> dict[str, float]:
    """RSS over time after ``skip`` seconds: first and last third medians (MB) and the
    least-squares slope (MB per minute)."""
    pts = [(t, kb / 1024.0) for t, kb in samples if t >= skip]
    if len(pts) < 6:
        raise ValueError(f"too few RSS samples ({len(pts)})")
    k = len(pts) // 3
    first = statistics.median(v for _, v in pts[:k])
    last = statistics.median(v for _, v in pts[-k:])
    slope = statistics.linear_regression([t for t, _ in pts], [v for _, v in pts]).slope
    return {"first_mb": first, "last_mb": last, "growth_mb": last - first,
            "slope_mb_per_min": slope * 60.0, "min_mb": min(v for _, v in pts),
            "max_mb": max(v for _, v in pts), "samples": float(len(pts))}


# --- the log against what the clients got ------------------------------------------------------

def match_log(recs: list[Record], shots: list[Shot]) -> dict[str, int]:
    """Every answered request has exactly one http_request record with its request id and
    status; every synthesis id a client received has exactly one synthesis_complete."""
    http = Counter(r.get("request_id") for r in recs if r.event == "http_request")
    status = {r.get("request_id"): r.get("status") for r in recs if r.event == "http_request"}
    complete = Counter(r.get("id") for r in recs if r.event == "synthesis_complete")
    answered = [s for s in shots if s.status is not None]
    missing_http = [s.rid for s in answered if http[s.rid] != 1
                    or status.get(s.rid) != str(s.status)]
    sids = [s.sid for s in answered if s.sid]
    missing_complete = [sid for sid in sids if complete[sid] != 1]
    assert not missing_http, f"{len(missing_http)} answered requests without exactly one " \
                             f"matching http_request: {missing_http[:5]}"
    assert not missing_complete, f"{len(missing_complete)} syntheses without exactly one " \
                                 f"synthesis_complete: {missing_complete[:5]}"
    return {"answered": len(answered), "http_request": len(answered),
            "syntheses": len(sids), "synthesis_complete": len(sids), "lost": 0}


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


def finished_while_queued(recs: list[Record], ids: set[str]) -> list[int]:
    """For each synthesis of ``ids``: how many syntheses finished while it waited in the
    queue - a count, not a time, so a machine that slows down for a while (other processes
    on its cores) changes neither. Its wait is the ``queue_ms`` the pool measured, ending
    when its first stage on a worker began (that stage's record time less its duration)."""
    # the syntheses a worker finished (a cache hit never queues; a refusal - 429
    # QUEUE_FULL - writes its synthesis_complete, status=failed, without a worker)
    ends = sorted(_epoch(r.ts) for r in recs if r.event == "synthesis_complete"
                  and r.get("status") == "success" and r.get("cache_hit") != "true")
    queue_ms = {r.get("id"): float(r.get("queue_ms") or 0) for r in recs
                if r.event == "synthesis_complete" and r.get("id") in ids}
    began: dict[str, float] = {}
    for r in recs:
        sid = r.get("id")
        if r.event == "stage_time" and sid in ids and r.get("stage") != "text_normalize":
            t = _epoch(r.ts) - float(r.get("duration_ms") or 0) / 1000.0
            began[sid] = min(t, began.get(sid, t))
    return [bisect.bisect_left(ends, began[sid]) -
            bisect.bisect_right(ends, began[sid] - queue_ms[sid] / 1000.0)
            for sid in sorted(ids) if sid in began and sid in queue_ms]


# --- 50 clients, then 3x the queue --------------------------------------------------------------

def soak(root: Path, rounds: int = 4, round_s: float = 2.5, overload_s: float = 4.0,
         clients: int = 50, workers: int = 2, queue_size: int = 64, delay_ms: float = 20.0,
         warmup_s: float = 5.0, retry_pause: float = 0.25) -> dict[str, Any]:
    """Load, then overload, with the server's RSS watched, then the whole log matched.

    1. warm-up: ``clients`` clients on a few repeated texts (cache hits: fills the
       per-synthesis tables that are bounded, e.g. the recent syntheses, quickly);
    2. ``rounds`` rounds of ``clients`` concurrent clients with new texts (the queue holds
       them all); the RSS after each round must not trend upwards;
    3. 3 x ``queue_size`` clients for ``overload_s``: admitted requests see a bounded
       wait, the others an immediate 429 QUEUE_FULL with Retry-After (each client retries
       ``retry_pause`` after a 429);
    4. one more round: the service is back to normal;
    then the log is read back from disk: every answered request has its http_request and
    every synthesis its one synthesis_complete."""
    s = start_server(root, engine="fake", workers=workers, queue_size=queue_size,
                     fake_delay_ms=delay_ms, log_max_bytes=8 << 20)
    phases: list[Phase] = []
    round_rss: list[int] = []
    round_syntheses: list[int] = []  # 200s answered in each steady round
    try:
        pid = s.proc.pid
        with s.client() as c:  # the repeated texts, cached once
            for k in range(32):
                c.post(SPEECH, json=body(f"The same {k} again.", response_format="pcm"))
        with RssSampler(pid) as rss:
            phases.append(run_phase(s.url, "warmup", clients, warmup_s, repeat=32))
            for k in range(rounds):
                phases.append(run_phase(s.url, f"steady{k}", clients, round_s))
                round_rss.append(rss_kb(pid) or 0)
                round_syntheses.append(sum(x.status == 200 for x in phases[-1].shots))
            over = run_phase(s.url, "overload", 3 * queue_size, overload_s,
                             pause_after_429=retry_pause)
            phases.append(over)
            over_rss = rss_kb(pid) or 0
            after = run_phase(s.url, "after", clients, round_s)
            phases.append(after)
            after_rss = rss_kb(pid) or 0
        workers_rss = [rss_kb(p) for p in _children(pid)]
    finally:
        s.stop()
    recs = read_log(s.log_dir)
    matched = match_log(recs, [x for ph in phases for x in ph.shots])
    admitted = {x.sid for x in over.answered if x.status == 200}
    over_queue_ms = [float(r.get("queue_ms") or 0) for r in recs
                     if r.event == "synthesis_complete" and r.get("id") in admitted]
    over_finished_while_queued = finished_while_queued(recs, admitted)
    # the server's own time per overload request by status (its http_request record): a
    # client's latency also holds its own thread's turn among ~200 on a loaded machine
    over_rids = {x.rid for x in over.answered}
    over_http_ms: dict[str, list[float]] = {}
    for r in recs:
        if r.event == "http_request" and r.get("request_id") in over_rids:
            over_http_ms.setdefault(str(r.get("status")), []).append(
                float(r.get("duration_ms") or 0))
    steady = Phase("steady", clients, rounds * round_s,
                   [x for ph in phases if ph.name.startswith("steady") for x in ph.shots])
    return {"server": s, "phases": phases, "steady": steady, "overload": over,
            "after": after, "rss": rss.samples, "round_rss_kb": round_rss,
            "round_syntheses": round_syntheses,
            "overload_rss_kb": over_rss, "overload_queue_ms": over_queue_ms,
            "overload_finished_while_queued": over_finished_while_queued,
            "overload_http_ms": over_http_ms,
            "after_rss_kb": after_rss, "round_s": round_s,
            "workers_rss_kb": workers_rss, "log": matched, "records": len(recs),
            "queue_size": queue_size, "workers": workers, "delay_ms": delay_ms,
            "clients": clients}


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


# --- SIGKILL of the server under load, across many rotations ---------------------------

def kill_under_load(root: Path, seconds: float = 8.0, clients: int = 8,
                    kill_at: float = 0.6, max_bytes: int = 16384,
                    min_rotated: int = 0, rotated_within_s: float = 120.0) -> dict[str, Any]:
    """Sustained load with rotation every ``max_bytes``; the server is SIGKILLed at
    ``kill_at`` of the run - and, with ``min_rotated``, not before that many rotated .gz
    files are on disk (a loaded machine serves fewer requests a second: the kill waits for
    the rotations the drill is about, up to ``rotated_within_s``, instead of a guessed
    time; the clients' load goes on until the kill ends it). Then: every .gz sound, every
    line a whole record; every synthesis answered well before the kill has exactly one
    synthesis_complete (answered = the client received the response), and those lost
    are the tail of the writer's queue (``not_tail``: records on disk behind a lost one);
    every synthesis_complete belongs to an answered request or to one in flight at the
    kill; start-up recovery loses and doubles nothing."""
    s = start_server(root, engine="fake", workers=2, log_max_bytes=max_bytes,
                     log_block_bytes=4096, log_backup_count=100000, fake_delay_ms=5)
    phase = Phase("kill", clients, seconds)
    killed_at: list[float] = []
    started = time.monotonic()

    def killer() -> None:
        time.sleep(seconds * kill_at)
        give_up = started + rotated_within_s
        while (min_rotated and time.monotonic() < give_up
               and sum(1 for _ in s.log_dir.glob("app.log.*.gz")) < min_rotated):
            time.sleep(0.02)
        killed_at.append(time.monotonic())
        os.kill(s.proc.pid, signal.SIGKILL)

    threading.Thread(target=killer, daemon=True).start()

    async def main() -> None:
        # the clients stop when the kill cuts their connections (or, without one by then,
        # at the end of the run)
        stop_at = started + (seconds if not min_rotated else rotated_within_s + seconds)
        await asyncio.gather(*(_client(_port(s.url), phase, i, stop_at, 0.05)
                               for i in range(clients)))

    asyncio.run(main())
    s.proc.wait(10)
    kill_t = killed_at[0]
    with contextlib.suppress(Exception):
        for p in _children(s.proc.pid):
            os.kill(p, signal.SIGKILL)
    files = [p.name for p in log_files(s.log_dir)]
    bad_gz = gzip_ok(s.log_dir)
    torn = _torn_lines(s.log_dir)
    recs = read_log(s.log_dir)
    answered = [x for x in phase.shots if x.status is not None]
    in_flight = [x for x in phase.shots if x.status is None]
    by_rid = {x.rid: x for x in phase.shots}
    complete = [r for r in recs if r.event == "synthesis_complete"]
    per_rid = Counter(r.get("request_id") for r in complete)
    doubled = [k for k, n in per_rid.items() if n > 1]
    phantom = [r.get("request_id") for r in complete if r.get("request_id") not in by_rid]
    logged = set(per_rid)
    # the writer polls every 50 ms: what was answered well before the kill is on disk
    margin = 0.5
    early = [x for x in answered if x.done is not None and x.done < kill_t - margin]
    late = [x for x in answered if x not in early]
    early_missing = [x.rid for x in early if x.rid not in logged]
    late_missing = [x.rid for x in late if x.rid not in logged]
    inflight_logged = [x.rid for x in in_flight if x.rid in logged]
    # a synthesis_complete is written by the main process before the response is sent,
    # onto the writer's one FIFO queue: once one answered synthesis lacks its record, so
    # must every request sent after that answer (its record came later in the queue). A
    # record on disk behind a lost one would be a loss from the middle, not the tail.
    lost = [x.done for x in answered if x.sid and x.rid not in logged and x.done is not None]
    first_lost = min(lost, default=None)
    not_tail = [] if first_lost is None else [
        x.rid for x in phase.shots if x.rid in logged and x.sent > first_lost]
    # start-up recovery (a new writer on the same directory) finishes any rotation the
    # kill interrupted, and loses or doubles nothing
    LogSink(s.log_dir, max_bytes=max_bytes, block_bytes=4096, backup_count=100000).close()
    after = read_log(s.log_dir)
    key = [(r.ts, r.event, r.get("request_id"), r.get("id")) for r in recs]
    key_after = [(r.ts, r.event, r.get("request_id"), r.get("id")) for r in after]
    return {"server": s, "phase": phase, "files": files, "rotated": sum(
        1 for f in files if f.endswith(".gz")), "bad_gz": bad_gz, "torn": torn,
        "records": len(recs), "synthesis_complete": len(complete),
        "answered": len(answered), "answered_syntheses": len([x for x in answered if x.sid]),
        "early": len(early), "early_missing": early_missing, "late": len(late),
        "late_missing": late_missing, "in_flight": len(in_flight),
        "in_flight_logged": inflight_logged, "doubled": doubled, "phantom": phantom,
        "not_tail": not_tail,
        "lost_within_s": 0.0 if first_lost is None else kill_t - first_lost,
        "recovered_same": sorted(key) == sorted(key_after), "bad_gz_after": gzip_ok(s.log_dir),
        "kill_after_s": kill_t - phase.shots[0].sent if phase.shots else 0.0}


def _torn_lines(log_dir: Path) -> list[str]:
    """Lines of the plain files that are neither a record nor a traceback line, and a
    last line without its newline."""
    bad = []
    for name in ("app.log", "app.log.0"):
        p = log_dir / name
        if not p.exists():
            continue
        data = p.read_bytes()
        if data and not data.endswith(b"\n"):
            bad.append(f"{name}: last line has no newline")
        for ln in data.decode("utf-8", "replace").splitlines():
            if not (ln[:4].isdigit() and " - " in ln) and not ln.startswith("\t"):
                bad.append(f"{name}: {ln[:80]}")
    return bad
