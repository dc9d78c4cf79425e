"""A lean opener of plain WFC3/IR FITS files for the scanner: the same answers, less parsing.

``astropy.io.fits.open`` builds an HDU object and a parsed header for each of the 81 HDUs of a
16-read IMA (~20 ms, most of a scan's read floor), although the scan needs a dozen values per
read. Here the header blocks are walked directly: each card's 80-character image is kept by
keyword and parsed, when a value is asked for, by astropy's own :class:`~astropy.io.fits.Card`
(so every value, and every invalid-card error, is astropy's). Arrays are read straight into
native-endian buffers (``preadv`` then an in-place byte swap): no memory map, no second copy.

Validation is not redone here: :class:`LeanExposure` subclasses
:class:`survey.wfc3ir.fitsio.MultiAccumFile` and runs its checks and messages unchanged on the
lean headers. Only **plain** files take the lean path — uncompressed; headers of printable
ASCII with a valid END, every keyword card ``KEYWORD = value`` (commentary cards aside), no
CONTINUE/HIERARCH, no tile compression; images without BSCALE/BZERO/BLANK; the file exactly as
long as its HDUs (padding included). A header with a duplicated keyword or a string value that
could be a record-valued card is parsed by astropy in full. Anything else — and any warning
while parsing — is opened by :func:`survey.wfc3ir.fitsio.open_exposure` instead, which also
gives the one-line errors: the lean path never judges a file astropy would read differently.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.io.fits.card import UNDEFINED

from ..errors import InputFileError
from ..wfc3ir.fitsio import (
    EXTNAMES,
    MultiAccumFile,
    _expand,
    _reason,
    open_exposure,
)
from ._kernels import byteswap_inplace

__all__ = ["LeanExposure", "LeanHeader", "NotPlainError", "open_lean", "read_flt_sky"]

_BLOCK = 2880
_CARD = 80
_END = b"END" + b" " * 77
_COMMENTARY = frozenset({"COMMENT", "HISTORY", ""})
#: a header of plain cards: commentary, long-string continuation, or an upper-case keyword
#: with "= " in columns 9-10 (HIERARCH and other free-format cards do not have it)
_PLAIN_CARDS = re.compile(
    rb"(?:(?:COMMENT |HISTORY |        )[\x20-\x7e]{72}|CONTINUE  [\x20-\x7e]{70}"
    rb"|(?=[A-Z0-9_-][A-Z0-9_ -]{7}= )[A-Z0-9_-]+ *= [\x20-\x7e]{70})*"
)
#: a card (at a multiple of 80 characters) whose string value starts with a letter and holds
#: a colon, as the value of a record-valued keyword card ('AXIS.1: 1') does
_RVKC_LIKE = re.compile(r"(?:.{80})*?.{8}= *'[a-zA-Z_][^']*:", re.DOTALL)
_PRINTABLE = re.compile(rb"[\x20-\x7e]*")
_MAX_HEADER_BLOCKS = 200  # 7,200 cards: far beyond any HST header
_SCALING = ("BSCALE", "BZERO", "BLANK")
#: keywords astropy may read while opening a file (a value that does not parse, or parses
#: with a warning, sends the file to astropy)
_STRUCTURAL = (
    "SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "GROUPS",
    "EXTNAME", "EXTVER", "EXTLEVEL", *_SCALING, "ZIMAGE", "TFIELDS", "THEAP", "INHERIT",
)  # fmt: skip
#: on-disk types :meth:`LeanExposure.read_into` reads into a reused buffer
_DISK = {("SCI", -32): np.dtype(">f4"), ("DQ", 16): np.dtype(">i2")}
#: astropy's value of a card image (values are immutable; images repeat across HDUs)
_VALUES: dict[str, object] = {}


class NotPlainError(Exception):
    """The file is not plain enough for the lean path (open it with astropy)."""


def _card_value(image: str) -> object:
    """``Card.fromstring(image).value``, cached by image."""
    try:
        return _VALUES[image]
    except KeyError:
        pass
    value = fits.Card.fromstring(image).value  # an invalid card raises, as in a Header
    if len(_VALUES) >= 8192:
        _VALUES.clear()
    _VALUES[image] = value
    return value


class LeanHeader:
    """The values of one header, parsed by astropy's :class:`Card` only when asked for.

    Answers ``get``, ``[]`` and ``in`` exactly as :class:`astropy.io.fits.Header` would for
    this header; anything else (iteration, ``cards``, ``copy``) is served by an astropy
    header parsed from the same text on first use.
    """

    __slots__ = ("_full", "_index", "_text")

    def __init__(self, text: str, index: dict[str, int] | None):
        self._text = text
        self._index = index  # keyword -> card offset; None: astropy parses the whole header
        self._full: fits.Header | None = None

    def first_keyword(self) -> str:
        return self._text[:8].rstrip()

    @property
    def lean(self) -> bool:
        """Whether values are parsed card by card (else by astropy's whole header)."""
        return self._index is not None

    def full(self) -> fits.Header:
        """The header parsed by astropy (cached)."""
        if self._full is None:
            self._full = fits.Header.fromstring(self._text)
        return self._full

    def _keyword(self, key: object) -> str | None:
        """The lean lookup key, or None when the full header must answer."""
        if self._index is None or not isinstance(key, str):
            return None
        key = key.strip().upper()
        if not 0 < len(key) <= 8 or "." in key or key in _COMMENTARY:
            return None
        return key

    def __getitem__(self, key):
        keyword = self._keyword(key)
        if keyword is None:
            return self.full()[key]
        at = self._index.get(keyword)
        if at is None:
            raise KeyError(f"Keyword {key!r} not found.")
        value = _card_value(self._text[at : at + _CARD])
        return None if value == UNDEFINED else value

    def get(self, key, default=None):
        try:
            return self[key]
        except (KeyError, IndexError):
            return default

    def __contains__(self, key) -> bool:
        keyword = self._keyword(key)
        return key in self.full() if keyword is None else keyword in self._index

    def __iter__(self):
        """Every card's keyword in order, as astropy's (commentary ones included)."""
        if self._index is None:
            return iter(self.full())
        return (self._text[i : i + 8].rstrip() for i in range(0, len(self._text), _CARD))

    def __len__(self) -> int:
        return len(self._text) // _CARD if self._index is not None else len(self.full())

    @property
    def cards(self):
        return self.full().cards

    def copy(self) -> fits.Header:
        return self.full().copy()

    def tostring(self, *args, **kwargs) -> str:
        return self.full().tostring(*args, **kwargs)


# -- header blocks -------------------------------------------------------------------------


def _pread(fd: int, size: int, offset: int) -> bytes:
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise NotPlainError("short read")
    return data


def _header_cards(fd: int, offset: int) -> tuple[bytes, int]:
    """The cards of the header at ``offset`` (END excluded) and the offset after it."""
    blocks = []
    for n in range(1, _MAX_HEADER_BLOCKS + 1):
        block = _pread(fd, _BLOCK, offset + (n - 1) * _BLOCK)
        blocks.append(block)
        at = block.find(b"END")
        while at >= 0 and at % _CARD:
            at = block.find(b"END", at + 1)
        if at < 0:
            continue
        if block[at : at + _CARD] != _END or not _PRINTABLE.fullmatch(block):
            raise NotPlainError("irregular END card or header bytes")
        if block[at + _CARD :].strip():
            raise NotPlainError("cards after END")
        cards = b"".join(blocks)[: (n - 1) * _BLOCK + at]
        if not _PLAIN_CARDS.fullmatch(cards):
            raise NotPlainError("non-standard cards")
        return cards, offset + n * _BLOCK
    raise NotPlainError("no END card")


def _card_index(text: str) -> dict[str, int] | None:
    """Card offset by keyword; None when astropy must parse the header in full (a duplicated
    keyword, a long string continued on CONTINUE cards, or a string value that could make a
    record-valued keyword card)."""
    offsets = range(0, len(text), _CARD)
    keys = [text[i : i + 8].rstrip() for i in offsets]
    index = dict(zip(reversed(keys), reversed(offsets), strict=True))
    for key in _COMMENTARY:
        index.pop(key, None)
    if "ZIMAGE" in index:
        raise NotPlainError("compressed image")
    n_commentary = sum(1 for key in keys if key in _COMMENTARY)
    duplicates = len(index) + n_commentary != len(keys)  # CONTINUE cards repeat too
    # a CONTINUE card extends the string of the card before it: astropy joins them
    if duplicates or "CONTINUE" in index or (":" in text and _RVKC_LIKE.match(text)):
        return None
    return index


# -- HDUs ----------------------------------------------------------------------------------


def _integer(header: LeanHeader, key: str, default: int | None = None) -> int:
    value = header.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise NotPlainError(f"{key} is not a non-negative integer")
    return value


class LeanHDU:
    """One HDU of a plain file: its header and where its data lies."""

    __slots__ = ("bitpix", "data_offset", "fd", "header", "shape")

    def __init__(self, header: LeanHeader, data_offset: int, primary: bool, fd: int):
        self.header = header
        self.data_offset = data_offset
        self.fd = fd
        first = header.first_keyword()
        if primary and (first != "SIMPLE" or header.get("SIMPLE") is not True):
            raise NotPlainError("not a simple primary header")
        if not primary and (first != "XTENSION" or not isinstance(header["XTENSION"], str)):
            raise NotPlainError("not a standard extension")
        for key in _STRUCTURAL:  # astropy reads these while opening: they must all parse
            header.get(key)
        if "ZIMAGE" in header or "GROUPS" in header:
            raise NotPlainError("compressed image or random groups")
        self.bitpix = header.get("BITPIX")
        if self.bitpix not in (8, 16, 32, 64, -32, -64) or isinstance(self.bitpix, bool):
            raise NotPlainError("unusual BITPIX")
        naxis = _integer(header, "NAXIS")
        if naxis > 999:
            raise NotPlainError("NAXIS")
        self.shape = tuple(_integer(header, f"NAXIS{i}") for i in range(naxis, 0, -1))

    def data_size(self) -> int:
        """Bytes of data (padding excluded), as the FITS standard defines them."""
        if not self.shape:
            return 0
        pcount = _integer(self.header, "PCOUNT", 0)
        gcount = _integer(self.header, "GCOUNT", 1)
        return abs(self.bitpix) // 8 * gcount * (pcount + int(np.prod(self.shape)))

    def check_image(self) -> None:
        """Raise NotPlainError unless the data of this image HDU can be read as stored values."""
        header = self.header
        if not self.shape:
            return
        if header.get("XTENSION") != "IMAGE" or any(k in header for k in _SCALING):
            raise NotPlainError("scaled or non-IMAGE data")
        if _integer(header, "PCOUNT", 0) != 0 or _integer(header, "GCOUNT", 1) != 1:
            raise NotPlainError("PCOUNT/GCOUNT")

    @property
    def data(self) -> np.ndarray | None:
        """The stored values as astropy's ``hdu.data`` gives an unscaled image: big-endian,
        None without data (scaled or non-image data is left to astropy)."""
        if not self.shape:
            return None
        try:
            self.check_image()
        except NotPlainError:
            raise NotImplementedError("scaled or non-image data: read it with astropy") from None
        raw = np.empty(self.shape, _disk_dtype(self.bitpix))
        _fill(self, raw, swap=False)
        return raw


def _disk_dtype(bitpix: int) -> np.dtype:
    """The on-disk (big-endian) type of image data of ``bitpix``."""
    if bitpix == 8:
        return np.dtype("u1")
    return np.dtype(f">{'f' if bitpix < 0 else 'i'}{abs(bitpix) // 8}")


def _fill(hdu: LeanHDU, raw: np.ndarray, *, swap: bool) -> None:
    """Read the HDU's data into ``raw`` (typed as on disk); with ``swap``, reverse the bytes of
    big-endian values in place, so that ``raw`` viewed in native order holds them."""
    view = memoryview(raw.reshape(-1).view(np.uint8))
    done = 0
    while done < raw.nbytes:
        n = os.preadv(hdu.fd, [view[done:]], hdu.data_offset + done)
        if n <= 0:  # the file shrank after it was opened
            raise OSError(f"unexpected end of file at byte {hdu.data_offset + done}")
        done += n
    if swap and raw.dtype.byteorder == ">":
        if raw.itemsize in (2, 4):
            byteswap_inplace(raw.reshape(-1).view(f"u{raw.itemsize}"))
        else:
            raw.byteswap(inplace=True)


def _read_hdus(fd: int, size: int) -> list[LeanHDU]:
    hdus: list[LeanHDU] = []
    offset = 0
    while offset < size:
        cards, data_offset = _header_cards(fd, offset)
        text = cards.decode("ascii")
        primary = not hdus
        header = LeanHeader(text, _card_index(text))
        if not header.lean:
            header.full()  # (here, where a warning sends the file to astropy)
        hdu = LeanHDU(header, data_offset, primary, fd)
        hdus.append(hdu)
        nbytes = hdu.data_size()
        offset = data_offset + -(-nbytes // _BLOCK) * _BLOCK
    if offset != size or not hdus:
        raise NotPlainError("file length does not match its HDUs")
    return hdus


class _HDUList(list):
    """The lean HDUs and the open file (``close`` closes it)."""

    def __init__(self, hdus: list[LeanHDU], fd: int):
        super().__init__(hdus)
        self.fd = fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _open_plain(path: Path) -> _HDUList:
    """The HDUs of a plain file, or NotPlainError (the file is then left to astropy)."""
    if path.suffix.lower() not in (".fits", ".fit", ".fts"):
        raise NotPlainError("compressed or unusual suffix")
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        raise NotPlainError("cannot open") from None
    try:
        size = os.fstat(fd).st_size
        if size < _BLOCK or size % _BLOCK:
            raise NotPlainError("not whole blocks")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                hdus = _read_hdus(fd, size)
            except NotPlainError:
                raise
            except Exception as exc:  # e.g. an unparsable structural card
                raise NotPlainError(str(exc)) from None
        if caught:
            raise NotPlainError("astropy warned")
        return _HDUList(hdus, fd)
    except BaseException:
        os.close(fd)
        raise


class LeanExposure(MultiAccumFile):
    """:class:`MultiAccumFile` over a plain file: the same validation, values and arrays.

    Raises :class:`NotPlainError` when the file must be opened by astropy instead (use
    :func:`open_lean`, which does that).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._hdul = _open_plain(self.path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a warning here: let astropy handle the file
                self.primary = self._hdul[0].header
                self._index = self._validate()
                self.meta  # noqa: B018  (as MultiAccumFile: every keyword must parse now)
        except (Warning, NotPlainError):
            self._hdul.close()
            raise NotPlainError("warning while validating") from None
        except fits.VerifyError as exc:
            self._hdul.close()
            raise InputFileError(self.path, f"invalid header card ({_reason(exc)})") from None
        except Exception:
            self._hdul.close()
            raise
        try:  # the arrays extension() may read must be plain images
            for (name, _), i in self._index.items():
                if name in EXTNAMES:
                    self._hdul[i].check_image()
        except NotPlainError:
            self._hdul.close()
            raise

    def extension(self, name: str, k: int, *, science: bool = False) -> np.ndarray:
        """Array of extension ``name`` for read ``k`` (time order), as MultiAccumFile's."""
        if not 0 <= k < self.nsamp:
            raise IndexError(f"read {k} out of range 0..{self.nsamp - 1}")
        hdu = self._hdul[self._index[(name, self.nsamp - k)]]
        if not hdu.shape:
            data = _expand(hdu, name, self.path)  # header-only constant (or an error)
        else:
            data = self._read(hdu, name)
        if data.shape != self.shape:
            raise InputFileError(self.path, f"{name} of read {k} has shape {data.shape}")
        if science:
            from ..wfc3ir.detector import science_slice

            data = data[science_slice(*data.shape)]
        return data

    def check_extension(self, name: str, k: int) -> None:
        """The errors :meth:`extension` would raise, without reading the pixels."""
        hdu = self._hdul[self._index[(name, self.nsamp - k)]]
        shape = _expand(hdu, name, self.path).shape if not hdu.shape else hdu.shape
        if shape != self.shape:
            raise InputFileError(self.path, f"{name} of read {k} has shape {shape}")

    def read_into(self, name: str, k: int, out: np.ndarray) -> np.ndarray:
        """:meth:`extension` ``(name, k)``, read into ``out`` (float32 for SCI, uint16 for DQ,
        the whole array's shape) when the file stores it so; else a new array.

        Reusing buffers spares the page faults of fresh memory (~0.5 ms per full-frame read).
        """
        hdu = self._hdul[self._index[(name, self.nsamp - k)]] if 0 <= k < self.nsamp else None
        disk = _DISK.get((name, getattr(hdu, "bitpix", None)))
        if disk is None or hdu.shape != self.shape or out.shape != self.shape:
            return self.extension(name, k)
        if out.dtype != disk.newbyteorder("=") and not (name == "DQ" and out.dtype == np.uint16):
            return self.extension(name, k)
        self._fill(hdu, name, out.view(disk))
        return out

    def _read(self, hdu: LeanHDU, name: str) -> np.ndarray:
        """The pixels of an image HDU in native byte order (one read, an in-place swap),
        typed as :func:`survey.wfc3ir.fitsio._expand` returns them."""
        raw = np.empty(hdu.shape, _disk_dtype(hdu.bitpix))
        self._fill(hdu, name, raw)
        return _as_expanded(raw.view(raw.dtype.newbyteorder("=")), name)

    def _fill(self, hdu: LeanHDU, name: str, raw: np.ndarray) -> None:
        try:
            _fill(hdu, raw, swap=True)
        except OSError as exc:
            raise InputFileError(self.path, f"{name}: cannot read the data ({exc})") from None


def _as_expanded(data: np.ndarray, name: str) -> np.ndarray:
    """The dtype :func:`_expand` gives: DQ as uint16, SCI/ERR/TIME float32, else int16."""
    if name == "DQ":
        return data.astype(np.int16, copy=False).view(np.uint16)
    native = np.float32 if name in ("SCI", "ERR", "TIME") else np.int16
    return data.astype(native, copy=False)


def open_lean(path: str | Path) -> MultiAccumFile:
    """Open and validate a WFC3/IR file: leanly if it is plain, else with astropy.

    Either way the result behaves as :func:`survey.wfc3ir.fitsio.open_exposure`'s (the same
    values, arrays and one-line errors); use it as a context manager.
    """
    try:
        return LeanExposure(path)
    except NotPlainError:
        return open_exposure(path)


def read_flt_sky(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """SCI and DQ of an FLT, with the checks and errors of
    :func:`survey.wfc3ir.fitsio.read_flt` (every extension of the imset must be readable)."""
    with open_lean(path) as exposure:
        if exposure.kind != "flt":
            raise InputFileError(path, f"has {exposure.nsamp} imsets; an FLT has one")
        if isinstance(exposure, LeanExposure):
            for name in EXTNAMES:
                exposure.check_extension(name, 0)
            return exposure.sci(0), exposure.dq(0)
        arrays = {name: exposure.extension(name, 0) for name in EXTNAMES}
        return arrays["SCI"], arrays["DQ"]
