"""Which output layout a production writes (``BXRun --layout``): a production keeps the
layout it was started with unless told otherwise, so that a rerun of the same command never
switches layouts half-way through a grid."""

from __future__ import annotations

from ..contract.errors import UserError

RECORD = "infiles/production.json"


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
