"""Why an attempt failed, in a small vocabulary, and whether to try again.

A 30,000-task production fails for few reasons, and each calls for a different reaction: a
lost node is worth another attempt, a step that exits 3 with the same message twice in a
row will do so a third time, a value the plan could not check is the user's to fix. Every
failed attempt therefore gets one *cause* (stored in the ledger beside the message):

========== ===========================================================================
``oom``      the step used more memory than its worker may (killed by the step server
             at the worker's memory limit, SIGKILL at >= 90 % of it, SLURM
             OUT_OF_MEMORY, HTCondor memory hold)
``walltime`` the batch job ran out of time (SLURM TIMEOUT, HTCondor MaxRuntime/periodic
             remove)
``node``     the worker or its job was lost (killed, node failure, result lost)
``signal N`` a step was killed by signal N
``exit N``   a step exited with code N (the message is its last log line)
``task``     the task failed around its steps: no output file, finalize or set-up error
``user``     a user error raised inside the task: never retried
========== ===========================================================================

The retry policy (timerc ``[retry]``) gives the attempts each cause may use; a failure
whose cause has used them, a ``user`` failure, or the same ``exit N`` with the same
message ``same_exit`` times in a row (deterministic) fails the task for good. A user's
``retry`` always grants one more attempt: the counts are never rewound.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..contract.errors import UserError
from ..contract.timerc_keys import Setting, SettingsSection

OOM, WALLTIME, NODE, TASK, USER = "oom", "walltime", "node", "task", "user"
#: Cause kinds, the key of each in timerc [retry] and what it means (``signal N`` and
#: ``exit N`` have the kinds ``signal`` and ``exit``).
KINDS = {
    OOM: "out of memory (the worker's memory limit, the batch system's memory limit)",
    WALLTIME: "the batch job's time limit",
    NODE: "the worker or its batch job was lost",
    "signal": "a step killed by a signal",
    "exit": "a step exited with a non-zero code",
    TASK: "no output file, finalize or set-up error",
    USER: "a user error raised inside the task (never retried)",
}
#: timerc ``[retry]``: the attempts of each cause kind (but user errors), and same_exit.
RETRY = SettingsSection("retry", tuple(
    Setting(k, "integer", "BXRun --max-retries (3)", f"attempts when the cause is {k}: {what}", minimum=1)
    for k, what in KINDS.items() if k != USER) + (
    Setting("same_exit", "integer", str(2), "identical ``exit N`` failures (same code, same message) "
            "in a row that stop a task's retries; 0: never stop early", minimum=0),),
    help="How often a task is tried, by why it failed (user errors are never retried). A monitor's "
         "``retry`` or a rerun of the same command gives tasks failed for good a fresh set.")
OOM_FRACTION = 0.9  # a SIGKILL at this fraction of the memory limit is taken for an OOM kill
DEFAULT_SAME_EXIT = int(RETRY.default("same_exit"))
MESSAGE_LIMIT = 300  # characters of a failure's message; the whole text stays in task.log
CUT = " [...: the task's log has it all]"
# Where a step's error begins: "prog: error: ...", "ValueError: ...", "Error in <TFile>",
# CMSSW's "Exception Message:" (whose sentence is on the next lines), "FATAL ...".
_ERROR_START = re.compile(r"\berror\b|^[\w.]*(Error|Exception)\b|^Exception Message:|\bfatal\b",
                          re.IGNORECASE)
_RULE = re.compile(r"^[-=*#]{3,}")  # a ruler line of a framework's report, not a sentence


def error_sentence(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """The error a step's log ends with, as one line of at most ``limit`` characters: from
    the last line where an error begins to the end (a message that spans lines is whole, a
    traceback gives its exception's line), its whitespace collapsed; the last line when
    nothing looks like an error. A longer one is cut and says so: a ROOT file that lists
    its 80,000 characters of keys must not become the message of every failure."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    while lines and _RULE.match(lines[-1]):  # "----- End Fatal Exception -----"
        lines.pop()
    if not lines:
        return ""
    start = next((i for i in range(len(lines) - 1, -1, -1)
                  if _ERROR_START.search(lines[i]) and not _RULE.match(lines[i])), len(lines) - 1)
    sentence = " ".join(" ".join(lines[start:]).split())
    if len(sentence) <= limit:
        return sentence
    return sentence[:limit - len(CUT)].rstrip() + CUT


def kind(cause: str | None) -> str:
    """``exit 3`` -> ``exit``; unknown or missing -> ``task``."""
    head = (cause or TASK).split(" ", 1)[0]
    return head if head in KINDS else TASK


def step_cause(exit_code: int | None, signal: int | None, oom: bool = False,
               maxrss_kib: int | None = None, memory_limit: int | None = None) -> str:
    """The cause of a failed step from how its process ended."""
    if oom:
        return OOM
    if signal is not None:
        if signal == 9 and memory_limit and maxrss_kib and \
                maxrss_kib * 1024 >= OOM_FRACTION * memory_limit:
            return OOM
        return f"signal {signal}"
    if exit_code is not None:  # negative: killed by a signal (subprocess's convention)
        return f"exit {exit_code}" if exit_code >= 0 else f"signal {-exit_code}"
    return TASK


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per cause kind; ``same_exit`` identical consecutive ``exit N`` failures
    (same code, same message) stop a task's retries (0: never)."""

    attempts: Mapping[str, int] = field(default_factory=dict)
    default: int = 3
    same_exit: int = DEFAULT_SAME_EXIT

    def limit(self, cause: str | None) -> int:
        k = kind(cause)
        if k == USER:
            return 1
        return self.attempts.get(k, self.default)

    def describe(self) -> str:
        parts = [f"{k} {self.limit(k)}" for k in KINDS if k != USER]
        same = f"; the same exit {self.same_exit} times in a row stops" if self.same_exit else ""
        return "attempts per cause: " + ", ".join(parts) + same


def retry_policy(section: Mapping[str, str], default: int = 3,
                 where: str = "timerc") -> RetryPolicy:
    """timerc ``[retry]``: ``oom = 2``, ``node = 5``, ``same_exit = 2``...; a bad key or value
    is a one-line error naming it and what is allowed."""
    attempts: dict[str, int] = {}
    same_exit = DEFAULT_SAME_EXIT
    if USER in section:
        raise UserError(f"{where} [retry] {USER}: user errors are never retried; allowed: "
                        + ", ".join(RETRY.keys))
    for key, value in RETRY.check(section, where).items():
        if not value:
            continue
        if key == "same_exit":
            if int(value) == 1:
                raise UserError(f"{where} [retry] same_exit = {value!r}: expected 0 (off) or a "
                                "number of identical failures in a row >= 2")
            same_exit = int(value)
            continue
        attempts[key] = int(value)
    return RetryPolicy(attempts, default, same_exit)
