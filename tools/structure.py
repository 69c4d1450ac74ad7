"""Structure checks for a set of packages (issue 17): prints one line per violation.

    python tools/structure.py ttsops.engines ttsops.pipeline ttsops.workers ...

Checks, each module of the given packages (a package means all its modules; a module
name means that module):

- ``module-lines``: a module longer than ``--max-module-lines`` (500) lines;
- ``function-lines``: a function or method longer than ``--max-function-lines`` (100)
  lines, decorators not counted;
- ``private-import``: a private name (``_name``, not ``__dunder__``) taken from another
  module of the project: ``from .x import _name``, or ``x._name`` on a module bound by an
  import. A private *module* (``from . import _mod``, ``_mod.name``) is fine: that is
  where shared internals live;
- ``import-cycle``: a cycle in the graph of imports between the project's modules, with
  imports inside functions counted (``if TYPE_CHECKING:`` blocks are not). The graph is
  built over the whole project (the top package of the first name given); a cycle is
  reported when one of its modules is in the given set;
- ``layer``: an import against the layer table (``LAYERS``, below): a module imports a
  module of a layer its own layer may not import (imports inside functions counted,
  ``if TYPE_CHECKING:`` blocks not), or a module of the project is in no layer of the
  table (checked when the table's top package is the one being checked);
- ``click``: ``click`` imported outside the CLI layer (every other layer is usable as a
  library without it).

Exit status: 0 when there is nothing to report, 1 otherwise, 2 on bad arguments.
Standard library only (``ast``), so that it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import ast
import functools
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 100


@dataclass(frozen=True)
class Layer:
    """A layer: its modules and the layers it may import (its own always)."""

    name: str
    modules: tuple[str, ...]  # "a.b" that module; "a.b.*" that package and all under it
    may_import: tuple[str, ...] = ()
    click: bool = False  # may import click


# Who may import whom, bottom up (docs/DESIGN.md, "Who may import whom"). A module
# belongs to the layer of its most specific entry: an exact name before any "pkg.*",
# a longer "pkg.*" before a shorter one. The service half is engines -> pipeline ->
# workers -> server; the forensics half reading -> analyses -> rendering; fleet's
# shipping is a second source beside reading; the CLI layer is on top of both.
SHARED = "shared"
LAYERS: tuple[Layer, ...] = (
    Layer(SHARED, (
        "ttsops", "ttsops.config", "ttsops.knobrows", "ttsops.knobs", "ttsops.errors",
        "ttsops.events", "ttsops.limits", "ttsops.plain", "ttsops.logformat.*",
        "ttsops.logline", "ttsops.logsink", "ttsops.logsink_render", "ttsops.logindex",
        "ttsops.indexformat", "ttsops.indexread", "ttsops.logindex_summary", "ttsops.cache",
        "ttsops.cache_health",
        "ttsops.forensics")),  # (its __init__: a docstring, run by every import below it)
    Layer("engines", ("ttsops.engines.*",), (SHARED,)),
    Layer("pipeline", ("ttsops.pipeline.*",), ("engines", SHARED)),
    Layer("workers", ("ttsops.workers.*",), ("pipeline", "engines", SHARED)),
    # the server ships its own log live when TTSOPS_LOG_SHIP_URL is set (fleet.live)
    Layer("server", ("ttsops.server.*",), ("workers", "pipeline", "engines", "fleet", SHARED)),
    Layer("simulate", ("ttsops.simulate", "ttsops.simulate_background",
                       "ttsops.simulate_faults", "ttsops.simulate_scenarios",
                       "ttsops.simulate_truth"), ("pipeline", SHARED)),
    Layer("reading", ("ttsops.forensics.reading.*",), (SHARED,)),
    # ClickHouse: connecting, the table, shipping; it groups and opens files as reading does
    Layer("fleet", ("ttsops.fleet.*",), ("reading", SHARED)),
    Layer("analyses", ("ttsops.forensics.analyses.*",), ("reading", SHARED)),
    Layer("rendering", ("ttsops.forensics.rendering.*",), ("analyses", "reading", SHARED)),
    # the commands on top: click groups, the click-free command line (quick, commands) and
    # fleet's query runner, which stands in for commands.run on --source
    Layer("cli", (
        "ttsops.cli", "ttsops.entry", "ttsops.__main__", "ttsops.simulate_cli",
        "ttsops.engines.cli", "ttsops.pipeline.cli", "ttsops.server.cli", "ttsops.fleet.cli",
        "ttsops.fleet.source", "ttsops.fleet.sqlwindow", "ttsops.fleet.sqltop",
        "ttsops.fleet.sqlstages", "ttsops.fleet.sqlpatterns",
        "ttsops.forensics.cli", "ttsops.forensics.commands",
        "ttsops.forensics.quick"),
        ("server", "workers", "pipeline", "engines", "simulate", "fleet", "rendering",
         "analyses", "reading", SHARED), click=True),
)


@dataclass(frozen=True, order=True)
class Violation:
    path: str
    line: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.message}"


@dataclass
class Module:
    name: str  # dotted
    path: Path
    is_package: bool  # an __init__.py
    tree: ast.Module
    lines: int

    @functools.cached_property
    def runtime(self) -> list[ast.AST]:
        """Every node outside ``if TYPE_CHECKING:``, walked once for all the checks (each
        walked the tree again: 4.5 of the 6.9 s a check of ttsops took under cProfile)."""
        return list(_runtime_nodes(self.tree))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


class Project:
    """Every module under one top package, parsed once."""

    def __init__(self, src: Path, top: str) -> None:
        self.src = src
        self.modules: dict[str, Module] = {}
        self.imports_of: dict[str, list[tuple[int, str, str | None]]] = {}
        root = src / top.replace(".", "/")
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(src).with_suffix("")
            parts = list(rel.parts)
            is_pkg = parts[-1] == "__init__"
            if is_pkg:
                parts = parts[:-1]
            text = path.read_text(encoding="utf-8")
            self.modules[".".join(parts)] = Module(
                ".".join(parts), path, is_pkg, ast.parse(text, str(path)),
                len(text.splitlines()))

    def select(self, names: Iterable[str]) -> list[Module]:
        out: dict[str, Module] = {}
        for name in names:
            hits = [m for m in self.modules.values()
                    if m.name == name or m.name.startswith(name + ".")]
            if not hits:
                raise LookupError(f"no module or package {name!r} under {self.src}")
            out.update((m.name, m) for m in hits)
        return [out[k] for k in sorted(out)]

    def resolve(self, mod: Module, level: int, target: str | None) -> str:
        """The absolute name of ``from <level dots><target> import ...`` in ``mod``."""
        if level == 0:
            return target or ""
        base = mod.name.split(".")
        if not mod.is_package:
            base = base[:-1]
        if level > 1:
            base = base[: len(base) - (level - 1)]
        return ".".join([*base, *([target] if target else [])])


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except what is under ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(project: Project, mod: Module) -> list[tuple[int, str, str | None]]:
    """(line, module imported, name taken from it or None) for each runtime import of a
    module of the project (found once per module)."""
    found = project.imports_of.get(mod.name)
    if found is None:
        found = project.imports_of[mod.name] = list(_imports(project, mod))
    return found


def _imports(project: Project, mod: Module) -> Iterator[tuple[int, str, str | None]]:
    for node in mod.runtime:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in project.modules:
                    yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            base = project.resolve(mod, node.level, node.module)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in project.modules:  # from pkg import module
                    yield node.lineno, sub, None
                elif base in project.modules:
                    yield node.lineno, base, alias.name


def check_sizes(mod: Module, max_module: int, max_function: int) -> Iterator[Violation]:
    rel = str(mod.path)
    if mod.lines > max_module:
        yield Violation(rel, 1, "module-lines", f"{mod.name}: {mod.lines} lines "
                                                f"(limit {max_module})")
    for node in ast.walk(mod.tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = (node.end_lineno or node.lineno) - node.lineno + 1
            if n > max_function:
                yield Violation(rel, node.lineno, "function-lines",
                                f"{mod.name}.{node.name}: {n} lines (limit {max_function})")


def check_private(project: Project, mod: Module) -> Iterator[Violation]:
    rel = str(mod.path)
    bound: dict[str, str] = {}  # local name -> project module it is bound to
    for line, target, name in imports(project, mod):
        if name is not None and _is_private(name) and target != mod.name:
            yield Violation(rel, line, "private-import",
                            f"{mod.name} imports {target}.{name}")
    for node in mod.runtime:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name in project.modules:
                    bound[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            base = project.resolve(mod, node.level, node.module)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in project.modules:
                    bound[alias.asname or alias.name] = sub
    for node in mod.runtime:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in bound and _is_private(node.attr):
            target = bound[node.value.id]
            if f"{target}.{node.attr}" in project.modules or target == mod.name:
                continue  # a private module: fine
            yield Violation(rel, node.lineno, "private-import",
                            f"{mod.name} uses {target}.{node.attr}")


class LayerTable:
    """``LAYERS`` as lookups: a module's layer, and whether one layer may import another."""

    def __init__(self, layers: Iterable[Layer]) -> None:
        self.layers = {layer.name: layer for layer in layers}
        for layer in self.layers.values():
            unknown = set(layer.may_import) - set(self.layers)
            if unknown:
                raise ValueError(f"layer {layer.name!r} may import unknown {sorted(unknown)}")
        self.exact: dict[str, str] = {}
        self.prefix: dict[str, str] = {}
        for layer in self.layers.values():
            for name in layer.modules:
                table = self.prefix if name.endswith(".*") else self.exact
                key = name.removesuffix(".*")
                if key in table:
                    raise ValueError(f"{name!r} is in two layers")
                table[key] = layer.name
        self.top = {name.split(".")[0] for name in [*self.exact, *self.prefix]}

    def of(self, module: str) -> str | None:
        if module in self.exact:
            return self.exact[module]
        parts = module.split(".")
        for n in range(len(parts), 0, -1):
            layer = self.prefix.get(".".join(parts[:n]))
            if layer is not None:
                return layer
        return None

    def allows(self, src: str, dst: str) -> bool:
        return src == dst or dst in self.layers[src].may_import


def _imports_click(mod: Module) -> Iterator[int]:
    for node in mod.runtime:
        if isinstance(node, ast.Import):
            if any(a.name.split(".")[0] == "click" for a in node.names):
                yield node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "click":
            yield node.lineno


def check_layers(project: Project, mod: Module, table: LayerTable) -> Iterator[Violation]:
    rel = str(mod.path)
    if mod.name.split(".")[0] not in table.top:
        return
    here = table.of(mod.name)
    if here is None:
        yield Violation(rel, 1, "layer", f"{mod.name} is in no layer of the table")
        return
    for line in _imports_click(mod):
        if not table.layers[here].click:
            yield Violation(rel, line, "click",
                            f"{mod.name} ({here}) imports click: only the CLI layer may")
    seen: set[str] = set()
    for line, target, _ in imports(project, mod):
        there = table.of(target)
        if there is None or table.allows(here, there) or target in seen:
            continue
        seen.add(target)
        yield Violation(rel, line, "layer",
                        f"{mod.name} ({here}) imports {target} ({there})")


def graph(project: Project) -> dict[str, dict[str, int]]:
    """module -> {module it imports: line of the first such import}."""
    g: dict[str, dict[str, int]] = {}
    for name, mod in project.modules.items():
        edges: dict[str, int] = {}
        for line, target, _ in imports(project, mod):
            if target != name:
                edges.setdefault(target, line)
        g[name] = edges
    return g


def cycles(g: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def _one_cycle(g: dict[str, dict[str, int]], comp: list[str]) -> list[str]:
    """A shortest path back to the first module of ``comp``, for the message."""
    inside = set(comp)
    start = comp[0]
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(g[v]):
                if w not in inside:
                    continue
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 \
                        else [start, v, start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return comp


def check_cycles(project: Project, selected: set[str]) -> Iterator[Violation]:
    g = graph(project)
    for comp in cycles(g):
        if not selected.intersection(comp):
            continue
        path = _one_cycle(g, comp)
        first = project.modules[path[0]]
        line = g[path[0]].get(path[1], 1) if len(path) > 1 else 1
        yield Violation(str(first.path), line, "import-cycle",
                        " -> ".join(path) + (f" ({len(comp)} modules in the cycle)"
                                             if len(comp) > len(path) - 1 else ""))


def check(packages: list[str], src: Path, max_module: int = MAX_MODULE_LINES,
          max_function: int = MAX_FUNCTION_LINES,
          layers: Iterable[Layer] = LAYERS) -> list[Violation]:
    top = packages[0].split(".")[0]
    project = Project(src, top)
    mods = project.select(packages)
    table = LayerTable(layers)
    found: list[Violation] = []
    for mod in mods:
        found += check_sizes(mod, max_module, max_function)
        found += check_private(project, mod)
        found += check_layers(project, mod, table)
    found += check_cycles(project, {m.name for m in mods})
    base = src.parent
    return sorted(Violation(str(Path(v.path).relative_to(base)) if Path(v.path).is_absolute()
                            and Path(v.path).is_relative_to(base) else v.path,
                            v.line, v.kind, v.message) for v in set(found))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("packages", nargs="+", help="dotted package or module names")
    ap.add_argument("--src", type=Path, default=Path(__file__).resolve().parent.parent / "src",
                    help="the directory that holds the top package (default: ./src)")
    ap.add_argument("--max-module-lines", type=int, default=MAX_MODULE_LINES)
    ap.add_argument("--max-function-lines", type=int, default=MAX_FUNCTION_LINES)
    args = ap.parse_args(argv)
    try:
        found = check(args.packages, args.src.resolve(), args.max_module_lines,
                      args.max_function_lines)
    except LookupError as e:
        print(f"structure: {e}", file=sys.stderr)
        return 2
    for v in found:
        print(v)
    print(f"{len(found)} violation(s) in {', '.join(args.packages)}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
