"""Fixed facts about the WFC3/IR detector (WFC3 IHB §5.6, §7.9; CCDTAB t2c16200i)."""

from __future__ import annotations

import numpy as np

__all__ = [
    "AMP_GAIN",
    "AMP_READNOISE_CDS",
    "BORDER",
    "FULL_FRAME",
    "MEAN_GAIN",
    "SUBARRAY_SIZES",
    "ZEROTH_READ_OFFSET",
    "amp_map",
    "science_slice",
]

#: Raw/IMA full-frame size including the reference border.
FULL_FRAME = 1024
#: Reference-pixel band on each side of RAW/IMA arrays (OSCNTAB TRIMX/TRIMY).
BORDER = 5
#: Raw/IMA array sizes (science size + 2 * BORDER) of the supported square apertures.
SUBARRAY_SIZES = (1024, 522, 266, 138, 74)

#: CCDTAB gains (e-/DN) per amplifier A, B, C, D.
AMP_GAIN = {"A": 2.34, "B": 2.37, "C": 2.31, "D": 2.38}
MEAN_GAIN = float(np.mean(list(AMP_GAIN.values())))
#: CCDTAB read noise per CDS pair (e-) per amplifier.
AMP_READNOISE_CDS = {"A": 20.2, "B": 19.8, "C": 19.9, "D": 20.1}

#: SAMPZERO = SAMPTIME of read 1 minus this (TSM expose + ADC warm-up; hstcal doir.c).
ZEROTH_READ_OFFSET = 0.020535


def science_slice(ny: int, nx: int) -> tuple[slice, slice]:
    """Index of the science area of a RAW/IMA array (the 5-px reference border excluded)."""
    if ny <= 2 * BORDER or nx <= 2 * BORDER:
        raise ValueError(f"array {ny}x{nx} is too small to hold a {BORDER}-px reference border")
    return slice(BORDER, ny - BORDER), slice(BORDER, nx - BORDER)


def amp_map(ny: int, nx: int) -> np.ndarray:
    """Amplifier letter of each pixel of a centred (sub)array, in raw 1024² quadrants.

    A upper-left (x < 512, y >= 512), B lower-left, C lower-right, D upper-right. Subarrays are
    centred, so they split evenly between the four amplifiers.
    """
    y = np.arange(ny)[:, None] - ny / 2
    x = np.arange(nx)[None, :] - nx / 2
    upper = np.broadcast_to(y >= 0, (ny, nx))
    right = np.broadcast_to(x >= 0, (ny, nx))
    amps = np.empty((ny, nx), dtype="<U1")
    amps[upper & ~right] = "A"
    amps[~upper & ~right] = "B"
    amps[~upper & right] = "C"
    amps[upper & right] = "D"
    return amps
