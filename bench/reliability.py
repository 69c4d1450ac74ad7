"""Reliability, proven for minutes: fault drills, fuzzing, load, overload and soak, and a
SIGKILL under load, against real `ttsops serve` processes; writes docs/reliability.md.

    python bench/reliability.py [--out docs/reliability.md] [--quick]

The same scenarios as tests/reliability (which run short versions in CI), run longer:
every drill ``--drill-scale`` times as many faults, ``--fuzz-examples`` inputs per fuzz
kind plus a schemathesis run, ``--soak-rounds`` rounds of 50 clients with the server's
RSS sampled, an overload of 3 x the queue, and ``--kill-seconds`` of load across many
rotations with a SIGKILL of the server. Every figure in the generated file is measured
in that run. Needs root for the tmpfs and read-only mount drills (skipped otherwise,
and the file says so).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from reliability import test_fuzz as F  # noqa: E402
from reliability.drills import DRILLS, Skip  # noqa: E402
from reliability.kit import DrillResult, start_server  # noqa: E402
from reliability.load import kill_under_load, soak, trend  # noqa: E402


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- drills --------------------------------------------------------------------------------

def run_drills(work: Path, scale: int) -> list[DrillResult | tuple[str, str]]:
    out: list[DrillResult | tuple[str, str]] = []
    for name, fn in DRILLS.items():
        log(f"drill {name} (scale {scale})")
        try:
            res = fn(work / f"drill-{name}", scale)
        except Skip as e:
            out.append((name, f"skipped: {e}"))
            continue
        except Exception as e:  # a failed drill is reported, not hidden
            out.append((name, f"FAILED: {type(e).__name__}: {str(e)[:300]}"))
            traceback.print_exc()
            continue
        assert res.served_after
        out.append(res)
        log(f"  {res.row()['responses']} | {res.diagnosis[:100]}")
    return out


# --- fuzzing -------------------------------------------------------------------------------

class Recording(httpx.Client):
    """An httpx client that counts what came back."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.seen: Counter[str] = Counter()

    def send(self, request: httpx.Request, **kw: Any) -> httpx.Response:  # type: ignore[override]
        r = super().send(request, **kw)
        if r.status_code >= 400 and r.headers.get("content-type", "").startswith(
                "application/json"):
            self.seen[f"{r.status_code} {r.json()['error']['code']}"] += 1
        else:
            self.seen[str(r.status_code)] += 1
        return r


def run_fuzz(work: Path, examples: int, schemathesis_examples: int) -> dict[str, Any]:
    s = start_server(work / "fuzz", engine="espeak", workers=2)
    kinds: dict[str, Counter[str]] = {}
    tried: Counter[str] = Counter()
    failures: list[str] = []
    opts = settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))

    def drive(kind: str, inner: Any, **strategies: Any) -> None:
        log(f"fuzz: {kind} ({examples} examples)")
        with Recording(base_url=s.url, timeout=120) as c:
            @opts
            @given(**strategies)
            def one(**kw: Any) -> None:
                tried[kind] += 1
                if "server" in inner.__code__.co_varnames[:1]:
                    inner(s, **kw)
                else:
                    inner(c, **kw)

            try:
                one()
            except Exception as e:
                failures.append(f"{kind}: {type(e).__name__}: {str(e)[:300]}")
            kinds[kind] = c.seen

    drive("random JSON bodies", F.test_random_json_bodies.hypothesis.inner_test,
          payload=F.JSON)
    drive("every field with any JSON value",
          F.test_every_field_with_any_json_value.hypothesis.inner_test,
          field=st.sampled_from(F.FIELDS), value=F.JSON)
    drive("unicode-edge input (plain, audio stream, SSE)",
          F.test_unicode_edge_input_is_spoken_or_refused_with_a_code.hypothesis.inner_test,
          text=F.TEXT, stream=st.sampled_from([None, "audio", "sse"]),
          lang=st.sampled_from([None, "en", "zh"]))
    drive("huge input (4095 .. 70000 characters)",
          F.test_huge_input_is_refused_by_length_or_size.hypothesis.inner_test,
          n=st.sampled_from([4095, 4096, 4097, 5000, 20000, 70000]),
          ch=st.sampled_from(["a", "語", "\U0001f642", "\u0301", " ", "\x00"]))
    drive("invalid UTF-8 and non-JSON bodies",
          F.test_invalid_utf8_and_non_json_bodies.hypothesis.inner_test,
          junk=st.binary(min_size=1, max_size=40), where=st.sampled_from(["input", "whole"]),
          ctype=st.sampled_from(["application/json", "text/plain", "application/x-www-form-"
                                 "urlencoded", "application/json; charset=latin-1", ""]))
    log(f"fuzz: X-Request-ID injection over a raw socket ({examples} examples)")
    inner = F.test_request_id_header_injection.hypothesis.inner_test

    @opts
    @given(value=st.one_of(st.sampled_from(F.INJECTIONS),
                           st.binary(max_size=140).filter(lambda b: b"\r" not in b
                                                          and b"\n" not in b)))
    def inj(value: bytes) -> None:
        tried["X-Request-ID injection (raw socket)"] += 1
        inner(s, value)

    try:
        inj()
    except Exception as e:
        failures.append(f"X-Request-ID injection: {type(e).__name__}: {str(e)[:300]}")
    kinds["X-Request-ID injection (raw socket)"] = Counter({"200": tried[
        "X-Request-ID injection (raw socket)"]})
    log(f"fuzz: schemathesis ({schemathesis_examples} examples per operation)")
    st_run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", s.url + "/openapi.json",
         "--max-examples", str(schemathesis_examples), "--exclude-checks",
         "positive_data_acceptance", "--seed", "7"],
        capture_output=True, text=True, timeout=3600, cwd=work)
    st_out = st_run.stdout + st_run.stderr
    m = re.search(r"(\d+) generated, (\d+) (?:passed|found)", st_out)
    generated = int(m.group(1)) if m else 0
    s.stop()
    try:
        F._log_is_clean(s)
        clean = "yes"
    except AssertionError as e:
        clean = f"NO: {str(e)[:300]}"
    records = s.records()
    return {"kinds": kinds, "tried": tried, "failures": failures, "clean": clean,
            "schemathesis_generated": generated, "schemathesis_ok": st_run.returncode == 0,
            "schemathesis_tail": st_out.strip().splitlines()[-1] if st_out.strip() else "",
            "records": len(records),
            "errors_5xx": sum(n for c in kinds.values() for k, n in c.items()
                              if k[:1] == "5")}


# --- report --------------------------------------------------------------------------------

def md_table(head: list[str], rows: list[list[Any]]) -> str:
    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(cell(x) for x in r) + " |" for r in rows]
    return "\n".join(out)


def render(a: argparse.Namespace, drills: list[Any], fuzz: dict[str, Any],
           soak_r: dict[str, Any], kills: list[dict[str, Any]], took: float) -> str:
    load1 = os.getloadavg()[0]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    parts = [
        "# Reliability and security, measured",
        "",
        "Generated by `python bench/reliability.py` "
        f"({' '.join(sys.argv[1:]) or 'defaults'}) on {when}: "
        f"{os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}, "
        f"load average {load1:.1f} at the end (the machine is shared); {took / 60:.1f} minutes. "
        "Every figure below was measured in that run, against real `ttsops serve` processes "
        "on loopback. The same scenarios run in CI in short form: `tests/reliability/`.",
        "",
        "## Fault drills",
        "",
        "Each drill injects one real fault into a running service, then checks what the "
        "clients got (status and registry code), what the log holds, that the service "
        "still serves a new synthesis afterwards, and that `ttsops logs diagnose` names the "
        "cause (the finding quoted is its output).",
        "",
    ]
    rows = []
    for d in drills:
        if isinstance(d, tuple):
            rows.append([d[0], "", d[1], "", "", ""])
            continue
        r = d.row()
        rows.append([r["drill"], r["fault"], r["responses"], r["records"],
                     "yes" if r["served_after"] else "NO", r["diagnosis"]])
    parts.append(md_table(["drill", "fault injected", "responses", "records in the log",
                           "serves after", "`ttsops logs diagnose` says"], rows))
    notes = [f"- {d.name}: {'; '.join(d.notes)}" for d in drills
             if not isinstance(d, tuple) and d.notes]
    if notes:
        parts += ["", *notes]
    parts += [
        "",
        "The model files of the two model-load drills are the real Piper voice "
        "(`en_US-joe-medium`, onnxruntime); \"truncated\" is its first kilobyte, as a "
        "botched copy leaves it. A reload is `kill -HUP <server pid>`: one worker at a "
        "time, a new process loads the model while the old one serves, and takes over only "
        "once ready; a failed load stops the rollout (`reload_failed`) and the old workers "
        "keep serving. A worker that dies is restarted and loads the files as they are; "
        "if that fails, requests get 503 `MODEL_LOAD_FAILED` at once and the load is "
        "retried with back-off until the files are repaired.",
        "",
        "## Fuzzing",
        "",
        f"Hypothesis-driven requests against a server running the real eSpeak NG engine "
        f"({a.fuzz_examples} examples per kind), then schemathesis over the whole OpenAPI "
        f"document. Expected: every answer 2xx or an OpenAI-shaped error whose code is in "
        f"the registry with the registry's status; no 5xx; no unhandled exception in the "
        f"log; every line of the log a record.",
        "",
    ]
    rows = [[k, fuzz["tried"][k], ", ".join(f"{n} x {o}" for o, n in c.most_common())]
            for k, c in fuzz["kinds"].items()]
    rows.append(["schemathesis (all operations, positive and negative cases)",
                 fuzz["schemathesis_generated"],
                 "no failure" if fuzz["schemathesis_ok"] else fuzz["schemathesis_tail"]])
    parts.append(md_table(["inputs", "tried", "answers"], rows))
    total = sum(fuzz["tried"].values()) + fuzz["schemathesis_generated"]
    parts += ["", f"Inputs tried: **{total}**. 5xx answers: **{fuzz['errors_5xx']}**. "
              f"Log clean (no unhandled exception, no stray line): **{fuzz['clean']}**. "
              f"Failed properties: **{len(fuzz['failures'])}**"
              + (": " + "; ".join(fuzz["failures"]) if fuzz["failures"] else "") + ".",
              "(schemathesis' `positive_data_acceptance` check is left out: a schema-valid "
              "request may still name an unknown model or voice, or be empty after "
              "cleaning, and gets its documented 400.)", ""]
    # --- load ----
    q, w = soak_r["queue_size"], soak_r["workers"]
    parts += [
        "## Load, overload and soak",
        "",
        f"Fake engine (the server's own logic; {soak_r['delay_ms']:g} ms of inference per "
        f"synthesis, no CPU), {w} workers, queue capacity {q}; clients are keep-alive "
        f"connections each sending one request after the other, every text new (uncached), "
        f"16-bit PCM answers of ~75 KB. Warm-up on repeated texts (cache hits), then "
        f"{a.soak_rounds} rounds of {a.round_seconds:g} s with {soak_r['clients']} clients, "
        f"then {3 * q} clients (3 x the queue) for {a.overload_seconds:g} s, each retrying "
        f"0.25 s after a 429, then one more round.",
        "",
    ]
    rows = []
    shown = [soak_r["phases"][0], soak_r["steady"], soak_r["overload"], soak_r["after"]]
    for ph in shown:
        ok, no = ph.latency_ms(), ph.latency_ms(ok=False)
        rows.append([ph.name, ph.clients, f"{ph.seconds:g}", len(ph.answered),
                     f"{len(ph.answered) / ph.seconds:.0f}",
                     ", ".join(f"{n} x {k}" for k, n in ph.outcomes().most_common()),
                     f"{ok.get('p50', 0):.0f} / {ok.get('p99', 0):.0f} / {ok.get('max', 0):.0f}",
                     f"{no['p50']:.0f} / {no['p99']:.0f} / {no['max']:.0f}" if no else "-"])
    parts.append(md_table(["phase", "clients", "s", "answered", "req/s", "responses",
                           "200 latency ms p50 / p99 / max",
                           "429 latency ms p50 / p99 / max"], rows))
    over = soak_r["overload"]
    rate_o = max(1e-9, len([x for x in over.answered if x.status == 200]) / over.seconds)
    t_all = trend(soak_r["rss"])
    rss = [x / 1024.0 for x in soak_r["round_rss_kb"]]
    half = rss[len(rss) // 2:]
    xs = [k * soak_r["round_s"] / 60.0 for k in range(len(half))]
    slope = statistics.linear_regression(xs, half).slope if len(half) >= 2 else 0.0
    shown_rss = rss if len(rss) <= 12 else [*rss[::max(1, len(rss) // 12)], rss[-1]]
    steady_n = len(soak_r["steady"].answered)
    parts += [
        "",
        f"Under overload, admitted requests waited for a worker at most "
        f"{max(soak_r['overload_queue_ms'], default=0):.0f} ms (`queue_ms` in their "
        f"`synthesis_complete`): a full queue's work at the rate served meanwhile "
        f"({rate_o:.0f}/s) is {1000 * (q + w) / rate_o:.0f} ms, against "
        f"{1000 * 3 * q / rate_o:.0f} ms for everyone who asked. A refused request got its "
        f"429 without waiting for a worker (its latency is the main process being busy "
        f"with {3 * q} connections). No 5xx, no connection error.",
        "",
        f"Memory (RSS of the server's main process; {len(soak_r['rss'])} samples every "
        f"0.25 s, {t_all['min_mb']:.1f} to {t_all['max_mb']:.1f} MB over the run). After "
        f"each steady round ({steady_n} uncached syntheses in all): "
        + ", ".join(f"{x:.1f}" for x in shown_rss)
        + f" MB. Bounded tables fill first (the recent syntheses: 2048, the front memo: "
        f"4096 requests, the cache's in-memory entries and index); over the second half of "
        f"the rounds the trend is **{slope:+.2f} MB/min** ({half[0]:.1f} -> {half[-1]:.1f} "
        f"MB). The overload ({3 * q} connections) took it from {rss[-1]:.1f} to "
        f"{soak_r['overload_rss_kb'] / 1024:.1f} MB, and the round after it ended at "
        f"{soak_r['after_rss_kb'] / 1024:.1f} MB. Worker processes at the end: "
        + ", ".join(f"{(x or 0) / 1024:.0f} MB" for x in soak_r["workers_rss_kb"]) + ".",
        "",
        f"The log, read back from disk: {soak_r['log']['answered']} answered requests, "
        f"{soak_r['log']['http_request']} with their `http_request` record; "
        f"{soak_r['log']['syntheses']} syntheses, {soak_r['log']['synthesis_complete']} "
        f"with exactly one `synthesis_complete`; lost: **{soak_r['log']['lost']}** "
        f"({soak_r['records']} records in all).",
        "",
        "## The log under load, with a SIGKILL",
        "",
        f"{kills[0]['phase'].clients} clients for {a.kill_seconds:g} s, the log rotating "
        "every 64 KB (block gzip, 4 KB blocks, every rotated file kept), then again every "
        "16 KB (a stress: several rotations a second); `kill -9` of the server 60% into "
        "each run. Answered = the client received the response.",
        "",
        md_table(["measure", "rotation every 64 KB", "every 16 KB"], [
            [name, *(fn(k) for k in kills)] for name, fn in (
                ("killed after (s)", lambda k: f"{k['kill_after_s']:.1f}"),
                ("rotated files written (app.log.N.gz)", lambda k: k["rotated"]),
                ("`gzip -t` failures before / after start-up recovery",
                 lambda k: f"{len(k['bad_gz'])} / {len(k['bad_gz_after'])}"),
                ("lines that are not whole records", lambda k: len(k["torn"])),
                ("records readable after the kill", lambda k: k["records"]),
                ("answered syntheses", lambda k: k["answered_syntheses"]),
                ("`synthesis_complete` records", lambda k: k["synthesis_complete"]),
                ("answered > 0.5 s before the kill, without their record",
                 lambda k: len(k["early_missing"])),
                ("answered in the last 0.5 s, without their record",
                 lambda k: f"{len(k['late_missing'])} of {k['late']}"),
                ("the first of those answered ... before the kill",
                 lambda k: f"{k['lost_within_s'] * 1000:.0f} ms"),
                ("records on disk of requests sent after a lost one was answered",
                 lambda k: len(k["not_tail"])),
                ("in flight at the kill (no response)", lambda k: k["in_flight"]),
                ("... of which the server had logged `synthesis_complete`",
                 lambda k: len(k["in_flight_logged"])),
                ("doubled / unknown `synthesis_complete`",
                 lambda k: f"{len(k['doubled'])} / {len(k['phantom'])}"),
                ("start-up recovery changed the records",
                 lambda k: "no" if k["recovered_same"] else "YES"))]),
        "",
        "The count of `synthesis_complete` equals the answered syntheses, plus the ones "
        "the server finished whose response was still on its way at the kill, minus the "
        "ones answered whose record was still in the writer's memory: the writer never "
        "makes a request wait for the disk, and a SIGKILL loses what it has not written "
        "yet. Normally that is the last ~50 ms. But the writer rotates at the size limit "
        "and waits for the previous file's compression before the next rotation (one "
        "pending file at a time). Finishing a rotation takes milliseconds alone, but it "
        "is made of many small system calls - block writes, fsyncs, and one rename per "
        "kept file to renumber them - and after each it waits for the interpreter lock "
        "while the server's threads are busy, so with hundreds of files kept (this run "
        "keeps every file) it takes up to seconds. So when rotations are due faster "
        "than that - the 16 KB column - the writer falls behind, and the records of "
        "everything answered in those seconds are lost with it. Keep "
        "`TTSOPS_LOG_MAX_BYTES` large (64 MB by default) against the log rate, and "
        "`TTSOPS_LOG_BACKUP_COUNT` modest (30 by default).",
        "",
        "## Security",
        "",
        "Tested in CI (`tests/reliability/test_security.py`, real servers, the files "
        "they write searched with `zcat -f | grep`): bearer tokens are compared with "
        "`hmac.compare_digest` against every key with no early exit; tokens, wrong tokens "
        "and `Authorization` headers appear nowhere in `app.log`, the rotated `.gz` files "
        "or the server's output; with `TTSOPS_LOG_TEXT=hash` or `none` the input text "
        "appears nowhere (with `preview`, the control, it does); no voice or parameter "
        "can name a file or leave its directory (real Piper voices are files; 13 path "
        "forms of a valid voice outside the voice directory are all 400 `VOICE_UNKNOWN`); "
        "body size (413, also chunked without Content-Length), text length (400 "
        "`TEXT_TOO_LONG`), queue (429 `QUEUE_FULL`, immediate, `Retry-After`) and rate "
        "limits (429 `RATE_LIMITED`) hold; a hostile `X-Request-ID` (CRLF, quotes, "
        "`key=value`, escapes, 200 characters) is replaced by a generated id before it "
        "reaches a log line or a header; the web page, in real Chromium with its own CSP, "
        "shows a hostile string that went to the server and back as text (no element "
        "created, no script run, no request outside the server); there is no `/docs` or "
        "`/redoc` (FastAPI's pages load Swagger UI / ReDoc from a CDN), `/openapi.json` "
        "stays.",
        "",
        "## Bugs these found, and the fixes",
        "",
        "- log writer: a write cut short by a full disk left a torn line and, retried, "
        "doubled records; it is now cut back to where it started.",
        "- log writer: a rotation into a read-only directory killed the writer thread "
        "(no log at all from then on); it now keeps appending and retries the rotation.",
        "- log writer: after a failed compression, the next rotation overwrote the "
        "pending `app.log.0` (records lost); it is now finished first, or the rotation "
        "waits.",
        "- log writer: for up to a second after the log directory was removed, records "
        "went into the deleted file; the writer now notices before and after each write, "
        "re-takes the directory's lock, and says so (`log_file_reopened`).",
        "- `ttsops logs diagnose` had no finding for dead or hung workers, nor for the "
        "log's own trouble; it has now (`worker_died`, `worker_hung`, `log_write`, "
        "`log_file`, `log_rotate`).",
        "- OpenAPI: every route documented a 422 the service never sends (it answers "
        "400 in the OpenAI shape); `\"speed\": true` and `\"1.0\"` were accepted against the "
        "schema (found by schemathesis).",
        "- request id: the sanitiser trimmed a client's `X-Request-ID` with `str.strip()`, "
        "which also drops the control characters `\\x1c`-`\\x1f`, so `0\\x1f` was accepted "
        "(and echoed) as `0` instead of being replaced; only space and tab are trimmed now "
        "(found by the X-Request-ID injection property).",
        "- `/docs` loaded Swagger UI from a CDN; removed, the registry hints point to "
        "`/openapi.json`.",
        "- no way to reload a model: `kill -HUP` now reloads it safely.",
        "",
    ]
    return "\n".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability.md")
    ap.add_argument("--drill-scale", type=int, default=3)
    ap.add_argument("--fuzz-examples", type=int, default=300)
    ap.add_argument("--schemathesis-examples", type=int, default=100)
    ap.add_argument("--soak-rounds", type=int, default=24)
    ap.add_argument("--round-seconds", type=float, default=10.0)
    ap.add_argument("--overload-seconds", type=float, default=30.0)
    ap.add_argument("--kill-seconds", type=float, default=40.0)
    ap.add_argument("--quick", action="store_true", help="a short smoke run")
    a = ap.parse_args()
    if a.quick:
        a.drill_scale, a.fuzz_examples, a.schemathesis_examples = 1, 20, 10
        a.soak_rounds, a.round_seconds, a.overload_seconds, a.kill_seconds = 3, 2, 3, 6
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ttsops-reliability-") as tmp:
        work = Path(tmp)
        drills = run_drills(work, a.drill_scale)
        fuzz = run_fuzz(work, a.fuzz_examples, a.schemathesis_examples)
        log(f"soak: {a.soak_rounds} rounds of {a.round_seconds:g} s, overload "
            f"{a.overload_seconds:g} s")
        soak_r = soak(work / "soak", rounds=a.soak_rounds, round_s=a.round_seconds,
                      overload_s=a.overload_seconds, warmup_s=max(5.0, a.round_seconds))
        kills = []
        for kb in (64, 16):
            log(f"kill under load: {a.kill_seconds:g} s, rotation every {kb} KB")
            kills.append(kill_under_load(work / f"kill{kb}", seconds=a.kill_seconds,
                                         clients=16, max_bytes=kb * 1024))
        text = render(a, drills, fuzz, soak_r, kills, time.monotonic() - t0)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text, encoding="utf-8")
    print(text)
    log(f"wrote {a.out}")


if __name__ == "__main__":
    main()
