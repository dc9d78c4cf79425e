"""Compact before/after products of a fixed exposure, made by ``survey fix`` for the report.

The report is built from the catalog alone, so ``survey fix`` stores per fixed exposure (table
``fix_images``, ``sql/006_fix_images.sql``):

- the sky histograms of the archive FLT and of the corrected FLT on *common* bins (the same sky
  pixels as ``fixes.before_sigma``/``after_sigma``: finite, DQ-good, outside the source mask);
- a central cutout of both FLTs as 8-bit grey PNGs with one shared stretch: each image minus
  its own sky median, divided by the *corrected* sky σ, through an asinh (faint noise linear,
  stars compressed). With one scale for both, the archive FLT's extra noise shows as extra
  grain; subtracting each median keeps its biased sky level from merely looking brighter.

Pure numpy and zlib (no imaging library): the PNG encoder writes 8-bit greyscale.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = [
    "CUTOUT_SIZE",
    "HIST_BINS",
    "STRETCH_MAX",
    "STRETCH_MIN",
    "centre_cutout",
    "encode_png",
    "fix_images",
    "histogram_range",
    "sky_histogram",
    "stretch",
]

#: Side of the central cutout (native FLT pixels).
CUTOUT_SIZE = 192
#: Bins of the stored sky histograms.
HIST_BINS = 80
#: Display range of the stretch, in units of the corrected sky σ around each image's sky.
STRETCH_MIN, STRETCH_MAX = -4.0, 40.0
_SOFTENING = 3.0  # σ: below this the asinh stretch is nearly linear


def encode_png(gray: np.ndarray) -> bytes:
    """An 8-bit greyscale PNG of a 2-D uint8 array (row 0 at the top)."""
    image = np.ascontiguousarray(gray, dtype=np.uint8)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"expected a non-empty 2-D array, got shape {image.shape}")
    height, width = image.shape
    # every scanline starts with filter type 0 (none)
    raw = np.zeros((height, width + 1), dtype=np.uint8)
    raw[:, 1:] = image

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), 9))
        + chunk(b"IEND", b"")
    )


def centre_cutout(shape: tuple[int, int], size: int = CUTOUT_SIZE) -> tuple[int, int, int]:
    """(x0, y0, side) of the central square cutout of an image of ``shape`` (ny, nx)."""
    ny, nx = shape
    side = min(size, ny, nx)
    return (nx - side) // 2, (ny - side) // 2, side


def stretch(image: np.ndarray, sky: float, sigma: float) -> np.ndarray:
    """uint8 display values: asinh of (image − sky)/σ between STRETCH_MIN and STRETCH_MAX σ.

    Bad values (NaN) become black. FITS row 0 is the bottom of the sky: rows are flipped so
    the PNG shows north-up the way DS9 does.
    """
    scaled = (np.asarray(image, dtype=np.float64) - sky) / sigma
    lo, hi = (np.arcsinh(v / _SOFTENING) for v in (STRETCH_MIN, STRETCH_MAX))
    values = (np.arcsinh(np.nan_to_num(scaled, nan=STRETCH_MIN) / _SOFTENING) - lo) / (hi - lo)
    return (np.clip(values, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)[::-1]


def histogram_range(stats: list[dict], width: float = 5.0) -> tuple[float, float] | None:
    """Common bins for several skies: median ± ``width``·σ of each, union of the ranges."""
    usable = [s for s in stats if s.get("median") is not None and s.get("sigma")]
    if not usable:
        return None
    lo = min(s["median"] - width * s["sigma"] for s in usable)
    hi = max(s["median"] + width * s["sigma"] for s in usable)
    return float(lo), float(hi)


def sky_histogram(
    sci: np.ndarray, bad: np.ndarray, lo: float, hi: float, bins: int = HIST_BINS
) -> list[int]:
    """Counts of the good pixels of ``sci`` in ``bins`` equal bins over [lo, hi)."""
    values = sci[~bad]
    counts, _ = np.histogram(values[np.isfinite(values)], bins=bins, range=(lo, hi))
    return [int(c) for c in counts]


def fix_images(before, after, bad_before, bad_after, stats_before: dict, stats_after: dict):
    """Catalog values (``fix_images`` columns) for one fixed exposure.

    ``before``/``after`` are the FLT science arrays (``before`` may be None: no archive FLT),
    ``bad_*`` the masks of non-sky pixels, ``stats_*`` as ``flt_sky_stats``.
    """
    sigma = stats_after.get("sigma")
    if not sigma or stats_after.get("median") is None:
        return {}
    have_before = before is not None and stats_before.get("median") is not None
    span = histogram_range([stats_after, stats_before] if have_before else [stats_after])
    x0, y0, side = centre_cutout(after.shape)
    window = (slice(y0, y0 + side), slice(x0, x0 + side))
    row = {
        "hist_lo": span[0],
        "hist_hi": span[1],
        "after_hist": sky_histogram(after, bad_after, *span),
        "cutout_x0": x0,
        "cutout_y0": y0,
        "cutout_size": side,
        "stretch_sigma": float(sigma),
        "after_png": encode_png(stretch(after[window], stats_after["median"], sigma)),
        "before_hist": None,
        "before_png": None,
    }
    if have_before and before.shape == after.shape:
        row["before_hist"] = sky_histogram(before, bad_before, *span)
        row["before_png"] = encode_png(stretch(before[window], stats_before["median"], sigma))
    return row
