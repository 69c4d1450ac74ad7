"""``FrontMemo``: the outcome of text_normalize by request, so that a request seen before
is not cleaned, read and segmented again."""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from typing import Any

from .stages import FrontState


class FrontMemo:
    """The outcome of the text_normalize steps by request, so that a request seen before
    (a cache hit, typically) is not cleaned, read and segmented again. Bounded in entries
    and in characters held, least recently used first. Only successful outcomes are kept
    (a bad request is checked, and logged, every time); records are still written for
    every synthesis from the remembered state."""

    def __init__(self, max_entries: int = 4096, max_chars: int = 2_000_000) -> None:
        self.max_entries = max_entries
        self.max_chars = max_chars
        self.items: OrderedDict[tuple[Any, ...], tuple[FrontState, str | None, int]] = \
            OrderedDict()
        self.chars = 0
        self.lock = threading.Lock()
        self.owner: Any = None  # the engine description the entries were made with

    def get(self, key: tuple[Any, ...]) -> tuple[FrontState, str | None] | None:
        with self.lock:
            got = self.items.get(key)
            if got is None:
                return None
            self.items.move_to_end(key)
        st, ckey, _ = got
        return copy_state(st), ckey

    def peek(self, key: tuple[Any, ...]) -> tuple[FrontState, str | None] | None:
        """Like ``get`` without a copy: the caller only reads the state."""
        with self.lock:
            got = self.items.get(key)
            if got is None:
                return None
            self.items.move_to_end(key)
        return got[0], got[1]

    def put(self, key: tuple[Any, ...], st: FrontState, ckey: str | None) -> None:
        size = len(key[0]) + len(st.text)
        if size > self.max_chars // 8:
            return
        with self.lock:
            old = self.items.pop(key, None)
            if old is not None:
                self.chars -= old[2]
            self.items[key] = (copy_state(st), ckey, size)
            self.chars += size
            while len(self.items) > self.max_entries or self.chars > self.max_chars:
                _, (_, _, n) = self.items.popitem(last=False)
                self.chars -= n

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.chars = 0


def copy_state(st: FrontState) -> FrontState:
    """A copy whose mutable parts are not shared with the memo."""
    return dataclasses.replace(st, segments=list(st.segments), options=dict(st.options),
                               segment_langs=list(st.segment_langs), runs=list(st.runs),
                               warnings=[(e, c, dict(f)) for e, c, f in st.warnings])
