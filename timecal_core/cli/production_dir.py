"""The production directory as BXRun checks and makes it: before anything is written, an
existing one must be the user's, not writable by others without the sticky bit, and hold no
symlink or file of another user where timecal writes (:mod:`timecal_core.contract.trust`).
The names timecal writes in it come from the modules that write them; only the commands
may know them all."""

from __future__ import annotations

from pathlib import Path

from ..contract.trust import check_output, make_output

#: What BXRun keeps of the production's planning: the grid's copy, the production's record.
INFILES = "infiles"


def production_entries() -> tuple[str, ...]:
    """Every name timecal writes directly in a production directory."""
    from ..control.unix_socket import CONTROL_DIR
    from ..driver.driver_log import LOG_DIR
    from ..ledger.sqlite_ledger import LEDGER_NAME
    from ..plan.completion import RESULTS
    from ..run.cluster_security import CREDENTIALS_DIR, SCRATCH_DIR
    from ..run.lock import LOCK_NAME
    from ..views.status_html import PAGE

    return (CONTROL_DIR, LOG_DIR, CREDENTIALS_DIR, SCRATCH_DIR, RESULTS, INFILES, LOCK_NAME, PAGE,
            LEDGER_NAME, *(LEDGER_NAME + suffix for suffix in ("-wal", "-shm", "-journal")))


def check_production(out: Path, what: str = "-o") -> None:
    """Refuses (one line, exit 2) a production directory another user could have prepared."""
    check_output(out, production_entries(), what)


def make_production(out: Path) -> Path:
    """The production directory, checked, created if absent (never group/world-writable)."""
    return make_output(out, production_entries())
