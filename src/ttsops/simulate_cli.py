"""``ttsops simulate logs``: the command line of the log simulator (``ttsops.simulate``).

``--start`` and ``--duration`` take what ``ttsops logs --since`` and its durations take:
the command line layer reads them with the logs commands' own time grammar
(``forensics.reading.timeargs``), so the generator below it imports nothing of the reading side.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from .forensics.reading.timeargs import TimeArgError, duration_s, parse_time, ts_to_epoch
from .logindex import MIN_BLOCK_BYTES
from .simulate import INCIDENT, SCENARIOS, SimConfig, generate


@click.group()
def simulate_group() -> None:
    """Generate realistic ttsops logs with known faults (tests, demos, benchmarks)."""


@simulate_group.command("logs")
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("--requests", "-n", type=int, default=2000, show_default=True,
              help="Number of requests.")
@click.option("--scenario", "-s", multiple=True,
              type=click.Choice([*SCENARIOS, "incident", "baseline"]),
              help="Fault scenario (repeatable); incident = the four symptoms + disk_full "
                   "+ audio. Default: baseline (no faults).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--start", default="2024-06-12 00:00:00", show_default=True,
              help="Simulated start time (UTC).")
@click.option("--duration", default="1d", show_default=True, help="Simulated span, e.g. 6h, 30d.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--max-bytes", type=int, default=4 << 20, show_default=True,
              help="Rotate app.log at this size.")
@click.option("--block-bytes", type=click.IntRange(min=MIN_BLOCK_BYTES), default=256 << 10,
              show_default=True, help="Uncompressed size of each gzip member / index block "
                                      f"(at least {MIN_BLOCK_BYTES}).")
@click.option("--keep", type=int, default=100_000, show_default=True,
              help="Rotated files to keep.")
@click.option("--truth", type=click.Path(dir_okay=False),
              help="Ground-truth JSON file [default: OUTDIR/../<OUTDIR name>.truth.json].")
def logs_cmd(outdir: str, requests: int, scenario: tuple[str, ...], seed: int, start: str,
             duration: str, fmt: str, max_bytes: int, block_bytes: int, keep: int,
             truth: str | None) -> None:
    """Write simulated service logs into OUTDIR (app.log + rotated app.log.N.gz)."""
    names: set[str] = set()
    for s in scenario:
        names.update(INCIDENT if s == "incident" else () if s == "baseline" else (s,))
    try:
        t0 = ts_to_epoch(parse_time(start))
        dur = duration_s(duration)
    except TimeArgError as e:
        raise click.BadParameter(str(e)) from None
    if requests < 0 or dur <= 120:
        raise click.BadParameter("need --requests >= 0 and --duration > 2m")
    out = Path(outdir)
    if (out / "app.log").exists() or any(out.glob("app.log.*.gz")):
        raise click.ClickException(f"{out} already holds logs; choose an empty directory")
    truth_path = Path(truth) if truth else out.parent / f"{out.name}.truth.json"
    cfg = SimConfig(requests=requests, start=t0, duration_s=dur, seed=seed,
                    scenarios=tuple(sorted(names)), fmt=fmt, max_bytes=max_bytes,
                    block_bytes=block_bytes, keep=keep)
    began = time.monotonic()
    doc = generate(out, cfg, truth_path)
    took = time.monotonic() - began
    files = len(list(out.glob("app.log.*.gz")))
    click.echo(f"wrote {doc['records']} records ({doc['syntheses']} syntheses) from "
               f"{doc['start']} to {doc['end']} into {out} ({files} rotated files + app.log) "
               f"in {took:.1f}s; scenarios: {', '.join(doc['scenarios']) or 'baseline'}")
    click.echo(f"ground truth: {truth_path}")


simulate = simulate_group  # the name registered in ttsops.cli.SUBCOMMANDS
