"""Imports point one way (ARCHITECTURE.md): no app imports an app that imports it back, directly or around a
circle, and no module does, counting imports inside functions too (they only hide a cycle)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import patronage

ROOT = Path(patronage.__file__).parent
# Shared by tests and fixtures only; they may import anything.
NOT_APPS = {"testing", "conftest", "settings", "urls", "wsgi", "cli"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if "migrations" in parts or "tests" in parts or parts[0] in NOT_APPS or parts == ("__init__",):
            continue
        name = ".".join(("patronage", *parts)).removesuffix(".__init__")
        found[name] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in modules and "." in candidate:
                candidate = candidate.rsplit(".", 1)[0]
            if candidate in modules and candidate != name:
                targets.add(candidate)
    return targets


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of nodes that reach each other (strongly connected, more than one node)."""

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for target in graph.get(todo.pop(), ()):
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen

    reaches = {node: reach(node) for node in graph}
    groups = {
        frozenset({node, *(other for other in reaches[node] if node in reaches.get(other, ()))})
        for node in graph
    }
    return sorted(sorted(group) for group in groups if len(group) > 1)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_no_module_imports_itself_around_a_circle() -> None:
    assert _cycles(_graph()) == []


def test_no_app_imports_an_app_that_imports_it_back() -> None:
    apps: dict[str, set[str]] = defaultdict(set)
    for name, targets in _graph().items():
        app = name.split(".")[1]
        apps[app] |= {target.split(".")[1] for target in targets} - {app}
    assert _cycles(apps) == []


def test_the_domain_apps_never_import_the_apis_or_the_panel() -> None:
    on_top = {"integration", "management", "panel", "home", "ops"}
    wrong = {
        (name, target)
        for name, targets in _graph().items()
        if name.split(".")[1] not in on_top
        for target in targets
        if target.split(".")[1] in on_top
    }
    assert wrong == set()
