"""The shape the code keeps (docs/architecture.md, "Which way imports go"): read from the source
with ``ast``, so a change that breaks it fails here rather than in a newcomer's head."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("crm", "portal", "config")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, ast.Module]:
    return {
        _module_name(path): ast.parse(path.read_text(), filename=str(path))
        for package in PROJECT
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }


def _imported(node: ast.Import | ast.ImportFrom, names: set[str]) -> set[str]:
    """The project modules an import statement loads (``from crm import links`` loads crm.links)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in names}
    if node.level or not node.module:
        return set()
    found = {node.module} if node.module in names else set()
    found |= {f"{node.module}.{alias.name}" for alias in node.names if f"{node.module}.{alias.name}" in names}
    return found


def _top_level_imports(tree: ast.Module, names: set[str]) -> set[str]:
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found |= _imported(node, names)
    return found


def _function_level_imports(tree: ast.Module, names: set[str]) -> list[tuple[int, set[str]]]:
    found = []
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom) and (loaded := _imported(node, names)):
                    found.append((node.lineno, loaded))
    return found


SOURCES = _sources()
NAMES = set(SOURCES)
GRAPH = {name: _top_level_imports(tree, NAMES) for name, tree in SOURCES.items()}


def _reaches(start: str, goal: str) -> bool:
    seen, stack = set(), list(GRAPH[start])
    while stack:
        name = stack.pop()
        if name == goal:
            return True
        if name not in seen:
            seen.add(name)
            stack.extend(GRAPH.get(name, ()))
    return False


def test_the_graph_is_read_from_the_source() -> None:
    # The check below would pass on an empty graph: make sure it sees the known edges.
    assert "crm.services.promises" in GRAPH["crm.services.jobs"]
    assert "crm.links" in GRAPH["portal.access"]


def test_no_crm_module_imports_the_portal() -> None:
    assert {
        name: sorted(i for i in imports if i.startswith("portal"))
        for name, imports in GRAPH.items()
        if name.startswith("crm") and any(i.startswith("portal") for i in imports)
    } == {}


def test_no_service_imports_a_module_that_imports_it_back() -> None:
    services = sorted(name for name in GRAPH if name.startswith("crm.services."))
    assert [name for name in services if _reaches(name, name)] == []


def test_no_import_inside_a_function_except_signal_receivers_in_ready() -> None:
    found = {
        name: lines
        for name, tree in SOURCES.items()
        if (lines := [line for line, _ in _function_level_imports(tree, NAMES)])
    }
    assert found == {"crm.apps": found.get("crm.apps", [])}
    assert len(found.get("crm.apps", [])) <= 1
