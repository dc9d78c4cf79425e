"""One simulated exposure, in memory: an IMA-like :class:`~survey.wfc3ir.model.Ramp` + its truth.

No file is opened here (the program module writes), so tests can check the physics on arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..wfc3ir.detector import BORDER
from ..wfc3ir.model import Ramp
from .config import PhysicsConfig, SceneConfig
from .detector_maps import DetectorMaps, make_detector_maps
from .headers import primary_header, read_header
from .instrument import SkyModel, accumulate, calibrate
from .plan import ExposureSpec, seed_rng
from .scene import Catalog, make_catalog, render_scene
from .sky import grism_background_shape, scattered_shape
from .truth import ExposureTruth

__all__ = ["SimulatedExposure", "build_sky", "simulate_exposure"]


@dataclass
class SimulatedExposure:
    ramp: Ramp
    truth: ExposureTruth


def build_sky(spec: ExposureSpec) -> SkyModel:
    """The background model of an exposure: flat in imaging, 2-D patterns in the grisms."""
    scatter = (
        scattered_shape(spec.size, spec.scatter_edge, spec.scatter_softness)
        if spec.scatter.active
        else 0.0
    )
    if not spec.is_grism:
        return SkyModel(spec.zodi, spec.he, spec.scatter, 1.0, 1.0, scatter)
    return SkyModel(
        spec.zodi,
        spec.he,
        spec.scatter,
        grism_background_shape(spec.filter, "zodi", spec.size),
        grism_background_shape(spec.filter, "he", spec.size),
        scatter,
    )


def _ramp(spec: ExposureSpec, sci, err, dq, maps: DetectorMaps, provenance: dict) -> Ramp:
    """Wrap calibrated arrays with headers; SAMP/TIME are constant per read, as in real IMAs."""
    nsamp, ny, nx = sci.shape
    times = spec.times
    science = (slice(BORDER, ny - BORDER), slice(BORDER, nx - BORDER))
    mean_dark = float(maps.dark[science].mean())
    meanblev = float(np.random.default_rng([spec.noise_seed, 1]).uniform(14300.0, 14700.0))
    headers = [
        read_header(
            spec, k, (sci[k], err[k], dq[k]), meandark=mean_dark * times[k], meanblev=meanblev
        )
        for k in range(nsamp)
    ]
    samp = np.broadcast_to(np.arange(1, nsamp + 1, dtype=np.int16)[:, None, None], sci.shape)
    time = np.broadcast_to(times.astype(np.float32)[:, None, None], sci.shape)
    primary = primary_header(spec, provenance=provenance)
    return Ramp(sci, err, dq, samp, time, times.copy(), primary, headers)


def simulate_exposure(
    spec: ExposureSpec,
    *,
    physics: PhysicsConfig | None = None,
    scene: SceneConfig | None = None,
    maps: DetectorMaps | None = None,
    catalog: Catalog | None = None,
) -> SimulatedExposure:
    """Simulate one exposure as calwf3 (CRCORR = OMIT) would leave it, with its truth.

    ``maps`` (full-frame or already cropped) and ``catalog`` are normally shared by the whole
    program / visit; when omitted they are drawn from the spec's seeds.
    """
    physics, scene = physics or PhysicsConfig(), scene or SceneConfig()
    if maps is None:
        maps = make_detector_maps(seed_rng(spec.scene_seed, 6), physics)
    if maps.bpix.shape[0] != spec.size:
        maps = maps.crop(spec.size)
    if catalog is None:
        catalog = make_catalog(seed_rng(spec.scene_seed, 7), scene, crowded=spec.crowded)
    source_rate = render_scene(catalog, spec.size, spec.pointing.shift, spec.filter, scene)
    sky = build_sky(spec)
    rng = np.random.default_rng(spec.noise_seed)
    raw = accumulate(rng, source_rate, sky, maps, spec.times, spec.sampzero, physics)
    sci, err, dq, zsig = calibrate(raw, maps, spec.times, spec.sampzero, physics)
    provenance = {"noise_seed": spec.noise_seed, "scene_seed": spec.scene_seed}
    ramp = _ramp(spec, sci, err, dq, maps, provenance)
    return SimulatedExposure(ramp, _truth(spec, sky, source_rate, raw, maps, zsig))


def _truth(spec, sky: SkyModel, source_rate, raw, maps: DetectorMaps, zsig) -> ExposureTruth:
    t_end = spec.exptime
    mean_bkg = sky.charge(0.0, t_end) / t_end
    rate = source_rate + np.where(maps.response > 0, mean_bkg, 0.0)
    cr_map = np.zeros(source_rate.shape)
    np.add.at(cr_map, (raw.crs["y"], raw.crs["x"]), raw.crs["amplitude"])
    return ExposureTruth(
        spec=spec,
        sky=sky,
        scene=source_rate,
        rate=rate,
        cr_map=cr_map,
        crs=raw.crs,
        sat_read=raw.sat_read,
        bpix=maps.bpix,
        flat=maps.flat,
        dark=maps.dark,
        pedestal=maps.pedestal,
        n_zsig=int(zsig.sum()),
    )
