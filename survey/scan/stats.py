"""Per-read sky statistics of a WFC3/IR ramp, from arrays (no file I/O here).

For read k (time order, 1 ≤ k ≤ NSAMP−1) two families of statistics are measured over the
science area (5-px reference border excluded):

- **cumulative**: SCI_k itself, the average rate since the zeroth read (e⁻/s);
- **instantaneous**: the per-pixel rate of the interval, r_k = (C_k − C_{k−1})/(t_k − t_{k−1})
  with C_k = SCI_k·t_k (C_0 ≡ 0, so r_1 = SCI_1). A median of per-pixel differences is not a
  difference of medians (domain reference §4): a cosmic ray or a source changes one pixel's
  ramp, not the sky.

``median_rate`` is **exact**: ``np.median`` of SCI_k over the whole science area, no mask,
bit-for-bit the float32 result numpy (and so ``wfc3tools.pstat(..., stat='midpt')``) returns,
NaN if any pixel is NaN. It is found from the read's histogram and the values of the one or two
bins holding the middle rank (:mod:`survey.scan._kernels`).

The **sky** statistics use only sky pixels: no sky-bad DQ bit in the read (for r_k: in both
reads), finite, and outside the exposure's source mask. They come from the (cell × bin)
histogram (:mod:`survey.scan._histogram`): n, median, 16th/84th percentiles, and the
σ-clipped median, mean and 1.4826·MAD; the quadrant and box medians likewise. When a number
would need an open end bin of the histogram (a read whose values spread over more than about
±64σ of its sample), that group is recomputed exactly by :func:`reference_stats`, the numpy
definition the histogram values approximate (tests hold them within 0.01σ).
"""

from __future__ import annotations

import threading
from typing import ClassVar

import numpy as np

from ..wfc3ir.detector import BORDER
from . import _histogram as hstat
from . import _kernels as kern
from .params import ScanParameters

__all__ = [
    "CUMULATIVE_COLUMNS",
    "INSTANT_COLUMNS",
    "MEAN_REGIONS",
    "ReadStatistics",
    "exact_median",
    "reference_stats",
]

_CELLS = np.arange(kern.NCELLS)
#: groups of cells (see :mod:`survey.scan._kernels`)
SKY = _CELLS < 8
ALL = _CELLS <= kern.BAD_CELL
REGIONS = {
    "quad_a": np.isin(_CELLS, (0, 1)),
    "quad_b": np.isin(_CELLS, (2, 3)),
    "quad_c": np.isin(_CELLS, (4, 5)),
    "quad_d": np.isin(_CELLS, (6, 7)),
    "left": np.isin(_CELLS, (1, 3)),
    "right": np.isin(_CELLS, (5, 7)),
}
#: sky statistics of one family, in the order of :data:`survey.scan._histogram.FULL_FIELDS`:
#: p50/p16/p84 and npix are of all sky pixels; median, mean, sigma and nclip after clipping.
SKY_FIELDS = ("npix", "p50", "p16", "p84", "median", "mean", "sigma", "nclip")
REGION_NAMES = ("left", "right", "quad_a", "quad_b", "quad_c", "quad_d")
#: regions whose mean inside the sky's clipping range is also kept: in short reads r_k sits on
#: a comb ≈ gain/Δt apart (whole DN between reads) and a median snaps to one of its teeth,
#: while a mean does not (see sql/020_read_metrics.sql, which takes left − right from these).
MEAN_REGIONS = ("left", "right")
CUMULATIVE_COLUMNS = (
    "median_rate",
    "median_counts",
    *(f"sky_{f}" for f in SKY_FIELDS),
    *(f"{r}_median" for r in REGION_NAMES),
    *(f"{r}_mean" for r in MEAN_REGIONS),
)
INSTANT_COLUMNS = (
    *(f"inst_{f}" for f in SKY_FIELDS),
    *(f"inst_{r}_median" for r in REGION_NAMES),
    *(f"inst_{r}_mean" for r in MEAN_REGIONS),
)


def reference_stats(
    values: np.ndarray, *, clip_sigma: float = 3.0, clip_iters: int = 10
) -> dict[str, float]:
    """The exact (numpy) definition of the sky statistics of one group of pixels.

    ``median`` is the median after σ-clipping: repeat up to ``clip_iters`` times: m = median,
    s = 1.4826·median(|v − m|), keep |v − m| ≤ clip_sigma·s, until nothing changes. ``mean``
    and ``sigma`` (1.4826·MAD) are of the same clipped pixels; ``p16``, ``p50``, ``p84``
    (percentiles) and ``npix`` are of all the group's pixels. An empty group gives NaN and
    zero counts.
    """
    v = np.asarray(values, np.float64).ravel()
    out = dict.fromkeys(SKY_FIELDS, float("nan"))
    out["npix"] = float(v.size)
    out["nclip"] = 0.0
    if v.size == 0:
        return out
    out["p16"], out["p50"], out["p84"] = (float(p) for p in np.percentile(v, [16, 50, 84]))
    kept = v
    for _ in range(clip_iters):
        m = np.median(kept)
        s = hstat.MAD_TO_SIGMA * np.median(np.abs(kept - m))
        if not s > 0:
            break
        inside = np.abs(kept - m) <= clip_sigma * s
        if inside.all() or not inside.any():
            break
        kept = kept[inside]
    m = float(np.median(kept))
    out["median"] = m
    out["mean"] = float(kept.mean())
    out["sigma"] = float(hstat.MAD_TO_SIGMA * np.median(np.abs(kept - m)))
    out["nclip"] = float(kept.size)
    return out


def exact_median(
    values: np.ndarray,
    hist: np.ndarray,
    grid: np.ndarray,
    mask: np.ndarray | None = None,
    buffer: np.ndarray | None = None,
) -> np.float32:
    """``np.median`` (float32) of the science area of ``values`` from its histogram.

    ``values`` is the whole C-contiguous float32 array (border included) whose science area
    was indexed with ``grid`` (float32 [c_cum, 1/w_cum, …], :func:`_kernels.index_read`),
    ``hist`` the (cell × bin) histogram of those indices; every cell but NaN counts (call it
    only when there is no NaN). Only the values of the one or two bins holding the middle
    ranks are gathered and partitioned. ``mask`` is an optional bool buffer of the whole
    array's shape with a False border, ``buffer`` an optional float32 work array.
    """
    n, j1, j2, below = hstat.median_bins(hist, ALL)
    if n == 0:
        return np.float32(np.nan)
    k1, k2 = (n - 1) // 2, n // 2
    if mask is None:
        mask = np.zeros(values.shape, np.bool_)
    kern.value_bin_mask(values, BORDER, grid, j1, j2, mask)
    size = int(hist.reshape(kern.NCELLS, kern.BINS)[ALL, j1 : j2 + 1].sum()) + 8
    if buffer is None or buffer.size < size:
        buffer = np.empty(size, np.float32)
    chosen = buffer[: kern.gather_masked(values, mask, buffer)]
    i1, i2 = k1 - below, k2 - below
    part = np.partition(chosen, (i1, i2) if i2 != i1 else i1)
    a = np.float32(part[i1])
    if i2 == i1:
        return a
    # numpy's median of an even count: the float32 mean of the two middle values (which, like
    # numpy's, overflows to inf for two values near the float32 maximum)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.float32(np.float32(a + np.float32(part[i2])) / np.float32(2))


def _grid(sample: np.ndarray, bins_per_sigma: float) -> tuple[np.float32, np.float32]:
    """Bin grid (centre, 1/width) from a sample: median and IQR-based σ."""
    finite = sample[np.isfinite(sample)]
    if finite.size < 8:
        return np.float32(0.0), np.float32(1.0)
    ranks = (finite.size // 4, finite.size // 2, (3 * finite.size) // 4)
    q1, q2, q3 = np.partition(finite, ranks)[list(ranks)]
    center = float(q2)
    sigma = (float(q3) - float(q1)) / 1.349
    if not sigma > 0 or not np.isfinite(sigma):
        sigma = max(abs(center), 1.0) * 1e-3
    return np.float32(center), np.float32(bins_per_sigma / sigma)


_REGION_CELLS = np.array([REGIONS[name] for name in REGION_NAMES])
_MEAN_CELLS = np.array([REGIONS[name] for name in MEAN_REGIONS])
_COUNTS = ("npix", "nclip")


class ReadStatistics:
    """Statistics of the reads of one exposure, with buffers reused from read to read.

    ``shape`` is the whole array (border included); ``cells`` the science-area cell map
    (:func:`survey.scan.regions.cell_map`, source-masked pixels set to ``SOURCE_CELL``).
    Use :meth:`for_shape` to reuse one engine (and its buffers) for every exposure of a shape.
    """

    _local: ClassVar[threading.local] = threading.local()

    def __init__(self, shape: tuple[int, int], cells: np.ndarray, params: ScanParameters):
        ny, nx = shape
        area = (ny - 2 * BORDER, nx - 2 * BORDER)
        self.shape = shape
        self.area = area
        self.params = params
        self.index_c = self.index_i = None  # only for the exact fallback (rare)
        self.hist_c = np.zeros(kern.NCELLS * kern.BINS, np.int32)
        self.hist_i = np.zeros(kern.NCELLS * kern.BINS, np.int32)
        self.grid = np.zeros(4, np.float32)
        self.mask = np.zeros(shape, np.bool_)  # whole array, border always False
        self.median_buffer = np.empty(max(1, area[0] * area[1] // 16), np.float32)
        nstats = 8 + len(REGION_NAMES) + len(MEAN_REGIONS)
        self.out = np.empty(nstats, np.float64)
        self.ok = np.empty(nstats, np.bool_)
        step_y = max(1, area[0] // 48)
        step_x = max(1, area[1] // 48)
        ys, xs = np.mgrid[BORDER : ny - BORDER : step_y, BORDER : nx - BORDER : step_x]
        self._ys = ys.ravel().astype(np.int64)
        self._xs = xs.ravel().astype(np.int64)
        self.fallbacks = 0
        self._pool = None
        self._hist2 = None
        self.set_cells(cells)

    def use_threads(self, threads: int) -> None:
        """Share each read's pixel passes with a helper thread (``threads`` = 2) or not (1).

        The histograms are integer counts, so the results do not depend on it; it only pays
        when a core is free (``survey scan --jobs 1`` on a multi-core machine).
        """
        if threads > 1 and self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(1, thread_name_prefix="survey-stats")
            self._hist2 = (np.zeros_like(self.hist_c), np.zeros_like(self.hist_i))

        elif threads <= 1 and self._pool is not None:
            self._pool.shutdown()
            self._pool = None
            self._hist2 = None

    @classmethod
    def for_shape(cls, shape, cells, params) -> ReadStatistics:
        """A cached engine for arrays of ``shape`` (buffers reused), set to these cells; one
        per calling thread."""
        cache = _thread_cache(cls._local)  # never shared: threads may scan files at once
        key = (tuple(shape), params)
        engine = cache.get(key)
        if engine is None:
            if len(cache) >= 4:
                cache.clear()
            engine = cache[key] = cls(shape, cells, params)
        else:
            engine.set_cells(cells)
        return engine

    def set_cells(self, cells: np.ndarray) -> None:
        if cells.shape != self.area:
            raise ValueError(f"cell map {cells.shape} does not match science area {self.area}")
        self.cells = np.ascontiguousarray(cells, np.uint8)
        self.fallbacks = 0

    def measure(
        self,
        sci: np.ndarray,
        dq: np.ndarray,
        prev: np.ndarray | None,
        prev_dq: np.ndarray | None,
        *,
        t: float,
        t_prev: float,
        rate_units: bool,
    ) -> dict[str, float]:
        """Statistics of one read (``prev`` None for read 1). Values in e⁻/s and e⁻."""
        p = self.params
        bad = int(p.sky_bad_bits)
        sci = _contiguous(sci, np.float32)
        dq = _contiguous(dq, np.uint16)
        first = prev is None
        prev = sci if first else _contiguous(prev, np.float32)
        prev_dq = dq if first else _contiguous(prev_dq, np.uint16)
        g = np.float32(t if rate_units else 1.0)
        g_prev = np.float32(0.0 if first else (t_prev if rate_units else 1.0))
        inv_dt = np.float32(1.0 / (t - t_prev))
        to_rate = 1.0 if rate_units else 1.0 / t

        grid = self.grid
        kern.read_grid(sci, prev, g, g_prev, inv_dt, self._ys, self._xs, p.bins_per_sigma, grid)
        args = (sci, prev, dq, prev_dq, BORDER, self.cells, bad, g, g_prev, inv_dt, grid)
        self.hist_c.fill(0)
        self.hist_i.fill(0)
        rows = self.area[0]
        if self._pool is None:
            n_8192, n_32 = kern.index_and_count(*args, self.hist_c, self.hist_i, 0, rows)
        else:  # the helper thread takes the first half of the rows, with its own histograms
            hist_c2, hist_i2 = self._hist2
            hist_c2.fill(0)
            hist_i2.fill(0)
            half = rows // 2
            other = self._pool.submit(kern.index_and_count, *args, hist_c2, hist_i2, 0, half)
            n_8192, n_32 = kern.index_and_count(*args, self.hist_c, self.hist_i, half, rows)
            a, b = other.result()
            n_8192, n_32 = n_8192 + a, n_32 + b
            self.hist_c += hist_c2
            self.hist_i += hist_i2

        science = sci[BORDER:-BORDER, BORDER:-BORDER]
        n_nan = int(self.hist_c[kern.NAN_CELL * kern.BINS : (kern.NAN_CELL + 1) * kern.BINS].sum())
        median, pending = np.float32(np.nan), None
        if n_nan == 0 and self._pool is None:
            median = exact_median(sci, self.hist_c, grid, self.mask, self.median_buffer)
        elif n_nan == 0:  # by the helper thread, while this one summarises the histograms
            pending = self._pool.submit(
                exact_median, sci, self.hist_c, grid, self.mask, self.median_buffer
            )
        row: dict[str, float] = dict.fromkeys(("median_rate", "median_counts"), np.nan)
        self._family(
            row, "sky_", "", self.hist_c, grid[0], grid[1], to_rate, lambda: science, args, 0
        )
        self._family(
            row,
            "inst_",
            "inst_",
            self.hist_i,
            grid[2],
            grid[3],
            1.0,
            lambda: _inst_values(sci, prev, g, g_prev, inv_dt),
            args,
            1,
        )
        if pending is not None:
            median = pending.result()
        row["median_rate"] = float(median) * to_rate
        row["median_counts"] = float(median) * (t if rate_units else 1.0)
        npix = science.size
        row["frac_dq_8192"] = n_8192 / npix
        row["frac_dq_32"] = n_32 / npix
        row["n_nan"] = n_nan
        return row

    def _family(
        self, row, sky_prefix, region_prefix, hist, center, inv_width, scale, values, args, which
    ) -> None:
        p = self.params
        out, ok = self.out, self.ok
        hstat.summarize_family(
            hist,
            float(center),
            1.0 / float(inv_width),
            p.clip_sigma,
            p.clip_iters,
            SKY,
            _REGION_CELLS,
            _MEAN_CELLS,
            out,
            ok,
        )
        stats = out.tolist()
        if not ok.all():
            # exact numbers for the groups the histogram cannot give (extreme data: no warnings)
            with np.errstate(all="ignore"):
                self._fallback(stats, ok, self._indices(args)[which], values())
        for field, value in zip(SKY_FIELDS, stats[:8], strict=True):
            row[sky_prefix + field] = value if field in _COUNTS else value * scale
        nreg = len(REGION_NAMES)
        for name, value in zip(REGION_NAMES, stats[8 : 8 + nreg], strict=True):
            row[f"{region_prefix}{name}_median"] = value * scale
        for name, value in zip(MEAN_REGIONS, stats[8 + nreg :], strict=True):
            row[f"{region_prefix}{name}_mean"] = value * scale

    def _indices(self, args: tuple) -> tuple[np.ndarray, np.ndarray]:
        """The (cumulative, instantaneous) index arrays of a read (only the fallback needs
        them: the counting pass does not keep them)."""
        if self.index_c is None:
            self.index_c = np.empty(self.area, np.uint16)
            self.index_i = np.empty(self.area, np.uint16)
        kern.index_read(*args, self.index_c, self.index_i, 0, self.area[0])
        return self.index_c, self.index_i

    def _fallback(self, stats: list, ok: np.ndarray, index: np.ndarray, values: np.ndarray):
        p = self.params
        cells = index >> kern.BIN_BITS
        if not ok[0]:
            self.fallbacks += 1
            ref = reference_stats(
                values[SKY[cells]], clip_sigma=p.clip_sigma, clip_iters=p.clip_iters
            )
            stats[:8] = [ref[f] for f in SKY_FIELDS]
        for i, name in enumerate(REGION_NAMES):
            if not ok[8 + i]:
                self.fallbacks += 1
                chosen = values[REGIONS[name][cells]]
                stats[8 + i] = float(np.median(chosen)) if chosen.size else float("nan")
        base = 8 + len(REGION_NAMES)
        for i, name in enumerate(MEAN_REGIONS):
            if not ok[base + i]:
                self.fallbacks += 1
                stats[base + i] = _window_mean(values[REGIONS[name][cells]], stats, p.clip_sigma)


def _window_mean(values: np.ndarray, sky: list, clip_sigma: float) -> float:
    """Mean of ``values`` within the sky's clipping window (clipped median ± clip_sigma·σ)."""
    median, sigma = sky[SKY_FIELDS.index("median")], sky[SKY_FIELDS.index("sigma")]
    inside = values[np.abs(values - median) <= clip_sigma * sigma]
    return float(inside.mean()) if inside.size else float("nan")


def _inst_values(sci, prev, g, g_prev, inv_dt) -> np.ndarray:
    """The instantaneous rates of the science area, as :func:`_kernels.index_inst` makes them."""
    s = sci[BORDER:-BORDER, BORDER:-BORDER]
    if g_prev == 0:
        return (s * g) * inv_dt
    return (s * g - prev[BORDER:-BORDER, BORDER:-BORDER] * g_prev) * inv_dt


def _thread_cache(local: threading.local) -> dict:
    """The calling thread's own cache dictionary in ``local``."""
    cache = getattr(local, "cache", None)
    if cache is None:
        cache = local.cache = {}
    return cache


def _contiguous(array: np.ndarray, dtype) -> np.ndarray:
    """A C-contiguous array of ``dtype`` (hstio constant arrays arrive as broadcast views)."""
    if array.dtype == dtype and array.flags.c_contiguous:
        return array
    return np.ascontiguousarray(array, dtype=dtype)


def image_sky_stats(
    values: np.ndarray, good: np.ndarray, params: ScanParameters, *, dq=None, mask=None
) -> dict:
    """Sky statistics (as :func:`reference_stats`) of one image, e.g. an FLT's science area.

    ``good`` marks the pixels to use (sky-good DQ, not a source); non-finite values never
    count. Histogram-based like the per-read statistics, with the same exact fallback. With
    ``good=None`` the pixels are chosen in the counting pass itself, from ``dq`` (no
    ``params.sky_bad_bits`` bit) and ``mask`` (0, if it has the image's shape); then
    ``npix_dq_32`` (pixels with DQ 32) is returned too.
    """
    values = _contiguous(values, np.float32)
    ys, xs = np.mgrid[
        0 : values.shape[0] : max(1, values.shape[0] // 48),
        0 : values.shape[1] : max(1, values.shape[1] // 48),
    ]
    center, inv_width = _grid(values[ys.ravel(), xs.ravel()], params.bins_per_sigma)
    from_dq = good is None
    bad_bits = int(params.sky_bad_bits)
    if from_dq:
        mask = np.zeros((0, 0), np.uint8) if mask is None else mask
    else:  # "bad" = not good, as a DQ bit
        dq = np.asarray(good, np.uint8) ^ np.uint8(1)
        mask, bad_bits = np.zeros((0, 0), np.uint8), 1
    hist = np.zeros(kern.BINS, np.int64)
    n32 = kern.count_sky(values, dq, mask, bad_bits, center, inv_width, hist)
    out = np.empty(8, np.float64)
    ok = hstat.full_stats(
        hist,
        float(center),
        1.0 / float(inv_width),
        params.clip_sigma,
        params.clip_iters,
        out,
    )
    if ok:
        stats = dict(zip(SKY_FIELDS, (float(v) for v in out), strict=True))
    else:
        if from_dq:
            good = (np.asarray(dq) & params.sky_bad_bits) == 0
            if mask.shape == values.shape:
                good &= mask == 0
        stats = reference_stats(
            values[good & np.isfinite(values)],
            clip_sigma=params.clip_sigma,
            clip_iters=params.clip_iters,
        )
    return {**stats, "npix_dq_32": n32} if from_dq else stats
