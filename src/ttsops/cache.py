"""The audio cache: content-addressed, checksummed, atomically written, size-bounded.

* key: sha256 over (normalised text, voice, lang, speed, format, sample rate, engine name
  and version, pipeline version): change any of them and it is another entry.
* entry: one file ``<dir>/<k[:2]>/<k>.tts``: a magic line, a JSON header line (sha256 of
  the audio, sample rate, duration, metrics) and the encoded audio. Written to a temp file
  and renamed into place, so a reader sees a whole entry or none. A payload that does not
  match its checksum is a corrupt entry: ``cache_corrupt`` WARNING (``CACHE_CORRUPT``),
  the entry is removed and the caller recomputes.
* size: ``max_mb`` budget; when the entries exceed ``high`` x budget, the least recently
  used ones are removed until they are under ``low`` x budget (``cache_evict`` INFO).
  A hit refreshes the entry's mtime (at most every ``TOUCH_S`` seconds for entries held in
  memory), which is what "recently used" means across restarts.
* memory: an entry whose checksum was verified when its file was read is kept in a bounded
  in-memory LRU (``memory_mb``) with the file's identity (inode, size, mtime). A later hit
  costs one ``stat``: while the file is unchanged the verified bytes are served; a file
  that changed (rewritten, replaced, removed) is read and verified again, so a damaged
  file is still found. Damage that keeps size and mtime (bit rot) is found when the entry
  next leaves memory; until then the bytes served are the ones that were verified.
* any write error (``ENOSPC``, permissions, a vanished directory) is a
  ``cache_write_failed`` WARNING (``CACHE_WRITE_FAILED``) and ``put`` returns False: the
  caller still returns its audio.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import hashlib
import json
import os
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .events import get_logger

if TYPE_CHECKING:
    from .config import Settings

log = get_logger("ttsops.cache")

MAGIC = b"TTSOPS-CACHE 1\n"
SUFFIX = ".tts"
PIPELINE_VERSION = "2"  # bump when post-processing or encoding changes the bytes
MB = 1024 * 1024
TOUCH_S = 60.0  # a hit served from memory refreshes the file's mtime at most this often


@dataclass
class CacheEntry:
    audio: bytes
    format: str
    sample_rate: int
    duration_ms: float
    metrics: dict[str, float] = field(default_factory=dict)


def cache_key(text: str, voice: str, lang: str, speed: float, fmt: str, sample_rate: int,
              engine: str, engine_version: str, options: dict[str, Any] | None = None) -> str:
    parts: list[Any] = [PIPELINE_VERSION, text, voice, lang, round(float(speed), 4), fmt,
                        int(sample_rate), engine, engine_version]
    if options:  # engine options (e.g. emotion) change the audio
        parts.append(options)
    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class _Verified:
    """A verified entry held in memory, with the identity of the file it was read from."""

    entry: CacheEntry
    sig: tuple[int, int, int]  # st_ino, st_size, st_mtime_ns
    touched: float  # time.monotonic() of the last mtime refresh


def _sig(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (the one place the cache writes bytes)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class AudioCache:
    def __init__(self, path: str | os.PathLike[str], max_mb: float = 512.0,
                 high: float = 0.9, low: float = 0.7, memory_mb: float = 64.0) -> None:
        self.path = Path(path)
        self._dir = os.fspath(self.path)
        self.budget = int(max_mb * MB)
        self.high = high
        self.low = min(low, high)
        self.lock = threading.Lock()
        self._index: OrderedDict[str, int] | None = None  # key -> size, LRU first
        self._total = 0
        self.memory_budget = int(memory_mb * MB)
        self._mem: OrderedDict[str, _Verified] = OrderedDict()  # key -> entry, LRU first
        self._mem_bytes = 0
        self.hits = self.misses = self.writes = self.write_failures = self.corrupt = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> AudioCache | None:
        if not settings.cache_enabled:
            return None
        return cls(settings.cache_dir, settings.cache_max_mb, settings.cache_high_watermark,
                   settings.cache_low_watermark,
                   memory_mb=getattr(settings, "cache_memory_mb", 64.0))

    # --- index ---------------------------------------------------------------------
    def _file(self, key: str) -> Path:
        return self.path / key[:2] / (key + SUFFIX)

    def _fpath(self, key: str) -> str:
        """``_file`` as a string (no ``Path`` objects on the hit path)."""
        return f"{self._dir}/{key[:2]}/{key}{SUFFIX}"

    def _scan(self) -> OrderedDict[str, int]:
        found: list[tuple[float, str, int]] = []
        try:
            subdirs = list(os.scandir(self.path))
        except OSError:
            subdirs = []
        for d in subdirs:
            if not d.is_dir(follow_symlinks=False):
                continue
            with contextlib.suppress(OSError):
                for f in os.scandir(d.path):
                    if f.name.endswith(SUFFIX):
                        with contextlib.suppress(OSError):
                            st = f.stat()
                            found.append((st.st_mtime, f.name[: -len(SUFFIX)], st.st_size))
                    elif f.name.startswith(".tmp.") and \
                            time.time() - f.stat().st_mtime > 3600:
                        with contextlib.suppress(OSError):
                            os.unlink(f.path)  # left by a crash mid-write
        found.sort()
        return OrderedDict((k, size) for _, k, size in found)

    def _idx(self) -> OrderedDict[str, int]:
        if self._index is None:
            self._index = self._scan()
            self._total = sum(self._index.values())
        return self._index

    def usage(self) -> tuple[int, int]:
        """(bytes held, entries)."""
        with self.lock:
            idx = self._idx()
            return self._total, len(idx)

    # --- memory ----------------------------------------------------------------------
    def _mem_drop(self, key: str) -> None:
        """(lock held) Forget the in-memory copy of ``key``."""
        v = self._mem.pop(key, None)
        if v is not None:
            self._mem_bytes -= len(v.entry.audio)

    def _mem_keep(self, key: str, entry: CacheEntry, sig: tuple[int, int, int]) -> None:
        """(lock held) Keep a verified entry, dropping the least recently used ones."""
        self._mem_drop(key)
        size = len(entry.audio)
        if size > self.memory_budget:
            return
        self._mem[key] = _Verified(entry, sig, time.monotonic())
        self._mem_bytes += size
        while self._mem_bytes > self.memory_budget:
            _, old = self._mem.popitem(last=False)
            self._mem_bytes -= len(old.entry.audio)

    def forget_memory(self) -> None:
        """Drop every in-memory copy: the next hit of each entry reads and verifies its
        file again."""
        with self.lock:
            self._mem.clear()
            self._mem_bytes = 0

    def memory_usage(self) -> tuple[int, int]:
        """(bytes of audio held in memory, entries)."""
        with self.lock:
            return self._mem_bytes, len(self._mem)

    # --- read ----------------------------------------------------------------------
    def get(self, key: str, count_miss: bool = True) -> CacheEntry | None:
        """The entry, verified, or None. ``count_miss=False``: a miss is not counted (a
        look that the caller follows with an ordinary ``get`` on a miss)."""
        p = self._fpath(key)
        v = self._mem.get(key)
        if v is not None:
            hit = self._get_memory(key, p, v)
            if hit is not None:
                return hit
        try:
            with open(p, "rb") as fh:
                raw = fh.read()
                entry = self._decode(raw)
                if entry is not None:
                    with contextlib.suppress(OSError):
                        os.utime(fh.fileno())
                    sig = _sig(os.fstat(fh.fileno()))
        except OSError:
            with self.lock:
                self._mem_drop(key)
                idx = self._idx()
                if key in idx:
                    self._total -= idx.pop(key)
                self.misses += count_miss
            return None
        if entry is None:
            self.corrupt += 1
            log.warning("cache_corrupt", warning_code="CACHE_CORRUPT", path=str(p),
                        size=len(raw), action="recompute")
            self._remove(key)
            with self.lock:
                self.misses += count_miss
            return None
        with self.lock:
            idx = self._idx()
            if key in idx:
                idx.move_to_end(key)
            else:
                idx[key] = len(raw)
                self._total += len(raw)
            if self.memory_budget:
                self._mem_keep(key, entry, sig)
            self.hits += 1
        return entry

    def _get_memory(self, key: str, p: str, v: _Verified) -> CacheEntry | None:
        """The verified in-memory entry while its file is the one it was read from; None
        (the file is read again) when the file changed or vanished."""
        try:
            st = os.stat(p)
        except OSError:
            st = None
        if st is None or _sig(st) != v.sig:
            with self.lock:
                if self._mem.get(key) is v:
                    self._mem_drop(key)
            return None
        now = time.monotonic()
        if now - v.touched >= TOUCH_S:  # recency on disk, for eviction after a restart
            v.touched = now
            with contextlib.suppress(OSError):
                os.utime(p)
                v.sig = _sig(os.stat(p))
        with self.lock:
            if key in self._mem:
                self._mem.move_to_end(key)
            idx = self._idx()
            if key in idx:
                idx.move_to_end(key)
            self.hits += 1
        return v.entry

    @staticmethod
    def _decode(raw: bytes) -> CacheEntry | None:
        if not raw.startswith(MAGIC):
            return None
        nl = raw.find(b"\n", len(MAGIC))
        if nl < 0:
            return None
        try:
            head = json.loads(raw[len(MAGIC): nl])
            payload = raw[nl + 1:]
            if len(payload) != head["size"] or \
                    hashlib.sha256(payload).hexdigest() != head["sha256"]:
                return None
            return CacheEntry(payload, head["format"], int(head["sample_rate"]),
                              float(head["duration_ms"]), dict(head.get("metrics") or {}))
        except (ValueError, KeyError, TypeError):
            return None

    # --- write ---------------------------------------------------------------------
    def put(self, key: str, entry: CacheEntry) -> bool:
        """Store ``entry``; False (and a CACHE_WRITE_FAILED WARNING) when it cannot."""
        head = json.dumps({"sha256": hashlib.sha256(entry.audio).hexdigest(),
                           "size": len(entry.audio), "format": entry.format,
                           "sample_rate": entry.sample_rate, "duration_ms": entry.duration_ms,
                           "metrics": entry.metrics, "created": time.time()},
                          separators=(",", ":")).encode()
        data = MAGIC + head + b"\n" + entry.audio
        final = self._file(key)
        tmp = final.parent / f".tmp.{key}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = -1
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            _write_all(fd, data)
            os.close(fd)
            fd = -1
            os.replace(tmp, final)
        except OSError as e:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            self.write_failures += 1
            log.warning("cache_write_failed", warning_code="CACHE_WRITE_FAILED",
                        path=str(self.path), errno=errno_mod.errorcode.get(e.errno or 0, ""),
                        error=str(e)[:200], size_kb=round(len(data) / 1024, 1))
            return False
        with self.lock:
            idx = self._idx()
            if key in idx:
                self._total -= idx.pop(key)
            idx[key] = len(data)
            self._total += len(data)
            self._mem_drop(key)  # the file was replaced: a later hit reads and verifies it
            self.writes += 1
            over = self._total > self.high * self.budget
        if over:
            self.evict(int(self.low * self.budget), reason="budget")
        return True

    # --- eviction ------------------------------------------------------------------
    def _remove(self, key: str) -> int:
        with contextlib.suppress(OSError):
            os.unlink(self._file(key))
        with self.lock:
            self._mem_drop(key)
            idx = self._idx()
            size = idx.pop(key, 0)
            self._total -= size
            return size

    def evict(self, target_bytes: int, reason: str = "budget") -> tuple[int, int]:
        """Remove least recently used entries until at most ``target_bytes`` remain.
        Returns (entries removed, bytes freed)."""
        victims: list[str] = []
        with self.lock:
            idx = self._idx()
            total = self._total
            for k, size in idx.items():
                if total <= target_bytes:
                    break
                victims.append(k)
                total -= size
        freed = sum(self._remove(k) for k in victims)
        if victims:
            used, _ = self.usage()
            log.info("cache_evict", path=str(self.path), reason=reason, evicted=len(victims),
                     freed_mb=round(freed / MB, 2), used_mb=round(used / MB, 2),
                     budget_mb=round(self.budget / MB, 2))
        return len(victims), freed
