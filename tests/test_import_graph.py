"""The import graph of dp's own modules (issue 16): models/ (package dp_models) uses nothing of dp_cli but the
small shared core, the core uses nothing else of dp, and no two modules import each other, directly or round a
loop, counting imports inside functions too (dp_cli.data.dataset <-> formats.native was such a loop)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"dp_cli": ROOT / "dp_cli", "dp_models": ROOT / "models"}
# The shared core dp_models may use: the error family, atomic file writes, the attribute vocabulary and caption
# helpers, the image toolkit. Each imports only the standard library, numpy, PIL (and torch) and one another.
CORE = {"dp_cli", "dp_cli.data", "dp_cli.errors", "dp_cli.fsutil", "dp_cli.data.attributes", "dp_cli.data.images"}


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of dp_cli and dp_models."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imported(name: str, path: Path) -> set[str]:
    """dp's own modules that `name` imports anywhere in its file (`from a import b`: a.b when it is a module)."""
    own_package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                base = ".".join(own_package[:len(own_package) - node.level + 1] + ([base] if base else []))
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names}
    return {m for m in found if m in MODULES}


GRAPH = {name: _imported(name, path) for name, path in MODULES.items()}


def _loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that reach each other (strongly connected components of more than one module)."""
    order, low, stack, loops = {}, {}, [], []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in order:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], order[nxt])
        if low[node] == order[node]:
            group = stack[stack.index(node):]
            del stack[stack.index(node):]
            if len(group) > 1 or node in graph[node]:
                loops.append(sorted(group))

    for node in graph:
        if node not in order:
            visit(node)
    return loops


def test_the_graph_sees_module_level_function_level_and_relative_imports():
    assert "dp_cli.data.dataset" in GRAPH["dp_cli.data.formats.native"]
    assert "dp_cli.data.formats.native" in GRAPH["dp_cli.commands.segment"]  # inside a function
    assert "dp_models.loading" in GRAPH["dp_models.dp_model"]
    assert _loops({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_models_use_only_the_shared_core_of_dp_cli():
    outside = {name: sorted(m for m in imported if m.startswith("dp_cli.") and m not in CORE)
               for name, imported in GRAPH.items() if name.startswith("dp_models")}
    assert not {k: v for k, v in outside.items() if v}


def test_the_core_uses_nothing_else_of_dp():
    assert {name: sorted(GRAPH[name] - CORE) for name in CORE if GRAPH[name] - CORE} == {}


def test_no_import_loops_among_dp_modules():
    assert _loops(GRAPH) == []
