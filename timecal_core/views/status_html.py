"""``OUT/status.html``: a production's state as one self-contained page, rewritten by the
driver every interval, for a browser over an SSH tunnel or a shared file system.

No server is needed (the page refreshes itself), nothing is fetched (plots are inline SVG),
and nothing here talks to Dask: the driver hands over what its monitor shows anyway, and the
ledger gives the history (done and failed over time, runtimes, failures with their logs).
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from pathlib import Path

from ..ledger.records import DONE, STATES
from ..ledger.sqlite_ledger import Ledger
from ..textformat import format_duration
from .status_text import describe_left, format_rate, percent

PAGE = "status.html"
COLOURS = {"planned": "#e4e4e4", "pending": "#bbbbbb", "running": "#3b7dd8", "done": "#2e9e44", "failed": "#e8a33d",
           "error": "#d63a3a", "cancelled": "#7a7a7a"}


def _e(text: object) -> str:
    return html.escape(str(text))


def _svg_progress(points: Sequence[tuple[float, int, int]], total: int, width: int = 640,
                  height: int = 180) -> str:
    """Done and failed (cumulative) against time."""
    if len(points) < 2:
        return "<p class='dim'>progress over time appears after the first completions</p>"
    t0, t1 = points[0][0], points[-1][0]
    span = max(t1 - t0, 1e-9)
    top = max(total, 1)

    def path(index: int) -> str:
        return " ".join(f"{'M' if i == 0 else 'L'}{40 + (p[0] - t0) / span * (width - 50):.1f},"
                        f"{height - 20 - p[index] / top * (height - 30):.1f}"
                        for i, p in enumerate(points))

    return (f"<svg viewBox='0 0 {width} {height}' width='{width}' height='{height}' "
            f"role='img' aria-label='tasks done and failed over time'>"
            f"<line x1='40' y1='{height - 20}' x2='{width - 10}' y2='{height - 20}' stroke='#888'/>"
            f"<line x1='40' y1='10' x2='40' y2='{height - 20}' stroke='#888'/>"
            f"<text x='2' y='16' font-size='11'>{total}</text>"
            f"<text x='2' y='{height - 22}' font-size='11'>0</text>"
            f"<text x='40' y='{height - 4}' font-size='11'>{_e(time.strftime('%H:%M', time.localtime(t0)))}</text>"
            f"<text x='{width - 50}' y='{height - 4}' font-size='11'>{_e(time.strftime('%H:%M', time.localtime(t1)))}</text>"
            f"<path d='{path(1)}' fill='none' stroke='{COLOURS['done']}' stroke-width='2'/>"
            f"<path d='{path(2)}' fill='none' stroke='{COLOURS['error']}' stroke-width='2'/>"
            f"<text x='{width - 120}' y='24' font-size='12' fill='{COLOURS['done']}'>done</text>"
            f"<text x='{width - 70}' y='24' font-size='12' fill='{COLOURS['error']}'>failed</text>"
            "</svg>")


def _svg_histogram(values: Sequence[float], label: str, width: int = 640, height: int = 140,
                   bins: int = 30) -> str:
    if not values:
        return f"<p class='dim'>no {label} yet</p>"
    low, high = min(values), max(values)
    step = (high - low) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(int((v - low) / step), bins - 1)] += 1
    peak = max(counts)
    bar = (width - 50) / bins
    bars = "".join(f"<rect x='{40 + i * bar:.1f}' y='{height - 20 - c / peak * (height - 30):.1f}' "
                   f"width='{bar - 1:.1f}' height='{c / peak * (height - 30):.1f}' fill='#3b7dd8'>"
                   f"<title>{c}</title></rect>" for i, c in enumerate(counts))
    return (f"<svg viewBox='0 0 {width} {height}' width='{width}' height='{height}' role='img' "
            f"aria-label='{_e(label)}'>{bars}"
            f"<text x='40' y='{height - 4}' font-size='11'>{_e(format_duration(low))}</text>"
            f"<text x='{width - 60}' y='{height - 4}' font-size='11'>{_e(format_duration(high))}</text>"
            f"<text x='2' y='16' font-size='11'>{peak}</text></svg>")


_GLYPH_COLOURS = {"X": COLOURS["error"], "!": COLOURS["failed"], ">": COLOURS["running"],
                  "#": COLOURS["done"], "+": "#8fd19e", ".": COLOURS["pending"], "c": COLOURS["cancelled"]}


def _grid_map(ledger: Ledger, order: Sequence[str] = ()) -> str:
    """The task states over the first two parameters that vary, in the grid's order (``grid
    X Y`` of the monitor), its cells coloured; nothing for a scan of fewer than two varying
    parameters."""
    from .failure_groups import task_facts
    from .heatmap import default_axes, render_grid
    from .ledger_report import ledger_space

    space = ledger_space(ledger)
    axes = default_axes(space, order)
    if axes is None:
        return "<p class='dim'>fewer than two parameters vary: no map</p>"
    text = render_grid(space, task_facts(ledger, use="states"), *axes, width=100)
    lines = []
    for line in text.splitlines():
        if " | " in line:  # a row of cells: colour each glyph
            label, cells = line.split(" | ", 1)
            cells = "".join(f"<span style='color:{_GLYPH_COLOURS[c]}'>{_e(c)}</span>"
                            if c in _GLYPH_COLOURS else _e(c) for c in cells)
            lines.append(f"{_e(label)} | {cells}")
        else:
            lines.append(_e(line))
    return "<pre id='gridmap'>" + "\n".join(lines) + "</pre>"


def render(ledger: Ledger, production: Path, summary: dict, interval: float,
           order: Sequence[str] = ()) -> str:
    """The page. ``summary``: counts, rate (tasks/s or None), eta (s or None), running
    (False once the driver ended: no rate, no ETA), elapsed, cluster (one line), batch
    (state -> count), driver (one line). ``order``: the grid's parameters as the user gave
    them (the map's axes are the first two that vary)."""
    counts = summary["counts"]
    total = sum(counts.values()) or 1
    done = counts.get(DONE, 0)
    timeline = ledger.outcome_timeline()
    runtimes = ledger.done_runtimes()
    groups = ledger.error_groups()
    bar = "".join(f"<div title='{s} {counts.get(s, 0)}' style='width:{counts.get(s, 0) / total * 100:.3f}%;"
                  f"background:{COLOURS[s]}'></div>" for s in STATES if counts.get(s, 0))
    count_rows = "".join(f"<tr><td><span class='dot' style='background:{COLOURS[s]}'></span>{s}</td>"
                         f"<td>{counts.get(s, 0)}</td><td>{percent(counts.get(s, 0), total)}</td></tr>"
                         for s in STATES)
    failures = "".join(
        f"<details><summary><b>{n}</b> &times; <b>{_e(cause)}</b> {_e(reason)}"
        + (f" <span class='dim'>({waiting} waiting for a retry)</span>" if waiting else "")
        + f" &mdash; e.g. <code>{_e(example)}</code></summary><pre>{_e(ledger.task(example).error or '')[-3000:]}</pre>"
        "</details>" for cause, reason, n, example, waiting in groups) or "<p>no failures</p>"
    batch = ", ".join(f"{_e(s)} {n}" for s, n in sorted(summary.get("batch", {}).items())) or "none"
    if summary.get("running", True):
        pace = (f"rate {_e(format_rate(summary.get('rate')))} &middot; ETA "
                f"{_e(format_duration(summary.get('eta')))}")
    else:  # the driver ended: nothing to extrapolate
        pace = f"not running: {_e(describe_left(counts))}"
    updated = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{max(5, int(interval))}">
<title>timecal {_e(production.name)}: {done}/{total}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 72em; }}
h1 {{ font-size: 1.4em; }} h2 {{ font-size: 1.1em; margin-top: 1.5em; }}
.bar {{ display: flex; height: 1.4em; border: 1px solid #999; width: 100%; max-width: 40em; }}
.bar div {{ height: 100%; }} .dot {{ display: inline-block; width: .8em; height: .8em;
margin-right: .4em; border-radius: 50%; }} td {{ padding: .1em .8em .1em 0; }}
.dim {{ color: #777; }} pre {{ background: #f4f4f4; padding: .6em; overflow-x: auto; }}
</style></head><body>
<h1>timecal production <code>{_e(production)}</code></h1>
<p id="headline"><b>{done}/{total}</b> tasks done ({percent(done, total)}) &middot;
{pace} &middot; elapsed {_e(format_duration(summary.get('elapsed')))}</p>
<div class="bar">{bar}</div>
<table id="counts">{count_rows}</table>
<p id="driver">{_e(summary.get('driver', ''))}</p>
<h2>Progress</h2>{_svg_progress(timeline, total)}
<h2>Failures by cause</h2><div id="failures">{failures}</div>
<h2>The grid</h2>{_grid_map(ledger, order)}
<h2>Runtime of done tasks</h2>{_svg_histogram(runtimes, 'runtimes')}
<h2>Cluster</h2><p id="cluster">{_e(summary.get('cluster', ''))}</p><p>batch jobs: {batch}</p>
<p class="dim">updated {updated}; this page refreshes itself every {max(5, int(interval))} s.
<code>BXRun --status -o {_e(production)}</code> says the same in a terminal.</p>
</body></html>
"""


def write(production: Path, text: str) -> Path:
    """Atomically: a browser never reads half a page."""
    from ..contract.trust import write_atomically

    return write_atomically(Path(production) / PAGE, text)

