"""Whether a production's ledger reads whole, and the one line when it does not: the same
line wherever the damage is found (``BXRun --status``, a rerun before it runs anything, a
driver writing), saying what SQLite says and how to rebuild the ledger from disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..contract.errors import UserError
from ..contract.trust import check_file
from .records import LedgerUnavailable, rebuild_hint

LEDGER_NAME = "ledger.sqlite"


def damaged(path: Path, detail: object) -> LedgerUnavailable:
    """The one line for a ledger SQLite cannot read whole, the same wherever it is found
    (``--status``, a rerun, a driver): what SQLite says, first line only, and the fix."""
    lines = [ln.strip() for ln in str(detail).splitlines() if ln.strip() and not ln.startswith("***")]
    return LedgerUnavailable(f"{path}: the ledger is corrupt or unreadable ({(lines or ['?'])[0][:200]}); "
                             f"{rebuild_hint(Path(path).parent)}")


def check_whole(production_dir: Path) -> None:
    """Raise the one-line :func:`damaged` error when the production's ledger exists but
    SQLite cannot read it whole (``PRAGMA quick_check``: every page of every table and
    index): a rerun must stop on it before it runs or writes anything, as ``--status``
    does, rather than find the damage while recording completions."""
    path = Path(production_dir) / LEDGER_NAME
    if not path.is_file():
        return
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            check = db.execute("PRAGMA quick_check").fetchall()
        finally:
            db.close()
    except sqlite3.OperationalError as exc:
        if "malformed" not in str(exc) and "not a database" not in str(exc):
            raise
        raise damaged(path, exc) from None
    except sqlite3.DatabaseError as exc:
        raise damaged(path, exc) from None
    if [r[0] for r in check] != ["ok"]:
        raise damaged(path, "\n".join(str(r[0]) for r in check))


def check_files(production_dir: Path, opened: sqlite3.Connection | None = None) -> None:
    """SQLite opens the ledger and its side files by name: none of them may be a symlink or
    another user's (:func:`~timecal_core.contract.trust.check_file`). Checked before the
    ledger is opened and again after (``opened``, closed when refused): what SQLite created
    just now is the user's too."""
    path = Path(production_dir) / LEDGER_NAME
    try:
        for side in (path, *(path.with_name(LEDGER_NAME + s) for s in ("-wal", "-shm", "-journal"))):
            check_file(side)
    except UserError:
        if opened is not None:
            opened.close()
        raise
