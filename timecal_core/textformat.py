"""Plain-text formatting shared by every screen of timecal (the monitor, ``BXRun --status``,
the grid map, failure diagnosis, the pilot's report, BXRun's size warnings): durations, byte
counts and aligned tables. A module of its own at the top of the package, below every
subpackage (any of them may import it), so that the screens can use each other without an
import cycle."""

from __future__ import annotations

from collections.abc import Sequence


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:d}:{minutes:02d}:{secs:02d}"
    return f"{days}d {text}" if days else text


def format_bytes(n: float | None) -> str:
    """The one byte formatter: binary units (KiB = 1024 B, MiB, GiB, TiB), a whole number
    without decimals (``512 MiB``), one decimal otherwise (``1.5 GiB``); None is ``?``."""
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" or n == int(n) else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned text table (no box drawing: it is pasted into e-mails and logs)."""
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    out = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)
