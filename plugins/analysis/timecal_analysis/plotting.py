"""Figures of the scan observables: per observable and scanned parameter, the others fixed,
curves vs delay (one per value) and a delay x parameter map, saved as PNG and/or PDF with
the numbers behind them as ROOT histograms (so a talk's figure can be redrawn in ROOT
without rerunning anything).

Figures are independent, so they are rendered in parallel (local processes, or the workers
of a Dask cluster), and each costs far less than a plain matplotlib + mplhep figure:
- a figure layout (axes, colour-bar axes, tick objects, the CMS label whose width is
  measured once instead of mplhep's ``cms.label`` drawing the whole figure to place its
  text) is built once per style and process and reused;
- axes and labels sit at fixed positions: no tight layout, no label placement pass;
- the PNG is drawn in two layers: the frame (ticks, labels, legend, colour bar), the same
  for every figure of one observable and parameter, is drawn once and kept; per figure only
  the data and two texts are drawn and the frame blended on top (ticks stay over the data,
  as in a full draw); the PNG is written by a small unfiltered encoder, the thumbnail
  box-filtered from the same pixels;
- the PDF is drawn in layers too, exactly: the frame's PDF operators, and the fonts,
  transparency states and images they use, are recorded once per frame and copied into
  each file, split where the data and texts go, which are drawn per figure in their places
  in the draw order (the page is the one ``savefig`` draws); font subsets are embedded from
  a cache; a map is an image embedded at its own size rather than resampled at the
  figure's dpi. A PDF costs about a third of ``savefig``, the frame recordings (one per
  distinct frame) included (pdf_layers, which steps aside for ``savefig`` on a matplotlib
  it was not tested with).
"""

from __future__ import annotations

import gc
import itertools
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # batch nodes and CI have no display

import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from . import pdf_layers  # noqa: E402
from .observables import ObservableDef  # noqa: E402

COLOUR_MAP = "viridis"
DELAY_LABEL = "Delay [ns]"
CMS_LABEL = "Phase-2 Simulation"
THUMB_SCALE = 0.25
FORMATS = ("png", "pdf", "root")
KINDS = ("curves", "map")
#: Up to this many values of a scanned parameter get a legend (distinct colours and
#: markers); more get a colour bar. Two curves on a 0-2 colour bar cannot be told apart.
MAX_DISCRETE_VALUES = 8
#: Distinct on a projector and in grey print (Petroff's colour-blind safe 10-colour set, as
#: CMS recommends, and one marker each).
DISCRETE_COLOURS = ("#3f90da", "#ffa90e", "#bd1f01", "#94a4a2", "#832db6", "#a96b59", "#e76300",
                    "#b9ac70")
DISCRETE_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*")
FIGURE_SIZE = (10.0, 7.5)
#: Fixed axes rectangle (figure fractions): the right quarter holds legend, colour bar and
#: the fixed parameters, so nothing overlaps the curves and no layout pass is needed.
AXES_RECT = (0.15, 0.13, 0.56, 0.78)
SIDE_X = 0.73
# Units of the production parameters users scan most; a YAML 'labels' entry overrides them.
DEFAULT_LABELS = {
    "threshold": "Threshold [e]",
    "thresholdsmearing": "Threshold smearing [e]",
    "tofsmearing": "ToF smearing [ns]",
    "pt": "$p_T$ [GeV]",
    "pileup": "Pile-up",
    "N": "Events",
    "delay": DELAY_LABEL,
}


@dataclass(frozen=True)
class FigureRecord:
    """One saved figure, as the index lists it (None for a format not drawn)."""

    observable: ObservableDef
    parameter: str
    mode: str
    kind: str  # "curves" or "map"
    fixed: Mapping[str, Any]
    png: Path | None
    pdf: Path | None
    root: Path | None
    thumbnail: Path | None


@dataclass
class PlotRequest:
    store: Any  # timecal_analysis.store.Store
    grid: Mapping[str, Sequence[Any]]  # parameter -> values to plot (as in the task table)
    observables: Sequence[ObservableDef]
    modes: Sequence[str]
    output_dir: Path
    labels: Mapping[str, str] = field(default_factory=dict)
    kinds: Sequence[str] = KINDS
    formats: Sequence[str] = FORMATS
    #: store indices of the tasks on the grid (None: every task of the store)
    tasks: Sequence[int] | None = None
    every_slice: bool = False  # every combination of the other parameters (figureset)

    def index(self):
        from .figureset import GridIndex

        table = self.store.tasks if self.tasks is None else self.store.tasks.loc[list(self.tasks)]
        names = list(self.grid)
        return GridIndex(names, [table[n].tolist() for n in names], table.index.tolist())

    def panels(self) -> list:
        """(observable, figureset.Panel) of every figure, in the index's order."""
        panels = self.index().panels(self.grid, self.modes, self.every_slice)
        return [(obs, panel) for obs in self.observables for panel in panels]


@dataclass(frozen=True)
class FigureJob:
    """Everything one (curves, map) pair needs, small and picklable: the numbers, not the
    table, travel to the worker."""

    obs: ObservableDef
    parameter: str
    mode: str
    fixed: Mapping[str, Any]
    values: list
    delays: np.ndarray
    matrix: np.ndarray
    errors: np.ndarray
    labels: Mapping[str, str]
    folder: Path
    stem: str
    kinds: tuple[str, ...]
    formats: tuple[str, ...]

    @property
    def key(self) -> tuple:
        return (self.obs.key, self.parameter, self.stem)


@dataclass(frozen=True)
class Rendered:
    key: tuple  # FigureJob.key of the job
    records: list[FigureRecord]
    cpu_seconds: float  # process time spent on this job's figures
    figures: int


def label_of(labels: Mapping[str, str], name: str) -> str:
    return labels.get(name) or DEFAULT_LABELS.get(name, name)


def split_unit(label: str) -> tuple[str, str]:
    """"ToF smearing [ns]" -> ("ToF smearing", "ns"); no unit -> (label, "")."""
    text = label.strip()
    if text.endswith("]") and "[" in text:
        name, unit = text[:-1].rsplit("[", 1)
        return name.strip(), unit.strip()
    return text, ""


def value_with_unit(labels: Mapping[str, str], name: str, value: Any) -> str:
    """"ToF smearing = 0 ns", as a talk reads it (not "ToF smearing [ns] = 0")."""
    title, unit = split_unit(label_of(labels, name))
    return f"{title} = {value_text(value)}" + (f" {unit}" if unit else "")


def token(value: Any) -> str:
    """A parameter value as a file-name fragment (5800.0 -> 5800p0)."""
    return str(value).replace(".", "p").replace("/", "-").replace(" ", "-")


def value_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def is_numeric(values) -> bool:
    return all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values)


def discrete(values) -> bool:
    """A legend rather than a colour bar: few values, or values that are not numbers."""
    return len(values) <= MAX_DISCRETE_VALUES or not is_numeric(values)


def edges_from_centres(centres: np.ndarray) -> np.ndarray:
    """Bin edges halfway between sorted centres, the outer ones mirrored (a single centre
    gets a unit-wide bin)."""
    c = np.asarray(centres, dtype=np.float64)
    if len(c) == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def figure_jobs(request: PlotRequest, panels: Sequence | None = None):
    """The FigureJob of each panel, in order (lazily: one observable's values are read from
    the store at a time, for the tasks its figures show)."""
    from .figureset import needed_tasks

    panels = request.panels() if panels is None else panels
    for obs, group in itertools.groupby(panels, key=lambda item: item[0]):
        group = [panel for _, panel in group]
        keys = [obs.key] + ([obs.error_key] if obs.error_key else [])
        cube = request.store.read(keys, needed_tasks(group))
        row = {int(t): i for i, t in enumerate(cube.tasks)}
        for panel in group:
            if panel.mode not in cube.modes:
                continue
            rows = [row[t] for t in panel.tasks]
            m = cube.modes.index(panel.mode)
            present = cube.present[rows, m, :]
            keep = present.any(axis=0)
            if not keep.any():
                continue
            present = present[:, keep]
            matrix = cube.values[obs.key][rows, m][:, keep]
            errors = np.zeros_like(matrix)
            if obs.error_key:  # as curve_matrix: 0 where a curve lacks a delay
                errors[present] = cube.values[obs.error_key][rows, m][:, keep][present]
            yield FigureJob(
                obs, panel.parameter, panel.mode, dict(panel.fixed), list(panel.values), cube.delays[keep],
                matrix, errors, dict(request.labels),
                request.output_dir / "plots" / obs.key / token(panel.parameter),
                "_".join([panel.mode] + [f"{token(k)}_{token(v)}" for k, v in panel.fixed.items()]),
                tuple(request.kinds), tuple(request.formats))


def plot_scan(request: PlotRequest, progress=None, runner=None) -> list[FigureRecord]:
    """Every figure of the request; ``runner(render_job, jobs)`` yields the rendered jobs
    (default: local processes); ``progress(done, total)`` is called after each job."""
    panels = request.panels()
    if "pdf" in request.formats:
        pdf_layers.GATE.usable()  # decided (and said) here, once, not in each forked worker
    order: list[tuple] = []

    def jobs():
        for job in figure_jobs(request, panels):
            order.append(job.key)
            yield job

    done: dict[tuple, list[FigureRecord]] = {}
    if progress:
        progress(0, len(panels))
    for i, rendered in enumerate((runner or local_processes)(render_job, jobs())):
        done[rendered.key] = rendered.records
        if progress:
            progress(i + 1, len(panels))
    return [record for key in order for record in done.get(key, [])]  # in the request's order


#: Consecutive jobs per submission to a local worker process (they share figure frames);
#: small, so that progress and the ETA follow the figures as they are drawn.
CHUNK_JOBS = 4
#: Submissions in flight per worker: the jobs (their numbers) are built as they are needed.
IN_FLIGHT_PER_WORKER = 3


def workers_for(n_jobs: int) -> int:
    return max(1, min(n_jobs, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else (os.cpu_count() or 1)))


def local_processes(func, jobs, workers: int | None = None):
    """``func`` over ``jobs`` (any iterable, consumed as workers free up) in a pool of local
    processes (forked where the platform allows and no thread runs: the workers start with
    matplotlib already imported), in completion order."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    jobs = iter(jobs)
    head = list(itertools.islice(jobs, 2))
    workers = workers or workers_for(os.cpu_count() or 1)
    if workers == 1 or len(head) <= 1:
        yield from (func(job) for job in itertools.chain(head, jobs))
        return
    jobs = itertools.chain(head, jobs)
    methods = multiprocessing.get_all_start_methods()
    # Forking a process that runs threads (a Dask client left behind) can deadlock a child.
    fork = "fork" in methods and threading.active_count() == 1
    context = multiprocessing.get_context("fork" if fork else ("forkserver" if "forkserver" in methods else None))
    if fork:
        # What the forked workers inherit is never collected by them: without this their
        # collector walks every inherited object, and each page it touches is copied
        # (100,000 tasks' records were copied into each worker).
        gc.collect()
        gc.freeze()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        running: set = set()
        while True:
            while len(running) < workers * IN_FLIGHT_PER_WORKER:
                chunk = list(itertools.islice(jobs, CHUNK_JOBS))
                if not chunk:
                    break
                running.add(pool.submit(_apply_all, func, chunk))
            if not running:
                return
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                yield from future.result()
    if fork:
        gc.unfreeze()


def _apply_all(func, jobs) -> list:
    return [func(job) for job in jobs]


_STYLE: dict | None = None


def _style() -> dict:
    """mplhep's CMS style, resolved once per process."""
    global _STYLE
    if _STYLE is None:
        with plt.style.context(mplhep.style.CMS):
            _STYLE = dict(matplotlib.rcParams)
        _STYLE["pdf.compression"] = 1  # a fifth of the PDF's CPU; files a little larger
    return _STYLE


def render_job(job: FigureJob) -> Rendered:
    """Draw and save the figures of one job (run in a worker process)."""
    start = time.process_time()
    job.folder.mkdir(parents=True, exist_ok=True)
    out = []
    with matplotlib.rc_context(_style()):
        for kind in job.kinds:
            out.append(_render_one(job, kind))
    return Rendered(job.key, out, time.process_time() - start, len(out))


def write_png(path: Path, pixels: np.ndarray, level: int = 1) -> None:
    """An 8-bit RGB or RGBA PNG (by the last axis), rows unfiltered, deflated at ``level``:
    a third of the time of Pillow's encoder (which tries five row filters) for the same
    size on plots, which are mostly flat colour. Lossless: read back it is ``pixels``."""
    import struct
    import zlib

    height, width, channels = pixels.shape
    raw = np.empty((height, 1 + channels * width), dtype=np.uint8)
    raw[:, 0] = 0  # filter type None
    raw[:, 1:] = pixels.reshape(height, -1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    colour_type = {3: 2, 4: 6}[channels]  # RGB, RGBA
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                          + chunk(b"IDAT", zlib.compress(raw.tobytes(), level)) + chunk(b"IEND", b""))


def cms_label(ax, rlabel: str):
    """"CMS Phase-2 Simulation" above the top-left corner, as mplhep's loc=0 places it, and
    ``rlabel`` level with it over the right-hand column. The width of "CMS" is measured once, when the
    template is laid out (mplhep's ``cms.label`` draws the whole figure for that, every
    time). Returns the right-hand text, to be reused."""
    size = matplotlib.rcParams["font.size"]
    fig = ax.figure
    cms = ax.text(0.0, 1.01, "CMS", transform=ax.transAxes, ha="left", va="bottom",
                  fontweight="bold", fontsize=size * 1.3)
    width = cms.get_window_extent(fig.canvas.get_renderer()).width  # pixels at the figure's dpi
    gap = 0.4 * size * fig.dpi / 72.0
    ax.text((width + gap) / (fig.bbox.width * AXES_RECT[2]), 1.01, CMS_LABEL, transform=ax.transAxes,
            ha="left", va="bottom", fontstyle="italic", fontsize=size)
    # The mode goes in the right-hand column, level with the label: never on top of it.
    return fig.text(SIDE_X, AXES_RECT[1] + AXES_RECT[3] + 0.01, rlabel, ha="left", va="bottom",
                    fontsize=size)


class FigureTemplate:
    """A figure laid out once per style and process, reused by every figure of that style:
    frame, CMS label, tick objects and colour-bar axes are built once; each figure only
    swaps its data artists, labels and limits. Creating the axes and their ~40 tick
    objects cost about as much as drawing them."""

    def __init__(self, with_bar: bool):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        self.fig = Figure(figsize=FIGURE_SIZE)
        self.canvas = FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_axes(AXES_RECT)
        self.cax = self.fig.add_axes((SIDE_X, 0.40, 0.03, 0.45)) if with_bar else None
        self.colorbar = None
        self.side_column = True
        self.mode_text = cms_label(self.ax, "")  # needs the canvas: measures "CMS" once
        # Axis labels at fixed places (right of the x axis, top of the y axis, as the CMS
        # style aligns them), clear of the widest tick labels ("-0.25", "8000"): matplotlib
        # would otherwise measure every tick label at each draw to place them.
        self.ax.xaxis.set_label_coords(1.0, -0.075)
        self.ax.yaxis.set_label_coords(-0.15, 1.0)
        self.context = self.fig.text(SIDE_X, 0.36, "", ha="left", va="top", fontsize="x-small")
        self.frames: dict[tuple, np.ndarray] = {}
        self.pdf_frames: dict[tuple, pdf_layers.PdfFrame] = {}

    # ----------------------------------------------------------------- PNG by layers
    def dynamic_artists(self) -> list:
        """What changes from one figure to the next: the data and the two texts (the legend
        depends only on the scanned values: it is part of the frame)."""
        artists = sorted(list(self.ax.collections) + list(self.ax.lines) + list(self.ax.images),
                         key=lambda a: a.get_zorder())
        return artists + [self.mode_text, self.context]

    def frame_key(self) -> tuple:
        """Everything the static layer shows: equal keys, identical frames."""
        y = self.ax.yaxis
        locs = y.get_major_locator()()
        key = (self.ax.get_xlim(), self.ax.get_ylim(), self.ax.get_xlabel(), self.ax.get_ylabel(),
               tuple(locs), tuple(y.get_major_formatter().format_ticks(locs)),
               type(y.get_minor_locator()).__name__)
        legend = self.ax.get_legend()
        if legend is not None:
            key += (legend.get_title().get_text(), tuple(t.get_text() for t in legend.get_texts()))
        if self.colorbar is not None:
            norm = self.colorbar.norm
            key += (norm.vmin, norm.vmax, self.colorbar.cmap.name, self.colorbar.ax.get_ylabel())
        return key

    def pixels(self) -> np.ndarray:
        """The figure as RGBA pixels, drawn in two layers: the frame (axes, ticks, labels,
        CMS label, colour bar) drawn once per distinct frame and kept, then per figure only
        the data, legend and texts, with the kept frame blended on top (ticks over data,
        as in a full draw). A full draw spends most of its time on the ~80 tick objects."""
        dynamic = self.dynamic_artists()
        key = self.frame_key()
        frame = self.frames.get(key)
        if frame is None:
            if len(self.frames) >= MAX_FRAMES:
                self.frames.clear()
            for artist in dynamic:
                artist.set_visible(False)
            self.fig.patch.set_alpha(0.0)
            self.ax.patch.set_alpha(0.0)
            self.canvas.draw()
            frame = np.asarray(self.canvas.buffer_rgba())[::-1].copy()  # draw_image: bottom row first
            for artist in dynamic:
                artist.set_visible(True)
            self.fig.patch.set_alpha(1.0)
            self.ax.patch.set_alpha(1.0)
            self.frames[key] = frame
        renderer = self.canvas.get_renderer()
        renderer.clear()
        self.fig.patch.draw(renderer)
        self.ax.patch.draw(renderer)
        for artist in dynamic:
            artist.draw(renderer)
        gc = renderer.new_gc()
        renderer.draw_image(gc, 0, 0, frame)
        gc.restore()
        return np.asarray(self.canvas.buffer_rgba())

    # ----------------------------------------------------------------- PDF by layers
    def write_pdf(self, path: Path) -> None:
        """The figure as a PDF, in layers as the PNG: the frame's drawing operators (and
        the fonts, images and transparency states they use) are recorded once per distinct
        frame and copied into each file; per figure only the patches, the data and the two
        texts are drawn, in their places in the draw order (see pdf_layers: savefig where
        the layers may not run)."""
        dynamic = [self.fig.patch, self.ax.patch] + self.dynamic_artists()
        pdf_layers.write(self.fig, path, dynamic, self.frame_key(), self.pdf_frames, MAX_FRAMES)

    def reset(self) -> None:
        """Remove the previous figure's data artists and locators."""
        for artist in list(self.ax.lines) + list(self.ax.collections) + list(self.ax.images):
            artist.remove()
        if self.ax.get_legend() is not None:
            self.ax.get_legend().remove()
        from matplotlib.ticker import AutoLocator, AutoMinorLocator, ScalarFormatter

        self.ax.yaxis.set_major_locator(AutoLocator())
        self.ax.yaxis.set_major_formatter(ScalarFormatter())
        self.ax.yaxis.set_minor_locator(AutoMinorLocator())
        self.ax.set_prop_cycle(None)

    def bar(self, mappable, label: str):
        if self.colorbar is None:
            self.colorbar = self.fig.colorbar(mappable, cax=self.cax)
        else:
            self.colorbar.update_normal(mappable)
        self.colorbar.minorticks_off()  # the major ticks read the scale; minor ones cost a draw each
        self.colorbar.set_label(label)
        return self.colorbar


class OnAxes:
    """Draw on someone else's axes (a notebook's): colour bars beside them the usual way,
    legends inside. The same draw functions as the templates use."""

    side_column = False

    def __init__(self, ax):
        self.ax, self.fig = ax, ax.figure
        self.colorbar = None

    def bar(self, mappable, label: str):
        self.colorbar = self.fig.colorbar(mappable, ax=self.ax)
        self.colorbar.set_label(label)
        return self.colorbar


_TEMPLATES: dict[tuple, FigureTemplate] = {}
#: Smallest side, in pixels, of a map's image (cells repeated): see draw_map.
MIN_IMAGE_SIDE = 64
#: Frames kept per template (each ~3 MB of pixels).
MAX_FRAMES = 32


def _template(kind: str, with_bar: bool) -> FigureTemplate:
    key = (kind, with_bar)
    if key not in _TEMPLATES:
        _TEMPLATES[key] = FigureTemplate(with_bar)
    template = _TEMPLATES[key]
    template.reset()
    return template


#: Characters that fit on one line of the right-hand column (x-small text).
SIDE_WIDTH = 22


def _side_line(text: str) -> str:
    """"Threshold smearing = 500 e" broken before its value when too wide for the column."""
    return text if len(text) <= SIDE_WIDTH else text.replace(" = ", "\n   = ", 1)


def _render_one(job: FigureJob, kind: str) -> FigureRecord:
    with_bar = kind == "map" or not discrete(job.values)
    t = _template(kind, with_bar)
    draw = draw_curves if kind == "curves" else draw_map
    side = draw(t, job.obs, job.parameter, job.values, job.delays, job.matrix, job.errors, job.labels)
    t.mode_text.set_text(job.mode)
    t.context.set_text("\n".join(_side_line(value_with_unit(job.labels, k, v)) for k, v in job.fixed.items()))
    t.context.set_y(side)
    base = job.folder / f"{kind}_{job.stem}"
    png = pdf = root = thumb = None
    if "png" in job.formats:
        from PIL import Image

        pixels = t.pixels()
        # The Agg buffer as it is (RGBA, opaque: dropping alpha costs a strided copy that
        # takes longer than deflating it); the thumbnail is a box-filtered quarter of it.
        png = base.with_suffix(".png")
        write_png(png, pixels)
        thumb = job.folder / "thumbs" / png.name
        thumb.parent.mkdir(exist_ok=True)
        Image.fromarray(pixels).reduce(round(1 / THUMB_SCALE)).convert("RGB").save(thumb, compress_level=1)
    if "pdf" in job.formats:
        pdf = base.with_suffix(".pdf")
        t.write_pdf(pdf)
    if "root" in job.formats:
        root = base.with_suffix(".root")
        _write_root(root, kind, job.obs, job.parameter, job.values, job.delays, job.matrix, job.errors,
                    job.labels)
    return FigureRecord(job.obs, job.parameter, job.mode, kind, dict(job.fixed), png, pdf, root, thumb)


def curve_matrix(rows: pd.DataFrame, obs: ObservableDef, parameter: str):
    """(values of ``parameter``, delays, observable[value, delay], error[value, delay]) of
    rows holding one curve per value; NaN where a curve lacks a delay. One pass over the
    rows (each placed by its value's and its delay's position), not a mask per value."""
    values = sorted(pd.unique(rows[parameter]))
    delays = np.sort(pd.unique(rows["delay"]))
    position = {v: i for i, v in enumerate(values)}
    rows_at = np.fromiter((position[v] for v in rows[parameter]), dtype=np.int64, count=len(rows))
    cols = np.searchsorted(delays, rows["delay"].to_numpy())
    matrix = np.full((len(values), len(delays)), np.nan)
    errors = np.zeros_like(matrix)
    matrix[rows_at, cols] = rows[obs.key].to_numpy()
    if obs.error_key:
        errors[rows_at, cols] = rows[obs.error_key].to_numpy()
    return values, delays, matrix, errors


def draw_curves(t: FigureTemplate, obs, parameter, values, delays, matrix, errors, labels) -> float:
    """Curves vs delay: a legend (colour + marker per value) for few values, a colour bar
    for many. Returns the figure height below which the fixed parameters may be written."""
    fig, ax = t.fig, t.ax
    label = label_of(labels, parameter)
    if discrete(values):
        title, unit = split_unit(label)
        step = max(1, len(delays) // 12)
        for i, value in enumerate(values):
            colour = DISCRETE_COLOURS[i % len(DISCRETE_COLOURS)]
            ax.plot(delays, matrix[i], color=colour, lw=2, marker=DISCRETE_MARKERS[i % len(DISCRETE_MARKERS)],
                    markevery=(i * step // max(len(values), 1), step), ms=8,
                    label=value_text(value) + (f" {unit}" if unit else ""))
            if obs.error_key:
                ax.fill_between(delays, matrix[i] - errors[i], matrix[i] + errors[i], color=colour,
                                alpha=0.25, lw=0)
        if t.side_column:
            legend = ax.legend(title=title, loc="upper left", bbox_to_anchor=(SIDE_X, AXES_RECT[1] + AXES_RECT[3]),
                               bbox_transform=fig.transFigure, borderaxespad=0, frameon=False,
                               fontsize="small", title_fontsize="small", alignment="left")
        else:
            legend = ax.legend(title=title, fontsize="small", title_fontsize="small", alignment="left")
        side = AXES_RECT[1] + AXES_RECT[3] - 0.075 * (len(values) + 1) - 0.03
    else:
        cmap = plt.get_cmap(COLOUR_MAP)
        norm = matplotlib.colors.Normalize(vmin=min(values), vmax=max(values))
        for i, value in enumerate(values):
            colour = cmap(norm(value))
            ax.plot(delays, matrix[i], color=colour, lw=1.5)
            if obs.error_key:
                ax.fill_between(delays, matrix[i] - errors[i], matrix[i] + errors[i], color=colour,
                                alpha=0.25, lw=0)
        t.bar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), label)
        side = 0.30
    ax.set_xlabel(DELAY_LABEL)
    ax.set_ylabel(obs.axis_label)
    ax.set_xlim(delays[0], delays[-1])
    low, high = _colour_range(obs, matrix)
    ax.set_ylim(low, high + 0.05 * (high - low))
    return side


def _colour_range(obs: ObservableDef, matrix: np.ndarray) -> tuple[float, float]:
    if obs.natural_range is not None:
        return obs.natural_range
    finite = matrix[np.isfinite(matrix)]
    if finite.size == 0 or finite.min() == finite.max():
        centre = float(finite[0]) if finite.size else 0.0
        return centre - 1.0, centre + 1.0
    margin = 0.05 * (finite.max() - finite.min())
    return float(finite.min() - margin), float(finite.max() + margin)


def draw_map(t: FigureTemplate, obs, parameter, values, delays, matrix, errors, labels) -> float:
    """Delay x parameter map; discrete values are rows with their own tick labels."""
    ax = t.ax
    numeric = is_numeric(values)
    y_centres = np.asarray(values, dtype=np.float64) if numeric and not discrete(values) \
        else np.arange(len(values), dtype=np.float64)
    low, high = _colour_range(obs, matrix)
    x_edges, y_edges = edges_from_centres(delays), edges_from_centres(y_centres)
    steps = np.diff(x_edges), np.diff(y_edges)
    if all(np.allclose(d, d[0], rtol=1e-3) for d in steps):
        # Uniform cells: an image, far cheaper than thousands of quadrilaterals. Interpolation
        # "none": Agg scales it (nearest, as "nearest" does), a PDF embeds it as it is
        # instead of resampled at the figure's dpi (which cost a third of a map's PDF). Cells
        # are repeated to at least MIN_IMAGE_SIDE pixels a side, so that viewers which smooth
        # embedded images (macOS Preview) blur only the edge of a cell, not whole rows.
        repeat = [-(-MIN_IMAGE_SIDE // n) for n in matrix.shape]
        cells = np.repeat(np.repeat(matrix, repeat[0], axis=0), repeat[1], axis=1)
        mesh = ax.imshow(np.ma.masked_invalid(cells), cmap=COLOUR_MAP, vmin=low, vmax=high,
                         origin="lower", aspect="auto", interpolation="none", interpolation_stage="rgba",
                         extent=(x_edges[0], x_edges[-1], y_edges[0], y_edges[-1]))
    else:
        mesh = ax.pcolormesh(x_edges, y_edges, np.ma.masked_invalid(matrix), cmap=COLOUR_MAP,
                             vmin=low, vmax=high, shading="flat", rasterized=True)
    t.bar(mesh, obs.axis_label)
    ax.set_ylim(edges_from_centres(y_centres)[[0, -1]])
    if discrete(values) or len(values) <= 12:
        ax.set_yticks(y_centres, labels=[value_text(v) for v in values])
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel(DELAY_LABEL)
    ax.set_ylabel(label_of(labels, parameter))
    return 0.30


def _write_root(path: Path, kind, obs, parameter, values, delays, matrix, errors, labels) -> None:
    """TH1D per curve (``<parameter>_<value>``) or one TH2D (``map``); empty points as 0."""
    import hist
    import uproot

    x_axis = hist.axis.Variable(edges_from_centres(delays), name="delay", label=DELAY_LABEL)
    content = np.nan_to_num(matrix)
    variance = np.nan_to_num(errors) ** 2
    with uproot.recreate(path) as f:
        if kind == "curves":
            for i, value in enumerate(values):
                h = hist.Hist(x_axis, storage=hist.storage.Weight(), label=obs.axis_label,
                              name=f"{parameter} = {value_text(value)}")
                h.view().value = content[i]
                h.view().variance = variance[i]
                f[f"{token(parameter)}_{token(value_text(value))}"] = h
        else:
            numeric = all(isinstance(v, (int, float, np.number)) for v in values)
            y = np.asarray(values, dtype=np.float64) if numeric else np.arange(len(values), dtype=np.float64)
            y_axis = hist.axis.Variable(edges_from_centres(y), name=token(parameter),
                                        label=label_of(labels, parameter))
            h = hist.Hist(x_axis, y_axis, storage=hist.storage.Weight(), label=obs.axis_label,
                          name=obs.title)
            h.view().value = content.T
            h.view().variance = variance.T
            f["map"] = h
