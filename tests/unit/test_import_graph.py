"""The package's import graph, read from the source (every import, including those inside functions):
no cycles, and nothing outside tagpipe.ops (the operator layer: CLI, local stack, replay, erase,
preview) imports operator code."""

from __future__ import annotations

import ast
from pathlib import Path

import tagpipe

PACKAGE = Path(tagpipe.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    files = {module_name(p): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")[: len(here.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets.update(f"{module}.{a.name}" if f"{module}.{a.name}" in files else module for a in node.names)
        # importing a.b.c runs a/b/__init__ too; a module's own parent packages are already running
        edges = {".".join(t.split(".")[:k]) for t in targets for k in range(2, t.count(".") + 2)}
        graph[name] = {e for e in edges if e in files and e != name and not name.startswith(e + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    assert "tagpipe.ops.replay" in graph["tagpipe.ops.cli"]  # cli imports replay inside a command
    assert "tagpipe.storage.bigquery_read" in graph["tagpipe.ops.replay"]


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_nothing_below_the_operator_layer_imports_it():
    graph = import_graph()
    assert {m: sorted(d for d in deps if d.startswith("tagpipe.ops"))
            for m, deps in graph.items() if not m.startswith("tagpipe.ops")} == {m: [] for m in graph
                                                                               if not m.startswith("tagpipe.ops")}
