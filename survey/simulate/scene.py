"""Astrophysical scenes: stars and galaxies as noiseless rate images (e-/s, flat-fielded).

A :class:`Catalog` is drawn once per visit in full-frame detector pixels (0-based, 1024²
including the border) over an area wider than the detector, so dithers and grism traces bring
sources in from outside. :func:`render_scene` paints one exposure: the catalog shifted by the
exposure's dither, cropped to its (sub)array, and for a grism dispersed along x.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..wfc3ir.detector import BORDER, FULL_FRAME
from .config import SceneConfig
from .sky import array_origin

__all__ = ["Catalog", "make_catalog", "render_scene"]

#: Extra catalog area around the detector (px): grism traces reach ~250 px sideways.
MARGIN_X, MARGIN_Y = 260, 30
#: Grism traces as (first-order start, end, zeroth-order offset) in px from the direct position,
#: 90% of the flux spread over the first order and 2% in the zeroth (plausible, not calibrated).
TRACES = {"G102": (45, 205, -250), "G141": (35, 170, -190)}
FIRST_ORDER, ZEROTH_ORDER = 0.90, 0.02


@dataclass(frozen=True)
class Catalog:
    """Sources of one visit. Stars: x, y, flux. Galaxies add r_e (px), Sersic n, axis ratio
    q and position angle theta (rad). Fluxes are e-/s in the visit's filter."""

    stars: dict[str, np.ndarray]
    galaxies: dict[str, np.ndarray]


def _power_law(rng: np.random.Generator, n: int, limits: tuple[float, float], slope: float):
    """Fluxes with N(>F) ∝ F^-slope between limits (inverse-transform sampling)."""
    lo, hi = limits
    u = rng.random(n)
    a, b = lo**-slope, hi**-slope
    return (a - u * (a - b)) ** (-1.0 / slope)


def make_catalog(rng: np.random.Generator, scene: SceneConfig, *, crowded: bool) -> Catalog:
    """Draw stars and galaxies at the configured full-frame densities."""
    width, height = FULL_FRAME + 2 * MARGIN_X, FULL_FRAME + 2 * MARGIN_Y
    scale = width * height / (FULL_FRAME - 2 * BORDER) ** 2
    n_star = scene.crowded_stars if crowded else scene.n_stars
    n_gal = scene.crowded_galaxies if crowded else scene.n_galaxies
    n_star, n_gal = rng.poisson(n_star * scale), rng.poisson(n_gal * scale)

    def place(n: int) -> dict[str, np.ndarray]:
        return {"x": rng.uniform(-MARGIN_X, FULL_FRAME + MARGIN_X, n),
                "y": rng.uniform(-MARGIN_Y, FULL_FRAME + MARGIN_Y, n)}  # fmt: skip

    stars = place(n_star) | {"flux": _power_law(rng, n_star, scene.star_flux, scene.star_slope)}
    galaxies = place(n_gal) | {
        "flux": _power_law(rng, n_gal, scene.galaxy_flux, scene.galaxy_slope),
        "r_e": np.exp(rng.uniform(*np.log(scene.galaxy_radius), n_gal)),
        "n": rng.choice([0.6, 1.0, 1.0, 2.0, 4.0], n_gal),
        "q": rng.uniform(0.3, 1.0, n_gal),
        "theta": rng.uniform(0, np.pi, n_gal),
    }
    return Catalog(stars, galaxies)


def _stamps_add(image: np.ndarray, ix: np.ndarray, iy: np.ndarray, stamps: np.ndarray) -> None:
    """Add (M, s, s) stamps centred on integer pixels (ix, iy), clipped to the image."""
    h = stamps.shape[1] // 2
    off = np.arange(-h, h + 1)
    yy = iy[:, None, None] + off[None, :, None]
    xx = ix[:, None, None] + off[None, None, :]
    inside = (yy >= 0) & (yy < image.shape[0]) & (xx >= 0) & (xx < image.shape[1])
    flat = (yy * image.shape[1] + xx)[inside]
    image += np.bincount(flat, weights=stamps[inside], minlength=image.size).reshape(image.shape)


def _psf_stamps(dx: np.ndarray, dy: np.ndarray, h: int, scene: SceneConfig) -> np.ndarray:
    """PSF stamps (M, 2h+1, 2h+1) for sub-pixel offsets: Gaussian core + Moffat wing.

    The core is averaged over 5×5 sub-pixel samples (separable); the wing is normalised to its
    analytic total so flux beyond the stamp is lost, as it is from a real aperture.
    """
    u = np.arange(-h, h + 1, dtype=np.float64)
    sub = (np.arange(5) - 2) / 5.0
    s2 = 2 * scene.psf_sigma**2
    gx = np.exp(-((u[None, :, None] + sub - dx[:, None, None]) ** 2) / s2).mean(axis=2)
    gy = np.exp(-((u[None, :, None] + sub - dy[:, None, None]) ** 2) / s2).mean(axis=2)
    core = gy[:, :, None] * gx[:, None, :]
    core /= core.sum(axis=(1, 2), keepdims=True)
    r2 = (u[None, None, :] - dx[:, None, None]) ** 2 + (u[None, :, None] - dy[:, None, None]) ** 2
    alpha, beta = scene.psf_wing_alpha, scene.psf_wing_beta
    wing = (1 + r2 / alpha**2) ** -beta * (beta - 1) / (np.pi * alpha**2)
    f = scene.psf_wing_fraction
    return (1 - f) * core + f * wing


def _render_stars(image: np.ndarray, x, y, flux, scene: SceneConfig) -> None:
    # bright stars get bigger stamps so their wings (and saturation halos) are real
    for lo, hi, h in ((0, 200, 4), (200, 2e4, 10), (2e4, np.inf, 25)):
        pick = (flux >= lo) & (flux < hi)
        if pick.any():
            ix, iy = np.rint(x[pick]).astype(int), np.rint(y[pick]).astype(int)
            stamps = _psf_stamps(x[pick] - ix, y[pick] - iy, h, scene)
            _stamps_add(image, ix, iy, stamps * flux[pick][:, None, None])


def _sersic_stamps(g: dict[str, np.ndarray], dx, dy, h: int) -> np.ndarray:
    """Sersic profiles sampled 2×2 per pixel, softened by ~0.5 px, normalised to unit sum."""
    u = np.arange(-h, h + 1, dtype=np.float64)
    n, r_e, q, th = (g[k][:, None, None] for k in ("n", "r_e", "q", "theta"))
    b_n = 2 * n - 1 / 3 + 0.009876 / n
    total = np.zeros((len(dx), 2 * h + 1, 2 * h + 1))
    for sy in (-0.25, 0.25):
        for sx in (-0.25, 0.25):
            ex = u[None, None, :] + sx - dx[:, None, None]
            ey = u[None, :, None] + sy - dy[:, None, None]
            xp, yp = ex * np.cos(th) + ey * np.sin(th), -ex * np.sin(th) + ey * np.cos(th)
            r = np.sqrt(xp**2 + (yp / q) ** 2 + 0.25)
            total += np.exp(-b_n * ((r / r_e) ** (1 / n) - 1))
    return total / total.sum(axis=(1, 2), keepdims=True)


def _render_galaxies(image: np.ndarray, g: dict[str, np.ndarray]) -> None:
    size = np.clip(np.ceil(3 * g["r_e"] * (1 + g["n"] / 2)), 4, 30)
    for lo, hi, h in ((0, 6, 6), (6, 12, 12), (12, 20, 20), (20, 31, 30)):
        pick = (size > lo) & (size <= hi)
        if pick.any():
            sel = {k: v[pick] for k, v in g.items()}
            ix, iy = np.rint(sel["x"]).astype(int), np.rint(sel["y"]).astype(int)
            stamps = _sersic_stamps(sel, sel["x"] - ix, sel["y"] - iy, h)
            _stamps_add(image, ix, iy, stamps * sel["flux"][:, None, None])


def _direct(catalog: Catalog, shape: tuple[int, int], x0: float, y0: float, scene: SceneConfig):
    """Direct image of the sources falling on a region whose pixel (0, 0) is (x0, y0)."""
    image = np.zeros(shape)
    ny, nx = shape
    for kind, table in (("stars", catalog.stars), ("galaxies", catalog.galaxies)):
        x, y = table["x"] - x0, table["y"] - y0
        keep = (x > -40) & (x < nx + 40) & (y > -40) & (y < ny + 40)
        sel = {k: v[keep] for k, v in table.items()} | {"x": x[keep], "y": y[keep]}
        if kind == "stars":
            _render_stars(image, sel["x"], sel["y"], sel["flux"], scene)
        else:
            _render_galaxies(image, sel)
    return image


def _disperse(direct: np.ndarray, grism: str, left: int) -> np.ndarray:
    """Convolve along x with the trace kernel; ``left`` extra columns precede the array."""
    start, end, zeroth = TRACES[grism]
    offsets = np.arange(zeroth, end + 1)
    kernel = np.zeros(offsets.size)
    first = (offsets >= start) & (offsets <= end)
    kernel[first] = np.sin(np.pi * (offsets[first] - start + 0.5) / (end - start + 1)) ** 2
    kernel[first] *= FIRST_ORDER / kernel[first].sum()
    kernel[offsets == zeroth] = ZEROTH_ORDER
    nfft = direct.shape[1] + kernel.size
    out = np.fft.irfft(np.fft.rfft(direct, nfft, axis=1) * np.fft.rfft(kernel, nfft), nfft, axis=1)
    # out[:, i] = sum_j kernel[j] direct[:, i - j]: light from direct column c lands on
    # c + zeroth + j, so array column a (direct column a + left) is out column a + left - zeroth
    start_col = left - zeroth
    return np.clip(out[:, start_col : start_col + direct.shape[0]], 0.0, None)


def render_scene(
    catalog: Catalog, size: int, shift: tuple[float, float], filter_name: str, scene: SceneConfig
) -> np.ndarray:
    """Noiseless source rate image (size, size) of one exposure; 0 on the reference border.

    ``shift`` = (dx, dy) px moves every source (the dither). Grism filters are dispersed.
    """
    o = array_origin(size)
    x0, y0 = o - shift[0], o - shift[1]
    if filter_name in TRACES:
        _, end, zeroth = TRACES[filter_name]
        left, right = end + 1, -zeroth + 1
        direct = _direct(catalog, (size, size + left + right), x0 - left, y0, scene)
        image = _disperse(direct, filter_name, left)
    else:
        image = _direct(catalog, (size, size), x0, y0, scene)
    image[:BORDER] = image[-BORDER:] = 0.0
    image[:, :BORDER] = image[:, -BORDER:] = 0.0
    return image
