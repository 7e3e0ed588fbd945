"""The house's imports run one way (docs/architecture.md, Layout).

The import graph is read from the source with ``ast`` (nothing is imported): every
``import`` and ``from … import`` of a project module, at module level, inside functions and
under ``if TYPE_CHECKING`` alike — a type-only import is still a dependency a reader must
follow. The test fails on:

* a circle among the project's modules;
* a library module importing a command module: the command root ``simrotor/``, the
  installer's commands ``provisioning/``, the benchmarks ``bench/``, or any package's
  ``cli`` module (a command imports libraries, never the other way);
* a product module importing the emulator (only commands, the benchmarks and issue 6's
  corpus generator may);
* an import that runs up the floors: ``simrotor`` → ``provisioning`` / ``controller`` /
  ``appliance`` → ``modem_drivers`` → ``common``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("simrotor", "bench", "provisioning", "controller", "appliance", "modem_drivers", "common")

#: package -> the project's packages it may import (itself included).
MAY_IMPORT: dict[str, set[str]] = {
    "common": {"common"},
    "modem_drivers": {"modem_drivers", "common"},
    "appliance": {"appliance", "modem_drivers", "common"},
    "controller": {"controller", "common"},
    "provisioning": {"provisioning", "appliance", "controller", "modem_drivers", "common"},
    "bench": {"bench", "appliance", "controller", "modem_drivers", "common"},
    "simrotor": set(PACKAGES),
}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module an import of ``name`` loads (a name inside a module resolves to it)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    here = module if is_package else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            names = [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                out.add(target)
    return out


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _is_command(module: str) -> bool:
    top = module.split(".")[0]
    return top in ("simrotor", "provisioning", "bench") or module.split(".")[-1] == "cli"


def _circles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
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

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return found


def _ties(component: list[str]) -> list[str]:
    members = set(component)
    return [f"{a} -> {b}" for a in component for b in sorted(GRAPH[a] & members)]


def test_the_graph_is_read():
    # A reader that found nothing would pass every rule below.
    assert len(MODULES) > 100
    scheduler = set().union(*(t for m, t in GRAPH.items() if m.startswith("appliance.scheduler")))
    assert any(m.startswith("appliance.rotation") for m in scheduler)
    assert "common.phone" in GRAPH["modem_drivers.at.port"]


def test_no_import_circles():
    circles = _circles()
    assert not circles, "import circles:\n" + "\n".join(
        f"  {len(c)} modules: " + "; ".join(_ties(c)) for c in circles)


def test_no_library_imports_a_command():
    wrong = [f"{m} -> {t}" for m, targets in GRAPH.items() if not _is_command(m)
             for t in sorted(targets) if _is_command(t)]
    assert not wrong, "libraries importing command modules:\n  " + "\n  ".join(wrong)


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_imports_run_down_the_floors(package):
    allowed = MAY_IMPORT[package]
    wrong = [f"{m} -> {t}" for m, targets in GRAPH.items() if m.split(".")[0] == package
             for t in sorted(targets) if t.split(".")[0] not in allowed]
    assert not wrong, f"{package} may import only {sorted(allowed)}:\n  " + "\n  ".join(wrong)


#: Modules that may import the emulator besides commands: the labelled corpus generator
#: stands in for the network (issue 6) and makes its sounds the emulator's way.
MAY_IMPORT_THE_EMULATOR = {"appliance.audio.corpus"}


def test_the_product_never_imports_the_emulator():
    # The emulator is the edge of the world we cannot reach; a runtime that imported it
    # would run differently on a real modem than in every test.
    wrong = [f"{m} -> {t}" for m, targets in GRAPH.items()
             if not _is_command(m) and not m.startswith("modem_drivers.emulator") and m not in MAY_IMPORT_THE_EMULATOR
             for t in sorted(targets) if t.startswith("modem_drivers.emulator")]
    assert not wrong, "product modules importing the emulator:\n  " + "\n  ".join(wrong)


def test_the_rules_catch_a_circle_and_an_upward_import():
    # The checks themselves can fail: a fake graph with a circle and a command import.
    saved = dict(GRAPH)
    try:
        GRAPH["common.phone"] = GRAPH["common.phone"] | {"common.clock"}
        GRAPH["common.clock"] = GRAPH["common.clock"] | {"common.phone", "simrotor.cli"}
        assert any({"common.clock", "common.phone"} <= set(c) for c in _circles())
        assert _is_command("simrotor.cli") and not _is_command("common.clock")
    finally:
        GRAPH.clear()
        GRAPH.update(saved)
