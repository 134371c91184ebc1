"""The project's import graph: which part imports which, upward imports, and module-level cycles.

    python tools/import_graph.py [--json PATH] [--root DIR]

Reads every module of `vla_rl/`, `placement/` and `simulators/` with `ast` (nothing is imported or
run) and counts every import, also those inside functions (a deferred import that dodges a cycle is
still a cycle). A part is a top-level package, or a subpackage / module of `vla_rl`. `LAYERS` is the
order of docs/design-notes.md and the shared DESIGN.md, lowest first: a part may import only parts of
lower layers, so two parts of one layer (simulators and models) never import each other. Prints the
part graph as a table, then each upward import and each cycle among modules, and writes them as JSON.
Exit status 1 when there is an upward import or a cycle (tests/test_layering.py runs it).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("vla_rl", "placement", "simulators")

LAYERS: tuple[tuple[str, ...], ...] = (
    ("vla_rl", "vla_rl.registry", "vla_rl.checkpoints", "vla_rl.metrics_log", "vla_rl.seeding", "vla_rl.lockfile",
     "vla_rl.progress", "vla_rl.threads"),
    ("vla_rl.config", "vla_rl.algorithms", "vla_rl.demos"),
    ("simulators", "vla_rl.models"),
    ("vla_rl.engines", "vla_rl.eval"),
    ("vla_rl.serve",),
    ("vla_rl.robots", "vla_rl.sft"),
    ("placement",),
    ("vla_rl.runner", "vla_rl.sweep"),
    ("vla_rl.cli",),
)
"""Parts by layer, lowest first."""


def part_of(module: str) -> str:
    """`vla_rl.runner.loop` -> `vla_rl.runner`; `placement.local` -> `placement`."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "vla_rl" and len(parts) > 1 else parts[0]


def module_imports(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the project modules it imports (absolute imports; `from a.b import c` counts `a.b.c` when that
    is a module, else `a.b`)."""
    files = {".".join(f.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): f
             for package in PACKAGES for f in sorted((root / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in files else node.module
                         for a in node.names]
            else:
                continue
            targets.update(n for n in names if n.split(".")[0] in PACKAGES and n in files and n != module)
        graph[module] = targets
    return graph


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) module pairs whose parts are not in a lower layer (or a part not in LAYERS)."""
    layer = {part: i for i, parts in enumerate(LAYERS) for part in parts}
    bad = []
    for module, targets in sorted(graph.items()):
        src = part_of(module)
        for target in sorted(targets):
            dst = part_of(target)
            if dst != src and (src not in layer or dst not in layer or layer[dst] >= layer[src]):
                bad.append((module, target))
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected sets of two or more modules (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def part_graph(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    parts: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        parts[part_of(module)].update(part_of(t) for t in targets if part_of(t) != part_of(module))
    return {p: sorted(parts[p]) for p in sorted(parts)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="also write the graph, upward imports and cycles here")
    parser.add_argument("--root", default=str(ROOT), help="checkout to read (default: this one)")
    args = parser.parse_args(argv)
    graph = module_imports(Path(args.root))
    parts, bad, loops = part_graph(graph), upward_imports(graph), cycles(graph)
    width = max(len(p) for p in parts)
    print(f"{'part':<{width}}  imports")
    for part, targets in parts.items():
        print(f"{part:<{width}}  {', '.join(targets) or '-'}")
    for module, target in bad:
        print(f"upward import: {module} -> {target}")
    for loop in loops:
        print(f"cycle: {' <-> '.join(loop)}")
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} imports, {len(bad)} upward, {len(loops)} cycles")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps({"parts": parts, "upward": bad, "cycles": loops}, indent=2) + "\n")
        tmp.replace(out)
    return 1 if bad or loops else 0


if __name__ == "__main__":
    sys.exit(main())
