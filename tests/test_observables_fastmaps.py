"""The direct TH2 decoder agrees with uproot's model of the same objects, and falls back to
that model for layouts it does not know."""

from __future__ import annotations

import numpy as np
import pytest
import uproot

from scanprod import BASE_PARAMS, emulated_histograms
from timecal_analysis import fastmaps
from timecal_core.cms.fast_root import write_histograms
from timecal_core.cms.harvested_layout import HARVESTED_PREFIX, MODES

FOLDER = f"{HARVESTED_PREFIX}/Hist2D"


@pytest.fixture(scope="module")
def harvested(tmp_path_factory):
    path = tmp_path_factory.mktemp("maps") / "h.root"
    write_histograms(path, emulated_histograms(8000, every=5, smearing=300), BASE_PARAMS, with_1d=False)
    return path


def assert_same(decoded: fastmaps.Map2D, h) -> None:
    np.testing.assert_array_equal(decoded.values, h.values(flow=True))
    np.testing.assert_array_equal(decoded.errors(), h.errors(flow=True))
    np.testing.assert_allclose(decoded.y_centres(), h.axis(1).centers(), rtol=0, atol=1e-12)


def test_decoded_maps_equal_uproot_models(harvested):
    with uproot.open(harvested) as f:
        folder = f[FOLDER]
        for mode in MODES:
            for name in (f"OffsetScan{mode}", f"HitsTrueNumberScan{mode}", f"AttributionScan{mode}"):
                chunk, cursor = folder.key(name).get_uncompressed_chunk_cursor()
                decoded = fastmaps.decode(bytes(chunk.raw_data[cursor.index:]), ">f4")  # no fallback
                assert decoded.values.sum() > 0
                assert_same(decoded, folder[name])


def test_th2d_is_decoded_too(tmp_path):
    other = tmp_path / "other.root"
    counts = np.arange(12, dtype=np.float64).reshape(3, 4)
    with uproot.recreate(other) as f:
        f["m"] = (counts, np.linspace(0, 3, 4), np.linspace(-1, 1, 5))
    with uproot.open(other) as f:
        assert f.key("m").fClassName == "TH2D"
        chunk, cursor = f.key("m").get_uncompressed_chunk_cursor()
        assert_same(fastmaps.decode(bytes(chunk.raw_data[cursor.index:]), ">f8"), f["m"])


def test_unknown_layouts_use_uproot(harvested, monkeypatch):
    monkeypatch.setitem(fastmaps._VERSIONS, "TH1", 7)  # a streamer version it does not know
    with uproot.open(harvested) as f:
        chunk, cursor = f[FOLDER].key("OffsetScanSampled").get_uncompressed_chunk_cursor()
        with pytest.raises(fastmaps._Unexpected):
            fastmaps.decode(bytes(chunk.raw_data[cursor.index:]), ">f4")
        assert_same(fastmaps.read_map(f[FOLDER], "OffsetScanSampled"), f[FOLDER]["OffsetScanSampled"])
