"""cbcsim's sim-hit dump (TTree 'simhits', written with uproot, read in chunks) and the
per-module smearing."""

from __future__ import annotations

import numpy as np
import pytest
import uproot

from timecal_core.contract.errors import UserError
from timecal_script_cbcsim.dump import iterate_dump, read_dump, read_modules, write_dump
from timecal_script_cbcsim.hits import SimHits
from timecal_script_cbcsim.smearing import ModuleSmearing
from timecal_script_cbcsim.synthetic import SyntheticModel, generate


@pytest.fixture()
def hits():
    return generate(SyntheticModel(nhits=5000), np.random.default_rng(8))


def test_round_trip_keeps_values_and_types(tmp_path, hits):
    path = tmp_path / "dump.root"
    write_dump(path, hits)
    back = read_dump(path)
    for name in SimHits.names():
        np.testing.assert_array_equal(getattr(back, name), getattr(hits, name))
    with uproot.open(path) as f:
        tree = f["simhits"]
        assert tree.classname == "TTree"  # like SimHitDumper.cc, not an RNTuple
        for name, dtype in SimHits.DTYPES.items():  # charge/F module/i bx/I ... as SimHitDumper.cc
            assert tree[name].interpretation.from_dtype.newbyteorder("=") == np.dtype(dtype), name


def test_chunked_read_equals_one_shot(tmp_path, hits):
    path = tmp_path / "dump.root"
    write_dump(path, hits)
    chunks = list(iterate_dump(path, step_size=1234))
    assert len(chunks) == 5 and max(len(c) for c in chunks) <= 1234
    whole = SimHits.concatenate(chunks)
    np.testing.assert_array_equal(whole.toa, hits.toa)
    np.testing.assert_array_equal(read_modules(path), np.unique(hits.module))


def test_bad_dumps_are_user_errors(tmp_path, hits):
    not_root = tmp_path / "x.root"
    not_root.write_text("hello")
    with pytest.raises(UserError, match="x.root"):
        list(iterate_dump(not_root))
    partial = tmp_path / "partial.root"
    with uproot.recreate(partial) as f:
        f["simhits"] = {"charge": hits.charge}
    with pytest.raises(UserError, match="lacks branch"):
        list(iterate_dump(partial))


def test_smearing_is_per_module_reproducible_and_bounded(hits):
    a = ModuleSmearing.draw(hits.module, 500.0, 2.0, seed=4)
    b = ModuleSmearing.draw(hits.module[::-1], 500.0, 2.0, seed=4)  # order of hits is irrelevant
    np.testing.assert_array_equal(a.threshold_offset, b.threshold_offset)
    assert np.abs(a.threshold_offset).max() <= 500 and np.abs(a.toa_offset).max() <= 2
    assert a.threshold_offset.std() > 100  # actually smeared
    toa, thr = a.apply(hits.module, hits.toa, 5800.0)
    for module in np.unique(hits.module)[:50]:
        same = hits.module == module
        assert len(np.unique(thr[same])) == 1  # one threshold per module
        assert np.allclose(toa[same] - hits.toa[same], a.toa_offset[np.searchsorted(a.modules, module)], atol=1e-5)
    c = ModuleSmearing.draw(hits.module, 500.0, 2.0, seed=5)
    assert not np.array_equal(a.threshold_offset, c.threshold_offset)
    none = ModuleSmearing.draw(hits.module, 0.0, 0.0, seed=4)
    assert not none.threshold_offset.any() and not none.toa_offset.any()
