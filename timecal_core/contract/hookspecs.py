"""The plugin contract of timecal.

Modelled on conda's ``plugins/hookspec.py``: every hook is a generator that yields small
frozen dataclasses, each registering one *named* thing. A plugin is a module listed in the
``timecal`` entry-point group of its distribution that implements some of these hooks with
``@hookimpl``. The core never imports a plugin; plugins import the core (this module,
:mod:`timecal_core.contract.running_cluster`, :mod:`timecal_core.cms.harvested_layout`, ...),
never each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

# A backend declares its timerc section with these (re-exported: plugins import the contract from here).
from .timerc_keys import Setting as Setting
from .timerc_keys import SettingsSection as SettingsSection

PROJECT = "timecal"
ENTRY_POINT_GROUP = "timecal"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --------------------------------------------------------------------------- parameters
#: The values ``Parameter.type`` may take; a plugin declaring another one is refused when it
#: registers (see :mod:`timecal_core.contract.plugins`), not when a user first types a value.
PARAMETER_TYPES = ("int", "float", "str", "bool", "path")


@dataclass(frozen=True)
class Parameter:
    """One parameter a production script accepts on its command line and in a grid YAML.

    ``type`` is one of :data:`PARAMETER_TYPES`: ``path`` is a file that must exist when the
    plan is made, resolved against the current directory (as users type it) to the absolute
    path that every task then uses. ``default=None`` with ``required=True`` means the user
    must give it. ``unit`` is shown in help and errors; ``minimum`` (inclusive, numbers only)
    is checked for every value when the plan is made. ``work=True`` says that a larger value
    means more work for a task (events, hits, pile-up): ``BXRun --pilot`` spans these axes
    (their corners, centre and the largest) to measure what the whole grid will cost.
    """

    name: str
    type: str
    default: Any = None
    help: str = ""
    choices: tuple = ()
    required: bool = False
    # Shown in task directory names (paths and long free text are better left out).
    in_dirname: bool = True
    unit: str = ""
    minimum: float | None = None
    work: bool = False


# --------------------------------------------------------------------------- scripts
@dataclass(frozen=True)
class Step:
    """One command of a task's chain, run in the task's work directory.

    ``argv`` is passed to ``subprocess`` as a list: values never reach a shell. An item
    may contain ``{match:PATTERN}``, replaced when the step starts by the one file of the
    work directory matching PATTERN (for names only known after an earlier step). With
    ``cmssw=True`` the trusted ``[cmssw] init`` snippet of timerc runs first in bash and the
    command is appended with every argument quoted, and virtualenv variables are removed
    from the environment (CMSSW brings its own Python).

    ``python="module:function"`` makes it a *warm* step: ``function(list(argv))`` runs in a
    child forked from a per-worker process that has already imported ``module`` (its return
    value or ``SystemExit`` is the exit code), instead of a fresh interpreter per task. It
    keeps what a subprocess guarantees (own process group, killed on cancel or worker death,
    output in task.log, exit code and resources recorded); ``argv`` then holds only the
    arguments. See :mod:`timecal_core.run.step_server` (and ``timecal_warm_prepare`` for caches shared by
    a worker's tasks). Not combinable with ``cmssw``.
    """

    name: str
    argv: tuple[str, ...]
    cmssw: bool = False
    python: str = ""


@dataclass(frozen=True)
class TaskPlan:
    """What one parameter set turns into: the steps, and the file it must leave behind.

    ``finalize(workdir)`` runs in-process after the last step (renames, clean-up); then the
    core checks that ``output`` (a name, or a glob matching exactly one file) exists in
    ``workdir``, stores the parameters inside it (where an :class:`OutputFormat` says how:
    ROOT files) and writes ``params.json`` last. ``metadata`` holds values derived while
    planning (e.g. a delay drawn from a seed) that must be recorded with the parameters.
    """

    steps: tuple[Step, ...]
    output: str
    finalize: Callable[[Path], None] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


#: The environment variable in which every step of a task gets the record the core stores
#: with its output (JSON: params, metadata, script, task_id): a step that writes its output
#: itself may store it there, and the core then finds it in place instead of rewriting the file.
TASK_PARAMETERS_ENV = "TIMECAL_TASK_PARAMETERS"


@dataclass(frozen=True)
class OutputFormat:
    """How a task's record (the JSON of :data:`TASK_PARAMETERS_ENV`) is stored inside an
    output file whose name ends in ``name`` (e.g. ``".root"``), so that a file copied away
    from its production still says what it is. ``store(path, record)`` may find the record
    already there and leave the file alone.

    Example (the core's own ROOT support, :mod:`timecal_core.cms.plugin`)::

        @hookimpl
        def timecal_output_formats():
            yield OutputFormat(".root", embed_parameters, "TObjString 'timecal_params'")
    """

    name: str
    store: Callable[[Path, Mapping[str, Any]], None]
    description: str = ""


@dataclass(frozen=True)
class TaskRequest:
    """Everything a script may use to plan one task."""

    params: Mapping[str, Any]  # complete and canonical (defaults filled, types coerced)
    workdir: Path  # where the steps run (a temporary directory, renamed on success)
    cmssw_dir: Path | None  # timerc [paths] cmssw, where the cfg files live (may be None)
    #: the output layout the production chose among the script's ``layouts`` (None: the
    #: script declares none); steps also find it as "layout" in TIMECAL_TASK_PARAMETERS
    layout: str | None = None


@dataclass(frozen=True)
class ProductionScript:
    """A production script (a CMSSW cfg chain, the CBC emulator, ...).

    ``aliases`` are other names ``--script`` accepts for it, e.g. the cfg file name
    ``PUCalibration_cfg.py`` that users of the old tool type.

    ``check(values)`` lets the script refuse bad values when the plan is made, before
    anything is written or submitted: ``values`` maps every parameter to the tuple of its
    distinct canonical values in the grid. The plan is a cartesian product, so every
    combination of those values is a task and a rule between two parameters can be checked
    on their extremes. It raises :class:`timecal_core.contract.errors.UserError` naming the
    parameter, the value and what is allowed. ``cmssw=True`` says the steps run cmsRun: the
    planner then checks once that timerc's ``[cmssw] init`` makes ``cmsRun`` available.
    """

    name: str
    parameters: tuple[Parameter, ...]
    plan: Callable[[TaskRequest], TaskPlan]
    aliases: tuple[str, ...] = ()
    description: str = ""
    #: ``preflight(timerc)`` runs before anything is submitted and raises UserError for a
    #: set-up that cannot work (e.g. no ``[paths] cmssw`` for a CMSSW script).
    preflight: Callable[[Any], None] | None = None
    check: Callable[[Mapping[str, tuple]], None] | None = None
    cmssw: bool = False
    #: output layouts the script can write (``timecal_core.layout.LAYOUTS``: "full",
    #: "compact"), its default first; empty: one layout, ``--layout`` does not apply
    layouts: tuple[str, ...] = ()
    #: ``verify(output) -> None | str``: is this finished output a readable file of its kind?
    #: None when it is, else why not in a few words ("truncated: 100 bytes of the 527,422 its
    #: header announces"). A task counts as done only when it passes, when it finishes and on
    #: every rerun (the planner calls it for every result on disk: keep it to a header read,
    #: e.g. :func:`timecal_core.cms.root_check.root_file_problem`, never a full read). It gets the
    #: output's path as a str.
    verify: Callable[[str], str | None] | None = None


# --------------------------------------------------------------------------- backends
@dataclass(frozen=True)
class BackendRequest:
    """What a backend gets to start its Dask cluster."""

    settings: Mapping[str, str]  # its own timerc section ([local], [slurm], ...), may be empty
    output_dir: Path  # the production directory (worker logs go under output_dir/"logs")
    verbose: bool = False
    #: ``notes(text, limit)``: the production's notes (its ledger's history) that contain
    #: ``text``, the ``limit`` most recent, oldest first: what earlier drivers of this
    #: production recorded, e.g. the batch jobs they submitted. Empty outside a production.
    notes: Callable[[str, int], Sequence[str]] = lambda text, limit: ()


@dataclass(frozen=True)
class ExecutionBackend:
    """An execution backend. ``start`` returns a :class:`timecal_core.contract.running_cluster.RunningCluster`.

    ``settings`` declares the backend's timerc section (its name is usually the backend's):
    the core checks the section against it before anything is written or submitted (an
    unknown key or a bad value is one line), and the timerc reference documents it. A
    backend without a declaration gets its section unchecked.

    ``check(settings, output_dir)`` validates the backend's timerc section (and whatever else
    it can tell without starting anything, e.g. its batch commands) when the production is
    planned, before anything is written: a typo there must not leave a production half set
    up. It raises :class:`timecal_core.contract.errors.UserError`; ``start`` may check again."""

    name: str
    start: Callable[[BackendRequest], Any]
    description: str = ""
    settings: SettingsSection | None = None
    check: Callable[[Mapping[str, str], Path], None] | None = None


# --------------------------------------------------------------------------- aggregators
@dataclass(frozen=True)
class FinishedTask:
    """A task whose output is complete on disk, as aggregators see it."""

    task_id: str
    params: Mapping[str, Any]
    directory: Path
    output: Path
    runtime: float | None  # seconds, None when unknown (e.g. finished by an older run)
    attempts: int | None
    #: Where and with what it ran: host, worker, job_id, start, end, wall, cpu, maxrss_kib,
    #: output_bytes, timecal_version, python_version, cmssw_release, cfg_sha256, plugins
    #: (timecal_core.run.provenance.flat of its params.json); empty for results of older versions.
    provenance: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AggregationRequest:
    production_dir: Path
    script: str
    #: every finished task, in task-id order; a Sequence read lazily from disk (iterate it
    #: rather than keeping its items: a production may hold 100,000 of them)
    tasks: Sequence[FinishedTask]
    timerc: Any  # timecal_core.config.timerc.Timerc
    verbose: bool = False


@dataclass(frozen=True)
class Aggregator:
    """Runs over the finished tasks at the end of a production; returns the files it wrote."""

    name: str
    run: Callable[[AggregationRequest], list[Path]]
    description: str = ""


# --------------------------------------------------------------------------- evaluators
@dataclass(frozen=True)
class EvaluatorMethod:
    """A delay-calibration method (physics.md §8).

    ``build(templates)`` receives a :class:`timecal_analysis.evaluators.HistogramStack`
    (template BX histograms at known delays) and returns an object following
    :class:`timecal_analysis.evaluators.Evaluator`: a vectorised
    ``score(tests, delays) -> [n_tests, n_delays]`` (a rise of 1 above the minimum is 1σ),
    ``illustrate(ax)`` and ``templates``. It must be picklable: runCalibration caches it.
    """

    name: str
    build: Callable[[Any], Any]
    description: str = ""


# --------------------------------------------------------------------------- shell commands
@dataclass(frozen=True)
class ShellCommands:
    """Commands a plugin adds to the ``timecal`` home shell: a cmd2 ``CommandSet``
    subclass (instantiated by the shell; its ``DEFAULT_CATEGORY`` groups them in ``help``).

    Example (the analysis plugin)::

        class AnalysisCommands(cmd2.CommandSet):
            DEFAULT_CATEGORY = "analysis"
            def do_plot(self, statement): ...

        @hookimpl
        def timecal_commands():
            yield ShellCommands("analysis", AnalysisCommands, "plot, calibrate")
    """

    name: str
    command_set: type
    description: str = ""


# --------------------------------------------------------------------------- hook specs
class TimecalSpecs:
    @hookspec
    def timecal_backends(self) -> Iterable[ExecutionBackend]:
        """Register execution backends."""

    @hookspec
    def timecal_scripts(self) -> Iterable[ProductionScript]:
        """Register production scripts."""

    @hookspec
    def timecal_aggregators(self) -> Iterable[Aggregator]:
        """Register aggregators run at the end of a production."""

    @hookspec
    def timecal_evaluators(self) -> Iterable[EvaluatorMethod]:
        """Register delay-calibration evaluators."""

    @hookspec
    def timecal_commands(self) -> Iterable[ShellCommands]:
        """Register command sets of the ``timecal`` home shell."""

    @hookspec
    def timecal_output_formats(self) -> Iterable[OutputFormat]:
        """Register how a task's record is stored inside an output file of a kind."""
