"""Known truth of a simulated exposure: its triage verdict, per-read backgrounds and images.

**Category rule** (:func:`categorize`) — the verdict a perfect triage would give:

1. a grism exposure (G102/G141) → ``not-applicable`` (flatten-ramp must never touch grisms);
2. else ``scattered_peak`` ≥ :data:`SCATTERED_LEVEL` (0.1 e-/s, reprocess_wfc3's L − R
   threshold) → ``spatial-tvb``: limb light is not uniform, so flattening does not apply;
3. else ``he_peak`` ≥ :data:`HE_LEVEL` (0.25 e-/s, half an F105W zodi, so the instantaneous
   sky changes by ≥ 1.5×) → ``uniform-tvb``: flatten-ramp applies;
4. else ``linear``.

The planner draws planted amplitudes well above these levels (He I 0.6–2.5, limb light
0.4–3 e-/s by default) and leaves every other exposure at exactly 0, so the verdict is never
a coin toss.

``he_peak`` is the largest instantaneous He I excess within the exposure (e-/s, at the mean
of the grism pattern for G102). ``scattered_peak`` is the largest instantaneous limb-light
excess on any science pixel of the array actually read.

**Boxes.** Left/right truth uses the reprocess_wfc3 columns 40–239 and 760–959 (IMA pixels,
all science rows) for full frame, and the outer quarters of the science columns for
subarrays (:func:`lr_boxes`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from ..wfc3ir.detector import BORDER, FULL_FRAME
from .instrument import SkyModel
from .plan import ExposureSpec
from .sky import TimeProfile

__all__ = [
    "CATEGORIES",
    "HE_LEVEL",
    "SCATTERED_LEVEL",
    "TRUTH_COLUMNS",
    "ExposureTruth",
    "categorize",
    "lr_boxes",
    "read_truth_rows",
]

#: Columns of ``truth.parquet`` (one row per exposure), with units.
TRUTH_COLUMNS = {
    "rootname": "exposure rootname (ipppssoot)",
    "asn_id": "association the exposure belongs to (upper case)",
    "visit": "0-based visit index",
    "visit_code": "2-character visit id in the rootname",
    "exposure": "0-based exposure index within the visit",
    "orbit": "0-based orbit within the visit",
    "orbit_position": "first / middle / last / only exposure of its orbit",
    "filter": "FILTER",
    "obstype": "IMAGING or SPECTROSCOPIC",
    "samp_seq": "SAMP_SEQ",
    "nsamp": "NSAMP (reads incl. the zeroth)",
    "size": "raw/IMA array size incl. the 5-px border (1024, 522, 266, 138, 74)",
    "exptime": "EXPTIME (s)",
    "expstart": "EXPSTART (MJD)",
    "expend": "EXPEND (MJD)",
    "targname": "TARGNAME",
    "crowded": "crowded-field scene",
    "zodi": "zodiacal sky (e-/s; for grisms the mean of its 2-D pattern)",
    "he_profile": "He I excess shape: none, rising, decaying, step",
    "he_peak": "peak instantaneous He I excess (e-/s), 0 if none",
    "he_t0": "time the He I change starts (s since the zeroth read)",
    "he_width": "duration of the He I change (s)",
    "scattered_profile": "limb-light time shape: none, rising, decaying",
    "scattered_peak": "peak instantaneous limb-light excess on any science pixel (e-/s)",
    "scattered_lr_max": "largest left-box minus right-box background over read intervals (e-/s)",
    "bkg_min": "lowest interval rate of the uniform background (e-/s)",
    "bkg_max": "highest interval rate of the uniform background (e-/s)",
    "category": "verdict of a perfect triage (see categorize)",
    "n_cr": "cosmic rays injected",
    "cr_pixel_fraction": "fraction of science pixels hit by at least one cosmic ray",
    "n_saturated": "pixels saturated by the last read",
    "n_zsig": "pixels with significant zero-read signal (DQ 2048)",
    "n_badpix": "science pixels with a static DQ flag",
    "noise_seed": "seed of the exposure's noise generator",
}

CATEGORIES = ("linear", "uniform-tvb", "spatial-tvb", "not-applicable")
HE_LEVEL = 0.25
SCATTERED_LEVEL = 0.1


def categorize(*, grism: bool, he_peak: float, scattered_peak: float) -> str:
    """The triage verdict of one exposure (rule in the module docstring)."""
    if grism:
        return "not-applicable"
    if scattered_peak >= SCATTERED_LEVEL:
        return "spatial-tvb"
    if he_peak >= HE_LEVEL:
        return "uniform-tvb"
    return "linear"


def lr_boxes(size: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """(left, right) boxes as (row slice, column slice) in IMA pixels of a ``size`` array."""
    rows = slice(BORDER, size - BORDER)
    if size == FULL_FRAME:
        return (rows, slice(40, 240)), (rows, slice(760, 960))
    n = size - 2 * BORDER
    return (rows, slice(BORDER, BORDER + n // 4)), (
        rows,
        slice(size - BORDER - n // 4, size - BORDER),
    )


@dataclass
class ExposureTruth:
    """Truth of one exposure: scalar summary, the noiseless images and the injected CRs.

    ``scene`` is the source rate (e-/s, flat-fielded), ``rate`` the noiseless mean total rate
    over the exposure (scene + mean background), ``cr_map`` the CR charge per pixel (e-),
    ``sat_read`` the first saturated read (-1 never), ``bpix`` the static DQ bits; ``flat``,
    ``dark`` (e-/s) and ``pedestal`` (e-) are the detector maps calwf3 removed, so a test can
    rebuild the raw counts: C_k = SCI_k·flat·t_k + pedestal + dark·t_k (k ≥ 1).
    """

    spec: ExposureSpec
    sky: SkyModel
    scene: np.ndarray
    rate: np.ndarray
    cr_map: np.ndarray
    crs: dict[str, np.ndarray]
    sat_read: np.ndarray
    bpix: np.ndarray
    flat: np.ndarray
    dark: np.ndarray
    pedestal: np.ndarray
    n_zsig: int

    @property
    def he_peak(self) -> float:
        """Peak He I excess; for a grism at the science-area mean of its pattern."""
        science = (slice(BORDER, -BORDER), slice(BORDER, -BORDER))
        scale = float(np.mean(self.sky.he_shape[science])) if self.spec.is_grism else 1.0
        return round(self.spec.he.peak(self.spec.exptime) * scale, 6)

    @property
    def scattered_peak(self) -> float:
        return round(self.spec.scatter.peak(self.spec.exptime), 6)

    @property
    def category(self) -> str:
        return categorize(
            grism=self.spec.is_grism, he_peak=self.he_peak, scattered_peak=self.scattered_peak
        )

    @cached_property
    def reads(self) -> list[dict]:
        """Rows of ``truth_reads.parquet`` for this exposure (see :func:`read_truth_rows`)."""
        return read_truth_rows(self)

    def row(self) -> dict:
        """One row of ``truth.parquet`` (columns described in :data:`TRUTH_COLUMNS`)."""
        s = self.spec
        reads = self.reads[1:]
        interval = [r["bkg_rate"] for r in reads]
        science = (slice(BORDER, -BORDER), slice(BORDER, -BORDER))
        values = {
            "rootname": s.rootname, "asn_id": s.asn_id, "visit": s.visit,
            "visit_code": s.visit_code, "exposure": s.exposure, "orbit": s.orbit,
            "orbit_position": s.orbit_position, "filter": s.filter,
            "obstype": "SPECTROSCOPIC" if s.is_grism else "IMAGING", "samp_seq": s.samp_seq,
            "nsamp": s.nsamp, "size": s.size, "exptime": s.exptime, "expstart": s.expstart,
            "expend": round(s.expend, 8), "targname": s.pointing.targname,
            "crowded": s.crowded, "zodi": s.zodi,
            "he_profile": s.he.kind if s.he.active else "none", "he_peak": self.he_peak,
            "he_t0": s.he.t0, "he_width": s.he.width,
            "scattered_profile": s.scatter.kind if s.scatter.active else "none",
            "scattered_peak": self.scattered_peak,
            "scattered_lr_max": round(max(r["left_rate"] - r["right_rate"] for r in reads), 6),
            "bkg_min": round(min(interval), 6), "bkg_max": round(max(interval), 6),
            "category": self.category, "n_cr": int(self.crs["y"].size),
            "cr_pixel_fraction": round(float((self.cr_map[science] > 0).mean()), 8),
            "n_saturated": int((self.sat_read >= 0).sum()), "n_zsig": self.n_zsig,
            "n_badpix": int((self.bpix[science] != 0).sum()), "noise_seed": s.noise_seed,
        }  # fmt: skip
        return {name: values[name] for name in TRUTH_COLUMNS}


def _region_medians(truth: ExposureTruth, uniform_only: bool, box) -> tuple[np.ndarray, np.ndarray]:
    """Median over a region of the noiseless background: (interval rates, cumulative rates).

    Medians, not means, because triage statistics are medians; on a gradient (limb light)
    the two differ. Index 0 (the zeroth read) is NaN.
    """
    s, t = truth.spec, truth.spec.times
    # smooth patterns: every n-th pixel (≤ 256² samples) gives the median to ~1e-4
    step = max(1, s.size // 256)
    sampled = tuple(slice(b.start, b.stop, step) for b in box)

    def cut(shape):
        return shape[sampled] if np.ndim(shape) else shape

    sky = truth.sky
    sky = replace(sky, zodi_shape=cut(sky.zodi_shape), he_shape=cut(sky.he_shape),
                  scatter_shape=cut(sky.scatter_shape))  # fmt: skip
    if uniform_only:
        sky = replace(sky, scatter=TimeProfile())

    def median(t0: float, t1: float) -> float:
        return float(np.median(sky.charge(t0, t1))) / (t1 - t0)

    interval = np.array([np.nan] + [median(t[k - 1], t[k]) for k in range(1, s.nsamp)])
    cumulative = np.array([np.nan] + [median(0.0, t[k]) for k in range(1, s.nsamp)])
    return interval, cumulative


def _regions(truth: ExposureTruth) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    s = truth.spec
    science = (slice(BORDER, s.size - BORDER), slice(BORDER, s.size - BORDER))
    left, right = lr_boxes(s.size)
    he_only = replace(truth, sky=replace(truth.sky, zodi=0.0))
    return {
        "he": _region_medians(he_only, True, science),
        "bkg": _region_medians(truth, True, science),
        "sky": _region_medians(truth, False, science),
        "left": _region_medians(truth, False, left),
        "right": _region_medians(truth, False, right),
    }


def read_truth_rows(truth: ExposureTruth) -> list[dict]:
    """One row per read of the injected background, per interval and cumulative.

    Each value is the median over a region of the noiseless background (what a median-based
    triage measures on a clean field). Regions: ``bkg`` is the uniform part (zodi + He I;
    for grisms their 2-D patterns) over the science area; ``sky`` adds limb light; ``left``
    and ``right`` are the :func:`lr_boxes` with everything; ``he`` is He I alone.
    ``<region>_rate`` is the mean rate in the interval (t_{k-1}, t_k] — what instantaneous
    rates from read differences measure; ``<region>_cumulative`` the mean since the zeroth
    read — what the median of SCI_k measures. Both are null for the zeroth read.
    """
    s, t = truth.spec, truth.spec.times
    regions = _regions(truth)
    rows = []
    for k in range(s.nsamp):
        row = {
            "rootname": s.rootname, "read": k, "imset": s.nsamp - k, "samptime": float(t[k]),
            "deltatim": float(round(t[k] - t[k - 1], 6)) if k else 0.0,
            "routtime": round(s.expstart + float(t[k]) / 86400.0, 8), "zodi": s.zodi,
        }  # fmt: skip
        for name, (interval, cumulative) in regions.items():
            row[f"{name}_rate"] = float(interval[k]) if k else None
            row[f"{name}_cumulative"] = float(cumulative[k]) if k else None
        rows.append(row)
    return rows
