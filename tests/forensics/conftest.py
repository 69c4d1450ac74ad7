"""Simulated logs with known injected faults, written once per session through the real
sink (rotation, block gzip, embedded index), and helpers to run the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from ttsops.simulate import INCIDENT, SimConfig, generate


def _simulate(root: Path, name: str, **kw) -> tuple[Path, dict]:
    out = root / name
    cfg = SimConfig(**kw)
    truth = generate(out, cfg, root / f"{name}.truth.json")
    return out, truth


@pytest.fixture(scope="session")
def incident(tmp_path_factory) -> tuple[Path, dict]:
    """One simulated day with the four symptoms, the disk outage and muffled audio."""
    root = tmp_path_factory.mktemp("incident")
    return _simulate(root, "logs", requests=3000, seed=7, scenarios=INCIDENT,
                     max_bytes=150_000, block_bytes=16_384)


@pytest.fixture(scope="session")
def slow_stage(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("slow")
    return _simulate(root, "logs", requests=1500, seed=3, scenarios=("slow_stage",),
                     max_bytes=400_000, block_bytes=32_768)

