"""plotScan's layered PDF writer steps aside for matplotlib's own ``savefig`` when it may not
run: on a matplotlib it was not tested with (the version gate) and when it raises anywhere
inside (the exception is said once, the figure written by ``savefig``). Either way the PDF
is the page the layers draw, pixel for pixel (rasterised by poppler's pdftoppm, as
test_plotscan compares the layers with a full draw), no half-written file is left, and the
shaping cache's patch of matplotlib does not outlive the write."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import fast_path_tested

pytestmark = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="rasterising a PDF needs poppler's pdftoppm")


def _jobs(folder: Path) -> list:
    """Curves with a legend and error bands, then with tick labels that need a minus sign,
    and maps: two frames each recorded and reused."""
    from timecal_analysis.observables import observable
    from timecal_analysis.plotting import FigureJob

    delays = np.arange(0, 50.1, 0.5)
    values = [4000.0, 5800.0, 8000.0]
    matrix = np.array([np.clip((delays - 10 - v) / 5, 0, 1) for v in range(len(values))])
    base = FigureJob(
        observable("efficiency"),
        "threshold",
        "Sampled",
        {"tofsmearing": 0.0},
        values,
        delays,
        matrix,
        np.zeros_like(matrix),
        {},
        folder,
        "first",
        ("curves", "map"),
        ("pdf",),
    )
    signed = matrix * 4 - 2
    return [
        base,
        dataclasses.replace(base, mode="Latched", fixed={"tofsmearing": 2.0}, matrix=matrix[::-1].copy(), stem="again"),
        dataclasses.replace(base, obs=observable("mean"), matrix=signed, errors=np.full_like(signed, 0.2), stem="mean"),
    ]


def _render(folder: Path) -> dict[str, Path]:
    """Every PDF of _jobs, drawn by plotScan's renderer into ``folder`` (fresh templates,
    so that each run records its own frames)."""
    import matplotlib

    from timecal_analysis import plotting

    plotting._TEMPLATES.clear()
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    with matplotlib.rc_context(plotting._style()):
        for job in _jobs(folder):
            for kind in job.kinds:
                record = plotting._render_one(job, kind)
                out[record.pdf.name] = record.pdf
    plotting._TEMPLATES.clear()
    return out


def _pixels(pdf: Path, tmp: Path) -> np.ndarray:
    from PIL import Image

    subprocess.run(["pdftoppm", "-r", "50", "-png", "-singlefile", str(pdf), str(tmp / "page")], check=True)
    with Image.open(tmp / "page.png") as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture
def gate(catch_gate, monkeypatch):
    """The layered writer's gate, undecided, its lines caught; the frames recorded counted."""
    from timecal_analysis import pdf_layers

    fast_path_tested(pdf_layers.GATE)
    said = catch_gate(pdf_layers.GATE)
    recorded = []
    record = pdf_layers.PdfFrame.record.__func__
    monkeypatch.setattr(
        pdf_layers.PdfFrame, "record", classmethod(lambda cls, *a: recorded.append(1) or record(cls, *a))
    )
    return pdf_layers.GATE, said, recorded


@pytest.fixture(scope="module")
def layered(tmp_path_factory) -> dict[str, np.ndarray]:
    """The PDFs the layers write (the reference), rasterised."""
    from timecal_analysis import pdf_layers

    fast_path_tested(pdf_layers.GATE)
    tmp = tmp_path_factory.mktemp("layered")
    pdf_layers.GATE.reset()
    assert pdf_layers.GATE.usable(), f"the layers are off with this matplotlib ({pdf_layers.GATE.version})"
    return {name: _pixels(path, tmp) for name, path in _render(tmp / "out").items()}


def test_the_layers_run_on_a_tested_matplotlib_and_leave_matplotlib_as_it_was(gate, tmp_path, layered):
    from matplotlib import _text_helpers

    from timecal_analysis import pdf_layers

    fast, said, recorded = gate
    original = _text_helpers.layout
    pdf_layers._SHAPED.clear()
    pdfs = _render(tmp_path / "out")
    assert fast.usable() and len(recorded) == 4 and said.getvalue() == ""
    assert pdf_layers._SHAPED, "the texts were not shaped through the cache"
    assert _text_helpers.layout is original, "the shaping cache outlived the write"
    assert sorted(pdfs) == sorted(layered)
    assert not list((tmp_path / "out").glob(".*partial")), "a temporary file was left behind"


def test_an_untested_matplotlib_gets_savefig_and_one_line(gate, tmp_path, layered, monkeypatch):
    import matplotlib

    fast, said, recorded = gate
    monkeypatch.setattr(matplotlib, "__version__", "99.0.0")
    pdfs = _render(tmp_path / "out")
    assert not fast.usable() and recorded == [], "the layers ran on an untested matplotlib"
    lines = said.getvalue().splitlines()
    assert len(lines) == 1, lines  # six PDFs, one line
    assert lines[0].startswith("timecal: matplotlib 99.0.0 not tested with the layered PDF writer")
    assert "savefig" in lines[0] and "CPU per PDF" in lines[0]
    for name, pdf in pdfs.items():
        np.testing.assert_array_equal(_pixels(pdf, tmp_path), layered[name], err_msg=name)


@pytest.mark.parametrize("where", ["record", "replay", "embed", "draw"])
def test_an_exception_inside_the_layers_gets_savefig_said_once(gate, tmp_path, layered, monkeypatch, where):
    """An exception raised at the start (recording a frame), after the file is opened
    (replaying its resources), deep in a font's embedding, and while a figure's own artist
    draws into the half-written page: each PDF it hits is written by savefig instead."""
    from matplotlib import _text_helpers

    from timecal_analysis import pdf_layers

    fast, said, recorded = gate
    original = _text_helpers.layout
    calls = []

    def boom(*args, **kwargs):
        calls.append(where)
        raise RuntimeError(f"injected into {where}")

    if where == "record":
        monkeypatch.setattr(pdf_layers.PdfFrame, "record", classmethod(lambda cls, *a: boom()))
    elif where == "replay":
        monkeypatch.setattr(pdf_layers.PdfFrame, "replay_resources", lambda self, file: boom())
    elif where == "embed":
        pdf_layers._EMBEDDED_FONTS.clear()
        monkeypatch.setattr(pdf_layers.PdfObjects, "record", classmethod(lambda cls, *a: boom()))
    else:  # the first artist a figure draws into a replayed page, the file half written
        renderer = pdf_layers._renderer_pdf_class()
        draw_path = renderer.draw_path

        def failing_draw_path(self, *args, **kwargs):
            if isinstance(self.file, pdf_layers._PdfFileCached):  # a file, not a frame's recording
                boom()
            return draw_path(self, *args, **kwargs)

        monkeypatch.setattr(renderer, "draw_path", failing_draw_path)
    pdfs = _render(tmp_path / "out")
    assert calls, f"nothing was injected into {where}"
    lines = said.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"timecal: the layered PDF writer failed with matplotlib {fast.version} (RuntimeError: injected into {where})"
    )
    assert "savefig" in lines[0]
    assert _text_helpers.layout is original, "the shaping cache outlived a failed write"
    assert not list((tmp_path / "out").glob(".*partial")), "a half-written file was left behind"
    for name, pdf in pdfs.items():
        np.testing.assert_array_equal(_pixels(pdf, tmp_path), layered[name], err_msg=name)


def test_a_failed_write_keeps_the_previous_pdf(gate, tmp_path, monkeypatch):
    """Both paths fail (a full disk, say): the error reaches the caller, the PDF of the
    previous run is still there, whole, and no temporary file is left."""
    from timecal_analysis import pdf_layers

    pdfs = _render(tmp_path / "out")
    before = {name: path.read_bytes() for name, path in pdfs.items()}

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pdf_layers, "_write_layers", full)
    monkeypatch.setattr(pdf_layers, "_savefig", full)
    with pytest.raises(OSError, match="No space left"):
        _render(tmp_path / "out")
    assert {name: path.read_bytes() for name, path in pdfs.items()} == before
    assert not list((tmp_path / "out").glob(".*partial"))


@pytest.mark.parametrize(
    "version, tested",
    [
        ("3.7.0", True),
        ("3.7", True),
        ("3.10.0rc1", True),
        ("3.11.2", True),
        ("3.11.99", True),
        ("3.6.3", False),
        ("3.12.0", False),
        ("4.0", False),
        ("99.0.0", False),
        ("unknown", False),
        ("", False),
    ],
)
def test_the_gate_reads_a_range_of_release_series(version, tested):
    from timecal_core.fastpath import FastPath

    assert FastPath("matplotlib", "3.7", "3.11", "x", "y", "z").in_range(version) is tested
