"""The production ledger on its own: reconciliation with disk, outcomes and retries
budget, events, read-only access while the driver writes, and the missing/corrupt cases."""

import sqlite3
from dataclasses import dataclass

import pytest

from timecal_core.ledger.records import (CANCELLED, Completion, DONE, ERROR, FAILED, Failure,
                                         LedgerUnavailable, PENDING, RUNNING)
from timecal_core.ledger.sqlite_ledger import LEDGER_NAME, Ledger, rebuild


@dataclass(frozen=True)
class Spec:
    task_id: str
    dirname: str
    params: dict


SPECS = [Spec(f"{i:010x}", f"index{i}__{i:010x}", {"index": i}) for i in range(1, 6)]
IDS = [s.task_id for s in SPECS]


def fail(tid, reason="step sleep exited with code 4"):
    return Failure(tid, "w1", "sleep", 4, reason, "line 1\nline 2\n")


def test_new_ledger_takes_done_from_disk(tmp_path):
    ledger = Ledger.create(tmp_path)
    report = ledger.reconcile(SPECS, done_on_disk={IDS[0]})
    assert report.new == 5
    assert ledger.counts()[DONE] == 1 and ledger.counts()[PENDING] == 4
    row = ledger.task(IDS[1])
    assert row.params == {"index": 2} and row.dirname == SPECS[1].dirname
    assert ledger.path == tmp_path / LEDGER_NAME
    # WAL journaling, so that --status can read while the driver writes
    assert sqlite3.connect(ledger.path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_failures_are_retryable_until_the_attempts_are_exhausted(tmp_path):
    ledger = Ledger.create(tmp_path)
    ledger.reconcile(SPECS, set())
    assert ledger.record_outcomes([], [fail(IDS[0])], policy=2) == []
    assert ledger.task(IDS[0]).state == FAILED and ledger.task(IDS[0]).attempts == 1
    ledger.set_state([IDS[0]], PENDING, "resubmitted")
    assert ledger.record_outcomes([], [fail(IDS[0])], policy=2) == [IDS[0]]
    row = ledger.task(IDS[0])
    assert (row.state, row.attempts, row.exit_code, row.step) == (ERROR, 2, 4, "sleep")
    assert row.error == "line 1\nline 2\n"
    ledger.record_outcomes([Completion(IDS[1], "w2", 10.0, 14.5)], [], policy=2)
    done = ledger.task(IDS[1])
    assert (done.state, done.attempts, done.runtime, done.worker) == (DONE, 1, 4.5, "w2")
    history = [(e.task_id, e.state) for e in ledger.last_events(20) if e.task_id == IDS[0]]
    assert history == [(IDS[0], FAILED), (IDS[0], PENDING), (IDS[0], ERROR)]


def test_error_groups_count_and_give_an_example(tmp_path):
    ledger = Ledger.create(tmp_path)
    ledger.reconcile(SPECS, set())
    ledger.record_outcomes([], [fail(IDS[0], "A"), fail(IDS[1], "B"), fail(IDS[2], "B")], 3)
    assert ledger.error_groups() == [("exit 4", "B", 2, IDS[1], 2), ("exit 4", "A", 1, IDS[0], 1)]
    # a failure stays visible once its task is resubmitted and waits for its next attempt
    ledger.set_state([IDS[0], IDS[1]], PENDING, "resubmitted")
    assert ledger.error_groups() == [("exit 4", "B", 2, IDS[1], 2), ("exit 4", "A", 1, IDS[0], 1)]
    ledger.record_outcomes([], [fail(IDS[3], "B")], 1)  # exhausted: failed for good
    assert ledger.error_groups()[0] == ("exit 4", "B", 3, IDS[1], 2)


def test_a_user_error_in_a_task_is_final_at_once(tmp_path):
    from timecal_core.run.engine import describe_failure
    from timecal_core.contract.errors import UserError

    ledger = Ledger.create(tmp_path)
    ledger.reconcile(SPECS, set())
    failure = describe_failure(IDS[0], UserError("hits: /x.root does not exist"))
    assert failure.final and failure.reason == "user error: hits: /x.root does not exist"
    assert ledger.record_outcomes([], [failure], policy=3) == [IDS[0]]
    assert (ledger.task(IDS[0]).state, ledger.task(IDS[0]).attempts) == (ERROR, 1)


def test_a_step_killed_by_a_signal_says_so():
    from timecal_core.run.engine import describe_failure
    from timecal_core.run.tasks import TaskFailed

    failure = describe_failure("t1", TaskFailed("t1", "emulate", -9, "python -m x a=1 b=2\n"))
    assert failure.reason == "step emulate killed by signal 9 (SIGKILL)"


def test_status_rate_is_measured_since_the_driver_started(tmp_path):
    """45 s into a run at 5 tasks/min, --status must not divide by a whole hour."""
    import time

    from timecal_core.views.ledger_report import render_ledger_report

    ledger = Ledger.create(tmp_path)
    ledger.reconcile(SPECS, set(), note="driver started (PID 1)")
    with ledger.transaction() as db:
        db.execute("UPDATE events SET time=time-60 WHERE detail LIKE 'driver started%'")
    now = time.time()
    ledger.record_outcomes([Completion(t, "w", now - 30, now - 1) for t in IDS[:4]], [], 3)
    report = render_ledger_report(ledger, tmp_path)
    assert "4.0 tasks/min (since the driver started 0:01:00 ago)" in report, report


def test_mark_running_only_moves_pending_tasks(tmp_path):
    ledger = Ledger.create(tmp_path)
    ledger.reconcile(SPECS, {IDS[0]})
    assert ledger.mark_running([(IDS[0], "w", 1.0), (IDS[1], "w", 1.0)]) == 1
    assert ledger.task(IDS[0]).state == DONE and ledger.task(IDS[1]).state == RUNNING


def test_reconcile_after_a_killed_driver(tmp_path):
    """A driver killed mid-run leaves running/failed rows, and results it never recorded."""
    ledger = Ledger.create(tmp_path)
    ledger.reconcile(SPECS, set())
    ledger.mark_running([(IDS[0], "w", 1.0), (IDS[1], "w", 1.0)])
    ledger.record_outcomes([], [fail(IDS[2])], policy=1)  # error, attempts exhausted
    ledger.record_outcomes([Completion(IDS[3], "w", 1.0, 2.0)], [], 3)
    ledger.set_state([IDS[4]], CANCELLED, "cancelled by the user")
    ledger.close()

    ledger = Ledger.create(tmp_path)
    # IDS[0] finished on disk after the ledger last heard of it; IDS[3]'s result was deleted
    report = ledger.reconcile(SPECS[:4] + [Spec("ffffffffff", "new__ffffffffff", {})],
                              done_on_disk={IDS[0]})
    assert (report.found_done, report.lost, report.requeued, report.dropped, report.new) == (1, 1, 2, 1, 1)
    states = {t.task_id: t.state for t in ledger.tasks()}
    assert states == {IDS[0]: DONE, IDS[1]: PENDING, IDS[2]: PENDING, IDS[3]: PENDING,
                      "ffffffffff": PENDING}
    # Failed for good: a new run gives a new budget; the attempts go on counting.
    assert ledger.task(IDS[2]).attempts == 1
    assert ledger.task(IDS[1]).worker is None
    assert ledger.record_outcomes([], [fail(IDS[2], "other")], policy=2) == []  # 1 of 2 in this budget
    assert (ledger.task(IDS[2]).state, ledger.task(IDS[2]).attempts) == (FAILED, 2)


def test_readonly_access_while_a_write_transaction_is_open(tmp_path):
    writer = Ledger.create(tmp_path)
    writer.reconcile(SPECS, set())
    reader = Ledger.open_readonly(tmp_path)
    with writer.transaction() as db:
        db.execute("UPDATE tasks SET state='done'")
        assert reader.counts()[PENDING] == 5  # sees the last committed state, not blocked
    assert reader.counts()[DONE] == 5


def test_missing_ledger_says_how_to_rebuild(tmp_path):
    with pytest.raises(LedgerUnavailable, match=r"no ledger.*BXRun --rebuild-ledger -o"):
        Ledger.open_readonly(tmp_path)


def test_corrupt_ledger_says_how_to_rebuild(tmp_path):
    (tmp_path / LEDGER_NAME).write_bytes(b"this is not a database" * 100)
    with pytest.raises(LedgerUnavailable, match=r"corrupt.*BXRun --rebuild-ledger -o"):
        Ledger.open_readonly(tmp_path)
    with pytest.raises(LedgerUnavailable, match="corrupt"):
        Ledger.create(tmp_path)


def test_rebuild_keeps_the_old_file_aside(tmp_path):
    (tmp_path / LEDGER_NAME).write_bytes(b"garbage")
    rebuild(tmp_path, SPECS, {IDS[1], IDS[2]})
    ledger = Ledger.open_readonly(tmp_path)
    assert ledger.counts()[DONE] == 2 and ledger.counts()[PENDING] == 3
    aside = list(tmp_path.glob(LEDGER_NAME + ".bad-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b"garbage"
