"""The fast line parser, kept importable from its old place: it lives in the log
contract, ``logformat.fastparse`` (the writer's index builder uses it too, and the
writer does not depend on the forensics layer)."""

from __future__ import annotations

from ..logformat.fastparse import head_parse, iter_records, parse_line

__all__ = ["head_parse", "iter_records", "parse_line"]
