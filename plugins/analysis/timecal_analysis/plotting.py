"""Figures of the scan observables: per observable and scanned parameter, the others fixed,
curves vs delay (one per value) and a delay x parameter map, each saved as PNG and PDF with
the numbers behind it beside them as ROOT histograms (so a talk's figure can be redrawn in
ROOT without rerunning anything)."""

from __future__ import annotations

import itertools
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

from .observables import ObservableDef  # noqa: E402

COLOUR_MAP = "viridis"
DELAY_LABEL = "Delay [ns]"
CMS_LABEL = "Phase-2 Simulation"
THUMB_SCALE = 0.25
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
    """One saved figure, as the index lists it."""

    observable: ObservableDef
    parameter: str
    mode: str
    kind: str  # "curves" or "map"
    fixed: Mapping[str, Any]
    png: Path
    pdf: Path
    root: Path
    thumbnail: Path


@dataclass
class PlotRequest:
    table: pd.DataFrame
    grid: Mapping[str, Sequence[Any]]  # parameter -> values to plot (as in the table)
    observables: Sequence[ObservableDef]
    modes: Sequence[str]
    output_dir: Path
    labels: Mapping[str, str] = field(default_factory=dict)


def label_of(labels: Mapping[str, str], name: str) -> str:
    return labels.get(name) or DEFAULT_LABELS.get(name, name)


def token(value: Any) -> str:
    """A parameter value as a file-name fragment (5800.0 -> 5800p0)."""
    return str(value).replace(".", "p").replace("/", "-").replace(" ", "-")


def value_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def edges_from_centres(centres: np.ndarray) -> np.ndarray:
    """Bin edges halfway between sorted centres, the outer ones mirrored (a single centre
    gets a unit-wide bin)."""
    c = np.asarray(centres, dtype=np.float64)
    if len(c) == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def plot_scan(request: PlotRequest, progress=None) -> list[FigureRecord]:
    """Every figure of the request; ``progress(done, total)`` is called after each one."""
    grid = dict(request.grid)
    scanned = [p for p, values in grid.items() if len(values) > 1] or list(grid)[:1]
    jobs = []
    for obs in request.observables:
        for parameter in scanned:
            others = [p for p in grid if p != parameter]
            for combo in itertools.product(*(grid[p] for p in others)):
                for mode in request.modes:
                    jobs.append((obs, parameter, dict(zip(others, combo)), mode))
    records: list[FigureRecord] = []
    with plt.style.context(mplhep.style.CMS):
        for i, (obs, parameter, fixed, mode) in enumerate(jobs):
            rows = _select(request.table, fixed, mode)
            rows = rows[rows[parameter].isin(grid[parameter])]
            if not rows.empty:
                records.extend(_figures(request, obs, parameter, fixed, mode, rows))
            if progress:
                progress(i + 1, len(jobs))
    return records


def _select(table: pd.DataFrame, fixed: Mapping[str, Any], mode: str) -> pd.DataFrame:
    mask = table["mode"] == mode
    for name, value in fixed.items():
        mask &= table[name] == value
    return table[mask]


def _figures(request: PlotRequest, obs: ObservableDef, parameter: str, fixed: Mapping[str, Any],
             mode: str, rows: pd.DataFrame) -> list[FigureRecord]:
    folder = request.output_dir / "plots" / obs.key / token(parameter)
    folder.mkdir(parents=True, exist_ok=True)
    stem = "_".join([mode] + [f"{token(k)}_{token(v)}" for k, v in fixed.items()])
    values, delays, matrix, errors = curve_matrix(rows, obs, parameter)
    context = _context_text(request.labels, fixed)
    out = []
    for kind, draw in (("curves", draw_curves), ("map", draw_map)):
        base = folder / f"{kind}_{stem}"
        fig, ax = plt.subplots(figsize=(10, 8))
        draw(ax, obs, parameter, values, delays, matrix, errors, request.labels)
        mplhep.cms.label(ax=ax, data=False, llabel=CMS_LABEL, rlabel=mode, loc=0)
        if context:
            # curves leave headroom at the top for it; maps fill the frame, any corner will do
            y, va = (0.98, "top") if kind == "curves" else (0.02, "bottom")
            ax.text(0.02, y, context, transform=ax.transAxes, fontsize="x-small", va=va,
                    bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none"})
        png, pdf = base.with_suffix(".png"), base.with_suffix(".pdf")
        fig.savefig(png, dpi=100)
        fig.savefig(pdf)
        plt.close(fig)
        thumb = folder / "thumbs" / png.name
        thumb.parent.mkdir(exist_ok=True)
        _thumbnail(png, thumb)
        root = base.with_suffix(".root")
        _write_root(root, kind, obs, parameter, values, delays, matrix, errors, request.labels)
        out.append(FigureRecord(obs, parameter, mode, kind, dict(fixed), png, pdf, root, thumb))
    return out


def _thumbnail(png: Path, thumb: Path) -> None:
    from PIL import Image  # Pillow comes with matplotlib

    with Image.open(png) as image:
        image.thumbnail((int(image.width * THUMB_SCALE), int(image.height * THUMB_SCALE)))
        image.save(thumb)


def curve_matrix(rows: pd.DataFrame, obs: ObservableDef, parameter: str):
    """(values of ``parameter``, delays, observable[value, delay], error[value, delay]) of
    rows holding one curve per value; NaN where a curve lacks a delay."""
    values = sorted(rows[parameter].unique())
    delays = np.sort(rows["delay"].unique())
    matrix = np.full((len(values), len(delays)), np.nan)
    errors = np.zeros_like(matrix)
    for i, value in enumerate(values):
        curve = rows[rows[parameter] == value]
        cols = np.searchsorted(delays, curve["delay"].to_numpy())
        matrix[i, cols] = curve[obs.key].to_numpy()
        if obs.error_key:
            errors[i, cols] = curve[obs.error_key].to_numpy()
    return values, delays, matrix, errors


def _context_text(labels: Mapping[str, str], fixed: Mapping[str, Any]) -> str:
    return "\n".join(f"{label_of(labels, k)} = {value_text(v)}" for k, v in fixed.items())


def draw_curves(ax, obs, parameter, values, delays, matrix, errors, labels) -> None:
    numeric = all(isinstance(v, (int, float, np.number)) for v in values)
    cmap = plt.get_cmap(COLOUR_MAP)
    if numeric and len(values) > 1:
        norm = matplotlib.colors.Normalize(vmin=min(values), vmax=max(values))
    else:
        norm = matplotlib.colors.Normalize(vmin=0, vmax=max(len(values) - 1, 1))
    for i, value in enumerate(values):
        colour = cmap(norm(value if numeric and len(values) > 1 else i))
        ax.plot(delays, matrix[i], color=colour, lw=1.5)
        if obs.error_key:
            ax.fill_between(delays, matrix[i] - errors[i], matrix[i] + errors[i], color=colour,
                            alpha=0.25, lw=0)
    bar = plt.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax)
    bar.set_label(label_of(labels, parameter))
    if not (numeric and len(values) > 1):
        bar.set_ticks(range(len(values)), labels=[value_text(v) for v in values])
    ax.set_xlabel(DELAY_LABEL)
    ax.set_ylabel(obs.axis_label)
    ax.set_xlim(delays[0], delays[-1])
    low, high = _colour_range(obs, matrix)
    ax.set_ylim(low, high + 0.15 * (high - low))  # headroom for the label


def _colour_range(obs: ObservableDef, matrix: np.ndarray) -> tuple[float, float]:
    if obs.natural_range is not None:
        return obs.natural_range
    finite = matrix[np.isfinite(matrix)]
    if finite.size == 0 or finite.min() == finite.max():
        centre = float(finite[0]) if finite.size else 0.0
        return centre - 1.0, centre + 1.0
    margin = 0.05 * (finite.max() - finite.min())
    return float(finite.min() - margin), float(finite.max() + margin)


def draw_map(ax, obs, parameter, values, delays, matrix, errors, labels) -> None:
    numeric = all(isinstance(v, (int, float, np.number)) for v in values)
    y_centres = np.asarray(values, dtype=np.float64) if numeric else np.arange(len(values), dtype=np.float64)
    low, high = _colour_range(obs, matrix)
    mesh = ax.pcolormesh(edges_from_centres(delays), edges_from_centres(y_centres),
                         np.ma.masked_invalid(matrix), cmap=COLOUR_MAP, vmin=low, vmax=high, shading="flat")
    bar = plt.colorbar(mesh, ax=ax)
    bar.set_label(obs.axis_label)
    if not numeric or len(values) <= 12:
        ax.set_yticks(y_centres, labels=[value_text(v) for v in values])
    ax.set_xlabel(DELAY_LABEL)
    ax.set_ylabel(label_of(labels, parameter))


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
