"""Engine ``calwf3`` of flatten: the recipe with hstcal's own CRCORR (domain reference §6, §7.9).

From the archive IMA (never modified; no RAW reprocessing needed, §7.10): reset the earlier
CRCORR's flags, flatten the reads (the same per-read skies as the native engine), set
``CRCORR = 'PERFORM'`` and write that IMA into a private work directory inside OUT; run

- ``wf3ir.e <work>/in/<root>_ima.fits <work>/out/<root>_flt.fits`` (preferred: it ignores
  ASN_TAB, so no dummy association is needed), else
- ``calwf3.e <root>_ima.fits`` in ``<work>/in`` with ASN_TAB set to the file's own name (the
  documented workaround for the ASN_TAB crash); outputs ``<root>_ima_flt.fits``/``_ima_ima.fits``;

then read calwf3's FLT and IMA back; the caller stamps them and writes them under the native
engine's names. The work directory is always removed. calwf3 needs its reference tables
(CCDTAB, OSCNTAB, CRREJTAB) through ``$iref``; the IMA's header names them. Note that calwf3's
re-entrant ERR is underestimated by 1/√g … 1/g (§7.9); that is stated in the HISTORY.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..rampfit import reset_crcorr_flags
from ..wfc3ir.fitsio import FLTImage, read_flt, read_ima, write_ima
from ..wfc3ir.model import Ramp
from .exposure import FixError
from .methods import SkyPlan, flatten_ramp

__all__ = ["Calwf3Error", "find_executable", "flatten_with_calwf3"]

TIMEOUT_S = 600


class Calwf3Error(FixError):
    """calwf3 is missing, misconfigured or failed."""


def find_executable() -> tuple[str, str]:
    """(kind, path): ``wf3ir.e`` if on PATH, else ``calwf3.e``; a one-line error otherwise."""
    for name in ("wf3ir.e", "calwf3.e"):
        path = shutil.which(name)
        if path:
            return name, path
    raise Calwf3Error(
        "engine calwf3 needs calwf3.e or wf3ir.e on PATH (install hstcal, e.g. "
        "`conda install -c conda-forge hstcal`); or use --engine native"
    )


def _prepare(ramp: Ramp, plan: SkyPlan) -> Ramp:
    fixed = flatten_ramp(ramp, plan)
    fixed.dq = reset_crcorr_flags(ramp.dq)
    fixed.primary["CRCORR"] = "PERFORM"
    return fixed


def _run(command: list[str], cwd: Path) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                              timeout=TIMEOUT_S, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise Calwf3Error(f"{Path(command[0]).name} did not finish in {TIMEOUT_S} s") from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout or "").strip().splitlines()
        last = lines[-1] if lines else "no message"
        raise Calwf3Error(f"{Path(command[0]).name} failed (exit {done.returncode}): {last}")


def flatten_with_calwf3(
    ramp: Ramp, plan: SkyPlan, out_dir: Path, rootname: str
) -> tuple[FLTImage, Ramp, list[str]]:
    """Flatten ``ramp`` with ``plan`` and fit it with hstcal; returns (FLT, IMA, notes)."""
    kind, exe = find_executable()
    if not os.environ.get("iref"):  # noqa: SIM112 (hstcal's own lower-case name)
        raise Calwf3Error("engine calwf3 needs $iref (the directory of the IR reference files)")
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".work-{rootname}-", dir=out_dir))
    try:
        (work / "in").mkdir()
        (work / "out").mkdir()
        fixed = _prepare(ramp, plan)
        ima_in = work / "in" / f"{rootname}_ima.fits"
        if kind == "wf3ir.e":
            write_ima(fixed, ima_in)
            flt_path, ima_path = (
                work / "out" / f"{rootname}_flt.fits",
                work / "out" / f"{rootname}_ima.fits",
            )
            _run([exe, str(ima_in), str(flt_path)], cwd=work / "out")
        else:
            fixed.primary["ASN_TAB"] = ima_in.name  # its own name: avoids the ASN_TAB crash
            write_ima(fixed, ima_in)
            _run([exe, ima_in.name], cwd=work / "in")
            flt_path = work / "in" / f"{rootname}_ima_flt.fits"
            ima_path = work / "in" / f"{rootname}_ima_ima.fits"
        for path in (flt_path, ima_path):
            if not path.exists():
                raise Calwf3Error(f"{kind} finished but wrote no {path.name}")
        flt, ima = read_flt(flt_path), read_ima(ima_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    notes = [
        f"flatten: SCI_k += M - m_k, M = {plan.level:.6g} e-/s (last read)",
        f"engine calwf3: {kind} ran CRCORR on the flattened IMA (CRCORR=PERFORM)",
        "calwf3 re-entrant ERR is underestimated by 1/sqrt(gain)..1/gain (wfc3ir.md 7.9)",
    ]
    return flt, ima, notes
