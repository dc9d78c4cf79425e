"""Synthetic exposures against their own truth: sky, He I, limb light, noise, CRs, saturation.

Every check compares what is in the IMA arrays with what the generator says it injected,
within the noise the generator itself implies. Arrays only (no files) — see
test_simulate_program.py for the FITS side.
"""

from __future__ import annotations

import numpy as np
import pytest

from survey.simulate import (
    IBOHBFB9Q_HE,
    PhysicsConfig,
    SceneConfig,
    TimeProfile,
    exposure_spec,
    simulate_exposure,
)
from survey.simulate.detector_maps import make_detector_maps
from survey.simulate.scene import Catalog, render_scene
from survey.simulate.truth import lr_boxes, read_truth_rows
from survey.wfc3ir.detector import AMP_READNOISE_CDS, amp_map
from survey.wfc3ir.dq import DQ, SKY_BAD_BITS

EMPTY = SceneConfig(n_stars=0, n_galaxies=0)
SCI = (slice(5, -5), slice(5, -5))


def counts(ramp) -> np.ndarray:
    """C_k of the science area (e-, flat-fielded)."""
    return ramp.counts()[:, 5:-5, 5:-5]


def instantaneous(ramp) -> np.ndarray:
    """Per-pixel instantaneous rates r_k (k = 1..N-1) of the science area."""
    return np.diff(counts(ramp), axis=0) / np.diff(ramp.samptime)[:, None, None]


def clean(sim) -> np.ndarray:
    """Science pixels with no static flag, no CR and no saturation (for sky statistics)."""
    t = sim.truth
    good = (t.bpix == 0) & (t.cr_map == 0) & (t.sat_read < 0)
    return good[SCI]


def median_noise(ramp, rate: np.ndarray, n: int) -> np.ndarray:
    """1-sigma error of a median over n pixels of per-interval rates (Gaussian ×1.2533)."""
    dt = np.diff(ramp.samptime)
    return 1.2533 * np.sqrt(20.0**2 + rate * dt) / dt / np.sqrt(n)


@pytest.fixture(scope="module")
def he_sim():
    """ibohbfb9q-like: 266 subarray, STEP200, zodi 0.47 + the §1 He I rise, real scene."""
    return simulate_exposure(exposure_spec(size=266, he=IBOHBFB9Q_HE, zodi=0.47))


@pytest.fixture(scope="module")
def flat_sim():
    """A linear exposure with an empty scene, for the sky level per read."""
    return simulate_exposure(exposure_spec(size=266, zodi=0.5), scene=EMPTY)


def test_per_read_median_sky_matches_injected_cumulative_background(flat_sim, he_sim):
    for sim in (flat_sim, he_sim):
        ramp, rows = sim.ramp, read_truth_rows(sim.truth)
        truth = np.array([r["bkg_cumulative"] for r in rows[1:]])
        good = clean(sim)
        medians = np.array([np.median(ramp.sci[k][SCI][good]) for k in range(1, ramp.nsamp)])
        # cumulative rate noise: sqrt(RN² + S)/t per pixel; sources add a little on top
        sigma = 1.2533 * np.sqrt(20.0**2 + truth * ramp.samptime[1:]) / ramp.samptime[1:]
        sigma /= np.sqrt(good.sum())
        assert np.all(np.abs(medians - truth) < 5 * sigma + 0.003), (medians, truth)


def test_zeroth_read_is_zero_except_zero_read_signal(flat_sim, he_sim):
    for sim in (flat_sim, he_sim):
        ramp = sim.ramp
        flagged = (ramp.dq[0] & DQ.ZEROSIG) > 0
        assert np.all(ramp.sci[0][~flagged] == 0)
        assert sim.truth.n_zsig == flagged.sum()
        # the flag is ORed into every read by ZOFFCORR
        assert np.all((ramp.dq & DQ.ZEROSIG)[:, flagged] > 0)
    assert he_sim.truth.n_zsig > 0  # bright stars give zero-read signal


def test_he_rising_profile_shape_in_instantaneous_rates(he_sim):
    ramp, rows = he_sim.ramp, read_truth_rows(he_sim.truth)
    truth = np.array([r["bkg_rate"] for r in rows[1:]])
    rates = instantaneous(ramp)[:, clean(he_sim)]
    medians = np.median(rates, axis=1)
    sigma = median_noise(ramp, truth, rates.shape[1])
    assert np.all(np.abs(medians - truth) < 5 * sigma + 0.01), (medians, truth)
    # the §1 shape: flat ≈0.47 for ~200 s, then up to ≈2 e-/s
    late = ramp.samptime[1:] > 800
    assert np.all(np.abs(medians[ramp.samptime[1:] < 200][-3:] - 0.47) < 0.05)
    assert np.all(np.abs(medians[late] - 1.97) < 0.05)
    assert he_sim.truth.he_peak == pytest.approx(1.5)
    assert he_sim.truth.category == "uniform-tvb"


@pytest.mark.parametrize("kind", ["decaying", "step"])
def test_other_he_profiles_follow_truth(kind):
    profile = TimeProfile(kind, amplitude=1.2, t0=500.0, width=10.0 if kind == "step" else 600.0)
    sim = simulate_exposure(exposure_spec(size=138, he=profile, zodi=0.5), scene=EMPTY)
    truth = np.array([r["bkg_rate"] for r in read_truth_rows(sim.truth)[1:]])
    rates = instantaneous(sim.ramp)[:, clean(sim)]
    sigma = median_noise(sim.ramp, truth, rates.shape[1])
    assert np.all(np.abs(np.median(rates, axis=1) - truth) < 5 * sigma + 0.01)
    first, last = truth[4], truth[-1]
    assert (first > last) if kind == "decaying" else (first < last)


def test_scattered_light_left_minus_right_matches_truth():
    profile = TimeProfile("rising", amplitude=2.0, t0=300.0, width=800.0)
    spec = exposure_spec(size=266, scatter=profile, scatter_edge=300.0, scatter_softness=60.0)
    sim = simulate_exposure(spec, scene=EMPTY)
    rows = read_truth_rows(sim.truth)[1:]
    c = sim.ramp.counts()
    dt = np.diff(sim.ramp.samptime)
    left, right = lr_boxes(266)
    measured = [
        np.median(np.diff(c[(slice(None), *box)], axis=0), axis=(1, 2)) / dt
        for box in (left, right)
    ]
    truth = np.array([[r["left_rate"] for r in rows], [r["right_rate"] for r in rows]])
    late = sim.ramp.samptime[1:] > 100  # long intervals: the medians are precise
    assert np.allclose(np.array(measured)[:, late], truth[:, late], atol=0.02)
    assert (truth[0] - truth[1])[-1] > 1.0  # bright on the left at the end
    assert sim.truth.scattered_peak == pytest.approx(2.0)
    assert sim.truth.category == "spatial-tvb"


def test_read_noise_per_amplifier_from_read_differences():
    spec = exposure_spec(size=266, samp_seq="RAPID", zodi=0.0)
    sim = simulate_exposure(spec, scene=EMPTY, physics=PhysicsConfig(dark_rate=0.0))
    t = sim.truth
    electrons = sim.ramp.counts() * t.flat  # undo the flat: detector electrons
    diffs = np.diff(electrons, axis=0)
    good = np.zeros(t.bpix.shape, bool)
    good[SCI] = (t.bpix[SCI] == 0) & (t.cr_map[SCI] == 0)
    amps = amp_map(266, 266)
    for amp, rn in AMP_READNOISE_CDS.items():
        sample = diffs[:, good & (amps == amp)]
        assert np.std(sample) == pytest.approx(rn, rel=0.01), amp


def test_err_follows_calwf3_noise_formula(he_sim):
    ramp, t = he_sim.ramp, he_sim.truth
    rn = np.vectorize(AMP_READNOISE_CDS.get)(amp_map(266, 266))
    for k in (1, 8, ramp.nsamp - 1):
        tk = ramp.samptime[k]
        raw = ramp.sci[k] * t.flat * tk + t.pedestal + t.dark * tk  # before DARKCORR
        expected = np.sqrt(rn**2 + np.abs(raw)) / (t.flat * tk)
        assert np.allclose(ramp.err[k][SCI], expected[SCI], rtol=2e-4)
    assert np.all(ramp.err[:, 5:-5, 5:-5] > 0)
    assert np.all(ramp.err[:, :5] == 0)  # reference pixels: no ERR, as in real IMAs
    sampzero = he_sim.truth.spec.sampzero
    zeroth = np.sqrt(rn**2 + np.abs(ramp.sci[0] * t.flat * sampzero)) / (t.flat * sampzero)
    assert np.allclose(ramp.err[0][SCI], zeroth[SCI], rtol=2e-4)


def test_cosmic_rays_rate_amplitudes_and_persistence(he_sim):
    t, ramp = he_sim.truth, he_sim.ramp
    crs = t.crs
    exptime = ramp.samptime[-1]
    n_pix = 256 * 256
    expected = 0.02 * exptime / 1600 * n_pix
    assert abs(crs["y"].size - expected) < 5 * np.sqrt(expected)
    assert t.cr_map[SCI].astype(bool).mean() == pytest.approx(0.02 * exptime / 1600, rel=0.1)
    assert crs["amplitude"].min() >= 50 and crs["amplitude"].max() <= 5000
    # log-uniform: the median amplitude is the geometric mean of the limits
    assert np.median(crs["amplitude"]) == pytest.approx(np.sqrt(50 * 5000), rel=0.15)
    assert np.all(np.diff(np.sort(crs["time"])) >= 0) and crs["time"].max() <= exptime
    c = ramp.counts() * t.flat  # e- on the detector
    bkg = np.array([np.nan] + [r["bkg_rate"] for r in read_truth_rows(t)[1:]])
    dt = np.diff(ramp.samptime, prepend=0.0)
    hits = np.bincount(crs["y"] * 266 + crs["x"], minlength=266 * 266).reshape(266, 266)
    single = (hits[crs["y"], crs["x"]] == 1) & (t.bpix[crs["y"], crs["x"]] == 0)
    bright = (crs["amplitude"] > 300) & (t.sat_read[crs["y"], crs["x"]] < 0) & single
    assert bright.sum() > 50
    for y, x, k, a in zip(*(crs[n][bright] for n in ("y", "x", "read", "amplitude")), strict=True):
        sky = (t.scene[y, x] + bkg[k]) * dt[k] * t.flat[y, x]
        jump = c[k, y, x] - c[k - 1, y, x] - sky
        assert jump == pytest.approx(a, abs=6 * np.sqrt(20**2 + sky) + 0.02 * a)
        # persistent: every later read keeps the charge (no step back)
        assert np.all(c[k:, y, x] - c[k - 1, y, x] > 0.8 * a)


def test_saturation_plateau_and_flags_propagate():
    # 74² subarray: SAMPZERO is 0.04 s, so only a very bright core fills in the zeroth read
    star = {"x": np.array([512.0]), "y": np.array([512.0]), "flux": np.array([1.0e7])}
    none = {k: np.array([]) for k in ("x", "y", "flux", "r_e", "n", "q", "theta")}
    spec = exposure_spec(size=74)
    sim = simulate_exposure(spec, catalog=Catalog(star, none), scene=EMPTY)
    ramp, t = sim.ramp, sim.truth
    sat = (ramp.dq & DQ.SATPIXEL) > 0
    assert sat[-1].sum() > 5
    # flagged from the saturating read on, in every later read
    assert np.all(np.diff(sat.astype(int), axis=0) >= 0)
    k_sat = np.where(sat.any(axis=0), sat.argmax(axis=0), -1)
    assert np.array_equal(k_sat, t.sat_read)
    # the core saturates within the zeroth read: 256|2048 there
    core = (37, 37)
    assert ramp.dq[0][core] & (DQ.SATPIXEL | DQ.ZEROSIG) == DQ.SATPIXEL | DQ.ZEROSIG
    # a pixel saturating mid-ramp: the counts plateau afterwards
    mid = np.argwhere((t.sat_read >= 3) & (t.sat_read <= ramp.nsamp - 4))[0]
    k0 = t.sat_read[tuple(mid)]
    c = ramp.counts()[:, mid[0], mid[1]] * t.flat[tuple(mid)]
    assert np.ptp(c[k0 + 1 :]) < 100  # flat apart from read noise
    assert c[k0 - 1] < c[k0]


def test_static_bad_pixels_in_every_read(flat_sim):
    dq, bpix = flat_sim.ramp.dq, flat_sim.truth.bpix
    assert np.all((dq & bpix) == bpix)
    static = make_detector_maps(np.random.default_rng(3), PhysicsConfig()).bpix[SCI]
    for bit, low, high in (
        (4, 2e-4, 1e-3),
        (16, 0.006, 0.01),
        (32, 0.005, 0.009),
        (64, 0.002, 0.004),
        (512, 0.005, 0.02),
    ):
        assert low < ((static & bit) > 0).mean() < high, bit
    assert not (static & ~np.uint16(4 | 8 | 16 | 32 | 64 | 512)).any()
    # sky statistics exclude them: the usual mask leaves most pixels
    assert ((dq[-1][SCI] & SKY_BAD_BITS) == 0).mean() > 0.95


def test_grism_background_is_two_dimensional_and_not_applicable():
    spec = exposure_spec(size=266, filter="G102", he=TimeProfile("step", 1.5, 800.0, 5.0))
    sim = simulate_exposure(spec, scene=EMPTY)
    assert sim.truth.category == "not-applicable"
    rate = sim.truth.rate[SCI]
    assert np.ptp(np.median(rate, axis=0)) > 0.03  # dispersed pattern, not flat
    assert sim.ramp.primary["OBSTYPE"] == "SPECTROSCOPIC"
    assert sim.ramp.primary["APERTURE"] == "GRISM256"
    # He I and zodi differ in shape: (after - before the step) / before varies over the array
    r = instantaneous(sim.ramp)
    before, after = r[4:8].mean(axis=0), r[-4:].mean(axis=0)  # step at 800 s
    bins = lambda a: a.reshape(16, 16).mean(axis=1)  # noqa: E731 -- 16-column bins
    ratio = bins(np.median(after - before, axis=0) / np.median(before, axis=0))
    sky = sim.truth.sky
    expected = bins((1.5 * sky.he_shape / (sky.zodi * sky.zodi_shape))[5:-5, 5:-5].mean(axis=0))
    assert np.ptp(expected) > 0.1  # the patterns really differ
    assert np.corrcoef(ratio, expected)[0, 1] > 0.8, (ratio, expected)


def test_grism_sources_are_dispersed_along_x():
    star = {"x": np.array([480.0]), "y": np.array([512.0]), "flux": np.array([500.0])}
    none = {k: np.array([]) for k in ("x", "y", "flux", "r_e", "n", "q", "theta")}
    direct = render_scene(Catalog(star, none), 266, (0.0, 0.0), "F140W", SceneConfig())
    grism = render_scene(Catalog(star, none), 266, (0.0, 0.0), "G141", SceneConfig())
    assert direct.sum() == pytest.approx(500, rel=0.01)
    ys, xs = np.nonzero(grism > 0.05)
    assert np.ptp(xs) > 100 and np.ptp(ys) < 8  # a horizontal trace
    assert xs.min() >= 480 - 379 + 30  # first order starts right of the direct position


def test_same_seed_same_arrays_different_seed_different():
    a = simulate_exposure(exposure_spec(size=74))
    b = simulate_exposure(exposure_spec(size=74))
    c = simulate_exposure(exposure_spec(size=74, seed=1))
    assert np.array_equal(a.ramp.sci, b.ramp.sci) and np.array_equal(a.ramp.dq, b.ramp.dq)
    assert not np.array_equal(a.ramp.sci, c.ramp.sci)
