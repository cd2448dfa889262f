"""Rules of the house that a reviewer should not have to check by eye: the core is a set of
layers (subpackages) each importing only those below it, as the table :data:`LAYERS` says
and each subpackage's docstring repeats; no import cycle (imports anywhere in a module count,
function-level ones included); the core never imports a plugin, nor its own CMS/ROOT part;
the monitor reaches the driver only through the control seam; no module does so much that it
outgrows 600 lines."""

import ast
import re
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "timecal_core"

#: subpackage -> the subpackages it may import. The top-level modules of timecal_core
#: (textformat, the deprecation aliases) lie below every layer: anyone may import them.
LAYERS: dict[str, set[str]] = {
    "contract": set(),
    "config": {"contract"},
    "plan": {"contract", "config"},
    "ledger": {"contract"},
    "views": {"contract", "config", "ledger"},
    "run": {"contract", "config", "plan", "ledger", "views"},
    "control": {"contract", "config", "plan", "ledger", "views", "run"},
    "driver": {"contract", "config", "plan", "ledger", "views", "run", "control"},
    # never run or driver: the driver may live in another process
    "monitor": {"contract", "config", "plan", "ledger", "views", "control"},
    "batch": {"contract", "config", "run"},
    "cli": {"contract", "config", "plan", "ledger", "views", "run", "control", "driver", "monitor",
            "batch"},
    # the CMS/ROOT specifics: production scripts and the analysis import them, no layer does
    "cms": {"contract"},
}
MAX_LINES = 600
MAX_TOP_LEVEL_MODULES = 6


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


def layer_of(module: str, package: str, layers: dict[str, set[str]]) -> str | None:
    """``timecal_core.run.tasks`` -> ``run``; a top-level module or the package -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == package and parts[1] in layers else None


def layer_violations(package: Path, layers: dict[str, set[str]]) -> list[str]:
    """Every import that crosses layers against the table, as ``a.b -> c.d (a may import ...)``;
    a subpackage the table does not know is a violation too (a new room needs its rules)."""
    out = []
    for sub in sorted(p.name for p in package.iterdir() if (p / "__init__.py").is_file()):
        if sub not in layers:
            out.append(f"{package.name}.{sub}: a subpackage without a row in the layer table")
    for module, targets in sorted(import_graph(package).items()):
        here = layer_of(module, package.name, layers)
        for target in sorted(targets):
            there = layer_of(target, package.name, layers)
            if here is None and module != package.name and there is not None:  # top level: below all
                out.append(f"{module} -> {target} (top-level modules import no layer)")
            elif here is not None and there not in (None, here) and there not in layers[here]:
                allowed = ", ".join(sorted(layers[here])) or "no other layer"
                out.append(f"{module} -> {target} ({here} may import: {allowed})")
    return out


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


def test_every_import_goes_down_the_layers():
    violations = layer_violations(CORE, LAYERS)
    assert not violations, "imports against the layer order:\n" + "\n".join(violations)


def test_the_layer_table_is_an_order():
    """No two layers may import each other, directly or around a loop."""
    assert not find_cycles(LAYERS)


def test_the_layer_rule_catches_a_lower_layer_importing_a_higher_one(tmp_path):
    """Planted: the ledger reaching up into the engine, in a function, relative and absolute;
    a monitor importing the driver; a top-level helper importing a layer; a new room."""
    pkg = tmp_path / "core"
    for sub in ("ledger", "run", "monitor", "driver", "extra"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "helpers.py").write_text("from .ledger import store\n")
    (pkg / "ledger" / "store.py").write_text("def f():\n    from ..run.engine import Engine\n")
    (pkg / "ledger" / "other.py").write_text("import core.run.engine\n")
    (pkg / "run" / "engine.py").write_text("from ..ledger.store import f\nclass Engine: ...\n")
    (pkg / "driver" / "loop.py").write_text("from ..run import engine\n")
    (pkg / "monitor" / "shell.py").write_text("from ..driver.loop import x\nfrom ..ledger import store\n")
    layers = {"ledger": set(), "run": {"ledger"}, "driver": {"ledger", "run"}, "monitor": {"ledger"}}
    assert layer_violations(pkg, layers) == [
        "core.extra: a subpackage without a row in the layer table",
        "core.helpers -> core.ledger (top-level modules import no layer)",
        "core.helpers -> core.ledger.store (top-level modules import no layer)",
        "core.ledger.other -> core.run.engine (ledger may import: no other layer)",
        "core.ledger.store -> core.run.engine (ledger may import: no other layer)",
        "core.monitor.shell -> core.driver.loop (monitor may import: ledger)",
    ]


def test_each_subpackage_says_what_lives_there_and_what_it_may_import():
    """The docstring of each room is the table's row in words, so they cannot drift apart."""
    for sub, allowed in LAYERS.items():
        doc = ast.get_docstring(ast.parse((CORE / sub / "__init__.py").read_text())) or ""
        said = re.search(r"May import: ([^.]*)\.", doc)
        assert said, f"{sub}/__init__.py: no 'May import: ...' in its docstring"
        words = said.group(1)
        if words.startswith("every subpackage but "):
            named = set(LAYERS) - {sub} - set(re.findall(r"\w+", words[len("every subpackage but "):]))
        elif words.startswith("nothing"):
            named = set()
        else:
            named = set(re.findall(r"\w+", words))
        assert named == allowed, f"{sub}: docstring says {sorted(named)}, the table {sorted(allowed)}"
        assert len(doc.split("May import:")[0].split()) >= 15, f"{sub}: say what lives there"


def test_the_house_has_rooms_and_no_module_outgrows_one_job():
    subpackages = [p for p in CORE.iterdir() if (p / "__init__.py").is_file()]
    top = [p for p in CORE.glob("*.py") if p.name != "__init__.py"]
    assert len(subpackages) >= 5
    assert len(top) <= MAX_TOP_LEVEL_MODULES, sorted(p.name for p in top)
    long = {str(p.relative_to(CORE)): n for p in CORE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_core_imports_no_plugin():
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offenders += [f"{path.name}: {n}" for n in names
                          if n.startswith(("timecal_backend", "timecal_script", "timecal_analysis"))]
    assert not offenders


@pytest.mark.parametrize("path", sorted(str(p.relative_to(CORE)) for p in (CORE / "monitor").glob("*.py")))
def test_the_monitor_reaches_the_driver_only_through_the_control_seam(path):
    """The layer table keeps the engine, the production loop and the ledger's writer out of
    the monitor's imports; this keeps them out of its code. (Its debug console connects a Dask
    client of its own to the scheduler.)"""
    source = (CORE / path).read_text()
    for reach in (r"\bengine\.[a-z_]", r"\w\.ledger\.[a-z_]", r"\brunning\.[a-z_]", r"Engine\("):
        assert not re.search(reach, source), f"{path} reaches into {reach!r}"
