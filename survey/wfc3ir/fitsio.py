"""The FITS edge: the one module that knows how WFC3/IR MULTIACCUM files are laid out.

Files store reads in *reverse* time order (imset 1 = last read, imset NSAMP = zeroth read);
everything this module returns is in **time order** (k = 0 zeroth read). Header-only
("constant") extensions written by hstio — NAXIS = 0 plus PIXVALUE/NPIX1/NPIX2 — are expanded
into read-only broadcast arrays of the right dtype. DQ is returned as uint16.

Reading:
- :func:`open_exposure` validates a RAW/IMA/FLT and gives lazy, per-read access (a scanner
  streams one SCI array at a time instead of loading a 170 MB IMA);
- :func:`read_ima` loads a whole ramp into a :class:`~survey.wfc3ir.model.Ramp`;
- :func:`read_flt` loads the single imset of an FLT.

Writing (:func:`write_ima`, :func:`write_flt`, :func:`write_asn`) follows calwf3/hstio: imsets
of SCI, ERR, DQ, SAMP, TIME sharing an EXTVER, constant non-SCI extensions header-only with the
BITPIX of their type, atomic writes that never replace an existing file unless asked.

Every problem with an input file raises :class:`~survey.errors.InputFileError` with a one-line
message naming the file.
"""

from __future__ import annotations

import gzip
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from ..atomic import atomic_output
from ..errors import InputFileError
from .model import ExposureMeta, Ramp

__all__ = [
    "EXTNAMES",
    "KNOWN_BUNITS",
    "FLTImage",
    "MultiAccumFile",
    "open_exposure",
    "read_asn",
    "read_flt",
    "read_ima",
    "safe_rootname",
    "write_asn",
    "write_flt",
    "write_ima",
]

EXTNAMES = ("SCI", "ERR", "DQ", "SAMP", "TIME")
KNOWN_BUNITS = frozenset({"ELECTRONS/S", "COUNTS/S", "ELECTRONS", "COUNTS"})
#: dtype of each extension as calwf3 writes it (DQ is int16 on disk, uint16 in memory).
DISK_DTYPES = {"SCI": ">f4", "ERR": ">f4", "DQ": ">i2", "SAMP": ">i2", "TIME": ">f4"}
_NATIVE = {
    "SCI": np.float32,
    "ERR": np.float32,
    "DQ": np.int16,
    "SAMP": np.int16,
    "TIME": np.float32,
}
BITPIX = {"SCI": -32, "ERR": -32, "DQ": 16, "SAMP": 16, "TIME": -32}
EXT_BUNIT = {"DQ": "UNITLESS", "SAMP": "SAMPLES", "TIME": "SECONDS"}
#: SCI-header keywords hstio repeats in the ERR, DQ, SAMP and TIME headers of an imset.
SHARED_KEYS = (
    "ROOTNAME", "EXPNAME", "WCSAXES", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CTYPE1", "CTYPE2",
    "CD1_1", "CD1_2", "CD2_1", "CD2_2", "LTV1", "LTV2", "LTM1_1", "LTM2_2", "PA_APER", "VAFACTOR",
)  # fmt: skip
_ROOTNAME = re.compile(r"^[a-z0-9]{9}$")


def _show(value: object, limit: int = 24) -> str:
    """A header value made safe for a one-line message (untrusted input)."""
    text = re.sub(r"[^\x20-\x7e]", "?", str(value).strip())
    return repr(text if len(text) <= limit else text[:limit] + "...")


def safe_rootname(value: object, path: str | Path) -> str:
    """A ROOTNAME fit to build file names from: 9 lower-case letters/digits, else an error."""
    text = str(value).strip().lower()
    if not _ROOTNAME.match(text):
        raise InputFileError(path, f"ROOTNAME {_show(value)} is not a valid HST rootname")
    return text


# --------------------------------------------------------------------------------------------
# Reading


def _open_hdul(path: Path) -> fits.HDUList:
    """Open and fully index a FITS file, turning astropy's failures into one-line errors."""
    if not path.is_file():
        raise InputFileError(path, "no such file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdul = fits.open(path, memmap=True, lazy_load_hdus=True)
        except (OSError, ValueError, EOFError) as exc:
            raise InputFileError(path, f"not a FITS file ({_reason(exc)})") from None
        try:
            hdul.readall()
        except (OSError, ValueError, EOFError, IndexError) as exc:
            hdul.close()
            raise InputFileError(path, f"truncated or corrupt ({_reason(exc)})") from None
    truncated = [w for w in caught if "truncated" in str(w.message)]
    if truncated:
        hdul.close()
        raise InputFileError(path, f"truncated ({truncated[0].message})")
    return hdul


def _reason(exc: BaseException) -> str:
    text = str(exc).split(".")[0].strip() or type(exc).__name__
    return text[:120]


def _pixels(hdu: fits.ImageHDU, path: Path) -> np.ndarray | None:
    """``hdu.data``. astropy will not scale integers (BZERO/BSCALE: a DQ written as uint16, the
    DN of a RAW) out of a memory map; those HDUs are read again without one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy's BZERO/uint notes on RAW data
        try:
            return hdu.data
        except ValueError:
            pass
        with fits.open(path, memmap=False) as hdul:
            return hdul[hdu.name, hdu.ver].data


def _expand(hdu: fits.ImageHDU, name: str, path: Path) -> np.ndarray:
    """Pixel array of one extension, expanding hstio's header-only constant arrays."""
    header = hdu.header
    if header.get("NAXIS", 0) == 0:
        try:
            shape = (int(header["NPIX2"]), int(header["NPIX1"]))
            value = header["PIXVALUE"]
        except (KeyError, ValueError, TypeError):
            raise InputFileError(
                path, f"{name},{header.get('EXTVER')} has no data and no PIXVALUE/NPIX1/NPIX2"
            ) from None
        dtype = np.uint16 if name == "DQ" else np.dtype(DISK_DTYPES[name]).newbyteorder("=")
        return np.broadcast_to(np.asarray(value).astype(dtype), shape)
    data = _pixels(hdu, path)
    if data is None:
        raise InputFileError(path, f"{name},{header.get('EXTVER')} has no data")
    # np.array copies exactly once: big-endian disk data -> native, detached from the memmap
    if name == "DQ":
        return np.array(data, dtype=np.int16).view(np.uint16)
    native = np.float32 if name in ("SCI", "ERR", "TIME") else np.int16
    return np.array(data, dtype=native)


class MultiAccumFile:
    """A validated WFC3/IR RAW, IMA or FLT, open for lazy, per-read access.

    Use as a context manager. ``nsamp`` is the number of imsets in the file (NSAMP for a
    RAW/IMA, 1 for an FLT); index ``k`` is in time order. Arrays cover the whole array, border
    included; pass ``science=True`` to get the science area only.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._hdul = _open_hdul(self.path)
        try:
            self.primary = self._hdul[0].header
            self._index = self._validate()
            self.meta  # every keyword a caller reads must parse now, not later  # noqa: B018
        except fits.VerifyError as exc:
            self._hdul.close()
            raise InputFileError(self.path, f"invalid header card ({_reason(exc)})") from None
        except Exception:
            self._hdul.close()
            raise

    # -- validation -----------------------------------------------------------------------
    def _validate(self) -> dict[tuple[str, int], int]:
        primary, path = self.primary, self.path
        instrume = str(primary.get("INSTRUME", "")).strip()
        detector = str(primary.get("DETECTOR", "")).strip()
        if instrume != "WFC3" or detector != "IR":
            raise InputFileError(
                path, f"not a WFC3/IR file (INSTRUME={_show(instrume)}, DETECTOR={_show(detector)})"
            )
        obsmode = str(primary.get("OBSMODE", "")).strip()
        if obsmode != "MULTIACCUM":
            raise InputFileError(path, f"not a MULTIACCUM exposure (OBSMODE={_show(obsmode)})")
        nsamp = primary.get("NSAMP")
        if not isinstance(nsamp, int) or not 1 <= nsamp <= 16:
            raise InputFileError(path, f"NSAMP {_show(nsamp)} is not a whole number from 1 to 16")
        index = {
            (
                str(hdu.header.get("EXTNAME", "")).strip().upper(),
                int(hdu.header.get("EXTVER", 1)),
            ): i
            for i, hdu in enumerate(self._hdul)
            if i > 0
        }
        n_sci = sum(1 for name, _ in index if name == "SCI")
        nextend = primary.get("NEXTEND")
        n_ext = len(self._hdul) - 1
        if isinstance(nextend, int) and n_ext < nextend:
            raise InputFileError(
                path, f"truncated: {n_ext} of NEXTEND={nextend} extensions present"
            )
        self.kind = "flt" if n_sci == 1 and nsamp > 1 else "ramp"
        n_imsets = 1 if self.kind == "flt" else nsamp
        # imsets the file does hold must be complete before counting them against NSAMP
        held = max((v for name, v in index if name in EXTNAMES), default=0)
        for m in range(1, min(held, n_imsets) + 1):
            for name in EXTNAMES:
                if (name, m) not in index:
                    what = f"read {nsamp - m}, imset {m}" if self.kind == "ramp" else f"imset {m}"
                    raise InputFileError(path, f"missing {name} extension of {what}")
        # extensions beyond the imsets are allowed (survey fix appends a FIXREADS table)
        if self.kind == "ramp" and isinstance(nextend, int) and nextend < 5 * nsamp:
            raise InputFileError(
                path, f"NSAMP={nsamp} needs NEXTEND={5 * nsamp}, header says NEXTEND={nextend}"
            )
        if self.kind == "ramp" and n_sci != nsamp:
            raise InputFileError(path, f"NSAMP={nsamp} but the file has {n_sci} SCI extensions")
        self.nsamp = n_imsets
        self._index = index
        self.read_headers = [self._hdul[index[("SCI", m)]].header for m in self._imsets()]
        self._check_bunit()
        self.samptime = self._read_samptimes()
        return index

    def _imsets(self) -> range:
        """Imset numbers in time order (imset NSAMP is the zeroth read)."""
        return range(self.nsamp, 0, -1)

    def _check_bunit(self) -> None:
        for k, header in enumerate(self.read_headers):
            bunit = str(header.get("BUNIT", "")).strip().upper()
            if bunit not in KNOWN_BUNITS:
                raise InputFileError(
                    self.path, f"unknown BUNIT {_show(header.get('BUNIT', ''))} in SCI of read {k}"
                )

    def _read_samptimes(self) -> np.ndarray:
        times = []
        for k, header in enumerate(self.read_headers):
            value = header.get("SAMPTIME")
            if not isinstance(value, int | float) or not np.isfinite(value):
                raise InputFileError(self.path, f"SCI of read {k} has no valid SAMPTIME")
            times.append(float(value))
        samptime = np.asarray(times)
        if self.kind == "ramp":
            bad = np.flatnonzero(np.diff(samptime) <= 0)
            if bad.size:
                k = int(bad[0]) + 1
                raise InputFileError(
                    self.path,
                    f"SAMPTIME not increasing in time order: read {k} at {samptime[k]:g} s "
                    f"after read {k - 1} at {samptime[k - 1]:g} s",
                )
        return samptime

    # -- access ---------------------------------------------------------------------------
    @property
    def meta(self) -> ExposureMeta:
        return ExposureMeta.from_headers(self.primary, self.read_headers[-1])

    @property
    def shape(self) -> tuple[int, int]:
        header = self.read_headers[-1]
        return int(header["NAXIS2"]), int(header["NAXIS1"])

    def extension(self, name: str, k: int, *, science: bool = False) -> np.ndarray:
        """Array of extension ``name`` for read ``k`` (time order)."""
        if not 0 <= k < self.nsamp:
            raise IndexError(f"read {k} out of range 0..{self.nsamp - 1}")
        hdu = self._hdul[self._index[(name, self.nsamp - k)]]
        data = _expand(hdu, name, self.path)
        if data.shape != self.shape:
            raise InputFileError(self.path, f"{name} of read {k} has shape {data.shape}")
        if science:
            from .detector import science_slice

            data = data[science_slice(*data.shape)]
        return data

    def sci(self, k: int, *, science: bool = False) -> np.ndarray:
        return self.extension("SCI", k, science=science)

    def err(self, k: int, *, science: bool = False) -> np.ndarray:
        return self.extension("ERR", k, science=science)

    def dq(self, k: int, *, science: bool = False) -> np.ndarray:
        return self.extension("DQ", k, science=science)

    def header(self, name: str, k: int) -> fits.Header:
        return self._hdul[self._index[(name, self.nsamp - k)]].header

    def stack(self, name: str) -> np.ndarray:
        """Extension ``name`` of every read as one (nsamp, ny, nx) array, time order.

        All-constant extensions stay a zero-copy broadcast view; otherwise each read is
        converted straight into one preallocated array (one pass over the data).
        """
        hdus = [self._hdul[self._index[(name, self.nsamp - k)]] for k in range(self.nsamp)]
        shape = (self.nsamp, *self.shape)
        if all(hdu.header.get("NAXIS", 0) == 0 for hdu in hdus):
            values = [_expand(hdu, name, self.path) for hdu in hdus]
            if any(v.shape != self.shape for v in values):
                raise InputFileError(self.path, f"{name} constant arrays do not match SCI shape")
            column = np.array([v.flat[0] for v in values], dtype=values[0].dtype)
            return np.broadcast_to(column[:, None, None], shape)
        out = np.empty(shape, dtype=np.uint16 if name == "DQ" else _NATIVE[name])
        target = out.view(np.int16) if name == "DQ" else out
        for k, hdu in enumerate(hdus):
            if hdu.header.get("NAXIS", 0) == 0:
                target[k] = _expand(hdu, name, self.path).astype(target.dtype)
                continue
            data = _pixels(hdu, self.path)
            if data is None or data.shape != self.shape:
                raise InputFileError(self.path, f"{name} of read {k} has no data of SCI's shape")
            np.copyto(target[k], data, casting="unsafe")
        return out

    def to_ramp(self) -> Ramp:
        """Load every read into memory as a time-ordered :class:`Ramp`."""
        stacked = {name: self.stack(name) for name in EXTNAMES}
        return Ramp(
            sci=stacked["SCI"],
            err=stacked["ERR"],
            dq=stacked["DQ"],
            samp=stacked["SAMP"],
            time=stacked["TIME"],
            samptime=self.samptime.copy(),
            primary=self.primary.copy(),
            read_headers=[h.copy() for h in self.read_headers],
            path=self.path,
        )

    def close(self) -> None:
        self._hdul.close()

    def __enter__(self) -> MultiAccumFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_exposure(path: str | Path) -> MultiAccumFile:
    """Open and validate a WFC3/IR RAW, IMA or FLT for lazy access (a context manager)."""
    return MultiAccumFile(path)


def read_ima(path: str | Path) -> Ramp:
    """Read a whole RAW or IMA into a time-ordered :class:`Ramp`."""
    with open_exposure(path) as exposure:
        if exposure.kind != "ramp":
            raise InputFileError(path, "has a single imset (an FLT?), not the reads of a ramp")
        return exposure.to_ramp()


@dataclass
class FLTImage:
    """The single imset of an FLT (science area only, e-/s)."""

    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    samp: np.ndarray
    time: np.ndarray
    primary: fits.Header
    sci_header: fits.Header
    path: Path | None = None


def read_flt(path: str | Path) -> FLTImage:
    """Read the SCI/ERR/DQ/SAMP/TIME imset of an FLT (extra HDRLET/WCSCORR HDUs are ignored)."""
    with open_exposure(path) as exposure:
        if exposure.kind != "flt":
            raise InputFileError(path, f"has {exposure.nsamp} imsets; an FLT has one")
        arrays = {name: exposure.extension(name, 0) for name in EXTNAMES}
        return FLTImage(
            sci=arrays["SCI"],
            err=arrays["ERR"],
            dq=arrays["DQ"],
            samp=arrays["SAMP"],
            time=arrays["TIME"],
            primary=exposure.primary.copy(),
            sci_header=exposure.read_headers[0].copy(),
            path=Path(path),
        )


# --------------------------------------------------------------------------------------------
# Writing


def _constant(array: np.ndarray) -> object | None:
    """The single value of an all-equal array, else None (hstio writes those header-only)."""
    if array.size == 0:
        return None
    first = array.flat[0]
    if all(s == 0 for s in array.strides) or bool(np.all(array == first)):
        return first.item() if hasattr(first, "item") else first
    return None


def _extension_header(name: str, extver: int, sci_header: fits.Header) -> fits.Header:
    header = fits.Header()
    header["INHERIT"] = (True, "inherit the primary header")
    header["EXTNAME"] = (name, "extension name")
    header["EXTVER"] = (extver, "extension version number")
    for key in SHARED_KEYS:
        if key in sci_header:
            header[key] = (sci_header[key], sci_header.comments[key])
    bunit = EXT_BUNIT.get(name, sci_header.get("BUNIT", "ELECTRONS/S"))
    header.insert("EXTVER", ("BUNIT", bunit, "brightness units"), after=True)
    return header


def _imset_hdus(arrays: dict[str, np.ndarray], sci_header: fits.Header, extver: int) -> list:
    """HDUs of one imset; returns (hdus, {position in list: BITPIX}) for header-only ones."""
    header = sci_header.copy()
    for key in ("XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "PCOUNT", "GCOUNT"):
        header.remove(key, ignore_missing=True)
    header["EXTNAME"] = "SCI"
    header["EXTVER"] = extver
    hdus = [fits.ImageHDU(np.asarray(arrays["SCI"], dtype=DISK_DTYPES["SCI"]), header=header)]
    for name in EXTNAMES[1:]:
        ext_header = _extension_header(name, extver, header)
        data = arrays[name]
        value = _constant(data)
        if value is not None:
            ext_header["NPIX1"] = (data.shape[1], "length of constant array axis 1")
            ext_header["NPIX2"] = (data.shape[0], "length of constant array axis 2")
            if name == "DQ":
                value = int(np.uint16(value).view(np.int16))
            elif isinstance(value, float):
                value = float(f"{value:.9g}")  # float32 round-trips exactly in 9 digits
            ext_header["PIXVALUE"] = (value, "values of pixels in constant array")
            hdus.append(fits.ImageHDU(None, header=ext_header))
        else:
            if name == "DQ":
                data = np.asarray(data, dtype=np.uint16).view(np.int16)
            hdus.append(fits.ImageHDU(np.asarray(data, dtype=DISK_DTYPES[name]), header=ext_header))
    return hdus


def _primary_hdu(primary: fits.Header, path: Path, nextend: int) -> fits.PrimaryHDU:
    header = primary.copy()
    for key in ("SIMPLE", "BITPIX", "NAXIS", "EXTEND"):
        header.remove(key, ignore_missing=True)
    name = path.name
    header["NEXTEND"] = (nextend, "Number of standard extensions")
    header["FILENAME"] = (name[:-3] if name.endswith(".gz") else name, "name of file")
    return fits.PrimaryHDU(header=header)


def _fix_constant_bitpix(path: Path) -> None:
    """Give header-only extensions the BITPIX of their type, as hstio does.

    astropy always writes BITPIX = 8 for an HDU without data; readers such as hstio expect the
    extension's own type. The card is rewritten in place (same 80 bytes), nothing else moves.
    """
    with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
        fixes = []
        for hdu in hdul[1:]:
            name = str(hdu.header.get("EXTNAME", "")).strip()
            if hdu.header.get("NAXIS", 0) == 0 and name in BITPIX:
                fixes.append((hdu.fileinfo()["hdrLoc"], BITPIX[name]))
    with open(path, "r+b") as stream:
        for offset, bitpix in fixes:
            stream.seek(offset + 80)  # BITPIX is the second card after XTENSION
            card = stream.read(80).decode("ascii")
            if not card.startswith("BITPIX"):
                raise RuntimeError(f"unexpected header layout in {path}")
            stream.seek(offset + 80)
            stream.write(f"{'BITPIX':8}= {bitpix:>20} / array data type".ljust(80).encode("ascii"))


def _write_hdus(hdus: list, path: Path, overwrite: bool) -> Path:
    """Write an HDU list atomically; ``.gz`` targets are gzip-compressed reproducibly."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        plain = tmp.with_name(tmp.name.removesuffix(".gz")) if path.suffix == ".gz" else tmp
        try:
            fits.HDUList(hdus).writeto(plain, output_verify="silentfix")
            _fix_constant_bitpix(plain)
            if plain != tmp:
                # mtime=0 and no file name: the same data gives the same bytes
                with (
                    open(plain, "rb") as src,
                    open(tmp, "wb") as raw,
                    gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as dst,
                ):
                    shutil.copyfileobj(src, dst, length=1 << 22)
        finally:
            if plain != tmp:
                plain.unlink(missing_ok=True)
    return path


def write_ima(ramp: Ramp, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a :class:`Ramp` as calwf3 writes an IMA (or RAW): NSAMP imsets, last read first."""
    path = Path(path)
    hdus = [_primary_hdu(ramp.primary, path, 5 * ramp.nsamp)]
    for k in range(ramp.nsamp - 1, -1, -1):
        arrays = {
            "SCI": ramp.sci[k], "ERR": ramp.err[k], "DQ": ramp.dq[k],
            "SAMP": ramp.samp[k], "TIME": ramp.time[k],
        }  # fmt: skip
        hdus.extend(_imset_hdus(arrays, ramp.read_headers[k], ramp.nsamp - k))
    return _write_hdus(hdus, path, overwrite)


def write_flt(flt: FLTImage, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write an FLT: the primary header and one imset (SCI, ERR, DQ, SAMP, TIME)."""
    path = Path(path)
    arrays = {"SCI": flt.sci, "ERR": flt.err, "DQ": flt.dq, "SAMP": flt.samp, "TIME": flt.time}
    hdus = [_primary_hdu(flt.primary, path, 5), *_imset_hdus(arrays, flt.sci_header, 1)]
    return _write_hdus(hdus, path, overwrite)


def write_asn(
    path: str | Path,
    asn_id: str,
    members: list[str],
    *,
    primary: fits.Header | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an association table: one EXP-DTH row per member and the PROD-DTH product row."""
    path = Path(path)
    names = [m.upper() for m in members] + [asn_id.upper()]
    types = ["EXP-DTH"] * len(members) + ["PROD-DTH"]
    columns = [
        fits.Column(name="MEMNAME", format="14A", array=np.array(names)),
        fits.Column(name="MEMTYPE", format="14A", array=np.array(types)),
        fits.Column(name="MEMPRSNT", format="L", array=np.ones(len(names), dtype=bool)),
    ]
    header = primary.copy() if primary is not None else fits.Header()
    header["ASN_ID"] = asn_id.upper()
    header["ASN_TAB"] = path.name
    header["FILENAME"] = path.name
    table = fits.BinTableHDU.from_columns(columns, name="ASN")
    hdus = [fits.PrimaryHDU(header=header), table]
    with atomic_output(path, overwrite=overwrite) as tmp:
        fits.HDUList(hdus).writeto(tmp, output_verify="silentfix")
    return path


def read_asn(path: str | Path) -> list[tuple[str, str, bool]]:
    """Rows of an association table as (MEMNAME lower-case, MEMTYPE, MEMPRSNT)."""
    path = Path(path)
    hdul = _open_hdul(path)
    with hdul:
        if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
            raise InputFileError(path, "not an association table (no BINTABLE extension)")
        data = hdul[1].data
        missing = {"MEMNAME", "MEMTYPE", "MEMPRSNT"} - {c.upper() for c in data.columns.names}
        if missing:
            raise InputFileError(path, f"association table lacks {', '.join(sorted(missing))}")
        return [
            (
                str(row["MEMNAME"]).strip().lower(),
                str(row["MEMTYPE"]).strip(),
                bool(row["MEMPRSNT"]),
            )
            for row in data
        ]
