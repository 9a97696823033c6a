"""No import cycles in ``kconf``, lazy (function-level) imports included.

The import graph is read from the source with ``ast``, without importing anything. Its nodes
are kconf's modules, a package being its ``__init__.py`` under the package's own name
(``kconf.train`` is ``kconf/train/__init__.py``). Its edges:

- every ``import`` and ``from ... import`` statement counts, wherever it is: at module level,
  inside functions and methods, under ``if TYPE_CHECKING:``, in a ``try:``. A lazy import
  only postpones a cycle, it does not remove it; and a module that needs another's types
  depends on it.
- ``import kconf.a.b`` is an edge to ``kconf.a.b``. ``from kconf.a import b`` is an edge to
  the submodule ``kconf.a.b`` when ``b`` is one (a file or a package), otherwise (``b`` is a
  name defined in ``kconf.a``) to ``kconf.a``. Relative imports (``from .. import b``) are
  resolved against the importing module's package first.
- An edge goes to a package's ``__init__`` only when the package is named: ``import kconf.a``,
  or ``from kconf.a import name`` (a name, not a submodule), is an edge to ``kconf.a``. The parent
  packages that Python imports implicitly before a submodule (``import kconf.a.b`` runs
  ``kconf/__init__.py`` and ``kconf/a/__init__.py`` first) are not edges: counting them would
  make every package whose ``__init__`` imports its submodules a cycle with each of them,
  which is how packages are built. So the facade ``kconf/__init__.py`` may name anything
  (under ``TYPE_CHECKING``, its lazy public names), and nothing inside kconf imports from it.
- Imports of anything outside ``kconf`` are ignored. Imports by a name computed at run time
  (``importlib.import_module(name)``) are not statements; the two tables that kconf imports
  from that way, the facade's lazy public names and the sweep backends, are added as edges
  (``runtime_imports``).

A cycle is a strongly connected component of more than one module, or a module importing
itself (Tarjan's algorithm); the test lists every one, with the edges inside it.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

#: The source read: the ``kconf`` folder of this checkout.
PACKAGE_DIR = Path(__file__).resolve().parents[1] / "kconf"


def module_files(package_dir: Path = PACKAGE_DIR, package: str = "kconf") -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, for its
    ``__init__.py``)."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([package, *parts])] = path
    return out


def imported_modules(tree: ast.AST, module: str, is_package: bool, modules: set[str],
                     package: str = "kconf") -> set[str]:
    """The modules of ``modules`` that a module's source imports (see the module docstring).

    Args:
        tree: the module's parsed source.
        module: its dotted name.
        is_package: whether it is a package's ``__init__`` (relative imports then start at
            the module itself).
        modules: every module of the package, by dotted name.
        package: the top-level package; imports outside it are ignored.

    Returns:
        The imported modules' dotted names.
    """
    here = module if is_package else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    out.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source != package and not source.startswith(package + "."):
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in modules:
                    out.add(sub)
                elif source in modules:
                    out.add(source)
    return out


def import_graph(package_dir: Path = PACKAGE_DIR, package: str = "kconf") -> dict[str, set[str]]:
    """Module -> the modules of the package it imports, read from the source."""
    files = module_files(package_dir, package)
    names = set(files)
    graph = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[name] = imported_modules(tree, name, path.name == "__init__.py", names, package)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of a directed graph, each sorted (iterative,
    so deep import chains cannot exhaust the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph.get(succ, ())))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles: components of several modules, and modules importing themselves."""
    return sorted(c for c in strongly_connected(graph)
                  if len(c) > 1 or c[0] in graph.get(c[0], ()))


def describe(graph: dict[str, set[str]], component: list[str]) -> str:
    """One cycle, with the edges inside it, for the failure message."""
    members = set(component)
    edges = [f"    {a} -> {b}" for a in component for b in sorted(graph[a] & members)]
    what = f"{len(component)} modules" if len(component) > 1 else "a module importing itself"
    return f"  {what}: {', '.join(component)}\n" + "\n".join(edges)


def check_no_cycles(graph: dict[str, set[str]]) -> None:
    """Fail, listing every cycle of the graph with its edges, unless it has none."""
    found = cycles(graph)
    assert not found, (f"{len(found)} import cycle(s):\n"
                       + "\n".join(describe(graph, c) for c in found))


def runtime_imports() -> dict[str, set[str]]:
    """The modules imported by a name computed at run time, by importing module."""
    import kconf
    from kconf.sweep import backends

    return {"kconf": set(kconf._LAZY.values()),
            "kconf.sweep.backends": {spec.partition(":")[0]
                                     for spec in backends.BACKENDS.values()}}


def test_kconf_has_no_import_cycles():
    graph = import_graph()
    for module, imported in runtime_imports().items():
        assert imported <= set(graph), f"{module} names modules that do not exist: {imported}"
        graph[module] |= imported
    check_no_cycles(graph)


def test_the_graph_sees_module_level_function_level_and_from_imports():
    graph = import_graph()
    assert len(graph) > 50
    # module level: kconf.model imports the graph executor
    assert "kconf.graph.execute" in graph["kconf.model"]
    # ``from kconf.engine import metrics as metrics_mod`` is the submodule, not the package
    assert "kconf.engine.metrics" in graph["kconf.per_output"]
    # a function-level import (the CLI imports the library lazily, to start fast)
    assert "kconf.api" in graph["kconf.cli"]
    # under TYPE_CHECKING: the facade's lazy public names, all of them
    assert {"kconf.api", "kconf.model", "kconf.keras_io"} <= graph["kconf"]
    assert runtime_imports()["kconf"] <= graph["kconf"]
    # nothing inside kconf imports the facade
    assert not [m for m, imported in graph.items() if "kconf" in imported]


def test_cycle_finder_on_a_small_graph():
    graph = {
        "a": {"b"}, "b": {"c"}, "c": {"a", "d"},  # a -> b -> c -> a
        "d": {"e"}, "e": set(),                   # a chain, no cycle
        "f": {"f"},                               # a module importing itself
        "g": {"h"}, "h": {"g"},                   # two modules importing each other
    }
    assert cycles(graph) == [["a", "b", "c"], ["f"], ["g", "h"]]
    assert cycles({"d": {"e"}, "e": set()}) == []
    with pytest.raises(AssertionError) as failure:
        check_no_cycles(graph)
    message = str(failure.value)
    assert "3 import cycle(s)" in message
    for line in ("3 modules: a, b, c", "a -> b", "b -> c", "c -> a", "a module importing itself: f", "f -> f",
                 "2 modules: g, h", "g -> h", "h -> g"):
        assert line in message
    assert "c -> d" not in message and "d -> e" not in message
    check_no_cycles({"d": {"e"}, "e": set()})


def test_imports_are_read_from_source(tmp_path):
    pkg = tmp_path / "fake"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from fake.sub import helper\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "helper.py").write_text(
        "import os\n"
        "def late():\n"
        "    from .. import other\n"        # relative, function level: fake.other
        "    return other\n")
    (pkg / "other.py").write_text(
        "from fake.sub import helper as h\n"  # the submodule
        "from fake import VERSION\n")         # a name of the package: fake itself
    (pkg / "typed.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import fake.sub\n"                   # the package fake.sub, not its parent fake
        "from .sub.helper import late\n"      # relative, to a module
        "if TYPE_CHECKING:\n"
        "    from fake.other import h\n")
    graph = import_graph(pkg, "fake")
    assert graph == {"fake": {"fake.sub.helper"}, "fake.sub": set(),
                     "fake.sub.helper": {"fake.other"},
                     "fake.other": {"fake.sub.helper", "fake"},
                     "fake.typed": {"fake.sub", "fake.sub.helper", "fake.other"}}
    assert cycles(graph) == [["fake", "fake.other", "fake.sub.helper"]]
