"""The import paths before timecal_core was grouped into subpackages (issue 24) keep working
for plugins outside this repository and users' scripts: each gives the new objects and a
DeprecationWarning naming the new home. Each check runs in a fresh interpreter, where the
old path is imported for the first time, as in a user's process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

import pytest

from timecal_core._aliases import OLD_PATHS


def fresh(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "always::DeprecationWarning", *args, "-c",
                           textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_every_old_module_path_imports_with_a_warning_naming_its_new_home():
    res = fresh(f"""
        import importlib, json, warnings
        out = {{}}
        homes = {OLD_PATHS!r}
        for old in sorted(homes):
            home = "timecal_core." + homes[old][0]
            new = importlib.import_module(home)
            # a function or class the old module had (defined in its new home)
            first = next((n for n, v in sorted(vars(new).items()) if not n.startswith("_")
                          and callable(v) and getattr(v, "__module__", "") == home), None)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                module = importlib.import_module("timecal_core." + old)
                same = first is not None and getattr(module, first) is getattr(new, first)
            out[old] = [str(w.message) for w in caught if w.category is DeprecationWarning], same
        print(json.dumps(out))
        """)
    assert res.returncode == 0, res.stderr
    seen = json.loads(res.stdout)
    for old, (messages, same) in seen.items():
        assert same, f"timecal_core.{old} does not give the objects of its new home"
        new = OLD_PATHS[old][0].split(":")[0]
        assert any(f"timecal_core.{new}" in m or f"timecal_core.{new.split('.')[0]}." in m
                   for m in messages), (old, messages)


def test_an_old_path_gives_the_very_objects_of_the_new_one():
    res = fresh("""
        import warnings
        from timecal_core.layout import MODES, TASK_PARAMETERS_ENV, read_maps, write_histograms
        from timecal_core.hookspecs import ProductionScript, hookimpl
        from timecal_core.batch import BatchSettings, start_supervised
        from timecal_core import config, tasks
        from timecal_core.cms import fast_root, harvested_layout, readers
        from timecal_core.contract import hookspecs
        from timecal_core.batch import settings, supervision
        from timecal_core.run import tasks as new_tasks
        from timecal_core.config.timerc import load_timerc
        assert write_histograms is fast_root.write_histograms and MODES is harvested_layout.MODES
        assert read_maps is readers.read_maps and TASK_PARAMETERS_ENV == hookspecs.TASK_PARAMETERS_ENV
        assert ProductionScript is hookspecs.ProductionScript and hookimpl is hookspecs.hookimpl
        assert BatchSettings is settings.BatchSettings and start_supervised is supervision.start_supervised
        assert tasks is new_tasks  # the module itself: monkeypatching the old name patches the new
        assert config.load_timerc is load_timerc
        print("same")
        """)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "same"
    err = res.stderr
    assert "timecal_core.layout is deprecated: import from timecal_core.cms.fast_root" in err
    assert "timecal_core.hookspecs is deprecated: import from timecal_core.contract.hookspecs" in err
    # an old module whose name is now a subpackage: the warning names the module of that name
    assert ("timecal_core.batch.BatchSettings is deprecated: import it from "
            "timecal_core.batch.settings") in err
    assert "timecal_core.config.load_timerc is deprecated: import it from timecal_core.config.timerc" in err
    # the warning points at the importing line, not at the import machinery
    assert "<string>:3: DeprecationWarning" in err


def test_new_paths_import_without_any_warning():
    res = fresh("""
        import pkgutil, importlib, timecal_core
        for m in pkgutil.walk_packages(timecal_core.__path__, "timecal_core."):
            if not m.name.endswith("__main__"):
                importlib.import_module(m.name)
        """, "-W", "error::DeprecationWarning")
    assert res.returncode == 0, res.stderr


def test_a_subpackage_still_finds_its_submodules_and_refuses_unknown_names():
    res = fresh("""
        import timecal_core.ledger as ledger
        from timecal_core.ledger import records
        assert records.DONE == "done"
        try:
            ledger.no_such_name
        except AttributeError as exc:
            print("AttributeError", exc)
        """)
    assert res.returncode == 0, res.stderr
    assert "has no attribute 'no_such_name'" in res.stdout
    assert "DeprecationWarning" not in res.stderr  # a submodule is not an old name


@pytest.mark.parametrize("script, target", [("BXRun", "timecal_core.cli.bxrun:main"),
                                            ("timecal", "timecal_core.cli.timecal:main")])
def test_console_scripts_point_at_the_new_homes(script, target):
    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == script]
    assert ep.value == target
    assert callable(ep.load())


@pytest.mark.parametrize("old", ["timecal_core.cli:main", "timecal_core.home:main"])
def test_a_wrapper_installed_before_the_move_still_runs(old):
    """pip writes console-script wrappers at install time: until it reinstalls, BXRun and
    timecal import the old paths."""
    module, _, attr = old.partition(":")
    res = fresh(f"import sys; from {module} import {attr}; sys.argv = ['x', '--help']; {attr}()")
    assert res.returncode == 0, res.stderr
    assert "usage:" in res.stdout


def test_python_dash_m_timecal_core_cli_still_runs_bxrun():
    res = subprocess.run([sys.executable, "-m", "timecal_core.cli", "--plugins"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "scripts:" in res.stdout
    assert "python -m timecal_core.cli.bxrun" in res.stderr  # the warning says what to type now


def test_the_core_registers_its_root_support_like_a_plugin():
    """Every .root output gets its record through the registry (timecal_core.cms.plugin,
    an entry point of timecal-core itself), not through an import of cms by the task runner."""
    (ep,) = [e for e in entry_points(group="timecal") if e.name == "cms"]
    assert ep.value == "timecal_core.cms.plugin" and ep.dist.name == "timecal-core"
    from timecal_core.cms.root_records import embed_parameters
    from timecal_core.contract.plugins import get_registry

    registered = get_registry().output_formats[".root"]
    assert registered.item.store is embed_parameters and registered.distribution == "timecal-core"
