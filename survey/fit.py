"""Fit an IMA's ramps and write the FLT (and optionally the IMA) the way calwf3 does.

This is the file-level wrapper around the pure-array CRCORR port in :mod:`survey.rampfit`:
read the IMA (never modified), reset the flags an earlier CRCORR left in an archive IMA (in
memory, domain reference §7.10), fit the science area, and write

- the FLT: the trimmed science area, SCI/ERR/DQ/SAMP/TIME, LTV1/2 and CRPIX1/2 decreased by the
  5-px trim (hstcal ``putCalDataSect``), CRCORR = COMPLETE, calwf3's statistics keywords, and
  HISTORY lines with the tool version and parameters;
- optionally the IMA with the CR flags in its DQ (SCI and ERR unchanged), CRCORR = COMPLETE.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from astropy.io import fits

from .atomic import check_writable
from .errors import InputFileError, SurveyError
from .provenance import stamp_header
from .wfc3ir.detector import BORDER, MEAN_GAIN, amp_map
from .wfc3ir.dq import DQ, SDQFLAGS
from .wfc3ir.fitsio import FLTImage, read_ima, write_flt, write_ima
from .wfc3ir.model import Ramp

__all__ = [
    "FitParameters",
    "FitProducts",
    "archive_products",
    "fit_exposure",
    "fit_ramp",
    "flt_sci_header",
    "flt_statistics",
]

RATE_UNITS = {"ELECTRONS/S", "COUNTS/S"}


@dataclass(frozen=True)
class FitParameters:
    """Parameters of the ramp fit (calwf3 CRREJTAB defaults for NSAMP 16 STEP200)."""

    crsigma: float = 4.0
    badinpdq: int = 256
    error_model: Literal["physical", "calwf3", "pipeline"] = "physical"
    weighting: Literal["index", "time"] = "index"
    reset_archive_flags: bool = True


@dataclass
class FitProducts:
    """What :func:`fit_ramp` made: the FLT image and the IMA DQ with CR flags."""

    flt: FLTImage
    ima_dq: np.ndarray
    reset: bool
    n_cr_pixels: int = 0  #: science pixels with at least one CR found by this fit
    n_unstable: int = 0  #: pixels this fit made UNSTABLE (4th CR), static 32 excluded


def _check_input(ramp: Ramp, path: Path) -> None:
    meta = ramp.meta
    if meta.switches.get("ZOFFCORR", "COMPLETE") not in ("COMPLETE", "SKIPPED"):
        raise InputFileError(path, "zeroth read not subtracted (ZOFFCORR not COMPLETE): a RAW?")
    if meta.bunit.upper() not in RATE_UNITS:
        raise InputFileError(path, f"BUNIT {meta.bunit!r} is not a rate; expected an IMA")
    if ramp.nsamp < 2:
        raise InputFileError(path, f"NSAMP={ramp.nsamp}: nothing to fit")


def fit_ramp(ramp: Ramp, params: FitParameters = FitParameters()) -> FitProducts:
    """Fit the science area of an in-memory IMA ramp; returns the FLT and the new IMA DQ."""
    from .rampfit import ZerothRead, fit_ramps, reset_crcorr_flags

    ys, xs = ramp.science[1:]
    dq = ramp.dq[:, ys, xs]
    reset = params.reset_archive_flags and ramp.meta.switches.get("CRCORR") == "COMPLETE"
    if reset:
        dq = reset_crcorr_flags(dq)
    # calwf3 forms y = SCI * TIME and sigma = ERR * TIME in float32 (parity of detections)
    time = ramp.time[:, ys, xs]
    times = _read_times(ramp)
    zsig = ramp.meta.switches.get("ZSIGCORR", "OMIT") in ("PERFORM", "COMPLETE")
    result = fit_ramps(
        ramp.sci[:, ys, xs] * time,
        ramp.err[:, ys, xs] * time,
        times,
        dq,
        crsigma=params.crsigma,
        badinpdq=params.badinpdq,
        gain=MEAN_GAIN,
        readnoise=_readnoise(ramp)[ys, xs],
        error_model=params.error_model,
        weighting=params.weighting,
        first_read_saturation=zsig,
        zeroth=ZerothRead(ramp.sci[0, ys, xs], ramp.err[0, ys, xs], dq[0], ramp.meta.sampzero),
    )
    ima_dq = ramp.dq.copy()
    ima_dq[:, ys, xs] = result.read_dq
    flt = FLTImage(
        sci=result.rate,
        err=result.err,
        dq=result.dq,
        samp=result.samp,
        time=result.time,
        primary=ramp.primary.copy(),
        sci_header=flt_sci_header(ramp),
    )
    static_32 = (dq & DQ.UNSTABLE).any(axis=0)
    return FitProducts(
        flt=flt,
        ima_dq=ima_dq,
        reset=reset,
        n_cr_pixels=int(((result.read_dq[-1] & DQ.DATAREJECT) > 0).sum()),
        n_unstable=int((((result.dq & DQ.UNSTABLE) > 0) & ~static_32).sum()),
    )


def _read_times(ramp: Ramp) -> np.ndarray:
    """Per-read times as calwf3 takes them: the TIME extension (float32), else SAMPTIME."""
    first = ramp.time[:, :1, :1].reshape(-1)
    if ramp.time.strides[1:] == (0, 0) or np.all(ramp.time == first[:, None, None]):
        return first.astype(np.float32)
    return ramp.samptime.astype(np.float32)


def _readnoise(ramp: Ramp) -> np.ndarray:
    """Per-pixel CDS read noise (e-) from the header's READNSEA..D, else the CCDTAB values."""
    from .wfc3ir.detector import AMP_READNOISE_CDS

    amps = amp_map(*ramp.shape)
    noise = np.empty(ramp.shape)
    for amp, default in AMP_READNOISE_CDS.items():
        value = ramp.primary.get(f"READNSE{amp}", default)
        noise[amps == amp] = value if isinstance(value, int | float) and value > 0 else default
    return noise


def flt_sci_header(ramp: Ramp) -> fits.Header:
    """SCI header of the FLT: the last read's, with LTV and CRPIX moved by the trim."""
    header = ramp.read_headers[-1].copy()
    for key in ("LTV1", "LTV2", "CRPIX1", "CRPIX2"):
        if isinstance(header.get(key), int | float):
            header[key] = header[key] - BORDER
    return header


def flt_statistics(sci: np.ndarray, err: np.ndarray, dq: np.ndarray) -> dict[str, float]:
    """calwf3's statistics keywords over good pixels ((DQ & SDQFLAGS) == 0)."""
    good = (dq & SDQFLAGS) == 0
    stats: dict[str, float] = {"NGOODPIX": int(good.sum())}
    if not good.any():
        return stats
    values = sci[good].astype(np.float64)
    stats.update(GOODMIN=values.min(), GOODMAX=values.max(), GOODMEAN=values.mean())
    errors = err[good].astype(np.float64)
    positive = errors > 0
    if positive.any():
        snr = values[positive] / errors[positive]
        stats.update(SNRMIN=snr.min(), SNRMAX=snr.max(), SNRMEAN=snr.mean())
    return {k: (float(v) if k != "NGOODPIX" else v) for k, v in stats.items()}


def _finish_headers(products: FitProducts, params: FitParameters, source: Path) -> dict:
    provenance = {"input": source.name, **asdict(params), "archive_flags_reset": products.reset}
    flt = products.flt
    flt.primary["CRCORR"] = "COMPLETE"
    flt.primary["CRSIGMAS"] = (f"{params.crsigma:g}", "statistical rejection criteria")
    flt.primary["BADINPDQ"] = (params.badinpdq, "data quality flag bits to reject")
    stamp_header(flt.primary, "fit", provenance)
    for key, value in flt_statistics(flt.sci, flt.err, flt.dq).items():
        flt.sci_header[key] = value
    flt.sci_header["SDQFLAGS"] = (SDQFLAGS, "serious data quality flags")
    return provenance


def archive_products(
    ramp: Ramp, params: FitParameters = FitParameters(error_model="pipeline"), *, source: str = ""
) -> tuple[Ramp, FLTImage, FitProducts]:
    """What the archive holds after calwf3 ran CRCORR on ``ramp``: the flagged IMA and the FLT.

    SCI and ERR of the IMA are unchanged (CRCORR only writes DQ); the FLT's ERR follows the
    normal-pipeline formula by default, as archive FLTs do.
    """
    products = fit_ramp(ramp, params)
    provenance = _finish_headers(products, params, Path(source or ramp.meta.rootname))
    flagged = Ramp(
        ramp.sci, ramp.err, products.ima_dq, ramp.samp, ramp.time,
        ramp.samptime, ramp.primary.copy(), ramp.read_headers, ramp.path,
    )  # fmt: skip
    flagged.primary["CRCORR"] = "COMPLETE"
    stamp_header(flagged.primary, "fit", provenance)
    return flagged, products.flt, products


def fit_exposure(
    ima: str | Path,
    flt_out: str | Path,
    *,
    ima_out: str | Path | None = None,
    params: FitParameters = FitParameters(),
    overwrite: bool = False,
) -> FitProducts:
    """Fit an IMA file and write the FLT (and, with ``ima_out``, the flagged IMA).

    The input is never modified; outputs are written atomically and an existing output is
    only replaced with ``overwrite=True``. Both outputs are checked before any work is done.
    """
    ima, flt_out = Path(ima), Path(flt_out)
    outputs = [flt_out] + ([Path(ima_out)] if ima_out else [])
    for out in outputs:
        if out.resolve() == ima.resolve():
            raise SurveyError(f"{out}: refusing to write over the input file")
        check_writable(out, overwrite=overwrite)
    ramp = read_ima(ima)
    _check_input(ramp, ima)
    flagged, flt, products = archive_products(ramp, params, source=ima.name)
    write_flt(flt, flt_out, overwrite=overwrite)
    if ima_out:
        write_ima(flagged, ima_out, overwrite=overwrite)
    return products
