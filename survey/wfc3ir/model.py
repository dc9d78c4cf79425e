"""In-memory model of a WFC3/IR MULTIACCUM exposure, independent of FITS.

A :class:`Ramp` holds the reads in **time order** (index k = 0 is the zeroth read, k = NSAMP-1
the last), whereas files store them in reverse (imset 1 = last read). Only the FITS edge
(:mod:`survey.wfc3ir.fitsio`) knows about imsets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from .detector import BORDER, science_slice

__all__ = ["GRISMS", "HE_I_FILTERS", "ExposureMeta", "Ramp"]

GRISMS = frozenset({"G102", "G141"})
#: Filters whose bandpass contains He I 1.083 um (domain reference §1).
HE_I_FILTERS = frozenset({"F105W", "F110W", "G102"})


def _text(header: fits.Header, key: str, default: str = "") -> str:
    value = header.get(key, default)
    return str(value).strip() if value is not None else default


def _float(header: fits.Header, key: str, default: float = float("nan")) -> float:
    try:
        return float(header.get(key, default))
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True)
class ExposureMeta:
    """Exposure keywords a scanner or fitter needs, parsed from the primary header."""

    rootname: str
    instrume: str
    detector: str
    filter: str
    obstype: str
    obsmode: str
    samp_seq: str
    nsamp: int
    exptime: float
    sampzero: float
    subarray: bool
    subtype: str
    aperture: str
    bunit: str
    ltv1: float
    ltv2: float
    scan_typ: str
    switches: dict[str, str] = field(default_factory=dict)

    @property
    def is_grism(self) -> bool:
        return self.filter in GRISMS or self.obstype.upper().startswith("SPECTRO")

    @property
    def is_spatial_scan(self) -> bool:
        return self.scan_typ not in ("", "N")

    @property
    def he_i_sensitive(self) -> bool:
        return self.filter in HE_I_FILTERS

    @classmethod
    def from_headers(cls, primary: fits.Header, sci: fits.Header) -> ExposureMeta:
        switches = {
            key: _text(primary, key)
            for key in primary
            if key.endswith("CORR") and isinstance(primary[key], str)
        }
        return cls(
            rootname=_text(primary, "ROOTNAME").lower(),
            instrume=_text(primary, "INSTRUME"),
            detector=_text(primary, "DETECTOR"),
            filter=_text(primary, "FILTER"),
            obstype=_text(primary, "OBSTYPE"),
            obsmode=_text(primary, "OBSMODE"),
            samp_seq=_text(primary, "SAMP_SEQ"),
            nsamp=int(primary.get("NSAMP", 0)),
            exptime=_float(primary, "EXPTIME"),
            sampzero=_float(primary, "SAMPZERO"),
            subarray=bool(primary.get("SUBARRAY", False)),
            subtype=_text(primary, "SUBTYPE"),
            aperture=_text(primary, "APERTURE"),
            bunit=_text(sci, "BUNIT"),
            ltv1=_float(sci, "LTV1", 0.0),
            ltv2=_float(sci, "LTV2", 0.0),
            scan_typ=_text(primary, "SCAN_TYP", "N"),
            switches=switches,
        )


@dataclass
class Ramp:
    """All reads of one exposure, time-ordered.

    Arrays have shape ``(nsamp, ny, nx)`` and cover the whole raw array, reference border
    included (use :attr:`science` to drop it). ``sci`` and ``err`` are in the file's BUNIT;
    for an IMA that is the cumulative average rate since the zeroth read (e-/s), so the counts
    are ``sci[k] * samptime[k]``. ``dq`` is uint16. ``samp`` and ``time`` are the per-pixel
    SAMP/TIME extensions (often read-only broadcast views of a header-only constant).
    ``read_headers[k]`` is the SCI header of read k.
    """

    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    samp: np.ndarray
    time: np.ndarray
    samptime: np.ndarray
    primary: fits.Header
    read_headers: list[fits.Header]
    path: Path | None = None

    def __post_init__(self) -> None:
        shape = self.sci.shape
        if self.sci.ndim != 3:
            raise ValueError(f"sci must be (nsamp, ny, nx), got shape {shape}")
        for name in ("err", "dq", "samp", "time"):
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, sci has {shape}")
        if len(self.samptime) != shape[0] or len(self.read_headers) != shape[0]:
            raise ValueError("samptime and read_headers need one entry per read")

    @property
    def nsamp(self) -> int:
        return self.sci.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        return self.sci.shape[1], self.sci.shape[2]

    @property
    def meta(self) -> ExposureMeta:
        return ExposureMeta.from_headers(self.primary, self.read_headers[-1])

    @property
    def science(self) -> tuple[slice, slice, slice]:
        """Index of the science area of every read: ``ramp.sci[ramp.science]``."""
        ys, xs = science_slice(*self.shape)
        return slice(None), ys, xs

    @property
    def deltatim(self) -> np.ndarray:
        return np.diff(self.samptime, prepend=0.0)

    def counts(self) -> np.ndarray:
        """Accumulated counts since the zeroth read, C_k = SCI_k * t_k (float64; C_0 = 0)."""
        return self.sci.astype(np.float64) * self.samptime[:, None, None]

    @property
    def border(self) -> int:
        return BORDER
