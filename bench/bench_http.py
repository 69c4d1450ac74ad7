"""HTTP throughput and latency of `ttsops serve`, against named baselines measured in the
same run. The load comes from this process (asyncio keep-alive HTTP/1.1 connections on
loopback); every server is a separate process.

    python bench/bench_http.py [--workers 1] [--seconds 8] [--runs 3] [--format wav]

1. uncached: every request a new text, through HTTP (queue, worker IPC, logging, cache
   write included), as a ratio of the engine-only throughput of the same number of
   worker processes running the pipeline's engine half (``back``: llm_prompt_gen ..
   audio_render) in a loop on the same texts, without HTTP. Target >= 0.8.
   The raw engine (prepare + infer only) is printed beside it for scale.
2. cache hit: the same request again and again through the full service, as a ratio of
   a bare Starlette route (same uvicorn settings) returning the same bytes. Target >= 0.7.

Medians over ``--runs``; p50/p99 latency of the median run. Needs the real eSpeak NG
engine (espeakng-loader).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
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
    return f"{SENTENCES[n % len(SENTENCES)]} {n}."


# --- load generation ---------------------------------------------------------------------

@dataclass
class LoadResult:
    seconds: float
    latencies: list[float]
    statuses: Counter[int]

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, q: float) -> float:
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


def load(port: int, make_body: Callable[[], bytes], concurrency: int, seconds: float,
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


def bare_server(port: int, audio: str, content_type: str) -> None:
    """A bare Starlette route returning the same bytes, under the same uvicorn settings."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    data = Path(audio).read_bytes()

    async def speech(request: Request) -> Response:
        json.loads(await request.body())
        return Response(data, media_type=content_type)

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/v1/audio/speech", speech, methods=["POST"]),
                            Route("/healthz", health)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                server_header=False)


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
            for n in range(64)]
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

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--format", default="wav", choices=["wav", "mp3", "opus", "flac", "pcm"])
    ap.add_argument("--concurrency", type=int, default=0,
                    help="connections for the uncached load (default 2*workers+2)")
    ap.add_argument("--hit-concurrency", type=int, default=16)
    ap.add_argument("--bare-server", nargs=3, metavar=("PORT", "AUDIO", "CTYPE"),
                    help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.bare_server:
        bare_server(int(a.bare_server[0]), a.bare_server[1], a.bare_server[2])
        return
    conc = a.concurrency or 2 * a.workers + 2
    print(f"bench_http: {a.workers} worker(s), {a.format}, {a.seconds:g} s x {a.runs} runs, "
          f"{os.cpu_count()} cores; uncached concurrency {conc}, cache-hit concurrency "
          f"{a.hit_concurrency}", flush=True)

    back_rates: list[float] = []
    infer_rates: list[float] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench_http."))
    proc, port = start_ttsops(tmp, a.workers)
    uncached: list[LoadResult] = []
    hits: list[LoadResult] = []
    bares: list[LoadResult] = []
    try:
        counter = iter(range(10**9))

        def unique_body() -> bytes:
            return json.dumps({"model": "tts-1", "voice": "alloy", "response_format": a.format,
                               "input": text_for(1000 + next(counter))}).encode()

        # baseline and service alternate (the service's workers idle meanwhile), so that
        # the load of a shared machine hits both alike
        for _ in range(a.runs):
            back_rates.append(engine_throughput(a.workers, a.format, a.seconds, "back"))
            uncached.append(load(port, unique_body, conc, a.seconds))
            infer_rates.append(engine_throughput(a.workers, a.format, a.seconds, "infer"))

        same = json.dumps({"model": "tts-1", "voice": "alloy", "response_format": a.format,
                           "input": text_for(0)}).encode()
        first = httpx.post(f"http://127.0.0.1:{port}/v1/audio/speech", content=same,
                           headers={"content-type": "application/json"}, timeout=60)
        first.raise_for_status()
        audio = tmp / "audio.bin"
        audio.write_bytes(first.content)
        bare, bport = start_bare(audio, first.headers["content-type"])
        try:
            for _ in range(a.runs):  # alternate, so that drift hits both alike
                hits.append(load(port, lambda: same, a.hit_concurrency, a.seconds))
                bares.append(load(bport, lambda: same, a.hit_concurrency, a.seconds))
        finally:
            stop(bare)
    finally:
        stop(proc)

    def med(xs: list[LoadResult]) -> LoadResult:
        return sorted(xs, key=lambda r: r.rps)[len(xs) // 2]

    back = statistics.median(back_rates)
    infer = statistics.median(infer_rates)
    u, h, b = med(uncached), med(hits), med(bares)
    bad = sum((r.statuses - Counter({200: r.statuses[200]})).total()
              for r in uncached + hits + bares)
    print(f"{'measure':44s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s}")
    print(f"{'raw engine (prepare+infer), ' + str(a.workers) + ' proc':44s} {infer:9.1f}")
    print(f"{'engine-only pipeline back(), ' + str(a.workers) + ' proc':44s} {back:9.1f}")
    print(f"{'HTTP uncached (ttsops serve)':44s} {u.rps:9.1f} {u.pct(.5):8.1f} "
          f"{u.pct(.99):8.1f}")
    print(f"{'bare Starlette route, same bytes':44s} {b.rps:9.1f} {b.pct(.5):8.1f} "
          f"{b.pct(.99):8.1f}")
    print(f"{'HTTP cache hit (ttsops serve)':44s} {h.rps:9.1f} {h.pct(.5):8.1f} "
          f"{h.pct(.99):8.1f}")
    print(f"uncached HTTP / engine-only back(): {u.rps / back:.2f}  (target >= 0.8)")
    print(f"uncached HTTP / raw engine:         {u.rps / infer:.2f}  (for scale)")
    print(f"cache hit / bare Starlette:         {h.rps / b.rps:.2f}  (target >= 0.7)")
    print(f"non-200 answers during the runs: {bad}")
    print("per run (req/s): back " + " ".join(f"{x:.1f}" for x in back_rates)
          + " | uncached " + " ".join(f"{r.rps:.1f}" for r in uncached)
          + " | bare " + " ".join(f"{r.rps:.0f}" for r in bares)
          + " | hit " + " ".join(f"{r.rps:.0f}" for r in hits))


if __name__ == "__main__":
    main()
