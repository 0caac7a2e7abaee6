"""The code's shape: no import cycles between modules or packages, stages that never import each
other, no private names borrowed.

The import graph is built from the source (every ``import`` anywhere in a module, including the
ones inside functions), so a cycle that only closes at run time is found too. A module that starts
a project package as a child process (``[python, "-m", "train", ...]``, the target a literal
string) depends on it as if it imported it: the layer rules and the package cycles count those
launches too.
"""

from __future__ import annotations

import ast
import functools
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
# what each top-level package may start with `python -m` besides what it may import: the checks
# run the build stages they check; common, train, export and mnist_edge start no other stage
LAUNCHES = {"checks": {"train", "export"}}


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _module_name(path: Path) -> str:
    base = RUNTIME_SRC if path.is_relative_to(RUNTIME_SRC) else ROOT
    parts = list(path.relative_to(base).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
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
    tree = _tree(path)
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
    tree = _tree(path)
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


def _launches(path: Path, modules: dict[str, Path]):
    """(module, line) for each project package or module started as ``python -m NAME``: a literal
    "-m" followed by a literal name in a list or tuple (an argv)."""
    tree = _tree(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.List | ast.Tuple):
            for flag, name in zip(node.elts, node.elts[1:], strict=False):
                if isinstance(flag, ast.Constant) and flag.value == "-m" \
                        and isinstance(name, ast.Constant) and isinstance(name.value, str):
                    target = _resolve(f"{name.value}.__main__", modules)
                    if target:
                        yield target, node.lineno


def _launch_graph() -> dict[str, set[str]]:
    """Module -> the project modules it starts as a child process."""
    modules = _modules()
    return {m: {t for t, _ in _launches(path, modules)} for m, path in modules.items()}


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


def _package(module: str) -> str:
    """The package a module belongs to (a package's __init__ is the package itself)."""
    is_package = _modules()[module].name == "__init__.py"
    return module if is_package else module.rpartition(".")[0] or module


def _package_graph(*graphs: dict[str, set[str]]) -> dict[str, set[str]]:
    """Package -> the packages its modules import or start."""
    found: dict[str, set[str]] = {_package(m): set() for m in _modules()}
    for graph in graphs:
        for m, targets in graph.items():
            found[_package(m)] |= {_package(t) for t in targets} - {_package(m)}
    return found


def test_no_package_cycles():
    """No two packages use each other (checks.worker importing checks.bench, which imports
    checks.worker, is a cycle even though no module imports itself back)."""
    graph, _ = _graph()
    launches = _launch_graph()
    cycles = _cycles(_package_graph(graph, launches))
    edges = sorted(f"{m} -> {t}" for g in (graph, launches) for m, targets in g.items()
                   for t in targets for cycle in cycles
                   if _package(m) != _package(t) and {_package(m), _package(t)} <= set(cycle))
    assert cycles == [], edges


def test_the_package_graph_joins_modules_into_packages():
    graph = {"checks.worker": {"checks.bench.baselines"}, "checks.bench.run": {"checks.worker"}}
    assert _cycles(_package_graph(graph)) == [["checks", "checks.bench"]]


def test_launches_are_seen():
    launches = _launch_graph()
    assert "train.__main__" in launches["checks.reliability.repro"]
    assert "mnist_edge.__main__" in launches["checks.bench.oneshot"]
    assert "checks.worker" in launches["checks.worker"]


def _check(module: str) -> str | None:
    """The check a module belongs to (checks/parity/... -> parity); None for the rest."""
    parts = module.split(".")
    return parts[1] if parts[0] == "checks" and len(parts) > 2 and parts[1] in CHECKS else None


def test_stages_import_the_shared_layer_never_each_other():
    graph, _ = _graph()
    top = {m: m.split(".")[0] for m in graph}
    uses = [(m, t, "imports", ALLOWED.get(top[m], set())) for m, targets in graph.items()
            for t in targets]
    uses += [(m, t, "starts", ALLOWED.get(top[m], set()) | LAUNCHES.get(top[m], set()))
             for m, targets in _launch_graph().items() for t in targets]
    wrong = sorted(f"{m} {how} {t}" for m, t, how, allowed in uses
                   if top[m] in ALLOWED and top[t] not in allowed | {top[m]})
    siblings = sorted(f"{m} {how} {t}" for m, t, how, _ in uses
                      if None not in (_check(m), _check(t)) and _check(m) != _check(t))
    assert wrong == [] and siblings == []


def test_no_private_names_imported_across_packages():
    _, names = _graph()
    wrong = sorted(f"{m}:{line} imports {name} from {t}" for m, t, name, line in names
                   if name.startswith("_") and not name.startswith("__")
                   and t.split(".")[0] != m.split(".")[0])
    assert wrong == []
