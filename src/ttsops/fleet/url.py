"""``clickhouse://[user[:password]@]host[:port]/database[?cluster=NAME]``."""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_PORT = 9000  # the native protocol's
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class UrlError(ValueError):
    """A URL that is not a ClickHouse address (a usage error)."""


class ChUrl(NamedTuple):
    """(a NamedTuple, not a dataclass: ``dataclasses`` imports ``inspect``, ~10 ms of
    every ``--source`` command's start)"""

    host: str
    port: int
    database: str
    user: str = "default"
    password: str = ""
    cluster: str | None = None

    def __str__(self) -> str:  # never the password
        c = f"?cluster={self.cluster}" if self.cluster else ""
        return f"clickhouse://{self.user}@{self.host}:{self.port}/{self.database}{c}"


def parse_url(url: str) -> ChUrl:
    """The parts of a ``clickhouse://`` URL, or ``UrlError`` saying what is wrong."""
    try:
        u = urlsplit(url)
        port = u.port
    except ValueError as e:
        raise UrlError(f"{url!r}: not a clickhouse:// URL ({e})") from None
    if u.scheme != "clickhouse":
        raise UrlError(f"{url!r}: the URL must start with clickhouse:// "
                       "(clickhouse://[user[:password]@]host[:port]/database[?cluster=NAME])")
    if not u.hostname:
        raise UrlError(f"{url!r}: no host")
    db = u.path.lstrip("/")
    if not db:
        raise UrlError(f"{url!r}: no database (clickhouse://host:9000/DATABASE)")
    if not _NAME.match(db):
        raise UrlError(f"{url!r}: database {db!r} must be a plain name ([A-Za-z_][A-Za-z0-9_]*)")
    q = parse_qs(u.query, keep_blank_values=True)
    unknown = sorted(set(q) - {"cluster"})
    if unknown:
        raise UrlError(f"{url!r}: unknown parameter {unknown[0]!r} (only cluster=NAME)")
    cluster = q.get("cluster", [None])[-1]
    if cluster is not None and not _NAME.match(cluster):
        raise UrlError(f"{url!r}: cluster {cluster!r} must be a plain name")
    if u.fragment:
        raise UrlError(f"{url!r}: unexpected #{u.fragment}")
    return ChUrl(u.hostname, port or DEFAULT_PORT, db, unquote(u.username or "") or "default",
                 unquote(u.password or ""), cluster)
