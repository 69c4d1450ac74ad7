"""Regenerate the README's generated blocks (settings and error-code tables) from the
code, so the README cannot drift from the one settings table and the one registry.

    python tools/update_readme.py          # rewrite README.md in place
    python tools/update_readme.py --check  # exit 1 if README.md is out of date
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = {"settings": ["settings", "--markdown"], "errors": ["errors", "--markdown"]}


def generated(name: str) -> str:
    out = subprocess.run([sys.executable, "-m", "ttsops", *BLOCKS[name]], check=True,
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}).stdout
    return out.strip() + "\n"


def render(text: str) -> str:
    for name in BLOCKS:
        pat = re.compile(rf"(<!-- {name}:begin -->\n)(.*?)(<!-- {name}:end -->)", re.S)
        if not pat.search(text):
            raise SystemExit(f"README.md has no <!-- {name}:begin/end --> block")
        text = pat.sub(lambda m, n=name: m.group(1) + generated(n) + m.group(3), text)
    return text


def main() -> int:
    old = README.read_text(encoding="utf-8")
    new = render(old)
    if "--check" in sys.argv:
        if new != old:
            print("README.md is out of date: run python tools/update_readme.py")
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
