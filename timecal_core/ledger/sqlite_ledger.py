"""The production ledger: ``<output>/ledger.sqlite``, the driver's memory of every task.

Results on disk stay the truth for *completion* (a result directory appears only by an
atomic rename); the ledger adds what disk cannot tell: attempts, workers, times, the error of
each failure and an append-only history of state changes. Only the driver writes it (the
production lock guarantees a single driver); readers such as ``BXRun --status`` open it
read-only while the driver runs, which WAL mode allows without blocking either side.

Writes are grouped in transactions (one per batch of completions) so that a 30,000-task
production does not pay one fsync per task."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .failure_causes import RetryPolicy, USER, kind, step_cause
from .integrity import LEDGER_NAME, check_files, check_whole, damaged
from .records import (CANCELLED, DONE, ERROR, FAILED, PENDING, PLANNED, RUNNING, STATES, Completion,
                      Event, Failure, LedgerUnavailable, ReconcileReport, TaskRow, rebuild_hint)

SCHEMA_VERSION = "2"
READABLE_VERSIONS = ("1", "2")  # --status reads a schema 1 ledger (a driver upgrades it)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    task_id   TEXT PRIMARY KEY,
    dirname   TEXT NOT NULL,
    params    TEXT NOT NULL,
    state     TEXT NOT NULL,
    attempts  INTEGER NOT NULL DEFAULT 0,
    worker    TEXT,
    start     REAL,
    end       REAL,
    exit_code INTEGER,
    step      TEXT,
    reason    TEXT,
    error     TEXT,
    updated   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (state);
CREATE TABLE IF NOT EXISTS events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    time    REAL NOT NULL,
    task_id TEXT,
    state   TEXT,
    detail  TEXT NOT NULL DEFAULT ''
);
"""
#: Schema 2: what the last attempt used and why it failed (on ``tasks``), every attempt
#: (``attempts``) and the software that ran it (``software``, one row per distinct set).
_V2_COLUMNS = (("host", "TEXT"), ("job_id", "TEXT"), ("cpu", "REAL"), ("maxrss_kib", "INTEGER"),
               ("output_bytes", "INTEGER"), ("signal", "INTEGER"), ("cause", "TEXT"),
               # attempts before the current budget: a new run or a user's retry of a task
               # failed for good grants a fresh one without rewinding the count
               ("base", "INTEGER NOT NULL DEFAULT 0"))
_V2_TABLES = """
CREATE TABLE IF NOT EXISTS software (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS attempts (
    task_id      TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    outcome      TEXT NOT NULL,
    worker       TEXT,
    host         TEXT,
    job_id       TEXT,
    start        REAL,
    end          REAL,
    cpu          REAL,
    maxrss_kib   INTEGER,
    output_bytes INTEGER,
    exit_code    INTEGER,
    signal       INTEGER,
    cause        TEXT,
    reason       TEXT,
    software     INTEGER REFERENCES software (id)
);
CREATE INDEX IF NOT EXISTS attempts_by_task ON attempts (task_id, attempt);
"""

_COLUMNS = ("task_id", "dirname", "params", "state", "attempts", "worker", "start", "end",
            "exit_code", "step", "reason", "error", "updated", "host", "job_id", "cpu",
            "maxrss_kib", "output_bytes", "signal", "cause")


def _migrate(db: sqlite3.Connection, version: str | None) -> None:
    """Bring a ledger to schema 2 (a driver opening a schema 1 ledger adds the columns and
    tables; nothing is rewritten)."""
    db.executescript(_V2_TABLES)
    have = {r[1] for r in db.execute("PRAGMA table_info(tasks)")}
    for name, sqltype in _V2_COLUMNS:
        if name not in have:
            db.execute(f"ALTER TABLE tasks ADD COLUMN {name} {sqltype}")
    if version is None:
        db.execute("INSERT INTO meta VALUES ('schema', ?), ('created', ?)",
                   (SCHEMA_VERSION, str(time.time())))
    else:
        db.execute("UPDATE meta SET value=? WHERE key='schema'", (SCHEMA_VERSION,))


class Ledger:
    """One SQLite connection shared by the driver's threads behind a lock (SQLite
    serialises writers anyway; the lock keeps each batch one transaction)."""

    def __init__(self, path: Path, connection: sqlite3.Connection):
        self.path = path
        self._db = connection
        self._lock = threading.RLock()
        self._v1 = False  # a schema 1 ledger read by --status: no resource columns
        self._software_ids: dict[str, int] = {}  # software text -> row id (few distinct)

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(cls, production_dir: Path) -> Ledger:
        """Open the ledger for writing, creating it if absent (the driver's side)."""
        path = Path(production_dir) / LEDGER_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        check_files(production_dir)  # no symlink, nothing of another user's
        check_whole(production_dir)  # damage found now, not while recording completions
        try:
            db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            version = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if version is None or version[0] in READABLE_VERSIONS:
                if version is None or version[0] != SCHEMA_VERSION:
                    _migrate(db, version[0] if version else None)
            else:
                raise LedgerUnavailable(f"{path}: ledger schema {version[0]} is not the supported "
                                        f"{SCHEMA_VERSION}; move it away and "
                                        f"{rebuild_hint(Path(production_dir))}")
        except sqlite3.OperationalError as exc:
            raise LedgerUnavailable(f"{path}: cannot open the ledger ({exc}); check the "
                                    "directory's permissions and free space") from None
        except sqlite3.DatabaseError as exc:
            raise damaged(path, exc) from None
        check_files(production_dir, opened=db)
        return cls(path, db)

    @classmethod
    def open_readonly(cls, production_dir: Path) -> Ledger:
        """Open an existing ledger for reading (``--status``); missing or corrupt ledgers
        are a :class:`LedgerUnavailable` saying how to rebuild it."""
        path = Path(production_dir) / LEDGER_NAME
        if not path.is_file():
            raise LedgerUnavailable(f"{path}: no ledger in this production; "
                                    f"{rebuild_hint(Path(production_dir))}")
        check_whole(production_dir)
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30,
                                 isolation_level=None, check_same_thread=False)
            version = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            db.execute("SELECT task_id, state FROM tasks LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            raise damaged(path, exc) from None
        if version is None or version[0] not in READABLE_VERSIONS:
            raise LedgerUnavailable(f"{path}: not a ledger of this timecal version; "
                                    f"{rebuild_hint(Path(production_dir))}")
        ledger = cls(path, db)
        ledger._v1 = version[0] == "1"
        return ledger

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write; damage found only now is the one line of :func:`damaged`."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    try:
                        self._db.execute("ROLLBACK")
                    except sqlite3.Error:  # damaged, or no transaction left to roll back
                        pass
                    raise
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as exc:  # a full disk: the commands say it in one line
                exc.ledger_path = self.path  # type: ignore[attr-defined]  # sqlite names no file
                raise
            except sqlite3.DatabaseError as exc:
                raise damaged(self.path, exc) from None

    # ------------------------------------------------------------------ writing
    def reconcile(self, tasks: Iterable[Any], done_on_disk: set[str],
                  note: str = "", run: set[str] | None = None) -> ReconcileReport:
        """Make the ledger agree with the plan and with disk before submitting anything.

        ``tasks`` are TaskSpec-like objects (task_id, dirname, params): the whole grid. A
        task is done iff its result is on disk; every other task this run runs (``run``,
        default all) becomes pending, the others (a pilot's run covers a few) planned. Tasks
        failed for good, cancelled or planned get a fresh attempt budget (a new run is the
        user's decision to try again); interrupted ones keep their count. History stays in
        the events table. Rows of tasks no longer in the grid are dropped unless done.
        """
        now = time.time()
        new = found_done = lost = requeued = launched = 0
        with self.transaction() as db:
            known = dict(db.execute("SELECT task_id, state FROM tasks"))
            planned: set[str] = set()
            inserts, to_done, to_pending, to_fresh, to_planned, events = [], [], [], [], [], []
            for spec in tasks:
                tid = spec.task_id
                planned.add(tid)
                state = known.get(tid)
                on_disk = tid in done_on_disk
                waits = PENDING if run is None or tid in run else PLANNED
                if state is None:
                    inserts.append((tid, spec.dirname, json.dumps(dict(spec.params), sort_keys=True),
                                    DONE if on_disk else waits, now))
                    new += 1
                elif not on_disk and waits == PLANNED:  # not this run's: whatever it was, it waits
                    if state != PLANNED:
                        to_planned.append((now, tid))
                        events.append((now, tid, PLANNED, f"left for the production's launch (was {state})"))
                elif not on_disk and state == PLANNED:  # launched after its pilot
                    to_fresh.append((now, tid))
                    launched += 1
                elif on_disk and state != DONE:
                    to_done.append((now, tid))
                    events.append((now, tid, DONE, "found complete on disk"))
                    found_done += 1
                elif not on_disk and state == DONE:
                    to_fresh.append((now, tid))
                    events.append((now, tid, PENDING, "result missing on disk: rerun"))
                    lost += 1
                elif not on_disk and state != PENDING:
                    (to_fresh if state in (ERROR, CANCELLED) else to_pending).append((now, tid))
                    events.append((now, tid, PENDING, f"resumed (was {state})"))
                    requeued += 1
            db.executemany("INSERT INTO tasks (task_id, dirname, params, state, updated) "
                           "VALUES (?, ?, ?, ?, ?)", inserts)
            db.executemany("UPDATE tasks SET state='done', updated=? WHERE task_id=?", to_done)
            db.executemany("UPDATE tasks SET state='pending', worker=NULL, start=NULL, end=NULL, "
                           "updated=? WHERE task_id=?", to_pending)
            db.executemany("UPDATE tasks SET state='pending', base=attempts, worker=NULL, "
                           "start=NULL, end=NULL, updated=? WHERE task_id=?", to_fresh)
            db.executemany("UPDATE tasks SET state='planned', worker=NULL, start=NULL, end=NULL, "
                           "updated=? WHERE task_id=?", to_planned)
            stale = [(tid,) for tid, state in known.items() if tid not in planned and state != DONE]
            db.executemany("DELETE FROM tasks WHERE task_id=?", stale)
            events.extend((now, tid, None, "no longer in the grid: dropped") for (tid,) in stale)
            if new:
                events.append((now, None, PENDING, f"{new} tasks added to the ledger"))
            if launched:
                events.append((now, None, PENDING, f"{launched} planned tasks submitted"))
            if note:
                events.append((now, None, None, note))
            db.executemany("INSERT INTO events (time, task_id, state, detail) VALUES (?, ?, ?, ?)",
                           events)
        return ReconcileReport(new, found_done, lost, requeued, len(stale))

    def mark_running(self, running: Iterable[tuple[str, str, float]]) -> int:
        """(task_id, worker, since) of tasks seen executing; only pending ones change."""
        now = time.time()
        changed = 0
        with self.transaction() as db:
            for tid, worker, since in running:
                cur = db.execute("UPDATE tasks SET state='running', worker=?, start=?, end=NULL, "
                                 "updated=? WHERE task_id=? AND state='pending'",
                                 (worker, since, now, tid))
                if cur.rowcount:
                    changed += 1
                    db.execute("INSERT INTO events (time, task_id, state, detail) VALUES (?,?,?,?)",
                               (now, tid, RUNNING, f"on {worker}"))
        return changed

    def record_outcomes(self, completions: Iterable[Completion], failures: Iterable[Failure],
                        policy: RetryPolicy | int) -> list[str]:
        """Record one batch of finished attempts in a single transaction.

        Every attempt counts, success or failure, and is kept in ``attempts`` with what it
        used. A failure leaves the task ``failed`` (retried at the next interval) while the
        retry policy allows another attempt for its cause (:mod:`timecal_core.ledger.failure_causes`),
        ``error`` afterwards. ``policy`` may be a plain number of attempts. Returns the ids
        of tasks that just failed for good.
        """
        if not isinstance(policy, RetryPolicy):
            policy = RetryPolicy(default=int(policy))
        now = time.time()
        exhausted: list[str] = []
        with self.transaction() as db:
            for c in completions:
                r = c.resources
                attempts = self._attempts_so_far(db, c.task_id) + 1
                db.execute("UPDATE tasks SET state='done', attempts=?, worker=?, start=?, end=?, "
                           "exit_code=0, host=?, job_id=?, cpu=?, maxrss_kib=?, output_bytes=?, "
                           "signal=NULL, updated=? WHERE task_id=?",
                           (attempts, c.worker, c.start, c.end, r.get("host"), r.get("job_id"),
                            r.get("cpu"), r.get("maxrss_kib"), r.get("output_bytes"), now,
                            c.task_id))
                self._add_attempt(db, c.task_id, attempts, "done", {
                    **r, "worker": c.worker, "start": c.start, "end": c.end}, 0, None, None)
                db.execute("INSERT INTO events (time, task_id, state, detail) VALUES (?,?,'done',?)",
                           (now, c.task_id, f"on {c.worker}"))
            for f in failures:
                r = f.resources
                cause = f.cause or (USER if f.final else step_cause(f.exit_code, None))
                attempts = self._attempts_so_far(db, f.task_id) + 1
                why = self._final_because(db, f, cause, attempts, policy)
                state = ERROR if why else FAILED
                if state == ERROR:
                    exhausted.append(f.task_id)
                start = r.get("start")
                if start is None:
                    row = db.execute("SELECT start FROM tasks WHERE task_id=? AND state='running'",
                                     (f.task_id,)).fetchone()
                    start = row[0] if row else None
                end = r.get("end") or now
                db.execute("UPDATE tasks SET state=?, attempts=?, worker=?, start=?, end=?, "
                           "exit_code=?, step=?, reason=?, error=?, host=?, job_id=?, cpu=?, "
                           "maxrss_kib=?, output_bytes=NULL, signal=?, cause=?, updated=? "
                           "WHERE task_id=?",
                           (state, attempts, f.worker or r.get("worker"), start, end, f.exit_code,
                            f.step, f.reason, f.error, r.get("host"), r.get("job_id"), r.get("cpu"),
                            r.get("maxrss_kib"), r.get("signal"), cause, now, f.task_id))
                self._add_attempt(db, f.task_id, attempts, "failed",
                                  {**r, "worker": f.worker or r.get("worker"), "start": start,
                                   "end": end}, f.exit_code, cause, f.reason)
                detail = f"attempt {attempts}: [{cause or '?'}] {f.reason}"
                if why:
                    detail += f" ({why})"
                db.execute("INSERT INTO events (time, task_id, state, detail) VALUES (?,?,?,?)",
                           (now, f.task_id, state, detail))
        return exhausted

    @staticmethod
    def _attempts_so_far(db: sqlite3.Connection, task_id: str) -> int:
        row = db.execute("SELECT attempts FROM tasks WHERE task_id=?", (task_id,)).fetchone()
        return row[0] if row else 0

    @staticmethod
    def _final_because(db: sqlite3.Connection, f: Failure, cause: str | None, attempts: int,
                       policy: RetryPolicy) -> str:
        """Why this failure ends the task's retries ('' if it does not)."""
        if f.final or kind(cause) == USER:
            return "a user error: not retried"
        base = db.execute("SELECT base FROM tasks WHERE task_id=?", (f.task_id,)).fetchone()
        used = attempts - (base[0] if base else 0)
        if kind(cause) == "exit" and policy.same_exit:
            previous = db.execute("SELECT cause, reason, outcome FROM attempts WHERE task_id=? "
                                  "ORDER BY attempt DESC LIMIT ?",
                                  (f.task_id, policy.same_exit - 1)).fetchall()
            if len(previous) == policy.same_exit - 1 and all(
                    o == "failed" and c == cause and r == f.reason for c, r, o in previous):
                return f"the same {cause} {policy.same_exit} times in a row: not retried"
        limit = policy.limit(cause)
        if used >= limit:
            return f"{used} attempt(s), {kind(cause)} allows {limit}"
        return ""

    def _add_attempt(self, db: sqlite3.Connection, task_id: str, attempt: int, outcome: str,
                     r: dict, exit_code: int | None, cause: str | None, reason: str | None) -> None:
        software = None
        if r.get("software"):
            text = json.dumps(r["software"], sort_keys=True)
            software = self._software_ids.get(text)
            if software is None:
                db.execute("INSERT OR IGNORE INTO software (text) VALUES (?)", (text,))
                software = db.execute("SELECT id FROM software WHERE text=?", (text,)).fetchone()[0]
                self._software_ids[text] = software
        db.execute("INSERT INTO attempts (task_id, attempt, outcome, worker, host, job_id, start, "
                   "end, cpu, maxrss_kib, output_bytes, exit_code, signal, cause, reason, software) "
                   "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   (task_id, attempt, outcome, r.get("worker"), r.get("host"), r.get("job_id"),
                    r.get("start"), r.get("end"), r.get("cpu"), r.get("maxrss_kib"),
                    r.get("output_bytes"), exit_code, r.get("signal"), cause, reason, software))

    def refine_cause(self, task_id: str, attempt: int, cause: str, detail: str,
                     policy: RetryPolicy | int) -> bool:
        """A later, better cause of a failed attempt (the batch system says a lost job ran
        out of memory or time). The task fails for good if its new cause allows no more
        attempts and it was not resubmitted yet. True when something changed."""
        if not isinstance(policy, RetryPolicy):
            policy = RetryPolicy(default=int(policy))
        now = time.time()
        with self.transaction() as db:
            cur = db.execute("UPDATE attempts SET cause=?, reason=? WHERE task_id=? AND attempt=? "
                             "AND outcome='failed'", (cause, detail, task_id, attempt))
            if not cur.rowcount:
                return False
            db.execute("UPDATE tasks SET cause=?, reason=?, updated=? WHERE task_id=? AND attempts=?",
                       (cause, detail, now, task_id, attempt))
            base = db.execute("SELECT base FROM tasks WHERE task_id=?", (task_id,)).fetchone()
            state = ERROR if attempt - (base[0] if base else 0) >= policy.limit(cause) else None
            if state is not None:
                db.execute("UPDATE tasks SET state='error' WHERE task_id=? AND state='failed' "
                           "AND attempts=?", (task_id, attempt))
            db.execute("INSERT INTO events (time, task_id, state, detail) VALUES (?,?,?,?)",
                       (now, task_id, None, f"attempt {attempt}: cause {cause}: {detail}"))
        return True

    def set_state(self, task_ids: Iterable[str], state: str, detail: str,
                  only_from: tuple[str, ...] | None = None) -> list[str]:
        """Move tasks to ``state`` (retry, cancel, exit); returns the ids that changed."""
        now = time.time()
        changed = []
        with self.transaction() as db:
            for tid in task_ids:
                if only_from is not None:
                    row = db.execute("SELECT state FROM tasks WHERE task_id=?", (tid,)).fetchone()
                    if row is None or row[0] not in only_from:
                        continue
                cur = db.execute("UPDATE tasks SET state=?, updated=? WHERE task_id=?",
                                 (state, now, tid))
                if cur.rowcount:
                    changed.append(tid)
            db.executemany("INSERT INTO events (time, task_id, state, detail) VALUES (?,?,?,?)",
                           [(now, tid, state, detail) for tid in changed])
        return changed

    def fresh_budget(self, task_ids: Iterable[str]) -> None:
        """A user's retry of tasks failed for good or cancelled: the retry policy starts
        again from their next attempt (the attempt count goes on)."""
        with self.transaction() as db:
            db.executemany("UPDATE tasks SET base=attempts WHERE task_id=? AND state IN "
                           "('error', 'cancelled')", [(t,) for t in task_ids])

    def note(self, detail: str) -> None:
        """A production-level event (start, exit, interruption)."""
        with self.transaction() as db:
            db.execute("INSERT INTO events (time, task_id, state, detail) VALUES (?, NULL, NULL, ?)",
                       (time.time(), detail))

    # ------------------------------------------------------------------ reading
    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        """A read; damage found only now (the driver's ledger is not checked page by page
        when it opens) says how to rebuild, in one line."""
        try:
            with self._lock:
                return self._db.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError as exc:
            raise damaged(self.path, exc) from None

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        counts.update(self._query("SELECT state, COUNT(*) FROM tasks GROUP BY state"))
        return counts

    def ids_in_state(self, *states: str) -> list[str]:
        marks = ",".join("?" * len(states))
        return [r[0] for r in self._query(f"SELECT task_id FROM tasks WHERE state IN ({marks}) "
                                          "ORDER BY task_id", states)]

    def _columns(self) -> str:
        if not self._v1:
            return ", ".join(_COLUMNS)
        added = {name for name, _ in _V2_COLUMNS}
        return ", ".join(f"NULL AS {c}" if c in added else c for c in _COLUMNS)

    def tasks(self, state: str | None = None, limit: int | None = None) -> list[TaskRow]:
        sql = f"SELECT {self._columns()} FROM tasks"
        args: tuple = ()
        if state is not None:
            sql += " WHERE state=?"
            args = (state,)
        sql += " ORDER BY updated DESC, task_id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_row(r) for r in self._query(sql, args)]

    def task(self, task_id: str) -> TaskRow | None:
        rows = self._query(f"SELECT {self._columns()} FROM tasks WHERE task_id=?", (task_id,))
        return _row(rows[0]) if rows else None

    def find(self, prefix: str, limit: int = 50) -> list[str]:
        """Task ids starting with ``prefix`` (tab completion, abbreviated ids)."""
        return [r[0] for r in self._query("SELECT task_id FROM tasks WHERE task_id >= ? AND "
                                          "task_id < ? ORDER BY task_id LIMIT ?",
                                          (prefix, prefix + "\uffff", limit))]

    def error_groups(self) -> list[tuple[str, str, int, str, int]]:
        """(cause, reason, count, example task id, of which waiting for a retry) of every
        task whose last attempt failed: failed for good, failed, and those already
        resubmitted (pending or running again), commonest first."""
        cause = "NULL" if self._v1 else "cause"
        return self._query(f"SELECT COALESCE({cause}, '?'), COALESCE(reason, '?'), COUNT(*), "
                           "MIN(task_id), SUM(state != 'error') FROM tasks "
                           "WHERE state IN ('failed', 'error') OR (state IN ('pending', 'running') "
                           f"AND reason IS NOT NULL) GROUP BY {cause}, reason "
                           "ORDER BY COUNT(*) DESC, reason")

    def attempts(self, task_id: str) -> list[dict]:
        """Every recorded attempt of a task, oldest first, with its resources and software."""
        if self._v1:
            return []
        names = ("attempt", "outcome", "worker", "host", "job_id", "start", "end", "cpu",
                 "maxrss_kib", "output_bytes", "exit_code", "signal", "cause", "reason")
        rows = self._query(f"SELECT {', '.join('a.' + n for n in names)}, s.text FROM attempts a "
                           "LEFT JOIN software s ON s.id = a.software WHERE a.task_id=? "
                           "ORDER BY a.attempt", (task_id,))
        return [{**dict(zip(names, r[:-1])), "software": json.loads(r[-1]) if r[-1] else None}
                for r in rows]

    def last_events(self, n: int = 10) -> list[Event]:
        rows = self._query("SELECT time, task_id, state, detail FROM events ORDER BY id DESC "
                           "LIMIT ?", (n,))
        return [Event(*r) for r in reversed(rows)]

    def production_events(self, n: int = 10, containing: str = "") -> list[Event]:
        """The last production-level notes (starts, exits, batch-system events), with ``containing``."""
        rows = self._query("SELECT time, task_id, state, detail FROM events WHERE task_id IS NULL "
                           "AND instr(detail, ?) > 0 ORDER BY id DESC LIMIT ?", (containing, n))
        return [Event(*r) for r in reversed(rows)]

    def last_start(self) -> float | None:
        """When the latest driver started (the rate of ``--status`` is measured from it)."""
        rows = self._query("SELECT MAX(time) FROM events WHERE task_id IS NULL AND "
                           "detail LIKE 'driver started%'")
        return rows[0][0] if rows else None

    def done_since(self, since: float) -> int:
        return self._query("SELECT COUNT(*) FROM tasks WHERE state='done' AND end >= ?",
                           (since,))[0][0]

    def outcome_timeline(self, points: int = 300) -> list[tuple[float, int, int]]:
        """(time, tasks done, tasks failed for good) after each outcome, at most ``points``
        samples (the status page's progress plot)."""
        rows = self._query("SELECT time, state FROM events WHERE task_id IS NOT NULL AND "
                           "state IN ('done', 'error') ORDER BY id")
        out, done, failed = [], 0, 0
        step = max(1, len(rows) // points)
        for i, (when, state) in enumerate(rows):
            done += state == DONE
            failed += state == ERROR
            if i % step == 0 or i == len(rows) - 1:
                out.append((when, done, failed))
        return out

    def done_runtimes(self) -> list[float]:
        return [r[0] for r in self._query("SELECT end - start FROM tasks WHERE state='done' AND "
                                          "start IS NOT NULL AND end IS NOT NULL")]

    def runtimes(self) -> dict[str, tuple[float | None, int]]:
        """task id -> (runtime seconds or None, attempts), for the aggregators."""
        return {tid: ((end - start) if start is not None and end is not None else None, attempts)
                for tid, start, end, attempts in self._query(
                    "SELECT task_id, start, end, attempts FROM tasks")}

    def not_run(self) -> list[str]:
        """Tasks with no attempt run to its end yet (planned, pending, running or cancelled,
        never failed): a task not run yet can neither fail nor succeed, so failures are not
        compared with it (read in SQL: the few, not every row)."""
        return [r[0] for r in self._query("SELECT task_id FROM tasks WHERE state IN "
                                          "('planned', 'pending', 'running', 'cancelled') AND reason IS NULL")]

    def columns(self, names: Iterable[str], failures_only: bool = False) -> list[tuple]:
        """Some columns of every task, undecoded and unsorted (the monitor's maps and failure
        statistics read 30,000 rows in tens of milliseconds, not the hundreds that TaskRow
        objects cost). ``params.NAME`` is the value of parameter NAME (extracted by SQLite,
        without decoding the rest); a name this ledger has no column for reads as NULL.
        ``failures_only``: the tasks whose last attempt failed (failed, error, or resubmitted
        after a failure)."""
        have = set(_COLUMNS) - ({name for name, _ in _V2_COLUMNS} if self._v1 else set())
        parts, args = [], []
        for n in names:
            if n.startswith("params."):
                parts.append("json_extract(params, ?)")
                args.append('$."' + n[len("params."):].replace('"', "") + '"')
            else:
                parts.append(f'"{n}"' if n in have else "NULL")
        where = (" WHERE state IN ('failed', 'error') OR (state IN ('pending', 'running') AND "
                 "reason IS NOT NULL)") if failures_only else ""
        return self._query(f"SELECT {', '.join(parts)} FROM tasks{where}", tuple(args))

def _row(r: tuple) -> TaskRow:
    values: dict[str, Any] = dict(zip(_COLUMNS, r))
    values["params"] = json.loads(values["params"])
    return TaskRow(**values)


def rebuild(production_dir: Path, tasks: Iterable[Any], done_on_disk: set[str]) -> ReconcileReport:
    """Replace the ledger by one derived from the plan and the results on disk: done tasks
    as done, every other one pending. Any old file is moved aside, never deleted."""
    path = Path(production_dir) / LEDGER_NAME
    if path.exists():
        aside = path.with_name(f"{LEDGER_NAME}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
        path.rename(aside)
        for suffix in ("-wal", "-shm"):
            side = path.with_name(LEDGER_NAME + suffix)
            if side.exists():
                side.rename(aside.with_name(aside.name + suffix))
    ledger = Ledger.create(production_dir)
    try:
        return ledger.reconcile(tasks, done_on_disk, note="ledger rebuilt from disk")
    finally:
        ledger.close()
