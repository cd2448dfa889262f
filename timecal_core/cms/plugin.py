"""The core's own ROOT support, registered like any plugin (entry point ``cms`` of
timecal-core in the ``timecal`` group): every ``.root`` output of a task gets its record
embedded. The generic task runner finds it through the registry and never imports
:mod:`timecal_core.cms`."""

from __future__ import annotations

from ..contract.hookspecs import OutputFormat, hookimpl
from .root_records import embed_parameters


@hookimpl
def timecal_output_formats():
    yield OutputFormat(".root", embed_parameters, "the task's record as TObjString 'timecal_params'")
