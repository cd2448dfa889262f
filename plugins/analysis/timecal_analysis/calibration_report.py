"""What runCalibration leaves on disk: Parquet tables for further analysis, PNG/PDF plots fit
for a talk (mplhep CMS style) and an ``index.html`` that shows them all at a glance.

Layout of the output directory::

    results.parquet    one row per scenario x evaluator x test histogram
    summary.parquet    one row per scenario x evaluator: bias, resolution, coverage ± errors
    curves.parquet     the coarse and fine score curves, long format
    index.html
    <scenario>/<method>_<evaluator>/{reco_vs_true,residual,score_curves,evaluator,template_map}.{png,pdf}
    <scenario>/<method>_<evaluator>/scores.pdf (one panel per test), scores.png (first page)
"""

from __future__ import annotations

import html
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from .calibration import PLATEAU_WIDTH, summarise
from .evaluators import BIN_CENTRES

#: Score panels per page of scores.pdf: 2 x 2 panels of 6 x 4 inches, readable on a slide.
PANEL_ROWS, PANEL_COLUMNS = 2, 2
PANEL_SIZE = (6.0, 4.0)
PANELS_PER_PAGE = PANEL_ROWS * PANEL_COLUMNS
#: Up to this many tests get a row each in index.html (all are in results.parquet).
MAX_INDEX_ROWS = 200
CAPTIONS = {"reco_vs_true": "reconstructed vs true delay", "residual": "|true - reconstructed|",
            "score_curves": "all score curves", "scores": "score curves per test",
            "evaluator": "the evaluator", "template_map": "template BX map vs delay"}
MAX_CURVE_PAGES = 16
#: Characters per line of the scenario labels beside the CMS label (10 in wide figures).
RLABEL_WIDTH = 48


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).strip("_") or "unnamed"


def _label_text(labels, width: int = 0) -> str:
    """"k = v, k = v"; with ``width``, wrapped between items so that the text beside the
    CMS label never runs into it (wider labels stack upwards, above the frame)."""
    items = [f"{k} = {v}" for k, v in labels.items()]
    if not width:
        return ", ".join(items)
    lines, line = [], ""
    for item in items:
        if line and len(line) + 2 + len(item) > width:
            lines.append(line + ",")
            line = item
        else:
            line = f"{line}, {item}" if line else item
    return "\n".join(lines + [line] if line else lines)


def results_table(results) -> pd.DataFrame:
    rows = []
    for res in results:
        sc = res.scenario
        for ev in res.evaluations:
            scan = ev.scan
            plateau = scan.plateau
            for i in range(len(res.tests)):
                source = res.sources[i]
                row = {"scenario": sc.name, "method": ev.spec.method, "evaluator": ev.spec.name,
                       "test": res.test_label(i), "test_file": str(source.path), "mode": source.mode,
                       "template_file": str(ev.spec.template.path), "test_index": i,
                       "histogram_delay": res.tests.delays[i], "true_delay": res.true_delays[i],
                       "delay": scan.estimate[i], "minus": scan.minus[i], "plus": scan.plus[i],
                       "lower": scan.lower[i], "upper": scan.upper[i],
                       "at_edge": bool(scan.at_edge[i]), "plateau": bool(plateau[i]),
                       "degenerate": bool(scan.degenerate[i]), "flat_lower": scan.flat_lower[i],
                       "flat_upper": scan.flat_upper[i], "interval": ev.interval(i),
                       "abs_residual": abs(res.true_delays[i] - scan.estimate[i]),
                       "entries": res.tests.counts[i].sum()}
                row.update({f"label_{k}": str(v) for k, v in sc.labels.items()})
                rows.append(row)
    return pd.DataFrame(rows)


def summary_table(results) -> pd.DataFrame:
    """One row per scenario x evaluator (runcalibration.summarise), "n/a" reasons kept."""
    rows = []
    for res in results:
        for ev in res.evaluations:
            rows.append({"scenario": res.scenario.name, "method": ev.spec.method,
                         "evaluator": ev.spec.name, **asdict(summarise(res.true_delays, ev.scan))})
    return pd.DataFrame(rows)


def curves_table(results) -> pd.DataFrame:
    frames = []
    for res in results:
        for ev in res.evaluations:
            scan = ev.scan
            n = len(res.tests)
            for kind, delays, scores in (
                    ("coarse", np.broadcast_to(scan.coarse_delays, scan.coarse_scores.shape), scan.coarse_scores),
                    ("fine", scan.fine_delays, scan.fine_scores)):
                keep = ~np.isnan(delays)
                index = np.broadcast_to(np.arange(n)[:, None], delays.shape)
                frames.append(pd.DataFrame({
                    "scenario": res.scenario.name, "method": ev.spec.method, "evaluator": ev.spec.name,
                    "test_index": index[keep], "pass": kind, "delay": delays[keep],
                    "score": scores[keep]}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# --------------------------------------------------------------------------- plots
class _Plotter:
    def __init__(self):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import mplhep as hep

        self.plt, self.hep = plt, hep
        plt.style.use(hep.style.CMS)

    def figure(self, labels, **kw):
        fig, ax = self.plt.subplots(**kw)
        fig._timecal_label = (ax if not isinstance(ax, np.ndarray) else ax.flat[0], labels)
        return fig, ax

    def save(self, fig, stem: Path) -> list[Path]:
        # The label last: mplhep places "Simulation" beside "CMS" from the text extents at
        # the time of the call, so a colour bar added afterwards would make them overlap.
        if hasattr(fig, "_timecal_label"):
            ax, labels = fig._timecal_label
            self.hep.cms.label(data=False, ax=ax, rlabel=_label_text(labels, RLABEL_WIDTH), fontsize=14)
        stem.parent.mkdir(parents=True, exist_ok=True)
        out = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
        for path in out:
            fig.savefig(path, bbox_inches="tight", dpi=100)
        self.plt.close(fig)
        return out


def _reco_plots(p: _Plotter, res, ev, directory: Path) -> list[Path]:
    scan, truth = ev.scan, res.true_delays
    labels = res.scenario.labels
    known = ~np.isnan(truth)
    x = np.where(known, truth, np.arange(len(truth)))
    yerr = np.vstack([scan.minus, scan.plus])
    written = []
    fig, ax = p.figure(labels)
    if len(truth) == 1:
        # One test is a measurement, not a curve: say it in words instead of a lone dot.
        text = (f"A single test histogram: no curve to draw\n{_short(res.test_label(0), 44)}\n\n"
                f"reconstructed {scan.estimate[0]:.2f} $^{{+{scan.plus[0]:.2f}}}_{{-{scan.minus[0]:.2f}}}$ ns"
                + (f"\ntrue {truth[0]:.2f} ns" if known[0] else "\ntrue delay unknown")
                + f"\n\n{ev.spec.method}, evaluator {_short(ev.spec.name, 30)}")
        ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=20,
                linespacing=1.4)
        ax.set_axis_off()
        return written + p.save(fig, directory / "reco_vs_true")
    edge = scan.at_edge
    plateau = scan.plateau & ~edge
    normal = ~edge & ~plateau
    ax.errorbar(x[normal], scan.estimate[normal], yerr=yerr[:, normal], fmt="o", ms=4,
                label=f"{ev.spec.method}")
    if plateau.any():
        ax.errorbar(x[plateau], scan.estimate[plateau], yerr=yerr[:, plateau], fmt="o", ms=5, mfc="white",
                    color="tab:orange", label=f"on a plateau (±1σ > {PLATEAU_WIDTH:g} ns)")
    if edge.any():
        ax.errorbar(x[edge], scan.estimate[edge], yerr=yerr[:, edge], fmt="s", ms=4, color="tab:red",
                    label="interval at scan edge")
    if known.any():
        lim = [0, 50]
        ax.plot(lim, lim, "k--", lw=1, label="reconstructed = true")
        ax.set_xlabel("True delay [ns]")
    else:
        ax.set_xlabel("Test histogram")
    ax.set_ylabel("Reconstructed delay [ns]")
    ax.legend(loc="upper left")
    written += p.save(fig, directory / "reco_vs_true")
    if known.any():
        fig, ax = p.figure(labels)
        residual = np.abs(truth - scan.estimate)
        ax.errorbar(truth[known], residual[known], yerr=yerr[:, known], fmt="o", ms=4)
        ax.set_xlabel("True delay [ns]")
        ax.set_ylabel(r"|true $-$ reconstructed| [ns]")
        written += p.save(fig, directory / "residual")
    return written


def _score_overlay(p: _Plotter, res, ev, directory: Path) -> list[Path]:
    """Every test's curves in one figure: coarse vs delay, fine vs distance to the estimate."""
    scan = ev.scan
    fig, axes = p.plt.subplots(1, 2, figsize=(16, 7))
    p.hep.cms.label(data=False, ax=axes[0], rlabel="", fontsize=14)
    axes[1].set_title(_label_text(res.scenario.labels, RLABEL_WIDTH), fontsize=14, loc="right")
    alpha = max(0.05, min(0.8, 8.0 / len(res.tests)))
    axes[0].plot(scan.coarse_delays, scan.coarse_scores.T, color="tab:blue", lw=1, alpha=alpha)
    axes[1].plot((scan.fine_delays - scan.estimate[:, None]).T, scan.fine_scores.T, color="tab:orange",
                 lw=1, alpha=alpha)
    for ax in axes:
        ax.axhline(1.0, color="k", lw=0.8, ls=":")
    axes[0].set_yscale("symlog", linthresh=1.0)
    axes[0].set_ylim(0, max(10.0, float(np.nanmax(scan.coarse_scores))))
    axes[1].set_ylim(0, 4)
    axes[0].set_xlabel("Delay [ns] (coarse, 1 ns)")
    axes[1].set_xlabel("Delay $-$ estimate [ns] (fine, 0.01 ns)")
    axes[0].set_ylabel(r"Score $-$ min")
    return p.save(fig, directory / "score_curves")


def _score_pages(p: _Plotter, res, ev, directory: Path) -> list[Path]:
    """One 6 x 4 in panel per test, 2 x 2 per page (the first MAX_CURVE_PAGES pages;
    curves.parquet has all); scores.png is the first page.

    Plain style and constrained layout (titles and labels never overlap); the CMS style
    with its label per panel costs several times more and adds nothing per test."""
    from matplotlib.backends.backend_pdf import PdfPages

    scan = ev.scan
    n = min(len(res.tests), MAX_CURVE_PAGES * PANELS_PER_PAGE)
    pdf_path = directory / "scores.pdf"
    png_path = directory / "scores.png"
    directory.mkdir(parents=True, exist_ok=True)
    rows = PANEL_ROWS if n > PANEL_COLUMNS else 1
    columns = PANEL_COLUMNS if n > 1 else 1
    style = {"font.size": 13, "axes.titlesize": 13, "axes.labelsize": 13, "legend.fontsize": 11,
             "xtick.labelsize": 11, "ytick.labelsize": 11}
    with p.plt.style.context("default"), p.plt.rc_context(style), PdfPages(pdf_path) as pdf:
        for page, start in enumerate(range(0, n, rows * columns)):
            fig, axes = p.plt.subplots(rows, columns, squeeze=False, layout="constrained",
                                       figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows))
            for k, ax in enumerate(axes.flat):
                i = start + k
                if i >= n:
                    ax.set_axis_off()
                    continue
                fine = ~np.isnan(scan.fine_delays[i])
                ax.plot(scan.coarse_delays, scan.coarse_scores[i], "o-", ms=3, lw=1, label="coarse 1 ns")
                ax.plot(scan.fine_delays[i][fine], scan.fine_scores[i][fine], lw=2, label="fine 0.01 ns")
                ax.axhline(1.0, color="grey", lw=0.8, ls=":")
                ax.axvspan(scan.lower[i], scan.upper[i], color="tab:orange", alpha=0.25, label=r"$\pm1\sigma$")
                if not np.isnan(res.true_delays[i]):
                    ax.axvline(res.true_delays[i], color="k", lw=1, ls="--", label="true")
                ax.set_ylim(0, max(4.0, min(25.0, np.nanmax(scan.fine_scores[i][fine]))))
                ax.set_xlim(scan.fine_delays[i][fine][0] - 2, scan.fine_delays[i][fine][-1] + 2)
                ax.set_title(f"{_short(res.test_label(i), 34)}\n{scan.estimate[i]:.2f} "
                             f"+{scan.plus[i]:.2f} −{scan.minus[i]:.2f} ns", loc="left")
                ax.set_xlabel("Delay [ns]")
                ax.set_ylabel(r"Score $-$ min")
                if k == 0:
                    ax.legend(loc="upper right")
            fig.suptitle(_short(f"{res.scenario.name}: {ev.spec.method} ({ev.spec.name})", 52 * columns),
                         fontsize=13)
            pdf.savefig(fig)
            if page == 0:
                fig.savefig(png_path, dpi=100)
            p.plt.close(fig)
    return [pdf_path, png_path]


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _evaluator_plots(p: _Plotter, res, ev, directory: Path) -> list[Path]:
    written = []
    if hasattr(ev.evaluator, "illustrate"):
        fig, ax = p.figure(res.scenario.labels)
        ev.evaluator.illustrate(ax)
        written += p.save(fig, directory / "evaluator")
    templates = ev.evaluator.templates
    fig, ax = p.figure(res.scenario.labels)
    total = templates.counts.sum(axis=1, keepdims=True)
    fraction = templates.counts / np.where(total > 0, total, 1.0)
    d = templates.delays
    edges_d = np.concatenate([[d[0] - 0.05], (d[1:] + d[:-1]) / 2, [d[-1] + 0.05]]) if len(d) > 1 \
        else np.array([d[0] - 0.05, d[0] + 0.05])
    edges_b = np.concatenate([BIN_CENTRES - 0.5, [BIN_CENTRES[-1] + 0.5]])
    mesh = ax.pcolormesh(edges_b, edges_d, fraction, cmap="viridis", shading="flat")
    fig.colorbar(mesh, ax=ax, label="Fraction of entries")
    ax.set_xlabel("BX histogram bin centre (bx $-$ 1)")
    ax.set_ylabel("Template delay [ns]")
    written += p.save(fig, directory / "template_map")
    return written


def _cell(value: float, error: float, fmt: str, scale: float = 1.0, unit: str = "") -> str:
    return f"{scale * value:{fmt}} ± {scale * error:.{fmt[-2]}f}{unit}"


def _index(out: Path, results, table: pd.DataFrame, summary: pd.DataFrame) -> Path:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>runCalibration</title>",
             "<style>body{font-family:sans-serif;margin:1.5em} .grid{display:flex;flex-wrap:wrap;gap:12px}"
             "figure{margin:0;width:330px;font-size:0.8em} figure img{width:320px;border:1px solid #ddd}"
             "table{border-collapse:collapse} td,th{padding:2px 8px;border-bottom:1px solid #ddd;"
             "text-align:right}</style></head><body>",
             "<h1>Delay calibration</h1><p>Tables: <a href='results.parquet'>results.parquet</a> (per test), "
             "<a href='summary.parquet'>summary.parquet</a> (per scenario), "
             "<a href='curves.parquet'>curves.parquet</a></p>",
             "<table><tr><th>scenario</th><th>method</th><th>evaluator</th><th>tests</th>"
             "<th>bias [ns]</th><th>resolution [ns]</th><th>±1σ coverage</th><th>on a plateau</th>"
             "<th>at edge</th></tr>"]
    for row in summary.itertuples():
        if row.reason:
            stats = [f"n/a: {row.reason}", "", ""]
        else:
            stats = [_cell(row.bias, row.bias_error, "+.3f"), _cell(row.resolution, row.resolution_error, ".3f"),
                     _cell(row.coverage, row.coverage_error, ".0f", 100, " %")]
        parts.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            row.scenario, row.method, row.evaluator, row.tests, *stats, row.plateau, row.at_edge)) + "</tr>")
    parts.append("</table>")
    for res in results:
        files = sorted({str(s.path) for s in res.sources})
        listing = html.escape(files[0]) if len(files) == 1 else f"{len(files)} files"
        parts.append(f"<h2>{html.escape(res.scenario.name)}</h2><p>{html.escape(_label_text(res.scenario.labels))}"
                     f" &mdash; test: {listing}</p>")
        mine = table[table["scenario"] == res.scenario.name]
        if len(res.tests) > 1 and len(mine) <= MAX_INDEX_ROWS * max(1, len(res.evaluations)):
            parts.append("<details><summary>every test</summary><table><tr><th>test</th><th>method</th>"
                         "<th>true [ns]</th><th>reconstructed [ns]</th><th>−σ</th><th>+σ</th><th>flag</th></tr>")
            for r in mine.itertuples():
                flag = "scan edge" if r.at_edge else ("plateau" if r.plateau else "")
                parts.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
                    r.test, r.method, f"{r.true_delay:.2f}", f"{r.delay:.2f}", f"{r.minus:.2f}",
                    f"{r.plus:.2f}", flag)) + "</tr>")
            parts.append("</table></details>")
        for ev in res.evaluations:
            sub = Path(_safe(res.scenario.name)) / _safe(f"{ev.spec.method}_{ev.spec.name}")
            parts.append(f"<h3>{html.escape(ev.spec.method)} ({html.escape(ev.spec.name)})</h3>"
                         f"<div class='grid'>")
            for stem, caption in CAPTIONS.items():
                png = sub / f"{stem}.png"
                if (out / png).exists():
                    parts.append(f"<figure><a href='{html.escape((sub / f'{stem}.pdf').as_posix())}'>"
                                 f"<img src='{html.escape(png.as_posix())}' alt='{caption}'></a>"
                                 f"<figcaption>{caption} (PDF)</figcaption></figure>")
            parts.append("</div>")
    parts.append("</body></html>")
    path = out / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def write_report(out: Path, results, plots: bool = True) -> list[Path]:
    """Write tables, plots and the index; returns every file written."""
    out.mkdir(parents=True, exist_ok=True)
    table = results_table(results)
    summary = summary_table(results)
    written = [out / "results.parquet", out / "summary.parquet", out / "curves.parquet"]
    table.to_parquet(written[0], index=False)
    summary.to_parquet(written[1], index=False)
    curves_table(results).to_parquet(written[2], index=False)
    if plots:
        p = _Plotter()
        for res in results:
            for ev in res.evaluations:
                directory = out / _safe(res.scenario.name) / _safe(f"{ev.spec.method}_{ev.spec.name}")
                written += _reco_plots(p, res, ev, directory)
                written += _score_overlay(p, res, ev, directory)
                written += _score_pages(p, res, ev, directory)
                written += _evaluator_plots(p, res, ev, directory)
        written.append(_index(out, results, table, summary))
    return written
