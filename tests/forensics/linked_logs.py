"""Read-only logs made once given to several tests as their own: the files hard-linked
(the same inode, size and time, so the same identities: a sidecar or companion made for
one is the other's), and a sidecar cache made once copied in."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def link_files(src: Path, dst: Path) -> Path:
    """``dst`` made holding ``src``'s files hard-linked (its directories copied: sidecars
    beside the files, if any, are not shared). For tests that do not write into the
    files (a link shares them)."""
    dst.mkdir(parents=True)
    for p in src.iterdir():
        if p.is_file():
            os.link(p, dst / p.name)
        else:
            shutil.copytree(p, dst / p.name)
    return dst


def copy_missing(src: Path, dst: Path) -> None:
    """Every file under ``src`` copied to the same place under ``dst`` where ``dst``
    has none (what is there already is kept, as a read that finds it keeps it)."""
    for p in src.rglob("*"):
        if p.is_file():
            to = dst / p.relative_to(src)
            if not to.exists():
                to.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(p, to)
