"""Write a whole synthetic program: IMAs, association tables and truth tables.

Layout of ``outdir`` (all written atomically, byte-identical for the same seed):

- ``<rootname>_ima.fits`` and ``<rootname>_flt.fits`` — what the archive (MAST) holds: the IMA
  after CRCORR (CR flags in its DQ, CRCORR = COMPLETE) and the FLT of the ramp fit
  (:mod:`survey.fit`, normal-pipeline errors), so He I exposures show calwf3's real failure;
  with ``crcorr="omit"`` instead the IMA as calwf3 leaves it with CRCORR = OMIT and no FLT
  (the flatten-ramp recipe's starting point). SCI and ERR are the same either way;
- ``<asn_id>_asn.fits`` — one association per visit and filter (lower-case name);
- ``truth.parquet`` — one row per exposure (see :meth:`ExposureTruth.row`), including
  ``category``;
- ``truth_reads.parquet`` — one row per read (see :func:`read_truth_rows`);
- ``truth/<rootname>_truth.fits`` — noiseless images: ``SCENE`` (source rate, e-/s),
  ``RATE`` (scene + mean background, e-/s), ``CRMAP`` (CR charge per pixel, e-), ``SATREAD``
  (first saturated read, -1 never), ``BPIX`` (static DQ bits), ``FLAT``, ``DARK`` (e-/s),
  ``PEDESTAL`` (e-), and a ``CRS`` table (y, x, time, read, amplitude) of every injected
  cosmic ray. Arrays cover the whole IMA array, reference border included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from astropy.io import fits

from ..atomic import atomic_output, check_writable
from ..wfc3ir.fitsio import write_asn, write_flt, write_ima
from .config import ProgramConfig, SimulationConfigError
from .detector_maps import make_detector_maps
from .exposure import SimulatedExposure, simulate_exposure
from .plan import ExposureSpec, plan_program, seed_rng
from .scene import make_catalog
from .truth import ExposureTruth

__all__ = ["ProgramSummary", "read_truth_images", "simulate_program", "write_truth_images"]


@dataclass
class ProgramSummary:
    """What :func:`simulate_program` wrote, with the truth tables in memory."""

    outdir: Path
    ima_paths: list[Path]
    asn_paths: list[Path]
    truth: pl.DataFrame
    truth_reads: pl.DataFrame
    specs: list[ExposureSpec] = field(repr=False)

    @property
    def truth_path(self) -> Path:
        return self.outdir / "truth.parquet"


def write_truth_images(truth: ExposureTruth, path: Path, *, overwrite: bool = False) -> Path:
    """Noiseless images and the CR list of one exposure (layout in the module docstring)."""
    header = fits.Header()
    header["ROOTNAME"] = (truth.spec.rootname, "exposure these truths belong to")
    header["CATEGORY"] = (truth.category, "triage verdict a perfect triage gives")
    images = {"SCENE": truth.scene, "RATE": truth.rate, "CRMAP": truth.cr_map,
              "FLAT": truth.flat, "DARK": truth.dark, "PEDESTAL": truth.pedestal}  # fmt: skip
    hdus = [fits.PrimaryHDU(header=header)]
    hdus += [fits.ImageHDU(np.asarray(a, np.float32), name=n) for n, a in images.items()]
    hdus.append(fits.ImageHDU(truth.sat_read.astype(np.int16), name="SATREAD"))
    hdus.append(fits.ImageHDU(truth.bpix.view(np.int16), name="BPIX"))
    crs = truth.crs
    formats = {"y": "J", "x": "J", "time": "D", "read": "I", "amplitude": "D"}
    columns = [fits.Column(name=n.upper(), format=f, array=crs[n]) for n, f in formats.items()]
    hdus.append(fits.BinTableHDU.from_columns(columns, name="CRS"))
    with atomic_output(path, overwrite=overwrite) as tmp:
        fits.HDUList(hdus).writeto(tmp)
    return path


def read_truth_images(path: str | Path) -> dict[str, np.ndarray]:
    """The images of a ``truth/<rootname>_truth.fits`` (name -> array, as written)."""
    with fits.open(path) as hdus:
        return {h.name: np.asarray(h.data) for h in hdus[1:] if h.is_image}


def _write_parquet(frame: pl.DataFrame, path: Path, overwrite: bool) -> None:
    with atomic_output(path, overwrite=overwrite) as tmp:
        frame.write_parquet(tmp, statistics=False)


CRCORR_CHOICES = ("complete", "omit")


def _outputs(outdir: Path, specs: list[ExposureSpec], crcorr: str) -> list[Path]:
    paths = [outdir / f"{s.rootname}_ima.fits" for s in specs]
    if crcorr == "complete":
        paths += [outdir / f"{s.rootname}_flt.fits" for s in specs]
    paths += [outdir / "truth" / f"{s.rootname}_truth.fits" for s in specs]
    paths += [outdir / f"{a.lower()}_asn.fits" for a in dict.fromkeys(s.asn_id for s in specs)]
    return [*paths, outdir / "truth.parquet", outdir / "truth_reads.parquet"]


def _asn_primary(spec: ExposureSpec) -> fits.Header:
    header = fits.Header()
    for key, value in (("TELESCOP", "HST"), ("INSTRUME", "WFC3"), ("DETECTOR", "IR"),
                       ("PROPOSID", spec.proposid), ("TARGNAME", spec.pointing.targname),
                       ("ROOTNAME", spec.asn_id.lower())):  # fmt: skip
        header[key] = value
    return header


def simulate_program(
    outdir: str | Path,
    config: ProgramConfig,
    *,
    overwrite: bool = False,
    specs: list[ExposureSpec] | None = None,
    progress: Callable[[ExposureSpec], None] | None = None,
    crcorr: str = "complete",
) -> ProgramSummary:
    """Simulate and write every exposure of a program, its ASNs and its truth tables.

    ``specs`` replaces the plan of ``config`` (e.g. ``plan_program(config)`` with one spec
    changed); ``progress`` is called before each exposure; ``crcorr`` picks the products
    (``"complete"``: archive IMA + FLT, ``"omit"``: the CRCORR = OMIT IMA). Existing outputs raise
    :class:`~survey.errors.OutputExistsError` before anything is simulated, unless
    ``overwrite``. One exposure is in memory at a time.
    """
    outdir = Path(outdir)
    if crcorr not in CRCORR_CHOICES:
        raise SimulationConfigError(f"crcorr must be one of {CRCORR_CHOICES}, got {crcorr!r}")
    specs = plan_program(config) if specs is None else list(specs)
    _check_specs(outdir, specs, overwrite, crcorr)
    maps = make_detector_maps(seed_rng(config.seed, 6), config.physics)
    catalogs: dict = {}  # one scene per visit, shared by its exposures
    rows, read_rows, ima_paths = [], [], []
    for spec in specs:
        if progress is not None:
            progress(spec)
        key = (spec.scene_seed, spec.crowded)
        if key not in catalogs:
            rng = seed_rng(spec.scene_seed, 7)
            catalogs[key] = make_catalog(rng, config.scene, crowded=spec.crowded)
        sim = simulate_exposure(
            spec, physics=config.physics, scene=config.scene, maps=maps, catalog=catalogs[key]
        )
        ima_paths.append(_write_exposure(sim, outdir, overwrite, crcorr))
        rows.append(sim.truth.row())
        read_rows += sim.truth.reads
    asn_paths = _write_asns(outdir, specs, overwrite)
    truth = pl.DataFrame(rows, infer_schema_length=None)
    truth_reads = pl.DataFrame(read_rows, infer_schema_length=None)
    _write_parquet(truth, outdir / "truth.parquet", overwrite)
    _write_parquet(truth_reads, outdir / "truth_reads.parquet", overwrite)
    return ProgramSummary(outdir, ima_paths, asn_paths, truth, truth_reads, specs)


def _check_specs(outdir: Path, specs: list[ExposureSpec], overwrite: bool, crcorr: str) -> None:
    """Fail before any work: no exposures, duplicate rootnames, or outputs in the way."""
    if not specs:
        raise SimulationConfigError("no exposures to simulate")
    names = [s.rootname for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SimulationConfigError(f"duplicate rootnames in the specs: {', '.join(duplicates)}")
    for path in _outputs(outdir, specs, crcorr):
        check_writable(path, overwrite=overwrite)


def _write_exposure(sim: SimulatedExposure, outdir: Path, overwrite: bool, crcorr: str) -> Path:
    root = sim.truth.spec.rootname
    write_truth_images(sim.truth, outdir / "truth" / f"{root}_truth.fits", overwrite=overwrite)
    ima = outdir / f"{root}_ima.fits"
    if crcorr == "omit":
        return write_ima(sim.ramp, ima, overwrite=overwrite)
    from ..fit import archive_products  # the ramp fit needs numba: load it only when used

    flagged, flt, _ = archive_products(sim.ramp, source=ima.name)
    write_flt(flt, outdir / f"{root}_flt.fits", overwrite=overwrite)
    return write_ima(flagged, ima, overwrite=overwrite)


def _write_asns(outdir: Path, specs: list[ExposureSpec], overwrite: bool) -> list[Path]:
    members: dict[str, list[ExposureSpec]] = {}
    for spec in specs:
        members.setdefault(spec.asn_id, []).append(spec)
    return [
        write_asn(
            outdir / f"{asn_id.lower()}_asn.fits",
            asn_id,
            [s.rootname for s in group],
            primary=_asn_primary(group[0]),
            overwrite=overwrite,
        )
        for asn_id, group in members.items()
    ]
