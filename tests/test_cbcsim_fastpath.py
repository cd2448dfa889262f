"""cbcsim at the speed of the emulator (issue 17): the fast harvested-file writer gives the
same objects as one uproot assignment each (compared object by object, and read by ROOT
itself), the golden vectors of the deployed analyzer still come out of the warm step's
ROOT file, and a sim-hit dump is read once per worker (its cuts applied to the cached
arrays, re-read when the file changes, not cached beyond the memory bound)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import uproot

from conftest import fast_path_tested
from timecal_core.cms import fast_root
from timecal_core.cms.fast_root import _build_file, write_histograms
from timecal_core.cms.harvested_layout import (BXHistograms, HARVESTED_PREFIX, MODES, hist1d_name,
                                               scan_delays)
from timecal_core.cms.readers import read_maps
from timecal_core.contract.hookspecs import TaskRequest
from timecal_core.config.parameters import complete
from timecal_core.contract.plugins import get_registry
from timecal_core.run.tasks import TaskFailed, run_step
from timecal_script_cbcsim.detection import emulate, reference_emulate
from timecal_script_cbcsim.dump import write_dump
from timecal_script_cbcsim.hits import SimHits, selection
from timecal_script_cbcsim.smearing import ModuleSmearing
from timecal_script_cbcsim.synthetic import SyntheticModel, generate

VECTORS = Path(__file__).parent / "data" / "cbc"
TH1_MEMBERS = ("fEntries", "fTsumw", "fTsumw2", "fTsumwx", "fTsumwx2", "fMaximum", "fMinimum",
               "fNcells", "fBarOffset", "fBarWidth", "fNormFactor", "fOption")


def random_histograms(seed=1, offset_step=0.1) -> BXHistograms:
    rng = np.random.default_rng(seed)
    delays = scan_delays(0.0, 50.0, offset_step)
    n = len(delays)
    counts = lambda k: rng.integers(0, 5000, size=(n, k))  # noqa: E731
    return BXHistograms(delays, counts(13), counts(13), counts(7), counts(7), 31337, offset_step)


def assert_same_objects(slow: Path, fast: Path) -> int:
    """Every object of both files: keys in order, class, name, title, binning, contents,
    errors, entries and statistics. Returns the number of histograms compared."""
    n = 0
    with uproot.open(slow) as a, uproot.open(fast) as b:
        assert a.keys() == b.keys() and a.classnames() == b.classnames()
        for key, classname in a.classnames().items():
            x, y = a[key], b[key]
            if classname == "TObjString":
                assert str(x) == str(y)
                continue
            if classname.startswith("TDirectory"):
                continue
            if classname == "TTree":
                assert x.keys() == y.keys() and x.num_entries == y.num_entries
                for branch in x.keys():
                    np.testing.assert_array_equal(x[branch].array(library="np"), y[branch].array(library="np"))
                continue
            assert x.member("fName") == y.member("fName") and x.member("fTitle") == y.member("fTitle")
            for member in TH1_MEMBERS:
                assert x.member(member) == y.member(member), (key, member)
            for ax, ay in zip(x.axes, y.axes):
                assert ax.member("fName") == ay.member("fName")
                np.testing.assert_array_equal(ax.edges(flow=True), ay.edges(flow=True))
            np.testing.assert_array_equal(x.values(flow=True), y.values(flow=True))
            np.testing.assert_array_equal(x.errors(flow=True), y.errors(flow=True))
            np.testing.assert_array_equal(x.member("fSumw2"), y.member("fSumw2"))
            n += 1
    return n


@pytest.mark.parametrize("harvested", [True, False])
def test_fast_and_uproot_writers_give_identical_objects(tmp_path, harvested):
    hists = random_histograms()
    params = {"params": {"threshold": 5800.0}, "metadata": {"delay": None}}
    fast_path_tested(fast_root.GATE)
    slow, fast = tmp_path / "slow.root", tmp_path / "fast.root"
    write_histograms(slow, hists, params, harvested=harvested, fast=False)
    # The fast path itself (it raises instead of falling back to the plain writer).
    fast.write_bytes(_build_file(hists, params, harvested, True, None, fast=True))
    assert assert_same_objects(slow, fast) == 1002 + 6


def test_odd_delays_and_extra_objects_also_match(tmp_path):
    """Other name lengths (delays >= 100, negative), a coarse step, and objects added by
    ``also`` (what cbcsim stores) go through both paths alike."""
    hists = random_histograms(seed=2, offset_step=2.5)
    hists.delays = hists.delays * 3 - 20  # -20 .. 130 ns: three label lengths and a sign

    def also(f):
        f["cbcsim_info"] = json.dumps({"x": 1})
        tree = f.mktree("smearing", {"module": np.uint32}, title="per-module smearing")
        tree.extend({"module": np.arange(5, dtype=np.uint32)})
    slow, fast = tmp_path / "slow.root", tmp_path / "fast.root"
    write_histograms(slow, hists, {"a": 1}, fast=False, also=also)
    write_histograms(fast, hists, {"a": 1}, fast=True, also=also)
    assert_same_objects(slow, fast)
    with uproot.open(fast) as f:
        np.testing.assert_array_equal(f["smearing"]["module"].array(library="np"), np.arange(5))


def test_root_itself_reads_the_fast_file_like_uproot_reads_the_plain_one(tmp_path):
    ROOT = pytest.importorskip("ROOT")
    hists = random_histograms(seed=3)
    slow, fast = tmp_path / "slow.root", tmp_path / "fast.root"
    write_histograms(slow, hists, {"a": 1}, fast=False)
    write_histograms(fast, hists, {"a": 1}, fast=True)
    f = ROOT.TFile.Open(str(fast))
    try:
        assert not f.IsZombie()
        with uproot.open(slow) as reference:
            directory = f.Get(f"{HARVESTED_PREFIX}/Hist1D")
            names = [k.GetName() for k in directory.GetListOfKeys()]
            assert len(names) == 1002
            for name in names:
                h = directory.Get(name)
                ref = reference[f"{HARVESTED_PREFIX}/Hist1D/{name}"]
                assert h.ClassName() == "TH1F" and h.GetTitle() == ref.member("fTitle")
                assert (h.GetNbinsX(), h.GetXaxis().GetXmin(), h.GetXaxis().GetXmax()) == (11, -5.5, 5.5)
                assert [h.GetBinContent(i) for i in range(13)] == list(ref.values(flow=True))
                assert [h.GetBinError(i) for i in range(13)] == pytest.approx(list(ref.errors(flow=True)))
                stats = np.zeros(4)
                h.GetStats(stats)
                assert list(stats) == [ref.member(m) for m in ("fTsumw", "fTsumw2", "fTsumwx", "fTsumwx2")]
                assert h.GetEntries() == ref.member("fEntries")
            scan = f.Get(f"{HARVESTED_PREFIX}/Hist2D/OffsetScanLatched")
            assert scan.ClassName() == "TH2F" and scan.GetNbinsY() == len(hists.delays)
    finally:
        f.Close()


# ---------------------------------------------------------------------- through the warm step
def cbcsim():
    return get_registry().script("cbcsim").item


def run_cbcsim(workdir: Path, **given):
    workdir.mkdir(parents=True, exist_ok=True)
    params = complete(cbcsim().parameters, {k: str(v) for k, v in given.items()}, "test")
    plan = cbcsim().plan(TaskRequest(params, workdir, None))
    (step,) = plan.steps
    record = run_step(step, workdir, workdir.parent / f"{workdir.name}.log", "", "test")
    assert record["warm"]
    with uproot.open(workdir / plan.output) as f:
        info = json.loads(str(f["cbcsim_info"]))
    return params, workdir / plan.output, info


def golden_dump(path: Path) -> None:
    """The analyzer's test-vector hits as a dump whose every hit passes the selection."""
    hits = dict(np.load(VECTORS / "hits_1000.npz"))
    n = hits["charge"].size
    one = lambda value, dtype: np.full(n, value, dtype=dtype)  # noqa: E731
    write_dump(path, SimHits(charge=hits["charge"], toa=hits["toa"], module=one(7, "u4"), r=one(50, "f4"),
                             z=one(10, "f4"), pt=one(10, "f4"), bx=one(0, "i4"), track=one(1, "i4"),
                             dz=one(0.1, "f4"), subdet=one(5, "i4")))


@pytest.mark.parametrize("threshold", [5800, 8000])
def test_golden_vectors_through_the_warm_step_and_its_root_file(tmp_path, threshold):
    dump = tmp_path / "golden.root"
    golden_dump(dump)
    golden = dict(np.load(VECTORS / f"golden_1000_{threshold}.npz"))
    _, output, info = run_cbcsim(tmp_path / "w", hits=dump, threshold=threshold, model="compat")
    assert info["hits_selected"] == 1000
    with uproot.open(output) as f:
        for mode in MODES:
            rows = np.array([f[f"{HARVESTED_PREFIX}/Hist1D/{hist1d_name(mode, d)}"].values(flow=True)
                             for d in golden["offsets"]])
            key = mode.lower()
            np.testing.assert_array_equal(rows[:, 1:12], golden[key])
            np.testing.assert_array_equal(rows[:, 0], golden[f"{key}_underflow"])
            np.testing.assert_array_equal(rows[:, 12], golden[f"{key}_overflow"])
    maps = read_maps(output)
    np.testing.assert_array_equal(maps.attribution["Sampled"][:, 1:6], golden["attribution_sampled"])


def expected(hits: SimHits, params, delays):
    """Independent recomputation: selection, smearing and the literal reference emulator."""
    smearing = ModuleSmearing.draw(np.unique(hits.module), params["thresholdsmearing"], params["tofsmearing"],
                                   params["seed"])
    sel = hits.take(selection(hits, params["pt"], params["subdet"]))
    toa, thr = smearing.apply(sel.module, sel.toa, params["threshold"])
    return reference_emulate(sel.charge, toa, thr, delays, params["model"])


def test_a_dump_is_read_once_per_worker_and_cut_per_task(tmp_path):
    hits = generate(SyntheticModel(nhits=3000), np.random.default_rng(5))
    dump = tmp_path / "dump.root"
    write_dump(dump, hits)
    common = {"hits": dump, "offset_step": 5.0, "thresholdsmearing": 300, "tofsmearing": 0.5}
    delays = scan_delays(0, 50, 5.0)
    for i, cuts in enumerate([{"pt": 1.0, "subdet": "ALL"}, {"pt": 2.0, "subdet": "BHH"},
                              {"pt": 0.5, "subdet": "ELL"}]):
        params, output, info = run_cbcsim(tmp_path / f"t{i}", **common, **cuts)
        assert info["hits_cached"] is True  # read by the step server, not by this task
        want = expected(hits, params, delays)
        maps = read_maps(output)
        assert info["hits_selected"] == want.n_hits
        np.testing.assert_array_equal(maps.offset_scan["Sampled"], want.sampled)
        np.testing.assert_array_equal(maps.attribution["Latched"], want.attribution_latched)
    # Proof that the file is not read again: garbage of the same size and mtime is never seen.
    stat = dump.stat()
    good = dump.read_bytes()
    dump.write_bytes(b"\0" * stat.st_size)
    os.utime(dump, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    params, output, info = run_cbcsim(tmp_path / "t3", **common, pt=1.0)
    np.testing.assert_array_equal(read_maps(output).offset_scan["Latched"],
                                  expected(hits, params, delays).latched)
    # A changed modification time means a changed file: it is read again (and fails here).
    os.utime(dump, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(TaskFailed) as err:
        run_cbcsim(tmp_path / "t4", **common)
    assert "not a readable ROOT file" in err.value.log_tail
    dump.write_bytes(good)


def test_a_dump_beyond_the_memory_bound_is_read_in_chunks_by_each_task(tmp_path, monkeypatch):
    monkeypatch.setenv("TIMECAL_CBCSIM_CACHE_MB", "0.01")  # 10 kB: 262 hits
    hits = generate(SyntheticModel(nhits=2000), np.random.default_rng(6))
    dump = tmp_path / "big.root"
    write_dump(dump, hits)
    params, output, info = run_cbcsim(tmp_path / "t", hits=dump, offset_step=5.0)
    assert info["hits_cached"] is False
    np.testing.assert_array_equal(read_maps(output).offset_scan["Sampled"],
                                  emulate(*_selected(hits, params), scan_delays(0, 50, 5.0),
                                          params["model"]).sampled)


def _selected(hits, params):
    sel = hits.take(selection(hits, params["pt"], params["subdet"]))
    toa, thr = ModuleSmearing.draw(np.unique(hits.module), 0.0, 0.0, params["seed"]).apply(
        sel.module, sel.toa, params["threshold"])
    return sel.charge, toa, thr


# --------------------------------------------------------------------------- the gate
@pytest.fixture
def gate(catch_gate):
    """What the fast writer's gate says, from undecided (on a tested uproot)."""
    fast_path_tested(fast_root.GATE)
    return catch_gate(fast_root.GATE)


def _plain_reference(tmp_path, hists, params, also=None) -> Path:
    reference = tmp_path / "plain.root"
    fast_root.write_histograms(reference, hists, params, fast=False, also=also)
    return reference


def test_an_untested_uproot_gets_its_own_writer_said_once(tmp_path, gate, monkeypatch):
    """uproot reporting 99.0.0: the fast writer does not run at all (it is not even asked to
    build the file); every file is written by uproot's own writer, with the objects the fast
    path gives; one line for the three files."""
    hists, params = random_histograms(seed=4), {"params": {"threshold": 5800.0}}
    fast = tmp_path / "fast.root"
    fast_root.write_histograms(fast, hists, params)  # the fast path, on this uproot
    assert gate.getvalue() == ""
    monkeypatch.setattr(uproot, "__version__", "99.0.0")
    fast_root.GATE.reset()
    monkeypatch.setattr(fast_root, "_write_1d_fast", lambda *a: pytest.fail("the fast writer ran"))
    for i in range(3):
        fast_root.write_histograms(tmp_path / f"gated{i}.root", hists, params)
        assert assert_same_objects(fast, tmp_path / f"gated{i}.root") == 1002 + 6
    lines = gate.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("timecal: uproot 99.0.0 not tested with the fast harvested-file writer (tested: ")
    assert "using uproot's own writer" in lines[0] and "per file" in lines[0]


def _boom(*args, **kwargs):
    raise RuntimeError("injected")


@pytest.mark.parametrize("where", ["payloads", "key list", "template", "directory"])
def test_an_exception_inside_the_fast_writer_gets_uproots_writer_said_once(tmp_path, gate, monkeypatch, where):
    """Raised at the start (the TH1F payloads), while the key list is built, while a TH1F
    template is serialised, and in uproot's own directory code under the fast writer (any
    exception, not only AttributeError or TypeError): the file is uproot's own, with the
    same objects, the extra objects of ``also`` included; said once for two files."""
    hists, params = random_histograms(seed=5), {"params": {"threshold": 8000.0}}

    def also(f):
        f["cbcsim_info"] = json.dumps({"x": 1})

    reference = _plain_reference(tmp_path, hists, params, also)
    if where == "payloads":
        monkeypatch.setattr(fast_root, "_th1f_payloads", _boom)
    elif where == "key list":
        monkeypatch.setattr(fast_root._SerialisedKey, "__init__", _boom)
    elif where == "template":
        import uproot.writing.identify as identify

        to_th1x = identify.to_TH1x

        def sentinel_fails(*args, **kwargs):  # the template's TH1F, not the plain writer's
            name = args[0] if args else kwargs.get("fName", "")
            return _boom() if name.startswith("\x01") else to_th1x(*args, **kwargs)

        monkeypatch.setattr(fast_root, "_TEMPLATES", {})
        monkeypatch.setattr(identify, "to_TH1x", sentinel_fails)
    else:
        import uproot.writing._cascade as cascade

        add_key = cascade.DirectoryData.add_key

        def add_our_key(self, key, *args, **kwargs):  # uproot's own keys still go in
            return _boom() if isinstance(key, fast_root._SerialisedKey) else add_key(self, key, *args, **kwargs)

        monkeypatch.setattr(cascade.DirectoryData, "add_key", add_our_key)
    for name in ("a.root", "b.root"):
        fast_root.write_histograms(tmp_path / name, hists, params, also=also)
        assert assert_same_objects(reference, tmp_path / name) == 1002 + 6
    lines = gate.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"timecal: the fast harvested-file writer failed with uproot {uproot.__version__} "
                               "(RuntimeError: injected)")
    assert "uproot's own writer" in lines[0]
