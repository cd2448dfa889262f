"""What the distributions declare, and that it is true.

- Every requirement has a lower bound (the one `make test-lowest` installs and tests), the
  same in every pyproject that names the package, and a distribution declares every
  third-party module it imports (else that module's version is nobody's floor).
- In `make test-lowest` each requirement is installed at exactly its floor.
- ENV.yml installs the same packages, with the same floors, as the pyprojects.
- The core that every worker node installs stays free of the analysis' plotting and table
  stack, declared or pulled in through a dependency.

Read from the files themselves (pyproject.toml, ENV.yml) and from the installed metadata, so
a requirement added to one pyproject and forgotten in ENV.yml, or a plotting library creeping
back into the core, fails here rather than in a user's conda environment or on a worker node.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]

#: The analysis stack that moved to plugins/analysis (timecal-analysis): a worker node that
#: only runs productions must not have to install it.
ANALYSIS_ONLY = ("matplotlib", "mplhep", "hist", "pyarrow", "pandas")

#: PyPI name -> conda-forge name, where they differ (normalized names).
CONDA_NAME: dict[str, str] = {}

#: Packages whose conda-forge versions do not count like the PyPI ones, so ENV.yml cannot
#: repeat the pyproject's floor: PyPI's ``root`` wheels are 0.1aN, conda-forge's are ROOT 6.x.
OWN_CONDA_VERSIONS = {"root"}

#: What ENV.yml installs besides the pyprojects' requirements.
CONDA_ONLY = {"python", "pip"}


def normalize(name: str) -> str:
    """PEP 503 normalization: ``PyYAML``, ``pyyaml`` and ``py_yaml`` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_files() -> list[Path]:
    """The root pyproject, every plugin's, and the test plugins' (all the distributions
    `make test` installs)."""
    return [REPO / "pyproject.toml", *sorted(REPO.glob("plugins/*/pyproject.toml")),
            *sorted(REPO.glob("tests/plugins/*/pyproject.toml"))]


def load(path: Path) -> dict:
    with open(path, "rb") as f:
        return tomllib.load(f)["project"]


def own_distributions() -> set[str]:
    return {normalize(load(path)["name"]) for path in pyproject_files()}


def runtime_requirements(path: Path) -> list[Requirement]:
    """What installing the distribution of ``path`` installs (no extras)."""
    return [Requirement(line) for line in load(path).get("dependencies", [])]


def requirements(path: Path) -> list[Requirement]:
    """Runtime requirements and every optional extra (``test``) of one pyproject."""
    project = load(path)
    lines = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    return [Requirement(line) for line in lines]


def floor(req: Requirement) -> str | None:
    """The lowest version ``req`` allows (>=, ==, ~=), or None when it has no lower bound."""
    lows = [spec.version for spec in req.specifier if spec.operator in (">=", "==", "~=", "===")]
    if not lows:
        return None
    return str(max(lows, key=Version))


def declared() -> dict[str, dict[str, str | None]]:
    """Third-party package -> {pyproject (relative path): its floor}, over every pyproject."""
    own = own_distributions()
    out: dict[str, dict[str, str | None]] = {}
    for path in pyproject_files():
        for req in requirements(path):
            name = normalize(req.name)
            if name not in own:
                out.setdefault(name, {})[str(path.relative_to(REPO))] = floor(req)
    return out


def env_yml(path: Path = REPO / "ENV.yml") -> dict[str, str | None]:
    """conda package -> its ``>=`` floor (or None) from ENV.yml's conda dependencies."""
    out: dict[str, str | None] = {}
    for entry in yaml.safe_load(path.read_text())["dependencies"]:
        if isinstance(entry, dict):  # the "pip:" list: the editable installs of this repository
            continue
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(?:(>=|=|==)\s*([^\s,]+))?\s*", entry)
        assert match, f"ENV.yml: cannot read the dependency {entry!r} (expected NAME or NAME>=VERSION)"
        name, op, version = match.groups()
        out[normalize(name)] = version if op == ">=" else None
    return out


def env_mismatches(env: dict[str, str | None], pyprojects: dict[str, dict[str, str | None]]) -> list[str]:
    """What differs between ENV.yml and the pyprojects, one line each (empty: they agree)."""
    problems = []
    wanted = {CONDA_NAME.get(name, name): (name, floors) for name, floors in pyprojects.items()}
    for conda_name, (name, floors) in sorted(wanted.items()):
        where = ", ".join(sorted(floors))
        if conda_name not in env:
            problems.append(f"{conda_name}: required by {where} but missing from ENV.yml")
            continue
        if name in OWN_CONDA_VERSIONS:
            continue
        highest = max((f for f in floors.values() if f), default=None, key=Version)
        if env[conda_name] != highest:
            said = f">={env[conda_name]}" if env[conda_name] else "no floor"
            problems.append(f"{conda_name}: ENV.yml says {said}, the pyprojects' floor is >={highest} ({where})")
    for conda_name in sorted(set(env) - set(wanted) - CONDA_ONLY):
        problems.append(f"{conda_name}: in ENV.yml but required by no pyproject")
    return problems


def test_env_yml_lists_the_pyprojects_requirements():
    problems = env_mismatches(env_yml(), declared())
    assert not problems, "ENV.yml and the pyprojects disagree:\n" + "\n".join(problems)


def test_env_comparison_catches_a_missing_an_extra_and_a_stale_floor():
    """The comparison itself: each kind of drift is reported."""
    pyprojects = {"numpy": {"pyproject.toml": "1.26"}, "root": {"pyproject.toml": "0.1a8"}}
    assert env_mismatches({"numpy": "1.26", "root": None, "python": None, "pip": None}, pyprojects) == []
    assert env_mismatches({"root": None}, pyprojects) == [
        "numpy: required by pyproject.toml but missing from ENV.yml"]
    assert env_mismatches({"numpy": "1.24", "root": None}, pyprojects) == [
        "numpy: ENV.yml says >=1.24, the pyprojects' floor is >=1.26 (pyproject.toml)"]
    assert env_mismatches({"numpy": "1.26", "root": None, "pandas": "2"}, pyprojects) == [
        "pandas: in ENV.yml but required by no pyproject"]


def test_a_package_has_one_floor_across_the_pyprojects():
    """`make test-lowest` installs all distributions together, so only the highest of two
    floors of a package is ever tested: a lower one elsewhere would be a claim nobody checks."""
    split = {name: floors for name, floors in declared().items() if len(set(floors.values())) > 1}
    assert not split, "different floors of one package: " + "; ".join(
        f"{name}: " + ", ".join(f"{where} " + (f">={f}" if f else "no floor") for where, f in sorted(floors.items()))
        for name, floors in sorted(split.items()))


def test_the_test_dependency_group_is_the_test_extra():
    """``pip install -e ".[test]"`` (the Makefile's, the guide's) and ``--group dev`` (uv's,
    pip's, nox's) install the same test tools at the same floors, and every group's
    requirement has a floor."""
    with open(REPO / "pyproject.toml", "rb") as f:
        data = tomllib.load(f)
    groups = data["dependency-groups"]
    assert sorted(groups["test"]) == sorted(data["project"]["optional-dependencies"]["test"])
    assert {"include-group": "test"} in groups["dev"] and {"include-group": "lint"} in groups["dev"]
    strings = [Requirement(r) for group in groups.values() for r in group if isinstance(r, str)]
    assert [str(r) for r in strings if floor(r) is None] == []


@pytest.mark.parametrize("path", pyproject_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_requirement_has_a_lower_bound(path):
    """A floor is what `make test-lowest` installs and tests; without one, the resolver may
    pick any ancient release and nothing says whether the code works with it."""
    own = own_distributions()
    unbounded = [str(req) for req in requirements(path) if normalize(req.name) not in own and floor(req) is None]
    assert not unbounded, f"{path.relative_to(REPO)}: no lower bound on {', '.join(unbounded)}"


def test_core_declares_no_analysis_stack():
    core = {normalize(req.name) for req in runtime_requirements(REPO / "pyproject.toml")}
    assert not core & set(ANALYSIS_ONLY), (
        f"timecal-core depends on {', '.join(sorted(core & set(ANALYSIS_ONLY)))}: the analysis stack "
        f"belongs to plugins/analysis (timecal-analysis), not to what every worker node installs")


def runtime_closure(distribution: str) -> set[str]:
    """Every distribution that installing ``distribution`` (no extras) pulls in, read from the
    installed metadata."""
    seen: set[str] = set()
    todo = [distribution]
    while todo:
        name = normalize(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # an optional platform package that is not installed here
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def test_core_does_not_pull_the_analysis_stack_in():
    """Not even through a dependency of a dependency (mplhep brings matplotlib, for one)."""
    pulled = runtime_closure("timecal-core") & set(ANALYSIS_ONLY)
    assert not pulled, f"installing timecal-core installs {', '.join(sorted(pulled))}"
    assert {"matplotlib", "pillow", "boost-histogram"} <= runtime_closure("timecal-analysis")  # the walk works


def imported_modules(folder: Path) -> set[str]:
    """Top-level names of the third-party modules that the code under ``folder`` imports
    (anywhere: deferred imports inside functions count, since they run too)."""
    names = set()
    for path in folder.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        fallbacks = {id(n) for handler in ast.walk(tree) if _catches_import_error(handler)
                     for statement in handler.body for n in ast.walk(statement)}
        for node in ast.walk(tree):
            if id(node) in fallbacks:  # `except ImportError: import older_name`: an alternative
                continue
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and not n.startswith("timecal")}


def _catches_import_error(node: ast.AST) -> bool:
    if not isinstance(node, ast.ExceptHandler) or node.type is None:
        return False
    caught = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
    return any(isinstance(c, ast.Name) and c.id in ("ImportError", "ModuleNotFoundError") for c in caught)


def packages_of(path: Path) -> list[Path]:
    """The import packages a pyproject's distribution ships (folders with an __init__.py)."""
    if path.parent == REPO:
        return [REPO / "timecal_core"]
    return [p.parent for p in path.parent.glob("*/__init__.py")]


def undeclared_imports(path: Path) -> list[str]:
    """``module (distribution)`` for every third-party module that the distribution of
    ``path`` imports without declaring the distribution that provides it."""
    providers = metadata.packages_distributions()
    declared_names = {normalize(req.name) for req in runtime_requirements(path)}
    problems = []
    for package in packages_of(path):
        for module in sorted(imported_modules(package)):
            dists = {normalize(d) for d in providers.get(module, [])}
            if not dists & declared_names:
                problems.append(f"{module} ({', '.join(sorted(dists)) or 'no installed distribution'})")
    return problems


@pytest.mark.parametrize("path", pyproject_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_a_distribution_declares_what_it_imports(path):
    """A module that arrives only as a dependency of a dependency is installed at whatever
    version that one wants: its floor is then nobody's, and `make test-lowest` never tries it."""
    problems = undeclared_imports(path)
    assert not problems, (f"{path.relative_to(REPO)} imports without declaring: {'; '.join(problems)} "
                          f"(add the distribution, with its floor, to its dependencies and to ENV.yml)")


def test_installed_versions_are_allowed_and_at_the_floors_in_the_lowest_run():
    """Every requirement is met by what is installed. In `make test-lowest`
    (TIMECAL_LOWEST_VERSIONS=1) each one must be installed at exactly its floor: otherwise
    the resolver moved past a floor (no wheel, a conflict) and that floor was never tested."""
    at_floor = os.environ.get("TIMECAL_LOWEST_VERSIONS") == "1"
    docs_installed = importlib.util.find_spec("sphinx") is not None
    own = own_distributions()
    problems = []
    for path in pyproject_files():
        # make test installs the docs extra; the lowest and latest runs do not (the test extra
        # only): there the docs requirements are the docs build's to check
        docs = {normalize(Requirement(line).name) for line in
                load(path).get("optional-dependencies", {}).get("docs", [])} if not docs_installed else set()
        for req in requirements(path):
            if normalize(req.name) in own | docs or (
                    req.marker is not None and not req.marker.evaluate({"extra": "test"})):
                continue
            try:
                installed = Version(metadata.version(req.name))
            except metadata.PackageNotFoundError:
                problems.append(f"{req} ({path.relative_to(REPO)}): not installed")
                continue
            if not req.specifier.contains(installed, prereleases=True):
                problems.append(f"{req} ({path.relative_to(REPO)}): {installed} is installed")
            elif at_floor and installed != Version(floor(req)):
                problems.append(f"{req} ({path.relative_to(REPO)}): {installed} installed, not the floor")
    assert not problems, "\n".join(problems)
