"""Hand-computed cases for the CRCORR port (truth written here, derived in the comments).

Unless stated otherwise a case is one pixel of 16 reads at t_k = 10·k s, rate 10 e⁻/s, so
y_k = 100·k e⁻ exactly, with σ_k = 300 e⁻ (k ≥ 1): every interval then has SNR ≤ 5, hence Fixsen
P = 0 and equal weights, and exactly linear data give residuals of 0 wherever no defect was put.
g = 2.35 (calwf3 mean gain), RN_cds = 20 e⁻ for the physical model.

Useful sums for equal weights on reads k0..k1 (n reads, step 10 s): Σ(t − t̄)² = 100·n(n²−1)/12,
D′ = n·Σ(t − t̄)², so S′/D′ = 1/Σ(t − t̄)² and R² = 21²·Δx²/Σ(t − t̄)².

calwf3 computes b = (S·Sxy − Sx·Sy)/D in float32, which cancels badly once the counts carry a
large offset (a CR of several 1000 e⁻): slopes are then exact only to ~3e-5 (``REL_F32``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from survey.rampfit import ZerothRead, fit_ramps, reset_crcorr_flags

G = 2.35
RN = 20.0
REL_F32 = 5e-5


def ramp(nsamp=16, sigma=300.0):
    """One pixel: (counts, err, times, dq) as (nsamp, 1) stacks of the reference ramp."""
    k = np.arange(nsamp, dtype=float)
    counts = (100.0 * k)[:, None]
    err = np.full((nsamp, 1), sigma)
    err[0] = 0.0
    return counts, err, 10.0 * k, np.zeros((nsamp, 1), np.uint16)


def fit(counts, err, times, dq, **kw):
    kw.setdefault("readnoise", RN)
    return fit_ramps(counts, err, times, dq, **kw)


def calwf3_sigma(n, dy):
    """calwf3's re-entrant σ_b of an n-read equal-weight interval of 10-s steps (Δx = 10(n−1))."""
    dx = 10.0 * (n - 1)
    r2 = 21.0**2 * dx**2 / (100.0 * n * (n * n - 1) / 12.0)
    return math.sqrt(r2 + 0.036 * dx + G * dy) / (G * dx)


def inverse_variance_err(*sigmas):
    return 1.0 / math.sqrt(sum(1.0 / s**2 for s in sigmas))


def flagged_reads(read_dq, bit):
    return [int(k) for k in np.flatnonzero(read_dq[:, 0] & bit)]


# ---------------------------------------------------------------------------------------------


def test_clean_straight_ramp_all_error_models():
    # One interval, reads 1..15: n = 15, Δx = 140 s, Δy = 1400 e⁻, b = 10.
    # Σ(t − t̄)² = 100·15·224/12 = 28000, R² = 441·140²/28000 = 308.7.
    # calwf3:   √(308.7 + 0.036·140 + 2.35·1400)/(2.35·140) = √3603.74/329 = 0.182466
    # pipeline: √(308.7 + 5.04 + 1400)/140 = √1713.74/140 = 0.295695
    # physical: c_p = (t_p − 80)/28000; read term σ_r²Σc² = 200/28000 = 0.0071429;
    #   T_j = Σ_{p≥j} c_p = 5(16−j)(j−1)/28000, Σ_j 10·T_j² = 250·25312/28000² = 0.0080714,
    #   var = 0.0071429 + (10 + 0.036)·0.0080714 = 0.0881477 → 0.296897
    # TIME = (t1 − t0) + (t15 − t1) = 150, SAMP = 15 + 1 = 16.
    counts, err, times, dq = ramp()
    expected = {"calwf3": 0.182466, "pipeline": 0.295695, "physical": 0.296897}
    for model, sigma in expected.items():
        r = fit(counts, err, times, dq, error_model=model)
        assert r.rate[0] == pytest.approx(10.0, rel=1e-6)
        assert r.err[0] == pytest.approx(sigma, rel=2e-5)
        assert (r.time[0], r.samp[0], r.dq[0]) == (150.0, 16, 0)
        assert not r.read_dq.any()
    assert r.rate.dtype == np.float32 and r.err.dtype == np.float32
    assert r.dq.dtype == np.uint16 and r.samp.dtype == np.int16 and r.time.dtype == np.float32
    assert r.read_dq.dtype == np.uint16 and r.read_dq.shape == (16, 1)


def test_one_cosmic_ray_splits_the_ramp():
    # +5000 e⁻ from read 8 on. The residual jump 7→8 (≈ 16σ) is the largest → 8192 on read 8.
    # Intervals reads 1..7 (n 7, Δy 600) and 8..15 (n 8, Δy 700), both b = 10.
    # calwf3 σ: n=7: R² = 441·3600/2800 = 567, √(567 + 2.16 + 1410)/141 = 0.315517
    #           n=8: R² = 441·4900/4200 = 514.5, √(514.5 + 2.52 + 1645)/164.5 = 0.282660
    # ERR = (1/0.315517² + 1/0.282660²)^−½ = 0.210532; TIME = 10 + 60 + 70 = 140; SAMP = 8 + 7 = 15
    counts, err, times, dq = ramp()
    counts[8:] += 5000.0
    r = fit(counts, err, times, dq, error_model="calwf3")
    assert calwf3_sigma(7, 600) == pytest.approx(0.315517, rel=1e-5)
    assert calwf3_sigma(8, 700) == pytest.approx(0.282660, rel=1e-5)
    assert r.rate[0] == pytest.approx(10.0, rel=REL_F32)
    assert r.err[0] == pytest.approx(0.210532, rel=2e-5)
    assert (r.time[0], r.samp[0], r.dq[0]) == (140.0, 15, 0)
    assert flagged_reads(r.read_dq, 8192) == list(range(8, 16))  # CR read and every later read


def test_two_cosmic_rays_flagged_largest_first():
    # +3000 at read 5 and +8000 at read 11: read 11 goes first (largest jump), then read 5 in the
    # first interval. Intervals 1..4, 5..10, 11..15 (n 4, 6, 5), b = 10 each.
    # TIME = 10 + 30 + 50 + 40 = 130; SAMP = (4+1) + (6−1) + (5−1) = 14.
    counts, err, times, dq = ramp()
    counts[5:] += 3000.0
    counts[11:] += 8000.0
    r = fit(counts, err, times, dq, error_model="calwf3")
    expected_err = inverse_variance_err(
        calwf3_sigma(4, 300), calwf3_sigma(6, 500), calwf3_sigma(5, 400)
    )
    assert r.rate[0] == pytest.approx(10.0, rel=REL_F32)
    assert r.err[0] == pytest.approx(expected_err, rel=2e-5)
    assert (r.time[0], r.samp[0], r.dq[0]) == (130.0, 14, 0)
    assert flagged_reads(r.read_dq, 8192) == list(range(5, 16))


def test_four_cosmic_rays_make_the_pixel_unstable_with_fallback():
    # Jumps 3000/4000/5000/6000 at reads 3/6/9/12 and σ_k = 290 + 10k (σ_1 = 300, σ_15 = 440).
    # Flagged 12, 9, 6 as CRs; the 4th (read 3) → UNSTABLE. Fallback over clean reads
    # 1,2,4,5,7,8,10,11,13,14,15: first = 1, last = 15,
    #   SCI = (y15 − y1)/(t15 − t1) = (1500 + 18000 − 100)/140 = 138.571429
    #   ERR = (σ15 − σ1)/140 = (440 − 300)/140 = 1.0   (difference of errors, calwf3 quirk)
    #   SAMP = 11 clean reads + read 1 counted twice = 12; TIME = 140
    #   physical ERR = √(RN² + (138.5714 + 0.036)·140)/140 = √19805.04/140 = 1.005217
    counts, err, times, dq = ramp()
    err[1:, 0] = 290.0 + 10.0 * np.arange(1, 16)
    for read, jump in ((3, 3000.0), (6, 4000.0), (9, 5000.0), (12, 6000.0)):
        counts[read:] += jump
    r = fit(counts, err, times, dq, error_model="calwf3")
    assert r.rate[0] == pytest.approx(138.571429, rel=1e-6)
    assert r.err[0] == pytest.approx(1.0, rel=1e-6)
    assert (r.time[0], r.samp[0], r.dq[0]) == (140.0, 12, 32)
    assert flagged_reads(r.read_dq, 32) == list(range(16))  # zeroth read included
    assert flagged_reads(r.read_dq, 8192) == []
    physical = fit(counts, err, times, dq)
    assert physical.rate[0] == r.rate[0]
    assert physical.err[0] == pytest.approx(1.005217, rel=1e-5)


def test_positive_spike_is_written_as_4_and_skipped():
    # +3000 on read 7 alone: r_7 ≈ 9.3 with negative neighbours (the fit is pulled up ≈ 200 e⁻),
    # r_7 − r_6 ≈ r_7 − r_8 ≈ 10 > 6 → SPIKE. Refit without read 7: exact line.
    # TIME = 150; SAMP = 14 + 1 = 15; no 8192; FLT DQ 0 (a new spike is not an input flag).
    counts, err, times, dq = ramp()
    counts[7] += 3000.0
    r = fit(counts, err, times, dq)
    assert r.rate[0] == pytest.approx(10.0, rel=1e-6)
    assert (r.time[0], r.samp[0], r.dq[0]) == (150.0, 15, 0)
    assert flagged_reads(r.read_dq, 4) == [7]
    assert flagged_reads(r.read_dq, 8192) == []


def test_saturation_from_read_10_on():
    # 256 on reads 10..15: pass 1 skips them; interval 1..9 (n 9). TIME = 10 + 80 = 90,
    # SAMP = 10; FLT DQ loses 256; the IMA DQ is unchanged.
    counts, err, times, dq = ramp()
    dq[10:] = 256
    r = fit(counts, err, times, dq)
    assert r.rate[0] == pytest.approx(10.0, rel=1e-6)
    assert (r.time[0], r.samp[0], r.dq[0]) == (90.0, 10, 0)
    np.testing.assert_array_equal(r.read_dq, dq)


def test_first_read_saturation_copies_the_zeroth_read():
    counts, err, times, dq = ramp()
    dq[0] = 2048 | 256 | 16
    dq[1:] = 256
    zeroth = ZerothRead(sci=123.0, err=4.5, dq=2048 | 256 | 16, sampzero=2.911756)
    r = fit(counts, err, times, dq, zeroth=zeroth)
    # SCI/ERR of the zeroth read, DQ without 2048 (256 kept), SAMP 1, TIME = SAMPZERO.
    assert (r.rate[0], r.err[0], r.dq[0], r.samp[0]) == (123.0, 4.5, 256 | 16, 1)
    assert r.time[0] == np.float32(2.911756)
    np.testing.assert_array_equal(r.read_dq, dq)
    as_tuple = fit(counts, err, times, dq, zeroth=(123.0, 4.5, np.int16(2048 | 256 | 16), 2.911756))
    assert (as_tuple.rate[0], as_tuple.dq[0], as_tuple.time[0]) == (r.rate[0], r.dq[0], r.time[0])
    with pytest.raises(ValueError, match="saturated in read 1"):
        fit(counts, err, times, dq)


def test_no_usable_sample_gives_the_1e5_sentinel():
    # Same pixel without the zeroth-read branch: every read 1..15 has 256 in both passes.
    # FLT DQ = (2048|256|16 | 256 ...) without 2048 and 256 = 16.
    counts, err, times, dq = ramp()
    dq[0] = 2048 | 256 | 16
    dq[1:] = 256
    for model in ("physical", "calwf3", "pipeline"):
        r = fit(counts, err, times, dq, first_read_saturation=False, error_model=model)
        assert (r.rate[0], r.err[0], r.time[0], r.samp[0], r.dq[0]) == (0.0, 1e5, 0.0, 0, 16)


def test_static_bad_pixel_is_fitted_in_pass_2():
    # DQ 16 on every read: pass 1 has no sample, pass 2 uses all reads; the CR at read 8 is
    # found there as well (16|8192 opens the second interval). Same numbers as the one-CR case.
    counts, err, times, dq = ramp()
    dq[:] = 16
    counts[8:] += 5000.0
    r = fit(counts, err, times, dq, error_model="calwf3")
    assert r.rate[0] == pytest.approx(10.0, rel=REL_F32)
    assert r.err[0] == pytest.approx(0.210532, rel=2e-5)
    assert (r.time[0], r.samp[0], r.dq[0]) == (140.0, 15, 16)
    assert flagged_reads(r.read_dq, 8192) == list(range(8, 16))
    assert flagged_reads(r.read_dq, 16) == list(range(16))


def test_spike_on_a_static_pixel_stays_in_the_pass_2_fit():
    # calwf3 defect reproduced: in pass 2 a spike (+3000 on read 7) is flagged 1024 (→ 4) but a
    # 1024 read still joins the interval and RejCRs does not skip it, so the next iteration flags
    # read 7 as a CR and it opens the second interval. Interval 0 = reads 1..6 (b = 10,
    # R² = 441·50²/1750 = 630, σ = √(630 + 1.8 + 1175)/(2.35·50) = 0.361764); interval 1 =
    # reads 7..15 (t̄ = 110, Σ(t − t̄)² = 6000): b = 10 + 3000·(70 − 110)/6000 = −10, and with
    # Δy = 1500 − 3700 < 0 the radicand is negative, so σ = √(S/D) = (21/2.35)/√6000 = 0.115365.
    # SCI = (10/0.361764² − 10/0.115365²)/(1/0.361764² + 1/0.115365²) = −8.1538.
    counts, err, times, dq = ramp()
    dq[:] = 16
    counts[7] += 3000.0
    r = fit(counts, err, times, dq, error_model="calwf3")
    w0, w1 = 1 / 0.361764**2, 1 / 0.115365**2
    assert r.rate[0] == pytest.approx((10 * w0 - 10 * w1) / (w0 + w1), rel=1e-4)
    assert r.err[0] == pytest.approx(inverse_variance_err(0.361764, 0.115365), rel=1e-4)
    assert flagged_reads(r.read_dq, 4) == [7]
    assert flagged_reads(r.read_dq, 8192) == list(range(7, 16))
    assert (r.time[0], r.samp[0], r.dq[0]) == (140.0, 15, 16)


def test_clean_static_pixel_equals_clean_pixel():
    counts, err, times, dq = ramp()
    clean = fit(counts, err, times, dq)
    static = fit(counts, err, times, dq + 16)
    assert (static.rate[0], static.err[0], static.samp[0]) == (clean.rate[0], clean.err[0], 16)
    assert static.dq[0] == 16


def test_two_read_interval():
    # NSAMP 3: interval reads 1, 2 → linfit's n == 2 branch, b = (200 − 100)/10 = 10, R = 0.
    # calwf3:   √(0.036·10 + 2.35·100)/(2.35·10) = √235.36/23.5 = 0.652830
    # pipeline: √(0.36 + 100)/10 = 1.001798
    # physical: c = (−1, 1)/10: var = RN²/100 + (10 + 0.036)·10/100 = 4 + 1.0036 → 2.236873
    # TIME = 10 + 10 = 20, SAMP = 2 + 1 = 3.
    counts, err, times, dq = ramp(nsamp=3)
    for model, sigma in {"calwf3": 0.652830, "pipeline": 1.001798, "physical": 2.236873}.items():
        r = fit(counts, err, times, dq, error_model=model)
        assert r.rate[0] == pytest.approx(10.0, rel=1e-6)
        assert r.err[0] == pytest.approx(sigma, rel=1e-5)
        assert (r.time[0], r.samp[0]) == (20.0, 3)


def test_two_read_interval_negative_signal_keeps_provisional_sigma():
    # y = 0, 100, 0: b = −10; radicand 0.36 + 2.35·(−100) < 0 (signed Δy, quirk), so linfit keeps
    # √((σ0/t0)² + (σ1/t1)²) = √(30² + 15²) = 33.541020.
    counts, err, times, dq = ramp(nsamp=3)
    counts[2] = 0.0
    r = fit(counts, err, times, dq, error_model="calwf3")
    assert r.rate[0] == pytest.approx(-10.0, rel=1e-6)
    assert r.err[0] == pytest.approx(33.541020, rel=1e-6)


def test_nsamp_2_single_read():
    # Only read 1: b = y/t = 10, calwf3 σ = σ/t = 30; physical √(RN² + 10.036·10)/10 = 2.236873.
    counts, err, times, dq = ramp(nsamp=2)
    calwf3 = fit(counts, err, times, dq, error_model="calwf3")
    physical = fit(counts, err, times, dq)
    assert (calwf3.rate[0], calwf3.err[0], calwf3.time[0], calwf3.samp[0]) == (10.0, 30.0, 10.0, 2)
    assert physical.err[0] == pytest.approx(2.236873, rel=1e-6)


def test_cosmic_ray_before_read_1_is_not_detected():
    # +5000 already in read 1: the line through reads 1..15 just has intercept 5000 (§7.11.9).
    counts, err, times, dq = ramp()
    counts[1:] += 5000.0
    r = fit(counts, err, times, dq)
    assert r.rate[0] == pytest.approx(10.0, rel=REL_F32)
    assert (r.time[0], r.samp[0]) == (150.0, 16)
    assert not r.read_dq.any()


def test_deviant_read_1_becomes_a_cr_at_read_2():
    # +3000 on read 1 only. RejCRs sees |r(read 2) − r(read 1)| first and flags read 2 (the later
    # sample), so RejFirstRead never fires. Intervals: [read 1] (b = 3100/10 = 310, σ = 30) and
    # reads 2..15 (n 14, b = 10; R² = 441·130²/22750 = 327.6,
    # σ = √(327.6 + 0.036·130 + 2.35·1300)/(2.35·130) = 0.190509).
    # SCI = (310/30² + 10/0.190509²)/(1/30² + 1/0.190509²) = 10.012120
    # TIME = (t1 − t0) + (t15 − t2) = 10 + 130 = 140; SAMP = (1 + 1) + (14 − 1) = 15.
    counts, err, times, dq = ramp()
    counts[1] += 3000.0
    r = fit(counts, err, times, dq, error_model="calwf3")
    w0, w1 = 1 / 30.0**2, 1 / calwf3_sigma(14, 1300) ** 2
    assert calwf3_sigma(14, 1300) == pytest.approx(0.190509, rel=1e-5)
    assert r.rate[0] == pytest.approx((310 * w0 + 10 * w1) / (w0 + w1), rel=1e-5)
    assert r.rate[0] == pytest.approx(10.012120, rel=1e-5)
    assert r.err[0] == pytest.approx(inverse_variance_err(30.0, 0.190509), rel=1e-5)
    assert (r.time[0], r.samp[0]) == (140.0, 15)
    assert flagged_reads(r.read_dq, 8192) == list(range(2, 16))
    assert flagged_reads(r.read_dq, 4) == []


def test_fixsen_weights_keep_an_exact_line_and_use_time_option():
    # σ = 1 → SNR = 1400 > 100 → P = 10; any weights return the exact slope of a straight line.
    counts, err, times, dq = ramp(sigma=1.0)
    for weighting in ("index", "time"):
        r = fit(counts, err, times, dq, weighting=weighting)
        assert r.rate[0] == pytest.approx(10.0, rel=1e-6)


def test_zerosig_and_input_flags_propagate_to_flt_dq():
    # 2048 is removed, 512 and 64 propagate, 256 is dropped from the FLT DQ.
    counts, err, times, dq = ramp()
    dq[0] = 2048
    dq[:, 0] |= 512
    dq[14:] |= 256
    r = fit(counts, err, times, dq, error_model="calwf3")
    assert r.dq[0] == 512
    # Pass 2 (512 is on every read): reads 1..13; TIME 130, SAMP 14.
    assert (r.time[0], r.samp[0]) == (130.0, 14)


def test_pixel_shape_is_kept_and_float64_inputs_accepted():
    counts, err, times, dq = ramp()
    shape = (16, 2, 3)
    r = fit(
        np.broadcast_to(counts[:, :, None], shape),
        np.broadcast_to(err[:, :, None], shape),
        times,
        np.broadcast_to(dq[:, :, None], shape),
    )
    assert r.rate.shape == (2, 3) and r.read_dq.shape == shape
    assert np.all(r.rate == r.rate[0, 0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"error_model": "exact"}, "error_model"),
        ({"weighting": "midpoint"}, "weighting"),
    ],
)
def test_bad_options_are_rejected(kwargs, message):
    counts, err, times, dq = ramp()
    with pytest.raises(ValueError, match=message):
        fit(counts, err, times, dq, **kwargs)


def test_bad_shapes_and_times_are_rejected():
    counts, err, times, dq = ramp()
    with pytest.raises(ValueError, match="same shape"):
        fit(counts, err[:, :0], times, dq)
    with pytest.raises(ValueError, match="times must have shape"):
        fit(counts, err, times[:-1], dq)
    with pytest.raises(ValueError, match="increase strictly"):
        fit(counts, err, times[::-1].copy(), dq)
    with pytest.raises(ValueError, match="nsamp >= 2"):
        fit(counts[:1], err[:1], times[:1], dq[:1])


# --------------------------------------------------------------------------------------------
# §7.10 archive reset
# --------------------------------------------------------------------------------------------


def test_reset_crcorr_flags_rules():
    # 4 reads × 7 pixels, one rule per pixel (reads in time order).
    dq = np.zeros((4, 7), np.uint16)
    dq[2:, 0] = 8192  # old CR on read 2 and later → cleared
    dq[2, 1] = 4  # old spike (one read) → cleared
    dq[:, 2] = 4  # static DETECTORPROB → kept
    dq[3, 3] = 32  # last-read UNSTABLE edge case → cleared
    dq[:, 4] = 32  # UNSTABLE on all reads, BPIXTAB lacks it → cleared only with the mask
    dq[:, 5] = 32  # UNSTABLE on all reads, BPIXTAB has it → kept
    dq[0, 6] = 2048  # ZEROSIG, saturation, blobs → kept
    dq[2:, 6] |= 256
    dq[:, 6] |= 512
    original = dq.copy()

    default = reset_crcorr_flags(dq)
    np.testing.assert_array_equal(dq, original)  # never modifies its input
    expected = original.copy()
    expected[:, 0] = 0
    expected[:, 1] = 0
    expected[:, 3] = 0
    np.testing.assert_array_equal(default, expected)

    exact = reset_crcorr_flags(dq, bpixtab_unstable=np.array([0, 0, 0, 0, 0, 1, 0], bool))
    expected[:, 4] = 0
    np.testing.assert_array_equal(exact, expected)
    assert exact.dtype == np.uint16


def test_reset_crcorr_flags_reads_int16_and_keeps_other_bits():
    dq = np.array([[-32768 | 8192 | 16], [8192 | 16]], dtype=np.int16)  # 32768 as a sign bit
    out = reset_crcorr_flags(dq)
    np.testing.assert_array_equal(out, np.array([[32768 | 16], [16]], np.uint16))
