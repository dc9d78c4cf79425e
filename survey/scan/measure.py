"""One IMA → one ``exposures`` row and NSAMP−1 ``reads`` rows (no database here).

This is what a worker process runs. The file is opened by the scanner's lean reader
(:func:`survey.scan.leanfits.open_lean`: the values, arrays and errors of
:func:`survey.wfc3ir.fitsio.open_exposure`, with far less header parsing) and streamed one
read at a time: the last read first (it defines the source mask), then reads 1 … NSAMP−1,
keeping only the last, the previous, the current and (prefetched by a helper thread while the
current one is measured) the next read in memory, in four reused buffer pairs: ≈ 25 MB for a
full frame, whatever NSAMP; the peak RSS of a scanning process is ≈ 250 MB, most of it the
libraries. With ``threads`` > 1 (``survey scan --jobs 1``) and a free core, the FLT beside
the IMA is read and measured by a helper thread while the reads are measured.

Header values are untrusted: the rootname is validated (:func:`safe_rootname`), text values
are stored as printable text (other characters become ``?``, at most 68 characters) and
numbers only when they are numbers; neighbour files are found from the IMA's own file name
and a validated ASN_ID, never from a header path.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from ..skystats import WINDOW
from ..wfc3ir.detector import BORDER
from ..wfc3ir.fitsio import safe_rootname
from . import _kernels as kern
from .cores import spare_core
from .files import ima_stem
from .leanfits import open_lean, read_flt_sky
from .params import ScanParameters
from .regions import MaskWorkspace, cell_map, source_mask
from .stats import ReadStatistics, _contiguous, image_sky_stats

__all__ = ["ExposureResult", "Neighbours", "find_neighbours", "measure_exposure"]

_PRINTABLE = re.compile(r"[^\x20-\x7e]")
_ASN_ID = re.compile(r"^[a-z0-9]{9}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}(\.\d+)?$")


@dataclass
class ExposureResult:
    """What a scan of one IMA produced: rows for the catalog, plus problems with neighbours."""

    exposure: dict[str, object]
    reads: list[dict[str, object]]
    #: (path, kind, message) of neighbour files that could not be read (go to scan_errors)
    notes: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Neighbours:
    flt: Path | None
    raw: Path | None
    asn: Path | None


def _beside(directory: Path, stem: str, kind: str) -> Path | None:
    for suffix in (".fits", ".fits.gz"):
        candidate = directory / f"{stem}_{kind}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def find_neighbours(path: Path, asn_id: str | None) -> Neighbours:
    """FLT, RAW and ASN files beside an IMA (ASN from a validated ASN_ID)."""
    stem = ima_stem(path)
    directory = path.parent
    asn = None
    if asn_id and _ASN_ID.match(asn_id.lower()):
        asn = _beside(directory, asn_id.lower(), "asn")
    return Neighbours(_beside(directory, stem, "flt"), _beside(directory, stem, "raw"), asn)


# -- header values -------------------------------------------------------------------------


_QUOTED = re.compile(r"'((?:[^']|'')*)'")


def _value(header, key: str) -> object:
    """A header value; an unparsable card (e.g. control characters) gives its raw text."""
    try:
        return header.get(key)
    except Exception:  # astropy VerifyError/ValueError on an invalid card
        try:  # the card as read from the file (``.image`` would try to "fix" it and fail)
            image = str(getattr(header.cards[key], "_image", None) or "")
        except Exception:
            return None
        found = _QUOTED.search(image[10:])
        return found.group(1).replace("''", "'") if found else image[10:].split("/")[0]


def _text(header, key: str) -> str | None:
    value = _value(header, key)
    if value is None or isinstance(value, bool):
        return None if value is None else str(value)
    text = _PRINTABLE.sub("?", str(value)).strip()
    return text[:68] if text else None


def _float(header, key: str) -> float | None:
    value = _value(header, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _int(header, key: str) -> int | None:
    value = _value(header, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if float(value).is_integer() and abs(value) < 2**31 else None


def _date(header, key: str) -> dt.date | None:
    text = _text(header, key)
    try:
        return dt.date.fromisoformat(text) if text and _DATE.match(text) else None
    except ValueError:
        return None


def _time(header, key: str) -> dt.time | None:
    text = _text(header, key)
    try:
        return dt.time.fromisoformat(text) if text and _TIME.match(text) else None
    except ValueError:
        return None


def _applicability(meta, nsamp: int) -> str | None:
    reasons = []
    if meta.is_grism:
        reasons.append("grism")
    if meta.is_spatial_scan:
        reasons.append("spatial scan")
    if nsamp < 3:
        reasons.append("fewer than two science reads")
    return "; ".join(reasons) or None


def _exposure_row(exposure, rootname: str, path: Path) -> dict[str, object]:
    primary = exposure.primary
    meta = exposure.meta
    ny, nx = exposure.shape
    reason = _applicability(meta, exposure.nsamp)
    return {
        "rootname": rootname,
        "path": str(path),
        "proposid": _int(primary, "PROPOSID"),
        "asn_id": _text(primary, "ASN_ID"),
        "targname": _text(primary, "TARGNAME"),
        "filter": _text(primary, "FILTER"),
        "aperture": _text(primary, "APERTURE"),
        "subarray": _value(primary, "SUBARRAY") is True,
        "subtype": _text(primary, "SUBTYPE"),
        "obstype": _text(primary, "OBSTYPE"),
        "scan_typ": _text(primary, "SCAN_TYP"),
        "samp_seq": _text(primary, "SAMP_SEQ"),
        "nsamp": int(exposure.nsamp),
        "exptime": _float(primary, "EXPTIME"),
        "expstart": _float(primary, "EXPSTART"),
        "expend": _float(primary, "EXPEND"),
        "date_obs": _date(primary, "DATE-OBS"),
        "time_obs": _time(primary, "TIME-OBS"),
        "postarg1": _float(primary, "POSTARG1"),
        "postarg2": _float(primary, "POSTARG2"),
        "sunangle": _float(primary, "SUNANGLE"),
        "moonangl": _float(primary, "MOONANGL"),
        "sun_alt": _float(primary, "SUN_ALT"),
        "ra_targ": _float(primary, "RA_TARG"),
        "dec_targ": _float(primary, "DEC_TARG"),
        "pa_v3": _float(primary, "PA_V3"),
        "sampzero": _float(primary, "SAMPZERO"),
        "crcorr": _text(primary, "CRCORR"),
        "flatcorr": _text(primary, "FLATCORR"),
        "cal_ver": _text(primary, "CAL_VER"),
        "bunit": _text(exposure.read_headers[-1], "BUNIT"),
        "naxis1": nx,
        "naxis2": ny,
        "n_science": (ny - 2 * BORDER) * (nx - 2 * BORDER),
        "applicable": reason is None,
        "not_applicable_reason": reason,
    }


# -- statistics ----------------------------------------------------------------------------


def _rate_factor(rate_units: bool, t: float) -> float:
    return 1.0 if rate_units else 1.0 / t


def _read_header_values(header, k: int, samptime: np.ndarray) -> dict[str, object]:
    if k == 0:
        return {}
    deltatim = _float(header, "DELTATIM")
    return {
        "sampnum": k,
        "samptime": float(samptime[k]),
        "deltatim": deltatim if deltatim is not None else float(samptime[k] - samptime[k - 1]),
        "routtime": _float(header, "ROUTTIME"),
    }


def _finite_or_none(value: object) -> object:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _flt_stats(flt_path: Path, mask: np.ndarray | None, params: ScanParameters) -> dict:
    sci, dq = read_flt_sky(flt_path)
    sci = np.asarray(sci, np.float32)
    # one pass: sky pixels (DQ, finite, not a source) counted, DQ 32 pixels too
    stats = image_sky_stats(sci, None, params, dq=np.asarray(dq), mask=mask)
    n32 = stats.pop("npix_dq_32")
    sigma = stats["sigma"]
    std = _window_std(sci, np.asarray(dq), mask, params, stats["median"])
    bimodality = (stats["mean"] - stats["median"]) / sigma if sigma and sigma > 0 else None
    return {
        "flt_sky_median": stats["median"],
        "flt_sky_mean": stats["mean"],
        "flt_sky_sigma": sigma,
        "flt_sky_std": std,
        "flt_sky_p16": stats["p16"],
        "flt_sky_p84": stats["p84"],
        "flt_sky_npix": int(stats["npix"]),
        "flt_bimodality": bimodality,
        "flt_n_dq_32": n32,
        "flt_frac_dq_32": n32 / sci.size if sci.size else None,
    }


def _window_std(sci, dq, mask, params: ScanParameters, median: float) -> float | None:
    """The notebook's σ (:data:`survey.skystats.WINDOW`): std of the FLT's sky pixels within
    the clipped median ± 0.5 e⁻/s, as ``fixes.before_std``."""
    if not np.isfinite(median):
        return None
    sky = ((dq & params.sky_bad_bits) == 0) & (np.abs(sci - np.float32(median)) <= WINDOW)
    if mask is not None and mask.shape == sci.shape:
        sky &= mask == 0
    values = sci[sky]  # the window test is False for NaN: only finite values remain
    return float(values.std(dtype=np.float64)) if values.size else None


_FLT_COLUMNS = (
    "flt_sky_median",
    "flt_sky_mean",
    "flt_sky_sigma",
    "flt_sky_std",
    "flt_sky_p16",
    "flt_sky_p84",
    "flt_sky_npix",
    "flt_bimodality",
    "flt_n_dq_32",
    "flt_frac_dq_32",
)


def measure_exposure(
    path: str | Path,
    params: ScanParameters | None = None,
    *,
    prefetch: bool = True,
    threads: int = 1,
) -> ExposureResult:
    """Scan one IMA. Raises :class:`InputFileError` (one line) if it cannot be scanned.

    With ``prefetch`` the next read is loaded by a helper thread while the current one is
    measured (the kernels release the GIL); with ``threads=2`` each read's pixel passes are
    shared with another thread and the FLT is measured by a third, when a core is free
    (:func:`survey.scan.cores.spare_core`; else no helper thread at all). The results depend
    on none of this.
    """
    params = params or ScanParameters()
    if threads > 1 and not spare_core():  # threads on busy cores cost more than they give
        threads, prefetch = 1, False
    path = Path(path)
    with open_lean(path) as exposure:
        if exposure.kind != "ramp":
            raise InputFileError(path, "has a single imset (an FLT?), not the reads of an IMA")
        rootname = safe_rootname(exposure.primary.get("ROOTNAME", ""), path)
        row = _exposure_row(exposure, rootname, path)
        ny, nx = exposure.shape
        if ny <= 2 * BORDER or nx <= 2 * BORDER:
            raise InputFileError(path, f"array {ny}x{nx} is too small for the reference border")
        reads, mask, neighbours = [], None, None
        row.update(dict.fromkeys(_MASK_COLUMNS), n_fallbacks=0)
        if exposure.nsamp >= 2:
            reads, mask, neighbours = _measure_reads(exposure, row, params, prefetch, threads, path)
    # (in one thread, after the IMA is closed: its mapped pages no longer count in the RSS)
    values, notes = neighbours or _neighbours(row, path, mask, params)
    row.update(values)
    row = {key: _finite_or_none(v) for key, v in row.items()}
    return ExposureResult(row, reads, notes)


_MASK_COLUMNS = ("mask_sky_level", "mask_noise", "mask_threshold", "mask_fraction")


def _source_cells(exposure, last_sci, last_dq, rate_units: bool, params: ScanParameters):
    """Source mask from the last read, and the cell map with the sources set."""
    ny, nx = exposure.shape
    work = MaskWorkspace.for_shape((ny - 2 * BORDER, nx - 2 * BORDER))
    scale = _rate_factor(rate_units, exposure.samptime[-1])
    kern.last_read_image(
        _contiguous(last_sci, np.float32),
        _contiguous(last_dq, np.uint16),
        BORDER,
        params.sky_bad_bits,
        scale,
        work.image,
        work.good,
    )
    sources = source_mask(
        work.image, work.good, sigma=params.mask_sigma, grow=params.mask_grow, work=work
    )
    cells = cell_map(ny, nx, params.box_columns)
    kern.mark_cells(cells, sources.mask, kern.SOURCE_CELL)
    return sources, cells


_LOCAL = threading.local()


def _read_buffers(shape: tuple[int, int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """This thread's four (SCI, DQ) buffers for reads of ``shape``: the last read, and three
    in turn for the previous, current and prefetched ones (fresh memory is slow to touch)."""
    cached = getattr(_LOCAL, "buffers", None)
    if cached is None or cached[0] != shape:
        pairs = [(np.empty(shape, np.float32), np.empty(shape, np.uint16)) for _ in range(4)]
        cached = _LOCAL.buffers = (shape, pairs)
    return cached[1]


def _loader(exposure):
    """load(k, slot) → (SCI, DQ) of read k, into buffer pair ``slot`` when the file allows."""
    read_into = getattr(exposure, "read_into", None)
    if read_into is None:
        return lambda k, slot: (exposure.sci(k), exposure.dq(k))
    buffers = _read_buffers(exposure.shape)

    def load(k: int, slot: int):
        sci, dq = buffers[slot]
        return read_into("SCI", k, sci), read_into("DQ", k, dq)

    return load


def _iter_reads(exposure, last_arrays, prefetch: bool):
    """(k, SCI, DQ) of reads 1 … NSAMP−1; with ``prefetch`` read k+1 loads while k is used."""
    last = exposure.nsamp - 1
    loader = _loader(exposure)

    def load(k: int):  # reads k−1, k and k+1 are in distinct buffers
        return last_arrays if k == last else loader(k, k % 3)

    if not prefetch or last < 2:
        for k in range(1, last + 1):
            yield (k, *load(k))
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="survey-read") as pool:
        pending = pool.submit(load, 1)
        for k in range(1, last + 1):
            sci, dq = pending.result()
            if k < last:
                pending = pool.submit(load, k + 1)
            yield k, sci, dq


def _measure_reads(
    exposure, row: dict, params: ScanParameters, prefetch: bool, threads: int, path: Path
):
    """The ``reads`` rows of an exposure (NSAMP ≥ 2), the source mask and, with ``threads``
    > 1, the :func:`_neighbours` result (else None); fills the mask columns of ``row``.

    With ``threads`` > 1 the neighbours (reading the FLT: mostly header parsing) are done by
    a helper thread while the reads are measured (the kernels release the GIL)."""
    rate_units = "/" in str(row["bunit"] or "")
    last = exposure.nsamp - 1
    last_arrays = _loader(exposure)(last, 3)
    sources, cells = _source_cells(exposure, *last_arrays, rate_units, params)
    args = (exposure, row, params, prefetch, threads, rate_units, last_arrays, sources, cells)
    if threads <= 1:
        return _reads(*args), sources.mask, None
    from concurrent.futures import ThreadPoolExecutor

    # the mask lives in a reused workspace: the helper is done before this returns
    with ThreadPoolExecutor(1, thread_name_prefix="survey-flt") as pool:
        neighbours = pool.submit(_neighbours, dict(row), path, sources.mask, params)
        reads = _reads(*args)
        return reads, sources.mask, neighbours.result()


def _reads(exposure, row, params, prefetch, threads, rate_units, last_arrays, sources, cells):
    """The ``reads`` rows; fills the mask columns of ``row``."""
    samptime = exposure.samptime
    last = exposure.nsamp - 1
    engine = ReadStatistics.for_shape(exposure.shape, cells, params)
    engine.use_threads(threads)
    # header values first: only the loader thread touches the file during the loop
    times = [_read_header_values(exposure.read_headers[k], k, samptime) for k in range(last + 1)]
    reads = []
    prev = prev_dq = None
    for k, sci, dq in _iter_reads(exposure, last_arrays, prefetch):
        stats = engine.measure(
            sci, dq, prev, prev_dq, t=samptime[k], t_prev=samptime[k - 1], rate_units=rate_units
        )
        entry = {"rootname": row["rootname"], **times[k], **stats}
        reads.append({key: _finite_or_none(v) for key, v in entry.items()})
        prev, prev_dq = sci, dq
    row.update(
        mask_sky_level=sources.sky,
        mask_noise=sources.sigma,
        mask_threshold=sources.threshold,
        mask_fraction=sources.fraction,
        n_fallbacks=engine.fallbacks,
    )
    return reads


def _neighbours(row: dict, path: Path, mask, params: ScanParameters) -> tuple[dict, list]:
    """FLT/RAW/ASN beside the IMA and the FLT's sky, as values for ``row`` (which is only
    read); and notes for scan_errors."""
    neighbours = find_neighbours(path, row["asn_id"])
    values: dict[str, object] = {
        "flt_path": str(neighbours.flt) if neighbours.flt else None,
        "raw_path": str(neighbours.raw) if neighbours.raw else None,
        "asn_path": str(neighbours.asn) if neighbours.asn else None,
        **dict.fromkeys(_FLT_COLUMNS),
    }
    notes: list[tuple[str, str, str]] = []
    if neighbours.flt is not None:
        try:
            values.update(_flt_stats(neighbours.flt, mask, params))
        except InputFileError as exc:
            notes.append((str(neighbours.flt), "flt", exc.problem))
    return values, notes
