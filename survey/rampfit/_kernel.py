"""Numba kernels of the cridcalc port (private).

The algorithm, its maths and its quirks are described in :mod:`survey.rampfit.cridcalc`; this
module only implements them. :func:`fit_pixels` runs blocks of ``_BLOCK`` pixels in parallel.
Nothing is shared between pixels, so any blocking or thread count gives bit-identical results.

Per block:
1. the stacks are copied into pixel-major buffers row by row (full-frame rows are 4 MiB apart,
   so gathering a pixel's reads in place thrashes one cache set);
2. :func:`_first_iteration` runs pass 1's first detection iteration *across* pixels (SIMD) for
   every pixel whose reads 1..n-1 are all unflagged: its interval is then every read, so S, Sx,
   Sxx are constants and the per-pixel float32 steps are the same, in the same order;
3. :func:`_clean_final_fit` finishes, also across pixels, those that iteration found clean
   (most pixels of a clean exposure);
4. every other pixel takes the per-pixel path :func:`_fit_pixel`, which resumes after the
   precomputed first iteration where there is one.
The across-pixel steps can be switched off (``simd``): tests check that nothing changes.

Interval samples are copied into per-interval rows (``iy``, ``isg``, ``it`` for y, σ, t; ``lookup``
for the read index; ``tdq`` for the DQ snapshot), as calwf3 does. Per-pixel helpers are inlined
(``_INLINE``): numba does not inline across its functions otherwise, and passing a dozen arrays
per call cost more than the maths. Block-level and rare steps are ordinary calls
(``_SEPARATE``), which keeps the one-time compile (cached on disk) near half a minute.

Float discipline: calwf3 keeps samples, sums and slopes in float32 (only ``pow``/``sqrt`` and a few
``1.0/x`` run in double before truncation). Numba promotes ``float32 op int`` and ``float32 op
float64`` to float64, so every literal below is a ``F32`` constant and every deliberate double step
is written out with ``np.float64``/``F32``. A test runs this module's source interpreted
(NUMBA_DISABLE_JIT, where numpy keeps float32) and compares bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = [
    "DARK_RATE",
    "FIXSEN_POWERS",
    "FIXSEN_SNR",
    "MAX_CRS",
    "MODEL_CALWF3",
    "MODEL_PHYSICAL",
    "MODEL_PIPELINE",
    "SPIKE_THRESH",
    "fit_pixels",
    "fixsen_weight_table",
    "noise_shape_table",
]

F32 = np.float32
F64 = np.float64

# DQ bits (hstcal wf3dq.h) as plain ints so numba freezes them as constants.
DETECTORPROB = 4
UNSTABLE = 32
SATPIXEL = 256
SPIKE = 1024
ZEROSIG = 2048
DATAREJECT = 8192
HIGH_CURVATURE = 16384
_NOT_ZEROSIG = 0xFFFF & ~ZEROSIG

#: cridcalc.c compile-time constants.
MAX_CRS = 4
SPIKE_THRESH = F32(6.0)
FIT_READNOISE = 21.0  # e- per CDS, hard-coded in linfit
DARK_RATE = 0.036  # e-/s, hard-coded in EstimateDarkandGlow
#: Fixsen exponents and the interval-SNR thresholds above which each applies (SNR <= 5 -> 0).
FIXSEN_POWERS = np.array([0.0, 0.4, 1.0, 3.0, 6.0, 10.0], dtype=np.float32)
FIXSEN_SNR = (5.0, 10.0, 20.0, 50.0, 100.0)

MODEL_PHYSICAL = 0
MODEL_CALWF3 = 1
MODEL_PIPELINE = 2

_OK = 0
_NO_SAMPLES = 1
_FOUND_ERROR = 2

#: Pixels per parallel work unit; scratch arrays are allocated once per block.
_BLOCK = 512

_ZERO = F32(0.0)
_ONE = F32(1.0)
_DENOM_FLOOR = F32(1e-6)
_NO_WEIGHT_SIGMA = F32(1e9)
_NO_SAMPLES_ERR = F32(1e5)
_HUGE_VAR = 1e18


def fixsen_weight_table(nmax: int) -> np.ndarray:
    """Dimensionless read-index weights ``table[n, p, i] = |(p - c)/c| ** FIXSEN_POWERS[i]``.

    ``c = (n - 1)/2``; computed in double and truncated to float32 exactly as linfit does, so the
    kernel never calls ``pow`` for index weighting. ``0 ** 0`` is 1 (equal weights for P = 0).
    """
    table = np.zeros((nmax + 1, max(nmax, 1), FIXSEN_POWERS.size), dtype=np.float32)
    for n in range(2, nmax + 1):
        half = (n - 1) / 2.0
        base = np.abs(np.arange(n) - half) / half
        for i, power in enumerate(FIXSEN_POWERS):
            table[n, :n, i] = np.abs(base ** np.float64(power)).astype(np.float32)
    return table


# --------------------------------------------------------------------------------------------
# intervals and the detection fit
# --------------------------------------------------------------------------------------------

_INLINE = {"cache": True, "error_model": "numpy", "inline": "always"}
#: Functions called once per block of pixels or rarely: a call costs little there, and
#: compiling them separately keeps the one-time compile short.
_SEPARATE = {"cache": True, "error_model": "numpy"}


@njit(**_INLINE)
def _build_intervals(q, y, s, t, n, pass2, ignore, iy, isg, it, lookup, tdq, tcount):
    """Split reads 1..n-1 into CR-free intervals; return the last interval index, -1 if empty.

    Pass 1 joins exactly-0 samples and opens a new interval at exactly-8192 ones; pass 2 joins
    samples free of (ignore | 8192) and opens at any 8192. ``tdq`` rows are not cleared here:
    RejSpikes reads one slot past an interval in pass 2 (see the module docstring of cridcalc).
    """
    interval = 0
    sample = 0
    for k in range(1, n):
        d = q[k]
        if pass2:
            join = (d & (ignore | DATAREJECT)) == 0
            opens = (d & DATAREJECT) != 0
        else:
            join = d == 0
            opens = d == DATAREJECT
        if opens:
            tcount[interval] = sample
            interval += 1
            sample = 0
        if join or opens:
            lookup[interval, sample] = k
            tdq[interval, sample] = d
            iy[interval, sample] = y[k]
            isg[interval, sample] = s[k]
            it[interval, sample] = t[k]
            sample += 1
    if sample == 0:
        return -1
    # Exact equality in both passes: a lone CR sample ends the list and is dropped.
    if tdq[interval, sample - 1] == DATAREJECT:
        interval -= 1
    else:
        tcount[interval] = sample
    return interval


@njit(**_INLINE)
def _linfit(iy, isg, it, dark, lookup, idx, n, w, gain):
    """calwf3 linfit on interval ``idx`` with float32 weights ``w`` (already times 1/rdns²).

    Returns (a, b, sigb, fit_unc, dx, dy, ddg, has_weight); sigb is calwf3's σ_b for y in the
    caller's units (the re-entrant value when y is in e-).
    """
    S = _ZERO
    Sx = _ZERO
    Sy = _ZERO
    Sxx = _ZERO
    Sxy = _ZERO
    for p in range(n):
        if isg[idx, p] != _ZERO:
            wt = w[p]
            tk = it[idx, p]
            yk = iy[idx, p]
            S += wt
            Sy += yk * wt
            Sx += tk * wt
            Sxx += tk * tk * wt
            Sxy += tk * yk * wt
    dx = it[idx, n - 1] - it[idx, 0]
    dy = iy[idx, n - 1] - iy[idx, 0]
    ddg = dark[lookup[idx, n - 1]] - dark[lookup[idx, 0]]
    if not S > _ZERO:
        return _ZERO, _ZERO, _NO_WEIGHT_SIGMA, _ZERO, dx, dy, ddg, False
    denom = S * Sxx - Sx * Sx
    if denom < _DENOM_FLOOR:
        denom = _DENOM_FLOOR
    if n == 2:
        b = dy / dx
        a = iy[idx, 0] - b * it[idx, 0]
        fit_unc = _ZERO
        r0 = isg[idx, 0] / it[idx, 0]
        r1 = isg[idx, 1] / it[idx, 1]
        sigb = F32(math.sqrt(r0 * r0 + r1 * r1))
    else:
        b = (S * Sxy - Sx * Sy) / denom
        a = (Sxx * Sy - Sx * Sxy) / denom
        fit_unc = F32(math.sqrt(S / denom))
        sigb = fit_unc
    terma = (gain * fit_unc * dx) * (gain * fit_unc * dx)
    errterms = terma + gain * ddg + gain * dy
    if errterms > _ZERO:
        sigb = F32((math.sqrt(F64(errterms)) / F64(dx)) / F64(gain))
    return a, b, sigb, fit_unc, dx, dy, ddg, True


@njit(**_INLINE)
def _residuals(iy, isg, it, tdq, idx, n, a, b, pass2, ignore, diff):
    """(y - fit)/σ of the cumulative value; 0 for flagged samples (pass 1: any flag, the CR opener
    included; pass 2: only ``ignore`` bits) and for σ = 0."""
    for p in range(n):
        sg = isg[idx, p]
        d = tdq[idx, p]
        usable = (d & ignore) == 0 if pass2 else d == 0
        r = (iy[idx, p] - (a + b * it[idx, p])) / sg
        diff[p] = r if (usable and sg != _ZERO) else _ZERO


@njit(**_INLINE)
def _is_spike(diff, k):
    """Sample k-1 is a positive one-sample excursion above SPIKE_THRESH."""
    dc = diff[k - 1]
    return (
        dc - diff[k - 2] > SPIKE_THRESH
        and dc - diff[k] > SPIKE_THRESH
        and diff[k - 2] < _ZERO
        and diff[k] < _ZERO
    )


@njit(**_INLINE)
def _rej_spikes(diff, tdq, idx, n, ignore, pass2):
    """Position of the spike to flag, or -1 (RejSpikes, with its shifted flag test and signed max).

    In pass 1 only position 0 of an interval can carry a flag and the tested positions are >= 1
    (the slot past the end is still zero), so the flag test is skipped there."""
    mask = ignore | DATAREJECT | SPIKE
    max_diff = _ZERO
    max_samp = -1
    for k in range(2, n):
        # Quirk: the candidate is k-1 but the flags of k-1, k and k+1 are tested; k+1 == n reads
        # the row's stale slot.
        if pass2 and ((tdq[idx, k - 1] & mask) or (tdq[idx, k] & mask) or (tdq[idx, k + 1] & mask)):
            continue
        if _is_spike(diff, k) and abs(diff[k - 1]) > max_diff:
            max_diff = diff[k - 1]  # signed: a negative winner is beaten by any later candidate
            max_samp = k - 1
    return max_samp


@njit(**_INLINE)
def _rej_crs(diff, tdq, idx, n, ignore, thresh, pass2):
    """Position (the later sample of the largest residual jump above ``thresh``), or -1.

    Pass 1 needs no flag test: only an interval's first sample can be flagged (a CR opener), its
    residual is 0, and so is ``prev``'s initial value."""
    mask = ignore | DATAREJECT
    prev = _ZERO
    max_diff = _ZERO
    cr = -1
    for k in range(1, n):
        if not pass2 or (tdq[idx, k - 1] & mask) == 0:
            prev = diff[k - 1]
        if not pass2 or (tdq[idx, k] & mask) == 0:
            cur = abs(diff[k] - prev)
            if cur > thresh:
                if cur > max_diff:
                    max_diff = cur
                    cr = k
                prev = diff[k]
    return cr if max_diff != _ZERO else -1


@njit(**_INLINE)
def _rej_first_read(diff, tdq, idx, ignore, thresh):
    """RejFirstRead. Unreachable in practice: RejCRs tests the same pair first (see docstring)."""
    mask = ignore | DATAREJECT | SPIKE
    if (tdq[idx, 0] & mask) or (tdq[idx, 1] & mask):
        return False
    return abs(diff[0] - diff[1]) > thresh


@njit(**_INLINE)
def _flag_interval(diff, tdq, lookup, idx, m, q, ignore, thresh, pass2, number_crs):
    """One rejection test on a fitted interval; returns (flag set?, CR count, too many CRs?)."""
    p = _rej_spikes(diff, tdq, idx, m, ignore, pass2)
    if p >= 0:
        q[lookup[idx, p]] |= SPIKE
        return True, number_crs, False
    p = _rej_crs(diff, tdq, idx, m, ignore, thresh, pass2)
    if p >= 0:
        k = lookup[idx, p]
        q[k] |= DATAREJECT
        number_crs += 1
        if number_crs >= MAX_CRS:
            q[k] = (q[k] - DATAREJECT) | HIGH_CURVATURE
            return True, number_crs, True
        return True, number_crs, False
    if _rej_first_read(diff, tdq, idx, ignore, thresh):
        q[lookup[idx, 0]] |= SPIKE
        return True, number_crs, False
    return False, number_crs, False


@njit(**_INLINE)
def _detect(
    q,
    y,
    s,
    t,
    dark,
    n,
    pass2,
    ignore,
    thresh,
    iy,
    isg,
    it,
    lookup,
    tdq,
    tcount,
    diff,
    w_equal,
    gain,
    first_spike,
    first_cr,
):
    """fitsamps' rejection loop; flags are ORed into ``q``. Returns (status, last interval).

    ``first_spike``/``first_cr`` (read index, -1 for none, -2 if not precomputed) carry the
    outcome of pass 1's first iteration when :func:`_first_iteration` already ran it.
    """
    number_crs = 0
    start = 0
    if first_spike > -2 and not pass2:
        # Iteration 1 already ran; its interval tables are not needed (pass 1 never reads a
        # stale slot), so only its flag is applied.
        if first_spike >= 0:
            q[first_spike] |= SPIKE
        elif first_cr >= 0:
            q[first_cr] |= DATAREJECT
            number_crs = 1
        else:
            last = _build_intervals(q, y, s, t, n, pass2, ignore, iy, isg, it, lookup, tdq, tcount)
            return _OK, last
    while True:
        last = _build_intervals(q, y, s, t, n, pass2, ignore, iy, isg, it, lookup, tdq, tcount)
        if last < 0:
            return _NO_SAMPLES, last
        flagged = False
        # Intervals before the one flagged last time are unchanged, so their (empty) outcome is
        # too: resume there instead of refitting them.
        for idx in range(start, last + 1):
            m = tcount[idx]
            if m < 2:
                continue
            a, b, _, _, _, _, _, _ = _linfit(iy, isg, it, dark, lookup, idx, m, w_equal, gain)
            _residuals(iy, isg, it, tdq, idx, m, a, b, pass2, ignore, diff)
            flagged, number_crs, too_many = _flag_interval(
                diff, tdq, lookup, idx, m, q, ignore, thresh, pass2, number_crs
            )
            if too_many:
                return _FOUND_ERROR, last
            if flagged:
                start = idx
                break
        if not flagged:
            return _OK, last


@njit(**_SEPARATE)
def _first_iteration(counts, errs, dq_in, times, start, m, invrdns2, thresh, spike, cr):
    """Pass 1's first detection iteration for a whole block at once, across pixels (SIMD).

    For a pixel whose reads 1..n-1 are all unflagged with σ ≠ 0 the first interval is every read,
    so S, Sx, Sxx are constants and only Sy, Sxy, the residuals and the scans vary; the same
    float32 operations in the same order as the per-pixel path give bit-identical decisions.
    Writes the spike / CR read index (or -1) of eligible pixels, -2 for the others.
    """
    n = counts.shape[0]
    S = _ZERO
    Sx = _ZERO
    Sxx = _ZERO
    for k in range(1, n):
        tk = times[k]
        S += invrdns2
        Sx += tk * invrdns2
        Sxx += tk * tk * invrdns2
    denom = S * Sxx - Sx * Sx
    if denom < _DENOM_FLOOR:
        denom = _DENOM_FLOOR
    eligible = np.ones(m, dtype=np.bool_)
    sy = np.zeros(m, dtype=np.float32)
    sxy = np.zeros(m, dtype=np.float32)
    for k in range(1, n):
        tk = times[k]
        for j in range(m):
            yk = counts[k, start + j]
            clean = (dq_in[k, start + j] & _NOT_ZEROSIG) == 0
            eligible[j] &= clean & (errs[k, start + j] != _ZERO)
            sy[j] += yk * invrdns2
            sxy[j] += tk * yk * invrdns2
    a = (Sxx * sy - Sx * sxy) / denom
    b = (S * sxy - Sx * sy) / denom
    d1 = np.zeros(m, dtype=np.float32)  # residual of the previous sample
    d2 = np.zeros(m, dtype=np.float32)  # and of the one before
    max_spike = np.zeros(m, dtype=np.float32)
    max_jump = np.zeros(m, dtype=np.float32)
    spike[:m] = -1
    cr[:m] = -1
    for k in range(1, n):
        tk = times[k]
        for j in range(m):
            r = (counts[k, start + j] - (a[j] + b[j] * tk)) / errs[k, start + j]
            if k >= 2:  # RejCRs: the later sample of the largest jump above thresh
                jump = abs(r - d1[j])
                new_cr = (jump > thresh) & (jump > max_jump[j])
                max_jump[j] = jump if new_cr else max_jump[j]
                cr[j] = k if new_cr else cr[j]
            if k >= 3:  # RejSpikes: candidate k-1, signed running maximum
                dc = d1[j]
                new_spike = (
                    (dc - d2[j] > SPIKE_THRESH)
                    & (dc - r > SPIKE_THRESH)
                    & (d2[j] < _ZERO)
                    & (r < _ZERO)
                    & (abs(dc) > max_spike[j])
                )
                max_spike[j] = dc if new_spike else max_spike[j]
                spike[j] = k - 1 if new_spike else spike[j]
            d2[j] = d1[j]
            d1[j] = r
    for j in range(m):
        if not eligible[j]:
            spike[j] = -2
        elif spike[j] >= 0:
            cr[j] = -1  # a spike wins over a CR in the same iteration


# --------------------------------------------------------------------------------------------
# final fit, error models, combination
# --------------------------------------------------------------------------------------------


@njit(**_INLINE)
def _power_index(snr):
    """Index into FIXSEN_POWERS for an interval SNR (float32 comparisons as in linfit)."""
    i = 0
    for thr in FIXSEN_SNR:
        if snr > F32(thr):
            i += 1
    return i


@njit(**_INLINE)
def _interval_power(iy, isg, idx, m):
    """Fixsen exponent index of interval ``idx`` from its SNR (y_last − y_first)/σ_last."""
    sg = isg[idx, m - 1]
    snr = (iy[idx, m - 1] - iy[idx, 0]) / sg if sg > _ZERO else _ZERO
    return _power_index(snr)


@njit(**_INLINE)
def _interval_weights(it, idx, m, ip, wtable, time_weighting, invrdns2, w):
    """Fixsen weights ×1/rdns² into ``w``: by read position (calwf3) or by read time (#569)."""
    if not time_weighting:
        for p in range(m):
            w[p] = wtable[m, p, ip] * invrdns2
        return
    power = F64(FIXSEN_POWERS[ip])
    centre = (F64(it[idx, 0]) + F64(it[idx, m - 1])) / 2.0
    half = (F64(it[idx, m - 1]) - F64(it[idx, 0])) / 2.0
    for p in range(m):
        base = abs(F64(it[idx, p]) - centre) / half
        w[p] = F32(abs(math.pow(base, power))) * invrdns2


@njit(**_INLINE)
def _inverse_readnoise2(gain):
    """linfit's 1/rdns², rdns = 21/g "DN", with its float32 roundings."""
    rdns = F32(FIT_READNOISE / F64(gain))
    return F32(1.0 / F64(rdns * rdns))


@njit(**_INLINE)
def _slope_noise_shape(isg, it, idx, m, w):
    """(Σc² + (Σc)², Σ_j Δt_j T_j²) for the slope coefficients c_p of the weighted LS fit.

    T_j = Σ_{p>=j} c_p; with Poisson covariance ∝ min(t_p, t_q) the source variance is
    rate × Σ_j Δt_j T_j². The n == 2 branch of linfit is a plain difference, c = (-1, 1)/Δx.
    """
    if m == 2:
        dx = F64(it[idx, 1]) - F64(it[idx, 0])
        return 2.0 / (dx * dx), 1.0 / dx
    sw = 0.0
    swx = 0.0
    for p in range(m):
        if isg[idx, p] != _ZERO:
            sw += F64(w[p])
            swx += F64(w[p]) * F64(it[idx, p])
    xbar = swx / sw
    sxx = 0.0
    for p in range(m):
        if isg[idx, p] != _ZERO:
            sxx += F64(w[p]) * (F64(it[idx, p]) - xbar) ** 2
    if not sxx > 0.0:
        return _HUGE_VAR, 0.0
    inv_sxx = 1.0 / sxx
    sum_c2 = 0.0
    sum_c = 0.0
    shot = 0.0
    tail = 0.0
    for p in range(m - 1, -1, -1):  # tail sums run from the last sample down
        tp = F64(it[idx, p])
        c = F64(w[p]) * (tp - xbar) * inv_sxx if isg[idx, p] != _ZERO else 0.0
        sum_c2 += c * c
        sum_c += c
        tail += c
        shot += (tp - (F64(it[idx, p - 1]) if p > 0 else 0.0)) * tail * tail
    return sum_c2 + sum_c * sum_c, shot


@njit(cache=True, error_model="numpy")
def noise_shape_table(times, wtable, time_weighting, gain):
    """``table[k0, k1, i]`` = (Σc² + (Σc)², Σ Δt T²) of the interval of every read k0..k1 with
    exponent FIXSEN_POWERS[i] (all σ ≠ 0): the physical variance of most intervals is a lookup."""
    n = times.shape[0]
    invrdns2 = _inverse_readnoise2(gain)
    table = np.zeros((n, n, FIXSEN_POWERS.size, 2))
    isg = np.ones((1, n), dtype=np.float32)
    it = np.zeros((1, n), dtype=np.float32)
    w = np.zeros(n, dtype=np.float32)
    for k0 in range(1, n):
        for k1 in range(k0 + 2, n):
            m = k1 - k0 + 1
            it[0, :m] = times[k0 : k1 + 1]
            for ip in range(FIXSEN_POWERS.size):
                _interval_weights(it, 0, m, ip, wtable, time_weighting, invrdns2, w)
                table[k0, k1, ip, 0], table[k0, k1, ip, 1] = _slope_noise_shape(isg, it, 0, m, w)
    return table


@njit(**_INLINE)
def _contiguous_with_errors(isg, lookup, idx, m):
    """True if interval ``idx`` holds consecutive reads, all with σ ≠ 0 (table-eligible)."""
    if lookup[idx, m - 1] - lookup[idx, 0] != m - 1:
        return False
    for p in range(m):  # noqa: SIM110 (numba compiles no generator inside all())
        if isg[idx, p] == _ZERO:
            return False
    return True


@njit(**_INLINE)
def _pipeline_sigma(isg, it, idx, m, fit_unc, dx, dy, ddg, gain):
    """calwf3's normal-pipeline σ_b expressed in e-: √(R² + 0.036Δx + Δy_e)/Δx."""
    terma = F64(gain * fit_unc * dx) ** 2
    e = terma + F64(gain * ddg) + F64(dy)
    if e > 0.0:
        return math.sqrt(e) / F64(dx)
    if m == 2:  # linfit's provisional value, unit-consistent in e-
        r0 = F64(isg[idx, 0]) / F64(it[idx, 0])
        r1 = F64(isg[idx, 1]) / F64(it[idx, 1])
        return math.sqrt(r0 * r0 + r1 * r1)
    return F64(gain) * F64(fit_unc)


@njit(**_INLINE)
def _model_terms(iy, isg, it, lookup, idx, m, w, ip, fit, gain, model, shape_table, res_d):
    """Per-interval inputs of the pipeline/physical variances into ``res_d[:, idx]``."""
    _, _, _, fit_unc, dx, dy, ddg, has_w = fit
    res_d[3, idx] = F64(dy)
    res_d[4, idx] = F64(dx)
    if not has_w:
        res_d[0, idx] = F64(_NO_WEIGHT_SIGMA)
        res_d[1, idx] = _HUGE_VAR
        res_d[2, idx] = 0.0
    elif model == MODEL_PIPELINE:
        res_d[0, idx] = _pipeline_sigma(isg, it, idx, m, fit_unc, dx, dy, ddg, gain)
    elif model == MODEL_PHYSICAL:
        if m > 2 and _contiguous_with_errors(isg, lookup, idx, m):
            res_d[1, idx] = shape_table[lookup[idx, 0], lookup[idx, m - 1], ip, 0]
            res_d[2, idx] = shape_table[lookup[idx, 0], lookup[idx, m - 1], ip, 1]
        else:
            res_d[1, idx], res_d[2, idx] = _slope_noise_shape(isg, it, idx, m, w)


@njit(**_INLINE)
def _final_fit(
    t,
    dark,
    iy,
    isg,
    it,
    lookup,
    tdq,
    tcount,
    last,
    wtable,
    shape_table,
    time_weighting,
    invrdns2,
    gain,
    model,
    w,
    res_f,
    res_d,
    iused,
):
    """Optimum-weighted slope per interval into ``res_f`` (b, σ_calwf3) and ``res_d`` (σ_pipeline,
    Σc², Σ ΔtT², Δy, Δx); returns (TIME, SAMP)."""
    int_time = _ZERO
    samp = 0
    for idx in range(last + 1):
        m = tcount[idx]
        samp += m + 1 if idx == 0 else m - 1
        iused[idx] = False
        if m > 1:
            k0 = lookup[idx, 0]
            if idx == 0:
                int_time += t[k0] - t[k0 - 1]
            ip = _interval_power(iy, isg, idx, m)
            _interval_weights(it, idx, m, ip, wtable, time_weighting, invrdns2, w)
            fit = _linfit(iy, isg, it, dark, lookup, idx, m, w, gain)
            int_time += it[idx, m - 1] - it[idx, 0]
            res_f[0, idx] = fit[1]
            res_f[1, idx] = fit[2]
            if model != MODEL_CALWF3:
                _model_terms(
                    iy, isg, it, lookup, idx, m, w, ip, fit, gain, model, shape_table, res_d
                )
            iused[idx] = True
        elif m == 1 and (tdq[idx, 0] & DATAREJECT) == 0:
            tk = it[idx, 0]
            b, sig = (iy[idx, 0] / tk, isg[idx, 0] / tk) if tk != _ZERO else (_ZERO, _ZERO)
            res_f[0, idx] = b
            res_f[1, idx] = sig
            int_time += tk - t[lookup[idx, 0] - 1]
            res_d[0, idx] = F64(sig)
            # b = y/t: both the read and the zeroth read's noise enter, c = 1/t.
            res_d[1, idx] = 2.0 / (F64(tk) * F64(tk))
            res_d[2, idx] = 1.0 / F64(tk)
            res_d[3, idx] = F64(iy[idx, 0])
            res_d[4, idx] = F64(tk)
            iused[idx] = True
    return int_time, samp


@njit(**_INLINE)
def _combine_calwf3(tcount, last, res_f, iused):
    """calwf3's float32 inverse-variance mean; returns (sci, err, sumwts)."""
    sumwts = _ZERO
    total = _ZERO
    for idx in range(last + 1):
        if not iused[idx]:
            continue
        sig2 = res_f[1, idx] * res_f[1, idx]
        if sig2 == _ZERO:
            continue
        if tcount[idx] > 1:
            sumwts = F32(F64(sumwts) + 1.0 / F64(sig2))  # `sumwts += 1.0/sigsquared` in double
        else:
            sumwts += _ONE / sig2
        total += res_f[0, idx] / sig2
    if not sumwts > _ZERO:
        return _ZERO, _ZERO, sumwts
    return total / sumwts, F32(math.sqrt(_ONE / sumwts)), sumwts


@njit(**_INLINE)
def _combine_model(last, res_f, res_d, iused, model, read_var):
    """Inverse-variance mean with the pipeline or the physical variances (float64)."""
    rate_pool = 0.0
    if model == MODEL_PHYSICAL:
        sdy = 0.0
        sdx = 0.0
        for idx in range(last + 1):
            if iused[idx] and res_f[1, idx] * res_f[1, idx] != _ZERO:
                sdy += res_d[3, idx]
                sdx += res_d[4, idx]
        rate_pool = max(sdy / sdx, 0.0) if sdx > 0.0 else 0.0
    sumw = 0.0
    total = 0.0
    for idx in range(last + 1):
        if not iused[idx] or res_f[1, idx] * res_f[1, idx] == _ZERO:
            continue  # same interval set as calwf3, so SCI/TIME/SAMP logic is shared
        if model == MODEL_PHYSICAL:
            var = read_var * res_d[1, idx] + (rate_pool + DARK_RATE) * res_d[2, idx]
        else:
            var = res_d[0, idx] * res_d[0, idx]
        if var > 0.0:
            inv = 1.0 / var
            sumw += inv
            total += F64(res_f[0, idx]) * inv
    if not sumw > 0.0:
        return _ZERO, _NO_SAMPLES_ERR
    return F32(total / sumw), F32(math.sqrt(1.0 / sumw))


@njit(**_SEPARATE)
def _fallback(y, s, t, q, n, ignore, model, read_var):
    """Last-minus-first over clean reads (UNSTABLE or no usable sums): (sci, err, time, samp)."""
    first = 0
    last = 0
    ngood = 0
    for k in range(1, n):
        if (q[k] & ignore) == 0:
            first = k
            last = k
            ngood = 1
            break
    for k in range(first, n):
        if q[k] == 0:
            last = k
            ngood += 1  # quirk: counts `first` twice when it is clean
    if last == first:
        err = _NO_SAMPLES_ERR if model == MODEL_PHYSICAL else _ZERO
        return _ZERO, err, _ZERO, 0
    dt = t[last] - t[first]
    sci = (y[last] - y[first]) / dt
    if model == MODEL_PHYSICAL:
        shot = (max(F64(sci), 0.0) + DARK_RATE) * F64(dt)
        err = F32(math.sqrt(2.0 * read_var + shot) / F64(dt))
    else:
        err = (s[last] - s[first]) / dt  # quirk: a difference of errors
    return sci, err, dt, ngood


@njit(**_SEPARATE)
def _clean_final_fit(
    counts,
    errs,
    dq_in,
    times,
    dark,
    start,
    m,
    rn,
    model,
    time_weighting,
    wtable,
    shape_table,
    invrdns2,
    gain,
    first_spike,
    first_cr,
    out_rate,
    out_err,
    out_dq,
    out_samp,
    out_time,
    done,
):
    """Final fit, across pixels (SIMD), of pixels whose first iteration found nothing.

    Their only interval is every read 1..n-1, so for each Fixsen exponent the weights and
    S, Sx, Sxx are constants; per pixel only the exponent, Sy, Sxy and the error terms vary. The
    float32 steps mirror :func:`_linfit` and :func:`_combine_calwf3` one for one. Pixels needing
    a rarer branch (σ_b = 0, a non-positive variance, a flag on the zeroth read) are left to the
    per-pixel path (``done`` stays False).
    """
    n = counts.shape[0]
    mi = n - 1
    npow = FIXSEN_POWERS.size
    weights = np.zeros((npow, n), dtype=np.float32)
    it = np.zeros((1, n), dtype=np.float32)
    it[0, :mi] = times[1:]
    csum = np.zeros((npow, 5), dtype=np.float32)  # S, Sx, Sxx, denom, fit_unc per exponent
    for ip in range(npow):
        _interval_weights(it, 0, mi, ip, wtable, time_weighting, invrdns2, weights[ip])
        S = _ZERO
        Sx = _ZERO
        Sxx = _ZERO
        for p in range(mi):
            wt = weights[ip, p]
            tk = it[0, p]
            S += wt
            Sx += tk * wt
            Sxx += tk * tk * wt
        denom = S * Sxx - Sx * Sx
        if denom < _DENOM_FLOOR:
            denom = _DENOM_FLOOR
        csum[ip, 0], csum[ip, 1], csum[ip, 2], csum[ip, 3] = S, Sx, Sxx, denom
        csum[ip, 4] = F32(math.sqrt(S / denom))
    dx = times[n - 1] - times[1]
    ddg = dark[n - 1] - dark[1]
    int_time = _ZERO + (times[1] - times[0])
    int_time += times[n - 1] - times[1]
    ip_of = np.zeros(m, dtype=np.int64)
    for j in range(m):
        sg = errs[n - 1, start + j]
        dy = counts[n - 1, start + j] - counts[1, start + j]
        ip_of[j] = _power_index(dy / sg if sg > _ZERO else _ZERO)
    sy = np.zeros(m, dtype=np.float32)
    sxy = np.zeros(m, dtype=np.float32)
    for p in range(mi):
        tk = it[0, p]
        for j in range(m):
            wt = weights[ip_of[j], p]
            yk = counts[p + 1, start + j]
            sy[j] += yk * wt
            sxy[j] += tk * yk * wt
    for j in range(m):
        pix = start + j
        q0 = np.int32(dq_in[0, pix]) & ~ZEROSIG
        if (
            first_spike[j] != -1
            or first_cr[j] != -1
            or (q0 & (SPIKE | DATAREJECT | HIGH_CURVATURE))
        ):
            continue
        ip = ip_of[j]
        S, Sx, denom, fit_unc = csum[ip, 0], csum[ip, 1], csum[ip, 3], csum[ip, 4]
        b = (S * sxy[j] - Sx * sy[j]) / denom
        dy = counts[n - 1, pix] - counts[1, pix]
        terma = (gain * fit_unc * dx) * (gain * fit_unc * dx)
        errterms = terma + gain * ddg + gain * dy
        sigb = fit_unc
        if errterms > _ZERO:
            sigb = F32((math.sqrt(F64(errterms)) / F64(dx)) / F64(gain))
        sig2 = sigb * sigb
        if sig2 == _ZERO:
            continue
        sumwts = F32(F64(_ZERO) + 1.0 / F64(sig2))
        if not sumwts > _ZERO:
            continue
        sci = (_ZERO + b / sig2) / sumwts
        err = F32(math.sqrt(_ONE / sumwts))
        if model != MODEL_CALWF3:
            if model == MODEL_PHYSICAL:
                r = rn[0] if rn.shape[0] == 1 else rn[pix]
                rate_pool = max((0.0 + F64(dy)) / (0.0 + F64(dx)), 0.0)
                var = (
                    0.5 * r * r * shape_table[1, n - 1, ip, 0]
                    + (rate_pool + DARK_RATE) * shape_table[1, n - 1, ip, 1]
                )
            else:
                # (its σ-row argument is only read for two-read intervals)
                sig = _pipeline_sigma(it, it, 0, mi, fit_unc, dx, dy, ddg, gain)
                var = sig * sig
            inv = 1.0 / var
            if not (var > 0.0 and inv > 0.0):
                continue
            sci = F32((0.0 + F64(b) * inv) / (0.0 + inv))
            err = F32(math.sqrt(1.0 / (0.0 + inv)))
        out_rate[pix] = sci
        out_err[pix] = err
        out_dq[pix] = q0 & ~SATPIXEL
        out_samp[pix] = n
        out_time[pix] = int_time
        done[j] = True


# --------------------------------------------------------------------------------------------
# one pixel, one block, the parallel driver
# --------------------------------------------------------------------------------------------


@njit(**_INLINE)
def _write_read_dq(q, n, dq_in, rdq):
    """Propagate CRs forward, spread HIGH_CURVATURE, OR the results into the IMA DQ ``rdq``.

    Returns True if the pixel is UNSTABLE (HIGH_CURVATURE on the last sample)."""
    for k in range(n - 1):
        if q[k] & DATAREJECT:
            q[k + 1] |= DATAREJECT
    for k in range(n - 1):  # the last sample is not inspected (edge case in the docstring)
        if q[k] & HIGH_CURVATURE:
            for j in range(n):
                q[j] = (q[j] | HIGH_CURVATURE) & ~DATAREJECT
            break
    for k in range(n):
        d = q[k]
        out = dq_in[k]
        if d & DATAREJECT:
            out |= DATAREJECT
        if d & SPIKE:
            out |= DETECTORPROB
        if d & HIGH_CURVATURE:
            out |= UNSTABLE
        rdq[k] = out
    return (q[n - 1] & HIGH_CURVATURE) != 0


@njit(**_INLINE)
def _pixel_scratch(n):
    """Per-block work arrays: interval rows, residuals, weights, per-interval results."""
    return (
        np.zeros((3, n, n), dtype=np.float32),  # iv: interval rows of y, σ, t
        np.zeros((2, n, n), dtype=np.int32),  # ix: interval rows of read index and DQ snapshot
        np.zeros(n, dtype=np.int32),  # tcount
        np.zeros(n, dtype=np.float32),  # diff (residuals)
        np.zeros(n, dtype=np.float32),  # w (final-fit weights)
        np.zeros((2, n), dtype=np.float32),  # res_f: b, σ_calwf3
        np.zeros((5, n)),  # res_d: σ_pipeline, Σc² + (Σc)², Σ ΔtT², Δy, Δx
        np.zeros(n, dtype=np.bool_),  # iused
    )


@njit(**_INLINE)
def _fit_pixel(
    y,
    s,
    dq_in,
    q,
    rdq,
    times,
    dark,
    read_var,
    crsigma,
    ignore,
    gain,
    model,
    time_weighting,
    wtable,
    shape_table,
    invrdns2,
    w_equal,
    scratch,
    first_spike,
    first_cr,
):
    """One pixel: samples ``y``/``s``/``dq_in`` (time order) → (rate, err, dq, samp, time);
    the IMA DQ goes to ``rdq``. ``first_*``: outcome of the across-pixel first iteration, see
    :func:`_detect`."""
    iv, ix, tcount, diff, w, res_f, res_d, iused = scratch
    iy, isg, it = iv[0], iv[1], iv[2]
    lookup, tdq = ix[0], ix[1]
    n = y.shape[0]
    outdq = 0
    for k in range(n):
        d = np.int32(dq_in[k]) & ~ZEROSIG
        q[k] = d
        outdq |= d
    status, last = _NO_SAMPLES, -1
    for pass2 in range(2):  # pass 2 only when pass 1 found no usable sample (one call site)
        if status == _NO_SAMPLES:
            if pass2:
                tdq[:, :] = 0  # calwf3 callocs per pixel: the stale slot reads 0 until written
            status, last = _detect(
                q,
                y,
                s,
                times,
                dark,
                n,
                pass2 == 1,
                ignore,
                crsigma,
                iy,
                isg,
                it,
                lookup,
                tdq,
                tcount,
                diff,
                w_equal,
                gain,
                first_spike,
                first_cr,
            )
    sci, err, dt, samp = _ZERO, _NO_SAMPLES_ERR, _ZERO, 0
    use_fallback = status == _FOUND_ERROR
    if status == _OK:
        dt, samp = _final_fit(
            times,
            dark,
            iy,
            isg,
            it,
            lookup,
            tdq,
            tcount,
            last,
            wtable,
            shape_table,
            time_weighting,
            invrdns2,
            gain,
            model,
            w,
            res_f,
            res_d,
            iused,
        )
        sci, err, sumwts = _combine_calwf3(tcount, last, res_f, iused)
        if not sumwts > _ZERO:
            use_fallback = True
        elif model != MODEL_CALWF3:
            sci, err = _combine_model(last, res_f, res_d, iused, model, read_var)
    if use_fallback:
        sci, err, dt, samp = _fallback(y, s, times, q, n, ignore, model, read_var)
    unstable = _write_read_dq(q, n, dq_in, rdq)
    outdq &= ~SATPIXEL
    if unstable:
        outdq = (outdq | UNSTABLE) & ~DATAREJECT
    return sci, err, outdq, samp, dt


@njit(cache=True, error_model="numpy")
def _fit_block(
    start,
    stop,
    counts,
    errs,
    times,
    dark,
    dq_in,
    rn,
    crsigma,
    ignore,
    gain,
    model,
    time_weighting,
    first_read_sat,
    wtable,
    shape_table,
    simd,
    out_rate,
    out_err,
    out_dq,
    out_samp,
    out_time,
    read_dq,
):
    """Fit pixels start..stop-1.

    The stacks are (nsamp, npix) with rows a power of two of bytes apart for full frames, so a
    pixel's reads alias to one cache set; copying the block into pixel-major buffers row by row
    keeps every access sequential.
    """
    n = counts.shape[0]
    m = stop - start
    yb = np.empty((m, n), dtype=np.float32)
    sb = np.empty((m, n), dtype=np.float32)
    db = np.empty((m, n), dtype=np.uint16)
    rb = np.empty((m, n), dtype=np.uint16)
    for k in range(n):
        for j in range(m):
            yb[j, k] = counts[k, start + j]
            sb[j, k] = errs[k, start + j]
            db[j, k] = dq_in[k, start + j]
    invrdns2 = _inverse_readnoise2(gain)
    w_equal = np.full(n, invrdns2, dtype=np.float32)  # pow(x, 0) = 1 for every position
    q = np.empty(n, dtype=np.int32)
    scratch = _pixel_scratch(n)
    first_spike = np.full(m, -2, dtype=np.int64)
    first_cr = np.full(m, -1, dtype=np.int64)
    # The SIMD first iteration needs >= 3 reads in the interval; a negative threshold would make
    # the otherwise unreachable RejFirstRead reachable, so keep those on the per-pixel path.
    done = np.zeros(m, dtype=np.bool_)
    if simd and n >= 4 and crsigma >= _ZERO:
        _first_iteration(
            counts, errs, dq_in, times, start, m, invrdns2, crsigma, first_spike, first_cr
        )
        _clean_final_fit(
            counts,
            errs,
            dq_in,
            times,
            dark,
            start,
            m,
            rn,
            model,
            time_weighting,
            wtable,
            shape_table,
            invrdns2,
            gain,
            first_spike,
            first_cr,
            out_rate,
            out_err,
            out_dq,
            out_samp,
            out_time,
            done,
        )
    for j in range(m):
        pix = start + j
        if done[j] or (first_read_sat and (db[j, 1] & SATPIXEL)):
            # Clean (outputs written) or saturated in read 1 (outputs come from the zeroth read,
            # filled by the caller): the IMA DQ is untouched.
            rb[j, :] = db[j, :]
            continue
        r = rn[0] if rn.shape[0] == 1 else rn[pix]
        sci, err, outdq, samp, dt = _fit_pixel(
            yb[j],
            sb[j],
            db[j],
            q,
            rb[j],
            times,
            dark,
            0.5 * r * r,
            crsigma,
            ignore,
            gain,
            model,
            time_weighting,
            wtable,
            shape_table,
            invrdns2,
            w_equal,
            scratch,
            first_spike[j],
            first_cr[j],
        )
        out_rate[pix] = sci
        out_err[pix] = err
        out_dq[pix] = outdq
        out_samp[pix] = samp
        out_time[pix] = dt
    for k in range(n):
        for j in range(m):
            read_dq[k, start + j] = rb[j, k]


@njit(cache=True, parallel=True, error_model="numpy")
def fit_pixels(
    counts,
    errs,
    times,
    dark,
    dq_in,
    rn,
    crsigma,
    ignore,
    gain,
    model,
    time_weighting,
    first_read_sat,
    wtable,
    shape_table,
    simd,
    out_rate,
    out_err,
    out_dq,
    out_samp,
    out_time,
    read_dq,
):
    """Fit every pixel of (nsamp, npix) stacks into the preallocated outputs."""
    npix = counts.shape[1]
    nblocks = (npix + _BLOCK - 1) // _BLOCK
    for blk in prange(nblocks):
        start = blk * _BLOCK
        stop = min(npix, start + _BLOCK)
        _fit_block(
            start,
            stop,
            counts,
            errs,
            times,
            dark,
            dq_in,
            rn,
            crsigma,
            ignore,
            gain,
            model,
            time_weighting,
            first_read_sat,
            wtable,
            shape_table,
            simd,
            out_rate,
            out_err,
            out_dq,
            out_samp,
            out_time,
            read_dq,
        )
