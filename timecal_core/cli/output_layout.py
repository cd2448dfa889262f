"""Which output layout a production writes (``BXRun --layout``): a production keeps the
layout it was started with unless told otherwise, so that a rerun of the same command never
switches layouts half-way through a grid."""

from __future__ import annotations

import json
from pathlib import Path

from ..contract.errors import UserError
from ..contract.timerc_keys import Setting, SettingsSection
from ..contract.trust import write_atomically

RECORD = "infiles/production.json"
#: timerc ``[production]``: the default output layout (a script's own layouts are checked
#: when a production is planned: a script writing one layout ignores it).
PRODUCTION = SettingsSection("production", (
    Setting("layout", "choice", "the script's first (full)", "the output layout of a new production when "
            "BXRun has no --layout: full (the DQM harvest) or compact (the 2D maps only)",
            choices=("full", "compact")),
), help="Defaults of new productions (``BXRun --layout`` and a production's recorded layout come first).")


def choose_layout(given: str | None, recorded: str | None, timerc, script) -> str | None:
    """``--layout`` (``given``), else the one the production recorded (``RECORD``: a rerun
    keeps it), else timerc ``[production] layout``, else the script's default (its first).
    None for a script with one layout: ``--layout`` is then an error, a timerc default does
    not apply to it."""
    layouts = tuple(getattr(script, "layouts", ()) or ())
    if not layouts:
        if given:
            raise UserError(f"--layout {given}: script {script.name} writes a single layout")
        return None
    candidates = ((given, "--layout"), (recorded, f"{RECORD}: layout"),
                  (timerc.section("production").get("layout"), f"{timerc.path}: [production] layout"))
    for value, where in candidates:
        value = (value or "").strip()
        if not value:
            continue
        if value not in layouts:
            raise UserError(f"{where} {value!r}: {script.name} writes {', '.join(layouts)} (see "
                            f"BXRun --help, --layout)")
        return value
    return layouts[0]


def record_layout(path: Path, record: dict | None, given: str | None, timerc, script,
                  new: dict) -> str | None:
    """Write the production record (``RECORD``; ``new`` when there is none yet) with the
    layout :func:`choose_layout` picks, when it is new or the layout changed (said once:
    the tasks already done keep theirs, every reader takes both). Returns the layout."""
    layout = choose_layout(given, (record or {}).get("layout"), timerc, script)
    if record is not None and not (layout and record.get("layout") != layout):
        return layout
    if record is not None:
        print(f"BXRun: layout {layout} from now on (was {record.get('layout') or script.layouts[0]}): "
              "the tasks already done keep theirs; every reader takes both", flush=True)
    record = record or new
    if layout:
        record["layout"] = layout
    write_atomically(path, json.dumps(record, indent=1))
    return layout
