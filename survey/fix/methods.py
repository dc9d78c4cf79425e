"""The corrections on in-memory ramps (no file is opened here).

**flatten** (domain reference §6). With m_k the sky of read k (cumulative e⁻/s since the
zeroth read) and M = m_last, every science read gets SCI'_k = SCI_k + (M − m_k) in float32,
exactly as the recipe does; in counts C'_k = C_k + t_k·(M − m_k), so the sky ramp becomes the
straight line M·t, C'_last = C_last (total counts and average rate kept) and sources keep
their own rate. The zeroth read is untouched.

**pop-reads**: a read interval k (t_{k−1}, t_k] marked by scattered light is removed from the
ramp: C'_j = C_j − Σ_{popped i ≤ j} (C_i − C_{i−1}), t'_j = t_j − Σ_{popped i ≤ j} Δt_i, and the
popped reads (now duplicates of their predecessors) are dropped. The exposure time shrinks by
Σ Δt of the popped intervals; the ramp of the remaining reads is then fitted normally. ERR is
propagated honestly (:func:`popped_variance`): the popped intervals' Poisson variance leaves,
the read noise of the reads that bound each popped run enters.

**last-minus-first**: per pixel (C_L − C_0)/(t_L − t_0) with C_0 ≡ 0 the zeroth read and L the
last read before saturation; cosmic rays are *not* removed (left for AstroDrizzle).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from ..wfc3ir.dq import DQ, SKY_BAD_BITS
from ..wfc3ir.model import Ramp
from .sky import Region, SkyEstimator, source_mask

__all__ = [
    "LastMinusFirst",
    "SkyPlan",
    "flatten_ramp",
    "last_minus_first",
    "lr_excess",
    "measure_skies",
    "pop_reads",
    "popped_variance",
]


class SkyPlan(NamedTuple):
    """Per-read skies of a ramp (index = read, NaN for the zeroth read)."""

    sky: np.ndarray  #: m_k, e⁻/s
    offset: np.ndarray  #: M − m_k, e⁻/s (0 for the zeroth read)
    level: float  #: M, e⁻/s
    sources: np.ndarray | None  #: the source mask used (science area), or None


def _reset_dq(ramp: Ramp) -> np.ndarray:
    """Science-area read DQ with an earlier CRCORR's flags removed (archive IMA)."""
    from ..rampfit import reset_crcorr_flags

    dq = ramp.dq[ramp.science]
    if ramp.meta.switches.get("CRCORR") == "COMPLETE":
        dq = reset_crcorr_flags(dq)
    return dq


def exposure_source_mask(ramp: Ramp) -> np.ndarray:
    """Source mask (science area) from the exposure's own last read."""
    dq = _reset_dq(ramp)
    return source_mask(ramp.sci[ramp.science][-1], (dq[-1] & SKY_BAD_BITS) != 0)


def measure_skies(ramp: Ramp, estimator: SkyEstimator, region: Region | None = None) -> SkyPlan:
    """m_k of every read after the zeroth over the science area (or ``region`` inside it)."""
    sci = ramp.sci[ramp.science]
    ny, nx = sci.shape[1:]
    box = region.slices(ny, nx) if region else (slice(None), slice(None))
    sources = None
    if getattr(estimator, "masks_sources", False):
        sources = exposure_source_mask(ramp)
    dq = _reset_dq(ramp) if estimator.uses_mask else None
    sky = np.full(ramp.nsamp, np.nan)
    for k in range(1, ramp.nsamp):
        mask = None
        if estimator.uses_mask:
            mask = (dq[k][box] & SKY_BAD_BITS) != 0
            if sources is not None:
                mask |= sources[box]
        sky[k] = estimator.estimate(sci[k][box], mask)
    level = float(sky[-1])
    offset = np.where(np.arange(ramp.nsamp) > 0, level - sky, 0.0)
    return SkyPlan(sky, offset, level, sources)


def flatten_ramp(ramp: Ramp, plan: SkyPlan) -> Ramp:
    """A copy of ``ramp`` with SCI_k += M − m_k (float32) on every read after the zeroth."""
    sci = np.array(ramp.sci, dtype=np.float32, copy=True)
    for k in range(1, ramp.nsamp):
        sci[k] += np.float32(plan.offset[k])
    return replace(ramp, sci=sci, primary=ramp.primary.copy())


# -- pop reads -------------------------------------------------------------------------------
def lr_boxes(nx: int) -> tuple[slice, slice]:
    """Columns of the scattered-light boxes: full-frame 40–239 and 760–959, scaled by nx/1024
    and cut to the science area (as the scan)."""
    from ..wfc3ir.detector import BORDER, FULL_FRAME

    def cut(a: int, b: int) -> slice:
        scale = nx / FULL_FRAME
        return slice(max(BORDER, round(a * scale)), min(nx - BORDER, round(b * scale)))

    return cut(40, 240), cut(760, 960)


def lr_excess(ramp: Ramp, sources: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-interval left and right box rates (median of the per-pixel ΔC/Δt), index = read."""
    ny, nx = ramp.shape
    left, right = lr_boxes(nx)
    rows = slice(ramp.border, ny - ramp.border)
    counts = ramp.counts()
    bad = (ramp.dq & SKY_BAD_BITS) != 0
    if sources is not None:
        full = np.zeros((ny, nx), dtype=bool)
        full[rows, ramp.border : nx - ramp.border] = sources
        bad = bad | full
    dt = ramp.deltatim
    lefts, rights = np.full(ramp.nsamp, np.nan), np.full(ramp.nsamp, np.nan)
    for k in range(1, ramp.nsamp):
        rate = (counts[k] - counts[k - 1]) / dt[k]
        usable = ~(bad[k] | bad[k - 1])
        for cols, out in ((left, lefts), (right, rights)):
            values = rate[rows, cols][usable[rows, cols]]
            out[k] = float(np.median(values)) if values.size else np.nan
    return lefts, rights


def popped_reads(
    lefts: np.ndarray, rights: np.ndarray, *, threshold: float = 0.1, ratio: float = 1.1
) -> np.ndarray:
    """Intervals with L − R > ``threshold`` e⁻/s and L/R > ``ratio`` (as ``survey flag``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        marked = (lefts - rights > threshold) & (lefts / rights > ratio)
    marked[0] = False
    return marked


def popped_variance(ramp: Ramp, popped: np.ndarray) -> np.ndarray:
    """Var(C'_k) (e⁻² or DN², as the IMA) of every read after popping (module docstring).

    In calwf3's noise model Var(C_k) = (ERR_k·t_k)² = R² + P_k (CDS read noise R, Poisson
    variance P_k of the counts since the zeroth read), so Var(C_i) − Var(C_{i−1}) is the
    Poisson variance of interval i and R cancels (for i = 1: Var(C_1) − R²). C'_k keeps the
    Poisson variance of the kept intervals only; its read noise grows by R² (two more reads of
    R²/2) for every popped run of intervals a..b with a > 1 (reads a−1 and b enter; a run
    from interval 1 replaces the zeroth read by read b, no change). The result is floored at
    its read-noise part.
    """
    popped = np.asarray(popped, dtype=bool).copy()
    popped[0] = False
    t = ramp.samptime.astype(np.float64)
    var = np.square(ramp.err.astype(np.float64) * t[:, None, None])
    rn2 = np.square(_readnoise_units(ramp))
    step = np.diff(var, axis=0, prepend=np.zeros_like(var[:1]))
    step[1] = var[1] - rn2  # C_0 ≡ 0: Var(C_1) − R² is interval 1's Poisson variance
    step[~popped] = 0.0
    starts = popped & ~np.concatenate(([False], popped[:-1]))
    runs = np.cumsum(starts & (np.arange(ramp.nsamp) > 1))  # runs ended by read k if k is kept
    floor = (1.0 + runs[:, None, None]) * rn2
    floor[0] = 0.0
    return np.maximum(var - np.cumsum(step, axis=0) + runs[:, None, None] * rn2, floor)


def _readnoise_units(ramp: Ramp) -> np.ndarray:
    """Per-pixel CDS read noise in the IMA's units (e⁻, or DN for COUNTS/S)."""
    from ..fit import _readnoise
    from ..wfc3ir.detector import MEAN_GAIN

    noise = _readnoise(ramp)
    return noise / MEAN_GAIN if ramp.meta.bunit.upper().startswith("COUNTS") else noise


def pop_reads(ramp: Ramp, popped: np.ndarray) -> Ramp:
    """The ramp with the ``popped`` intervals cut out (module docstring); headers updated."""
    popped = np.asarray(popped, dtype=bool)
    keep = ~popped
    keep[0] = True
    counts = ramp.counts()
    t = ramp.samptime.astype(np.float64)
    dt = ramp.deltatim
    step = np.diff(counts, axis=0, prepend=np.zeros_like(counts[:1]))
    step[~popped] = 0.0
    removed_counts = np.cumsum(step, axis=0)
    removed_time = np.cumsum(np.where(popped, dt, 0.0))
    new_counts = (counts - removed_counts)[keep]
    new_t = (t - removed_time)[keep]
    safe_t = np.where(new_t > 0, new_t, 1.0)[:, None, None]
    sci = np.where(new_t[:, None, None] > 0, new_counts / safe_t, 0.0).astype(np.float32)
    var = popped_variance(ramp, popped)[keep]
    err = np.where(new_t[:, None, None] > 0, np.sqrt(var) / safe_t, ramp.err[keep])
    n = int(keep.sum())
    shape = (n, *ramp.shape)
    headers = []
    for j, k in enumerate(np.flatnonzero(keep)):
        header = ramp.read_headers[k].copy()
        header["SAMPNUM"] = j
        header["SAMPTIME"] = round(float(new_t[j]), 6)
        header["DELTATIM"] = round(float(new_t[j] - new_t[j - 1]) if j else 0.0, 6)
        headers.append(header)
    primary = ramp.primary.copy()
    primary["NSAMP"] = n
    primary["EXPTIME"] = round(float(new_t[-1]), 6)
    # EXPSTART/EXPEND stay: the clock times are unchanged, only the exposed time shrinks
    samp = np.broadcast_to(np.arange(1, n + 1, dtype=np.int16)[:, None, None], shape)
    time = np.broadcast_to(new_t.astype(np.float32)[:, None, None], shape)
    return Ramp(
        sci, err.astype(np.float32), ramp.dq[keep].copy(), samp, time,
        new_t, primary, headers, ramp.path,
    )  # fmt: skip


# -- last minus first ------------------------------------------------------------------------
@dataclass
class LastMinusFirst:
    """Arrays of a last-minus-first rate image (science area)."""

    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    samp: np.ndarray
    time: np.ndarray


def last_minus_first(ramp: Ramp) -> LastMinusFirst:
    """(C_L − C_0)/(t_L − t_0), L = last read before saturation (read 1 at least)."""
    dq = _reset_dq(ramp)
    sci = ramp.sci[ramp.science].astype(np.float64)
    err = ramp.err[ramp.science].astype(np.float64)
    t = ramp.samptime.astype(np.float64)
    saturated = (dq & DQ.SATPIXEL) != 0
    saturated[:2] = False  # read 1 is always usable (calwf3 keeps it for first-read saturation)
    unsat = ~saturated
    last = ramp.nsamp - 1 - np.argmax(unsat[::-1], axis=0)
    pick = last[None]
    rate = np.take_along_axis(sci, pick, axis=0)[0]  # SCI_L = (C_L − C_0)/t_L
    rate_err = np.take_along_axis(err, pick, axis=0)[0]
    static = np.bitwise_or.reduce(dq[1:], axis=0) & ~np.uint16(DQ.SATPIXEL)
    out_dq = static | np.where(last < ramp.nsamp - 1, np.uint16(DQ.SATPIXEL), np.uint16(0))
    return LastMinusFirst(
        sci=rate.astype(np.float32),
        err=rate_err.astype(np.float32),
        dq=out_dq.astype(np.uint16),
        samp=np.full(rate.shape, 2, dtype=np.int16),
        time=t[last].astype(np.float32),
    )
