"""One full-frame, 16-read exposure end to end: speed, memory, file layout, sky per read."""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import replace

import numpy as np
import polars as pl
import pytest
from astropy.io import fits

from survey.simulate import IBOHBFB9Q_HE, ProgramConfig, plan_program, simulate_program
from survey.simulate.truth import lr_boxes
from survey.wfc3ir.fitsio import read_ima


@pytest.mark.slow
def test_full_frame_exposure(tmp_path):
    config = ProgramConfig(
        n_visits=1, exposures_per_visit=1, size=1024, seed=5, he_fraction=0, scattered_fraction=0
    )
    specs = [plan_program(config)[0]]
    specs[0] = replace(specs[0], he=IBOHBFB9Q_HE, zodi=0.47)
    tracemalloc.start()
    start = time.perf_counter()
    summary = simulate_program(tmp_path, config, specs=specs)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 20  # a few seconds on a laptop; generous for CI
    assert peak < 2e9

    path = summary.ima_paths[0]
    with fits.open(path) as hdul:
        assert len(hdul) == 81 and hdul[0].header["NEXTEND"] == 80
        assert hdul[0].header["SAMPZERO"] == pytest.approx(2.911756, abs=1e-6)
        sci = hdul["SCI", 1].header
        assert (sci["LTV1"], sci["CRPIX1"], sci["SIZAXIS1"]) == (5.0, 512.0, 1024)
        assert sci["SAMPTIME"] == pytest.approx(1599.231, abs=0.01)
        assert hdul["SCI", 16].header["SAMPTIME"] == 0.0
        assert hdul["TIME", 1].header["PIXVALUE"] == pytest.approx(sci["SAMPTIME"])

    ramp = read_ima(path)
    rows = summary.truth_reads.sort("read")
    assert summary.truth["category"].to_list() == ["uniform-tvb"]
    c = ramp.counts()
    r = np.diff(c, axis=0) / np.diff(ramp.samptime)[:, None, None]
    science = r[:, 5:-5, 5:-5].reshape(15, -1)
    truth = rows["bkg_rate"].to_numpy()[1:]
    late = ramp.samptime[1:] > 150
    assert np.allclose(np.median(science, axis=1)[late], truth[late], atol=0.01)
    # He I is uniform: the reprocess_wfc3 boxes agree (L - R ≈ 0)
    left, right = lr_boxes(1024)
    diff = np.median(r[(slice(None), *left)], axis=(1, 2)) - np.median(
        r[(slice(None), *right)], axis=(1, 2)
    )
    assert np.all(np.abs(diff[late]) < 0.03)
    assert rows.filter(pl.col("read") > 0)["left_rate"].to_numpy() == pytest.approx(truth)
