"""`survey.skystats.sky_statistics`: the robust σ and the notebook's window mean and std.

The hand-computed sky: a core of 400 pixels at 0.97 and 400 at 1.03 e⁻/s (median 1.00, every
|deviation| 0.03), wings of 100 pixels at 0.70 and 100 at 1.30 (the broken ramp fit's), and
10 pixels at −1.0 and 10 at 3.0 (outside any sensible window). By hand:

- median = (0.97 + 1.03)/2 = 1.00 (510 values on either side);
- MAD = 0.03 (800 of the 1020 |deviations| are 0.03), robust σ = 1.4826·0.03 = 0.044478; the
  3σ clip (±0.133) keeps the core only, whose MAD is again 0.03, clipped mean 1.00;
- window 1.00 ± 0.5 holds core + wings, 1000 pixels: mean 1.00,
  std = √((800·0.03² + 200·0.30²)/1000) = √0.01872 = 0.136821 — three times the robust σ;
- window 1.00 ± 0.25 holds the core only: std 0.03 exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from survey.skystats import MAD_TO_SIGMA, WINDOW, robust_stats, sky_statistics


def hand_sky() -> np.ndarray:
    values = np.concatenate(
        [
            np.full(400, 0.97),
            np.full(400, 1.03),
            np.full(100, 0.70),
            np.full(100, 1.30),
            np.full(10, -1.0),
            np.full(10, 3.0),
        ]
    )
    return np.random.default_rng(0).permutation(values)  # order must not matter


def test_core_with_wings_by_hand():
    stats = sky_statistics(hand_sky())
    assert WINDOW == 0.5
    assert stats["median"] == pytest.approx(1.00, abs=1e-12)
    assert stats["sigma"] == pytest.approx(MAD_TO_SIGMA * 0.03, rel=1e-9)
    assert stats["sigma"] == pytest.approx(0.044478, abs=1e-6)
    assert stats["bimodality"] == pytest.approx(0.0, abs=1e-9)
    assert stats["npix"] == 1020 and stats["npix_window"] == 1000
    assert stats["mean"] == pytest.approx(1.00, abs=1e-12)
    assert stats["std"] == pytest.approx(np.sqrt(0.01872), rel=1e-9)
    assert stats["std"] == pytest.approx(0.136821, abs=1e-6)
    assert stats["std"] > 3 * stats["sigma"]  # the wings the MAD does not see


def test_window_is_a_keyword():
    stats = sky_statistics(hand_sky(), window=0.25)
    assert stats["npix_window"] == 800
    assert stats["std"] == pytest.approx(0.03, rel=1e-9)
    assert stats["mean"] == pytest.approx(1.00, abs=1e-12)
    wide = sky_statistics(hand_sky(), window=3.0)  # −1.0 and 3.0 are 2.0 away: inside
    assert wide["npix_window"] == 1020
    assert wide["std"] == pytest.approx(np.sqrt((0.72 + 18.0 + 20 * 4.0) / 1020), rel=1e-9)


def test_one_sided_wing_moves_the_mean_not_the_clipped_median():
    """A skewed sky (a failed fit's mean and median disagree, §1): the 800 core pixels plus 50
    at 1.40 e⁻/s. The plain median would be 1.03 (the 425th/426th values); the first clip
    (|dev| MAD 0.06, σ 0.089, limit 0.267) drops the wing (0.37 away), and the core's median
    is 1.00. The window 1.00 ± 0.5 keeps the wing: mean (388 + 412 + 70)/850."""
    values = np.concatenate([np.full(400, 0.97), np.full(400, 1.03), np.full(50, 1.40)])
    stats = sky_statistics(values)
    assert stats["median"] == pytest.approx(1.00, abs=1e-12)
    assert stats["npix_window"] == 850
    assert stats["mean"] == pytest.approx(870 / 850, rel=1e-12)
    assert stats["bimodality"] == pytest.approx(0.0, abs=1e-9)  # clipped: blind to the wing


def test_gaussian_sky_agrees_with_its_truth():
    """A Gaussian sky (σ 0.04 e⁻/s around 1.5): robust σ and window std both find σ, window
    mean and median find the level. 200 000 pixels: the std's statistical error is 0.16 %."""
    rng = np.random.default_rng(42)
    values = rng.normal(1.5, 0.04, 200_000).astype(np.float32)
    stats = sky_statistics(values)
    # the MAD comes from a 50 000-value sample (±0.5 %) of iteratively 3σ-clipped values
    assert stats["sigma"] == pytest.approx(0.04, rel=0.02)
    assert stats["std"] == pytest.approx(0.04, rel=0.01)
    assert stats["mean"] == pytest.approx(1.5, abs=5e-4)
    assert stats["median"] == pytest.approx(1.5, abs=5e-4)
    assert stats["npix_window"] == 200_000  # ±0.5 is ±12.5σ


def test_no_pixel_and_non_finite_values():
    empty = sky_statistics(np.array([], dtype=np.float32))
    assert empty["npix"] == 0 and empty["npix_window"] == 0
    assert all(empty[k] is None for k in ("median", "sigma", "bimodality", "mean", "std"))
    stats = sky_statistics(np.array([np.nan, np.inf, 1.0, 1.0, 1.0]))
    assert stats["npix"] == 3 and stats["std"] == 0.0 and stats["mean"] == 1.0
    assert stats["sigma"] == 0.0 and stats["bimodality"] is None


def test_robust_stats_clips_to_the_core():
    stats = robust_stats(hand_sky())
    assert stats.npix == 800  # the wings and outliers are clipped
    assert stats.mean == pytest.approx(1.00, abs=1e-12)
