"""Per-read sky estimators, the sky region and the exposure's source mask (pure numpy).

Estimators share one small interface, like photutils' background estimators::

    class SkyEstimator(Protocol):
        name: str
        uses_mask: bool
        def estimate(self, values: np.ndarray, mask: np.ndarray | None) -> float: ...

``values`` is one read's science area (or region) in e⁻/s, ``mask`` is True where a pixel must
not be used (bad DQ, sources). An estimator with ``uses_mask = False`` (``median``, the public
recipes' plain median) gets ``mask=None``. Register a new one in :data:`ESTIMATORS`.

- ``median``: ``np.median`` of every finite pixel, no mask (STScI notebook, wfc3tools).
- ``clipped``: DQ-masked, 3σ-clipped median (σ = 1.4826·MAD, iterated to convergence).
- ``masked`` (default): ``clipped`` with the exposure's sources masked too (see
  :func:`source_mask`): what a crowded or extended field needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import SurveyError
from ..skystats import SkyStats, robust_stats

__all__ = [
    "ESTIMATORS",
    "ClippedSky",
    "MaskedSky",
    "MedianSky",
    "Region",
    "SkyEstimator",
    "SkyStats",
    "clipped_stats",
    "get_estimator",
    "parse_region",
    "source_mask",
]


class SkyError(SurveyError):
    """A sky cannot be estimated (no usable pixel) or an option is malformed."""


class SkyEstimator(Protocol):
    name: str
    uses_mask: bool

    def estimate(self, values: np.ndarray, mask: np.ndarray | None) -> float: ...


def _usable(values: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    good = np.isfinite(values)
    if mask is not None:
        good &= ~mask
    data = values[good]
    if data.size == 0:
        raise SkyError("all pixels of the sky region are masked: cannot estimate a sky")
    return data


def clipped_stats(
    values: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    nsigma: float = 3.0,
    maxiters: int = 10,
    sample_size: int = 50_000,
) -> SkyStats:
    """σ-clipped median, mean and robust σ (1.4826·MAD) of the unmasked finite values
    (:func:`survey.skystats.robust_stats`); raises :class:`SkyError` if there is none."""
    data = _usable(values, mask)
    return robust_stats(data, nsigma=nsigma, maxiters=maxiters, sample_size=sample_size)


@dataclass(frozen=True)
class MedianSky:
    """Plain median of every finite pixel (the public recipes)."""

    name: str = "median"
    uses_mask: bool = False

    def estimate(self, values: np.ndarray, mask: np.ndarray | None) -> float:
        return float(np.median(_usable(values, mask)))


@dataclass(frozen=True)
class ClippedSky:
    """σ-clipped median of the DQ-good pixels."""

    name: str = "clipped"
    uses_mask: bool = True
    nsigma: float = 3.0

    def estimate(self, values: np.ndarray, mask: np.ndarray | None) -> float:
        return clipped_stats(values, mask, nsigma=self.nsigma).median


@dataclass(frozen=True)
class MaskedSky(ClippedSky):
    """σ-clipped median of the DQ-good pixels outside the exposure's source mask."""

    name: str = "masked"
    masks_sources: bool = True


ESTIMATORS: dict[str, SkyEstimator] = {e.name: e for e in (MedianSky(), ClippedSky(), MaskedSky())}


def get_estimator(name: str) -> SkyEstimator:
    try:
        return ESTIMATORS[name]
    except KeyError:
        choices = ", ".join(ESTIMATORS)
        raise SkyError(f"unknown sky estimator {name!r}; choose from {choices}") from None


# -- region ----------------------------------------------------------------------------------
_REGION = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*$")


@dataclass(frozen=True)
class Region:
    """A box ``X1:X2,Y1:Y2`` in science-area pixels (0-based, ends exclusive, as numpy)."""

    x1: int
    x2: int
    y1: int
    y2: int

    def __str__(self) -> str:
        return f"{self.x1}:{self.x2},{self.y1}:{self.y2}"

    def slices(self, ny: int, nx: int) -> tuple[slice, slice]:
        """(rows, columns) inside a science area of ``ny``×``nx``; refuses boxes outside it."""
        if self.x2 > nx or self.y2 > ny:
            raise SkyError(f"region {self} reaches outside the {nx}x{ny} science area")
        return slice(self.y1, self.y2), slice(self.x1, self.x2)


def parse_region(text: str | None) -> Region | None:
    """``"X1:X2,Y1:Y2"`` → :class:`Region`; None/"" → None (the whole science area)."""
    if not text:
        return None
    match = _REGION.match(text)
    if not match:
        raise SkyError(f"region {text!r} is not X1:X2,Y1:Y2 (science-area pixels)")
    x1, x2, y1, y2 = map(int, match.groups())
    if x2 <= x1 or y2 <= y1:
        raise SkyError(f"region {text!r} is empty (need X1 < X2 and Y1 < Y2)")
    return Region(x1, x2, y1, y2)


# -- source mask -----------------------------------------------------------------------------
def source_mask(
    rate: np.ndarray, bad: np.ndarray, *, nsigma: float = 3.0, grow: int = 3
) -> np.ndarray:
    """Sources of an exposure from its last read (e⁻/s, science area): True = source.

    The scan's mask (:func:`survey.scan.regions.source_mask`, one algorithm for both): the
    3×3-smoothed read is thresholded ``nsigma``·noise above a *smooth local background*
    (medians of small squares, interpolated), not above one global sky level, and the mask is
    grown by ``grow`` px (a square). A global level would call the smoothly brighter left few
    hundred columns of Earth-limb light "source" and leave pop-reads no left box. Cosmic rays
    in the read are caught the same way.
    """
    from ..scan.regions import MaskWorkspace
    from ..scan.regions import source_mask as scan_source_mask

    image = np.ascontiguousarray(rate, dtype=np.float32)
    good = np.ascontiguousarray(~np.asarray(bad, dtype=bool) & np.isfinite(image))
    if not good.any():
        return np.zeros(image.shape, dtype=bool)
    work = MaskWorkspace.for_shape(image.shape)
    found = scan_source_mask(image, good, sigma=nsigma, grow=grow, work=work)
    return found.mask.astype(bool)  # a copy: the workspace is reused by the next call
