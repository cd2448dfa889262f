"""``runCalibration``: reconstruct delays from BX histograms with the registered evaluators.

A YAML file lists scenarios (a mapping name -> scenario)::

    closure_threshold5800:
      labels: {threshold: 5800, pileup: 200}      # shown on the plots, kept as columns
      test:                                       # the histograms whose delay is wanted
        file: tests/BXHistScan_..._harvested.root # relative to this YAML file; a glob
                                                  # (emulate/*_harvested.root) takes every match
        # or: production: my_scan   (relative -> timerc [paths] production)
        #     task: 3fa2b1c4d5      (task id or results directory name; or params: {k: v},
        #                            every finished task that matches is a test)
        mode: Sampled                             # Sampled (default) or Latched
        delays: [10.0, 20.5]                      # which histograms: a list, {min: 5, max: 45}
                                                  # or all (the default)
        true_delays: from_file                    # or a list, or unknown
      evaluators:
        - method: LinearInterpolation             # any registered evaluator (BXRun --plugins)
          name: li_5800                           # cache name; default <template stem>_<mode>
          template: {file: scan.root, mode: Sampled}

Everything is checked (files, histograms, methods) before anything is computed, so a typo
never leaves half an output behind. Every file (or task) the test selection matches is a
test of the scenario: reported one by one (a ``delay = X +a -b ns [scenario, test, method]``
line each when there are few) and summarised per scenario (bias, resolution, coverage with
their uncertainties). ``runCalibration --test FILE... --template FILE`` runs one scenario
without a YAML.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from timecal_core.config.timerc import check_output_dir, load_timerc
from timecal_core.contract.errors import UserError
from timecal_core.cli import vocabulary
from timecal_core.cli.command_errors import run_cli
from timecal_core.config.yamlfiles import load_yaml, parse_custom
from timecal_core.contract.trust import check_output, make_output
from . import intervals
from .calibration import DelayScan, Summary, scan_delay, summarise
from .calibration_report import write_report
from .evaluators import DelayWindow, HistogramStack, build_evaluator, evaluator_dir, read_stack
from timecal_core.cms.harvested_layout import MODES

PROG = "runCalibration"
DISTRIBUTION = "timecal-analysis"
EMULATE_PREFIX = "BXHistEmulateDelay_"
SCENARIO_KEYS = {"labels", "test", "evaluators"}
SOURCE_KEYS = {"file", "production", "task", "params", "mode", "delays"}
TEST_KEYS = SOURCE_KEYS | {"true_delays"}
EVALUATOR_KEYS = {"method", "name", "template"}
#: Up to this many test histograms per scenario get their own printed ``delay =`` line.
MAX_PRINTED_TESTS = 20
GLOB_CHARACTERS = set("*?[")


@dataclass(frozen=True)
class HistogramSource:
    """Where histograms come from, resolved to a file, and which of them."""

    path: Path
    mode: str
    delays: tuple[float, ...] | DelayWindow | None
    where: str  # "file.yml: scenario 'x': test" for error messages
    name: str = ""  # how reports call this test: the task directory or the file stem

    @property
    def label(self) -> str:
        return self.name or self.path.name.removesuffix(".root")

    def read(self) -> HistogramStack:
        return read_stack(self.path, self.mode, self.delays, self.where)


@dataclass(frozen=True)
class EvaluatorSpec:
    method: str
    name: str
    template: HistogramSource
    where: str


@dataclass(frozen=True)
class Scenario:
    name: str
    labels: Mapping[str, Any]
    tests: tuple[HistogramSource, ...]  # every file/task the test selection matched
    true_delays: Any  # "from_file", None (unknown) or a tuple of floats
    evaluators: tuple[EvaluatorSpec, ...]


@dataclass
class EvaluatorResult:
    spec: EvaluatorSpec
    evaluator: Any
    scan: DelayScan
    levels: Any = None  # intervals.LevelsByTest: what each test's ±1σ is

    def interval(self, i: int) -> str:
        return self.levels.describe(i) if self.levels is not None else intervals.RISE_OF_ONE


@dataclass
class ScenarioResult:
    scenario: Scenario
    tests: HistogramStack  # the histograms of every test source, one after the other
    true_delays: np.ndarray  # NaN where unknown
    sources: list[HistogramSource] = field(default_factory=list)  # [n] where each row came from
    evaluations: list[EvaluatorResult] = field(default_factory=list)

    def test_label(self, i: int) -> str:
        """The test's name; with the histogram's delay when its file holds several."""
        source = self.sources[i]
        several = sum(1 for s in self.sources if s is source) > 1
        return f"{source.label} @ {self.tests.delays[i]:g} ns" if several else source.label


# --------------------------------------------------------------------------- parsing
def _mapping(value: Any, where: str, allowed: set[str], required: tuple[str, ...] = ()) -> dict:
    if not isinstance(value, Mapping):
        raise UserError(f"{where}: expected a mapping with keys {', '.join(sorted(allowed))}, "
                        f"got {type(value).__name__}")
    unknown = sorted(set(map(str, value)) - allowed)
    if unknown:
        raise UserError(f"{where}: unknown key '{unknown[0]}'; allowed: {', '.join(sorted(allowed))}")
    for key in required:
        if key not in value:
            raise UserError(f"{where}: missing key '{key}'")
    return dict(value)


def _delays(value: Any, where: str):
    if value is None or value == "all":
        return None
    if isinstance(value, Mapping):
        window = _mapping(value, f"{where}: delays", {"min", "max"}, ("min", "max"))
        try:
            return DelayWindow(float(window["min"]), float(window["max"]))
        except (TypeError, ValueError):
            raise UserError(f"{where}: delays: min and max must be numbers, got {value!r}") from None
    values = value if isinstance(value, list) else [value]
    if not values:
        raise UserError(f"{where}: delays is an empty list; omit it to take every histogram")
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise UserError(f"{where}: delays must be a number, a list of numbers, {{min: , max: }} or 'all', "
                        f"got {value!r}") from None


class ProductionTasks:
    """The finished tasks of one production, read once per run (lean: no provenance) and
    indexed: by task id and directory name, and per parameter by value (built when a
    selection first names the parameter). A selection is then a few set intersections,
    not a pass over 30,000 tasks per scenario, test and template."""

    def __init__(self, directory: Path):
        from .plotscan import lean_tasks

        self.directory = directory
        self.tasks = lean_tasks(directory)
        self.by_name = {}
        for i, t in enumerate(self.tasks):
            self.by_name.setdefault(t.task_id, i)
            self.by_name.setdefault(t.directory.name, i)
        self._by_value: dict[str, dict] = {}

    def named(self, wanted: str) -> list:
        i = self.by_name.get(wanted)
        return [] if i is None else [self.tasks[i]]

    def matching(self, wanted: Mapping[str, Any]) -> list:
        from .observables import comparable

        chosen: set[int] | None = None
        for name, value in wanted.items():
            index = self._by_value.get(name)
            if index is None:
                index = self._by_value[name] = {}
                for i, t in enumerate(self.tasks):
                    if name in t.params:
                        index.setdefault(comparable(t.params[name]), set()).add(i)
            found = index.get(comparable(value), set())
            chosen = set(found) if chosen is None else chosen & found
        return [self.tasks[i] for i in sorted(chosen or ())]


_PRODUCTIONS: dict[tuple, ProductionTasks] = {}


def production_tasks(directory: Path) -> ProductionTasks:
    """One :class:`ProductionTasks` per production and state of its ``results/`` (its
    mtime changes when a result is added or removed)."""
    try:
        stamp = (directory / "results").stat().st_mtime_ns
    except OSError:
        stamp = None
    key = (str(directory), stamp)
    if key not in _PRODUCTIONS:
        _PRODUCTIONS.clear()  # one production at a time is the common case; keep memory flat
        _PRODUCTIONS[key] = ProductionTasks(directory)
    return _PRODUCTIONS[key]


def _task_files(spec: dict, where: str, production_root, many: bool) -> list[tuple[Path, str]]:
    """(output file, results directory name) of the finished tasks a selection matches:
    ``task`` names one; ``params`` every task whose parameters match (``many``) or exactly
    one (a template)."""
    directory = Path(str(spec["production"])).expanduser()
    if not directory.is_absolute():
        root = production_root()
        if root is None:
            raise UserError(f"{where}: production '{directory}' is relative but timerc has no "
                            f"[paths] production; give an absolute path")
        directory = root / directory
    if not directory.is_dir():
        raise UserError(f"{where}: production '{directory}' does not exist")
    tasks = production_tasks(directory)
    if "task" in spec:
        wanted = str(spec["task"])
        chosen = tasks.named(wanted)
        what = f"task '{wanted}'"
    elif "params" in spec and isinstance(spec["params"], Mapping):
        wanted_params = spec["params"]
        chosen = tasks.matching(wanted_params)
        what = "params " + ", ".join(f"{k}={v}" for k, v in wanted_params.items())
    else:
        raise UserError(f"{where}: with 'production', give 'task: <task id>' or 'params: {{k: v}}'")
    if not chosen:
        raise UserError(f"{where}: no finished task of {directory} matches {what} "
                        f"({len(tasks.tasks)} finished; see the results/ directory names)")
    if len(chosen) > 1 and not many:
        raise UserError(f"{where}: {len(chosen)} finished tasks of {directory} match {what}; "
                        f"a template must be one task: add parameters or give 'task'")
    return [(t.output, t.directory.name) for t in sorted(chosen, key=lambda t: t.directory.name)]


def _files(spec: dict, where: str, base: Path, many: bool) -> list[tuple[Path, str]]:
    """``file``: one path, or a glob (every match, sorted) where many files are allowed."""
    text = str(spec["file"])
    path = Path(text).expanduser()
    path = path if path.is_absolute() else base / path
    if GLOB_CHARACTERS & set(text):
        matches = sorted(p for p in path.parent.glob(path.name) if p.is_file()) \
            if not GLOB_CHARACTERS & set(str(path.parent)) else \
            sorted(p for p in Path(path.anchor).glob(str(path.relative_to(path.anchor))) if p.is_file())
        if not matches:
            raise UserError(f"{where}: no file matches '{path}'")
        if len(matches) > 1 and not many:
            raise UserError(f"{where}: {len(matches)} files match '{path}'; a template must be one file")
        return [(m, "") for m in matches]
    if not path.is_file():
        raise UserError(f"{where}: file '{path}' does not exist")
    return [(path, "")]


def _sources(value: Any, where: str, base: Path, production_root, allowed: set[str],
             many: bool = False) -> tuple[list[HistogramSource], dict]:
    """Every histogram source a ``file``/``production`` selection matches (one unless ``many``)."""
    spec = _mapping(value, where, allowed)
    if ("file" in spec) == ("production" in spec):
        raise UserError(f"{where}: give exactly one of 'file' or 'production'")
    if "file" in spec:
        found = _files(spec, where, base, many)
    else:
        found = _task_files(spec, where, production_root, many)
    mode = str(spec.get("mode", "Sampled"))
    if mode not in MODES:
        raise UserError(f"{where}: mode '{mode}' is not one of {', '.join(MODES)}")
    delays = _delays(spec.get("delays"), where)
    return [HistogramSource(path, mode, delays, where, name) for path, name in found], spec


def _source(value: Any, where: str, base: Path, production_root, allowed: set[str]) -> tuple[HistogramSource, dict]:
    (source,), spec = _sources(value, where, base, production_root, allowed)
    return source, spec


def _true_delays(value: Any, where: str):
    if value == "from_file":
        return value
    if value is None or value == "unknown":
        return None
    values = value if isinstance(value, list) else [value]
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise UserError(f"{where}: true_delays must be 'from_file', 'unknown' or numbers, "
                        f"got {value!r}") from None


def parse_scenarios(data: Any, yaml_path: Path, production_root) -> list[Scenario]:
    """Scenarios of a loaded YAML; ``production_root()`` gives [paths] production lazily."""
    if not isinstance(data, Mapping) or not data:
        raise UserError(f"{yaml_path}: expected a mapping 'scenario name: {{test: ..., "
                        f"evaluators: [...]}}'")
    base = yaml_path.parent
    scenarios = []
    for name, body in data.items():
        where = f"{yaml_path.name}: scenario '{name}'"
        body = _mapping(body, where, SCENARIO_KEYS, ("test", "evaluators"))
        labels = body.get("labels") or {}
        if not isinstance(labels, Mapping):
            raise UserError(f"{where}: labels must be a mapping 'name: value'")
        tests, test_spec = _sources(body["test"], f"{where}: test", base, production_root, TEST_KEYS,
                                    many=True)
        evaluators = body["evaluators"]
        if not isinstance(evaluators, list) or not evaluators:
            raise UserError(f"{where}: evaluators must be a non-empty list of "
                            f"{{method: ..., template: ...}}")
        specs = []
        for i, item in enumerate(evaluators):
            ewhere = f"{where}: evaluators[{i}]"
            item = _mapping(item, ewhere, EVALUATOR_KEYS, ("method", "template"))
            template, _ = _source(item["template"], f"{ewhere}: template", base, production_root,
                                  SOURCE_KEYS)
            default_name = f"{template.path.name.removesuffix('.root')}_{template.mode}"
            specs.append(EvaluatorSpec(str(item["method"]), str(item.get("name", default_name)),
                                       template, ewhere))
        pairs = [(s.method, s.name) for s in specs]
        for method, name_ in pairs:
            if pairs.count((method, name_)) > 1:  # they would share an output directory
                raise UserError(f"{where}: two {method} evaluators are both named '{name_}'; "
                                f"give each a distinct 'name'")
        scenarios.append(Scenario(str(name), dict(labels), tuple(tests),
                                  _true_delays(test_spec.get("true_delays", "from_file"),
                                               f"{where}: test: true_delays"),
                                  tuple(specs)))
    return scenarios


# --------------------------------------------------------------------------- running
#: --sigma: Feldman-Cousins levels (the default), or the plain rise of 1 of physics.md §8.
#: (Not --interval: in timecal's vocabulary that is the seconds between status updates.)
INTERVALS = ("feldman-cousins", "rise-of-one")


def run_scenarios(scenarios: list[Scenario], calibration_root: Path, registry,
                  log=print, interval: str = INTERVALS[0]) -> list[ScenarioResult]:
    """Read every input first (so bad input fails before any work), then scan."""
    methods = {}
    for sc in scenarios:
        for spec in sc.evaluators:
            try:
                methods[spec.method] = registry.evaluator(spec.method)
            except UserError:
                installed = ", ".join(sorted(registry.evaluators)) or "none"
                raise UserError(f"{spec.where}: unknown method '{spec.method}'; installed: "
                                f"{installed} (see BXRun --plugins)") from None
    prepared = []
    for sc in scenarios:
        stacks = [source.read() for source in sc.tests]
        tests = _concatenate(stacks)
        sources = [source for source, st in zip(sc.tests, stacks) for _ in range(len(st))]
        if sc.true_delays == "from_file":
            truth = tests.delays.copy()
        elif sc.true_delays is None:
            truth = np.full(len(tests), np.nan)
        else:
            if len(sc.true_delays) != len(tests):
                raise UserError(f"{sc.tests[0].where}: true_delays has {len(sc.true_delays)} values "
                                f"for {len(tests)} histograms ({len(sc.tests)} file(s))")
            truth = np.asarray(sc.true_delays, dtype=np.float64)
        prepared.append(ScenarioResult(sc, tests, truth, sources))
    evaluators = {}
    for result in prepared:
        for spec in result.scenario.evaluators:
            key = (spec.method, spec.name, spec.template)
            if key not in evaluators:
                reg = methods[spec.method]
                evaluators[key] = build_evaluator(reg.item, spec.name, spec.template.path,
                                                  spec.template.mode, calibration_root,
                                                  spec.template.delays, spec.template.where,
                                                  f"{reg.distribution} {reg.version}")
    for result in prepared:
        for spec in result.scenario.evaluators:
            evaluator, cached = evaluators[(spec.method, spec.name, spec.template)]
            levels = None
            if interval == INTERVALS[0]:
                levels = intervals.test_levels(evaluator, result.tests,
                                               _levels_cache(calibration_root, spec.method, spec.name))
            scan = scan_delay(evaluator, result.tests, levels=levels)
            if levels is not None:
                intervals.save(levels)
            evaluation = EvaluatorResult(spec, evaluator, scan, levels)
            result.evaluations.append(evaluation)
            for line in report_lines(result, evaluation, cached):
                log(line)
    return prepared


def _levels_cache(calibration_root: Path, method: str, name: str) -> Path | None:
    """Beside the evaluator's cache, under its key: stale levels are never read."""
    import json

    directory = evaluator_dir(calibration_root, method, name)
    try:
        digest = json.loads((directory / "source.json").read_text())["digest"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return directory / "levels" / f"{intervals.LEVELS_FORMAT}_{digest[:16]}"


def _concatenate(stacks: list[HistogramStack]) -> HistogramStack:
    hits = None if any(s.hits is None for s in stacks) else np.concatenate([s.hits for s in stacks])
    attribution = (None if any(s.attribution is None for s in stacks)
                   else np.concatenate([s.attribution for s in stacks]))
    return HistogramStack(np.concatenate([s.delays for s in stacks]),
                          np.concatenate([s.counts for s in stacks]),
                          np.concatenate([s.errors for s in stacks]), hits, attribution)


def scan_summary(result: ScenarioResult, scan: DelayScan) -> Summary:
    return summarise(result.true_delays, scan)


def report_lines(result: ScenarioResult, evaluation: EvaluatorResult, cached: bool) -> list[str]:
    """A ``delay = ...`` line per test (when there are few), naming scenario, test and
    evaluator, then the scenario's summary when it has more than one test; both say what
    the ±1σ is when it is not the calibrated 68.3 % interval."""
    spec, scan = evaluation.spec, evaluation.scan
    origin = f"{spec.method}, evaluator {spec.name}{' (cached)' if cached else ''}"
    name = result.scenario.name
    lines = []
    n = len(result.tests)
    kinds = sorted({evaluation.interval(i) for i in range(n)})
    if n <= MAX_PRINTED_TESTS:
        for i in range(n):
            kind = evaluation.interval(i)
            note = "" if kind.startswith("Feldman") else f", ±1σ: {kind}"
            lines.append(f"{delay_line(scan, i, result.true_delays[i])}  "
                         f"[scenario {name}, test {result.test_label(i)}, {origin}{note}]")
    if n > 1:
        more = "" if n <= MAX_PRINTED_TESTS else " (each test in results.parquet)"
        lines.append(f"{name} / {origin}: {scan_summary(result, scan).text()}; ±1σ: {' / '.join(kinds)}{more}")
    return lines


def delay_line(scan: DelayScan, i: int, truth: float = float("nan")) -> str:
    text = f"delay = {scan.estimate[i]:.2f} +{scan.plus[i]:.2f} -{scan.minus[i]:.2f} ns"
    if scan.at_edge[i]:
        text += " (interval reaches the scan edge)"
    elif scan.degenerate[i]:
        text += (f" (the histogram is the same from {scan.flat_lower[i]:.2f} to {scan.flat_upper[i]:.2f} ns: "
                 f"any delay there is as likely)")
    elif scan.plateau[i]:
        text += " (on a plateau: the histogram barely changes over the interval)"
    if not np.isnan(truth):
        text += f" (true {truth:.2f} ns)"
    return text


# --------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Reconstruct the sampling delay from BX "
                                "histograms with template evaluators (physics.md §8).")
    p.add_argument("scenarios", nargs="?", metavar="YAML", help="the scenarios YAML (as --yaml)")
    vocabulary.add(p, "--yaml", "the calibration scenarios (also the first argument)", metavar="FILE")
    vocabulary.add_list(p, "--test", metavar="FILE", help="without a YAML: the file(s) whose histograms "
                        "are calibrated (e.g. emulate-mode BXHistEmulateDelay_*.root files; a quoted glob "
                        "works too)")
    p.add_argument("--template", metavar="FILE", help="without a YAML: the template scan file")
    vocabulary.add_list(p, "--method", metavar="NAME", help="without a YAML: evaluator(s) to use "
                        "(default: every installed one)")
    vocabulary.add(p, "--mode", "without a YAML, the histograms used (default: Sampled)",
                   default="Sampled", choices=MODES)
    vocabulary.add(p, "-o", "results, plots and index.html (relative: under timerc [paths] "
                            "calibration; default: the YAML or test file name)", metavar="DIR")
    vocabulary.add(p, "--custom", default=[], metavar="KEY=VALUE")
    p.add_argument("--no-plots", action="store_true", help="write the Parquet tables only")
    p.add_argument("--sigma", choices=INTERVALS, default=INTERVALS[0],
                   help="the ±1σ: Feldman-Cousins 68.3%% intervals from pseudo-histograms of the templates "
                        "(default; computed once per evaluator and hit count, then cached), or where the score "
                        "rises by 1 (physics.md §8; over- or under-covers: docs/explanation/calibration-accuracy.md)")
    vocabulary.add_standard(p, DISTRIBUTION)
    return p


def settle(args: argparse.Namespace) -> argparse.Namespace:
    """The scenarios YAML given either way (``runCalibration FILE`` or ``--yaml FILE``)."""
    if args.scenarios and args.yaml and args.scenarios != args.yaml:
        raise UserError(f"two scenarios files: {args.scenarios} and --yaml {args.yaml}; give one")
    args.yaml = args.yaml or args.scenarios
    return args


def _quick_scenario(args, registry) -> list[Scenario]:
    if not args.test or not args.template:
        raise UserError("give a scenarios YAML, or both --test FILE... and --template FILE")
    template = Path(args.template).expanduser().resolve()
    if not template.is_file():
        raise UserError(f"--template: file '{template}' does not exist")
    tests = []
    for text in args.test:
        tests += [path for path, _ in _files({"file": text}, "--test", Path.cwd(), many=True)]
    methods = args.method or sorted(registry.evaluators)
    name = f"{template.name.removesuffix('.root')}_{args.mode}"
    specs = tuple(EvaluatorSpec(m, name, HistogramSource(template, args.mode, None, "--template"),
                                "--method") for m in methods)
    sources = tuple(HistogramSource(path.resolve(), args.mode, None, "--test") for path in tests)
    return [Scenario(quick_name(sources), {}, sources, "from_file", specs)]


def quick_name(sources) -> str:
    """A short name for a scenario (and output directory) without a YAML: ``emulate_23p45``
    for one emulate file, the first fields of another file's name, ``<n>_tests`` for many."""
    if len(sources) > 1:
        return f"{len(sources)}_tests"
    stem = sources[0].path.name.removesuffix(".root").removesuffix("_harvested")
    if stem.startswith(EMULATE_PREFIX):
        return "emulate_" + stem[len(EMULATE_PREFIX):].split("_", 1)[0]
    return "_".join(stem.split("_")[:3])[:40]


def _output_dir(args, calibration_root: Path, scenarios) -> Path:
    default = Path(args.yaml).name.rsplit(".", 1)[0] if args.yaml else scenarios[0].name
    out = Path(args.output or default).expanduser()
    return out if out.is_absolute() else calibration_root / out


def run(args: argparse.Namespace) -> int:
    from timecal_core.contract.plugins import get_registry

    registry = get_registry()
    timerc = load_timerc()
    calibration_root = timerc.data_path("calibration")
    if args.yaml:
        yaml_path = Path(args.yaml).expanduser().resolve()
        if not yaml_path.is_file():
            raise UserError(f"{args.yaml}: no such scenarios file")
        data = load_yaml(yaml_path, parse_custom(args.custom))
        scenarios = parse_scenarios(data, yaml_path, lambda: timerc.optional_path("production"))
    else:
        scenarios = _quick_scenario(args, registry)
    out = check_output_dir(_output_dir(args, calibration_root, scenarios))  # before the work
    check_output(out, what=f"-o {args.output or out.name}")  # another user's, or a symlink: refused now
    results = run_scenarios(scenarios, calibration_root, registry, interval=args.sigma)
    make_output(out, what=f"-o {args.output or out.name}")
    written = write_report(out, results, plots=not args.no_plots)
    print(f"{PROG}: wrote {len(written)} files to {out}" +
          ("" if args.no_plots else f" (open {out / 'index.html'})"))
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(PROG, lambda: run(settle(args)), verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
