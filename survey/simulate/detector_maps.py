"""Static properties of the simulated detector: bad pixels, response (flat), dark, full well.

The maps are drawn once per program for the full 1024² frame and cropped for subarrays, so
every exposure of a program sees the same hot pixels and blobs, as on the real detector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..wfc3ir.detector import BORDER, FULL_FRAME, amp_map
from ..wfc3ir.dq import DQ
from .config import PhysicsConfig
from .sky import array_origin

__all__ = ["DetectorMaps", "amp_values", "make_detector_maps"]

#: How each static flag changes a pixel (why: triage must cope with the real behaviours).
DEAD_RESPONSE = 0.1  # bit 4: a dead pixel that the flat does not repair
HOT_DARK = (0.5, 20.0)  # bit 16: dark rate range (e-/s), log-uniform; DARKCORR removes its mean
WARM_DARK = (0.1, 0.5)  # bit 64
UNSTABLE_NOISE = 3.0  # bit 32: read noise multiplier
BLOB_DEPTH = (0.05, 0.15)  # bit 512: response deficit, corrected by the (delta) flat
BLOB_RADIUS = (5.0, 15.0)  # pixels


@dataclass(frozen=True)
class DetectorMaps:
    """Per-pixel maps of one (sub)array, shape (ny, nx), reference border included.

    ``response`` is the true relative QE; ``flat`` is what calwf3's flat holds (equal except
    for dead pixels). ``dark`` is e-/s and ``pedestal`` e- (the dark reference's offset of
    every read after the zeroth), both 0 on the border; ``noise_scale`` multiplies the read
    noise; ``bpix`` holds the static DQ bits ORed into every read.
    """

    bpix: np.ndarray
    response: np.ndarray
    flat: np.ndarray
    dark: np.ndarray
    pedestal: np.ndarray
    full_well: np.ndarray
    noise_scale: np.ndarray

    def crop(self, size: int) -> DetectorMaps:
        """The centred ``size``² subarray of full-frame maps.

        A subarray keeps the reference bands of its own rows and columns, so its 5-px frame
        holds reference pixels (no light, no dark), not the neighbouring science pixels.
        """
        o = array_origin(size)
        cut = (slice(o, o + size), slice(o, o + size))
        maps = {f: getattr(self, f)[cut].copy() for f in self.__dataclass_fields__}
        for name in ("response", "dark", "pedestal"):
            _zero_border(maps[name])
        return DetectorMaps(**maps)


def _zero_border(array: np.ndarray) -> None:
    array[:BORDER] = array[-BORDER:] = 0
    array[:, :BORDER] = array[:, -BORDER:] = 0


def amp_values(ny: int, nx: int, values: dict[str, float]) -> np.ndarray:
    """Per-pixel array of a per-amplifier quantity (e.g. gain or read noise)."""
    amps = amp_map(ny, nx)
    out = np.empty((ny, nx))
    for amp, value in values.items():
        out[amps == amp] = value
    return out


def _blobs(rng: np.random.Generator, fraction: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean blob mask and response deficit map: round low-response patches (IR blobs)."""
    mask = np.zeros((n, n), bool)
    deficit = np.zeros((n, n))
    # a blob of radius ~10 px covers ~π·100 pixels
    radius = rng.uniform(*BLOB_RADIUS, size=round(fraction * n * n / (np.pi * 100.0)))
    yy, xx = np.mgrid[-16:17, -16:17]
    for r in radius:
        cy, cx = rng.integers(BORDER + 16, n - BORDER - 16, size=2)
        disk = xx**2 + yy**2 <= r * r
        cut = (slice(cy - 16, cy + 17), slice(cx - 16, cx + 17))
        mask[cut] |= disk
        deficit[cut] = np.maximum(deficit[cut], disk * rng.uniform(*BLOB_DEPTH))
    return mask, deficit


def make_detector_maps(rng: np.random.Generator, physics: PhysicsConfig) -> DetectorMaps:
    """Draw the full-frame static maps (flags in the border too, like the real BPIXTAB)."""
    n = FULL_FRAME
    bpix = np.zeros((n, n), np.uint16)
    for bit, fraction in sorted(physics.badpix_fractions.items()):
        bpix[rng.random((n, n)) < fraction] |= np.uint16(bit)
    blob, deficit = _blobs(rng, physics.blob_fraction, n)
    bpix[blob] |= np.uint16(DQ.BADFLAT)
    response = np.clip(1.0 + physics.flat_rms * rng.standard_normal((n, n)), 0.5, 1.5) * (
        1 - deficit
    )
    flat = response.copy()
    dead = (bpix & DQ.DETECTORPROB) > 0
    response[dead] *= DEAD_RESPONSE
    dark = physics.dark_rate * (1.0 + physics.dark_scatter * rng.standard_normal((n, n))).clip(0.0)
    hot, warm = (bpix & DQ.HOTPIX) > 0, (bpix & DQ.WARMPIX) > 0
    dark[hot] = np.exp(rng.uniform(*np.log(HOT_DARK), size=hot.sum()))
    dark[warm] = np.exp(rng.uniform(*np.log(WARM_DARK), size=warm.sum()))
    pedestal = physics.dark_pedestal * rng.standard_normal((n, n))
    full_well = physics.full_well * (1.0 + physics.full_well_scatter * rng.standard_normal((n, n)))
    noise_scale = np.where((bpix & DQ.UNSTABLE) > 0, UNSTABLE_NOISE, 1.0)
    # reference pixels have no photodiode: no light and no dark current
    _zero_border(response)
    _zero_border(dark)
    _zero_border(pedestal)
    return DetectorMaps(bpix, response, flat, dark, pedestal, full_well, noise_scale)
