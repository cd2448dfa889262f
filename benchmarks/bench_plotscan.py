"""plotScan figure speed: timecal's renderer (figures in parallel on local processes, one
draw per format, the CMS label packed at draw time) against a straightforward serial loop
drawing the same figures with matplotlib + mplhep the way plotScan did before (pyplot
figure, ``mplhep.cms.label``, PNG then PDF, thumbnail read back from the PNG), in the same
run on the same observables table. Goal (issue 15): at least 10x faster in wall time.

The scan is the size of the demo's (examples/demo/scan.yml: 3 thresholds x 2 ToF
smearings, 501 delays, both modes, every observable: 60 (curves, map) pairs = 120 figures),
emulated from the test-vector hits (tests/scanprod.py); drawing does not depend on the
number of hits.

    .venv/bin/python benchmarks/bench_plotscan.py [--quick] [--workers N]

The old loop always wrote PNG + PDF (+ ROOT); timecal is timed twice: with the same three
formats (like for like, its default) and without the PDF (png,root), the difference
being what the PDFs cost per figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402
import numpy as np  # noqa: E402

from scanprod import make_production  # noqa: E402
from timecal_analysis.observables import OBSERVABLES, Sources, load_or_build  # noqa: E402
from timecal_analysis.plotting import (COLOUR_MAP, DELAY_LABEL, CMS_LABEL, PlotRequest,  # noqa: E402
                                       _write_root, edges_from_centres, figure_jobs, label_of,
                                       local_processes, render_job, token, value_text)
from timecal_core.run.tasks import finished_tasks  # noqa: E402

GRID = {"threshold": [4000.0, 5800.0, 8000.0], "tofsmearing": [0.0, 2.0]}


# --------------------------------------------------------------------------- the old way
def _range(obs, matrix):
    if obs.natural_range is not None:
        return obs.natural_range
    finite = matrix[np.isfinite(matrix)]
    margin = 0.05 * (finite.max() - finite.min()) or 1.0
    return float(finite.min() - margin), float(finite.max() + margin)


def old_curves(ax, obs, parameter, values, delays, matrix, errors, labels):
    cmap = plt.get_cmap(COLOUR_MAP)
    norm = matplotlib.colors.Normalize(vmin=min(values), vmax=max(values))
    for i, value in enumerate(values):
        colour = cmap(norm(value))
        ax.plot(delays, matrix[i], color=colour, lw=1.5)
        if obs.error_key:
            ax.fill_between(delays, matrix[i] - errors[i], matrix[i] + errors[i], color=colour, alpha=0.25, lw=0)
    bar = plt.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax)
    bar.set_label(label_of(labels, parameter))
    ax.set_xlabel(DELAY_LABEL)
    ax.set_ylabel(obs.axis_label)
    ax.set_xlim(delays[0], delays[-1])
    low, high = _range(obs, matrix)
    ax.set_ylim(low, high + 0.15 * (high - low))


def old_map(ax, obs, parameter, values, delays, matrix, errors, labels):
    y = np.asarray(values, dtype=np.float64)
    low, high = _range(obs, matrix)
    mesh = ax.pcolormesh(edges_from_centres(delays), edges_from_centres(y), np.ma.masked_invalid(matrix),
                         cmap=COLOUR_MAP, vmin=low, vmax=high, shading="flat")
    plt.colorbar(mesh, ax=ax).set_label(obs.axis_label)
    ax.set_yticks(y, labels=[value_text(v) for v in values])
    ax.set_xlabel(DELAY_LABEL)
    ax.set_ylabel(label_of(labels, parameter))


def serial_loop(jobs, formats) -> tuple[int, float]:
    """The same figures, one after the other, as plotScan drew them before."""
    from PIL import Image

    figures, cpu = 0, time.process_time()
    with plt.style.context(mplhep.style.CMS):
        for job in jobs:
            job.folder.mkdir(parents=True, exist_ok=True)
            for kind, draw in (("curves", old_curves), ("map", old_map)):
                base = job.folder / f"{kind}_{job.stem}"
                fig, ax = plt.subplots(figsize=(10, 8))
                draw(ax, job.obs, job.parameter, job.values, job.delays, job.matrix, job.errors, job.labels)
                mplhep.cms.label(ax=ax, data=False, llabel=CMS_LABEL, rlabel=job.mode, loc=0)
                context = "\n".join(f"{label_of(job.labels, k)} = {value_text(v)}" for k, v in job.fixed.items())
                ax.text(0.02, 0.98, context, transform=ax.transAxes, fontsize="x-small", va="top")
                if "png" in formats:
                    fig.savefig(base.with_suffix(".png"), dpi=100)
                if "pdf" in formats:
                    fig.savefig(base.with_suffix(".pdf"))
                plt.close(fig)
                if "png" in formats:
                    thumb = job.folder / "thumbs" / f"{base.name}.png"
                    thumb.parent.mkdir(exist_ok=True)
                    with Image.open(base.with_suffix(".png")) as image:
                        image.thumbnail((image.width // 4, image.height // 4))
                        image.save(thumb)
                if "root" in formats:
                    _write_root(base.with_suffix(".root"), kind, job.obs, job.parameter, job.values,
                                job.delays, job.matrix, job.errors, job.labels)
                figures += 1
    return figures, time.process_time() - cpu


def timecal(request, workers):
    """plotScan's renderer: jobs from the table, drawn by local processes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    jobs = figure_jobs(request)  # part of the cost: the table is sliced here
    rendered = list(local_processes(render_job, jobs, workers))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    children = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, sum(r.figures for r in rendered), sum(r.cpu_seconds for r in rendered), children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Sampled mode and two observables only")
    parser.add_argument("--workers", type=int, default=None, help="local processes (default: one per core)")
    args = parser.parse_args()
    every = ("png", "pdf", "root")

    with tempfile.TemporaryDirectory(prefix="bench_plotscan_") as tmp:
        tmp = Path(tmp)
        production = make_production(tmp / "production", GRID, every=1)
        tasks = finished_tasks(production)
        table, _ = load_or_build(tasks, tmp / "observables.parquet", Sources(), rebuild=True)
        observables = list(OBSERVABLES[:2] if args.quick else OBSERVABLES)
        modes = ["Sampled"] if args.quick else ["Sampled", "Latched"]

        def request(out, formats):
            return PlotRequest(table, GRID, observables, modes, out, formats=formats)

        jobs = figure_jobs(request(tmp / "old", every))
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        print(f"plotScan figures: {len(tasks)} files x 501 delays, {len(observables)} observables, "
              f"{len(modes)} mode(s): {len(jobs)} (curves, map) pairs, {cores} cores, "
              f"load average {os.getloadavg()[0]:.1f} (other jobs share the machine)")

        start = time.perf_counter()
        old_figures, old_cpu = serial_loop(jobs, every)
        old_wall = time.perf_counter() - start
        print(f"  serial matplotlib + mplhep loop, png,pdf,root: {old_wall:7.1f} s wall, {old_figures} figures, "
              f"CPU {1e3 * old_cpu / old_figures:5.0f} ms per figure")
        per_figure = {}
        for label, formats in (("same formats png,pdf,root", every), ("without PDF png,root", ("png", "root"))):
            wall, figures, cpu, children = timecal(request(tmp / label.split()[0], formats), args.workers)
            assert figures == old_figures, (figures, old_figures)
            per_figure[formats] = cpu / figures
            print(f"  timecal plotScan, {label:<26}: {wall:7.1f} s wall, {figures} figures, "
                  f"CPU {1e3 * cpu / figures:5.0f} ms per figure ({1e3 * children / figures:.0f} ms with "
                  f"process start-up)   speed-up {old_wall / wall:5.1f}x wall (goal >= 10x), "
                  f"{old_cpu / cpu:4.1f}x CPU per figure")
        print(f"  the PDF costs timecal {1e3 * (per_figure[every] - per_figure[('png', 'root')]):.0f} ms CPU "
              f"per figure (the difference of the two runs)")
        print(f"  load average at the end {os.getloadavg()[0]:.1f}; the wall-time ratio is the CPU ratio x the "
              f"cores the workers actually got")


if __name__ == "__main__":
    main()
