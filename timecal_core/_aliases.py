"""The import paths of timecal_core before it was grouped into subpackages (issue 24) keep
working, with a ``DeprecationWarning`` naming the new home: plugins outside this repository,
users' scripts and old console-script wrappers (``timecal_core.cli:main``) import them.

Two mechanisms, because some old module names are now subpackages:

- an old path that is no longer a module (``timecal_core.layout``, ``timecal_core.hookspecs``,
  ...) is served by a meta-path finder: importing it warns once and gives the new module
  itself (its objects are the same objects), or, for a module that was split, a module
  holding the names of all its parts;
- an old module whose name is now a subpackage (``config``, ``ledger``, ``batch``, ``cli``,
  ``control``) keeps its names on the subpackage: ``from timecal_core.batch import
  BatchSettings`` warns and gives ``timecal_core.batch.settings.BatchSettings`` (PEP 562
  module ``__getattr__``).

Nothing persisted names a module path (the ledger, params.json and crash files hold data and
text only), so only imports need these aliases. Remove them in a later major version.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

PACKAGE = __name__.rpartition(".")[0]

#: old module -> its new home(s): the first gives every name; a later ``module:NAME`` gives
#: only that name, a later plain module every name it has (the parts of a split module).
OLD_PATHS: dict[str, tuple[str, ...]] = {
    "hookspecs": ("contract.hookspecs",),
    "plugins": ("contract.plugins",),
    "errors": ("contract.errors",),
    "backends": ("contract.running_cluster",),
    "config": ("config.timerc",),
    "yamlconf": ("config.yamlfiles",),
    "parameters": ("config.parameters",),
    "grid": ("plan.grid",),
    "results": ("plan.completion",),
    "pilot": ("plan.pilot", "config.parameter_table:parameter_table", "textformat:format_bytes"),
    "ledger": ("ledger.sqlite_ledger", "ledger.records"),
    "causes": ("ledger.failure_causes",),
    "selection": ("views.selection",),
    "diagnosis": ("views.failure_groups",),
    "gridmap": ("views.heatmap",),
    "status": ("views.status_text", "views.ledger_report"),
    "statuspage": ("views.status_html",),
    "engine": ("run.engine",),
    "tasks": ("run.tasks",),
    "warm": ("run.step_server",),
    "provenance": ("run.provenance",),
    "lock": ("run.lock",),
    "security": ("run.cluster_security",),
    "control": ("control.requests",),
    "controlsocket": ("control.unix_socket",),
    "production": ("driver.production", "cli.status_commands:print_status",
                   "cli.status_commands:rebuild_ledger"),
    "aggregation": ("driver.aggregation",),
    "notify": ("driver.notify",),
    "driverlog": ("driver.driver_log",),
    "shell": ("monitor.monitor_shell", "monitor.shell_parsers"),
    "homeshell": ("monitor.home_shell",),
    "serve": ("monitor.http_pages",),
    "batch": ("batch.supervision", "batch.settings"),
    "cli": ("cli.bxrun", "cli.detach:start_detached", "cli.detach:cmd_attach"),
    "home": ("cli.timecal",),
    "exits": ("cli.command_errors",),
    "layout": ("cms.fast_root", "cms.harvested_layout", "cms.readers", "cms.root_records",
               "contract.hookspecs:TASK_PARAMETERS_ENV"),
    "cms_parameters": ("cms.cfg_parameters",),
}


def new_homes(old: str) -> str:
    """``timecal_core.layout`` -> ``timecal_core.cms.fast_root, timecal_core.cms....``"""
    parts = dict.fromkeys(f"{PACKAGE}.{t.split(':')[0]}" for t in OLD_PATHS[old])
    return ", ".join(parts)


def _warn(message: str) -> None:
    # point at the importer: the first frame outside this module (``warnings`` itself skips
    # the import machinery's frames when it counts)
    level, frame = 2, sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename == __file__
                                 or "importlib" in frame.f_code.co_filename):
        if frame.f_code.co_filename == __file__:
            level += 1
        frame = frame.f_back
    warnings.warn(message, DeprecationWarning, stacklevel=level)


def _names(old: str) -> dict[str, tuple[object, str]]:
    """Every name the old module offered -> (the object, the module it now lives in); the
    first home wins."""
    names: dict[str, tuple[object, str]] = {}
    for target in reversed(OLD_PATHS[old]):
        module_name, _, only = target.partition(":")
        module = importlib.import_module(f"{PACKAGE}.{module_name}")
        if only:
            names[only] = (getattr(module, only), module.__name__)
        else:
            names.update((k, (v, module.__name__)) for k, v in vars(module).items()
                         if not k.startswith("__"))
    homes = {f"{PACKAGE}.{t.split(':')[0]}" for t in OLD_PATHS[old]}
    return {k: (v, getattr(v, "__module__", None) if getattr(v, "__module__", None) in homes else m)
            for k, (v, m) in names.items()}


class _OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``timecal_core.<old>`` where ``<old>`` is no longer a module of its own."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, old = fullname.rpartition(".")
        if package != PACKAGE or old not in OLD_PATHS or old in _SUBPACKAGES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        old = spec.name.rpartition(".")[2]
        _warn(f"{spec.name} is deprecated: import from {new_homes(old)}")
        homes = OLD_PATHS[old]
        if len(homes) == 1:  # the new module itself: the same objects, monkeypatching included
            return importlib.import_module(f"{PACKAGE}.{homes[0]}")
        module = types.ModuleType(spec.name, f"Deprecated alias of {new_homes(old)}.")
        module.__dict__.update((k, v) for k, (v, _) in _names(old).items())
        return module

    def exec_module(self, module):
        pass


def module_getattr(package: str):
    """The ``__getattr__`` of a subpackage that has the name of an old module: the old
    module's names, with a warning; anything else is the usual AttributeError."""
    old = package.rpartition(".")[2]

    def __getattr__(name: str):
        if name.startswith("__") or importlib.util.find_spec(f"{package}.{name}") is not None:
            raise AttributeError(name)  # a submodule not imported yet: the import system's job
        names = _names(old)
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value, home = names[name]
        _warn(f"{package}.{name} is deprecated: import it from {home}")
        return value

    return __getattr__


#: old modules whose name is now a subpackage (served by :func:`module_getattr`)
_SUBPACKAGES = ("config", "ledger", "batch", "cli", "control")


def install() -> None:
    if not any(isinstance(f, _OldPaths) for f in sys.meta_path):
        sys.meta_path.append(_OldPaths())
