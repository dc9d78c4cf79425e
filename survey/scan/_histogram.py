"""Statistics from the (cell × bin) histograms of :mod:`survey.scan._kernels` (numba).

A group of pixels (the sky, a quadrant, a box) is a set of cells; its histogram is the sum of
their rows. Bin j covers ``[e_j, e_j + w)`` with ``e_j = c + (j − HALF)·w``; the two end
bins also hold everything beyond the grid (they are *open*).

Within a bin the values are taken as uniformly spread, which makes the empirical CDF a
piecewise-linear function F. Then (w ≈ σ/32, so the approximation errors are ~10⁻³ σ and
below, far under the statistical noise of a median of 10⁵–10⁶ pixels; see the tests):

- quantile q: the x with F(x) = q·n;
- MAD about m: the D with F(m + D) − F(m − D) = n/2 (bisection);
- σ-clipping: the bin range is narrowed to the bins whose centres lie within m ± k·σ, with m
  the median and σ = 1.4826·MAD of the bins kept so far, until it stops changing (at most
  ``max_iters`` times); the clipped median, MAD and mean (bin centres) use the final range.

A result that needs an open end bin is flagged not ``ok``; the caller then computes that
group exactly from the pixels (:func:`survey.scan.stats.reference_stats`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._kernels import BINS, HALF, NCELLS

__all__ = [
    "FULL_FIELDS",
    "clip_bins",
    "clipped_mean",
    "full_stats",
    "group_histogram",
    "median_only",
    "rank_bins",
]

MAD_TO_SIGMA = 1.482602218505602
#: Order of the values :func:`full_stats` returns.
FULL_FIELDS = ("n", "median", "p16", "p84", "clip_median", "clip_mean", "clip_sigma", "clip_n")


@njit(cache=True, nogil=True)
def group_histogram(hist, cells):
    """Sum of the histogram rows of the cells flagged in ``cells`` (bool[NCELLS])."""
    out = np.zeros(BINS, np.int64)
    for cell in range(NCELLS):
        if cells[cell]:
            row = hist[cell * BINS : (cell + 1) * BINS]
            for j in range(BINS):
                out[j] += row[j]
    return out


@njit(cache=True, nogil=True)
def _cumulative(h, a, b):
    """Inclusive prefix sums of h restricted to bins a..b (zero outside)."""
    cum = np.zeros(BINS, np.int64)
    total = 0
    for j in range(BINS):
        if a <= j <= b:
            total += h[j]
        cum[j] = total
    return cum


@njit(cache=True, nogil=True)
def _quantile_position(h, cum, a, b, target):
    """Continuous bin coordinate t (value = c + (t − HALF)·w) where F reaches ``target``."""
    n = cum[BINS - 1]
    if n == 0:
        return np.nan, -1
    if target <= 0:
        for j in range(a, b + 1):
            if h[j] > 0:
                return np.float64(j), j
    lo = a
    hi = b
    while lo < hi:  # first j with cum[j] >= target
        mid = (lo + hi) // 2
        if cum[mid] >= target:
            hi = mid
        else:
            lo = mid + 1
    j = lo
    below = cum[j - 1] if j > 0 else 0
    return j + (target - below) / h[j], j


@njit(cache=True, nogil=True)
def _cdf(h, cum, a, b, t):
    """F at bin coordinate t for the histogram restricted to a..b."""
    if t < a:
        return 0.0
    if t >= b + 1:
        return np.float64(cum[BINS - 1])
    j = int(np.floor(t))
    below = cum[j - 1] if j > 0 else 0
    return below + h[j] * (t - j)


@njit(cache=True, nogil=True)
def _mad_position(h, cum, a, b, m):
    """Half-width D (bin units) with F(m + D) − F(m − D) = n/2, by bisection."""
    n = cum[BINS - 1]
    goal = 0.5 * n
    lo = 0.0
    hi = np.float64(BINS)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _cdf(h, cum, a, b, m + mid) - _cdf(h, cum, a, b, m - mid) >= goal:
            hi = mid
        else:
            lo = mid
    return hi


@njit(cache=True, nogil=True)
def median_only(h, center, width):
    """(n, median, ok) of one group histogram."""
    cum = _cumulative(h, 0, BINS - 1)
    n = cum[BINS - 1]
    t, j = _quantile_position(h, cum, 0, BINS - 1, 0.5 * n)
    ok = n > 0 and 0 < j < BINS - 1
    return n, center + (t - HALF) * width, ok


@njit(cache=True, nogil=True)
def clip_bins(h, cum, clip_sigma, max_iters):
    """σ-clipping on bin ranges: (a, b, cum) with a..b the bins kept and cum their prefix sums.

    ``cum`` is the prefix sum of all of ``h``. Each iteration keeps the bins whose centres lie
    within m ± clip_sigma·σ (m the median, σ = 1.4826·MAD of the bins kept so far).
    """
    top = BINS - 1
    a = 0
    b = top
    for _ in range(max_iters):
        m, _ = _quantile_position(h, cum, a, b, 0.5 * cum[top])
        d = _mad_position(h, cum, a, b, m) * MAD_TO_SIGMA
        if not d > 0:
            break
        new_a = max(a, int(np.ceil(m - clip_sigma * d - 0.5)))
        new_b = min(b, int(np.floor(m + clip_sigma * d - 0.5)))
        if new_a > new_b or (new_a == a and new_b == b):
            break
        a = new_a
        b = new_b
        cum = _cumulative(h, a, b)
    return a, b, cum


@njit(cache=True, nogil=True)
def clipped_mean(h, a, b, center, width):
    """(n, mean) of the values of ``h`` in bins a..b (bin centres): a group's mean inside the
    sky's clipping range."""
    n = 0
    total = 0.0
    for j in range(a, b + 1):
        n += h[j]
        total += h[j] * (j + 0.5)
    if n == 0:
        return 0, np.nan
    return n, center + (total / n - HALF) * width


@njit(cache=True, nogil=True)
def full_stats(h, center, width, clip_sigma, max_iters, out):
    """Fill ``out`` (float64[8], see FULL_FIELDS) for one group; return ok."""
    top = BINS - 1
    cum = _cumulative(h, 0, top)
    n = cum[top]
    out[:] = np.nan
    out[0] = n
    out[7] = 0
    if n == 0:
        return True
    t50, j50 = _quantile_position(h, cum, 0, top, 0.5 * n)
    t16, j16 = _quantile_position(h, cum, 0, top, 0.16 * n)
    t84, j84 = _quantile_position(h, cum, 0, top, 0.84 * n)
    ok = j16 > 0 and j84 < top and 0 < j50 < top
    out[1] = center + (t50 - HALF) * width
    out[2] = center + (t16 - HALF) * width
    out[3] = center + (t84 - HALF) * width
    a, b, cum = clip_bins(h, cum, clip_sigma, max_iters)
    kept = cum[top]
    out[7] = kept
    if kept == 0:
        return False
    m, _ = _quantile_position(h, cum, a, b, 0.5 * kept)
    d = _mad_position(h, cum, a, b, m)
    total = 0.0
    for j in range(a, b + 1):
        total += h[j] * (j + 0.5)
    out[4] = center + (m - HALF) * width
    out[5] = center + (total / kept - HALF) * width
    out[6] = d * MAD_TO_SIGMA * width
    # an open end bin inside the final range makes the clipped numbers unreliable
    return ok and not (a == 0 and h[0] > 0) and not (b == top and h[top] > 0)


@njit(cache=True, nogil=True)
def rank_bins(h, k):
    """Bin holding the k-th smallest value (0-based) and the count below that bin."""
    below = 0
    for j in range(BINS):
        if below + h[j] > k:
            return j, below
        below += h[j]
    return BINS - 1, below


@njit(cache=True, nogil=True)
def summarize_family(
    hist, center, width, clip_sigma, max_iters, sky_cells, region_cells, mean_cells, out, ok
):
    """Sky statistics (FULL_FIELDS), the median of each region, then the mean of each of the
    ``mean_cells`` groups inside the sky's clipping range, of one read family.

    ``region_cells`` is bool[nregions, NCELLS] and ``mean_cells`` bool[nmeans, NCELLS];
    ``out`` gets 8 + nregions + nmeans values and ``ok`` as many flags (the first 8 all equal
    the sky group's flag; a mean is as good as the sky's clipping range).
    """
    full = np.empty(8, np.float64)
    sky = group_histogram(hist, sky_cells)
    good = full_stats(sky, center, width, clip_sigma, max_iters, full)
    for i in range(8):
        out[i] = full[i]
        ok[i] = good
    nreg = region_cells.shape[0]
    for r in range(nreg):
        n, median, fine = median_only(group_histogram(hist, region_cells[r]), center, width)
        out[8 + r] = median if n > 0 else np.nan
        ok[8 + r] = fine or n == 0
    a, b, _ = clip_bins(sky, _cumulative(sky, 0, BINS - 1), clip_sigma, max_iters)
    for r in range(mean_cells.shape[0]):
        n, mean = clipped_mean(group_histogram(hist, mean_cells[r]), a, b, center, width)
        out[8 + nreg + r] = mean
        ok[8 + nreg + r] = good or n == 0


@njit(cache=True, nogil=True)
def median_bins(hist, cells):
    """(n, j1, j2, below) for the exact median of the cells: the bins j1 ≤ j2 holding the
    ranks (n−1)//2 and n//2 and the count below j1."""
    h = group_histogram(hist, cells)
    n = 0
    for j in range(BINS):
        n += h[j]
    if n == 0:
        return 0, 0, 0, 0
    j1, below = rank_bins(h, (n - 1) // 2)
    j2, _ = rank_bins(h, n // 2)
    return n, j1, j2, below
