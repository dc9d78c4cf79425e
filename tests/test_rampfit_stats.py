"""Statistical calibration on simulated ramps, the He I failure case, and equivalence checks.

The simulator is deliberately independent of the code under test: Poisson increments of the
source plus dark between reads, DARKCORR subtracting the mean dark, independent Gaussian read noise
of RN/√2 per read with the zeroth read subtracted from all, cosmic rays as persistent jumps, and
σ_k = √(RN² + |C_k|) as NOISCORR would give it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import numpy as np
import pytest

from survey.rampfit import fit_ramps
from survey.wfc3ir.sequences import read_times

RN = 20.0
DARK = 0.036


def simulate(times, expected, rng, *, hits=None, readnoise=RN, dark=DARK):
    """(counts, err, dq) float32 stacks for ``expected`` source counts (nsamp, npix) at ``times``.

    ``hits``: optional (amplitude, read) per pixel arrays; the jump appears from that read on.
    """
    nsamp, npix = expected.shape
    mean = expected + dark * times[:, None]
    increments = rng.poisson(np.diff(mean, axis=0)).astype(float)
    signal = np.concatenate([np.zeros((1, npix)), np.cumsum(increments, axis=0)])
    signal -= dark * times[:, None]
    if hits is not None:
        amplitude, read = hits
        signal += np.where(np.arange(nsamp)[:, None] >= read, amplitude, 0.0)
    reads = signal + rng.normal(0.0, readnoise / np.sqrt(2.0), (nsamp, npix))
    counts = reads - reads[0]
    err = np.sqrt(readnoise**2 + np.abs(counts))
    err[0] = 0.0
    return counts.astype(np.float32), err.astype(np.float32), np.zeros((nsamp, npix), np.uint16)


def constant(times, rate, npix):
    return np.outer(times, np.full(npix, rate))


def he_i_cumulative(times, sky=0.5, amplitude=1.5):
    """Sky counts when He I rises linearly by ``amplitude`` between 30% and 70% of the exposure."""
    t0, t1 = 0.3 * times[-1], 0.7 * times[-1]
    ramp = np.clip(times - t0, 0.0, t1 - t0)
    return sky * times + amplitude * (ramp**2 / (2 * (t1 - t0)) + np.clip(times - t1, 0, None))


def pulls(result, truth):
    return (result.rate.astype(float) - truth) / result.err


# --------------------------------------------------------------------------------------------
# calibration
# --------------------------------------------------------------------------------------------

CALIBRATION_CASES = {
    "faint-sky-STEP200-16": ("STEP200", 16, 0.5, "index"),
    "source-SPARS50-16": ("SPARS50", 16, 30.0, "index"),
    "RAPID-16": ("RAPID", 16, 5.0, "index"),
    "SPARS100-6": ("SPARS100", 6, 2.0, "index"),
    "RAPID-4": ("RAPID", 4, 20.0, "index"),
    "STEP200-16-time-weights": ("STEP200", 16, 3.0, "time"),
}


@pytest.mark.parametrize("case", CALIBRATION_CASES)
def test_physical_error_is_calibrated_and_slope_unbiased(case):
    seq, nsamp, rate, weighting = CALIBRATION_CASES[case]
    rng = np.random.default_rng(sum(map(ord, case)))
    times = read_times(seq, nsamp)
    npix = 20000
    counts, err, dq = simulate(times, constant(times, rate, npix), rng)
    result = fit_ramps(counts, err, times, dq, readnoise=RN, weighting=weighting)
    z = pulls(result, rate)
    assert 0.95 <= np.std(z) <= 1.05
    residual = result.rate - rate
    assert abs(residual.mean()) < 4 * residual.std() / np.sqrt(npix)


def test_physical_error_is_calibrated_on_pixels_with_cosmic_rays():
    rng = np.random.default_rng(7)
    times = read_times("STEP200", 16)
    npix = 20000
    hits = (np.exp(rng.uniform(np.log(500), np.log(5000), npix)), rng.integers(2, 16, npix))
    counts, err, dq = simulate(times, constant(times, 2.0, npix), rng, hits=hits)
    result = fit_ramps(counts, err, times, dq, readnoise=RN)
    split = (result.read_dq[-1] & 8192) != 0
    assert split.mean() > 0.95
    z = pulls(result, 2.0)[split]
    assert 0.95 <= np.std(z) <= 1.05
    assert abs(np.mean(z)) < 0.05


def test_calwf3_error_model_reproduces_the_documented_underestimate():
    # §8: calwf3 3.7.3 on STEP200 0.5 e⁻/s sky: FLT scatter 0.0204, median ERR 0.0135 (ratio 1.51).
    rng = np.random.default_rng(8)
    times = read_times("STEP200", 16)
    counts, err, dq = simulate(times, constant(times, 0.5, 20000), rng, dark=0.04)
    calwf3 = fit_ramps(counts, err, times, dq, error_model="calwf3")
    physical = fit_ramps(counts, err, times, dq)
    scatter = np.std(calwf3.rate - 0.5)
    assert scatter == pytest.approx(0.0204, rel=0.05)
    assert np.median(calwf3.err) == pytest.approx(0.0135, rel=0.05)
    assert scatter / np.median(calwf3.err) == pytest.approx(1.51, rel=0.05)
    assert np.median(physical.err) == pytest.approx(scatter, rel=0.05)
    assert abs(np.median(calwf3.rate - 0.5)) < 0.001


def test_pipeline_error_model_is_calibrated_where_read_noise_is_21():
    # The normal-pipeline formula is right in e⁻ when the read noise equals linfit's 21 e⁻.
    rng = np.random.default_rng(9)
    times = read_times("SPARS50", 16)
    counts, err, dq = simulate(times, constant(times, 10.0, 20000), rng, readnoise=21.0)
    result = fit_ramps(counts, err, times, dq, error_model="pipeline")
    assert 0.95 <= np.std(pulls(result, 10.0)) <= 1.1


# --------------------------------------------------------------------------------------------
# detection
# --------------------------------------------------------------------------------------------


def test_cosmic_ray_detection_and_false_positives():
    rng = np.random.default_rng(10)
    times = read_times("STEP200", 16)
    npix = 40000
    hit = np.arange(npix) < npix // 2
    amplitude = np.where(hit, np.exp(rng.uniform(np.log(200), np.log(5000), npix)), 0.0)
    read = rng.integers(2, 16, npix)  # lands after read 1: the jump is in read 2..15
    counts, err, dq = simulate(times, constant(times, 0.5, npix), rng, hits=(amplitude, read))
    result = fit_ramps(counts, err, times, dq)
    cr = (result.read_dq & 8192) != 0
    first_flag = np.where(cr.any(axis=0), cr.argmax(axis=0), -1)
    assert (first_flag[hit] == read[hit]).mean() >= 0.90  # at the right read
    assert cr[:, ~hit].any(axis=0).mean() <= 0.001  # false positives on clean pixels


def test_he_i_breaks_calwf3_and_flattening_fixes_it():
    # §1/§8: a sky rising by 1.5 e⁻/s mid-exposure makes calwf3 flag ~99% of the pixels and
    # leaves a noisy FLT. Subtracting the per-read sky curvature (flatten-ramp:
    # C'_k = C_k + t_k·(M − m_k), m_k the cumulative sky rate, M = m_last) straightens the ramps.
    rng = np.random.default_rng(11)
    times = read_times("STEP200", 16)
    npix = 20000
    sky = he_i_cumulative(times)
    counts, err, dq = simulate(times, np.repeat(sky[:, None], npix, axis=1), rng)
    curved = fit_ramps(counts, err, times, dq)
    assert ((curved.read_dq & 8192) != 0).any(axis=0).mean() > 0.9

    m = np.divide(sky, times, out=np.zeros_like(sky), where=times > 0)
    flat = counts + (times * (m[-1] - m))[:, None].astype(np.float32)
    fixed = fit_ramps(flat, err, times, dq)
    assert ((fixed.read_dq & 8192) != 0).any(axis=0).mean() < 0.005
    mean_rate = sky[-1] / times[-1]
    assert abs(np.median(fixed.rate) - mean_rate) < 0.002
    assert np.std(curved.rate) > 3 * np.std(fixed.rate)
    assert 0.95 <= np.std(pulls(fixed, mean_rate)) <= 1.05


# --------------------------------------------------------------------------------------------
# equivalence: pixels are independent
# --------------------------------------------------------------------------------------------


def mixed_scene(ny=60, nx=90, seed=12):
    """A (16, ny, nx) scene with sky, He I, sources, CRs, static flags and saturation."""
    rng = np.random.default_rng(seed)
    times = read_times("STEP200", 16)
    npix = ny * nx
    rate = rng.choice([0.5, 2.0, 40.0], npix, p=[0.7, 0.2, 0.1])
    expected = np.outer(times, rate) + np.outer(he_i_cumulative(times, 0.0), rng.random(npix) < 0.5)
    hits = (rng.exponential(800, npix) * (rng.random(npix) < 0.2), rng.integers(1, 16, npix))
    counts, err, dq = simulate(times, expected, rng, hits=hits)
    dq[:, rng.random(npix) < 0.02] |= 16
    saturating = rng.random(npix) < 0.02
    dq[:, saturating] |= np.where(np.arange(16)[:, None] >= rng.integers(1, 16, npix), 256, 0)[
        :, saturating
    ].astype(np.uint16)
    shape = (16, ny, nx)
    return counts.reshape(shape), err.reshape(shape), times, dq.reshape(shape)


def assert_same_result(a, b):
    for name, x, y in zip(a._fields, a, b, strict=True):
        np.testing.assert_array_equal(x, y, err_msg=name)


@pytest.mark.parametrize("error_model", ["physical", "calwf3"])
def test_row_chunks_and_permutations_are_bit_identical(error_model):
    counts, err, times, dq = mixed_scene()
    kw = {"error_model": error_model, "first_read_saturation": False}
    whole = fit_ramps(counts, err, times, dq, **kw)
    # The default read noise follows the array's amplifier map, so chunks get explicit values.
    from survey.rampfit.cridcalc import _pixel_readnoise

    rn = _pixel_readnoise(None, counts.shape[1:], counts[0].size).reshape(counts.shape[1:])
    chunks = [
        fit_ramps(
            counts[:, r : r + 7],
            err[:, r : r + 7],
            times,
            dq[:, r : r + 7],
            readnoise=rn[r : r + 7],
            **kw,
        )
        for r in range(0, 60, 7)
    ]
    stitched = type(whole)(
        *(np.concatenate([c[i] for c in chunks], axis=-2) for i in range(len(whole)))
    )
    assert_same_result(whole, stitched)

    order = np.random.default_rng(0).permutation(counts[0].size)
    flat = [a.reshape(16, -1)[:, order] for a in (counts, err, dq)]
    permuted = fit_ramps(flat[0], flat[1], times, flat[2], readnoise=rn.reshape(-1)[order], **kw)
    inverse = np.argsort(order)
    unpermuted = type(whole)(
        *(a[..., inverse].reshape(b.shape) for a, b in zip(permuted, whole, strict=True))
    )
    assert_same_result(whole, unpermuted)


def test_serial_equals_parallel():
    counts, err, times, dq = mixed_scene(seed=13)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = fit_ramps(counts, err, times, dq, first_read_saturation=False)
    finally:
        numba.set_num_threads(threads)
    parallel = fit_ramps(counts, err, times, dq, first_read_saturation=False)
    assert_same_result(serial, parallel)


_INTERPRETED = """
import numpy as np, warnings, sys
warnings.simplefilter("ignore")
from survey.rampfit import fit_ramps
data = np.load(sys.argv[1])
out = {}
for model in ("physical", "calwf3", "pipeline"):
    for weighting in ("index", "time"):
        r = fit_ramps(data["counts"], data["err"], data["times"], data["dq"], error_model=model,
                      weighting=weighting, first_read_saturation=False)
        out.update({f"{model}-{weighting}-{k}": v for k, v in zip(r._fields, r)})
np.savez(sys.argv[2], **out)
"""


def test_compiled_kernel_equals_interpreted_float32_reference(tmp_path):
    # Run the same kernel source with NUMBA_DISABLE_JIT=1: numpy scalars keep float32 (NEP 50),
    # whereas numba would silently promote float32 ⊕ int/float64 to float64. Bit equality proves
    # the compiled code does calwf3's float32 arithmetic where the source says so.
    counts, err, times, dq = mixed_scene(ny=12, nx=25, seed=14)
    np.savez(tmp_path / "in.npz", counts=counts, err=err, times=times, dq=dq)
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(_INTERPRETED),
            str(tmp_path / "in.npz"),
            str(tmp_path / "out.npz"),
        ],
        check=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        timeout=300,
    )
    reference = np.load(tmp_path / "out.npz")
    for model in ("physical", "calwf3", "pipeline"):
        for weighting in ("index", "time"):
            r = fit_ramps(
                counts,
                err,
                times,
                dq,
                error_model=model,
                weighting=weighting,
                first_read_saturation=False,
            )
            for name, value in zip(r._fields, r, strict=True):
                np.testing.assert_array_equal(
                    value,
                    reference[f"{model}-{weighting}-{name}"],
                    err_msg=f"{model} {weighting} {name}",
                )


@pytest.mark.parametrize(
    ("error_model", "weighting"),
    [("physical", "index"), ("calwf3", "index"), ("pipeline", "index"), ("physical", "time")],
)
def test_simd_paths_equal_per_pixel_path(monkeypatch, error_model, weighting):
    # The first iteration and the final fit of clean pixels run across pixels (SIMD); switching
    # that off must not change a single bit.
    from survey.rampfit import cridcalc

    counts, err, times, dq = mixed_scene(seed=15)
    dq[0, :3, :3] |= 8192  # zeroth-read flags keep a pixel on the per-pixel path
    kw = {"error_model": error_model, "weighting": weighting, "first_read_saturation": False}
    fast = fit_ramps(counts, err, times, dq, **kw)
    monkeypatch.setattr(cridcalc, "_SIMD", False)
    slow = fit_ramps(counts, err, times, dq, **kw)
    assert_same_result(fast, slow)
