"""``index.html`` of a plotScan output: every figure as a thumbnail, grouped by observable and
scanned parameter, so that a scan can be browsed (or shared) without a file manager."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

from .plotting import FigureRecord, label_of, value_with_unit

STYLE = """
body { font-family: sans-serif; margin: 1.5em; }
h2 { border-bottom: 1px solid #999; margin-top: 2em; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; width: 260px; font-size: 0.8em; }
figure img { width: 250px; border: 1px solid #ddd; }
"""


def write_index(output_dir: Path, records: Sequence[FigureRecord], title: str,
                labels: Mapping[str, str] | None = None, notes: Sequence[str] = ()) -> Path:
    labels = labels or {}
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts += [f"<p>{html.escape(note)}</p>" for note in notes]
    groups: dict[str, dict[str, list[FigureRecord]]] = {}
    for record in records:
        groups.setdefault(record.observable.title, {}).setdefault(record.parameter, []).append(record)
    parts.append("<ul>" + "".join(f"<li><a href='#{_anchor(t)}'>{html.escape(t)}</a></li>" for t in groups)
                 + "</ul>")
    for obs_title, by_parameter in groups.items():
        parts.append(f"<h2 id='{_anchor(obs_title)}'>{html.escape(obs_title)}</h2>")
        for parameter, figures in by_parameter.items():
            parts.append(f"<h3>vs {html.escape(label_of(labels, parameter))}</h3><div class='grid'>")
            parts += [_figure(output_dir, r, labels) for r in figures]
            parts.append("</div>")
    parts.append("</body></html>")
    index = output_dir / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index


def _anchor(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower())


def _figure(output_dir: Path, record: FigureRecord, labels: Mapping[str, str]) -> str:
    def rel(path: Path) -> str:
        return html.escape(path.relative_to(output_dir).as_posix(), quote=True)

    fixed = ", ".join(value_with_unit(labels, k, v) for k, v in record.fixed.items())
    caption = html.escape(f"{record.mode}, {record.kind}" + (f"; {fixed}" if fixed else ""))
    image = (f"<a href='{rel(record.png)}'><img src='{rel(record.thumbnail)}' alt='{caption}'></a>"
             if record.png and record.thumbnail else "")
    links = " · ".join(f"<a href='{rel(path)}'>{name}</a>" for name, path in
                       (("PNG", record.png), ("PDF", record.pdf), ("ROOT", record.root)) if path)
    return f"<figure>{image}<figcaption>{caption}<br>{links}</figcaption></figure>"
