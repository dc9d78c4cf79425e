"""Per-read statistics from arrays: the exact median, histogram accuracy, masks and regions."""

from __future__ import annotations

import numpy as np
import pytest

from survey.scan.params import ScanParameters
from survey.scan.regions import box_limits, cell_map, source_mask
from survey.scan.stats import (
    REGION_NAMES,
    REGIONS,
    ReadStatistics,
    image_sky_stats,
    reference_stats,
)
from survey.wfc3ir.detector import amp_map
from survey.wfc3ir.dq import SKY_BAD_BITS

PARAMS = ScanParameters()
B = 5


def engine(shape, cells=None) -> ReadStatistics:
    ny, nx = shape
    cells = cell_map(ny, nx) if cells is None else cells
    return ReadStatistics(shape, cells, PARAMS)


def sky_read(rng, shape, sky=0.5, sigma=0.04, dtype=np.float32):
    return (sky + rng.normal(0, sigma, shape)).astype(dtype)


def measure(sci, dq=None, prev=None, prev_dq=None, t=100.0, t_prev=50.0, rate=True, cells=None):
    dq = np.zeros(sci.shape, np.uint16) if dq is None else dq
    if prev is not None and prev_dq is None:
        prev_dq = np.zeros(sci.shape, np.uint16)
    eng = engine(sci.shape, cells)
    row = eng.measure(
        sci, dq, prev, prev_dq, t=t, t_prev=t_prev if prev is not None else 0.0, rate_units=rate
    )
    return row, eng


def science(a):
    return a[B:-B, B:-B]


# -- the exact median ---------------------------------------------------------------------


def _cases():
    rng = np.random.default_rng(11)
    yield "normal even", sky_read(rng, (74, 74))
    yield "normal odd", sky_read(rng, (75, 74))
    yield "full-size odd count", sky_read(rng, (139, 138), sigma=5.0)
    ties = rng.integers(-3, 4, (74, 74)).astype(np.float32) * np.float32(2.75)
    yield "lattice with ties", ties
    yield "constant", np.full((74, 74), 0.7, np.float32)
    heavy = sky_read(rng, (74, 74))
    heavy[::3, ::5] = rng.normal(0, 1e4, heavy[::3, ::5].shape)
    yield "heavy tails", heavy
    spread = sky_read(rng, (74, 74))
    spread[:40] += 1e3  # the middle falls between two far-apart modes
    yield "bimodal", spread
    inf = sky_read(rng, (74, 74))
    inf[10:40, 10:40] = np.inf
    inf[50:52, 10:60] = -np.inf
    yield "infinities", inf
    tiny = (rng.normal(0, 1e-30, (74, 74))).astype(np.float32)
    yield "denormal scale", tiny
    big = sky_read(rng, (74, 74), sky=3e38, sigma=1e36)
    big[0, :] = np.float32(3.4e38)
    yield "near float32 max", big


@pytest.mark.parametrize(("name", "sci"), list(_cases()), ids=[c[0] for c in _cases()])
def test_median_rate_is_numpys_float32_median_bit_for_bit(name: str, sci: np.ndarray) -> None:
    dq = np.zeros(sci.shape, np.uint16)
    dq[::7, ::3] = 256 | 4  # bad pixels count for the plain median (pstat has no mask)
    row, _ = measure(sci, dq)
    with np.errstate(over="ignore"):
        expected = np.median(science(sci))
    assert expected.dtype == np.float32
    if np.isnan(expected):
        assert np.isnan(row["median_rate"])
    else:
        assert row["median_rate"] == float(expected), name


def test_median_rate_is_nan_when_any_pixel_is_nan_like_numpy() -> None:
    sci = sky_read(np.random.default_rng(1), (74, 74))
    sci[20, 20] = np.nan
    row, _ = measure(sci)
    assert np.isnan(np.median(science(sci)))
    assert np.isnan(row["median_rate"]) and row["n_nan"] == 1
    assert np.isfinite(row["sky_median"])  # NaN pixels simply leave the sky statistics


def test_counts_units_are_converted_like_pstat() -> None:
    rate = sky_read(np.random.default_rng(2), (74, 74))
    counts = (rate * np.float32(120.0)).astype(np.float32)
    row, _ = measure(counts, t=120.0, rate=False)
    assert row["median_rate"] == float(np.median(science(counts))) / 120.0
    assert row["median_counts"] == float(np.median(science(counts)))


def test_hypothesis_median_matches_numpy() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays

    elements = st.floats(width=32, allow_nan=False)  # the whole float32 range, ±inf too

    @hypothesis.settings(max_examples=60, deadline=None)
    @hypothesis.given(
        arrays(np.float32, st.tuples(st.integers(11, 30), st.integers(11, 30)), elements=elements)
    )
    def check(sci):
        row, _ = measure(np.ascontiguousarray(sci))
        with np.errstate(over="ignore", invalid="ignore"):
            expected = np.median(science(sci))
        if np.isnan(expected):  # inf − inf in numpy's mean of the two middle values
            assert np.isnan(row["median_rate"])
        else:
            assert row["median_rate"] == float(expected)

    check()


# -- histogram statistics against their exact definition ---------------------------------


def _contaminated(rng, shape=(522, 522)):
    sci = sky_read(rng, shape, sky=1.3, sigma=0.05)
    hot = rng.random(shape) < 0.03
    sci[hot] += rng.exponential(2.0, hot.sum()).astype(np.float32)  # sources/CRs: a tail
    return sci


def test_sky_statistics_match_the_numpy_definition_within_a_hundredth_sigma() -> None:
    rng = np.random.default_rng(5)
    sci = _contaminated(rng)
    dq = np.zeros(sci.shape, np.uint16)
    dq[rng.random(sci.shape) < 0.01] = 16
    row, eng = measure(sci, dq)
    good = (science(dq) & SKY_BAD_BITS) == 0
    ref = reference_stats(science(sci)[good])
    sigma = ref["sigma"]
    assert eng.fallbacks == 0
    assert row["sky_npix"] == ref["npix"]
    assert abs(row["sky_nclip"] - ref["nclip"]) <= 2e-3 * ref["npix"]
    for key in ("p16", "p50", "p84", "median", "mean"):
        assert row[f"sky_{key}"] == pytest.approx(ref[key], abs=0.01 * sigma), key
    assert row["sky_sigma"] == pytest.approx(sigma, rel=0.01)


def test_instantaneous_rates_are_per_pixel_differences() -> None:
    rng = np.random.default_rng(6)
    t0, t1 = 400.0, 600.0
    counts0 = rng.normal(0.5 * t0, 20, (266, 266))
    counts1 = counts0 + rng.normal(2.0 * (t1 - t0), 20, (266, 266))  # the sky jumps to 2 e/s
    prev = (counts0 / t0).astype(np.float32)
    sci = (counts1 / t1).astype(np.float32)
    sci[50:60, 50:60] += 30.0  # a cosmic ray in this interval only
    row, _ = measure(sci, prev=prev, t=t1, t_prev=t0)
    inst = (science(sci).astype(np.float64) * t1 - science(prev) * t0) / (t1 - t0)
    ref = reference_stats(inst)
    assert row["inst_median"] == pytest.approx(ref["median"], abs=0.01 * ref["sigma"])
    assert row["inst_median"] == pytest.approx(2.0, abs=0.01)
    # the cumulative median only moves part of the way: a difference of medians is not it
    assert row["sky_median"] == pytest.approx((0.5 * t0 + 2.0 * (t1 - t0)) / t1, abs=0.01)


def test_first_read_instantaneous_rate_is_sci() -> None:
    sci = sky_read(np.random.default_rng(7), (138, 138), sigma=3.0)
    row, _ = measure(sci, t=2.93)
    for key in ("median", "mean", "sigma", "p16", "p84"):
        assert row[f"inst_{key}"] == pytest.approx(row[f"sky_{key}"], rel=1e-6, abs=1e-9)


def test_bad_pixels_of_either_read_leave_the_instantaneous_statistics() -> None:
    rng = np.random.default_rng(8)
    prev, sci = sky_read(rng, (74, 74)), sky_read(rng, (74, 74))
    dq, prev_dq = np.zeros((74, 74), np.uint16), np.zeros((74, 74), np.uint16)
    prev_dq[10:20, 10:20] = 512
    dq[30:35, 30:50] = 256
    dq[40:45, 30:50] = 8192  # a CR flag is not a reason to drop a pixel
    row, _ = measure(sci, dq, prev, prev_dq)
    assert row["inst_npix"] == 64 * 64 - 100 - 100
    assert row["sky_npix"] == 64 * 64 - 100
    assert row["frac_dq_8192"] == pytest.approx(100 / 64**2)


def test_region_medians_match_numpy() -> None:
    rng = np.random.default_rng(9)
    sci = sky_read(rng, (266, 266))
    sci[:, :133] += 0.3  # scattered light on the left half
    row, _ = measure(sci)
    cells = cell_map(266, 266)
    values = science(sci)
    for name in REGION_NAMES:
        expected = np.median(values[REGIONS[name][cells]])
        assert row[f"{name}_median"] == pytest.approx(expected, abs=0.01 * 0.04), name
    assert row["left_median"] - row["right_median"] == pytest.approx(0.3, abs=0.01)


def _window_mean(values: np.ndarray, row: dict, prefix: str = "sky_") -> float:
    """The box-mean definition: the mean of the box's sky pixels within the read's clipping
    window (clipped median ± 3σ)."""
    centre, sigma = row[f"{prefix}median"], row[f"{prefix}sigma"]
    return float(values[np.abs(values - centre) <= 3 * sigma].mean())


def test_box_means_match_numpy_within_the_clipping_window() -> None:
    rng = np.random.default_rng(19)
    sci = sky_read(rng, (266, 266))
    sci[:, :133] += 0.05  # a little scattered light on the left half
    sci[100, 20] = 50.0  # a cosmic ray in the left box: outside the window, not in the mean
    row, _ = measure(sci)
    cells = cell_map(266, 266)
    for name in ("left", "right"):
        chosen = science(sci)[REGIONS[name][cells]]
        expected = _window_mean(chosen.astype(np.float64), row)
        assert row[f"{name}_mean"] == pytest.approx(expected, abs=0.01 * 0.04), name
    assert row["left_mean"] - row["right_mean"] == pytest.approx(0.05, abs=0.01)


def test_box_means_do_not_snap_to_the_digitisation_comb() -> None:
    """r_k of a short read is whole DN × gain / Δt: a comb of 0.8 e⁻/s steps under ≈ 7 e⁻/s
    of read noise. A median lands on one tooth of the comb; the mean recovers the rate."""
    rng = np.random.default_rng(23)
    gain, dt, rate = 2.35, 2.93, 0.46
    shape = (522, 522)
    prev = np.full(shape, 10.0, np.float32)  # cumulative rate at t_prev (flat, no noise)
    dn = np.round(rng.normal(rate * dt / gain, 8.0, shape))  # whole DN in the interval
    t_prev, t = 100.0, 100.0 + dt
    sci = ((prev * t_prev + dn * gain) / t).astype(np.float32)
    row, _ = measure(sci, prev=prev, t=t, t_prev=t_prev)
    err = row["inst_sigma"] / np.sqrt(row["inst_nclip"])
    assert abs(row["inst_mean"] - rate) < 4 * err
    assert abs(row["inst_median"] - rate) > 10 * err  # the median sits on a tooth
    for name in ("left", "right"):
        assert abs(row[f"inst_{name}_mean"] - rate) < 4 * err * np.sqrt(1014 / 200)


def test_spread_beyond_the_histogram_falls_back_to_exact_numbers() -> None:
    rng = np.random.default_rng(10)
    sci = sky_read(rng, (138, 138), sigma=0.01)
    sci[:, :30] += 1e4  # a fifth of the sky far beyond ±64σ of the sample: p84 in an end bin
    row, eng = measure(sci)
    assert eng.fallbacks > 0
    ref = reference_stats(science(sci).ravel())
    assert row["sky_median"] == pytest.approx(ref["median"], rel=1e-9)
    assert row["sky_p16"] == pytest.approx(ref["p16"], rel=1e-9)
    left = science(sci)[REGIONS["left"][cell_map(138, 138)]].astype(np.float64)
    assert row["left_mean"] == pytest.approx(_window_mean(left, row), rel=1e-6)


def test_empty_sky_gives_null_statistics_not_errors() -> None:
    sci = sky_read(np.random.default_rng(12), (74, 74))
    dq = np.full(sci.shape, 512, np.uint16)
    row, _ = measure(sci, dq)
    assert row["sky_npix"] == 0 and np.isnan(row["sky_median"])
    assert np.isnan(row["left_median"])
    assert row["median_rate"] == float(np.median(science(sci)))


def test_constant_dq_arrays_are_accepted() -> None:
    sci = sky_read(np.random.default_rng(13), (74, 74))
    dq = np.broadcast_to(np.uint16(0), sci.shape)  # how fitsio returns a header-only DQ
    row, _ = measure(sci, dq)
    assert row["sky_npix"] == 64 * 64


def test_image_sky_stats_for_an_flt() -> None:
    rng = np.random.default_rng(14)
    flt = _contaminated(rng, (200, 200))
    good = np.ones(flt.shape, bool)
    stats = image_sky_stats(flt, good, PARAMS)
    ref = reference_stats(flt)
    assert stats["median"] == pytest.approx(ref["median"], abs=0.01 * ref["sigma"])
    assert stats["sigma"] == pytest.approx(ref["sigma"], rel=0.02)


# -- regions and the source mask ------------------------------------------------------------


@pytest.mark.parametrize("size", [1024, 522, 266, 138, 74])
def test_quadrants_follow_the_amplifier_map(size: int) -> None:
    cells = cell_map(size, size)
    quadrant = np.array(["A", "B", "C", "D"])[cells // 2]
    assert (quadrant == amp_map(size, size)[B:-B, B:-B]).all()


def test_boxes_are_the_reprocess_wfc3_columns_scaled_for_subarrays() -> None:
    assert box_limits(1024) == ((40, 240), (760, 960))
    (l0, l1), (r0, r1) = box_limits(266)
    assert (l0, l1, r0, r1) == (10, 62, 197, 249)
    assert box_limits(74)[0][0] == B  # cut to the science area


def test_source_mask_covers_a_source_and_its_wings_but_little_sky() -> None:
    rng = np.random.default_rng(15)
    last = rng.normal(0.5, 0.02, (500, 500)).astype(np.float32)
    y, x = np.mgrid[:500, :500]
    last += (5.0 * np.exp(-((y - 250) ** 2 + (x - 250) ** 2) / (2 * 4.0**2))).astype(np.float32)
    good = np.ones(last.shape, bool)
    mask = source_mask(last, good, sigma=3.0, grow=3)
    assert mask.mask[250, 250] and mask.mask[250, 262]  # core and wing
    assert mask.fraction < 0.08  # noise peaks above 3σ (0.13%), grown by 3 px: ≈ 6%
    assert mask.sky == pytest.approx(0.5, abs=0.002)
