"""Where a pixel belongs: amplifier quadrant, scattered-light box, source mask.

All maps cover the science area of a RAW/IMA array (the 5-px reference border excluded), so
map pixel (y, x) is array pixel (y + 5, x + 5).

- **Quadrants** follow :func:`survey.wfc3ir.detector.amp_map`: A upper-left (x < nx/2,
  y ≥ ny/2), B lower-left, C lower-right, D upper-right, in array coordinates.
- **Boxes** (scattered Earth light, domain reference §4): columns 40–239 (left) and 760–959
  (right) of the 1024-px full frame, border included, as in reprocess_wfc3; for a subarray
  of width nx the limits are scaled by nx/1024 and rounded, then cut to the science area. All
  science rows are used.
- **Source mask**, built once per exposure from the last read (:func:`source_mask`).
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import ClassVar, NamedTuple

import numpy as np

from ..wfc3ir.detector import BORDER, FULL_FRAME
from . import _kernels

__all__ = ["MaskWorkspace", "SourceMask", "box_limits", "cell_map", "source_mask"]

QUADRANTS = ("a", "b", "c", "d")


def box_limits(
    nx: int, columns: tuple[int, int, int, int] = (40, 240, 760, 960)
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Half-open column ranges (array coordinates) of the left and right boxes."""

    def scale(c: int) -> int:
        return min(max(int(np.floor(c * nx / FULL_FRAME + 0.5)), BORDER), nx - BORDER)

    l0, l1, r0, r1 = (scale(c) for c in columns)
    return (l0, l1), (r0, r1)


@lru_cache(maxsize=8)
def _cell_map(ny: int, nx: int, columns: tuple[int, int, int, int]) -> np.ndarray:
    cells = _make_cell_map(ny, nx, columns)
    cells.flags.writeable = False
    return cells


def cell_map(
    ny: int, nx: int, columns: tuple[int, int, int, int] = (40, 240, 760, 960)
) -> np.ndarray:
    """Region cell (``2·quadrant + in_box``, quadrant 0..3 = A..D) of each science pixel.

    A fresh (writable) copy of a cached map.
    """
    return _cell_map(ny, nx, tuple(columns)).copy()


def _make_cell_map(ny: int, nx: int, columns: tuple[int, int, int, int]) -> np.ndarray:
    y = np.arange(BORDER, ny - BORDER)[:, None]
    x = np.arange(BORDER, nx - BORDER)[None, :]
    upper = y >= ny / 2
    right = x >= nx / 2
    quadrant = np.where(right, np.where(upper, 3, 2), np.where(upper, 0, 1))
    (l0, l1), (r0, r1) = box_limits(nx, columns)
    in_box = np.where(right, (x >= r0) & (x < r1), (x >= l0) & (x < l1))
    return (2 * quadrant + in_box).astype(np.uint8)


class SourceMask(NamedTuple):
    """Pixels excluded from the sky statistics as sources (science-area shaped, uint8 0/1)."""

    mask: np.ndarray
    sky: float  # sky level of the smoothed last read (its units)
    sigma: float  # noise of the smoothed last read (its units)
    threshold: float  # sky + mask_sigma·sigma

    @property
    def fraction(self) -> float:
        return float(np.count_nonzero(self.mask)) / self.mask.size if self.mask.size else 0.0


class MaskWorkspace:
    """Reusable arrays for one science-area shape (fresh memory is slow to touch)."""

    _local: ClassVar[threading.local] = threading.local()

    def __init__(self, shape: tuple[int, int]):
        self.image = np.empty(shape, np.float32)
        self.good = np.empty(shape, np.bool_)
        self.clean = np.empty(shape, np.float32)
        self.rows = np.empty(shape, np.float32)
        self.smooth = np.empty(shape, np.float32)
        self.rows8 = np.empty(shape, np.uint8)
        self.mask = np.empty(shape, np.uint8)
        self.background = np.empty(shape, np.float32)
        self.residual = np.empty(shape, np.float32)

    @classmethod
    def for_shape(cls, shape: tuple[int, int]) -> MaskWorkspace:
        """A cached workspace for ``shape``, one per calling thread (never shared)."""
        shape = tuple(shape)
        cache = getattr(cls._local, "cache", None)
        if cache is None:
            cache = cls._local.cache = {}
        if shape not in cache:
            if len(cache) >= 4:
                cache.clear()
            cache[shape] = cls(shape)
        return cache[shape]


def _robust_level(values: np.ndarray, iterations: int = 5) -> tuple[float, float]:
    """Median and 1.4826·MAD of ``values``, 3σ-clipped a few times (for a sample)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return 0.0, 0.0
    m = float(np.median(v))
    s = 1.482602218505602 * float(np.median(np.abs(v - m)))
    for _ in range(iterations):
        if not s > 0:
            break
        kept = v[np.abs(v - m) <= 3 * s]
        if kept.size == v.size or kept.size == 0:
            break
        v = kept
        m = float(np.median(v))
        s = 1.482602218505602 * float(np.median(np.abs(v - m)))
    return m, s


def source_mask(
    last: np.ndarray, good: np.ndarray, *, sigma: float, grow: int,
    work: MaskWorkspace | None = None,
) -> SourceMask:  # fmt: skip
    """Mask pixels well above the sky in the last read, then grow the mask.

    ``last`` is the science area of the last read (rate units) and ``good`` marks pixels with
    no sky-bad DQ bit and a finite value. The image is smoothed with a 3×3 box (bad pixels
    replaced by the median of the good pixels), the sky level and noise of the smoothed image
    are the 3σ-clipped median and 1.4826·MAD of a regular sample of about 8000 good pixels, and
    pixels above ``sky + sigma·noise`` are masked and the mask grown by ``grow`` pixels
    (a square). The returned mask lives in ``work`` (reused by the next call).
    """
    work = work or MaskWorkspace(last.shape)
    if last.size == 0:
        work.mask[...] = 0
        return SourceMask(work.mask, np.nan, np.nan, np.nan)
    step = max(1, min(last.shape) // 90)  # ≈ 8000 sample pixels
    sample = last[::step, ::step][good[::step, ::step]]
    fill = float(np.median(sample)) if sample.size else 0.0
    _kernels.box_mean3(last, good, fill, work.clean, work.rows, work.smooth)
    # Threshold against a smooth local background, not one global level: Earth-limb light
    # brightens the left few hundred columns smoothly, and a global level would mask all of
    # it as "source", leaving the scattered-light boxes empty.
    cell = 2 * int(np.clip(min(last.shape) // 16, 4, 16))  # even, 8..32: follows subarray gradients
    background, residual = _background_map(work.smooth, cell, work)
    sky, _ = _robust_level(background[::step, ::step][good[::step, ::step]].astype(np.float64))
    _, noise = _robust_level(residual[::step, ::step][good[::step, ::step]].astype(np.float64))
    threshold = sky + sigma * noise
    if not noise > 0:
        work.mask[...] = 0
        return SourceMask(work.mask, sky, noise, threshold)
    _kernels.threshold_dilate(
        residual,
        sigma * noise,
        max(int(grow), 0),
        work.rows8,
        work.mask,
    )
    return SourceMask(work.mask, sky, noise, threshold)


def _background_map(image: np.ndarray, cell: int, work: MaskWorkspace):
    """Smooth background and image − background (in ``work``): medians of ``cell``-pixel
    squares, interpolated bilinearly.

    ``image`` is the 3×3-smoothed last read, whose bad pixels already hold the median sky, so
    plain medians (a regular sample of each square) ignore compact sources without NaN handling;
    the edges are padded by replication. Interpolation is two weighted row/column blends in one
    kernel writing into reused arrays (no BLAS threads, no fresh memory to fault in).
    """
    ny, nx = image.shape
    gy, gx = -(-ny // cell), -(-nx // cell)
    padded = np.pad(image, ((0, gy * cell - ny), (0, gx * cell - nx)), mode="edge")
    step = 4 if cell >= 16 else 2  # ≥ 16 samples per square are plenty for a median
    blocks = padded[::step, ::step].reshape(gy, cell // step, gx, cell // step)
    blocks = blocks.transpose(0, 2, 1, 3)
    coarse = np.median(blocks.reshape(gy, gx, -1), axis=2).astype(np.float32)
    rows = np.empty((ny, gx), np.float32)
    _kernels.background_residual(
        coarse, *_blend_weights(ny, gy, cell), *_blend_weights(nx, gx, cell), image, rows,
        work.background, work.residual,
    )  # fmt: skip
    return work.background, work.residual


@lru_cache(maxsize=16)
def _blend_weights(n: int, g: int, cell: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation of ``g`` cell-centre values onto ``n`` pixels: for each pixel the
    lower and upper cell and the (float32) weight of the upper one."""
    position = np.clip((np.arange(n) + 0.5) / cell - 0.5, 0, g - 1)
    low = np.minimum(position.astype(np.intp), max(g - 2, 0))
    weight = (position - low).astype(np.float32)
    high = np.minimum(low + 1, g - 1)
    for array in (low, high, weight):
        array.flags.writeable = False
    return low, high, weight
