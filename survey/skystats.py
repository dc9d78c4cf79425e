"""Statistics of an FLT's sky pixels: the robust ones and the seed notebook's (pure numpy).

Two kinds of σ describe the same sky, and they answer different questions:

- **robust σ** = 1.4826·MAD of the 3σ-clipped pixels (:func:`robust_stats`). It measures the
  width of the sky's *core* and is blind to wings: a ramp fit broken by He I leaves a narrow
  core with broad, skewed wings (pixels whose ramp CRCORR cut at a false "CR" and pixels it did
  not), so the robust σ barely changes when flatten-ramp repairs it.
- **window std** (the STScI flatten-ramp notebook's statistic; domain reference §1): the plain
  mean and standard deviation of the sky pixels inside a fixed window of the sky level. The
  notebook takes 0–1 e⁻/s for a 0.47 e⁻/s sky and 1–2 e⁻/s for a 1.5 e⁻/s sky; here the window
  is median ± ``window`` (default ± 0.5 e⁻/s, 1 e⁻/s wide), centred on the clipped median. It
  sees the wings, so it is the number to compare with the notebook's (ibohbfb9q: archive
  0.1694 → flattened 0.0457 e⁻/s, unaffected 0.0379).

The inputs are the already-selected sky pixel values (e.g. finite, DQ-good, outside the source
mask); selecting them is the caller's business. This module imports only numpy, so both
``survey scan`` and ``survey fix`` use it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["MAD_TO_SIGMA", "WINDOW", "SkyStats", "robust_stats", "sky_statistics"]

MAD_TO_SIGMA = 1.4826
#: e⁻/s: half-width of the notebook window, median ± WINDOW (1 e⁻/s wide).
WINDOW = 0.5


class SkyStats(NamedTuple):
    median: float
    mean: float
    sigma: float
    npix: int


def robust_stats(
    data: np.ndarray, *, nsigma: float = 3.0, maxiters: int = 10, sample_size: int = 50_000
) -> SkyStats:
    """σ-clipped median, mean and robust σ (1.4826·MAD) of ``data`` (finite, non-empty).

    The clip limits (median ± ``nsigma``·σ, iterated until nothing changes) and σ come from a
    regular sample of at most ``sample_size`` values (the error of the limits, ~σ/√n, is far
    below the clip width); the median and mean are those of *every* value inside the limits.
    ``npix`` counts the values kept.
    """
    data = np.asarray(data).ravel()
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


def sky_statistics(values: np.ndarray, *, window: float = WINDOW) -> dict[str, float | None]:
    """Sky statistics of already-selected sky pixel values (e⁻/s; non-finite ones ignored).

    Returns a dict (``None`` where undefined, e.g. no pixel):

    - ``median``: 3σ-clipped median; ``sigma``: 1.4826·MAD of the clipped values (robust σ);
    - ``bimodality``: (clipped mean − clipped median)/``sigma``, far from 0 for a skewed sky;
    - ``npix``: the finite values given;
    - ``mean``, ``std``: the notebook statistics, the plain mean and standard deviation
      (ddof = 0) of the values within ``median ± window`` (limits included; default ± 0.5 e⁻/s,
      a window 1 e⁻/s wide centred on the median);
    - ``npix_window``: the values in that window.
    """
    data = np.asarray(values).ravel()
    data = data[np.isfinite(data)]
    out: dict[str, float | None] = dict.fromkeys(
        ("median", "sigma", "bimodality", "mean", "std"), None
    )
    out.update(npix=int(data.size), npix_window=0)
    if data.size == 0:
        return out
    robust = robust_stats(data)
    inside = data[np.abs(data - robust.median) <= window].astype(np.float64)
    out.update(median=robust.median, sigma=robust.sigma, npix_window=int(inside.size))
    if robust.sigma > 0:
        out["bimodality"] = (robust.mean - robust.median) / robust.sigma
    if inside.size:
        out.update(mean=float(inside.mean()), std=float(inside.std()))
    return out
