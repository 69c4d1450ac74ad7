"""Issue 15, attack 8: a rotated file's block index rebuilt by hand (``gzip -t`` still
passes) must not change any answer. The index carries checksums and is cross-checked
against the gzip trailers of the blocks it describes; a file whose index fails is read
from its data, with a warning (exit 3). Real files written by the real sink (simulated
traffic), tampered with as an attacker with write access to one file would."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ttsops.forensics.cli import logs as logs_cli
from ttsops.indexformat import LEN_DIGITS, V3_HEAD
from ttsops.logindex import INDEX_MAGIC, gzip_member, read_index
from ttsops.logline import parse
from ttsops.simulate import INCIDENT, SimConfig, generate

Parts = dict[str, Any]


def cli(*args: str) -> tuple[int, str, str]:
    """``ttsops logs ARGS`` in-process: (exit code, stdout, stderr)."""
    res = CliRunner().invoke(logs_cli, list(args), catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tamper")
    generate(root / "logs", SimConfig(requests=800, seed=7, scenarios=INCIDENT,
                                      max_bytes=100_000, block_bytes=16_384),
             root / "truth.json")
    return root / "logs"


def split_index(path: Path) -> tuple[bytes, Parts]:
    """(the data members, the parts of its version 3 index, decoded)."""
    raw = path.read_bytes()
    idx = read_index(path)
    assert idx is not None and idx.version == 3
    data, member = raw[:idx.data_len], raw[idx.data_len:]
    comment = member[10:member.index(b"\x00", 10)]
    payload = comment[len(INDEX_MAGIC):-(LEN_DIGITS + 1)]
    hl, fl, nbits = int(payload[2:14]), int(payload[15:27]), int(payload[28:40])
    h = payload[V3_HEAD:V3_HEAD + hl]
    f = payload[V3_HEAD + hl:V3_HEAD + hl + fl]
    b = payload[V3_HEAD + hl + fl:]
    return data, {"head": json.loads(zlib.decompress(base64.b64decode(h))),
                  "bloom": bytearray(base64.b64decode(f)), "nbits": nbits,
                  "blocks": json.loads(zlib.decompress(base64.b64decode(b))),
                  "crc_h": payload[41:49]}


def join_index(data: bytes, parts: Parts, *, fix_crcs: bool) -> bytes:
    """The file with a rebuilt index comment: the checksums kept as they were (an edit
    that does not know them) or computed afresh over the edited parts."""
    f = base64.b64encode(bytes(parts["bloom"]))
    b = base64.b64encode(zlib.compress(json.dumps(parts["blocks"]).encode()))
    head = dict(parts["head"])
    if fix_crcs:
        head.update(crc_f=zlib.crc32(f), crc_b=zlib.crc32(b))
    h = base64.b64encode(zlib.compress(json.dumps(head).encode()))
    crc_h = b"%08x" % zlib.crc32(h) if fix_crcs else parts["crc_h"]
    payload = b"3;%012d;%012d;%012d;%s;" % (len(h), len(f), parts["nbits"], crc_h) + h + f + b
    comment = INDEX_MAGIC + payload + b" " + str(len(payload)).zfill(LEN_DIGITS).encode()
    return data + gzip_member(b"", comment)


def inflate_errors(parts: Parts) -> None:
    """+500 DISK_FULL errors in the counts (the issue's 'window reports 501 errors')."""
    for d in (parts["head"], *parts["blocks"]):
        d["lcodes"]["ERROR:DISK_FULL"] = d["lcodes"].get("ERROR:DISK_FULL", 0) + 500
        d["levels"]["ERROR"] = d["levels"].get("ERROR", 0) + 500
        d["codes"]["DISK_FULL"] = d["codes"].get("DISK_FULL", 0) + 500


def hide_ids(parts: Parts) -> None:
    """Empty id filters: every id 'absent' (the issue's 'trace finds nothing')."""
    parts["bloom"][:] = bytes(len(parts["bloom"]))
    for b in parts["blocks"]:
        n, _ = b["bloom"].split(":", 1)
        b["bloom"] = f"{n}:" + base64.b64encode(bytes((int(n) + 7) // 8)).decode()


def answers(d: Path, sid: str, *flags: str) -> tuple[tuple[tuple[int, int], Any, Any], str]:
    rc_w, out_w, err_w = cli("window", "--dir", str(d), "--json", *flags)
    rc_t, out_t, err_t = cli("trace", sid, "--dir", str(d), "--json", *flags)
    w = json.loads(out_w)
    w.pop("read", None)
    w.pop("problems", None)  # compared on their own below
    w.get("summary", {}).pop("files read", None)
    t = json.loads(out_t)
    return ((rc_w, rc_t), w, [(r["ts"], r["event"], r["fields"]) for r in t["records"]]), \
        err_w + err_t


def _biggest(d: Path) -> Path:
    return max(d.glob("app.log.*.gz"), key=lambda p: p.stat().st_size)


def _an_id_in(path: Path) -> str:
    text = subprocess.run(["zcat", str(path)], capture_output=True, text=True).stdout
    for line in text.splitlines():
        rec = parse(line)
        if rec is not None and rec.event == "synthesis_complete" and rec.get("id"):
            return rec.fields["id"]
    raise AssertionError("no synthesis in the file")


def _transplant(donor: Path) -> Callable[[bytes, Parts], bytes]:
    def go(data: bytes, _parts: Parts) -> bytes:
        _ddata, dparts = split_index(donor)
        return join_index(data, dparts, fix_crcs=True)  # a valid index of another file
    return go


TAMPER = {
    "counts inflated, checksums left": lambda data, p: (
        inflate_errors(p), join_index(data, p, fix_crcs=False))[1],
    "ids hidden, checksums left": lambda data, p: (
        hide_ids(p), join_index(data, p, fix_crcs=False))[1],
    "counts inflated, totals' checksum only": lambda data, p: (
        inflate_errors(p), join_index(data, {**p, "crc_h": b"%08x" % 0}, fix_crcs=False))[1],
}


@pytest.mark.parametrize("how", [*TAMPER, "another file's index"])
def test_a_rebuilt_index_changes_no_answer(logs, tmp_path, how):
    clean = tmp_path / "clean"
    shutil.copytree(logs, clean)
    target = _biggest(clean)
    sid = _an_id_in(target)
    truth, _ = answers(clean, sid, "--no-index")
    indexed, _ = answers(clean, sid)
    assert indexed == truth and truth[2]  # the index is honest before the attack
    bad = tmp_path / "bad"
    shutil.copytree(logs, bad)
    victim = _biggest(bad)
    data, parts = split_index(victim)
    if how == "another file's index":
        donor = next(p for p in sorted(bad.glob("app.log.*.gz")) if p != victim)
        new = _transplant(donor)(data, parts)
    else:
        new = TAMPER[how](data, parts)
    victim.write_bytes(new)
    assert subprocess.run(["gzip", "-t", str(victim)]).returncode == 0  # still valid gzip
    got, err = answers(bad, sid)
    assert got[1:] == truth[1:], how  # the same counts and the same trace
    assert got[0] == (3, 3)  # answered, from the data, and said so (damaged input)
    assert f"{victim.name}: its block index is damaged or tampered with" in err
    # --no-index needs no index and gives the same answer without a warning
    plain, err_plain = answers(bad, sid, "--no-index")
    assert plain == truth and "tampered" not in err_plain


def test_the_check_costs_a_few_bytes_per_block(logs):
    """Opening an index reads its parts and 8 bytes per block; nothing is inflated."""
    p = _biggest(logs)
    idx = read_index(p)
    assert idx is not None and idx.members and len(idx.members) == idx.nblocks > 1
    assert [m[:3] for m in idx.members] == [(b.off, b.clen, b.ulen) for b in idx.blocks]


def test_logs_index_rebuilds_a_tampered_index(logs, tmp_path):
    d = tmp_path / "fix"
    shutil.copytree(logs, d)
    victim = _biggest(d)
    data, parts = split_index(victim)
    inflate_errors(parts)
    victim.write_bytes(join_index(data, parts, fix_crcs=False))
    rc, out, err = cli("index", "--files", str(victim), "--json", "--no-progress")
    assert rc == 0, err
    assert json.loads(out)["files"][0]["status"] == "indexed"
    idx = read_index(victim)
    assert idx is not None and "ERROR:DISK_FULL" not in {
        k for k, v in idx.total.lcodes.items() if v >= 500}


def test_data_rewritten_under_a_kept_index_is_read_from_the_data(logs, tmp_path):
    """The other way round: one data block's text changed (three successes made failures) and
    recompressed, the index left as it was. The index no longer describes the data (the
    members' trailers and offsets disagree); the answers are the data's."""
    d = tmp_path / "edited"
    shutil.copytree(logs, d)
    victim = _biggest(d)
    idx = read_index(victim)
    assert idx is not None
    raw = victim.read_bytes()
    first = idx.blocks[0]
    text = zlib.decompress(raw[first.off:first.off + first.clen], 31)
    edited = text.replace(b"status=success", b"status=failed", 3)
    assert edited != text and len(edited) != len(text)
    victim.write_bytes(gzip_member(edited) + raw[first.off + first.clen:])
    sid = _an_id_in(victim)
    truth, _ = answers(d, sid, "--no-index")
    got, err = answers(d, sid)
    assert got[1:] == truth[1:] and got[0] == (3, 3)
    assert "tampered with" in err
