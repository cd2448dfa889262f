"""Rules of the house that a reviewer should not have to check by eye: no import cycle in
the core (imports anywhere in a module count, function-level ones included), the core
never imports a plugin, and the monitor reaches the engine only through the control seam."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "timecal_core"


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> modules of the same package it imports (absolute and relative)."""
    modules = {}
    for path in package.rglob("*.py"):
        rel = path.relative_to(package.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        modules[".".join(parts)] = path
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    prefix = base[: len(base) - node.level + 1]
                    mod = ".".join(prefix + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            graph[name].update(t for t in targets if t in modules and t != name
                               and t != package.name)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif not state.get(nxt):
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node, [])
    return cycles


def test_the_core_has_no_import_cycle():
    cycles = find_cycles(import_graph(CORE))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_cycle_finder_sees_a_function_level_cycle(tmp_path):
    """The rule is only worth its test if breaking it fails: a cycle hidden in a function."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import g\n")
    assert find_cycles(import_graph(pkg)) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_the_core_imports_no_plugin():
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offenders += [f"{path.name}: {n}" for n in names
                          if n.startswith(("timecal_backend", "timecal_script", "timecal_analysis"))]
    assert not offenders


def test_the_monitor_reaches_the_driver_only_through_the_control_seam():
    """shell.py may use the control seam and pure formatting, never the engine, the
    production loop or the ledger's connection: the driver runs in a process of its own.
    (Its debug console connects a Dask client of its own to the scheduler.)"""
    graph = import_graph(CORE)
    allowed = {"timecal_core.control", "timecal_core.ledger", "timecal_core.status",
               # pure computation and formatting over plain data (selection terms, the grid
               # map, failure groups): no engine, no connection
               "timecal_core.selection", "timecal_core.diagnosis", "timecal_core.gridmap",
               "timecal_core.textformat",
               # checked directories (the history's): os calls, no driver state
               "timecal_core.trust"}
    assert graph["timecal_core.shell"] <= allowed, graph["timecal_core.shell"] - allowed
    source = (CORE / "shell.py").read_text()
    import re

    for reach in (r"\bengine\.[a-z_]", r"\.ledger\.[a-z_]", r"\brunning\.[a-z_]", r"Engine\("):
        assert not re.search(reach, source), f"shell.py reaches into {reach!r}"
