"""The code's shape: no import cycles, stages that never import each other, no private names
borrowed.

The import graph is built from the source (every ``import`` anywhere in a module, including the
ones inside functions), so a cycle that only closes at run time is found too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_SRC = ROOT / "runtime" / "src"
# siblings under checks/: none imports another
CHECKS = ("parity", "bench", "reliability", "pi", "reader")
PACKAGES = ("common", "train", "export", "checks", "tests")
# what each top-level package may import from the project besides itself
ALLOWED = {
    "mnist_edge": set(),
    "common": {"mnist_edge"},
    "train": {"common", "mnist_edge"},
    "export": {"common", "mnist_edge"},
    "checks": {"common", "mnist_edge"},
}


def _module_name(path: Path) -> str:
    base = RUNTIME_SRC if path.is_relative_to(RUNTIME_SRC) else ROOT
    parts = list(path.relative_to(base).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    files += list((RUNTIME_SRC / "mnist_edge").rglob("*.py"))
    return {_module_name(p): p for p in files}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module ``name`` refers to (itself, or the package holding it), if any."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path, modules: dict[str, Path]):
    """(imported module, imported name or None, line) for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, modules)
                if target:
                    yield target, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in modules:  # `from pkg import submodule`
                    yield full, None, node.lineno
                elif (target := _resolve(base, modules)) is not None:
                    yield target, alias.name, node.lineno


def _attributes(path: Path, modules: dict[str, Path]):
    """(module, attribute, line) for ``alias.attr`` where ``alias`` names an imported project
    module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update({a.asname: a.name for a in node.names if a.asname and a.name in modules})
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            aliases.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names
                            if f"{node.module}.{a.name}" in modules})
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in aliases:
            yield aliases[node.value.id], node.attr, node.lineno


def _graph() -> tuple[dict[str, set[str]], list[tuple[str, str, str, int]]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    names = []
    for module, path in modules.items():
        for target, name, line in _imports(module, path, modules):
            if target != module:
                graph[module].add(target)
            if name is not None:
                names.append((module, target, name, line))
        names += [(module, target, attr, line) for target, attr, line in _attributes(path, modules)]
    return graph, names


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_every_package():
    graph, _ = _graph()
    assert {m.split(".")[0] for m in graph} == set(PACKAGES) | {"mnist_edge"}
    assert "mnist_edge.classifier" in graph["mnist_edge"]  # imports are resolved to modules
    assert "common.formats" in graph["export.export"]


def test_no_import_cycles():
    graph, _ = _graph()
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _check(module: str) -> str | None:
    """The check a module belongs to (checks/parity/... -> parity); None for the rest."""
    parts = module.split(".")
    return parts[1] if parts[0] == "checks" and len(parts) > 2 and parts[1] in CHECKS else None


def test_stages_import_the_shared_layer_never_each_other():
    graph, _ = _graph()
    top = {m: m.split(".")[0] for m in graph}
    wrong = sorted((m, t) for m, targets in graph.items() for t in targets
                   if top[m] in ALLOWED and top[t] != top[m] and top[t] not in ALLOWED[top[m]])
    siblings = sorted((m, t) for m, targets in graph.items() for t in targets
                      if None not in (_check(m), _check(t)) and _check(m) != _check(t))
    assert wrong == [] and siblings == []


def test_no_private_names_imported_across_packages():
    _, names = _graph()
    wrong = sorted(f"{m}:{line} imports {name} from {t}" for m, t, name, line in names
                   if name.startswith("_") and not name.startswith("__")
                   and t.split(".")[0] != m.split(".")[0])
    assert wrong == []
