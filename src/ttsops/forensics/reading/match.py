"""Finding records in raw bytes, before anything is decoded: for ``scan``.

Literal needles picked out as grep would (the rarest required literal searched), whole
records around each hit, the time window checked on the raw timestamp text, a chunk none
of whose lines can start inside the window dropped unsplit. ``Select`` is a chunk's
selection for a query; it runs in the caller or in a ``fanout`` worker process.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ._timerange import range_rx

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from .scan import Query


DROPPED = "\x00dropped "  # the last "line" of a selection: how many it dropped (a count)


def count_heads(buf: bytes, tag: bytes, since: str | None, until: str | None) -> int:
    """Text head lines of ``buf`` holding ``tag`` whose timestamp is in [since, until),
    compared as ``window_lines`` compares them (the first 23 characters)."""
    if since is None and until is None:
        return buf.count(tag)
    lo = (since or "").encode()
    hi = (until or "\uffff").encode()
    last = buf.rfind(b"\n", 0, len(buf) - 1) + 1
    if lo <= buf[:23] < hi and lo <= buf[last:last + 23] < hi and buf[:1].isdigit() \
            and buf[last:last + 1].isdigit():
        return buf.count(tag)  # the whole chunk is inside the window
    n = 0
    i = buf.find(tag)
    while i >= 0:
        ls = buf.rfind(b"\n", 0, i) + 1
        if lo <= buf[ls:ls + 23] < hi:
            n += 1
        i = buf.find(tag, i + len(tag))
    return n


def _is_head_char(c: str) -> bool:
    return c.isdigit() or c == "{"


# What an id may be made of: the request-id sanitiser's alphabet (letters, digits,
# ``._:@/+-``; server/middleware.py) and the ``_`` of generated ids (``ts_...``,
# ``req_...``). Any other character (space, ``,``, ``=``, quotes, brackets, non-ASCII), or
# the start or end of the text, bounds an id.
ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:@/+-")


def check_needles(needles: Iterable[str], what: str = "search string") -> None:
    """ValueError for an empty needle (found at every position: nothing to search for)."""
    for x in needles:
        if not x:
            raise ValueError(f"empty {what}: nothing to search for")


def has_token(text: str, needle: str) -> bool:
    """Does ``needle`` occur in ``text`` as a whole token: neither preceded nor followed by
    a character of ``ID_CHARS`` (``ts_1417ce9`` is not in ``id=ts_1417ce9a``)? The
    boundary is checked only where ``find`` has hit. ValueError for an empty needle."""
    check_needles((needle,))
    k = len(needle)
    n = len(text)
    i = text.find(needle)
    while i >= 0:
        j = i + k
        if (i == 0 or text[i - 1] not in ID_CHARS) and (j >= n or text[j] not in ID_CHARS):
            return True
        i = text.find(needle, i + 1)
    return False


def grep_lines(text: str, needles: Iterable[str], require: tuple[str, ...] = ()) -> list[str]:
    """Lines of ``text`` whose record contains a needle, each record whole: its head line
    and the continuation lines after it (a match inside a traceback selects the record).
    Text head lines must also contain every string of ``require``; JSON lines are all
    candidates (their spelling differs). ValueError for an empty needle or required
    string."""
    needles = tuple(needles)
    check_needles(needles)
    check_needles(require, "required string")
    n = len(text)
    if text.startswith("{") or "\n{" in text:
        # JSON lines may spell levels and fields differently: every JSON line is a
        # candidate; text records as below, with their continuation lines
        out_j: list[str] = []
        keep = False
        for ln in text.split("\n"):
            c = ln[:1]
            if c == "{":
                keep = True
            elif c.isdigit():
                keep = any(x in ln for x in needles)
            if keep and ln:
                out_j.append(ln)
        return out_j
    starts: set[int] = set()
    for needle in needles:
        i = text.find(needle)
        while i >= 0:
            s = text.rfind("\n", 0, i) + 1
            while s > 0 and not _is_head_char(text[s:s + 1]):
                s = text.rfind("\n", 0, s - 1) + 1
            starts.add(s)
            e = text.find("\n", i)
            if e < 0:
                break
            i = text.find(needle, e)
    out: list[str] = []
    for s in sorted(starts):
        e = text.find("\n", s)
        e = n if e < 0 else e
        if require:
            head = text[s:e]
            if not all(r in head for r in require):
                continue
        out.append(text[s:e])
        while e + 1 < n and not _is_head_char(text[e + 1]):
            s2 = e + 1
            e = text.find("\n", s2)
            e = n if e < 0 else e
            out.append(text[s2:e])
    return out


_HEAD_BYTES = frozenset(b"0123456789{")


def _record_start(buf: bytes, i: int) -> int:
    """The start of the record whose text holds byte ``i``: back to the line that starts
    like a record (continuation lines of a traceback belong to the record above)."""
    s = buf.rfind(b"\n", 0, i) + 1
    while s > 0 and not _head_at(buf, s):
        s = buf.rfind(b"\n", 0, s - 1) + 1
    return s


def _head_at(buf: bytes, s: int) -> bool:
    """``_is_head_char`` of the character starting at byte ``s`` (str.isdigit semantics,
    so a non-ASCII digit counts as in the text version)."""
    if s >= len(buf):
        return False
    c = buf[s]
    if c in _HEAD_BYTES:
        return True
    if c < 0x80:
        return False
    return buf[s:s + 4].decode("utf-8", "replace")[:1].isdigit()


_NEXT_HEAD = re.compile(rb"\n(?=[0-9{\x80-\xff])")


def _record_end(buf: bytes, e: int) -> int:
    """Where the record whose head line ends at ``e`` ends: the newline before the next
    line that starts a record (a digit or "{"), or the end of ``buf``."""
    n = len(buf)
    last = n - 1 if n and buf[n - 1] == 10 else n  # a final newline ends the last line
    while e < n:
        m = _NEXT_HEAD.search(buf, e)
        if m is None:
            return max(last, e)
        s = m.start()
        if s + 1 < n and _head_at(buf, s + 1):
            return s
        e = s + 1
    return max(last, min(e, n)) if e <= n else n


def grep_bytes(buf: bytes, needles: tuple[str, ...], require: tuple[str, ...] = (),
               heads_only: bool = False) -> list[str]:
    """``grep_lines(buf.decode(), needles, require)``, searching the raw bytes and
    decoding only the selected lines. With ``require`` the rarest required literal is
    what is searched (a selected head line holds all of them). ``heads_only``: the same
    records are selected, but only their head lines are returned (text records; JSON
    records are one line anyway) -- for collectors that never read a traceback.
    ValueError for an empty needle or required string."""
    check_needles(needles)
    check_needles(require, "required string")
    if has_json(buf):
        return grep_lines(buf.decode("utf-8", "replace"), needles, require)
    n = len(buf)
    nb = [x.encode("utf-8", "surrogatepass") for x in needles]
    rb = [x.encode("utf-8", "surrogatepass") for x in require]
    spans: list[tuple[int, int]] = []
    if rb:
        if len(rb) == 1:
            lit = rb[0]
        else:  # the rarest, judged on a sample
            sample = buf[:1 << 18]
            lit = min(rb, key=sample.count)
        i = buf.find(lit)
        while i >= 0:
            ls = buf.rfind(b"\n", 0, i) + 1
            e = buf.find(b"\n", i)
            e = n if e < 0 else e
            if ls == 0 or _head_at(buf, ls):
                head = buf[ls:e]
                if all(x in head for x in rb):
                    if any(x in head for x in nb):
                        end = e if heads_only else _record_end(buf, e)
                        spans.append((ls, end))
                    else:
                        end = _record_end(buf, e)
                        if end > e and any(buf.find(x, e, end) >= 0 for x in nb):
                            spans.append((ls, e if heads_only else end))
                    if spans and spans[-1][0] == ls:
                        e = end
            if e >= n:
                break
            i = buf.find(lit, e)
    else:
        seen: set[int] = set()
        if len(nb) > 1:  # one pass for all of them (a regex of literals), not one each
            rx, skip = _any_of(tuple(nb))
            lead = nb[0][:skip]
            m = rx.search(buf, skip)
            while m is not None:
                i = m.start() - skip
                if buf[i:i + skip] != lead:  # not the whole needle: look further on
                    m = rx.search(buf, m.start() + 1)
                    continue
                seen.add(_record_start(buf, i))
                e = buf.find(b"\n", i)
                if e < 0:
                    break
                m = rx.search(buf, e)
        for needle in nb if len(nb) == 1 else ():
            i = buf.find(needle)
            while i >= 0:
                seen.add(_record_start(buf, i))
                e = buf.find(b"\n", i)
                if e < 0:
                    break
                i = buf.find(needle, e)
        for s in sorted(seen):
            e = buf.find(b"\n", s)
            e = n if e < 0 else e
            spans.append((s, e if heads_only else _record_end(buf, e)))
    out: list[str] = []
    for s, e in spans:
        out.extend(buf[s:e].decode("utf-8", "replace").split("\n"))
    return out


_ANY_OF: dict[tuple[bytes, ...], tuple[re.Pattern[bytes], int]] = {}


def _any_of(needles: tuple[bytes, ...]) -> tuple[re.Pattern[bytes], int]:
    """A regex finding the leftmost occurrence of any of ``needles`` (one pass where a
    ``find`` each makes one: 3 level needles, ~40% less), and whether it leaves out
    their common first byte (1) -- the space before every level needle is everywhere:
    ~20% less -- so a hit counts only where that byte comes before it."""
    got = _ANY_OF.get(needles)
    if got is None:
        skip = int(all(len(x) > 1 for x in needles) and len({x[:1] for x in needles}) == 1)
        got = _ANY_OF[needles] = (re.compile(b"|".join(re.escape(x[skip:]) for x in needles),
                                             re.S), skip)
    return got


def has_json(buf: bytes) -> bool:
    """Does a line of ``buf`` start with "{"? ("{" is rare in text logs: find it first.)"""
    i = buf.find(b"{")
    while i >= 0:
        if i == 0 or buf[i - 1] == 10:
            return True
        i = buf.find(b"{", i + 1)
    return False


def common_prefix(since: str | None, until: str | None) -> bytes:
    """What every timestamp text in [since, until) starts with (b"" when nothing)."""
    if since is None or until is None:
        return b""
    n = 0
    for a, b in zip(since, until, strict=False):
        if a != b:
            break
        n += 1
    return since[:n].encode()


def may_hold_window(buf: bytes, prefix: bytes) -> bool:
    """False when no line of ``buf`` can be a record inside the window: no line starts
    with the window's common prefix and there are no JSON lines (checked after parsing)."""
    if not prefix:
        return True
    i = buf.find(prefix)  # a long literal: found (or not) at memory speed
    while i >= 0:
        if i == 0 or buf[i - 1] == 10:
            return True
        i = buf.find(prefix, i + 1)
    return has_json(buf)


class Select:
    """A chunk's candidate lines for a query (``Scan.batches``); None when no line of
    it can match. Runs in the caller or in a ``fanout`` worker process."""

    def __init__(self, q: Query, prefix: bytes) -> None:
        self.q = q
        self.prefix = prefix

    def __call__(self, chunk: bytes) -> list[str] | None:
        return self.finish(self.raw(chunk))

    @staticmethod
    def finish(got: list[str] | tuple[bytes, bool] | None) -> list[str] | None:
        """What ``raw`` returned as lines: (text, drop the empty "line" after a final
        newline) decoded and split; lines or None as they are."""
        if not isinstance(got, tuple):
            return got
        lines = got[0].decode("utf-8", "replace").split("\n")
        if got[1] and lines and lines[-1] == "":
            lines.pop()
        return lines

    def raw(self, chunk: bytes) -> list[str] | tuple[bytes, bool] | None:
        """``self(chunk)``, but one run of the chunk's lines undecoded, for ``finish``
        (``forkread`` sends one bytes object, not thousands of lines)."""
        q = self.q
        if not may_hold_window(chunk, self.prefix):
            return None
        # with ``count_event`` the records the required literals drop are counted and
        # the count is appended as a ``DROPPED`` line; a JSON chunk is not pre-filtered
        # (its records all reach the caller, which counts them itself)
        counting = bool(q.needles and q.require and q.count_event) and not has_json(chunk)
        if q.needles:
            require = q.require if counting or not q.count_event else ()
            lines = grep_bytes(chunk, q.needles, require, heads_only=not q.tracebacks)
            lines = window_lines(lines, q.since, q.until)
        else:
            verdict = chunk_in_window(chunk, q.since, q.until)
            if verdict is False:
                return None
            span = window_span(chunk, q.since, q.until) if verdict is None else None
            if span is not None:  # one run of lines: cut out, never split whole
                a, b = span
                return (chunk[a:b], b == len(chunk)) if a < b or b < len(chunk) else None
            if verdict:
                return (chunk, True) if chunk else None
            lines = window_lines(self.finish((chunk, True)) or [], q.since, q.until)
        if counting:
            tag = f" - {q.count_event}: "
            kept = sum(1 for ln in lines if ln[:1].isdigit() and tag in ln)
            dropped = count_heads(chunk, tag.encode(), q.since, q.until) - kept
            if dropped > 0:
                lines.append(f"{DROPPED}{dropped}")
        return lines or None


_HEAD_TS = re.compile(rb"\n([0-9][^\n]{0,22})")  # "\n"-led: found at memchr speed
_NON_ASCII_START = re.compile(rb"\n[\x80-\xff{]")
_NON_ASCII_LINE = re.compile(rb"\n[\x80-\xff]")


def chunk_in_window(chunk: bytes, since: str | None, until: str | None) -> bool | None:
    """What ``window_lines`` would keep of ``chunk``'s lines, told at C speed when it is
    all or nothing: True (every line), False (none), None (some, or not told: ask
    ``window_lines``)."""
    if since is None and until is None:
        return True
    if since is not None and until is not None and since.isascii() and until.isascii() \
            and len(since) <= 23 and len(until) <= 23:
        first, inside, outside = range_rx(since, until)
        if first.match(chunk) is None and inside.search(chunk) is None:
            # no digit-led line is in the window (a line led by a non-ASCII digit is
            # greater than any ASCII end); JSON lines are kept whatever their time
            return None if has_json(chunk) else False
        if first.match(chunk) is not None and outside.search(chunk) is None and \
                _NON_ASCII_LINE.search(chunk) is None:
            return True
        return None
    # one end open: judged by the least and greatest of the lines' first 23 characters,
    # for a chunk that starts with a digit and has no line led by "{" or a non-ASCII
    # character (whose ``isdigit`` only decoding tells)
    if not chunk[:1].isdigit() or _NON_ASCII_START.search(chunk) is not None:
        return None
    nl = chunk.find(b"\n")
    tss = _HEAD_TS.findall(chunk)
    tss.append(chunk[:min(23, nl if nl >= 0 else len(chunk))])  # the first line
    if not b"".join(tss).isascii():
        return None
    lo = (since or "").encode()
    mn, mx = min(tss), max(tss)
    if (until is not None and mn >= until.encode()) or mx < lo:
        return False
    if mn >= lo and (until is None or mx < until.encode()):
        return True
    return None


def window_span(chunk: bytes, since: str | None, until: str | None,
                ) -> tuple[int, int] | None:
    """(start, end): ``chunk[start:end]`` split at newlines is what ``window_lines``
    keeps of ``chunk`` (a block at an edge of the window), found at C speed; None when
    that is not one run of lines, or not told (JSON lines, a line led by a non-ASCII
    character, a non-ASCII end). ``end``: the newline ending the run, or the end."""
    if since is None or until is None or not since.isascii() or not until.isascii() \
            or len(since) > 23 or len(until) > 23 or has_json(chunk):
        return None
    first, inside, outside = range_rx(since, until)
    if first.match(chunk) is not None:
        start = 0
    else:
        m = inside.search(chunk)
        if m is None:
            return None
        start = m.start() + 1
    o = outside.search(chunk, start)
    end = len(chunk) if o is None else o.start()
    if o is not None and inside.search(chunk, end) is not None:
        return None  # lines in the window again after some that are not: several runs
    # a line led by a non-ASCII character is a digit or not only once decoded
    if _NON_ASCII_LINE.search(chunk, max(0, start - 1), end) is not None:
        return None
    return start, end


def window_lines(lines: list[str], since: str | None, until: str | None) -> list[str]:
    """Text records whose timestamp is in [since, until), with their continuation lines;
    JSON lines are kept (their time is checked after parsing)."""
    if since is None and until is None:
        return lines
    out: list[str] = []
    keep = False
    lo = since or ""
    hi = until or "\uffff"
    for line in lines:
        c = line[:1]
        if c.isdigit():
            ts = line[:23]
            keep = lo <= ts < hi
        elif c == "{":
            keep = True
        if keep:
            out.append(line)
    return out
