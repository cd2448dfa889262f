"""plotScan end to end on a small harvested production (tests/scanprod.py): YAML with
``!include`` and ``{mode}``, plots that are real images, ROOT data that ROOT itself reads
back, the index, the cache, the Dask path and the one-line errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scanprod import make_production
from timecal_core.cms.harvested_layout import HARVESTED_PREFIX, hist1d_name
from timecal_analysis.plotscan import main
from timecal_core.run.tasks import finished_tasks

GRID = {"threshold": [5800.0, 8000.0], "thresholdsmearing": [0.0, 500.0]}
YAML = """\
parameters:
  threshold: [5800, 8000]
  thresholdsmearing: [0, 500]
labels:
  threshold: "Threshold [e]"
  thresholdsmearing: "Threshold smearing [e]"
efficiency:
  folder: "DQMData/Run 1/Ph2TkBXHist/Run summary/Hist2D"
  fired: "OffsetScan{mode}"
  hits: "HitsTrueNumberScan{mode}"
firerate:
  folder: "DQMData/Run 1/Ph2TkBXHist/Run summary/Hist2D"
  name: "AttributionScan{mode}"
hists: !include hists.yml
"""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    make_production(root / "production" / "scan1", GRID, every=10)
    (root / "scans").mkdir()
    (root / "timerc").write_text(f"[paths]\nproduction = {root / 'production'}\nscans = {root / 'scans'}\n"
                                 "[local]\nworkers = 1\ndashboard = no\n")
    delays = np.round(np.arange(0, 51) * 1.0, 6)
    lines = [f"'BXHistogram{{mode}}Offset{hist1d_name('X', d)[len('BXHistogramXOffset'):]}': "
             f"{{delay: {d}, folder: '{HARVESTED_PREFIX}/Hist1D'}}" for d in delays]
    (root / "hists.yml").write_text("\n".join(lines) + "\n")
    (root / "plot.yml").write_text(YAML)
    return root


@pytest.fixture
def env(data_dir, monkeypatch):
    monkeypatch.setenv("TIMECAL_CONFIG", str(data_dir / "timerc"))
    return data_dir


def wide_table(directory: Path) -> pd.DataFrame:
    """plotScan's task table and values joined: one row per file, mode and delay."""
    values = pd.read_parquet(directory / "observables.parquet")
    table = values.join(pd.read_parquet(directory / "tasks.parquet"), on="task").drop(columns="task")
    return table.sort_values(["file", "mode", "delay"], ignore_index=True)


def write_yaml(directory: Path, name: str, text: str) -> str:
    (directory / name).write_text(text)
    return str(directory / name)


def test_plots_index_and_root_data(env, capsys):
    import matplotlib.image
    import ROOT

    code = main(["--yaml", str(env / "plot.yml"), "--custom", "mode=Sampled", "-i", "scan1", "-o", "full",
                 "--observables", "efficiency", "Out-of-time fraction", "--formats", "png", "pdf", "root"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert re.search(r"files 4/4 100%.*ETA", err)
    out = env / "scans" / "full"
    table = wide_table(out)
    assert set(table["mode"]) == {"Sampled", "Latched"}  # the table serves every mode...

    pngs = sorted(out.glob("plots/**/*.png"))
    pngs = [p for p in pngs if p.parent.name != "thumbs"]
    # ...the plots only the chosen one: 2 observables x 2 scanned parameters x 2 values of the
    # other x (curves, map)
    assert len(pngs) == 16 and all("_Sampled_" in p.name for p in pngs)
    index = (out / "index.html").read_text()
    for png in pngs:
        assert png.with_suffix(".pdf").stat().st_size > 1000
        assert png.relative_to(out).as_posix() in index
        thumb = png.parent / "thumbs" / png.name
        assert thumb.relative_to(out).as_posix() in index
        pixels = matplotlib.image.imread(png)[..., :3]
        assert pixels.std() > 0.05, f"{png} looks blank"
    assert index.index("Efficiency") < index.index("Out-of-time fraction")
    assert "vs Threshold [e]" in index and "vs Threshold smearing [e]" in index

    # The numbers behind a figure, read back by ROOT itself.
    table = table[table["mode"] == "Sampled"]
    rows = table[(table["threshold"] == 5800.0) & (table["thresholdsmearing"] == 0.0)].sort_values("delay")
    curves = out / "plots/out_of_time/threshold/curves_Sampled_thresholdsmearing_0p0.root"
    f = ROOT.TFile.Open(str(curves))
    h = f.Get("threshold_5800")
    assert h and h.InheritsFrom("TH1D") and h.GetNbinsX() == len(rows)
    got = [h.GetBinContent(i) for i in range(1, h.GetNbinsX() + 1)]
    errs = [h.GetBinError(i) for i in range(1, h.GetNbinsX() + 1)]
    np.testing.assert_allclose(got, np.nan_to_num(rows["out_of_time"]), rtol=1e-12)
    np.testing.assert_allclose(errs, np.nan_to_num(rows["out_of_time_error"]), rtol=1e-12)
    assert h.GetXaxis().GetBinCenter(11) == pytest.approx(rows["delay"].iloc[10])
    f.Close()
    m = ROOT.TFile.Open(str(out / "plots/efficiency/threshold/map_Sampled_thresholdsmearing_0p0.root"))
    h2 = m.Get("map")
    assert h2 and h2.InheritsFrom("TH2D") and h2.GetNbinsY() == 2
    for iy, threshold in ((1, 5800.0), (2, 8000.0)):
        sel = table[(table["threshold"] == threshold) & (table["thresholdsmearing"] == 0.0)].sort_values("delay")
        got = [h2.GetBinContent(ix, iy) for ix in range(1, h2.GetNbinsX() + 1)]
        np.testing.assert_allclose(got, sel["efficiency"], rtol=1e-12)
        assert h2.GetYaxis().FindBin(threshold) == iy
    m.Close()


def test_cache_reused_touched_and_forced(env, capsys):
    yml = write_yaml(env, "point.yml", "parameters: {threshold: 8000, thresholdsmearing: 500}\n")
    args = ["--yaml", yml, "-i", "scan1", "-o", "cached", "--observables", "fire_rate", "--custom", "mode=Latched"]
    assert main(args) == 0
    assert "computed" in capsys.readouterr().err
    assert main(args) == 0
    assert "reused" in capsys.readouterr().err
    assert main(args + ["--cache"]) == 0
    assert "computed" in capsys.readouterr().err
    task = finished_tasks(env / "production" / "scan1")[1]
    st = os.stat(task.output)
    os.utime(task.output, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert main(args) == 0
    assert "computed" in capsys.readouterr().err


def test_missing_grid_points_listed_then_allowed(env, capsys):
    yml = write_yaml(env, "missing.yml", "parameters:\n  threshold: [5800, 8000, 9000]\n"
                                         "  thresholdsmearing: [0]\n")
    args = ["--yaml", yml, "-i", "scan1", "-o", "missing", "--observables", "efficiency", "--custom",
            "mode=Sampled"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "threshold=9000, thresholdsmearing=0" in err and "--allow-missing" in err
    assert main(args + ["--allow-missing"]) == 0
    assert "threshold=9000" in (env / "scans" / "missing" / "index.html").read_text()


@pytest.mark.parametrize("yaml_text, argv, expected", [
    ("parameters:\n  thresold: [5800]\n", [],
     r"parameter 'thresold' is not a parameter of the production; it has: .*threshold.*thresholdsmearing"),
    ("parameters:\n  threshold: [5800, 8000]\n", [],
     r"parameter 'thresholdsmearing' varies in the production \(0.0, 500.0\)"),
    ("hists:\n  'BXHistogram{mode}Offset1p000000': {delay: 1.0, folder: Nowhere}\n", [],
     r"_harvested\.root: no object 'Nowhere/BXHistogramSampledOffset1p000000'"),
    ("", ["--observables", "efficiency", "fire rate", "purity"],
     r"unknown observable 'purity'; known: efficiency .*mean"),
    ("", ["--mode", "nosuchbackend"],
     r"--mode nosuchbackend: give Sampled or Latched \(the CBC mode to plot\); a Dask backend goes "
     r"with --dask \(installed: .*local"),
    ("", ["--dask", "nosuchbackend"], r"--dask: unknown backend 'nosuchbackend'; installed: .*local"),
    ("", ["--mode", "Latched"], r"--mode Latched and --custom mode=Sampled disagree: give the mode once"),
    ("", ["--custom", "mode=Both"], r"--custom mode=Both: allowed modes: Sampled, Latched"),
    ("efficiency: {fired: OffsetScanSampled}\n", ["--custom", "mode=Latched"],
     r"'OffsetScanSampled' is not a Latched object \(--custom mode=Latched\); write \{mode\} in it"),
])
def test_bad_input_one_line_error(env, capsys, yaml_text, argv, expected):
    yml = write_yaml(env, "bad.yml", yaml_text or "labels: {}\n")
    code = main(["--yaml", yml, "-i", "scan1", "-o", "bad", "--custom", "mode=Sampled", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("plotScan: error: ") and "\n" not in err and "Traceback" not in err
    assert re.search(expected, err), err


def test_console_script_exit_code(env):
    """The installed entry point prints the one-line error and exits 2."""
    exe = Path(sys.executable).with_name("plotScan")
    done = subprocess.run([str(exe), "-i", "nosuchproduction"], capture_output=True, text=True,
                          env={**os.environ, "TIMECAL_CONFIG": str(env / "timerc")})
    assert done.returncode == 2
    assert "nosuchproduction" in done.stderr and "not a production directory" in done.stderr


def test_files_processed_on_a_dask_backend(env, capsys):
    """The seed's --mode local still works (now --dask local, with a warning:
    test_cli_vocabulary): the files are read by the local backend's Dask workers (a real
    LocalCluster)."""
    args = ["-i", "scan1", "--observables", "efficiency", "--custom", "mode=Sampled",
            "--yaml", write_yaml(env, "one.yml", "parameters:\n  threshold: [5800, 8000]\n"
                                                 "  thresholdsmearing: [0]\n")]
    assert main(args + ["-o", "serial"]) == 0
    assert main(args + ["-o", "dask", "--mode", "local"]) == 0
    assert "files 4/4" in capsys.readouterr().err
    # The same numbers; the task numbering follows the order files were read in.
    pd.testing.assert_frame_equal(wide_table(env / "scans" / "serial"), wide_table(env / "scans" / "dask"))


# --------------------------------------------------------------------------- talk-ready figures
def _job(values, parameter="tofsmearing", fixed=None, tmp=Path("/nonexistent")):
    from timecal_analysis.observables import observable
    from timecal_analysis.plotting import FigureJob

    delays = np.arange(0, 50.1, 0.5)
    matrix = np.array([np.clip((delays - 10 - v) / 5, 0, 1) for v in range(len(values))])
    return FigureJob(observable("efficiency"), parameter, "Sampled", fixed or {"threshold": 5800.0},
                     list(values), delays, matrix, np.zeros_like(matrix), {}, tmp, "stem", ("curves",), ("png",))


@pytest.mark.parametrize("values, legend", [
    ([0.0, 2.0], True),                       # the case: two smearings
    ([float(v) for v in range(8)], True),     # up to 8 numbers: still a legend
    ([float(v) for v in range(9)], False),    # 9: a colour bar
    (["ALL", "BLL", "EHH"], True),            # names are always discrete
])
def test_few_values_get_a_legend_with_distinct_colours_and_markers(values, legend):
    from timecal_analysis.plotting import _template, discrete, draw_curves

    assert discrete(values) is legend
    job = _job(values)
    t = _template("curves", not legend)
    draw_curves(t, job.obs, job.parameter, job.values, job.delays, job.matrix, job.errors, job.labels)
    box = t.ax.get_legend()
    if legend:
        assert box is not None and box.get_title().get_text() == "ToF smearing"
        texts = [x.get_text() for x in box.get_texts()]
        unit = " ns" if isinstance(values[0], float) else " ns"
        assert texts[0] == ("0 ns" if values[0] == 0.0 else f"{values[0]}{unit}")
        lines = t.ax.get_lines()
        assert len({l.get_color() for l in lines}) == len(values)
        assert len({l.get_marker() for l in lines}) == len(values)
        assert t.colorbar is None
    else:
        assert box is None and t.colorbar is not None
        assert t.colorbar.ax.get_ylabel() == "ToF smearing [ns]"


def test_annotations_put_the_unit_after_the_value():
    from timecal_analysis.plotting import split_unit, value_with_unit

    assert value_with_unit({}, "tofsmearing", 0.0) == "ToF smearing = 0 ns"
    assert value_with_unit({}, "threshold", 5800.0) == "Threshold = 5800 e"
    assert value_with_unit({}, "pileup", 200) == "Pile-up = 200"
    assert value_with_unit({"x": "Bias voltage [V]"}, "x", 2.5) == "Bias voltage = 2.5 V"
    assert split_unit("$p_T$ [GeV]") == ("$p_T$", "GeV")


def test_formats_and_only_choose_what_is_drawn(env, capsys):
    args = ["-i", "scan1", "--custom", "mode=Sampled", "--yaml",
            write_yaml(env, "fo.yml", "parameters:\n  threshold: [5800, 8000]\n  thresholdsmearing: [0]\n")]
    assert main(args + ["-o", "maps", "--only", "maps"]) == 0  # default formats: png,pdf,root
    out = env / "scans" / "maps"
    drawn = sorted(p.name for p in out.glob("plots/*/*/*.*"))
    assert drawn and all(n.startswith("map_") and n.endswith((".png", ".pdf", ".root")) for n in drawn)
    assert len({p.parts[-3] for p in out.glob("plots/*/*/*.png")}) == 6  # every observable
    assert {p.with_suffix("").name for p in out.glob("plots/*/*/*.pdf")} == \
        {p.with_suffix("").name for p in out.glob("plots/*/*/*.png")}
    index = (out / "index.html").read_text()
    assert ">PDF<" in index and ">ROOT<" in index
    assert main(args + ["-o", "nopdf", "--only", "maps", "--formats", "png", "root"]) == 0
    assert ">PDF<" not in (env / "scans" / "nopdf" / "index.html").read_text()
    assert not list((env / "scans" / "nopdf").glob("plots/**/*.pdf"))
    assert main(args + ["-o", "eff", "--only", "efficiency", "--formats", "pdf"]) == 0
    drawn = sorted(p.relative_to(env / "scans" / "eff" / "plots").as_posix()
                   for p in (env / "scans" / "eff").glob("plots/**/*.*"))
    assert drawn == ["efficiency/threshold/curves_Sampled_thresholdsmearing_0p0.pdf",
                     "efficiency/threshold/map_Sampled_thresholdsmearing_0p0.pdf"]
    capsys.readouterr()
    assert main(args + ["-o", "bad", "--formats", "png", "svg"]) == 2
    assert "--formats png svg: choose from png, pdf, root (separated by spaces)" in capsys.readouterr().err
    assert main(args + ["-o", "bad", "--only", "purity"]) == 2
    err = capsys.readouterr().err
    assert "--only purity: give curves, maps or an observable" in err and err.count("\n") == 1


def test_figures_on_a_dask_backend_match_local_processes(env, capsys):
    """--dask local: the local backend's Dask workers read the files and draw the figures."""
    args = ["-i", "scan1", "--custom", "mode=Sampled", "--only", "fire_rate", "--formats", "root", "--yaml",
            write_yaml(env, "dk.yml", "parameters:\n  threshold: [5800, 8000]\n  thresholdsmearing: [0]\n")]
    assert main(args + ["-o", "procs"]) == 0
    assert main(args + ["-o", "onDask", "--dask", "local"]) == 0
    assert "figures 1/1" in capsys.readouterr().err
    import uproot

    for name in ("curves_Sampled_thresholdsmearing_0p0.root", "map_Sampled_thresholdsmearing_0p0.root"):
        a = uproot.open(env / "scans/procs/plots/fire_rate/threshold" / name)
        b = uproot.open(env / "scans/onDask/plots/fire_rate/threshold" / name)
        assert a.keys() == b.keys()
        for key in a.keys():
            np.testing.assert_array_equal(a[key].values(), b[key].values())


def test_png_writer_is_lossless(tmp_path):
    """The figures' PNG encoder against Pillow's decoder: every pixel read back."""
    from PIL import Image

    from timecal_analysis.plotting import write_png

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (75, 101, 3), dtype=np.uint8)
    rgb[20:40] = 255  # flat areas, as plots have
    rgba = np.concatenate([rgb, np.full((75, 101, 1), 255, np.uint8)], axis=2)
    for pixels, mode in ((rgb, "RGB"), (rgba, "RGBA")):
        write_png(tmp_path / f"{mode}.png", pixels)
        with Image.open(tmp_path / f"{mode}.png") as image:
            assert image.mode == mode and image.size == (101, 75)
            np.testing.assert_array_equal(np.asarray(image), pixels)


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="rasterising a PDF needs poppler's pdftoppm")
def test_pdf_in_layers_is_what_a_full_draw_gives(tmp_path, monkeypatch):
    """A figure's PDF is drawn in layers: the frame (axes, ticks, labels, legend, colour bar,
    CMS label) recorded once and copied into each file, the data and texts drawn per figure
    in their places, the fonts embedded from a cache. Rasterised, each PDF (the first of a
    frame and those reusing it; curves with a legend, error bands, negative tick labels
    with the minus sign a font subset of its own holds, maps) is pixel for pixel what
    matplotlib's own savefig of the same figure gives."""
    import dataclasses

    import matplotlib
    from PIL import Image

    from timecal_analysis import pdf_layers, plotting
    from timecal_analysis.observables import observable
    from conftest import fast_path_tested

    fast_path_tested(pdf_layers.GATE)

    recorded, replayed = [], []
    record, replay = pdf_layers.PdfFrame.record.__func__, pdf_layers.PdfFrame.replay_resources
    monkeypatch.setattr(pdf_layers.PdfFrame, "record",
                        classmethod(lambda cls, *a: recorded.append(1) or record(cls, *a)))
    monkeypatch.setattr(pdf_layers.PdfFrame, "replay_resources",
                        lambda self, file: replayed.append(replay(self, file)) or replayed[-1])

    def pixels(pdf: Path) -> np.ndarray:
        subprocess.run(["pdftoppm", "-r", "50", "-png", "-singlefile", str(pdf), str(tmp_path / "page")],
                       check=True)
        with Image.open(tmp_path / "page.png") as image:
            return np.asarray(image.convert("RGB"))

    base = dataclasses.replace(_job([4000.0, 5800.0, 8000.0], "threshold", {"tofsmearing": 0.0}, tmp_path),
                               kinds=("curves", "map"), formats=("pdf",))
    mean = observable("mean")
    signed = base.matrix * 4 - 2  # -2..2: tick labels with a minus sign
    jobs = [base,  # records both frames
            dataclasses.replace(base, mode="Latched", fixed={"tofsmearing": 2.0}, matrix=base.matrix[::-1].copy(),
                                stem="again"),  # same frames, other data and texts
            dataclasses.replace(base, obs=mean, matrix=signed, errors=np.full_like(signed, 0.2), stem="mean"),
            dataclasses.replace(base, obs=mean, matrix=signed[::-1].copy(), errors=np.full_like(signed, 0.1),
                                mode="Latched", stem="mean2")]
    with matplotlib.rc_context(plotting._style()):
        for job in jobs:
            for kind in job.kinds:
                record_ = plotting._render_one(job, kind)
                template = plotting._TEMPLATES[(kind, kind == "map")]
                template.fig.savefig(tmp_path / "full.pdf")
                template.fig.set_canvas(template.canvas)
                np.testing.assert_array_equal(pixels(record_.pdf), pixels(tmp_path / "full.pdf"),
                                              err_msg=record_.pdf.name)
    assert len(recorded) == 4 and replayed == [True] * 8  # two frames per observable, each reused
