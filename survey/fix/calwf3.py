"""Engine ``calwf3`` of flatten: the recipe with hstcal's own pipeline (domain reference §6, §7.9).

Everything happens in a private work directory inside OUT, removed afterwards whatever
happens; the user's files are only read.

**From the RAW** (``<root>_raw.fits[.gz]`` beside the IMA; the recipe of §6):

1. best references from CRDS (:mod:`survey.fix.crdsrefs`) for the RAW's calibration switches,
   written as ``iref$<name>`` into a *copy* of the RAW, with ``CRCORR = 'OMIT'`` (and
   ``ASN_TAB`` = the copy's own name, the workaround for calwf3.e's ASN_TAB crash, §7.9);
2. ``calwf3.e <root>_raw.fits`` (or ``wf3ir.e <root>_raw.fits <root>_flt.fits``): the
   flat-fielded e⁻/s IMA without CR rejection;
3. its per-read skies, measured on it as the native engine measures them (same estimator,
   region and source masking), flatten it, ``CRCORR = 'PERFORM'``;
4. ``wf3ir.e`` on that IMA (it ignores ASN_TAB; else ``calwf3.e`` with ASN_TAB = its own name):
   only CRCORR runs.

**From the archive IMA** (no RAW; §7.10: its SCI/ERR equal a CRCORR=OMIT run's): reset the
earlier CRCORR's flags, flatten with the skies already measured, ``CRCORR = 'PERFORM'``, and
step 4, with CCDTAB/OSCNTAB/CRREJTAB from CRDS (the only tables that run opens).

References come from CRDS when it is configured (or ``references="crds"``), else from the
user's ``$iref`` as the headers name them (``references="iref"``). calwf3's FLT and IMA are read
back; the caller stamps them and writes them under the native engine's names. calwf3's
re-entrant ERR is underestimated by 1/√g … 1/g (§7.9); the HISTORY says so.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from astropy.io import fits

from ..rampfit import reset_crcorr_flags
from ..wfc3ir.fitsio import FLTImage, read_flt, read_ima, write_ima
from ..wfc3ir.model import Ramp
from .exposure import FixError
from .methods import SkyPlan, exposure_source_mask, flatten_ramp, measure_skies

__all__ = [
    "Calwf3Error",
    "Calwf3Run",
    "find_executable",
    "find_raw",
    "flatten_with_calwf3",
]

TIMEOUT_S = 600


class Calwf3Error(FixError):
    """calwf3 is missing, misconfigured or failed."""


@dataclass
class Calwf3Run:
    """What the engine made: calwf3's FLT and IMA, the skies it flattened, notes."""

    flt: FLTImage
    ima: Ramp
    plan: SkyPlan
    input: str  #: ``raw`` or ``archive-ima``
    notes: list[str] = field(default_factory=list)
    context: str | None = None  #: the CRDS rules used, if CRDS chose the references


@dataclass
class _Setup:
    """Executables, references and the work directory of one run."""

    exes: dict[str, str]
    work: Path
    rootname: str
    crds: bool
    iref: str | None = None  #: the directory calwf3 resolves ``iref$`` in (ends with ``/``)
    context: str | None = None
    notes: list[str] = field(default_factory=list)


def _executables() -> dict[str, str]:
    found = {name: shutil.which(name) for name in ("wf3ir.e", "calwf3.e")}
    return {name: path for name, path in found.items() if path}


def find_executable() -> tuple[str, str]:
    """(kind, path): ``wf3ir.e`` if on PATH, else ``calwf3.e``; a one-line error otherwise."""
    exes = _executables()
    if exes:
        name = next(iter(exes))
        return name, exes[name]
    raise Calwf3Error(
        "engine calwf3 needs calwf3.e or wf3ir.e on PATH (install hstcal, e.g. "
        "`conda install -c conda-forge hstcal`); or use --engine native"
    )


def find_raw(ima: Path) -> Path | None:
    """The exposure's RAW beside its IMA (``<root>_raw.fits[.gz]``), if any."""
    from ..scan.measure import find_neighbours

    return find_neighbours(ima, None).raw


def _use_crds(references: str) -> bool:
    from .crdsrefs import crds_configured

    if references == "crds" or (references == "auto" and crds_configured()):
        return True
    if os.environ.get("iref"):  # noqa: SIM112 (hstcal's own lower-case name)
        return False
    why = "--refs iref needs" if references == "iref" else "engine calwf3 needs"
    raise Calwf3Error(
        f"{why} $iref (the directory of the IR reference files) or CRDS (set CRDS_SERVER_URL "
        "and/or CRDS_PATH; README 'CRDS and calwf3'); or use --engine native"
    )


def flatten_with_calwf3(
    ima_path: Path,
    ramp: Ramp,
    plan: SkyPlan,
    out_dir: Path,
    rootname: str,
    *,
    estimator,
    region=None,
    calwf3_input: str = "auto",
    references: str = "auto",
) -> Calwf3Run:
    """Flatten the exposure with hstcal (module docstring): from its RAW if ``calwf3_input`` is
    ``raw`` (or ``auto`` and a RAW is beside ``ima_path``), else from the archive ``ramp``."""
    find_executable()  # a clear error without hstcal
    exes = _executables()
    raw = None if calwf3_input == "ima" else find_raw(ima_path)
    if calwf3_input == "raw" and raw is None:
        raise Calwf3Error(f"{ima_path}: --calwf3-input raw, but no {rootname}_raw.fits beside it")
    crds = _use_crds(references)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".work-{rootname}-", dir=out_dir))
    setup = _Setup(exes, work, rootname, crds)
    try:
        if raw is not None:
            omit = _run_raw(raw, setup)
            plan = measure_skies(omit, estimator, region)  # as the native engine would
            if plan.sources is None:
                plan = plan._replace(sources=exposure_source_mask(omit))
            fixed, kind = flatten_ramp(omit, plan), "raw"
        else:
            fixed, kind = _prepare_archive(ramp, plan, setup), "archive-ima"
        fixed.primary["CRCORR"] = "PERFORM"
        flt, ima = _run_ima(fixed, setup)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    notes = [f"flatten: SCI_k += M - m_k, M = {plan.level:.6g} e-/s (last read)", *setup.notes]
    notes.append("calwf3 re-entrant ERR is underestimated by 1/sqrt(gain)..1/gain (wfc3ir.md 7.9)")
    for header in (flt.primary, ima.primary):
        header["FIXINPUT"] = (kind, "survey fix: calwf3 input, raw or archive-ima")
        if setup.context:
            header["CRDS_CTX"] = (setup.context, "CRDS rules of the reference files")
    return Calwf3Run(flt, ima, plan, kind, notes, setup.context)


# -- the two calwf3 steps ------------------------------------------------------------------


def _run_raw(raw: Path, setup: _Setup) -> Ramp:
    """Steps 1-2: calwf3 on a copy of the RAW with CRCORR=OMIT; returns its IMA."""
    folder = setup.work / "raw"
    folder.mkdir()
    copy = folder / f"{setup.rootname}_raw.fits"
    _copy_input(raw, copy)
    values = {"CRCORR": "OMIT", **_references(fits.getheader(copy), "raw", setup)}
    kind = "calwf3.e" if "calwf3.e" in setup.exes else "wf3ir.e"
    if kind == "calwf3.e":
        values["ASN_TAB"] = copy.name  # its own name: avoids the ASN_TAB crash (§7.9)
        command = [setup.exes[kind], copy.name]
    else:
        command = [setup.exes[kind], copy.name, f"{setup.rootname}_flt.fits"]
    _set_keywords(copy, values)
    _run(command, folder, setup)
    ima = folder / f"{setup.rootname}_ima.fits"
    _require(ima, kind)
    setup.notes.append(
        f"engine calwf3: input raw ({raw.name}); {kind} ran it with CRCORR=OMIT, "
        "the skies were measured on its IMA"
    )
    return read_ima(ima)


def _prepare_archive(ramp: Ramp, plan: SkyPlan, setup: _Setup) -> Ramp:
    """The archive IMA flattened, its old CRCORR flags reset (§7.10), references set."""
    fixed = flatten_ramp(ramp, plan)
    fixed.dq = reset_crcorr_flags(ramp.dq)
    fixed.primary.update(_references(ramp.primary, "ima", setup))
    setup.notes.append("engine calwf3: input archive-ima (no RAW; CRCORR flags reset, 7.10)")
    return fixed


def _run_ima(fixed: Ramp, setup: _Setup) -> tuple[FLTImage, Ramp]:
    """Step 4: CRCORR on the flattened IMA; returns calwf3's FLT and IMA."""
    folder = setup.work / "ima"
    folder.mkdir()
    root = setup.rootname
    ima_in = folder / f"{root}_ima.fits"
    if "wf3ir.e" in setup.exes:
        kind, out = "wf3ir.e", folder / "out"
        out.mkdir()
        write_ima(fixed, ima_in)
        flt_path, ima_path = out / f"{root}_flt.fits", out / f"{root}_ima.fits"
        _run([setup.exes[kind], str(ima_in), str(flt_path)], out, setup)
    else:
        kind = "calwf3.e"
        fixed.primary["ASN_TAB"] = ima_in.name  # its own name: avoids the ASN_TAB crash
        write_ima(fixed, ima_in)
        _run([setup.exes[kind], ima_in.name], folder, setup)
        flt_path, ima_path = folder / f"{root}_ima_flt.fits", folder / f"{root}_ima_ima.fits"
    for path in (flt_path, ima_path):
        _require(path, kind)
    setup.notes.append(f"engine calwf3: {kind} ran CRCORR on the flattened IMA (CRCORR=PERFORM)")
    return read_flt(flt_path), read_ima(ima_path)


# -- references ----------------------------------------------------------------------------


def _references(header: fits.Header, step: str, setup: _Setup) -> dict[str, str]:
    """Reference keywords to write (CRDS), and ``setup.iref`` set; ``{}`` with ``$iref``."""
    if not setup.crds:
        if setup.iref is None:
            setup.iref = os.environ["iref"].rstrip("/") + "/"  # noqa: SIM112
            setup.notes.append(f"references: $iref as the headers name them ({setup.iref})")
        return {}
    from .crdsrefs import IMA_REFTYPES, best_references, raw_reftypes

    reftypes = raw_reftypes(header) if step == "raw" else IMA_REFTYPES
    refs = best_references(header, reftypes, rootname=setup.rootname)
    setup.context = refs.context
    setup.iref = _iref_directory(refs.paths, setup.work)
    keywords = refs.keywords()
    setup.notes.append(f"references: CRDS {refs.context}")
    setup.notes.extend(f"  {key} = {value}" for key, value in keywords.items())
    return keywords


def _iref_directory(paths: dict[str, Path | None], work: Path) -> str:
    """The one directory holding every reference (linked into the work dir if spread out)."""
    directories = {p.parent for p in paths.values() if p is not None}
    if len(directories) == 1:
        return f"{directories.pop()}/"
    links = work / "iref"
    links.mkdir(exist_ok=True)
    for path in paths.values():
        if path is not None and not (links / path.name).exists():
            (links / path.name).symlink_to(path)
    return f"{links}/"


# -- files and processes -------------------------------------------------------------------


def _copy_input(source: Path, target: Path) -> None:
    """Copy (and gunzip) an input; the original is only read."""
    opener = gzip.open if source.name.endswith(".gz") else open
    with opener(source, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)


def _set_keywords(path: Path, values: dict[str, str]) -> None:
    with fits.open(path, mode="update") as hdul:
        for key, value in values.items():
            hdul[0].header[key] = value


def _require(path: Path, kind: str) -> None:
    if not path.is_file():
        raise Calwf3Error(f"{kind} finished but wrote no {path.name}")


def _run(command: list[str], cwd: Path, setup: _Setup) -> None:
    """Run a calwf3 executable; a failure is one line: exit code and calwf3's last message."""
    name, target = Path(command[0]).name, Path(command[1]).name
    env = {**os.environ, "iref": setup.iref or ""}
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env,
                              timeout=TIMEOUT_S, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise Calwf3Error(f"{name} on {target} did not finish in {TIMEOUT_S} s") from None
    except OSError as exc:
        raise Calwf3Error(f"{name} on {target} could not start: {exc.strerror}") from None
    if done.returncode != 0:
        raise Calwf3Error(
            f"{name} failed on {target} (exit {done.returncode}): {_tail(done.stdout, done.stderr)}"
        )


def _tail(stdout: str | None, stderr: str | None) -> str:
    """calwf3's last ERROR line (it prints them on stdout), else its last line."""
    lines = [line.strip() for line in f"{stdout or ''}\n{stderr or ''}".splitlines()]
    lines = [line for line in lines if line]
    errors = [line for line in lines if "ERROR" in line.upper()]
    text = (errors or lines or ["no message"])[-1]
    return text[:300]
