"""A user's ``pip install -U`` brings releases timecal's fast paths were not tested with: here a
``sitecustomize`` makes uproot and matplotlib report version 99.0.0 in every process of a real
cbcsim production (driver, workers, steps) and of plotScan. Both succeed on the libraries'
public paths: ROOT opens every harvested file and reads its maps; every PDF rasterises; and
each says so in one line naming the library, its version and what the plain path costs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
GRID = "threshold: [4000, 8000]\ntofsmearing: [0, 2]\nnhits: 2000\nseed: 1\n"
SITECUSTOMIZE = """\
import matplotlib
import uproot

matplotlib.__version__ = "99.0.0"
uproot.__version__ = "99.0.0"
"""


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="rasterising a PDF needs poppler's pdftoppm")
def test_a_production_and_plotscan_on_untested_releases_use_the_public_paths(tmp_path):
    import ROOT

    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    (tmp_path / "timerc").write_text(
        f"[paths]\nproduction = {tmp_path / 'prod'}\nscans = {tmp_path / 'scans'}\n"
        "[local]\nworkers = 2\ndashboard = no\n"
    )
    (tmp_path / "grid.yml").write_text(GRID)
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "TIMECAL_CONFIG": str(tmp_path / "timerc"),
        "MPLBACKEND": "Agg",
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    probe = subprocess.run(
        [sys.executable, "-c", "import matplotlib, uproot; print(matplotlib.__version__, uproot.__version__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.split() == ["99.0.0", "99.0.0"]  # the sitecustomize is in force

    said = run_saying_once(
        [
            "BXRun",
            "--script",
            "cbcsim",
            "--yaml",
            str(tmp_path / "grid.yml"),
            "--dask",
            "local",
            "-o",
            "scan",
            "--interval",
            "1",
        ],
        env,
        tmp_path,
        "timecal: uproot 99.0.0 not tested with the fast harvested-file writer",
    )
    assert "production complete: 4 tasks done" in said.output
    assert "uproot's own writer" in said.line and " per file" in said.line
    harvested = sorted((tmp_path / "prod" / "scan" / "results").glob("*/*_harvested.root"))
    assert len(harvested) == 4
    for path in harvested:
        f = ROOT.TFile.Open(str(path))
        try:
            assert f and not f.IsZombie(), path
            maps = f.Get("DQMData/Run 1/Ph2TkBXHist/Run summary/Hist2D/OffsetScanSampled")
            assert maps and maps.GetEntries() > 0, path
            assert f.Get("DQMData/Run 1/Ph2TkBXHist/Run summary/Hist1D/BXHistogramSampledOffset0p000000"), path
        finally:
            f.Close()

    said = run_saying_once(
        ["plotScan", "-i", "scan", "-o", "scan", "--formats", "png,pdf", "--observables", "efficiency"],
        env,
        tmp_path,
        "timecal: matplotlib 99.0.0 not tested with the layered PDF writer",
    )
    assert "savefig" in said.line and "per PDF" in said.line
    pdfs = sorted((tmp_path / "scans" / "scan").glob("plots/**/*.pdf"))
    assert pdfs
    for pdf in pdfs:
        page = tmp_path / "page"
        subprocess.run(["pdftoppm", "-r", "20", "-png", "-singlefile", str(pdf), str(page)], check=True)
        assert page.with_suffix(".png").stat().st_size > 1000, pdf


@dataclass
class Said:
    output: str  # stdout and stderr
    line: str  # the one line that starts as expected


def run_saying_once(argv: list[str], env: dict[str, str], cwd: Path, start: str) -> Said:
    """Run the console script ``argv[0]`` of this venv; it must succeed and print exactly one
    line starting with ``start``."""
    done = subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    lines = [line for line in output.splitlines() if line.startswith(start)]
    assert len(lines) == 1, output
    return Said(output, lines[0])
