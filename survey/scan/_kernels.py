"""Numba kernels of the scanner: one vectorised pass per read turns pixels into indices.

Every pixel of the analysed area gets a 16-bit *index* ``cell << 12 | bin``:

- ``bin`` (12 bits, 0..4095): the value's position on a linear grid of :data:`BINS` bins of
  width ``w`` whose bin :data:`HALF` starts at ``c`` (``bin = clamp((v − c)/w + HALF)``,
  float32 arithmetic). Both numbers come from a small sample of the read, so the sky sits in
  the middle with ``w`` ≈ σ/32 and the grid spans about ±64σ. Float arithmetic, the clamp and
  the truncation are all monotone, so every value in bin j is ≤ every value in bin j + 1:
  an exact order statistic only needs the values of the one or two bins that hold it.
- ``cell`` (4 bits): which statistics the pixel feeds. 0..7 are sky pixels by region
  (``2·quadrant + in_box``, quadrants A, B, C, D), :data:`SOURCE_CELL` a pixel under the
  source mask, :data:`BAD_CELL` a pixel with a bad DQ bit or an infinite value,
  :data:`NAN_CELL` a NaN.

:func:`index_and_count` indexes both families of a read row by row into two small row
buffers (a loop LLVM vectorises, :func:`_index_row`) and counts them at once into two
(:data:`NCELLS` × :data:`BINS`) histograms, so no index array goes through memory; a read of
10⁶ pixels costs about 1.4 ms, most of it the 2·10⁶ scattered increments (one thread per half
of the rows when a core is free). :func:`index_read` keeps the index arrays, for the rare exact
fallback. All kernels are ``nogil`` and cached on disk.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "BAD_CELL",
    "BINS",
    "BIN_BITS",
    "HALF",
    "NAN_CELL",
    "NCELLS",
    "SOURCE_CELL",
    "background_residual",
    "box_mean3",
    "byteswap_inplace",
    "count_sky",
    "gather_masked",
    "index_and_count",
    "index_read",
    "last_read_image",
    "mark_cells",
    "read_grid",
    "threshold_dilate",
    "value_bin_mask",
]

BIN_BITS = 12
BINS = 1 << BIN_BITS
HALF = BINS // 2
NCELLS = 16
SOURCE_CELL = 8
BAD_CELL = 9
NAN_CELL = 10


@njit(cache=True, nogil=True)
def _index_row(
    srow, prow, drow, pdrow, crow, bad_bits, g, g_prev, inv_dt, c_cum, w_cum, c_inst, w_inst,
    ocum, oinst,
):  # fmt: skip
    """Index one row of both families (see :func:`index_read`); returns its DQ 8192/32 counts."""
    nx = ocum.shape[0]
    half = np.float32(HALF)
    top = np.float32(BINS - 1)
    zero = np.float32(0.0)
    inf = np.float32(np.inf)
    r8192 = np.int32(0)
    r32 = np.int32(0)
    for x in range(nx):
        v = srow[x]
        d = np.int32(drow[x])
        r8192 += (d >> 13) & 1
        r32 += (d >> 5) & 1
        region = np.int32(crow[x])
        cell = np.int32(BAD_CELL) if (d & bad_bits) != 0 or abs(v) == inf else region
        cell = np.int32(NAN_CELL) if v != v else cell
        b = (v - c_cum) * w_cum + half
        b = min(max(b, zero), top)
        b = b if v == v else zero
        ocum[x] = np.uint16((cell << BIN_BITS) | np.int32(b))
        r = (v * g - prow[x] * g_prev) * inv_dt
        d2 = d | np.int32(pdrow[x])
        cell = np.int32(BAD_CELL) if (d2 & bad_bits) != 0 or abs(r) == inf else region
        cell = np.int32(NAN_CELL) if r != r else cell
        b = (r - c_inst) * w_inst + half
        b = min(max(b, zero), top)
        b = b if r == r else zero
        oinst[x] = np.uint16((cell << BIN_BITS) | np.int32(b))
    return r8192, r32


@njit(cache=True, nogil=True)
def index_read(
    sci, prev, dq, pdq, border, cellmap, bad_bits, g, g_prev, inv_dt, grid, out_cum, out_inst,
    y0, y1,
):  # fmt: skip
    """Index rows ``y0:y1`` of one read's area ``[border:-border]`` (both axes), in one pass.

    ``out_cum`` gets SCI itself (file units), ``out_inst`` the instantaneous rate
    r = (SCI·g − PREV·g_prev)·inv_dt of the interval (float32 arithmetic). ``g`` turns SCI
    into counts since the zeroth read (SAMPTIME for a rate BUNIT, 1 for counts) and ``inv_dt``
    is 1/(t_k − t_{k−1}). For the first read pass ``prev is sci``, ``pdq is dq`` and
    ``g_prev = 0`` (C_0 ≡ 0: the zeroth read is never needed). ``grid`` is float32
    [c_cum, 1/w_cum, c_inst, 1/w_inst]. A pixel is a sky pixel of r only if it is good in
    both reads. Returns the numbers of pixels with DQ 8192 and with DQ 32.
    """
    nx = out_cum.shape[1]
    bad_bits = np.int32(bad_bits)
    first = g_prev == np.float32(0.0)
    c_cum, w_cum, c_inst, w_inst = grid[0], grid[1], grid[2], grid[3]
    n8192 = 0
    n32 = 0
    for y in range(y0, y1):
        a, b = _index_row(
            sci[y + border, border : border + nx],
            (sci if first else prev)[y + border, border : border + nx],
            dq[y + border, border : border + nx],
            (dq if first else pdq)[y + border, border : border + nx],
            cellmap[y], bad_bits, g, g_prev, inv_dt, c_cum, w_cum, c_inst, w_inst,
            out_cum[y], out_inst[y],
        )  # fmt: skip
        n8192 += a
        n32 += b
    return n8192, n32


@njit(cache=True, nogil=True)
def _grid_from(values, n, bins_per_sigma, grid, at):
    """Centre and 1/width of a bin grid from n sample values: median and IQR/1.349 / bins."""
    if n < 8:
        grid[at] = 0.0
        grid[at + 1] = 1.0
        return
    v = np.sort(values[:n])
    q1 = np.float64(v[n // 4])
    q2 = np.float64(v[n // 2])
    q3 = np.float64(v[(3 * n) // 4])
    sigma = (q3 - q1) / 1.349
    if not (sigma > 0.0 and sigma < np.inf):
        sigma = max(abs(q2), 1.0) * 1e-3
    grid[at] = q2
    grid[at + 1] = bins_per_sigma / sigma


@njit(cache=True, nogil=True)
def read_grid(sci, prev, g, g_prev, inv_dt, ys, xs, bins_per_sigma, grid):
    """Bin grids of one read from a fixed sample of pixels (ys, xs of the whole array):
    grid = float32 [c_cum, 1/w_cum, c_inst, 1/w_inst], as :func:`index_read` wants them."""
    m = ys.size
    cum = np.empty(m, np.float32)
    inst = np.empty(m, np.float32)
    n_cum = 0
    n_inst = 0
    zero = np.float32(0.0)
    for i in range(m):
        v = sci[ys[i], xs[i]]
        p = zero if g_prev == zero else prev[ys[i], xs[i]]
        r = (v * g - p * g_prev) * inv_dt
        if abs(v) < np.inf:
            cum[n_cum] = v
            n_cum += 1
        if abs(r) < np.inf:
            inst[n_inst] = r
            n_inst += 1
    _grid_from(cum, n_cum, bins_per_sigma, grid, 0)
    _grid_from(inst, n_inst, bins_per_sigma, grid, 2)


@njit(cache=True, nogil=True)
def index_and_count(
    sci, prev, dq, pdq, border, cellmap, bad_bits, g, g_prev, inv_dt, grid, hist_cum, hist_inst,
    y0, y1,
):  # fmt: skip
    """:func:`index_read` and counting of rows ``y0:y1`` fused row by row: the indices of a row
    go to two small buffers (vectorised) that are counted at once, so no index array is
    written or read back (one call per thread: two threads can each take half the rows, with
    their own histograms). Returns the numbers of pixels with DQ 8192 and with DQ 32."""
    nx = cellmap.shape[1]
    bad_bits = np.int32(bad_bits)
    first = g_prev == np.float32(0.0)
    c_cum, w_cum, c_inst, w_inst = grid[0], grid[1], grid[2], grid[3]
    row_cum = np.empty(nx, np.uint16)
    row_inst = np.empty(nx, np.uint16)
    n8192 = 0
    n32 = 0
    for y in range(y0, y1):
        a, b = _index_row(
            sci[y + border, border : border + nx],
            (sci if first else prev)[y + border, border : border + nx],
            dq[y + border, border : border + nx],
            (dq if first else pdq)[y + border, border : border + nx],
            cellmap[y], bad_bits, g, g_prev, inv_dt, c_cum, w_cum, c_inst, w_inst,
            row_cum, row_inst,
        )  # fmt: skip
        n8192 += a
        n32 += b
        for x in range(nx):
            hist_cum[row_cum[x]] += 1
            hist_inst[row_inst[x]] += 1
    return n8192, n32


@njit(cache=True, nogil=True)
def value_bin_mask(values, border, grid, lo_bin, hi_bin, out):
    """out[border:-border, border:-border] = the cumulative-family bin of the value (as
    :func:`index_read` makes it from ``grid``) is in [lo_bin, hi_bin], NaNs excluded.

    ``out`` is a whole-array bool mask whose border stays untouched (False), so that the
    values can be picked with ``np.compress`` from the contiguous whole array: several times
    faster than boolean indexing of a strided science-area view.
    """
    ny = values.shape[0] - 2 * border
    nx = values.shape[1] - 2 * border
    half = np.float32(HALF)
    top = np.float32(BINS - 1)
    zero = np.float32(0.0)
    c_cum, w_cum = grid[0], grid[1]
    lo = np.int32(lo_bin)
    span = np.uint32(hi_bin - lo_bin)
    for y in range(ny):
        vrow = values[y + border, border : border + nx]
        orow = out[y + border, border : border + nx]
        for x in range(nx):
            v = vrow[x]
            b = (v - c_cum) * w_cum + half
            b = min(max(b, zero), top)
            orow[x] = (np.uint32(np.int32(b) - lo) <= span) & (v == v)


@njit(cache=True, nogil=True)
def count_sky(values, dq, mask, bad_bits, center, inv_width, hist):
    """hist[bin] += 1 (bins as :func:`index_read`) for the sky pixels of an image: finite,
    no ``bad_bits`` DQ bit and, if ``mask`` has the image's shape, mask 0. One pass, no
    temporary arrays; returns the number of pixels with DQ 32."""
    ny, nx = values.shape
    half = np.float32(HALF)
    top = np.float32(BINS - 1)
    zero = np.float32(0.0)
    inf = np.float32(np.inf)
    bad_bits = np.int32(bad_bits)
    use_mask = mask.shape[0] == ny and mask.shape[1] == nx
    n32 = 0
    for y in range(ny):
        for x in range(nx):
            v = values[y, x]
            d = np.int32(dq[y, x])
            n32 += (d >> 5) & 1
            if (d & bad_bits) != 0 or not abs(v) < inf or (use_mask and mask[y, x] != 0):
                continue
            b = (v - center) * inv_width + half
            b = min(max(b, zero), top)
            hist[np.int32(b)] += 1
    return n32


@njit(cache=True, nogil=True)
def last_read_image(sci, dq, border, bad_bits, scale, image, good):
    """Science area of the last read in rate units (``image`` = SCI·scale) and its sky-good
    pixels (no ``bad_bits`` DQ bit, finite), into preallocated arrays."""
    ny, nx = image.shape
    bad_bits = np.int32(bad_bits)
    scale = np.float32(scale)
    for y in range(ny):
        srow = sci[y + border, border : border + nx]
        drow = dq[y + border, border : border + nx]
        irow = image[y]
        grow = good[y]
        for x in range(nx):
            v = srow[x] * scale
            irow[x] = v
            grow[x] = (np.int32(drow[x]) & bad_bits) == 0 and abs(v) < np.inf


@njit(cache=True, nogil=True)
def box_mean3(image, good, fill, clean, rows, out):
    """out = 3×3 box mean of ``image`` (float32), bad pixels (``good`` false) replaced by
    ``fill``; edge pixels average the part of the box inside the image. ``clean`` and
    ``rows`` are work arrays of the same shape (preallocated: fresh memory is slow to touch).
    """
    ny, nx = image.shape
    fill = np.float32(fill)
    for y in range(ny):
        irow = image[y]
        grow = good[y]
        crow = clean[y]
        for x in range(nx):
            crow[x] = irow[x] if grow[x] else fill
    third = np.float32(1.0 / 3.0)
    half = np.float32(0.5)
    for y in range(ny):
        c = clean[y]
        r = rows[y]
        for x in range(1, nx - 1):
            r[x] = (c[x - 1] + c[x] + c[x + 1]) * third
        r[0] = (c[0] + c[1]) * half
        r[nx - 1] = (c[nx - 2] + c[nx - 1]) * half
    for y in range(ny):
        lo = max(y - 1, 0)
        hi = min(y + 1, ny - 1)
        scale = np.float32(1.0 / (hi - lo + 1))
        o = out[y]
        for x in range(nx):
            o[x] = rows[lo, x] + rows[hi, x]
        if hi - lo == 2:
            m = rows[y]
            for x in range(nx):
                o[x] += m[x]
        for x in range(nx):
            o[x] *= scale


@njit(cache=True, nogil=True)
def threshold_dilate(image, threshold, radius, rows, out):
    """out = (image > threshold) grown by ``radius`` pixels (square), as uint8 0/1.

    ``rows`` is a uint8 work array of the same shape. Separable: OR along rows, then columns.
    """
    ny, nx = image.shape
    thr = np.float32(threshold)
    for y in range(ny):
        src = image[y]
        dst = out[y]
        for x in range(nx):
            dst[x] = np.uint8(src[x] > thr)
    for y in range(ny):
        src = out[y]
        dst = rows[y]
        for x in range(nx):
            dst[x] = src[x]
        for d in range(1, min(radius, nx - 1) + 1):
            left = dst[: nx - d]
            right = src[d:]
            for x in range(nx - d):
                left[x] |= right[x]
            left = dst[d:]
            right = src[: nx - d]
            for x in range(nx - d):
                left[x] |= right[x]
    for y in range(ny):
        dst = out[y]
        lo = max(0, y - radius)
        hi = min(ny, y + radius + 1)
        first = rows[lo]
        for x in range(nx):
            dst[x] = first[x]
        for yy in range(lo + 1, hi):
            src = rows[yy]
            for x in range(nx):
                dst[x] |= src[x]


@njit(cache=True, nogil=True)
def gather_masked(values, mask, out):
    """out[:n] = the values where ``mask`` (bool, same shape, C-contiguous) is set, in
    row-major order; returns n. ``out`` needs 8 spare slots beyond n.

    For a sparse mask (an exact median's one or two bins: ~1 % of the pixels) this is several
    times faster than ``np.compress``: the mask is scanned 8 flags at a time and the values of
    a word with a flag are copied without branches (a slot is kept only if flagged).
    """
    flat = values.reshape(-1)
    flags = mask.reshape(-1).view(np.uint8)
    size = flat.shape[0]
    nwords = size // 8
    words = flags[: nwords * 8].view(np.uint64)
    n = 0
    for i in range(nwords):
        if words[i] != 0:
            for x in range(8 * i, 8 * i + 8):
                out[n] = flat[x]
                n += flags[x]
    for x in range(nwords * 8, size):
        out[n] = flat[x]
        n += flags[x]
    return n


@njit(cache=True, nogil=True)
def background_residual(coarse, y_low, y_high, y_weight, x_low, x_high, x_weight, image, rows,
                        background, residual):  # fmt: skip
    """Bilinear interpolation of a coarse grid of cell values onto the image's pixels, and the
    image minus it, into preallocated arrays (float32 arithmetic throughout).

    ``rows`` (ny × gx) first gets ``a + (b − a)·w`` along y from rows ``y_low``/``y_high`` of
    ``coarse``; ``background`` then the same along x from columns ``x_low``/``x_high`` of
    ``rows``, so every value is the one the equivalent numpy expressions give.
    """
    ny, nx = image.shape
    gx = coarse.shape[1]
    for y in range(ny):
        w = y_weight[y]
        for j in range(gx):
            a = coarse[y_low[y], j]
            rows[y, j] = a + (coarse[y_high[y], j] - a) * w
    for y in range(ny):
        r = rows[y]
        for x in range(nx):
            a = r[x_low[x]]
            v = a + (r[x_high[x]] - a) * x_weight[x]
            background[y, x] = v
            residual[y, x] = image[y, x] - v


@njit(cache=True, nogil=True)
def mark_cells(cells, mask, value):
    """cells[mask != 0] = value (both science-area shaped)."""
    ny, nx = cells.shape
    for y in range(ny):
        for x in range(nx):
            if mask[y, x] != 0:
                cells[y, x] = value


@njit(cache=True, nogil=True)
def byteswap_inplace(words):
    """Reverse the bytes of every element of a flat uint16/uint32 array, in place.

    FITS data are big-endian; this is ~8× faster than ``ndarray.byteswap`` and releases the
    GIL (the scanner's loader thread runs it while the kernels measure the previous read).
    """
    if words.itemsize == 2:
        for i in range(words.size):
            x = words[i]
            words[i] = (x >> 8) | (x << 8)
    else:
        for i in range(words.size):
            x = words[i]
            words[i] = ((x >> 24) & 0xFF) | ((x >> 8) & 0xFF00) | ((x << 8) & 0xFF0000) | (x << 24)
