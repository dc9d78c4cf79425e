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
from typing import NamedTuple, Protocol

import numpy as np

from ..errors import SurveyError

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

MAD_TO_SIGMA = 1.4826


class SkyError(SurveyError):
    """A sky cannot be estimated (no usable pixel) or an option is malformed."""


class SkyEstimator(Protocol):
    name: str
    uses_mask: bool

    def estimate(self, values: np.ndarray, mask: np.ndarray | None) -> float: ...


class SkyStats(NamedTuple):
    median: float
    mean: float
    sigma: float
    npix: int


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
    """σ-clipped median, mean and robust σ (1.4826·MAD) of the unmasked finite values.

    The clip limits (median ± ``nsigma``·σ, iterated until nothing changes) and σ come from a
    regular sample of at most ``sample_size`` values (the error of the limits, ~σ/√n, is far
    below the clip width); the median and mean are those of *every* value inside the limits.
    """
    data = _usable(values, mask).ravel()
    step = max(1, data.size // sample_size)
    kept = data[::step]
    for _ in range(maxiters):
        med = float(np.median(kept))
        sigma = MAD_TO_SIGMA * float(np.median(np.abs(kept - med)))
        if sigma == 0:
            break
        selected = kept[np.abs(kept - med) <= nsigma * sigma]
        if selected.size == kept.size:
            break
        kept = selected
    med = float(np.median(kept))
    sigma = MAD_TO_SIGMA * float(np.median(np.abs(kept - med)))
    if step > 1 and kept.size:
        lo, hi = kept.min(), kept.max()
        kept = data[(data >= lo) & (data <= hi)]
        med = float(np.median(kept))
    return SkyStats(med, float(kept.mean(dtype=np.float64)), sigma, int(kept.size))


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

    The image (bad pixels replaced by the median) is smoothed with a 3×3 box; pixels above
    sky + ``nsigma``·noise (clipped median and robust σ of the smoothed good pixels) are
    sources, grown by ``grow`` px (a (2·grow+1)² square). Cosmic rays in the read are caught
    the same way.
    """
    from scipy import ndimage

    image = np.asarray(rate, dtype=np.float32)
    usable = ~bad & np.isfinite(image)
    if not usable.any():
        return np.zeros(image.shape, dtype=bool)
    fill = float(np.median(image[usable][:: max(1, usable.sum() // 100_000)]))
    image = np.where(usable, image, np.float32(fill))
    smooth = ndimage.uniform_filter(image, size=3, mode="nearest")
    step = max(1, int(np.sqrt(smooth.size / 40_000)))
    sample = smooth[::step, ::step][usable[::step, ::step]]
    stats = clipped_stats(sample)
    hot = smooth > stats.median + nsigma * stats.sigma
    if grow > 0:
        hot = ndimage.maximum_filter(hot, size=2 * grow + 1, mode="constant")
    return hot
