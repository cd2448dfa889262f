"""The interactive production monitor: a cmd2 shell beside a running production.

It keeps the seed tool's loop (every interval the status appears, failed tasks are retried)
and its commands, and adds what a physicist following a 30,000-task production reaches
for: task tables, logs one command away, failures grouped by error, scaling, aggregation.

The shell is a thin client: it holds no production state and talks to the driver only
through a channel (``request(op, **args) -> dict``, see :mod:`timecal_core.control.requests`), so
it works the same whether the driver is in this process or, later, in another one. The
driver's heartbeat publishes the status; the shell polls for what it has not shown yet and
prints it as cmd2 asynchronous alerts above the prompt, without clobbering what the user
is typing. Backend commands arrive as a cmd2 ``CommandSet``; ``interval`` and ``verbose``
are cmd2 settables (``set interval 10``) as well as the seed's commands.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
import time
from pathlib import Path

import cmd2
from cmd2 import CommandSet, with_argparser
from cmd2 import rich_utils

from ..control.requests import ControlError
from ..ledger.records import ERROR, FAILED, STATES
from ..textformat import format_bytes, format_duration, render_table
from ..views.status_text import describe_left
from ..views.failure_groups import render_failure_groups
from . import selection_parser
from .shell_parsers import (HIDDEN_BUILTINS, _adapt_parser, _cancel_completer,
                            _console_exit, _errors_parser, _grid_parser, _interval_parser, _log_parser,
                            _no_args, _positive, _scale_parser, _task_parser, _tasks_parser,
                            _verbose_parser, history_path)

POLL = 0.25  # seconds between two looks at what the driver published
CTRL_C_HINT = ("^C (the production goes on: its driver runs on its own; 'exit' stops it, to resume "
               "later; 'detach' or Ctrl-D leaves it running)")


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
        # 'tasks threshold>=8000' is a filter, not a redirection (where cmd2 allows: see there)
        selection_parser.install(self)
        self.stopped = False  # the user stopped the driver, or let it end: wait for its end
        self.detached = False  # left with the driver going on
        self.ended: int | None = None  # the driver's exit code, once it ended
        self._close_requested = False
        self._closing = threading.Event()
        self._seen = self.ask("updates", after=0)["last"]  # what came before the intro
        self._register_backend_commands()
        self._explain_ctrl_c()

    def _explain_ctrl_c(self) -> None:
        """Ctrl-C at the prompt drops the line being typed, as in a shell, and says what it
        did not do: the production goes on (its driver runs on its own), 'exit' stops it."""
        bindings = getattr(self.main_session, "key_bindings", None)
        if bindings is None or not hasattr(bindings, "add"):
            return
        from prompt_toolkit.application import run_in_terminal

        @bindings.add("c-c")
        def _(event) -> None:
            event.app.current_buffer.reset()
            run_in_terminal(lambda: print(CTRL_C_HINT, flush=True))

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
                                 "good, which get one more attempt. With a filter: the failed "
                                 "or cancelled tasks it selects."))
    def do_retry(self, args) -> None:
        answer = self.ask("retry", tasks=None, select=args.tasks or None)
        if not answer["changed"]:
            self.poutput("nothing to retry: " + (
                f"the {answer['asked']} task(s) selected are done, pending or running (retry "
                "applies to failed and cancelled tasks)" if answer["asked"] else
                "no task failed or was cancelled"))
            return
        self.poutput(f"resubmitted {answer['changed']} task(s)" +
                     ("" if answer["changed"] == answer["asked"] or not answer["asked"]
                      else f" of {answer['asked']} selected (the others are not failed or cancelled)"))

    @with_argparser(_task_parser("Cancel tasks (pending, running or failed); 'cancel all' "
                                 "cancels everything not finished. Cancelled tasks run again "
                                 "on the next BXRun or with 'retry TASK'.", completer=_cancel_completer))
    def do_cancel(self, args) -> None:
        if not args.tasks:
            self.perror("cancel: give task ids, a filter, or 'all'")
            return
        if args.tasks == ["all"]:
            answer = self.ask("cancel", tasks="all")
        else:
            answer = self.ask("cancel", select=args.tasks)
        self.poutput(f"cancelled {answer['changed']} task(s)")

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
        served_by = getattr(self.channel, "peer_uid", None)  # None: the driver is this process
        if served_by is not None and served_by != os.getuid():  # a scheduler of someone else's choice
            self.perror(f"debug: the driver's channel is served by uid {served_by}, not by you: "
                        "its scheduler address and credentials are not used")
            return
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
        if summary["finished"]:  # it only waited for a monitor: leaving ends it
            self.poutput(f"detached: nothing is left to run, so the driver ends; "
                         f"{describe_left(summary['counts'])}: rerun the same command to retry them")
            self.ask("finish")
        else:
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
        states = [w for w in args.words if w in STATES]
        if len(states) > 1:
            self.perror(f"tasks: one state at a time (got {', '.join(states)})")
            return
        state = states[0] if states else None
        select = [w for w in args.words if w not in STATES] or None
        answer = self.ask("tasks", state=state, limit=args.limit, select=select)
        table = [(t["task_id"], t["state"], t.get("attempt", t["attempts"]), t.get("host") or t["worker"] or "",
                  format_duration(t["runtime"]) if t["runtime"] is not None else "",
                  format_bytes(t["maxrss_kib"] * 1024) if t.get("maxrss_kib") else "",
                  ((t.get("cause") or "") + ": " if t.get("cause") else "") + (t["reason"] or "")
                  if t["state"] in (FAILED, ERROR) else t["dirname"])
                 for t in answer["rows"]]
        what = " ".join(filter(None, [state, " ".join(select or [])]))
        if not table:
            self.poutput(f"no tasks{' (' + what + ')' if what else ''}")
            return
        self.poutput(render_table(("task", "state", "attempt", "host", "runtime", "peak RSS",
                                   "error / directory"), table))
        if answer.get("matched") is not None and select:
            self.poutput(f"{answer['matched']} task(s) match {' '.join(select)}")
        if answer["more"]:
            self.poutput(f"(first {args.limit}; 'tasks {what + ' ' if what else ''}-n 0' shows all)")

    @with_argparser(_log_parser)
    def do_log(self, args) -> None:
        words = args.tasks
        answer = self.ask("log", select=words, lines=args.lines)
        task = answer["task"]
        if answer.get("matched", 1) > 1:
            self.poutput(f"{answer['matched']} tasks match; the log of {task['task_id']} "
                         f"({task['state']}); 'tasks {' '.join(words)}' lists them")
        self.poutput(f"task {task['task_id']} ({task['state']}, {task['attempts']} attempt(s)) "
                     f"{task['dirname']}")
        if answer["path"] is None:
            self.poutput("no log yet: the task has not started")
            if task["error"]:
                self.poutput(task["error"].rstrip())
            return
        self.poutput(f"--- {answer['path']} (last {len(answer['lines'])} lines)")
        self.poutput("".join(answer["lines"]).rstrip())

    @with_argparser(_errors_parser)
    def do_errors(self, args) -> None:
        words = list(args.words)
        if words[:1] == ["by"]:
            self.poutput(self.ask("errors_by", select=words[1:] or None, width=self._width())["text"])
            return
        self.poutput(render_failure_groups(self.ask("errors", select=words or None)["groups"]))

    @with_argparser(_grid_parser)
    def do_grid(self, args) -> None:
        self.poutput(self.ask("grid", x=args.x, y=args.y, select=args.words or None,
                              metric=args.metric, colour=self._colour(),
                              width=self._width())["text"])

    def _width(self) -> int:
        return max(40, shutil.get_terminal_size((80, 24)).columns)

    @staticmethod
    def _colour() -> bool:
        """Styles are produced unless cmd2's ``allow_style`` is Never; cmd2 strips them when
        the output is not a terminal (allow_style Terminal, the default)."""
        return rich_utils.ALLOW_STYLE != rich_utils.AllowStyle.NEVER

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

    @with_argparser(_no_args("Clear the screen (the production goes on; 'status' shows it again)."))
    def do_clear(self, _args) -> None:
        self.poutput("\x1b[H\x1b[2J\x1b[3J", end="")

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


#: what writing to a terminal that is gone raises (a hung-up pty, a closed pipe)
TERMINAL_GONE = (errno.EIO, errno.EPIPE, errno.ENXIO, errno.EBADF)


def _silence() -> None:
    """Point the standard streams at /dev/null: whatever is still flushed at exit goes
    nowhere instead of raising on a terminal that is gone."""
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
    except OSError:
        pass


class ShellMonitor:
    """The monitor on a terminal, attached to a driver (in a process of its own) through a
    channel; returns the exit code the command should end with."""

    END_WAIT = 300.0  # s to wait for a stopping driver's last lines (aggregation included)

    def __init__(self, history_file: Path | None = None):
        self.history_file = history_file
        self.detached = False

    def __call__(self, channel) -> int:
        shell = MonitorShell(channel, self.history_file)
        try:
            shell.cmdloop(intro=channel.request("status")["text"] +
                          "\nmonitor: 'help' lists the commands, 'exit' stops, 'detach' leaves "
                          "the driver running")
        except OSError as exc:
            if exc.errno not in TERMINAL_GONE:
                raise
            # the terminal went away (window closed, SSH dropped): the driver goes on, and
            # there is no one left to tell anything to
            shell._closing.set()
            _silence()
            self.detached = True
            return 0
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
