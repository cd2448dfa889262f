"""cbcsim's synthetic hit model (a parametric model, not a detector simulation) and the hit
selection of physics.md §1."""

from __future__ import annotations

import numpy as np
import pytest

from timecal_script_cbcsim.detection import reference_emulate
from timecal_script_cbcsim.hits import REGION_WINDOWS, selection
from timecal_script_cbcsim.synthetic import SyntheticModel, generate, generate_chunks


@pytest.fixture(scope="module")
def hits():
    return generate(SyntheticModel(nhits=60_000), np.random.default_rng(3))


def test_defaults_give_about_98_percent_in_time_sampled_efficiency(hits):
    selected = hits.take(selection(hits, 2.0, "ALL"))
    result = reference_emulate(selected.charge, selected.toa, 5800.0, [0.0])
    bx0 = 5  # ROOT bin of bx = 0 (filled at bx - 1.5)
    efficiency = result.sampled[0, bx0] / result.n_hits
    assert 0.97 <= efficiency <= 0.99


@pytest.mark.parametrize("subdet", list(REGION_WINDOWS))
def test_every_subdet_window_gets_hits(hits, subdet):
    assert selection(hits, 2.0, subdet).sum() >= 10


def test_pt_cut_matters(hits):
    loose, tight = selection(hits, 0.0, "ALL").sum(), selection(hits, 2.0, "ALL").sum()
    assert tight < 0.5 * loose
    assert (hits.pt[selection(hits, 2.0, "ALL")] >= 2.0).all()


def test_selection_rejects_what_physics_section_1_rejects(hits):
    keep = selection(hits, 0.0, "ALL")
    assert not keep[hits.track == 0].any()
    assert not keep[np.abs(hits.dz) <= 0.01].any()
    assert not keep[hits.bx != 0].any()
    for name, kind in ((hits.track == 0, "untracked"), (np.abs(hits.dz) <= 0.01, "delta rays"), (hits.bx != 0, "oot")):
        assert name.sum() > 0, f"the model generates no {kind}"


def test_pt_cut_compares_in_double_like_the_analyzer(hits):
    """A float32 pT of 2.1 (2.0999999) fails the cut pt=2.1, as !(pt < 2.1) does in C++;
    a float32 comparison (numpy's default for a Python float) would keep it."""
    some = hits.take(selection(hits, 0.0, "ALL")).take(slice(0, 3))
    some.pt[:] = np.float32(2.1)
    assert not selection(some, 2.1, "ALL").any()
    assert selection(some, 2.0999999, "ALL").all()


def test_same_seed_same_hits_and_knobs_act():
    a = generate(SyntheticModel(nhits=2000), np.random.default_rng(1))
    b = generate(SyntheticModel(nhits=2000), np.random.default_rng(1))
    np.testing.assert_array_equal(a.toa, b.toa)
    np.testing.assert_array_equal(a.module, b.module)
    soft = generate(SyntheticModel(nhits=20_000, pileup=400), np.random.default_rng(1))
    hard = generate(SyntheticModel(nhits=20_000, pileup=0), np.random.default_rng(1))
    assert selection(soft, 2.0, "ALL").mean() < selection(hard, 2.0, "ALL").mean()
    natural = generate(SyntheticModel(nhits=0, N=2, pileup=10), np.random.default_rng(1))
    assert abs(len(natural) - 2 * (400 + 10 * 60)) < 200


def test_chunked_generation_is_reproducible_and_bounded():
    model = SyntheticModel(nhits=2500)
    first = list(generate_chunks(model, seed=4, chunk_size=1000))
    again = list(generate_chunks(model, seed=4, chunk_size=1000))
    assert [len(c) for c in first] == [1000, 1000, 500]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.charge, b.charge)
    other = next(generate_chunks(model, seed=5, chunk_size=1000))
    assert not np.array_equal(other.charge, first[0].charge)


def test_charge_is_landau_like_and_modules_are_shared(hits):
    charge = hits.charge
    mpv_bin = np.histogram(charge, bins=np.arange(10_000, 60_000, 1000))
    assert 19_000 <= mpv_bin[1][np.argmax(mpv_bin[0])] <= 24_000
    assert np.mean(charge > 40_000) > 0.01  # long upper tail
    assert len(np.unique(hits.module)) < len(hits) / 3  # several hits per module: smearing acts per module
