"""Discovering plugins through the ``timecal`` entry-point group and indexing what they
register, so that every name (backend, script, aggregator, evaluator, output format) maps to exactly one
provider and ``BXRun --plugins`` can say which distribution and version gave it."""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError, UserError

try:  # Python >= 3.10 has a good enough stdlib version; the backport is the declared dependency.
    from importlib_metadata import entry_points
except ImportError:  # pragma: no cover
    from importlib.metadata import entry_points

KINDS = {
    "backends": "timecal_backends",
    "scripts": "timecal_scripts",
    "aggregators": "timecal_aggregators",
    "evaluators": "timecal_evaluators",
    "commands": "timecal_commands",
    "output_formats": "timecal_output_formats",
}


@dataclass(frozen=True)
class Registered:
    item: Any
    plugin: str  # entry-point name
    distribution: str
    version: str


@dataclass
class Registry:
    backends: dict[str, Registered] = field(default_factory=dict)
    scripts: dict[str, Registered] = field(default_factory=dict)
    aggregators: dict[str, Registered] = field(default_factory=dict)
    evaluators: dict[str, Registered] = field(default_factory=dict)
    commands: dict[str, Registered] = field(default_factory=dict)
    output_formats: dict[str, Registered] = field(default_factory=dict)  # by file suffix
    failed: dict[str, str] = field(default_factory=dict)  # plugin -> error

    def _lookup(self, kind: str, name: str, option: str) -> Registered:
        table: dict[str, Registered] = getattr(self, kind)
        if name in table:
            return table[name]
        if kind == "scripts":
            for reg in table.values():
                if name in reg.item.aliases:
                    return reg
        installed = ", ".join(sorted(table)) or "none"
        if kind == "scripts":
            aliases = [a for r in table.values() for a in r.item.aliases]
            if aliases:
                installed += " (or by cfg name: " + ", ".join(sorted(aliases)) + ")"
        raise UserError(f"{option}: unknown {kind[:-1]} '{name}'; installed: {installed}"
                        f" (see BXRun --plugins)")

    def script(self, name: str) -> Registered:
        return self._lookup("scripts", name, "--script")

    def backend(self, name: str) -> Registered:
        return self._lookup("backends", name, "--dask")

    def evaluator(self, name: str) -> Registered:
        return self._lookup("evaluators", name, "method")


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs.TimecalSpecs)
    return pm


def _load_entry_points(pm: pluggy.PluginManager, failed: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Register every entry point of the group; a broken one is a warning, not a crash."""
    origin: dict[str, tuple[str, str]] = {}
    for ep in entry_points(group=hookspecs.ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        dist_name = dist.name if dist is not None else "?"
        version = dist.version if dist is not None else "?"
        label = f"{ep.name} ({dist_name} {version})"
        try:
            module = ep.load()
        except Exception as exc:  # any import-time failure of third-party code
            failed[ep.name] = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"timecal plugin {label} failed to load and is ignored: "
                          f"{type(exc).__name__}: {exc}", stacklevel=2)
            continue
        if pm.is_registered(module) or pm.has_plugin(ep.name):
            continue
        pm.register(module, name=ep.name)
        origin[ep.name] = (dist_name, version)
    return origin


def build_registry(pm: pluggy.PluginManager, origin: dict[str, tuple[str, str]],
                   failed: dict[str, str] | None = None) -> Registry:
    """Call each hook implementation separately to know who registered what."""
    registry = Registry(failed=dict(failed or {}))
    for kind, hook_name in KINDS.items():
        table: dict[str, Registered] = getattr(registry, kind)
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            dist, version = origin.get(impl.plugin_name, (impl.plugin_name, "?"))
            try:
                items = list(impl.function() or ())
            except Exception as exc:
                registry.failed[impl.plugin_name] = f"{type(exc).__name__}: {exc}"
                warnings.warn(f"timecal plugin {impl.plugin_name} ({dist} {version}) failed while "
                              f"registering {kind}: {type(exc).__name__}: {exc}", stacklevel=2)
                continue
            for item in items:
                if kind == "scripts":
                    _check_declarations(item, f"{impl.plugin_name} ({dist} {version})")
                reg = Registered(item, impl.plugin_name, dist, version)
                names = [item.name] + list(getattr(item, "aliases", ()))
                for other in table.values():
                    clash = set(names) & ({other.item.name} | set(getattr(other.item, "aliases", ())))
                    if clash:
                        raise PluginError(
                            f"two plugins register the {kind[:-1]} '{sorted(clash)[0]}': "
                            f"{other.distribution} {other.version} (plugin '{other.plugin}') and "
                            f"{dist} {version} (plugin '{impl.plugin_name}'); uninstall one of them")
                table[item.name] = reg
    return registry


def _check_declarations(script: Any, label: str) -> None:
    """A script's parameter declarations are the plugin author's to fix: refuse them when the
    plugin registers, naming it, rather than at the first value a user types."""
    for param in script.parameters:
        if param.type not in hookspecs.PARAMETER_TYPES:
            raise PluginError(f"timecal plugin {label}: script '{script.name}' declares parameter "
                              f"'{param.name}' with type {param.type!r}; allowed: "
                              f"{', '.join(hookspecs.PARAMETER_TYPES)}")


def check_hook_names(pm: pluggy.PluginManager, origin: dict[str, tuple[str, str]]) -> None:
    """A misspelled ``@hookimpl`` (``timecal_script`` for ``timecal_scripts``) would otherwise
    be silently never called; pluggy's ``check_pending`` finds it, we name the plugin."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or "?"
        dist, version = origin.get(name, (name, "?"))
        hooks = sorted(n for n in vars(pm.hook) if not n.startswith("_")
                       and not getattr(pm.hook, n).has_spec()
                       and any(i.plugin is exc.plugin for i in getattr(pm.hook, n).get_hookimpls()))
        known = ", ".join(KINDS.values())
        raise PluginError(f"timecal plugin {name} ({dist} {version}) implements unknown hook"
                          f"{'s' if len(hooks) > 1 else ''} {', '.join(hooks)}; the hooks are: "
                          f"{known} (a misspelling?)") from None


@functools.lru_cache(maxsize=1)
def get_registry() -> Registry:
    """The process-wide registry (cached: workers resolve scripts by name on every task)."""
    pm = make_plugin_manager()
    failed: dict[str, str] = {}
    origin = _load_entry_points(pm, failed)
    check_hook_names(pm, origin)
    return build_registry(pm, origin, failed)


def describe(registry: Registry) -> str:
    """The ``BXRun --plugins`` listing."""
    lines = []
    for kind in KINDS:
        table: dict[str, Registered] = getattr(registry, kind)
        lines.append(f"{kind}:")
        if not table:
            lines.append("  (none)")
        for name in sorted(table):
            reg = table[name]
            extra = ""
            aliases = getattr(reg.item, "aliases", ())
            if aliases:
                extra = f"  [also: {', '.join(aliases)}]"
            desc = f"  {reg.item.description}" if getattr(reg.item, "description", "") else ""
            lines.append(f"  {name:<22} {reg.distribution} {reg.version}{extra}{desc}")
    if registry.failed:
        lines.append("failed to load:")
        for name, err in sorted(registry.failed.items()):
            lines.append(f"  {name}: {err}")
    return "\n".join(lines)
