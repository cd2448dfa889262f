"""Failure causes and the per-cause retry policy, on a real SQLite ledger."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

import pytest

from timecal_core.ledger.failure_causes import RetryPolicy, kind, retry_policy, step_cause
from timecal_core.contract.errors import UserError
from timecal_core.ledger.records import Completion, ERROR, FAILED, Failure, LedgerUnavailable
from timecal_core.ledger.sqlite_ledger import LEDGER_NAME, Ledger


@dataclass(frozen=True)
class Spec:
    task_id: str
    dirname: str
    params: dict


SPECS = [Spec(f"{i:010x}", f"p{i}__{i:010x}", {"pileup": 200 * (i % 2), "index": i})
         for i in range(1, 7)]
IDS = [s.task_id for s in SPECS]


def failure(tid, cause, reason="step sim exited with code 3: Error: no hits", code=3, **res):
    return Failure(tid, "tcp://10.0.0.1:1", "sim", code, reason, "...\n" + reason,
                   cause=cause, resources=res)


def ledger_with_specs(tmp_path) -> Ledger:
    ledger = Ledger.create(tmp_path)
    ledger.reconcile(SPECS, set())
    return ledger


def test_step_causes_and_kinds():
    assert step_cause(3, None) == "exit 3"
    assert step_cause(None, 11) == "signal 11"
    assert step_cause(None, 9, maxrss_kib=950 * 1024, memory_limit=1000 * 2**20) == "oom"
    assert step_cause(None, 9, maxrss_kib=100 * 1024, memory_limit=1000 * 2**20) == "signal 9"
    assert step_cause(None, None, oom=True) == "oom"
    assert step_cause(None, None) == "task"
    assert [kind(c) for c in ("exit 3", "signal 9", "oom", None, "bogus")] == \
        ["exit", "signal", "oom", "task", "task"]


def test_policy_from_timerc_and_its_errors():
    policy = retry_policy({"oom": "2", "node": "5", "same_exit": "0"}, default=3)
    assert (policy.limit("oom"), policy.limit("node"), policy.limit("exit 3"),
            policy.limit("user"), policy.same_exit) == (2, 5, 3, 1, 0)
    for section, words in (({"memory": "2"}, "[retry]: unknown setting memory; allowed: oom"),
                           ({"noed": "2"}, "unknown setting noed (did you mean node?)"),
                           ({"oom": "zero"}, "[retry] oom = 'zero': expected a positive integer"),
                           ({"user": "3"}, "never retried"),
                           ({"same_exit": "1"}, "same_exit = '1'")):
        with pytest.raises(UserError, match=re.escape(words)):
            retry_policy(section, where="/home/u/.config/timerc")


def test_a_deterministic_exit_is_not_retried_a_third_time(tmp_path):
    ledger = ledger_with_specs(tmp_path)
    policy = RetryPolicy(default=5)
    assert ledger.record_outcomes([], [failure(IDS[0], "exit 3")], policy) == []
    assert ledger.record_outcomes([], [failure(IDS[0], "exit 3")], policy) == [IDS[0]]
    row = ledger.task(IDS[0])
    assert (row.state, row.attempts, row.cause) == (ERROR, 2, "exit 3")
    # A different last line is not the same failure: retried.
    assert ledger.record_outcomes([], [failure(IDS[1], "exit 3")], policy) == []
    assert ledger.record_outcomes([], [failure(IDS[1], "exit 3", "step sim exited with code 3: "
                                               "Error: disk")], policy) == []
    assert ledger.task(IDS[1]).state == FAILED
    # Same rule off: retried until the attempts are used.
    off = RetryPolicy(default=3, same_exit=0)
    for _ in range(2):
        assert ledger.record_outcomes([], [failure(IDS[2], "exit 3")], off) == []
    assert ledger.record_outcomes([], [failure(IDS[2], "exit 3")], off) == [IDS[2]]


def test_attempts_per_cause_and_user_errors(tmp_path):
    ledger = ledger_with_specs(tmp_path)
    policy = RetryPolicy({"oom": 2, "node": 4}, default=3)
    for _ in range(3):
        assert ledger.record_outcomes([], [failure(IDS[0], "node", "worker died")], policy) == []
    assert ledger.record_outcomes([], [failure(IDS[0], "node", "worker died")], policy) == [IDS[0]]
    assert ledger.record_outcomes([], [failure(IDS[1], "oom", "step sim out of memory")], policy) == []
    assert ledger.record_outcomes([], [failure(IDS[1], "oom", "step sim out of memory")], policy) == [IDS[1]]
    assert ledger.record_outcomes([], [failure(IDS[2], "user", "user error: bad file")], policy) == [IDS[2]]
    assert ledger.task(IDS[2]).attempts == 1


def test_a_users_retry_gives_a_fresh_budget_and_counts_on(tmp_path):
    ledger = ledger_with_specs(tmp_path)
    policy = RetryPolicy(default=2)
    ledger.record_outcomes([], [failure(IDS[0], "node", "lost")], policy)
    ledger.record_outcomes([], [failure(IDS[0], "node", "lost")], policy)
    assert (ledger.task(IDS[0]).state, ledger.task(IDS[0]).attempts) == (ERROR, 2)
    ledger.fresh_budget([IDS[0]])
    ledger.set_state([IDS[0]], "pending", "resubmitted by the user")
    ledger.mark_running([(IDS[0], "w", 100.0)])
    row = ledger.task(IDS[0])
    assert (row.attempts, row.attempt, row.end) == (2, 3, None)  # running its third attempt
    assert row.runtime is not None and row.runtime > 0
    assert ledger.record_outcomes([], [failure(IDS[0], "node", "lost")], policy) == []
    assert (ledger.task(IDS[0]).state, ledger.task(IDS[0]).attempts) == (FAILED, 3)


def test_every_attempt_is_kept_with_its_resources_and_software(tmp_path):
    ledger = ledger_with_specs(tmp_path)
    software = {"timecal": "0.1.0", "python": "3.11.2", "cmssw": "CMSSW_15_0_0"}
    ledger.record_outcomes([], [failure(IDS[0], "oom", "step sim out of memory", host="node7",
                                        job_id="123", cpu=4.5, maxrss_kib=2_000_000,
                                        software=software)], 3)
    ledger.record_outcomes([Completion(IDS[0], "tcp://10.0.0.2:1", 10.0, 25.0, {
        "host": "node8", "job_id": "124", "cpu": 14.0, "maxrss_kib": 900_000,
        "output_bytes": 5000, "software": software})], [], 3)
    first, second = ledger.attempts(IDS[0])
    assert (first["outcome"], first["cause"], first["host"], first["maxrss_kib"]) == \
        ("failed", "oom", "node7", 2_000_000)
    assert (second["outcome"], second["host"], second["job_id"], second["cpu"],
            second["output_bytes"], second["end"] - second["start"]) == \
        ("done", "node8", "124", 14.0, 5000, 15.0)
    assert first["software"] == second["software"] == software
    row = ledger.task(IDS[0])
    assert (row.state, row.attempts, row.host, row.maxrss_kib, row.runtime) == \
        ("done", 2, "node8", 900_000, 15.0)
    # One software row for both attempts.
    db = sqlite3.connect(tmp_path / LEDGER_NAME)
    assert db.execute("SELECT COUNT(*) FROM software").fetchone()[0] == 1


def test_a_later_cause_from_the_batch_system(tmp_path):
    ledger = ledger_with_specs(tmp_path)
    policy = RetryPolicy({"walltime": 1}, default=3)
    ledger.record_outcomes([], [failure(IDS[0], "node", "the worker died")], policy)
    assert ledger.task(IDS[0]).state == FAILED
    assert ledger.refine_cause(IDS[0], 1, "walltime", "SLURM job 12: TIMEOUT", policy)
    row = ledger.task(IDS[0])
    assert (row.state, row.cause, row.reason) == (ERROR, "walltime", "SLURM job 12: TIMEOUT")
    assert not ledger.refine_cause(IDS[0], 7, "oom", "no such attempt", policy)


def test_a_schema_1_ledger_is_read_by_status_and_upgraded_by_a_driver(tmp_path):
    db = sqlite3.connect(tmp_path / LEDGER_NAME)
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE tasks (task_id TEXT PRIMARY KEY, dirname TEXT NOT NULL, params TEXT NOT NULL,
            state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, worker TEXT, start REAL,
            end REAL, exit_code INTEGER, step TEXT, reason TEXT, error TEXT, updated REAL NOT NULL);
        CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL,
            task_id TEXT, state TEXT, detail TEXT NOT NULL DEFAULT '');
        INSERT INTO meta VALUES ('schema', '1');
        INSERT INTO tasks VALUES ('0000000001', 'p1__0000000001', '{"index": 1}', 'failed', 1,
            'w', 1.0, 2.0, 3, 'sim', 'step sim exited with code 3', 'tail', 2.0);
    """)
    db.commit()
    db.close()
    reader = Ledger.open_readonly(tmp_path)
    assert reader.task("0000000001").cause is None
    assert reader.error_groups() == [("?", "step sim exited with code 3", 1, "0000000001", 1)]
    reader.close()
    writer = Ledger.create(tmp_path)  # the driver of a resumed production
    writer.record_outcomes([], [failure("0000000001", "exit 3")], 3)
    assert [a["attempt"] for a in writer.attempts("0000000001")] == [2]
    writer.close()
    db = sqlite3.connect(tmp_path / LEDGER_NAME)
    assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0] == "2"
    db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    db.commit()
    with pytest.raises(LedgerUnavailable, match="rebuild-ledger"):
        Ledger.open_readonly(tmp_path)
