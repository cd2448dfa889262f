"""Scan observables (physics.md §7) of harvested files, as one tidy table cached in Parquet.

The 2D maps of a harvested file hold every delay's BX histogram (physics.md §6), so six
object reads per file (decoded directly, see fastmaps) give every observable at every
delay; reading the 1,002 per-delay 1D histograms one by one is what made the seed slow.
They are read only when the configuration names 1D histograms that the maps do not hold
(another folder or name).

The table is the cache: its Parquet metadata records the input files (path, mtime, size)
and where the objects were read from, and it is rebuilt as soon as any of these differ.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from timecal_core.contract.errors import UserError
from timecal_core.contract.hookspecs import AggregationRequest, Aggregator, FinishedTask
from timecal_core.run.tasks import Packer
from . import store
from .fastmaps import read_map
from timecal_core.cms.harvested_layout import (ATTR_LOW, BX_HIGH, BX_LOW, BX_NBINS,
                                               HARVESTED_PREFIX, MODES, delay_rows, hist1d_name)
from timecal_core.cms.readers import ScanMaps, hist1d_names

if TYPE_CHECKING:  # pandas only where a wide table is built: the aggregators run in the driver
    import pandas as pd

TABLE_NAME = "observables.parquet"  # the per-delay values of the store (store.VALUES_NAME)
DEFAULT_MAP_FOLDER = f"{HARVESTED_PREFIX}/Hist2D"
DEFAULT_FIRED = "OffsetScan{mode}"
BX_CENTRES = BX_LOW + (np.arange(BX_NBINS) + 0.5) * (BX_HIGH - BX_LOW) / BX_NBINS
DELAY_DECIMALS = 6  # accumulated delays (12.299999999999983) are shown and sliced as 12.3


@dataclass(frozen=True)
class ObservableDef:
    """How an observable is named, labelled and bounded in plots."""

    key: str  # table column
    title: str  # physics.md §7 name, accepted by --observables and the data helper
    unit: str
    natural_range: tuple[float, float] | None  # None: the data's own range
    error_key: str | None = None

    @property
    def axis_label(self) -> str:
        return f"{self.title} [{self.unit}]" if self.unit else self.title


OBSERVABLES: tuple[ObservableDef, ...] = (
    ObservableDef("efficiency", "Efficiency", "", (0.0, 1.0)),
    ObservableDef("next_bx", "Next BX contamination", "", (0.0, 1.0)),
    ObservableDef("previous_bx", "Previous BX contamination", "", (0.0, 1.0)),
    ObservableDef("fire_rate", "Fire rate", "", (0.0, 1.0)),
    ObservableDef("out_of_time", "Out-of-time fraction", "", (0.0, 1.0), "out_of_time_error"),
    ObservableDef("mean", "Mean", "BX", None, "mean_error"),  # within +-1.5 in practice; +-5 hides it
)
RESERVED = {"mode", "delay", "file"} | {o.key for o in OBSERVABLES} | {
    o.error_key for o in OBSERVABLES if o.error_key}


def observable(name: str) -> ObservableDef:
    """Look an observable up by column key or title, ignoring case, spaces and underscores."""
    wanted = _normalise(name)
    for obs in OBSERVABLES:
        if wanted in (_normalise(obs.key), _normalise(obs.title)):
            return obs
    known = ", ".join(f"{o.key} ('{o.title}')" for o in OBSERVABLES)
    raise UserError(f"unknown observable '{name}'; known: {known}")


def _normalise(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch not in " _-")


# --------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class BXHistRef:
    """A configured 1D BX histogram: which mode and delay it stands for, and where it is."""

    mode: str
    delay: float
    folder: str
    name: str


@dataclass(frozen=True)
class Sources:
    """Where the objects of physics.md §7 live in a file; ``{mode}`` is filled per mode.

    ``bx_hists`` empty means: every delay of the maps, 1D observables from OffsetScan rows.
    """

    efficiency_folder: str = DEFAULT_MAP_FOLDER
    fired: str = DEFAULT_FIRED
    hits: str = "HitsTrueNumberScan{mode}"
    firerate_folder: str = DEFAULT_MAP_FOLDER
    attribution: str = "AttributionScan{mode}"
    bx_hists: tuple[BXHistRef, ...] = ()
    modes: tuple[str, ...] = MODES
    in_time_bin: float = 0.0

    def fingerprint(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def map_holds(self, ref: BXHistRef) -> bool:
        """True when the OffsetScan row at ``ref.delay`` *is* this 1D histogram (same file
        layout, analyzer's own name), so it need not be read."""
        prefix = self.efficiency_folder.rstrip("/").rsplit("/", 1)[0]
        return (self.fired == DEFAULT_FIRED and ref.folder.rstrip("/") == f"{prefix}/Hist1D"
                and ref.name == hist1d_name(ref.mode, ref.delay))


# --------------------------------------------------------------------------- one file
@dataclass
class FileColumns:
    """One file's observables as arrays: cheap to ship back from a Dask worker and to
    concatenate (a DataFrame per file would cost more than reading the file)."""

    file: str
    params: Mapping[str, Any]
    modes: list[str]
    columns: list[dict[str, np.ndarray]]  # per mode: delay and observables

    def __len__(self) -> int:
        return sum(len(c["delay"]) for c in self.columns)


def file_columns(path: str | Path, params: Mapping[str, Any], sources: Sources = Sources()) -> FileColumns:
    """All observables of one harvested file, per mode and delay.

    Module-level and pure so that Dask workers can run it; every missing object is a
    UserError naming the file and the object.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: harvested file not found (task output missing; rerun the production)")
    maps = _read_maps(path, sources)
    columns = [_mode_observables(path, maps, mode, sources) for mode in sources.modes]
    return FileColumns(str(path), dict(params), list(sources.modes), columns)


def file_observables(path: str | Path, params: Mapping[str, Any], sources: Sources = Sources()) -> pd.DataFrame:
    """The table of one file: one row per mode and delay."""
    return table_of([file_columns(path, params, sources)])


def table_of(parts: Sequence[FileColumns]) -> pd.DataFrame:
    """One tidy table, ordered by file, mode and delay whatever order the parts came in.

    Text columns (file, mode, string parameters) are categorical: a few distinct values
    repeated on every row, which pandas would otherwise convert string by string.
    """
    import pandas as pd

    parts = sorted(parts, key=lambda p: p.file)
    sizes = np.array([len(p) for p in parts])
    names = list(dict.fromkeys(name for p in parts for name in p.params))
    data: dict[str, Any] = {}
    for name in names:
        per_file = pd.Series([_scalar(p.params.get(name)) for p in parts])
        data[param_column(name)] = (np.repeat(per_file.to_numpy(), sizes) if per_file.dtype.kind in "biuf"
                                    else _repeat_categorical(per_file.to_numpy(dtype=object), sizes))
    modes = list(dict.fromkeys(m for p in parts for m in p.modes))
    codes = np.concatenate([np.full(len(c["delay"]), modes.index(m)) for p in parts for m, c in zip(p.modes, p.columns)])
    data["mode"] = pd.Categorical.from_codes(codes, categories=modes)
    for key in parts[0].columns[0]:
        data[key] = np.concatenate([c[key] for p in parts for c in p.columns])
    data["file"] = _repeat_categorical(np.array([p.file for p in parts], dtype=object), sizes)
    return pd.DataFrame(data)


def _repeat_categorical(per_file: np.ndarray, sizes: np.ndarray) -> pd.Categorical:
    import pandas as pd

    categorical = pd.Categorical(per_file)
    return pd.Categorical.from_codes(np.repeat(categorical.codes, sizes), categories=categorical.categories)


def param_column(name: str) -> str:
    """Parameters never shadow the table's own columns (emulate jobs have a ``delay``)."""
    return f"param_{name}" if name in RESERVED else name


def _scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, (int, float, str, bool)) else json.dumps(value)


def _read_maps(path: Path, sources: Sources) -> ScanMaps:
    """The configured maps of one file (each folder listed once; see fastmaps for why the
    objects are decoded directly)."""
    import uproot

    wanted = {"offset": (sources.efficiency_folder, sources.fired), "hits": (sources.efficiency_folder, sources.hits),
              "attribution": (sources.firerate_folder, sources.attribution)}
    arrays: dict[str, dict[str, np.ndarray]] = {"offset": {}, "hits": {}, "attribution": {}, "errors": {}}
    delays = rows = None
    try:
        # Memory-mapped: a file's dozen small reads then cost no open() each (fsspec's do).
        with uproot.open(path, handler=uproot.source.file.MemmapSource) as f:
            folders: dict[str, Any] = {}
            for mode in sources.modes:
                for role, (folder, template) in wanted.items():
                    folder = folder.rstrip("/")
                    name = template.replace("{mode}", mode)
                    try:
                        if folder not in folders:
                            folders[folder] = f[folder]
                        m = read_map(folders[folder], name)
                    except Exception:  # uproot raises KeyInFileError, or others for a half-matching path
                        raise UserError(f"{path}: no object '{folder}/{name}'") from None
                    if delays is None:  # the delays and their rows (see harvested_layout.delay_rows)
                        names = f"{folder.rsplit('/', 1)[0]}/Hist1D"
                        delays, rows = delay_rows(*m.y_bins, lambda: hist1d_names(f[names]) if names in f else [])
                    # [ix, iy] with flows -> [delay, x]
                    arrays[role][mode] = m.values[:, rows].T
                    if role == "offset":
                        arrays["errors"][mode] = m.errors()[:, rows].T
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot be read as a ROOT file ({exc})") from None
    return ScanMaps(path, delays, arrays["offset"], arrays["hits"], arrays["attribution"], arrays["errors"])


def _get(f, path: Path, folder: str, name: str):
    key = f"{folder.rstrip('/')}/{name}"
    try:
        return f[key]
    except Exception:  # uproot raises KeyInFileError, or others for a half-matching path
        raise KeyError(f"{path}: no object '{key}'") from None


def _mode_observables(path: Path, maps: ScanMaps, mode: str, sources: Sources) -> dict[str, np.ndarray]:
    offset, hits, attribution = maps.offset_scan[mode], maps.hits_true[mode], maps.attribution[mode]
    rounded = np.round(maps.delays, DELAY_DECIMALS)
    refs = [r for r in sources.bx_hists if r.mode == mode]
    if refs:
        rows = np.array([_row_of(path, maps.delays, r) for r in refs], dtype=np.int64)
        delays = np.array([r.delay for r in refs], dtype=np.float64)
    else:
        rows = np.arange(len(maps.delays))
        delays = rounded
    eff = _ratio(offset[rows], hits[rows])  # E(x, d), flows included: [rows, 13]
    ref_index = _bx_index(path, sources.in_time_bin)
    fired_any = attribution[rows][:, _attr_index(1):].sum(axis=1)
    out = {
        "delay": delays,
        "efficiency": eff[:, ref_index],
        "next_bx": eff[:, _bx_index(path, sources.in_time_bin + 1)],
        "previous_bx": eff[:, _bx_index(path, sources.in_time_bin - 1)],
        "fire_rate": _ratio(fired_any, attribution[rows].sum(axis=1)),
    }
    # The 1D BX histograms at each selected delay: the OffsetScan rows, unless configured elsewhere.
    contents = offset[rows][:, 1:-1].astype(np.float64)
    errors = maps.errors[mode][rows][:, 1:-1].astype(np.float64)
    centres = np.tile(BX_CENTRES, (len(rows), 1))
    elsewhere = [i for i, r in enumerate(refs) if not sources.map_holds(r)]
    if elsewhere:
        for i, (w, s, c) in zip(elsewhere, _read_bx_hists(path, [refs[i] for i in elsewhere])):
            if len(w) != contents.shape[1]:
                raise UserError(f"{path}: '{refs[i].folder}/{refs[i].name}' has {len(w)} bins; "
                                f"a BX histogram has {contents.shape[1]}")
            contents[i], errors[i], centres[i] = w, s, c
    out.update(_bx_observables(contents, errors, centres))
    return out


def _row_of(path: Path, delays: np.ndarray, ref: BXHistRef) -> int:
    i = int(np.argmin(np.abs(delays - ref.delay)))
    half_step = (delays[1] - delays[0]) / 2 if len(delays) > 1 else 0.5
    if abs(delays[i] - ref.delay) > half_step + 1e-9:
        raise UserError(f"hists: delay {ref.delay} of '{ref.name}' is outside the scan of {path} "
                        f"({delays[0]:.6g} .. {delays[-1]:.6g})")
    return i


def _bx_index(path: Path, x: float) -> int:
    """Column of the BX map (flows included) whose bin centre is x."""
    i = int(np.argmin(np.abs(BX_CENTRES - x)))
    if abs(BX_CENTRES[i] - x) > 1e-9:
        raise UserError(f"in_time_bin: {x} is not a bin centre of the BX axis "
                        f"({BX_CENTRES[0]:g} .. {BX_CENTRES[-1]:g} by 1); reading {path}")
    return i + 1


def _attr_index(count: int) -> int:
    """Column of AttributionScan (flows included) holding hits that fired in ``count`` BXs."""
    return int(round(count - ATTR_LOW - 0.5)) + 1


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (physics.md §7)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)


def _bx_observables(w: np.ndarray, s: np.ndarray, c: np.ndarray) -> dict[str, np.ndarray]:
    """Out-of-time fraction and mean of BX histograms [rows, bins] (physics.md §7).

    NaN where a histogram is empty: the fraction and the mean are undefined there, and a
    gap in a curve says so where a 0 would look like a measurement.
    """
    total = w.sum(axis=1)
    in_time = np.argmin(np.abs(c), axis=1)
    mask = np.ones_like(w, dtype=bool)
    mask[np.arange(len(w)), in_time] = False
    safe = np.where(total > 0, total, np.nan)
    return {
        "out_of_time": np.where(mask, w, 0.0).sum(axis=1) / safe,
        "out_of_time_error": np.sqrt(np.where(mask, s * s, 0.0).sum(axis=1)) / safe,
        "mean": (w * c).sum(axis=1) / safe,
        "mean_error": np.sqrt(((s * c) ** 2).sum(axis=1)) / safe,
    }


def _read_bx_hists(path: Path, refs: Sequence[BXHistRef]) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    import uproot

    with uproot.open(path) as f:
        for ref in refs:
            try:
                h = _get(f, path, ref.folder, ref.name)
            except KeyError as exc:
                raise UserError(exc.args[0]) from None
            yield h.values(flow=False).astype(np.float64), h.errors(flow=False), h.axis().centers()


# --------------------------------------------------------------------------- table + cache
Runner = Callable[[Callable[..., FileColumns], list[tuple]], Iterable[FileColumns]]
VALUE_KEYS = [k for o in OBSERVABLES for k in (o.key, o.error_key) if k]


def serial_runner(func: Callable[..., FileColumns], calls: list[tuple]) -> Iterator[FileColumns]:
    for args in calls:
        yield func(*args)


def cache_key(sources: Sources) -> dict[str, Any]:
    """What the whole store depends on (each file's own signature is in the task table)."""
    return {"format": store.FORMAT, "sources": sources.fingerprint()}


@dataclass(frozen=True)
class BuildReport:
    """What :func:`load_or_build` did: files read, files whose rows were kept; true when the
    store was written."""

    read: int
    reused: int
    written: bool

    def __bool__(self) -> bool:
        return self.written

    def describe(self) -> str:
        if not self.written:
            return f"reused ({self.reused} file(s) unchanged)"
        return f"computed ({self.read} file(s) read" + (f", {self.reused} unchanged kept)" if self.reused else ")")


def store_directory(target: Path) -> Path:
    """The store's directory, given it or the path of its ``observables.parquet``."""
    target = Path(target)
    return target.parent if target.suffix == ".parquet" else target


def load_or_build(tasks: Iterable[FinishedTask], target: Path, sources: Sources = Sources(),
                  rebuild: bool = False, runner: Runner = serial_runner) -> tuple[store.Store, BuildReport]:
    """The store of these tasks' observables in ``target`` (see :func:`build`), opened."""
    report = build(tasks, target, sources, rebuild, runner)
    return store.Store(store_directory(target)), report


def build(tasks: Iterable[FinishedTask], target: Path, sources: Sources = Sources(),
          rebuild: bool = False, runner: Runner = serial_runner) -> BuildReport:
    """Bring the store of these tasks' observables in ``target`` (a directory, or its
    ``observables.parquet``) up to date: reused when every file is unchanged, otherwise
    rewritten a batch of files at a time, keeping the rows of unchanged files (unless
    ``rebuild``) and reading the others through ``runner``. ``tasks`` is iterated once; of
    each, its id, file and parameters are kept, the parameters packed (see Packer)."""
    directory = store_directory(target)
    key = cache_key(sources)
    packer = Packer()
    wanted: dict[str, tuple] = {}  # file -> (task id, packed parameters, signature)
    for task in tasks:
        sig = store.Signature.of(task.output, task.task_id, task.directory)
        wanted[sig.file] = (task.task_id, packer.pack(task.params), sig)
    if not wanted:
        raise UserError("no finished task to read: the production has no complete result yet")
    old, known = None, {}
    stored = store.read_key(directory)
    if not rebuild and stored is not None and {k: stored.get(k) for k in key} == key:
        old = store.StoreFiles(directory)
        known = old.signatures()
        if len(known) == len(wanted) and all(known.get(sig, (None, None))[1] == task_id
                                             for task_id, _, sig in wanted.values()):
            return BuildReport(0, len(wanted), False)
    writer = store.StoreWriter(directory, key, VALUE_KEYS)
    try:
        keep: dict[int, tuple] = {}
        for file, (task_id, packed, sig) in list(wanted.items()):
            index, known_id = known.get(sig, (None, None))
            if index is not None and known_id == task_id:
                keep[index] = (task_id, sig, Packer.Params(packed))
                del wanted[file]
        known = None
        if old is not None:
            writer.copy_tasks(old, keep)
        calls = _Calls(sorted(wanted.items()), sources)
        for batch in store.batches(runner(file_columns, calls)):
            found = [wanted[part.file] for part in batch]
            writer.add_files(batch, [sig for _, _, sig in found], [task_id for task_id, _, _ in found])
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return BuildReport(len(calls), len(keep), True)


class _Calls:
    """The runner's calls, one per file to read, each made when the runner takes it."""

    def __init__(self, items: Sequence[tuple[str, tuple]], sources: Sources):
        self._items, self._sources = items, sources

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):
        for file, (_, packed, _) in self._items:
            yield file, dict(zip(*packed)), self._sources


def build_table(tasks: Sequence[FinishedTask], sources: Sources = Sources(),
                runner: Runner = serial_runner) -> pd.DataFrame:
    """The wide table of a few files in memory (one row per file, mode and delay with the
    file's parameters): tests and benchmarks; productions use :func:`load_or_build`."""
    if not tasks:
        raise UserError("no finished task to read: the production has no complete result yet")
    calls = [(str(t.output), dict(t.params), sources) for t in tasks]
    return table_of(list(runner(file_columns, calls)))


def comparable(value: Any) -> Any:
    """A key under which values that :func:`same_value` calls equal fall together (5000,
    5000.0 and "5000"), for indexes."""
    if isinstance(value, bool) or value is None:
        return ("exact", value)
    try:
        return ("number", float(value))
    except (TypeError, ValueError):
        return ("text", str(value))


def same_value(a: Any, b: Any) -> bool:
    """A parameter value as typed (5000) is the production's (5000.0)."""
    if not isinstance(a, bool) and not isinstance(b, bool):
        try:
            return float(a) == float(b)
        except (TypeError, ValueError):
            pass
    return str(a) == str(b)


def parameter_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in RESERVED and c not in ("task", "task_id")]


# --------------------------------------------------------------------------- aggregator
def scan_output(production: Path, timerc) -> Path:
    """Where a production's scan outputs go by default, one folder per production: its path
    under ``[paths] production`` repeated under ``[paths] scans`` (``-o a/same`` and ``-o
    b/same`` are ``scans/a/same`` and ``scans/b/same``: a name alone would let the second
    replace the first's table); a production elsewhere gets its name and a short hash of its
    absolute path (``same-3fa2b1c4``)."""
    import hashlib

    scans = Path(timerc.data_path("scans"))
    production = Path(os.path.abspath(production))
    root = timerc.optional_path("production")
    if root is not None:
        try:
            inside = production.relative_to(os.path.abspath(root))
        except ValueError:
            inside = None
        if inside is not None and inside.parts:
            return scans / inside
    digest = hashlib.sha1(str(production).encode()).hexdigest()[:8]
    return scans / f"{production.name}-{digest}"


def aggregate(request: AggregationRequest) -> list[Path]:
    """At the end of a production: the store under :func:`scan_output`, which ``plotScan -i
    <production>`` then finds as its cache. Productions of scripts that do not write
    harvested BX-histogram files (physics.md section 6) are not its business."""
    tasks = (t for t in request.tasks
             if t.output.name.startswith("BXHist") and t.output.name.endswith("_harvested.root"))
    first = next(tasks, None)
    if first is None:
        return []
    directory = scan_output(Path(request.production_dir), request.timerc)
    build(itertools.chain([first], tasks), directory)
    return [directory / store.VALUES_NAME, directory / store.TASKS_NAME]


def observables_aggregator() -> Aggregator:
    from .aggregators import OBSERVABLES

    return OBSERVABLES


__all__ = [
    "OBSERVABLES", "ObservableDef", "BXHistRef", "Sources", "observable", "file_observables",
    "build_table", "load_or_build", "observables_aggregator", "param_column", "parameter_columns", "TABLE_NAME",
    "scan_output",
]
