"""The interactive production monitor: a cmd2 shell running while the cluster computes.

It keeps the seed tool's loop (every interval: retry failed tasks, release finished ones,
print task and cluster status, prompt) and its twelve commands, and adds what a physicist
following a 30,000-task production reaches for: task tables, logs one command away, failures
grouped by error, scaling, aggregation. The periodic status arrives as cmd2 asynchronous
alerts, printed above the prompt without clobbering what the user is typing.

The shell only talks to :class:`timecal_core.driver.Engine`; it holds no production state
of its own, so leaving it (``exit``) leaves a consistent ledger behind.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import cmd2
from cmd2 import Choices, Cmd2ArgumentParser, Completions, with_argparser

from .driver import MIN_TICK_GAP
from .ledger import CANCELLED, DONE, ERROR, FAILED, PENDING, RUNNING, STATES, STATE_HELP
from .security import describe as describe_security
from .status import format_duration, render_cluster, render_errors, render_table

LOG_LINES = 30
TABLE_LIMIT = 50
HIDDEN_BUILTINS = ("alias", "macro", "edit", "run_pyscript", "run_script", "shell", "shortcuts")


def history_path() -> Path:
    """Shared by every production of the user, like a shell's history."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    path = Path(base).expanduser() / "timecal" / "history"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _state_choices(_app=None) -> Choices:
    return Choices.from_values(STATES)


def _task_completer(app: MonitorShell, text: str, line: str, begidx: int, endidx: int) -> Completions:
    return Completions.from_values(app.engine.ledger.find(text, limit=200))


def _task_parser(description: str, nargs: str = "*") -> Cmd2ArgumentParser:
    parser = Cmd2ArgumentParser(description=description)
    parser.add_argument("tasks", nargs=nargs, metavar="TASK", completer=_task_completer,
                        help="task id (a unique prefix is enough)")
    return parser


def _tasks_parser() -> Cmd2ArgumentParser:
    parser = Cmd2ArgumentParser(description="Table of tasks, most recently changed first. States: "
                                + "; ".join(f"{s}: {h}" for s, h in STATE_HELP.items()))
    parser.add_argument("state", nargs="?", choices_provider=_state_choices,
                        help="only tasks in this state")
    parser.add_argument("-n", "--limit", type=int, default=TABLE_LIMIT,
                        help=f"rows to show (default {TABLE_LIMIT}, 0 for all)")
    return parser


def _log_parser() -> Cmd2ArgumentParser:
    parser = _task_parser("Last lines of a task's log (finished, running or last failed attempt).",
                          nargs=1)
    parser.add_argument("-n", "--lines", type=int, default=LOG_LINES,
                        help=f"lines to show (default {LOG_LINES})")
    return parser


def _interval_parser() -> Cmd2ArgumentParser:
    parser = Cmd2ArgumentParser(description="Show or set the seconds between status updates and "
                                            "automatic retries.")
    parser.add_argument("seconds", nargs="?", type=float, help="new interval in seconds")
    return parser


def _verbose_parser() -> Cmd2ArgumentParser:
    parser = Cmd2ArgumentParser(description="Toggle (or set) a line for every task that "
                                            "finishes or fails.")
    parser.add_argument("switch", nargs="?", choices=("on", "off"))
    return parser


def _scale_parser() -> Cmd2ArgumentParser:
    parser = Cmd2ArgumentParser(description="Ask the cluster for N workers (stops adaptive scaling).")
    parser.add_argument("workers", type=int, help="number of workers")
    return parser


def _adapt_parser() -> Cmd2ArgumentParser:
    parser = Cmd2ArgumentParser(description="Let Dask scale the cluster between MIN and MAX workers "
                                            "following the load.")
    parser.add_argument("minimum", type=int)
    parser.add_argument("maximum", type=int)
    return parser


def _no_args(description: str):
    return lambda: Cmd2ArgumentParser(description=description)


class MonitorShell(cmd2.Cmd):
    """``help`` lists the commands, ``help CMD`` explains one."""

    DEFAULT_CATEGORY = "Production monitor"

    def __init__(self, engine, history_file: Path | None = None):
        super().__init__(allow_cli_args=False, auto_suggest=False,
                         persistent_history_file=str(history_file or history_path()))
        self.engine = engine
        self.interval = float(engine.options.interval)
        self.prompt = self._prompt_text()
        self.hidden_commands.extend(HIDDEN_BUILTINS)
        self.stopped = False  # left with tasks unfinished
        self._close_requested = False
        self._closing = threading.Event()
        self._next_tick = time.monotonic() + self.interval
        self._last_tick = 0.0
        self._announced_end = False
        self._backend_commands()
        engine.notify = lambda text: self.add_alert(msg=text)

    # ------------------------------------------------------------------ loop machinery
    def _prompt_text(self) -> str:
        counts = self.engine.ledger.counts()
        return f"timecal {counts[DONE]}/{sum(counts.values())}> "

    def _ticker(self) -> None:
        """The seed's monitoring loop, in the background: every interval (or as soon as
        nothing is left in flight) retry, supervise, and print the status."""
        while not self._closing.is_set():
            idle = self.engine.wait_idle(min(1.0, max(0.05, self._next_tick - time.monotonic())))
            if self._closing.is_set():
                return
            now = time.monotonic()
            due = now >= self._next_tick
            early = idle and not self._announced_end and now - self._last_tick >= MIN_TICK_GAP
            if not (due or early):
                continue
            self._last_tick = now
            self._next_tick = now + self.interval
            try:
                notices = self.engine.tick()
                text = "\n".join(notices + [self.engine.status_text()])
            except Exception as exc:  # the cluster went away, the scheduler is busy...
                self.add_alert(msg=f"monitor: {type(exc).__name__}: {exc}")
                continue
            if self.engine.finished():
                if self.engine.all_done():
                    self.request_close()  # run_shell prints the final status
                    return
                if not self._announced_end:
                    counts = self.engine.ledger.counts()
                    text += (f"\nnothing left to run: {counts[ERROR]} failed for good, "
                             f"{counts[CANCELLED]} cancelled. 'errors' and 'log TASK' show why, "
                             "'retry' tries again, 'exit' leaves.")
                    self._announced_end = True
            else:
                self._announced_end = False
            self.add_alert(msg=text, prompt=self._prompt_text())

    def request_close(self) -> None:
        """Leave the prompt from the ticker thread once the production is complete."""
        self._close_requested = True
        app = getattr(self.main_session, "app", None)
        if app is not None and app.is_running and getattr(app, "loop", None) is not None:
            app.loop.call_soon_threadsafe(lambda: app.exit(exception=EOFError()) if app.is_running
                                          else None)

    def pre_prompt(self) -> None:
        if self._close_requested:
            from prompt_toolkit.application import get_app

            get_app().exit(exception=EOFError())

    def postcmd(self, stop: bool, statement) -> bool:
        return stop or self._close_requested

    def preloop(self) -> None:
        self._thread = threading.Thread(target=self._ticker, name="timecal-monitor", daemon=True)
        self._thread.start()

    def postloop(self) -> None:
        self._closing.set()
        self._thread.join(timeout=5)

    def _resolve(self, given: list[str]) -> list[str] | None:
        """Full task ids from ids or unique prefixes; prints what is wrong and returns None."""
        out = []
        for prefix in given:
            matches = self.engine.ledger.find(prefix, limit=2)
            if len(matches) != 1:
                what = "no task" if not matches else "several tasks"
                self.perror(f"{prefix}: {what} with this id; 'tasks' lists them")
                return None
            out.append(matches[0])
        return out

    # ------------------------------------------------------------------ the seed's commands
    @with_argparser(_no_args("Print the status: tasks per state, progress with rate and ETA, "
                             "cluster, batch jobs."))
    def do_status(self, _args) -> None:
        self.poutput(self.engine.status_text())

    @with_argparser(_interval_parser)
    def do_interval(self, args) -> None:
        if args.seconds is None:
            self.poutput(f"interval: {self.interval:g} s")
            return
        if args.seconds <= 0:
            self.perror("interval: give a positive number of seconds")
            return
        self.interval = args.seconds
        self._next_tick = time.monotonic() + self.interval
        self.poutput(f"interval set to {self.interval:g} s")

    @with_argparser(_task_parser("Resubmit failed tasks now (automatic at every interval). "
                                 "Without TASK: every failed task, including those failed for "
                                 "good, which get one more attempt."))
    def do_retry(self, args) -> None:
        ids = self._resolve(args.tasks) if args.tasks else \
            self.engine.ledger.ids_in_state(FAILED, ERROR)
        if ids is None:
            return
        changed = self.engine.retry(ids)
        self._announced_end = False
        self.poutput(f"resubmitted {len(changed)} task(s)" +
                     ("" if changed or not ids else " (the others are not failed or cancelled)"))

    @with_argparser(_task_parser("Cancel tasks (pending, running or failed); 'cancel all' "
                                 "cancels everything not finished. Cancelled tasks run again "
                                 "on the next BXRun or with 'retry TASK'."))
    def do_cancel(self, args) -> None:
        if not args.tasks:
            self.perror("cancel: give task ids, or 'all'")
            return
        if args.tasks == ["all"]:
            ids = self.engine.ledger.ids_in_state(PENDING, RUNNING, FAILED)
        else:
            ids = self._resolve(args.tasks)
            if ids is None:
                return
        self.poutput(f"cancelled {len(self.engine.cancel(ids))} task(s)")

    @with_argparser(_no_args("Release finished futures and collect garbage; reports what the "
                             "driver holds."))
    def do_clean(self, _args) -> None:
        self.poutput(self.engine.clean())

    @with_argparser(_no_args("The Dask client: scheduler address, dashboard, workers."))
    def do_client(self, _args) -> None:
        client = self.engine.client
        self.poutput(f"{client!r}\nscheduler {client.scheduler.address}"
                     f"\ndashboard {self.engine.running.dashboard_link or '-'}"
                     f"\nsecurity {describe_security(self.engine.running.security)}")

    @with_argparser(_no_args("The cluster: workers asked for and connected, threads, memory, "
                             "batch jobs."))
    def do_cluster(self, _args) -> None:
        self.poutput(f"{self.engine.running.cluster!r} ({self.engine.running.backend} backend)")
        self.poutput(render_cluster(self.engine.cluster_info()))
        jobs = self.engine.running.batch_jobs()
        if jobs:
            self.poutput(f"{len(jobs)} batch jobs ('jobs' lists them)")

    @with_argparser(_no_args("Futures the driver holds, by Dask status, and tasks queued in "
                             "the driver."))
    def do_futures(self, _args) -> None:
        summary = self.engine.futures_summary()
        self.poutput(render_table(("futures", "count"), sorted(summary.items())))

    @with_argparser(_verbose_parser)
    def do_verbose(self, args) -> None:
        self.engine.verbose = (not self.engine.verbose) if args.switch is None else args.switch == "on"
        self.poutput(f"verbose {'on' if self.engine.verbose else 'off'}")

    @with_argparser(_no_args("Open a Python console holding engine, client, cluster, ledger "
                             "and plan (status updates pause; exit() or Ctrl-D returns)."))
    def do_debug(self, _args) -> None:
        import code

        e = self.engine
        namespace = {"engine": e, "client": e.client, "cluster": e.running.cluster,
                     "running": e.running, "ledger": e.ledger, "plan": e.plan,
                     "security": e.running.security}  # Client(cluster.scheduler_address, security=security)
        try:
            code.interact(banner="debug console: " + ", ".join(sorted(namespace)), local=namespace,
                          exitmsg="back to the monitor")
        except SystemExit:
            pass

    @with_argparser(_no_args("Leave the monitor. With tasks still running, asks first; they "
                             "stop and resume on the next run of the same command."))
    def do_exit(self, _args) -> bool:
        if self._close_requested or self.engine.finished():
            return True
        counts = self.engine.ledger.counts()
        left = counts[PENDING] + counts[RUNNING] + counts[FAILED]
        try:
            answer = self.read_input(f"{left} task(s) not finished; stop them (they resume on the "
                                     "next run)? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            self.poutput("continuing")
            return False
        self.engine.stop("stopped by the user")
        self.stopped = True
        return True

    def do_quit(self, args) -> bool:
        """Same as exit."""
        return self.do_exit("")

    def do__eof(self, args) -> bool:
        """Ctrl-D: same as exit."""
        self.poutput("")
        return self.do_exit("")

    # ------------------------------------------------------------------ additions
    @with_argparser(_tasks_parser)
    def do_tasks(self, args) -> None:
        rows = self.engine.ledger.tasks(args.state, limit=None if args.limit == 0 else args.limit + 1)
        more = args.limit and len(rows) > args.limit
        rows = rows[:args.limit] if args.limit else rows
        table = [(t.task_id, t.state, t.attempts, t.worker or "",
                  format_duration(t.runtime) if t.runtime is not None else "",
                  (t.reason or "") if t.state in (FAILED, ERROR) else t.dirname) for t in rows]
        if not table:
            self.poutput(f"no {args.state + ' ' if args.state else ''}tasks")
            return
        self.poutput(render_table(("task", "state", "attempts", "worker", "runtime",
                                   "error / directory"), table))
        if more:
            self.poutput(f"(first {args.limit}; 'tasks {args.state or ''} -n 0' shows all)")

    @with_argparser(_log_parser)
    def do_log(self, args) -> None:
        from .tasks import log_path

        ids = self._resolve(args.tasks)
        if ids is None:
            return
        task = self.engine.ledger.task(ids[0])
        path = log_path(self.engine.plan.production_dir, task.dirname)
        self.poutput(f"task {task.task_id} ({task.state}, {task.attempts} attempt(s)) "
                     f"{task.dirname}")
        if path is None:
            self.poutput("no log yet: the task has not started")
            if task.error:
                self.poutput(task.error.rstrip())
            return
        with open(path, errors="replace") as fh:
            lines = fh.readlines()[-args.lines:]
        self.poutput(f"--- {path} (last {len(lines)} lines)")
        self.poutput("".join(lines).rstrip())

    @with_argparser(_no_args("Failed tasks grouped by error, with counts and one example each "
                             "('log EXAMPLE' shows its log)."))
    def do_errors(self, _args) -> None:
        self.poutput(render_errors(self.engine.ledger))

    @with_argparser(_scale_parser)
    def do_scale(self, args) -> None:
        if args.workers < 0:
            self.perror("scale: the number of workers cannot be negative")
            return
        self.engine.running.scale(args.workers)
        self.poutput(f"asked for {args.workers} workers")

    @with_argparser(_adapt_parser)
    def do_adapt(self, args) -> None:
        if not 0 <= args.minimum <= args.maximum:
            self.perror("adapt: need 0 <= MIN <= MAX")
            return
        self.engine.running.adapt(args.minimum, args.maximum)
        self.poutput(f"adaptive scaling between {args.minimum} and {args.maximum} workers")

    @with_argparser(_no_args("Run the aggregators now over the tasks finished so far (they run "
                             "by themselves once every task is done)."))
    def do_aggregate(self, _args) -> None:
        from .driver import run_aggregators

        e = self.engine
        run_aggregators(e.plan.production_dir, e.plan.script.name, e.ledger, e.timerc,
                        e.verbose, out=self.poutput)

    @with_argparser(_no_args("The batch system's jobs of this cluster (none for local)."))
    def do_jobs(self, _args) -> None:
        jobs = self.engine.running.batch_jobs()
        if not jobs:
            self.poutput(f"no batch jobs ({self.engine.running.backend} backend)")
            return
        self.poutput(render_table(("job", "state", "reason", "worker", "runtime"),
                                  [(j.job_id, j.state, j.reason, j.worker, j.runtime) for j in jobs]))

    def _backend_commands(self) -> None:
        """Commands a backend offers (``RunningCluster.commands``), unless they would hide
        one of the monitor's own."""
        for name, (function, help_text) in dict(getattr(self.engine.running, "commands", {})).items():
            if hasattr(self, f"do_{name}"):
                continue

            def command(_self, statement, _function=function):
                try:
                    self.poutput(_function(statement.args if hasattr(statement, "args") else
                                           str(statement)))
                except Exception as exc:
                    self.perror(f"{type(exc).__name__}: {exc}")

            command.__doc__ = help_text
            cmd2.categorize(command, f"{self.engine.running.backend} backend")
            setattr(self, f"do_{name}", command.__get__(self))


def run_shell(engine) -> bool:
    """Run the monitor until the production completes or the user leaves. Returns False
    when the user stopped it with tasks unfinished."""
    shell = MonitorShell(engine)
    shell.cmdloop(intro=engine.status_text() + "\nmonitor: 'help' lists the commands, "
                                              "'exit' leaves")
    if shell.stopped:
        return False
    print(engine.status_text())
    return True
