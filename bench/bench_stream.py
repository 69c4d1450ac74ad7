"""Encoders and sentence streaming, each against a baseline measured in the same run.

1. encoders (in this process, pinned to one core, cache off, log records written):
   ``Pipeline.run`` of a 600-character text in every format, as a ratio of the same
   synthesis as wav. Target: mp3 and opus each <= 3x the wav time.
2. streaming (a real ``ttsops serve``, one worker, cache off, over loopback HTTP): the
   first audio byte of the 600-character text with ``stream_format: "audio"``, as a ratio
   of the whole (not streamed) synthesis of its first sentence alone, same format.
   Target: <= 2x for mp3, opus, wav and pcm.

Both for an English and a Chinese text; medians of ``--runs`` repetitions, the baseline
and the measured alternating so that a shared machine's load hits both alike.

    python bench/bench_stream.py [--runs 7] [--formats mp3,opus,wav,pcm,aac,flac]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

EN = ("Thank you for contacting our support team. Your order number 58213 was shipped on "
      "Monday and should arrive within three business days. If the parcel does not arrive "
      "by Friday, please reply to this message with your address and a phone number where "
      "we can reach you. You can also track the delivery on our website, where the latest "
      "status is updated every hour. We are sorry for the delay caused by the holiday "
      "season, and we have added a discount code to your account that you can use on your "
      "next purchase. Thank you for your patience, and have a wonderful day, from all of us.")
ZH = ("感谢您联系我们的客服团队。您的订单已于周一发出，预计三个工作日内送达。"
      "如果周五之前仍未收到包裹，请回复此消息并留下您的地址和联系电话，我们会尽快与您联系。"
      "您也可以在我们的网站上查询物流信息，最新状态每小时更新一次。"
      "由于节假日期间订单较多，配送可能会有所延迟，对此我们深表歉意。"
      "我们已经在您的账户中添加了一张优惠券，您可以在下次购物时使用。") * 3
TEXTS = {"en": (EN + " " + EN)[:600].rstrip(), "zh": (ZH + ZH)[:600]}
assert all(len(t) >= 599 for t in TEXTS.values())


def first_sentence(text: str) -> str:
    for i, ch in enumerate(text):
        if ch in "。！？" or (ch in ".!?" and text[i + 1:i + 2] in (" ", "")):
            return text[:i + 1]
    return text


# --- 1. encoders ----------------------------------------------------------------------

def bench_encoders(formats: list[str], runs: int) -> None:
    from ttsops import logsink
    from ttsops.config import Settings
    from ttsops.pipeline.runner import Pipeline
    from ttsops.pipeline.types import SynthesisRequest

    tmp = Path(tempfile.mkdtemp(prefix="bench_stream."))
    settings = Settings(log_dir=tmp / "logs", cache_enabled=False)
    logsink.setup(settings)
    pipe = Pipeline(settings=settings, cache=False)
    fmts = ["wav", *[f for f in formats if f != "wav"]]
    print("1. encoders: Pipeline.run of 600 characters, ms (median of "
          f"{runs}), ratio to wav in the same run; one core")
    print(f"{'text':5s} {'format':7s} {'ms':>8s} {'x wav':>7s}")
    for lang, text in TEXTS.items():
        times: dict[str, list[float]] = {f: [] for f in fmts}
        for f in fmts:  # warm-up
            pipe.run(SynthesisRequest(text, format=f))
        for _ in range(runs):
            for f in fmts:
                t0 = time.perf_counter()
                pipe.run(SynthesisRequest(text, format=f))
                times[f].append(time.perf_counter() - t0)
        wav = statistics.median(times["wav"])
        for f in fmts:
            m = statistics.median(times[f])
            print(f"{lang:5s} {f:7s} {m * 1000:8.1f} {m / wav:7.2f}")
    logsink.shutdown()


# --- 2. streaming -----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTSOPS_")}
    env.update(TTSOPS_LOG_DIR=str(root / "logs"), TTSOPS_CACHE_ENABLED="false")
    proc = subprocess.Popen([sys.executable, "-m", "ttsops", "serve", "--port", str(port),
                             "--workers", "1", "--engine", "espeak"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server never became ready")


def first_byte_s(c: httpx.Client, url: str, text: str, fmt: str) -> float:
    body = {"model": "tts-1", "voice": "alloy", "input": text, "response_format": fmt,
            "stream_format": "audio"}
    t0 = time.perf_counter()
    with c.stream("POST", url + "/v1/audio/speech", content=json.dumps(body)) as r:
        r.raise_for_status()
        t = float("nan")
        for chunk in r.iter_raw():
            if chunk and t != t:
                t = time.perf_counter() - t0  # the first byte; the rest is read out too
    return t


def whole_s(c: httpx.Client, url: str, text: str, fmt: str) -> float:
    body = {"model": "tts-1", "voice": "alloy", "input": text, "response_format": fmt}
    t0 = time.perf_counter()
    r = c.post(url + "/v1/audio/speech", content=json.dumps(body))
    r.raise_for_status()
    return time.perf_counter() - t0


def bench_streaming(formats: list[str], runs: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench_stream."))
    proc, url = start_server(tmp)
    print(f"2. streaming: first audio byte of 600 characters (stream_format audio) against "
          f"the whole synthesis of its first sentence alone, ms (median of {runs}); "
          "ttsops serve, 1 worker, cache off")
    print(f"{'text':5s} {'format':7s} {'first byte':>11s} {'1st sentence':>13s} {'ratio':>7s}")
    try:
        with httpx.Client(timeout=120, headers={"content-type": "application/json"}) as c:
            for lang, text in TEXTS.items():
                one = first_sentence(text)
                for fmt in formats:
                    ttfa: list[float] = []
                    base: list[float] = []
                    first_byte_s(c, url, text, fmt)  # warm-up
                    whole_s(c, url, one, fmt)
                    for _ in range(runs):
                        ttfa.append(first_byte_s(c, url, text, fmt))
                        base.append(whole_s(c, url, one, fmt))
                    a, b = statistics.median(ttfa), statistics.median(base)
                    print(f"{lang:5s} {fmt:7s} {a * 1000:11.1f} {b * 1000:13.1f} {a / b:7.2f}")
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--formats", default="mp3,opus,wav,pcm,aac,flac")
    ap.add_argument("--only", choices=["encoders", "streaming"], default=None)
    a = ap.parse_args()
    formats = a.formats.split(",")
    if a.only != "streaming":
        if hasattr(os, "sched_setaffinity"):  # the encoder part on one core
            before = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {min(before)})
        bench_encoders(formats, a.runs)
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, before)
    if a.only != "encoders":
        bench_streaming(formats, a.runs)


if __name__ == "__main__":
    main()
