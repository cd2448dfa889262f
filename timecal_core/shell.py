"""The interactive production monitor: a cmd2 shell beside a running production.

It keeps the seed tool's loop (every interval the status appears, failed tasks are retried)
and its commands, and adds what a physicist following a 30,000-task production reaches
for: task tables, logs one command away, failures grouped by error, scaling, aggregation.

The shell is a thin client: it holds no production state and talks to the driver only
through a channel (``request(op, **args) -> dict``, see :mod:`timecal_core.control`), so
it works the same whether the driver is in this process or, later, in another one. The
driver's heartbeat publishes the status; the shell polls for what it has not shown yet and
prints it as cmd2 asynchronous alerts above the prompt, without clobbering what the user
is typing. Backend commands arrive as a cmd2 ``CommandSet``; ``interval`` and ``verbose``
are cmd2 settables (``set interval 10``) as well as the seed's commands.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import cmd2
from cmd2 import Choices, Cmd2ArgumentParser, CommandSet, Completions, with_argparser

from .control import ControlError
from .ledger import ERROR, FAILED, STATE_HELP, STATES
from .status import format_duration, render_errors, render_table

LOG_LINES = 30
TABLE_LIMIT = 50
POLL = 0.25  # seconds between two looks at what the driver published
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
    try:
        return Completions.from_values(app.ask("find", prefix=text, limit=200)["ids"])
    except ControlError:
        return Completions.from_values([])


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
                                            "automatic retries (also: set interval N).")
    parser.add_argument("seconds", nargs="?", type=float, help="new interval in seconds")
    return parser


def _verbose_parser() -> Cmd2ArgumentParser:
    parser = Cmd2ArgumentParser(description="Toggle (or set) a line for every task that "
                                            "finishes or fails (also: set verbose true).")
    parser.add_argument("switch", nargs="?", choices=("on", "off"))
    return parser


def _scale_parser() -> Cmd2ArgumentParser:
    parser = Cmd2ArgumentParser(description="Ask the cluster for N workers (stops adaptive "
                                            "scaling). Going down, idle workers go first; a "
                                            "busy one hands its task back without costing "
                                            "it an attempt.")
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


def _positive(value) -> float:
    seconds = float(value)
    if not seconds > 0:
        raise ValueError("give a positive number of seconds")
    return seconds


def _console_exit(*_args) -> None:
    """``exit()``/``quit()`` of the debug console: leave it, and only it. The builtins of
    the same name close standard input first, which would take the monitor down too."""
    raise SystemExit


def backend_command_set(backend: str, commands: list[list[str]], taken: set[str],
                        ask) -> CommandSet | None:
    """The backend's own commands (``jobs`` details, ``release``, ``remove``...) as a
    CommandSet of their own category; one that would hide a monitor command is left out."""
    methods = {}
    for name, help_text in commands:
        if name in taken:
            continue

        def command(self, statement, _name=name):
            try:
                self._cmd.poutput(ask("backend_command", name=_name, arg=statement.args)["text"])
            except ControlError as exc:
                self._cmd.perror(str(exc))

        command.__doc__ = help_text
        command.__name__ = f"do_{name}"
        methods[f"do_{name}"] = command
    if not methods:
        return None
    cls = type(f"{backend.title()}BackendCommands", (CommandSet,),
               {"DEFAULT_CATEGORY": f"{backend} backend", **methods})
    return cls()


class MonitorShell(cmd2.Cmd):
    """``help`` lists the commands, ``help CMD`` explains one."""

    DEFAULT_CATEGORY = "Production monitor"

    def __init__(self, channel, history_file: Path | None = None):
        super().__init__(allow_cli_args=False, auto_suggest=False,
                         persistent_history_file=str(history_file or history_path()))
        self.channel = channel
        summary = self.ask("summary")
        self.interval = float(summary["interval"])
        self.verbose = bool(summary["verbose"])
        self.add_settable(cmd2.Settable("interval", _positive, "seconds between status updates "
                                        "and automatic retries", self, onchange_cb=self._changed))
        self.add_settable(cmd2.Settable("verbose", bool, "a line for every task that finishes "
                                        "or fails", self, onchange_cb=self._changed))
        self.prompt = self._prompt_text(summary)
        self.hidden_commands.extend(HIDDEN_BUILTINS)
        self.stopped = False  # the user stopped the driver, or let it end: wait for its end
        self.detached = False  # left with the driver going on
        self.ended: int | None = None  # the driver's exit code, once it ended
        self._close_requested = False
        self._closing = threading.Event()
        self._seen = self.ask("updates", after=0)["last"]  # what came before the intro
        self._register_backend_commands()

    def ask(self, op: str, **args) -> dict:
        return self.channel.request(op, **args)

    # ------------------------------------------------------------------ loop machinery
    @staticmethod
    def _prompt_text(summary: dict) -> str:
        return f"timecal {summary['done']}/{summary['total']}> "

    def _changed(self, name: str, _old, new) -> None:
        self.ask("set", **{name: new})

    def _poller(self) -> None:
        """Show what the driver publishes (status every interval, notices, the end)."""
        while not self._closing.wait(POLL):
            try:
                answer = self.ask("updates", after=self._seen)
            except Exception as exc:  # the driver went away: say so once, keep the prompt
                self.add_alert(msg=f"monitor: cannot reach the driver: {exc}")
                self._closing.wait(5)
                continue
            if any(item["kind"] == "complete" for item in answer["items"]):
                # The driver aggregates now: ShellMonitor shows these items and what follows.
                self.request_close()
                return
            self._seen = answer["last"]
            texts = []
            for item in answer["items"]:
                if item["kind"] == "ended":
                    self.ended = int(item.get("code", 1))
                    self.request_close()
                    break
                texts.append(item.get("full", item["text"]))
            if texts:
                self.add_alert(msg="\n".join(texts), prompt=self._prompt_text(answer["summary"]))
            if self.ended is not None:
                return

    def request_close(self) -> None:
        """Leave the prompt from another thread (production complete, SIGTERM/SIGHUP)."""
        self._close_requested = True
        app = getattr(self.main_session, "app", None)
        if app is not None and app.is_running and getattr(app, "loop", None) is not None:
            app.loop.call_soon_threadsafe(lambda: app.exit(exception=EOFError()) if app.is_running
                                          else None)

    def termination_signal_handler(self, signum: int, _frame) -> None:
        """SIGHUP (the terminal went away) or SIGTERM while the prompt is up (cmd2 would
        ``sys.exit``): detach; the driver runs on its own and goes on."""
        self.detached = True
        self.request_close()

    def pre_prompt(self) -> None:
        if self._close_requested:
            from prompt_toolkit.application import get_app

            get_app().exit(exception=EOFError())

    def postcmd(self, stop: bool, statement) -> bool:
        return stop or self._close_requested

    def preloop(self) -> None:
        self._thread = threading.Thread(target=self._poller, name="timecal-monitor", daemon=True)
        self._thread.start()

    def postloop(self) -> None:
        self._closing.set()
        self._thread.join(timeout=5)

    def _resolve(self, given: list[str]) -> list[str] | None:
        """Full task ids from ids or unique prefixes; prints what is wrong and returns None."""
        out = []
        for prefix in given:
            matches = self.ask("find", prefix=prefix, limit=2)["ids"]
            if len(matches) != 1:
                what = "no task" if not matches else "several tasks"
                self.perror(f"{prefix}: {what} with this id; 'tasks' lists them")
                return None
            out.append(matches[0])
        return out

    def onecmd(self, statement, *args, **kwargs):
        """A request the driver refuses is one line, never a traceback."""
        try:
            return super().onecmd(statement, *args, **kwargs)
        except ControlError as exc:
            self.perror(str(exc))
            return False

    # ------------------------------------------------------------------ the seed's commands
    @with_argparser(_no_args("Print the status: tasks per state, progress with rate and ETA, "
                             "cluster, batch jobs."))
    def do_status(self, _args) -> None:
        self.poutput(self.ask("status")["text"])

    @with_argparser(_interval_parser)
    def do_interval(self, args) -> None:
        if args.seconds is None:
            self.poutput(f"interval: {self.interval:g} s")
            return
        if args.seconds <= 0:
            self.perror("interval: give a positive number of seconds")
            return
        self.interval = self.ask("set", interval=args.seconds)["interval"]
        self.poutput(f"interval set to {self.interval:g} s")

    @with_argparser(_task_parser("Resubmit failed tasks now (automatic at every interval). "
                                 "Without TASK: every failed task, including those failed for "
                                 "good, which get one more attempt."))
    def do_retry(self, args) -> None:
        ids = self._resolve(args.tasks) if args.tasks else None
        if args.tasks and ids is None:
            return
        answer = self.ask("retry", tasks=ids)
        self.poutput(f"resubmitted {answer['changed']} task(s)" +
                     ("" if answer["changed"] or not answer["asked"]
                      else " (the others are not failed or cancelled)"))

    @with_argparser(_task_parser("Cancel tasks (pending, running or failed); 'cancel all' "
                                 "cancels everything not finished. Cancelled tasks run again "
                                 "on the next BXRun or with 'retry TASK'."))
    def do_cancel(self, args) -> None:
        if not args.tasks:
            self.perror("cancel: give task ids, or 'all'")
            return
        ids = "all" if args.tasks == ["all"] else self._resolve(args.tasks)
        if ids is None:
            return
        self.poutput(f"cancelled {self.ask('cancel', tasks=ids)['changed']} task(s)")

    @with_argparser(_no_args("Release finished futures and collect garbage; reports what the "
                             "driver holds."))
    def do_clean(self, _args) -> None:
        self.poutput(self.ask("clean")["text"])

    @with_argparser(_no_args("The Dask client: scheduler address, dashboard, workers."))
    def do_client(self, _args) -> None:
        self.poutput(self.ask("client")["text"])

    @with_argparser(_no_args("The cluster: workers asked for and connected, threads, memory, "
                             "batch jobs."))
    def do_cluster(self, _args) -> None:
        self.poutput(self.ask("cluster")["text"])

    @with_argparser(_no_args("Futures the driver holds, by Dask status, and tasks queued in "
                             "the driver."))
    def do_futures(self, _args) -> None:
        self.poutput(render_table(("futures", "count"), sorted(self.ask("futures")["counts"].items())))

    @with_argparser(_verbose_parser)
    def do_verbose(self, args) -> None:
        wanted = (not self.verbose) if args.switch is None else args.switch == "on"
        self.verbose = self.ask("set", verbose=wanted)["verbose"]
        self.poutput(f"verbose {'on' if self.verbose else 'off'}")

    @with_argparser(_no_args("Open a Python console with a Dask client of its own connected "
                             "to the production's scheduler (status updates pause; exit() or "
                             "Ctrl-D returns)."))
    def do_debug(self, _args) -> None:
        import code

        from distributed import Client

        answer = self.ask("dask")
        address, tls = answer["scheduler"], answer.get("tls")
        try:
            security = None
            if tls:  # the production's client credentials, over the owner-only channel
                from distributed.security import Security

                security = Security(tls_ca_file=tls["ca"], tls_client_cert=tls["cert"],
                                    tls_client_key=tls["key"], require_encryption=True)
            client = Client(address, timeout=30, set_as_default=False, security=security)
        except Exception as exc:
            self.perror(f"debug: cannot connect to the scheduler {address}: {exc}")
            return
        namespace = {"client": client, "scheduler": address, "ask": self.ask,
                     "exit": _console_exit, "quit": _console_exit}
        try:
            code.interact(banner=f"debug console: client (connected to {address}), ask(op, **args) "
                                 "(the monitor's requests). exit() or Ctrl-D returns to the monitor.",
                          local=namespace, exitmsg="back to the monitor")
        except SystemExit:
            self.poutput("back to the monitor")
        finally:
            client.close()

    @with_argparser(_no_args("Leave the monitor and stop the driver. With tasks still "
                             "running, asks first; they stop and resume on the next run of "
                             "the same command. 'detach' (or Ctrl-D, or closing the terminal) "
                             "leaves the driver running."))
    def do_exit(self, _args) -> bool:
        summary = self.ask("summary")
        if self._close_requested:
            return True
        if summary["finished"]:  # nothing left to run: let the driver end and report
            self.ask("finish")
            self.stopped = True
            return True
        return self._confirm_stop(summary)

    @with_argparser(_no_args("Leave the monitor and let the driver go on by itself (logging "
                             "out changes nothing); 'timecal attach OUT' comes back."))
    def do_detach(self, _args) -> bool:
        summary = self.ask("summary")
        self.poutput(f"detached: the driver goes on; 'timecal attach {summary['production']}' "
                     "comes back")
        self.detached = True
        return True

    @with_argparser(_no_args("Stop the driver (same as exit)."))
    def do_stop(self, _args) -> bool:
        return self.do_exit("")

    def _confirm_stop(self, summary: dict) -> bool:
        c = summary["counts"]
        left = c["pending"] + c["running"] + c[FAILED]
        try:
            answer = self.read_input(f"{left} task(s) not finished; stop them (they resume on the "
                                     "next run)? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            self.poutput("continuing")
            return False
        self.ask("stop", reason="stopped by the user")
        self.stopped = True
        return True

    def do_quit(self, args) -> bool:
        """Same as exit."""
        return self.do_exit("")

    def do__eof(self, args) -> bool:
        """Ctrl-D: detach (the driver goes on)."""
        self.poutput("")
        if self._close_requested:  # the prompt was closed for us (production ended, signal)
            return True
        return self.do_detach("")

    # ------------------------------------------------------------------ additions
    @with_argparser(_tasks_parser)
    def do_tasks(self, args) -> None:
        answer = self.ask("tasks", state=args.state, limit=args.limit)
        table = [(t["task_id"], t["state"], t["attempts"], t["worker"] or "",
                  format_duration(t["runtime"]) if t["runtime"] is not None else "",
                  (t["reason"] or "") if t["state"] in (FAILED, ERROR) else t["dirname"])
                 for t in answer["rows"]]
        if not table:
            self.poutput(f"no {args.state + ' ' if args.state else ''}tasks")
            return
        self.poutput(render_table(("task", "state", "attempts", "worker", "runtime",
                                   "error / directory"), table))
        if answer["more"]:
            self.poutput(f"(first {args.limit}; 'tasks {args.state or ''} -n 0' shows all)")

    @with_argparser(_log_parser)
    def do_log(self, args) -> None:
        ids = self._resolve(args.tasks)
        if ids is None:
            return
        answer = self.ask("log", task=ids[0], lines=args.lines)
        task = answer["task"]
        self.poutput(f"task {task['task_id']} ({task['state']}, {task['attempts']} attempt(s)) "
                     f"{task['dirname']}")
        if answer["path"] is None:
            self.poutput("no log yet: the task has not started")
            if task["error"]:
                self.poutput(task["error"].rstrip())
            return
        self.poutput(f"--- {answer['path']} (last {len(answer['lines'])} lines)")
        self.poutput("".join(answer["lines"]).rstrip())

    @with_argparser(_no_args("Failed tasks grouped by error, with counts and one example each "
                             "('log EXAMPLE' shows its log); 'to retry' counts those that "
                             "failed and wait for (or run) their next attempt."))
    def do_errors(self, _args) -> None:
        self.poutput(render_errors(self.ask("errors")["groups"]))

    @with_argparser(_scale_parser)
    def do_scale(self, args) -> None:
        self.poutput(self.ask("scale", workers=args.workers)["text"])

    @with_argparser(_adapt_parser)
    def do_adapt(self, args) -> None:
        self.poutput(self.ask("adapt", minimum=args.minimum, maximum=args.maximum)["text"])

    @with_argparser(_no_args("Run the aggregators now over the tasks finished so far (they run "
                             "by themselves once every task is done)."))
    def do_aggregate(self, _args) -> None:
        for line in self.ask("aggregate")["lines"]:
            self.poutput(line)

    @with_argparser(_no_args("The batch system's jobs of this cluster (none for local)."))
    def do_jobs(self, _args) -> None:
        answer = self.ask("jobs")
        if not answer["jobs"]:
            self.poutput(f"no batch jobs ({answer['backend']} backend)")
            return
        self.poutput(render_table(("job", "state", "reason", "worker", "runtime"), answer["jobs"]))

    def _register_backend_commands(self) -> None:
        answer = self.ask("backend_commands")
        taken = {name[3:] for name in self.get_names() if name.startswith("do_")}
        command_set = backend_command_set(answer["backend"], answer["commands"], taken, self.ask)
        if command_set is not None:
            self.register_command_set(command_set)


class ShellMonitor:
    """The monitor on a terminal, attached to a driver (in a process of its own) through a
    channel; returns the exit code the command should end with."""

    END_WAIT = 300.0  # s to wait for a stopping driver's last lines (aggregation included)

    def __init__(self, history_file: Path | None = None):
        self.history_file = history_file
        self.detached = False

    def __call__(self, channel) -> int:
        shell = MonitorShell(channel, self.history_file)
        shell.cmdloop(intro=channel.request("status")["text"] +
                      "\nmonitor: 'help' lists the commands, 'exit' stops, 'detach' leaves "
                      "the driver running")
        self.detached = shell.detached
        if shell.detached:
            return 0
        if shell.ended is None:
            shell.ended = self._wait_for_end(channel, shell)
        return shell.ended

    def _wait_for_end(self, channel, shell: MonitorShell) -> int:
        """Show the driver's last lines (final status, aggregation, failures, how to
        resume) until it says it ended."""
        deadline = time.monotonic() + self.END_WAIT
        while time.monotonic() < deadline:
            try:
                answer = channel.request("updates", after=shell._seen)
            except ControlError as exc:
                print(f"monitor: {exc}")
                return 1
            shell._seen = answer["last"]
            for item in answer["items"]:
                if item["kind"] == "ended":
                    return int(item.get("code", 1))
                if item["kind"] in ("final", "status", "notice", "end"):
                    print(item.get("full", item["text"]), flush=True)
            time.sleep(POLL)
        print(f"monitor: the driver did not end within {self.END_WAIT:.0f} s; "
              "BXRun --status -o OUT tells where it is")
        return 1
