"""Every timerc section timecal knows, in one list: the core's own (``[paths]``, ``[cmssw]``,
``[production]``, ``[retry]``, ``[notify]``, each declared beside the code that reads it) and
the section each installed backend declares where it registers. BXRun checks the whole file against it
before a production is planned, and the documentation's timerc reference is generated from
it: what the page lists is what the code accepts.
"""

from __future__ import annotations

from ..config.timerc import CMSSW, PATHS, Timerc
from ..contract.plugins import Registry, get_registry
from ..contract.timerc_keys import SettingsSection, check_sections
from ..driver.notify import NOTIFY
from ..ledger.failure_causes import RETRY
from .output_layout import PRODUCTION

CORE_SECTIONS = (PATHS, CMSSW, PRODUCTION, RETRY, NOTIFY)


def declared_sections(registry: Registry | None = None) -> list[tuple[SettingsSection, str]]:
    """(section, the distribution that declares it), the core's first, then each installed
    backend's in name order; a backend without a declaration is left out."""
    registry = registry or get_registry()
    sections = [(s, "timecal-core") for s in CORE_SECTIONS]
    for name in sorted(registry.backends):
        reg = registry.backends[name]
        if reg.item.settings is not None:
            sections.append((reg.item.settings, reg.distribution))
    return sections


def check_timerc(timerc: Timerc, registry: Registry | None = None) -> None:
    """The whole file against the declarations: one UserError for the first problem."""
    check_sections(timerc.sections, [s for s, _ in declared_sections(registry)], str(timerc.path))
