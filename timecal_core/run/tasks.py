"""Running one task on a worker so that it is either complete or absent, never half-done.

The steps run in ``results/.tmp/<dirname>.<nonce>/``; on success the parameters are stored
in the output, ``params.json`` is written last and the directory is renamed into
``results/<dirname>``: a rename is atomic, so a task killed half-way never looks done and
a rerun simply starts it again. Commands are argv lists; parameter values never reach a
shell, only the trusted ``[cmssw] init`` snippet of timerc does.

Every step, a command or a warm python step, is started by the worker's step server
(:mod:`timecal_core.run.step_server`) in a session of its own and ends with its process group when its
attempt ends: its own end, a cancelled future or a closing worker (:func:`stop_check`, polled
every 0.2 s), the worker's death or the driver's (the server's pipe closes, PDEATHSIG). A
cancelled attempt's work directory is removed at once; one whose worker died is removed
when the task completes (the driver reads it meanwhile to charge the attempt) or by the
next run. ``params.json`` records each step's exit code, signal, wall and CPU time and
peak RSS, and the attempt's provenance (:mod:`timecal_core.run.provenance`); a failed attempt
carries the same to the driver, with its cause (:mod:`timecal_core.ledger.failure_causes`).
"""

from __future__ import annotations

import errno
import glob
import json
import os
import re
import shlex
import shutil
import signal
import socket
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..contract.errors import UserError
from ..contract.hookspecs import TASK_PARAMETERS_ENV, FinishedTask, Step, TaskRequest
from ..ledger import failure_causes as causes
from ..plan.completion import completed, move_aside, real_directory
from ..plan.grid import RESULTS, TMP, TaskSpec
from . import memory_cgroup as memcg
from . import provenance
from .step_server import ServerLost, StepProcess, warm_enabled
from .step_server import server as warm_server

LOG_NAME = "task.log"
PARAMS_NAME = "params.json"
FAILED_LOGS = ".logs"  # results/.logs/<dirname>.log: the log of the last failed attempt
TAIL_LINES = 50
# What a virtualenv or conda adds to the environment: CMSSW brings its own Python.
VENV_VARIABLES = ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "CONDA_PREFIX", "CONDA_DEFAULT_ENV",
                  "CONDA_PYTHON_EXE", "CONDA_SHLVL", "CONDA_EXE", "PYTHONNOUSERSITE")


@dataclass(frozen=True)
class TaskResult:
    task_id: str
    output: str  # absolute path of the output file
    start: float
    end: float
    worker: str  # host:pid that ran it
    reused: bool = False  # the result was already on disk (a resubmitted task that had finished)
    resources: dict | None = None  # provenance.RESOURCE_KEYS + software, as in params.json


class TaskFailed(Exception):
    """A step failed; carries what the user needs to decide: which step, its exit code and
    the end of the log. Picklable so it crosses the Dask boundary intact."""

    def __init__(self, task_id: str, step: str, exit_code: int | None, log_tail: str,
                 cause: str | None = None):
        super().__init__(task_id, step, exit_code, log_tail)
        self.task_id, self.step, self.exit_code, self.log_tail = task_id, step, exit_code, log_tail
        self.cause = cause or causes.step_cause(exit_code, None)
        self.resources: dict = {}  # filled by execute_task: what the attempt used, where

    def __str__(self) -> str:
        code = "" if self.exit_code is None else f" with exit code {self.exit_code}"
        last = self.log_tail.strip().splitlines()[-1:] or [""]
        return f"task {self.task_id}: step '{self.step}' failed{code}: {last[0]}"


def clean_environment(env: dict[str, str]) -> dict[str, str]:
    """The environment without what the current virtualenv/conda env injected."""
    env = dict(env)
    prefixes = [env[v] for v in ("VIRTUAL_ENV", "CONDA_PREFIX") if env.get(v)]
    prefixes.append(sys.prefix)
    for var in VENV_VARIABLES:
        env.pop(var, None)
    if "PATH" in env:
        keep = [p for p in env["PATH"].split(os.pathsep)
                if not any(p == os.path.join(pre, "bin") for pre in prefixes)]
        env["PATH"] = os.pathsep.join(keep)
    return env


_MATCH = re.compile(r"\{match:([^}]+)\}")


def resolve_matches(argv: tuple[str, ...], workdir: Path) -> list[str]:
    """Replace ``{match:PATTERN}`` by the single file of ``workdir`` matching PATTERN."""
    def one(m: re.Match) -> str:
        found = sorted(p.name for p in workdir.glob(m.group(1)))
        if len(found) != 1:
            raise FileNotFoundError(f"expected exactly one file matching {m.group(1)!r} in the work "
                                    f"directory, found {found or 'none'}")
        return found[0]
    return [_MATCH.sub(one, a) for a in argv]


def command_for(argv: list[str], cmssw: bool, cmssw_init: str) -> tuple[list[str], dict[str, str]]:
    """argv and environment of a step; CMSSW steps get the init snippet and a clean env."""
    if not cmssw:
        return argv, dict(os.environ)
    env = clean_environment(dict(os.environ))
    if not cmssw_init:
        return argv, env
    # The release the step really runs (provenance), written after init; a constant line.
    release = f"printf '%s\\n' \"${{CMSSW_VERSION:-}}\" > {provenance.CMSSW_RELEASE_FILE}"
    return ["bash", "-c", f"{cmssw_init}\n{release}\nexec {shlex.join(argv)}\n"], env


def find_output(workdir: Path, pattern: str) -> Path | None:
    """The output file: a plain name, or a glob that must match exactly one file."""
    if not any(c in pattern for c in "*?["):
        return workdir / pattern if (workdir / pattern).is_file() else None
    found = [p for p in workdir.glob(pattern) if p.is_file()]
    return found[0] if len(found) == 1 else None


def _tail(path: Path, n: int = TAIL_LINES) -> str:
    try:
        with open(path, "r", errors="replace") as fh:
            return "".join(deque(fh, maxlen=n))
    except FileNotFoundError:
        return ""


def stop_check() -> Callable[[], bool] | None:
    """How a running step learns that its attempt is over although its thread still runs.

    Dask cannot stop a task's thread: when the driver cancels the future (``cancel``,
    ``exit``, the driver stopping) the worker only marks the task ``cancelled`` and waits
    for the thread. The step loop therefore asks the worker every 0.2 s (one dict look-up)
    whether its key is still wanted, and whether the worker is closing; if not, it kills
    the step's process group. Outside a Dask worker (``BXRun --run``, tests) nothing stops
    a step but its end.
    """
    try:
        from distributed import get_worker

        worker = get_worker()
        key = worker.get_current_task()
    except Exception:
        return None

    def stopped() -> bool:
        ts = worker.state.tasks.get(key)
        if ts is None or ts.state in ("cancelled", "released", "forgotten"):
            return True
        return getattr(worker.status, "name", "") in ("closing", "closed", "failed")
    return stopped


def _describe_usage(outcome: StepProcess) -> str:
    return (f"{outcome.wall:.2f} s (user {outcome.user:.2f} s, sys {outcome.sys:.2f} s, "
            f"max RSS {outcome.maxrss_kib / 1024:.1f} MiB)")


def run_step(step: Step, workdir: Path, log_path: Path, cmssw_init: str, task_id: str,
             should_stop: Callable[[], bool] | None = None,
             extra_env: dict[str, str] | None = None, memory_limit: int | None = None,
             records: list | None = None) -> dict[str, Any]:
    """Run one step through this process's step server (:mod:`timecal_core.run.step_server`): in its
    own session, killed with its process group when ``should_stop()`` turns true, the
    worker dies or the group exceeds ``memory_limit`` bytes. Returns what params.json
    records of it (also appended to ``records``, failed or not); raises :class:`TaskFailed`."""
    with open(log_path, "ab", buffering=0) as log:
        try:
            resolved = resolve_matches(step.argv, workdir)
        except FileNotFoundError as exc:
            log.write(f"\n=== step {step.name}: {exc}\n".encode())
            raise TaskFailed(task_id, step.name, None, _tail(log_path), causes.TASK) from None
        python = step.python
        warm = bool(python) and warm_enabled()
        if python and step.cmssw:
            log.write(f"\n=== step {step.name}: a python step cannot be a CMSSW step\n".encode())
            raise TaskFailed(task_id, step.name, None, _tail(log_path), causes.TASK)
        if warm:
            request = {"python": python, "argv": resolved, "env": dict(os.environ)}
            shown = f"{python} {shlex.join(resolved)} (warm)"
        elif python:
            argv = [sys.executable, "-m", "timecal_core.run.step_server", "run", python, *resolved]
            request = {"argv": argv, "env": dict(os.environ)}
            shown = shlex.join(argv)
        else:
            argv, env = command_for(resolved, step.cmssw, cmssw_init)
            request = {"argv": argv, "env": env}
            shown = shlex.join(resolved)
        log.write(f"\n=== step {step.name}: {shown}\n".encode())
    request.update(cwd=str(workdir), log=str(log_path), memory_limit=memory_limit)
    if extra_env:
        request["env"] = {**request["env"], **extra_env}
    oom_kills = memcg.oom_kills()
    try:
        outcome = warm_server().run(request, should_stop)
    except ServerLost as exc:
        with open(log_path, "a") as log:
            log.write(f"{exc}\n")
        raise TaskFailed(task_id, step.name, None, _tail(log_path), causes.NODE) from None
    record = {"name": step.name, "exit_code": outcome.exit_code, "signal": outcome.signal,
              "warm": warm, "wall": round(outcome.wall, 4), "user": round(outcome.user, 4),
              "sys": round(outcome.sys, 4), "maxrss_kib": outcome.maxrss_kib}
    if records is not None:
        records.append(record)
    if outcome.stopped:
        with open(log_path, "a") as log:
            log.write(f"--- step {step.name} killed with its process group: the attempt was "
                      "cancelled or its worker is closing\n")
        raise TaskFailed(task_id, step.name, None, _tail(log_path), causes.NODE)
    if outcome.oom is not None:
        record["oom"] = True
        with open(log_path, "a") as log:
            log.write(f"--- step {step.name} killed: its processes used "
                      f"{outcome.oom['rss'] / 2**20:.0f} MiB, above the worker's memory limit of "
                      f"{outcome.oom['limit'] / 2**20:.0f} MiB, after {_describe_usage(outcome)}\n"
                      f"out of memory: {outcome.oom['rss'] / 2**20:.0f} MiB > limit "
                      f"{outcome.oom['limit'] / 2**20:.0f} MiB\n")
        raise TaskFailed(task_id, step.name, None, _tail(log_path), causes.OOM)
    if outcome.signal == signal.SIGKILL and oom_kills is not None and (memcg.oom_kills() or 0) > oom_kills:
        # The kernel's OOM killer in the job's memory cgroup (the batch system's limit).
        record["oom"] = True
        limit = memcg.limit()
        where = f"the job's memory cgroup (limit {limit / 2**20:.0f} MiB)" if limit else "its memory cgroup"
        with open(log_path, "a") as log:
            log.write(f"--- step {step.name} killed by the kernel's out-of-memory killer: {where} was full, "
                      f"after {_describe_usage(outcome)}\nout of memory: killed by the kernel in {where}\n")
        raise TaskFailed(task_id, step.name, None, _tail(log_path), causes.OOM)
    if outcome.signal is not None:
        try:
            name = signal.Signals(outcome.signal).name
        except ValueError:
            name = "unknown signal"
        with open(log_path, "a") as log:
            log.write(f"--- step {step.name} killed by signal {outcome.signal} ({name}) after "
                      f"{_describe_usage(outcome)}\nkilled by signal {outcome.signal} ({name})\n")
        raise TaskFailed(task_id, step.name, None, _tail(log_path),
                         causes.step_cause(None, outcome.signal, False, outcome.maxrss_kib,
                                           memory_limit))
    if outcome.exit_code != 0:
        tail = _tail(log_path)  # before the summary: the step's own last words explain it
        with open(log_path, "a") as log:
            log.write(f"--- step {step.name} ended: exit code {outcome.exit_code} after "
                      f"{_describe_usage(outcome)}\n")
        raise TaskFailed(task_id, step.name, outcome.exit_code, tail)
    with open(log_path, "a") as log:
        log.write(f"--- step {step.name} ended: exit code 0 after {_describe_usage(outcome)}\n")
    return record


def _results(production_dir: str | Path) -> Path:
    return Path(production_dir) / RESULTS


def _worker_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_memory_limit() -> int | None:
    """The memory limit of the Dask worker running this task (bytes), None outside one."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except Exception:
        return None
    manager = getattr(worker, "memory_manager", None)
    limit = getattr(manager, "memory_limit", None) or getattr(worker, "memory_limit", None)
    return int(limit) if limit else None


def _resources(start: float, end: float, steps: list[dict], workdir: Path | None,
               cfg_files: list[Path], output: Path | None = None) -> dict[str, Any]:
    """What params.json and the ledger record of an attempt (see provenance)."""
    software = dict(provenance.software_versions())
    if workdir is not None:
        software.update(provenance.cmssw_software(workdir, cfg_files))
    if "cmssw" not in software and cfg_files and os.environ.get("CMSSW_VERSION"):
        software["cmssw"] = os.environ["CMSSW_VERSION"]
    out: dict[str, Any] = {"host": provenance.host(), "worker": _worker_label(),
                           "job_id": provenance.batch_job_id(), "start": start, "end": end,
                           **provenance.usage(steps), "software": software}
    if output is not None:
        try:
            out["output_bytes"] = output.stat().st_size
        except OSError:
            pass
    return out


def _cfg_files(steps) -> list[Path]:
    """The cfg file of each CMSSW step (``cmsRun CFG ...``), for its hash."""
    out = []
    for step in steps:
        if step.cmssw and len(step.argv) >= 2 and Path(step.argv[0]).name == "cmsRun":
            out.append(Path(step.argv[1]))
    return out


def execute_task(spec: TaskSpec, production_dir: str, cmssw_init: str = "",
                 cmssw_dir: str | None = None, layout: str | None = None) -> TaskResult:
    """Run ``spec`` to completion (or raise :class:`TaskFailed`). Idempotent: a task whose
    result is already on disk is not run again. ``layout``: the output layout chosen for
    the production (the script's ``layouts``), given to its plan and steps and recorded."""
    from ..contract.plugins import get_registry

    results = _results(production_dir)
    final = results / spec.dirname
    start = time.time()
    script = get_registry().script(spec.script).item
    record = completed(results, spec.dirname, spec.task_id, script.verify)
    if record is not None:
        return TaskResult(spec.task_id, str(final / record["output"]), start, time.time(),
                          _worker_label(), reused=True)
    workdir = real_directory(results / TMP) / f"{spec.dirname}.{uuid.uuid4().hex[:8]}"
    workdir.mkdir()
    log_path = workdir / LOG_NAME
    steps: list[dict] = []
    cfg_files: list[Path] = []
    try:
        plan = script.plan(TaskRequest(dict(spec.params), workdir,
                                       Path(cmssw_dir) if cmssw_dir else None, layout))
        should_stop = stop_check()
        memory_limit = worker_memory_limit()
        cfg_files = _cfg_files(plan.steps)
        embedded = {"params": dict(spec.params), "metadata": dict(plan.metadata), "script": spec.script,
                    "task_id": spec.task_id, **({"layout": layout} if layout else {})}
        extra_env = {TASK_PARAMETERS_ENV: json.dumps(embedded, sort_keys=True)}
        for step in plan.steps:
            run_step(step, workdir, log_path, cmssw_init, spec.task_id, should_stop, extra_env,
                     memory_limit, steps)
        if plan.finalize is not None:
            try:
                plan.finalize(workdir)
            except Exception as exc:
                with open(log_path, "a") as log:
                    log.write(f"finalize failed: {type(exc).__name__}: {exc}\n")
                raise TaskFailed(spec.task_id, "finalize", None, _tail(log_path), causes.TASK) from None
        output = find_output(workdir, plan.output)
        if output is None:
            with open(log_path, "a") as log:
                log.write(f"expected one output file {plan.output} in {workdir}, found "
                          f"{sorted(p.name for p in workdir.iterdir())}\n")
            raise TaskFailed(spec.task_id, "output", None, _tail(log_path), causes.TASK)
        output_format = get_registry().output_formats.get(output.suffix)
        if output_format is not None:  # e.g. .root (timecal_core.cms.plugin)
            output_format.item.store(output, embedded)
        problem = script.verify(str(output)) if script.verify is not None else None
        if problem is not None:
            with open(log_path, "a") as log:
                log.write(f"output {output.name} is not readable: {problem}\n")
            raise TaskFailed(spec.task_id, "output", None, _tail(log_path), causes.TASK)
        end = time.time()
        resources = _resources(start, end, steps, workdir, cfg_files, output)
        record = {"task_id": spec.task_id, "script": spec.script, "params": dict(spec.params),
                  "metadata": dict(plan.metadata), "output": output.name, "steps": steps,
                  **({"layout": layout} if layout else {}), **resources}
        tmp_params = workdir / (PARAMS_NAME + ".part")
        tmp_params.write_text(json.dumps(record, indent=1, sort_keys=True))
        os.replace(tmp_params, workdir / PARAMS_NAME)  # params.json last
        if not _rename_into_place(workdir, results, spec, script.verify):
            shutil.rmtree(workdir, ignore_errors=True)  # a concurrent attempt finished first
            return TaskResult(spec.task_id, str(final / output.name), start, end,
                              _worker_label(), reused=True)
        _remove_other_attempts(results, spec.dirname)
        return TaskResult(spec.task_id, str(final / output.name), start, end, _worker_label(),
                          resources=resources)
    except TaskFailed as exc:
        exc.resources = _resources(start, time.time(), steps, workdir, cfg_files)
        _keep_failed_log(results, spec.dirname, log_path)
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    except Exception as exc:
        user = isinstance(exc, UserError)  # a value the plan could not check: final
        with open(log_path, "a") as log:
            log.write(f"user error: {exc}\n" if user else
                      f"internal error: {type(exc).__name__}: {exc}\n")
        tail = _tail(log_path)
        _keep_failed_log(results, spec.dirname, log_path)
        failed = TaskFailed(spec.task_id, "setup", None, tail, causes.USER if user else causes.TASK)
        failed.resources = _resources(start, time.time(), steps, workdir, cfg_files)
        shutil.rmtree(workdir, ignore_errors=True)
        raise failed from exc
    except BaseException:  # interrupted (Ctrl-C in BXRun --run): nothing half-done stays
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _rename_into_place(workdir: Path, results: Path, spec: TaskSpec, verify) -> bool:
    """Rename a finished work directory to ``results/<dirname>``; False when another attempt
    of the task got there first (its result is kept). Whatever else stands there (a symbolic
    link, a file, an incomplete directory: the planner moves these aside, but the user may
    make one while the task runs) is moved to ``results/.stale/`` first, never followed and
    never deleted: the new output is never lost."""
    final = results / spec.dirname
    for _ in range(3):
        try:
            os.rename(workdir, final)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                raise
        if completed(results, spec.dirname, spec.task_id, verify) is not None:
            return False
        move_aside(results, [spec.dirname])
    os.rename(workdir, final)  # a fourth obstacle in a row: its error says what stands there
    return True


def _remove_other_attempts(results: Path, dirname: str) -> None:
    """Once a task is done, work directories of its earlier attempts (a worker that died,
    whose server killed the steps but could not clean up) are stale: remove them, so that
    a complete production leaves nothing under ``results/.tmp``. They are kept until then
    because the driver reads their presence to tell a started attempt from an unstarted one."""
    tmp = results / TMP
    for entry in tmp.glob(glob.escape(dirname) + ".*"):
        shutil.rmtree(entry, ignore_errors=True)


def _keep_failed_log(results: Path, dirname: str, log_path: Path) -> None:
    dest = real_directory(results / FAILED_LOGS)
    if log_path.is_file():
        shutil.copyfile(log_path, dest / f"{dirname}.log")


def log_path(production_dir: str | Path, dirname: str) -> Path | None:
    """Where a task's log is: finished, running (newest attempt) or last failed attempt."""
    results = _results(production_dir)
    done = results / dirname / LOG_NAME
    if done.is_file():
        return done
    running = sorted((results / TMP).glob(f"{dirname}.*/{LOG_NAME}"), key=lambda p: p.stat().st_mtime)
    if running:
        return running[-1]
    failed = results / FAILED_LOGS / f"{dirname}.log"
    return failed if failed.is_file() else None


def clear_stale_workdirs(production_dir: str | Path) -> int:
    """Remove work directories left by attempts of a previous (killed) run; call with the
    production lock held, before submitting."""
    tmp = _results(production_dir) / TMP
    if not tmp.is_dir() or tmp.is_symlink():  # a link is not ours to empty (real_directory)
        return 0
    n = 0
    for entry in tmp.iterdir():
        shutil.rmtree(entry, ignore_errors=True)
        n += 1
    return n


class Packer:
    """Many tasks' parameters as tuples of shared values: the names once per distinct set,
    each distinct value once (~200 bytes a task; a decoded dict per task costs ~3 kB, 300 MB
    at 100,000 tasks). ``Packer.Params(packed)`` reads one back as a mapping."""

    def __init__(self):
        self._names: dict[tuple, tuple] = {}
        self._values: dict = {}

    def pack(self, params: Mapping[str, Any]) -> tuple[tuple, tuple]:
        names = tuple(params)
        return self._names.setdefault(names, names), tuple(self._intern(v) for v in params.values())

    def _intern(self, value: Any) -> Any:
        try:
            return self._values.setdefault((type(value), value), value)
        except TypeError:  # a list: kept as it is
            return value

    class Params(Mapping):
        """A packed parameter set read as a mapping."""

        def __init__(self, packed: tuple[tuple, tuple]):
            self._names, self._values = packed

        def __getitem__(self, name):
            try:
                return self._values[self._names.index(name)]
            except ValueError:
                raise KeyError(name) from None

        def __iter__(self):
            return iter(self._names)

        def __len__(self) -> int:
            return len(self._names)


class FinishedTasks(Sequence):
    """Every complete result on disk (the rule of
    :func:`timecal_core.plan.completion.scan_without_plan`), in task-id order, each read from its
    ``params.json`` when asked for: a listing holds ids and paths only, so aggregating or
    plotting 100,000 tasks never holds 100,000 decoded records at once (each pass over it
    reads them again, about 30 µs a task). ``amend(task) -> task`` may complete each one
    (the ledger's runtime and attempts)."""

    def __init__(self, production_dir: str | Path,
                 amend: Callable[[FinishedTask], FinishedTask] | None = None, lean: bool = False):
        """``lean``: each task's output and parameters (packed) are kept from the one pass
        that checks them, and the tasks come without provenance, runtime or attempts: what
        plotScan and runCalibration need, without reading 30,000 records twice."""
        from ..plan.completion import scan_without_plan

        packer = Packer() if lean else None
        keep = (lambda rec: (rec["output"], packer.pack(rec["params"]))) if lean else None
        done = scan_without_plan(_results(production_dir), script_verify(production_dir),
                                 keep_records=False, keep=keep).done
        self._entries = sorted((tid, path, kept) for tid, (path, kept) in done.items())
        self._amend = amend

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._load(*entry) for entry in self._entries[index]]
        return self._load(*self._entries[index])

    def __iter__(self):
        for entry in self._entries:
            yield self._load(*entry)

    def _load(self, task_id: str, path: str, kept=None) -> FinishedTask:
        from ..plan.completion import _record
        from .provenance import flat

        if kept is not None:
            output, packed = kept
            return FinishedTask(task_id, Packer.Params(packed), Path(path), Path(path) / output, None, None)
        rec = _record(path)
        if rec is None:  # removed since it was listed
            raise UserError(f"{path}: {PARAMS_NAME} vanished or became unreadable while reading "
                            f"the results; rerun")
        directory = Path(path)
        runtime = rec["end"] - rec["start"] if "end" in rec and "start" in rec else None
        task = FinishedTask(task_id, rec["params"], directory, directory / rec["output"], runtime,
                            None, flat(rec))
        return self._amend(task) if self._amend is not None else task


def script_verify(production_dir: str | Path):
    """The ``verify`` of the script that made a production (infiles/production.json), or
    None when the production does not say or the script is not installed here."""
    from ..contract.plugins import get_registry

    try:
        record = json.loads((Path(production_dir) / "infiles" / "production.json").read_text())
        return get_registry().script(record["script"]).item.verify
    except (OSError, ValueError, KeyError, TypeError, UserError):
        return None


def finished_tasks(production_dir: str | Path) -> list[FinishedTask]:
    """Every complete result on disk, as aggregators see it: the rule of
    :func:`timecal_core.plan.completion.scan_without_plan` (one per task, output present and
    readable by its script's ``verify``)."""
    from .provenance import flat
    from ..plan.completion import scan_without_plan

    out = []
    scan = scan_without_plan(_results(production_dir), script_verify(production_dir))
    for tid, (path, rec) in scan.done.items():
        directory = Path(path)
        runtime = rec["end"] - rec["start"] if "end" in rec and "start" in rec else None
        out.append(FinishedTask(tid, rec["params"], directory, directory / rec["output"], runtime,
                                None, flat(rec)))
    return out
