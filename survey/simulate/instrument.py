"""Charge accumulation up the ramp and calwf3's read-level calibration of it.

:func:`accumulate` is the detector: Poisson charge per read interval (sources, sky, dark),
persistent cosmic rays, full-well saturation (the ramp plateaus), per-amplifier read noise and
digitisation with per-amplifier gains. :func:`calibrate` is calwf3 with CRCORR = OMIT
(domain reference §7.1): ZSIGCORR, ZOFFCORR, NOISCORR, DARKCORR, UNITCORR and FLATCORR,
giving the IMA's SCI (cumulative e-/s since the zeroth read), ERR and DQ.

Physics runs in float64 and is cast to float32 only at the end. Per-read loops touch one
(ny, nx) plane at a time, so a full-frame 16-read ramp needs a few (16, 1024, 1024) float64
stacks at most.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..wfc3ir.detector import AMP_GAIN, AMP_READNOISE_CDS, BORDER
from ..wfc3ir.dq import DQ
from .config import PhysicsConfig
from .detector_maps import DetectorMaps, amp_values
from .sky import TimeProfile

__all__ = ["RawRamp", "SkyModel", "accumulate", "calibrate"]


@dataclass(frozen=True)
class SkyModel:
    """Background of one exposure: zodi (constant), He I and limb light (time profiles).

    Shapes multiply each component pixel by pixel (1 for flat imaging backgrounds).
    """

    zodi: float
    he: TimeProfile = field(default_factory=TimeProfile)
    scatter: TimeProfile = field(default_factory=TimeProfile)
    zodi_shape: np.ndarray | float = 1.0
    he_shape: np.ndarray | float = 1.0
    scatter_shape: np.ndarray | float = 0.0

    def charge(self, t_start: float, t_end: float) -> np.ndarray | float:
        """Background charge per pixel (e-, before the response) collected in [t_start, t_end]."""

        def part(profile: TimeProfile) -> float:
            return float(profile.integral(t_end) - profile.integral(t_start))

        total = self.zodi * (t_end - t_start) * self.zodi_shape
        if self.he.active:
            total = total + part(self.he) * self.he_shape
        if self.scatter.active:
            total = total + part(self.scatter) * self.scatter_shape
        return total


@dataclass
class RawRamp:
    """Read values in e- with bias removed (``reads``, time order, the zeroth read included),
    the first saturated read per pixel (-1 if never) and the cosmic rays that were injected."""

    reads: np.ndarray
    sat_read: np.ndarray
    crs: dict[str, np.ndarray]


def _poisson_charge(rng, scene, sky: SkyModel, maps: DetectorMaps, times, sampzero):
    """Poisson charge collected in each interval, (nsamp, ny, nx) float64.

    Plane k = 0 is the SAMPZERO seconds between reset and the zeroth read (the zero-read
    signal); plane k ≥ 1 the interval (t_{k-1}, t_k]. One plane at a time keeps memory low.
    """
    edges = np.concatenate([[-sampzero], times])
    charge = np.empty((len(times), *scene.shape))
    for k in range(len(times)):
        t0, t1 = edges[k], edges[k + 1]
        mu = (scene * (t1 - t0) + sky.charge(t0, t1)) * maps.response + maps.dark * (t1 - t0)
        charge[k] = rng.poisson(mu)
    return charge


def _cosmic_rays(rng, times, shape, physics: PhysicsConfig) -> dict[str, np.ndarray]:
    """Hits uniform in time over (0, t_last] and over science pixels, log-uniform amplitudes."""
    ny, nx = shape
    n_pix = (ny - 2 * BORDER) * (nx - 2 * BORDER)
    n = rng.poisson(physics.cr_rate * n_pix * times[-1])
    time = rng.uniform(0.0, times[-1], n)
    return {
        "y": rng.integers(BORDER, ny - BORDER, n),
        "x": rng.integers(BORDER, nx - BORDER, n),
        "time": time,
        "read": np.searchsorted(times, time, side="left").clip(1, len(times) - 1),
        "amplitude": np.exp(rng.uniform(np.log(physics.cr_min), np.log(physics.cr_max), n)),
    }


def _read_noise(rng, reads: np.ndarray, maps: DetectorMaps) -> None:
    """Add per-read noise and digitise in place: each read has RN_cds/√2 in total.

    Quantisation with the amp's gain adds g²/12 per read, so the analogue noise is reduced to
    keep the CDS read noise at the CCDTAB value. A per-pixel bias phase dithers the rounding.
    """
    ny, nx = reads.shape[1:]
    gain = amp_values(ny, nx, AMP_GAIN)
    rn = amp_values(ny, nx, AMP_READNOISE_CDS)
    sigma = np.sqrt(rn**2 / 2 - gain**2 / 12) * maps.noise_scale
    phase = rng.random((ny, nx))
    for k in range(reads.shape[0]):
        plane = reads[k]
        plane += sigma * rng.standard_normal((ny, nx))
        np.rint(plane / gain + phase, out=plane)
        plane -= phase
        plane *= gain


def accumulate(rng, scene, sky: SkyModel, maps: DetectorMaps, times, sampzero, physics) -> RawRamp:
    """Simulate the reads of one exposure (e-, bias removed) from rates in e-/s."""
    charge = _poisson_charge(rng, scene, sky, maps, times, sampzero)
    crs = _cosmic_rays(rng, times, scene.shape, physics)
    np.add.at(charge, (crs["read"], crs["y"], crs["x"]), crs["amplitude"])
    np.cumsum(charge, axis=0, out=charge)  # charge since reset at each read
    saturated = charge >= maps.full_well
    sat_read = np.where(saturated.any(axis=0), saturated.argmax(axis=0), -1).astype(np.int16)
    del saturated
    np.minimum(charge, maps.full_well, out=charge)  # the well is full: the ramp plateaus
    charge[1:] += maps.pedestal
    _read_noise(rng, charge, maps)
    return RawRamp(charge, sat_read, crs)


def calibrate(raw: RawRamp, maps: DetectorMaps, times, sampzero, physics: PhysicsConfig):
    """calwf3 with CRCORR = OMIT: returns (sci, err, dq, zsig_flag) for every read.

    SCI_k = (C_k - pedestal - dark·t_k)/(flat·t_k) with C_k = read_k - read_0;
    ERR_k = √(RN² + |C_k|)/(flat·t_k) from NOISCORR, which runs before DARKCORR (and before
    the flat, which then divides both); the zeroth read holds the zero-read
    signal ÷ SAMPZERO where ZSIGCORR finds it significant, else 0. Reference pixels are left
    in DN, neither unit-converted nor flat-fielded, with ERR 0 (as in real IMAs).
    """
    reads = raw.reads
    nsamp, ny, nx = reads.shape
    rn = amp_values(ny, nx, AMP_READNOISE_CDS)
    gain = amp_values(ny, nx, AMP_GAIN)
    science = np.zeros((ny, nx), bool)
    science[BORDER:-BORDER, BORDER:-BORDER] = True
    zsig = reads[0].copy()
    significant = science & (zsig >= physics.zsig_nsigma * rn)
    zsig_kept = np.where(significant, zsig, 0.0)
    sci = np.empty((nsamp, ny, nx), np.float32)
    err = np.empty((nsamp, ny, nx), np.float32)
    sci[0] = np.where(science, zsig_kept / (maps.flat * sampzero), 0.0)
    err[0] = np.where(science, np.sqrt(rn**2 + np.abs(zsig_kept)) / (maps.flat * sampzero), 0.0)
    for k in range(1, nsamp):
        counts = reads[k] - zsig
        err[k] = np.where(science, np.sqrt(rn**2 + np.abs(counts)) / (maps.flat * times[k]), 0.0)
        rate = (counts - maps.pedestal - maps.dark * times[k]) / (maps.flat * times[k])
        sci[k] = np.where(science, rate, counts / gain)
    dq = _dq(maps.bpix, raw.sat_read, significant, nsamp)
    return sci, err, dq, significant


def _dq(bpix: np.ndarray, sat_read: np.ndarray, zsig: np.ndarray, nsamp: int) -> np.ndarray:
    """Static flags in every read; 256 from the saturating read on; 2048 (ZOFFCORR ORs the
    zeroth read's DQ into every read) where the zero-read signal is significant."""
    dq = np.empty((nsamp, *bpix.shape), np.uint16)
    base = bpix | np.where(zsig, np.uint16(DQ.ZEROSIG), np.uint16(0))
    for k in range(nsamp):
        dq[k] = base | np.where((sat_read >= 0) & (sat_read <= k), np.uint16(DQ.SATPIXEL), 0)
    return dq
