"""``BXRun --status`` (the ledger's view of a production, no cluster) and
``BXRun --rebuild-ledger`` (a fresh ledger from the plan and the results on disk)."""

from __future__ import annotations

from pathlib import Path

from ..control.unix_socket import describe_driver, driver_alive, read_record
from ..ledger.sqlite_ledger import Ledger, rebuild
from ..run.lock import ProductionLock
from ..views.ledger_report import render_ledger_report


def print_status(production_dir: Path) -> int:
    """``BXRun --status -o X``: the ledger's view, no cluster."""
    record = read_record(Path(production_dir))
    ledger = Ledger.open_readonly(Path(production_dir))
    try:
        print(render_ledger_report(ledger, production_dir, running=driver_alive(record)))
    finally:
        ledger.close()
    print(ProductionLock(production_dir).holder_status())
    if record is not None:
        print(describe_driver(record))
    return 0


def rebuild_ledger(plan) -> int:
    """``BXRun --rebuild-ledger -o X``: a fresh ledger from the plan and the results on disk."""
    report = rebuild(Path(plan.production_dir), plan.tasks, plan.done)
    print(f"BXRun: ledger rebuilt: {len(plan.tasks)} tasks, {len(plan.done)} done on disk, "
          f"{len(plan.tasks) - len(plan.done)} pending" + (f" ({report.describe()})" if report.describe() else ""))
    return 0
