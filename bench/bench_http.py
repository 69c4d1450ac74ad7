"""HTTP throughput and latency of `ttsops serve`, against named baselines measured in the
same run. Every server is a separate process; the load comes from another process over
loopback keep-alive HTTP/1.1 connections: ``wrk`` (Debian package ``wrk``) when it is
installed, a light C load generator that leaves the two cores to the servers, else this
process's own asyncio client (``--loadgen python``), which costs a core at high rates and
so flatters nobody: both sides of each ratio are loaded by the same generator.

    python bench/bench_http.py [--workers 1] [--seconds 8] [--runs 3] [--format wav]
                               [--loadgen auto|wrk|python]

1. uncached: every request a new text, through HTTP (queue, worker IPC, logging, cache
   write included), as a ratio of the engine-only throughput of the same number of
   worker processes running the pipeline's engine half (``back``: llm_prompt_gen ..
   audio_render) in a loop on the same texts, without HTTP. Target >= 0.8.
   The raw engine (prepare + infer only) is printed beside it for scale.
2. cache hit: the same request again and again through the full service, as a ratio of
   a bare Starlette route (same uvicorn settings) returning the same bytes. Target >= 0.7.
   Beside them, the contract's floor: the bare route doing only what every hit must
   (ids, strict validation, the five records through the real writer, the metrics, the
   answer's ten headers and token) - the ceiling of any implementation of a hit here.

Medians over ``--runs``; p50/p99 latency of the median run. Beside each throughput, the
CPU time the server's processes spent per request (main process; worker processes), read
from /proc: it says where the time goes, and it is less at the mercy of a shared machine
than the rates. For the uncached load, the worker's own engine half under HTTP load (the
sum of its four ``stage_time`` records in the server's log) is printed beside the
engine-only time per synthesis. Needs the real eSpeak NG engine (espeakng-loader).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

SENTENCES = (
    "今天天气真好，我们一起去公园散步吧。",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "请在会议开始前五分钟到达三号会议室。",
    "Your order has shipped and should arrive within three business days.",
)


def text_for(n: int) -> str:
    """A sentence and a number: every request of the uncached load is a new text. All
    loads use 5-digit numbers (10000..99999), so that texts are alike in length."""
    return f"{SENTENCES[n % len(SENTENCES)]} {n}."


BASELINE_NUMBERS = [10000 + (k * 1409) % 90000 for k in range(64)]


# --- load generation ---------------------------------------------------------------------

@dataclass
class LoadResult:
    seconds: float
    latencies: list[float]
    statuses: Counter[int]
    count: int | None = None  # requests answered (wrk); else len(latencies)
    pcts: dict[float, float] = field(default_factory=dict)  # (wrk) quantile -> ms
    cpu_main_ms: float = float("nan")  # server main process CPU per request
    cpu_workers_ms: float = float("nan")  # worker processes' CPU per request

    @property
    def n(self) -> int:
        return self.count if self.count is not None else len(self.latencies)

    @property
    def rps(self) -> float:
        return self.n / self.seconds

    @property
    def bad(self) -> int:
        return (self.statuses - Counter({200: self.statuses[200]})).total()

    def pct(self, q: float) -> float:
        if q in self.pcts:
            return self.pcts[q]
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000.0 if xs else float("nan")


async def _connection(port: int, make_body: Callable[[], bytes], start: float, stop: float,
                      out: LoadResult) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            body = make_body()
            req = (b"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   b"Content-Type: application/json\r\nContent-Length: "
                   + str(len(body)).encode() + b"\r\n\r\n" + body)
            t0 = time.perf_counter()
            if t0 >= stop:
                return
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            t1 = time.perf_counter()
            if t0 >= start and t1 <= stop:
                out.latencies.append(t1 - t0)
                out.statuses[status] += 1
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def load_python(port: int, make_body: Callable[[], bytes], concurrency: int, seconds: float,
                warmup: float = 1.0) -> LoadResult:
    """``concurrency`` keep-alive connections for ``warmup + seconds``; only requests that
    start and end inside the measured window count."""

    async def main() -> LoadResult:
        now = time.perf_counter()
        start, stop = now + warmup, now + warmup + seconds
        out = LoadResult(seconds, [], Counter())
        await asyncio.gather(*(_connection(port, make_body, start, stop, out)
                               for _ in range(concurrency)))
        return out

    return asyncio.run(main())


_WRK_SCRIPT = """
local bodies = {%s}
local counter = %d
local unique = %s
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local body
  if unique then
    body = bodies[(counter %% #bodies) + 1][1] .. counter .. bodies[(counter %% #bodies) + 1][2]
    counter = counter + 1
  else
    body = bodies[1][1]
  end
  return wrk.format(nil, "/v1/audio/speech", nil, body)
end
done = function(summary, latency, requests)
  io.write("BENCH ", summary.requests, " ", summary.duration, " ",
           summary.errors.status, " ", summary.errors.connect + summary.errors.read
           + summary.errors.write + summary.errors.timeout, "\\n")
  for _, q in ipairs({50, 99}) do
    io.write("PCT ", q, " ", latency:percentile(q), "\\n")
  end
end
"""


def _lua_str(b: bytes) -> str:
    return '"' + "".join(f"\\{c}" for c in b) + '"'


def load_wrk(port: int, bodies: list[tuple[bytes, bytes]] | bytes, concurrency: int,
             seconds: float, warmup: float = 1.0, start: int = 0) -> LoadResult:
    """wrk with one thread: ``bodies`` is one fixed body, or (prefix, suffix) pairs around
    a counter (a new text for every request, from ``start`` on)."""
    unique = not isinstance(bodies, bytes)
    pairs = bodies if not isinstance(bodies, bytes) else [(bodies, b"")]
    lua = _WRK_SCRIPT % (", ".join(f"{{{_lua_str(a)}, {_lua_str(b)}}}" for a, b in pairs),
                         start, "true" if unique else "false")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(lua)
        script = fh.name
    url = f"http://127.0.0.1:{port}/v1/audio/speech"
    try:
        if warmup > 0:
            warm = _WRK_SCRIPT % (", ".join(f"{{{_lua_str(a)}, {_lua_str(b)}}}"
                                            for a, b in pairs),
                                  start + 10**8, "true" if unique else "false")
            with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
                fh.write(warm)
            subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(warmup))}s",
                            "-s", fh.name, url], capture_output=True, check=True)
            os.unlink(fh.name)
        out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s",
                              "--timeout", "30s", "-s", script, url],
                             capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script)
    m = re.search(r"^BENCH (\d+) (\d+) (\d+) (\d+)$", out, re.M)
    if m is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    n, dur_us, non2xx, errors = (int(x) for x in m.groups())
    pcts = {int(q) / 100: float(v) / 1000.0
            for q, v in re.findall(r"^PCT (\d+) ([\d.e+]+)$", out, re.M)}
    statuses: Counter[int] = Counter({200: n - non2xx})
    if non2xx:
        statuses[0] += non2xx  # not 2xx/3xx (wrk does not say which)
    if errors:
        statuses[-1] += errors
    return LoadResult(dur_us / 1e6, [], statuses, count=n, pcts=pcts)


# --- CPU accounting ---------------------------------------------------------------------

def _cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            f = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


class CpuMeter:
    """CPU seconds of a server's main process and of its child processes (workers)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.t0 = self._now()

    def _now(self) -> tuple[float, float]:
        return _cpu_s(self.pid), sum(_cpu_s(c) for c in _children(self.pid))

    def per_request(self, r: LoadResult) -> LoadResult:
        main, kids = self._now()
        n = max(r.n, 1)
        r.cpu_main_ms = (main - self.t0[0]) * 1000.0 / n
        r.cpu_workers_ms = (kids - self.t0[1]) * 1000.0 / n
        return r


# --- servers -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} never answered 200")


def start_ttsops(root: Path, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTSOPS_")}
    env.update(TTSOPS_LOG_DIR=str(root / "logs"), TTSOPS_CACHE_DIR=str(root / "cache"),
               TTSOPS_QUEUE_SIZE="256")
    proc = subprocess.Popen([sys.executable, "-m", "ttsops", "serve", "--port", str(port),
                             "--workers", str(workers), "--engine", "espeak"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/readyz")
    return proc, port


def start_bare(audio: Path, content_type: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--bare-server", str(port), str(audio),
                             content_type], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/healthz")
    return proc, port


def bare_app(data: bytes, content_type: str) -> Any:
    """A bare Starlette route returning the same bytes."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    async def speech(request: Request) -> Response:
        json.loads(await request.body())
        return Response(data, media_type=content_type)

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/v1/audio/speech", speech, methods=["POST"]),
                             Route("/healthz", health)])


def bare_server(port: int, audio: str, content_type: str) -> None:
    """A bare Starlette route returning the same bytes, under the same uvicorn settings."""
    import uvicorn

    uvicorn.run(bare_app(Path(audio).read_bytes(), content_type), host="127.0.0.1",
                port=port, log_config=None, access_log=False, server_header=False)


def start_floor(audio: Path, content_type: str, log_dir: Path
                ) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--floor-server", str(port), str(audio),
                             content_type, str(log_dir)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/healthz")
    return proc, port


def floor_server(port: int, audio: str, content_type: str, log_dir: str) -> None:
    """``floor_app`` under the same uvicorn settings."""
    import uvicorn

    from ttsops import events, logsink

    events.set_sink(logsink.LogSink(log_dir))
    uvicorn.run(floor_app(Path(audio).read_bytes(), content_type), host="127.0.0.1",
                port=port, log_config=None, access_log=False, server_header=False)


def floor_app(data: bytes, content_type: str) -> Any:
    """The bare route plus only what the contract makes every cache hit do: a request id
    and a synthesis id, the request validated by the API's strict model, the five records
    (synthesis_start, stage_time, audio_metrics, synthesis_complete, http_request) through
    the real log writer, the HTTP and synthesis metrics, the answer's ten headers with
    its synthesis token. No cache lookup, limits, CORS or timers: what no implementation
    of the contract can leave out, so its rate is the ceiling of a cache hit here.
    The records go to the sink installed (``events.set_sink``)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from ttsops import events
    from ttsops.pipeline import records
    from ttsops.server import ids
    from ttsops.server.metrics import Metrics
    from ttsops.server.routes_openai import (
        SpeechRequest,
        audio_metrics_header,
        synthesis_request,
    )
    from ttsops.server.tokens import SynthesisTokens

    metrics, tokens = Metrics(), SynthesisTokens()
    http = events.get_logger("ttsops.server.http")
    audio_m = {"rms": 0.09, "peak": 0.89, "spectral_centroid": 1808.7, "silence_ratio": 0.15,
               "clipped_ratio": 0.0}

    class Hit:
        cache_hit, format, duration_ms = True, "wav", 5250.9
        total_ms = 0.1

    async def speech(request: Request) -> Response:
        t0 = time.perf_counter()
        rid, sid = ids.request_id(), ids.synthesis_id()
        req = synthesis_request(SpeechRequest.model_validate_json(await request.body()),
                                "espeak")
        with events.context(request_id=rid):
            with events.context(id=sid):
                records.start(sid, text=req.text, text_len=len(req.text), lang="zh",
                              voice=req.voice, fmt=req.format, engine="espeak",
                              cache_hit=True, speed=req.speed)
                records.stage_time(sid, "text_normalize", 0.01, 0.01, segments=1)
                records.audio_metrics(sid, audio_m)
                records.complete(sid, status="success", duration_ms=0.1, queue_ms=0.0,
                                 text_len=len(req.text), audio_size_kb=226.2, rtf=0.0,
                                 cache_hit=True, cache_saved=True,
                                 model_stage="text_normalize", lang="zh", voice=req.voice,
                                 format=req.format, engine="espeak")
            metrics.observe_synthesis(Hit)
            resp = Response(data, media_type=content_type, headers={
                "X-Synthesis-ID": sid, "X-Cache-Hit": "true", "X-Sample-Rate": "22050",
                "X-Audio-Duration-Ms": "5250.9",
                "Server-Timing": "queue;dur=0.0, text_normalize;dur=0.0, total;dur=0.1",
                "X-Audio-Metrics": audio_metrics_header(5250.9, audio_m),
                "X-Request-ID": rid, "X-Synthesis-Token": tokens.issue(sid, rid)})
            ms = (time.perf_counter() - t0) * 1000.0
            http.info("http_request", method="POST", path="/v1/audio/speech", status=200,
                      duration_ms=round(ms, 1), id=sid, request_id=rid, client="127.0.0.1",
                      error_code=None)
            metrics.observe_http("POST", "/v1/audio/speech", 200, None, ms / 1000.0)
        return resp

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/v1/audio/speech", speech, methods=["POST"]),
                             Route("/healthz", health)])


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


# --- engine-only baseline ------------------------------------------------------------------

def _engine_loop(settings: Any, jobs: list[Any], seconds: float, mode: str,
                 out: Any) -> None:
    from ttsops.workers import PipelineRunner

    runner = PipelineRunner(settings)
    runner.load()
    engine = runner.engine
    for job in jobs[:3]:  # warm up
        runner.back(job)
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        job = jobs[n % len(jobs)]
        if mode == "back":
            runner.back(job)
        else:
            for seg in job.segments:
                engine.infer(engine.prepare(seg, job.lang, job.voice), job.lang, job.voice,
                             job.request.speed)
        n += 1
    out.put(n / (time.perf_counter() - t0))


def engine_throughput(workers: int, fmt: str, seconds: float, mode: str) -> float:
    """Syntheses per second of ``workers`` processes running the engine half alone."""
    from ttsops.config import Settings
    from ttsops.pipeline.runner import Pipeline
    from ttsops.pipeline.types import SynthesisRequest

    settings = Settings(engine="espeak", cache_enabled=False)
    front = Pipeline(settings=settings, cache=False, load=False)
    jobs = [front.front(SynthesisRequest(text=text_for(n), voice="alloy", format=fmt))
            for n in BASELINE_NUMBERS]
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_engine_loop, args=(settings, jobs, seconds, mode, q))
             for _ in range(workers)]
    for p in procs:
        p.start()
    rates = [q.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    return float(sum(rates))


# --- main ------------------------------------------------------------------------------------

def worker_back_ms(log_dir: Path, ids: set[str] | None = None) -> list[float]:
    """Per synthesis, the worker's own engine half under HTTP load: the sum of its
    ``stage_time`` records for llm_prompt_gen .. audio_render in the server's log."""
    from ttsops.logline import iter_records

    per: dict[str, float] = {}
    seen: Counter[str] = Counter()
    with open(log_dir / "app.log", encoding="utf-8", errors="replace") as fh:
        for rec in iter_records(fh):
            if rec.event != "stage_time" or rec.get("stage") == "text_normalize":
                continue
            sid = rec.get("id") or ""
            per[sid] = per.get(sid, 0.0) + float(rec.get("duration_ms") or 0.0)
            seen[sid] += 1
    return [v for k, v in per.items() if seen[k] == 4 and (ids is None or k in ids)]


def in_process(fmt: str = "wav", hits: int = 1500, rounds: int = 7, only: str | None = None,
               profiler: Any = None) -> dict[str, tuple[float, float]]:
    """The cache hit, the contract floor and the bare route as ASGI apps in this process,
    no HTTP: each driven ``hits`` times in a row on one event loop, best of ``rounds``.
    Per request: (main thread's CPU us, all threads' CPU us - the log writer's rendering
    included, its queue flushed before the clock stops). ``only``: one of the three;
    ``profiler`` (e.g. a ``cProfile.Profile``): enabled over the measured hits. The
    service runs the fake engine (a hit never reaches the engine) with the real cache and
    the real log writer."""
    from ttsops import events, logsink
    from ttsops.config import Settings
    from ttsops.pipeline.runner import Pipeline
    from ttsops.pipeline.types import SynthesisRequest
    from ttsops.server.app import create_app
    from ttsops.server.synthesis import SynthesisService

    tmp = Path(tempfile.mkdtemp(prefix="bench_http_inproc."))
    sink = logsink.LogSink(tmp / "logs")
    prev = events.set_sink(sink)
    try:
        s = Settings(engine="fake", cache_dir=tmp / "cache", log_dir=tmp / "logs")
        pipe = Pipeline(settings=s)
        service = create_app(s, workers=1, pipeline=pipe, manage_log=False)
        service.state.service = SynthesisService(pipe, pool=None, metrics=service.state.metrics)
        text = text_for(0)
        body = json.dumps({"model": "tts-1", "voice": "alloy", "response_format": fmt,
                           "input": text}, ensure_ascii=False).encode()
        first = pipe.run(SynthesisRequest(text=text, voice="alloy", format=fmt, model="tts-1"))
        apps = {"bare": bare_app(first.audio, first.content_type),
                "floor": floor_app(first.audio, first.content_type), "hit": service}
        headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode()), (b"accept", b"*/*")]

        async def one(app: Any) -> tuple[int, dict[bytes, bytes]]:
            scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
                     "http_version": "1.1", "method": "POST", "scheme": "http",
                     "path": "/v1/audio/speech", "raw_path": b"/v1/audio/speech",
                     "query_string": b"", "root_path": "", "headers": headers,
                     "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
                     "state": {}}
            sent = False
            got: dict[str, Any] = {}

            async def receive() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    await asyncio.Event().wait()
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(m: dict[str, Any]) -> None:
                if m["type"] == "http.response.start":
                    got["status"], got["headers"] = m["status"], m["headers"]

            await app(scope, receive, send)
            return got["status"], dict(got["headers"])

        async def go() -> dict[str, tuple[float, float]]:
            status, hdrs = await one(apps["hit"])
            assert status == 200 and hdrs.get(b"x-cache-hit") == b"true", (status, hdrs)
            out: dict[str, tuple[float, float]] = {}
            for name, app in apps.items():
                if only is not None and name != only:
                    continue
                for _ in range(200):  # warm
                    await one(app)
                sink.flush()
                best = (math.inf, math.inf)
                for _ in range(rounds):
                    if profiler is not None:
                        profiler.enable()
                    t, p = time.thread_time(), time.process_time()
                    for _ in range(hits):
                        await one(app)
                    sink.flush()
                    if profiler is not None:
                        profiler.disable()
                    t, p = time.thread_time() - t, time.process_time() - p
                    best = (min(best[0], t * 1e6 / hits), min(best[1], p * 1e6 / hits))
                out[name] = best
            return out

        return asyncio.run(go())
    finally:
        events.set_sink(prev)
        sink.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--format", default="wav", choices=["wav", "mp3", "opus", "flac", "pcm"])
    ap.add_argument("--concurrency", type=int, default=0,
                    help="connections for the uncached load (default 2*workers+2)")
    ap.add_argument("--hit-concurrency", type=int, default=16)
    ap.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto",
                    help="wrk when installed (auto), or this process's asyncio client")
    ap.add_argument("--only", choices=["uncached", "hit"], default=None,
                    help="run one of the two measures only")
    ap.add_argument("--in-process", action="store_true",
                    help="only the in-process measure (ASGI apps, no HTTP)")
    ap.add_argument("--bare-server", nargs=3, metavar=("PORT", "AUDIO", "CTYPE"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--floor-server", nargs=4, metavar=("PORT", "AUDIO", "CTYPE", "LOGDIR"),
                    help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.bare_server:
        bare_server(int(a.bare_server[0]), a.bare_server[1], a.bare_server[2])
        return
    if a.floor_server:
        floor_server(int(a.floor_server[0]), *a.floor_server[1:])
        return
    if a.in_process:
        print_in_process(a.format)
        return
    gen = a.loadgen
    if gen == "auto":
        gen = "wrk" if shutil.which("wrk") else "python"
    conc = a.concurrency or 2 * a.workers + 2
    print(f"bench_http: {a.workers} worker(s), {a.format}, {a.seconds:g} s x {a.runs} runs, "
          f"{os.cpu_count()} cores; load generator {gen}; uncached concurrency {conc}, "
          f"cache-hit concurrency {a.hit_concurrency}", flush=True)

    def body_of(text: str) -> bytes:
        return json.dumps({"model": "tts-1", "voice": "alloy", "response_format": a.format,
                           "input": text}, ensure_ascii=False).encode()

    counter = iter(range(10000, 10**9))

    def run_load(port: int, pid: int, unique: bool, concurrency: int, run: int,
                 fixed: bytes = b"") -> LoadResult:
        meter: CpuMeter | None = None
        if gen == "wrk":
            if unique:  # text_for(n): SENTENCES[n % 4] + " n."
                pairs = []
                for k in range(len(SENTENCES)):
                    pre, _, post = body_of(SENTENCES[k] + " \0.").partition(b"\\u0000")
                    pairs.append((pre, post))
                bodies: Any = pairs
            else:
                bodies = fixed
            # warm-up first, then count CPU over the measured run only
            start = 10000 + 17000 * (run % 5) + 3400 * (run // 5) if unique else 0
            load_wrk(port, bodies, concurrency, 1, warmup=0, start=start + 12000)
            meter = CpuMeter(pid)
            r = load_wrk(port, bodies, concurrency, a.seconds, warmup=0, start=start)
        else:
            make = (lambda: body_of(text_for(next(counter)))) if unique else (lambda: fixed)
            meter = CpuMeter(pid)
            r = load_python(port, make, concurrency, a.seconds)
        return meter.per_request(r)

    back_rates: list[float] = []
    infer_rates: list[float] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench_http."))
    proc, port = start_ttsops(tmp, a.workers)
    uncached: list[LoadResult] = []
    hits: list[LoadResult] = []
    bares: list[LoadResult] = []
    floors: list[LoadResult] = []
    try:
        # baseline and service alternate (the service's workers idle meanwhile), so that
        # the load of a shared machine hits both alike
        for run in range(a.runs if a.only != "hit" else 0):
            back_rates.append(engine_throughput(a.workers, a.format, a.seconds, "back"))
            uncached.append(run_load(port, proc.pid, True, conc, run))
            infer_rates.append(engine_throughput(a.workers, a.format, a.seconds, "infer"))
        back_under_load = worker_back_ms(tmp / "logs")

        same = body_of(text_for(0))
        first = httpx.post(f"http://127.0.0.1:{port}/v1/audio/speech", content=same,
                           headers={"content-type": "application/json"}, timeout=60)
        first.raise_for_status()
        audio = tmp / "audio.bin"
        audio.write_bytes(first.content)
        bare, bport = start_bare(audio, first.headers["content-type"])
        floor, fport = start_floor(audio, first.headers["content-type"], tmp / "floor-logs")
        try:
            for run in range(a.runs if a.only != "uncached" else 0):  # alternate: drift
                # hits all alike
                hits.append(run_load(port, proc.pid, False, a.hit_concurrency, run, same))
                bares.append(run_load(bport, bare.pid, False, a.hit_concurrency, run, same))
                floors.append(run_load(fport, floor.pid, False, a.hit_concurrency, run,
                                       same))
        finally:
            stop(bare)
            stop(floor)
    finally:
        stop(proc)

    def med(xs: list[LoadResult]) -> LoadResult:
        return sorted(xs, key=lambda r: r.rps)[len(xs) // 2]

    def cpu(xs: list[LoadResult], attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in xs)

    bad = sum(r.bad for r in uncached + hits + bares)
    print(f"{'measure':40s} {'req/s':>8s} {'p50 ms':>7s} {'p99 ms':>7s} "
          f"{'cpu/req ms: main':>17s} {'workers':>8s}")
    if uncached:
        back = statistics.median(back_rates)
        infer = statistics.median(infer_rates)
        print(f"{'raw engine (prepare+infer), ' + str(a.workers) + ' proc':40s} {infer:8.1f}")
        print(f"{'engine-only pipeline back(), ' + str(a.workers) + ' proc':40s} {back:8.1f}")
    rows = [("HTTP uncached (ttsops serve)", uncached),
            ("bare Starlette route, same bytes", bares),
            ("bare route + the contract's hit work", floors),
            ("HTTP cache hit (ttsops serve)", hits)]
    for name, xs in rows:
        if xs:
            r = med(xs)
            print(f"{name:40s} {r.rps:8.1f} {r.pct(.5):7.1f} {r.pct(.99):7.1f} "
                  f"{cpu(xs, 'cpu_main_ms'):17.3f} {cpu(xs, 'cpu_workers_ms'):8.3f}")
    if uncached:
        u = med(uncached)
        print(f"uncached HTTP / engine-only back(): {u.rps / back:.2f}  (target >= 0.8)")
        print(f"uncached HTTP / raw engine:         {u.rps / infer:.2f}  (for scale)")
    if hits:
        h, b = med(hits), med(bares)
        print(f"cache hit / bare Starlette:         {h.rps / b.rps:.2f}  (target >= 0.7); "
              f"main-process CPU per request {cpu(hits, 'cpu_main_ms'):.3f} ms against "
              f"{cpu(bares, 'cpu_main_ms'):.3f} ms")
        f = med(floors)
        print(f"contract floor / bare Starlette:    {f.rps / b.rps:.2f}  (the bare route doing "
              f"only the records, metrics, headers and validation every hit must: the "
              f"ceiling); cache hit / floor {h.rps / f.rps:.2f}; floor CPU "
              f"{cpu(floors, 'cpu_main_ms'):.3f} ms")
    if back_under_load:
        print(f"worker back() per synthesis: {statistics.median(back_under_load):.1f} ms under "
              f"HTTP load (median of {len(back_under_load)}), "
              f"{a.workers * 1000.0 / statistics.median(back_rates):.1f} ms engine-only")
    print(f"non-200 answers during the runs: {bad}")
    if hits:
        print_in_process(a.format)
    print("per run (req/s): back " + " ".join(f"{x:.1f}" for x in back_rates)
          + " | uncached " + " ".join(f"{r.rps:.1f}" for r in uncached)
          + " | bare " + " ".join(f"{r.rps:.0f}" for r in bares)
          + " | floor " + " ".join(f"{r.rps:.0f}" for r in floors)
          + " | hit " + " ".join(f"{r.rps:.0f}" for r in hits))

def print_in_process(fmt: str) -> None:
    r = in_process(fmt)
    print("in process (ASGI app alone, no HTTP; best of 7 x 1500), CPU us per request: "
          + ", ".join(f"{k} {m:.0f} main / {a:.0f} all threads" for k, (m, a) in r.items())
          + f"; hit / floor {r['floor'][0] / r['hit'][0]:.2f} (main), "
          f"{r['floor'][1] / r['hit'][1]:.2f} (all)")


if __name__ == "__main__":
    main()
