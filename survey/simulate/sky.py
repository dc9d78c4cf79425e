"""The infrared sky of one exposure: zodi, He I airglow and Earth-limb scattered light.

Time profiles are exact piecewise-linear functions, so the injected counts of any read
interval and the truth tables come from the same closed-form integral (no quadrature error).
Times are seconds since the zeroth read.

Spatial shapes (domain reference §1): zodi and He I are flat in imaging; limb light falls off
from the left edge of the detector; in the grisms zodi and He I each have their own smooth 2-D
dispersed pattern, which is why flatten-ramp must not be used there.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..wfc3ir.detector import BORDER, FULL_FRAME
from ..wfc3ir.model import GRISMS

__all__ = [
    "IBOHBFB9Q_HE",
    "TimeProfile",
    "array_origin",
    "grism_background_shape",
    "scattered_shape",
]


def _ramp_antiderivative(t: np.ndarray, t0: float, width: float) -> np.ndarray:
    """∫ clip((s - t0)/width, 0, 1) ds from -inf to t (width 0 is a step at t0)."""
    x = np.asarray(t, dtype=np.float64) - t0
    if width <= 0:
        return np.maximum(x, 0.0)
    u = np.clip(x / width, 0.0, 1.0)
    return np.where(x <= width, 0.5 * width * u * u, x - 0.5 * width)


@dataclass(frozen=True)
class TimeProfile:
    """Excess rate against time: ``none``, ``rising``, ``decaying`` or ``step``.

    ``rising``/``step``: 0 until ``t0``, then a linear rise over ``width`` s to ``amplitude``
    (a step has width ≈ 0). ``decaying``: ``amplitude`` until ``t0``, then a linear fall to 0
    over ``width`` s (``t0`` ≤ 0 means it is already falling at the zeroth read).
    """

    kind: str = "none"
    amplitude: float = 0.0
    t0: float = 0.0
    width: float = 0.0

    @property
    def active(self) -> bool:
        return self.kind != "none" and self.amplitude > 0

    def rate(self, t: np.ndarray | float) -> np.ndarray:
        """Instantaneous excess rate (e-/s) at times ``t``."""
        t = np.asarray(t, dtype=np.float64)
        if not self.active:
            return np.zeros_like(t)
        if self.width <= 0:
            up = (t >= self.t0).astype(np.float64)
        else:
            up = np.clip((t - self.t0) / self.width, 0.0, 1.0)
        return self.amplitude * (1.0 - up if self.kind == "decaying" else up)

    def integral(self, t: np.ndarray | float) -> np.ndarray:
        """Excess charge ∫_0^t rate (e-) accumulated since the zeroth read."""
        t = np.asarray(t, dtype=np.float64)
        if not self.active:
            return np.zeros_like(t)
        ramp = _ramp_antiderivative(t, self.t0, self.width) - _ramp_antiderivative(
            np.zeros_like(t), self.t0, self.width
        )
        return self.amplitude * (t - ramp if self.kind == "decaying" else ramp)

    def interval_means(self, times: np.ndarray) -> np.ndarray:
        """Mean excess rate in each read interval (t_{k-1}, t_k], k = 1..N-1."""
        times = np.asarray(times, dtype=np.float64)
        return np.diff(self.integral(times)) / np.diff(times)

    def peak(self, t_end: float) -> float:
        """Largest instantaneous excess within [0, t_end] (0 for ``none``)."""
        if not self.active:
            return 0.0
        # piecewise linear: the maximum sits on a breakpoint or an end
        breaks = np.clip([0.0, self.t0, self.t0 + self.width, t_end], 0.0, t_end)
        return float(self.rate(breaks).max())


#: He I of ibohbfb9q (domain reference §1): flat 0.47 e-/s zodi for ~200 s, then a rise over
#: ~500 s to ≈1.5 e-/s above zodi (instantaneous ≈2 e-/s) until the end of the 1600-s STEP200.
IBOHBFB9Q_HE = TimeProfile("rising", amplitude=1.5, t0=200.0, width=500.0)


def array_origin(size: int) -> int:
    """Full-frame (1024²) index of pixel 0 of a centred array of ``size`` (incl. border)."""
    return (FULL_FRAME - size) // 2


def _science_coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Full-frame *science* coordinates (0 at the first science pixel) of an array's pixels."""
    full = np.arange(size, dtype=np.float64) + array_origin(size) - BORDER
    return full, full


def scattered_shape(size: int, edge: float, softness: float) -> np.ndarray:
    """Limb-light pattern of a centred array, (size, size), 1.0 at its brightest science pixel.

    A logistic fall-off in full-frame science columns: bright on the left, half at ``edge``,
    decaying over ``softness`` columns, with a mild ±10% top-to-bottom gradient. It is fixed to
    the detector, so a subarray sees only its own slice, renormalised so that the planted
    amplitude is the in-array peak. The reference border gets 0.
    """
    ys, xs = _science_coords(size)
    column = 1.0 / (1.0 + np.exp((xs - edge) / softness))
    row = 1.0 + 0.1 * (ys - 507.0) / 507.0
    shape = row[:, None] * column[None, :]
    shape[:BORDER] = shape[-BORDER:] = 0.0
    shape[:, :BORDER] = shape[:, -BORDER:] = 0.0
    return shape / shape.max()


def _grism_pattern(x: np.ndarray, y: np.ndarray, component: str) -> np.ndarray:
    """Unnormalised pattern on coordinates scaled to -1..1 over the full-frame science area."""
    if component == "zodi":
        return (
            1.0 + 0.10 * x - 0.15 * x**2 + 0.05 * y - 0.08 * y**2 + 0.04 * np.sin(2.5 * np.pi * x)
        )
    return (
        1.0
        + 0.35 * x
        - 0.25 * x**2
        + 0.12 * y
        + 0.15 * np.sin(3 * np.pi * x + 0.5) * (1 - 0.3 * y**2)
    )


@lru_cache(maxsize=4)
def _grism_norm(component: str) -> float:
    """Mean of a pattern over the full-frame science area, so that zodi means the mean level."""
    c = (np.arange(FULL_FRAME - 2 * BORDER) - 506.5) / 506.5
    return float(_grism_pattern(c[None, :], c[:, None], component).mean())


def grism_background_shape(filter_name: str, component: str, size: int) -> np.ndarray:
    """Smooth 2-D dispersed background pattern (mean 1 over the full-frame science area).

    ``component`` is ``zodi`` or ``he``: the two differ, like the G102/G141 master skies of
    ISR 2015-17, so no single per-read scalar straightens every pixel. Imaging gets ones.
    """
    if filter_name not in GRISMS:
        return np.ones((size, size))
    ys, xs = _science_coords(size)
    x = (xs[None, :] - 506.5) / 506.5
    y = (ys[:, None] - 506.5) / 506.5
    return _grism_pattern(x, y, component) / _grism_norm(component)
