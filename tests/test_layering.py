"""Imports inside ``src/gestalt`` flow one way and form no cycle.

Every import statement counts, at module level or inside a function; only those under
``if TYPE_CHECKING:`` do not, since they never run. The packages and what each may import:

* ``telemetry`` (the public ``gestalt.telemetry``; OpenTelemetry when installed, and
  ``gestalt._tracing``, its rule for when tracing is wanted, which the runtime asks without
  importing the package): nothing of the SDK, and every package may import it (the clients
  add trace context to their calls);
* ``_clients`` (host-service clients, their transport and errors): ``gestalt.gen``;
* ``_authoring`` (Model, Plugin, operations, provider base classes): clients and ``gen``;
* ``_runtime`` (the provider process, servicers, launching): authoring, clients, ``gen``;
* ``local`` (embedded services): the runtime's serving helpers, clients and ``gen``;
* ``testing``: all of the above;
* ``_devtools`` (CLI, dev host, builds): everything; nothing imports it but the entry points
  ``gestalt/__main__.py`` and ``gestalt/_build.py``.

The one exception is ``gestalt._authoring.serving``, which hands ``serve()`` to the runtime.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

SRC = REPO / "src"
ENTRY_POINTS = {"gestalt", "gestalt.__main__", "gestalt._build", "gestalt._exports"}
MAY_IMPORT: dict[str, set[str]] = {
    "gen": set(),
    "telemetry": set(),
    "_clients": {"gen", "telemetry"},
    "_authoring": {"gen", "_clients", "telemetry"},
    "_runtime": {"gen", "_clients", "_authoring", "telemetry"},
    "local": {"gen", "_clients", "_runtime", "telemetry"},
    "testing": {"gen", "_clients", "_authoring", "_runtime", "local", "telemetry"},
    "_devtools": {
        "gen",
        "_clients",
        "_authoring",
        "_runtime",
        "local",
        "testing",
        "telemetry",
        "entry",
    },
}
EXCEPTIONS = {("gestalt._authoring.serving", "gestalt._runtime.process")}
#: Modules outside the package folders that belong to a package all the same.
BELONGS_TO = {"gestalt._tracing": "telemetry"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "gestalt").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str, path: Path) -> set[str]:
    """The ``gestalt`` modules that module ``name`` imports when it runs."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in MODULES else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {module for module in found if module.split(".")[0] == "gestalt" and module != name}


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def layer(module: str) -> str:
    """The package a module belongs to, for the rules above."""
    if module in BELONGS_TO:
        return BELONGS_TO[module]
    package = module.split(".")[1:2]
    return package[0] if package and package[0] in MAY_IMPORT else "entry"


def test_every_module_belongs_to_a_package_or_is_an_entry_point() -> None:
    strays = [name for name in MODULES if layer(name) == "entry" and name not in ENTRY_POINTS]
    assert not strays, f"modules outside the packages: {strays}"
    assert {layer(name) for name in MODULES} - {"entry"} <= set(MAY_IMPORT)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if layer(n) != "entry"))
def test_imports_follow_the_layers(name: str) -> None:
    own = layer(name)
    wrong = sorted(
        target
        for target in GRAPH[name]
        if layer(target) not in {own, *MAY_IMPORT[own]} and (name, target) not in EXCEPTIONS
    )
    assert not wrong, f"{name} imports against the layering: {wrong}"


def test_the_one_exception_is_a_late_import() -> None:
    for source, target in EXCEPTIONS:
        tree = ast.parse(MODULES[source].read_text(encoding="utf-8"))
        top = {a for node in tree.body if isinstance(node, ast.ImportFrom) for a in [node.module]}
        assert target in GRAPH[source] and target not in top


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> modules it imports), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := walk(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := walk(start)):
            return cycle
    return None


def test_no_import_cycle() -> None:
    graph = {
        name: {t for t in targets if t in MODULES and (name, t) not in EXCEPTIONS}
        for name, targets in GRAPH.items()
        if name not in ENTRY_POINTS
    }
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checks_catch_a_cycle_and_a_wrong_import() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert "gestalt._devtools.cli" not in MAY_IMPORT["_runtime"]
    assert layer("gestalt._devtools.cli") == "_devtools" and layer("gestalt.gen.v1.x") == "gen"
