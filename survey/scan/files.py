"""Which files to scan, and whether they changed since the last scan.

A file is *unchanged* when its size, modification time (ns), content fingerprint, the state of
its FLT/RAW neighbours and the scan parameters all equal what the catalog recorded. The
fingerprint is a BLAKE2b hash of the size and the first and last 64 KiB (primary header, first
extension headers and the end of the last read): cheap, and it notices a file rewritten with
the same size and a restored modification time.

Inputs are local paths (the fast path: ``os.walk``, ``stat``) or fsspec URLs (``s3://…``,
``gs://…``, ``file://…``, ``memory://…``), which are kept as URL strings everywhere (catalog
``path`` included). For a URL the modification time is the store's (``mtime``,
``LastModified``, ``updated`` or ``created``, whichever it gives) and its ETag/generation, if
any, joins the fingerprint; one directory listing serves every file of a directory, and the
head/tail reads of the fingerprints run in a few threads (object stores are latency-bound).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputFileError

__all__ = [
    "IMA_SUFFIXES",
    "FileInfo",
    "discover",
    "fetch",
    "file_info",
    "ima_stem",
    "is_ima_name",
    "is_url",
    "name_of",
    "remote_infos",
    "remote_neighbour",
    "still_exists",
    "url_error",
    "url_filesystem",
]

_CHUNK = 64 * 1024
IMA_SUFFIXES = ("_ima.fits", "_ima.fits.gz")


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_THREADS = 16  # concurrent fingerprint reads of remote files (latency-bound, not CPU)
_COPY_BLOCK = 8 * 1024 * 1024


def is_url(path: object) -> bool:
    """True for an fsspec URL (``scheme://…``); ``Path`` objects are always local."""
    return isinstance(path, str) and _URL.match(path) is not None


def name_of(path: str | Path) -> str:
    """The file name of a local path or of a URL."""
    return posixpath.basename(path) if is_url(path) else Path(path).name


def ima_stem(path: str | Path) -> str:
    """``<stem>`` of ``<stem>_ima.fits[.gz]`` (the file name, never a header value)."""
    name = name_of(path)
    for suffix in IMA_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class FileInfo:
    """The state of one input file when it was looked at."""

    path: str
    size: int
    mtime_ns: int
    fingerprint: str
    neighbours_sig: str


def is_ima_name(name: str) -> bool:
    return name.lower().endswith(IMA_SUFFIXES)


def discover(paths: Iterable[str | Path]) -> list[Path | str]:
    """IMA files under ``paths``: directories are searched recursively for
    ``*_ima.fits[.gz]``; files are taken as given (checked when scanned). Sorted, absolute,
    symlinks resolved, duplicates removed; URLs stay URL strings. A missing path is an
    :class:`InputFileError`.
    """
    found: dict[str, Path | str] = {}
    for given in paths:
        if is_url(given):
            for url in _discover_url(str(given)):
                found.setdefault(url, url)
            continue
        path = Path(given)
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs.sort()
                for name in sorted(names):
                    candidate = Path(root) / name
                    if is_ima_name(name) and candidate.is_file():
                        resolved = candidate.resolve()
                        found.setdefault(str(resolved), resolved)
        elif path.is_file():
            resolved = path.resolve()
            found.setdefault(str(resolved), resolved)
        else:
            raise InputFileError(path, "no such file or directory")
    return [found[key] for key in sorted(found)]


def _fingerprint(path: Path, size: int) -> str:
    digest = hashlib.blake2b(size.to_bytes(8, "little"), digest_size=16)
    with open(path, "rb") as stream:
        digest.update(stream.read(_CHUNK))
        if size > 2 * _CHUNK:
            stream.seek(size - _CHUNK)
        digest.update(stream.read(_CHUNK))
    return digest.hexdigest()


def _neighbours_sig(path: Path) -> str:
    """Names, sizes and mtimes of the FLT/RAW files beside an IMA (they feed the catalog)."""
    stem = ima_stem(path)
    parts = []
    for kind in ("flt", "raw"):
        for suffix in (".fits", ".fits.gz"):
            candidate = path.parent / f"{stem}_{kind}{suffix}"
            try:
                st = candidate.stat()
            except OSError:
                continue
            parts.append(f"{candidate.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()


def file_info(path: Path) -> FileInfo:
    """Size, mtime, fingerprint and neighbour state of a file (OSError if unreadable)."""
    st = path.stat()
    return FileInfo(
        path=str(path),
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        fingerprint=_fingerprint(path, st.st_size),
        neighbours_sig=_neighbours_sig(path),
    )


# -- fsspec URLs ---------------------------------------------------------------------------


def url_error(url: str, problem: str) -> InputFileError:
    """An :class:`InputFileError` whose message shows the URL as given (``Path`` would fold
    ``s3://`` into ``s3:/``)."""
    error = InputFileError(url, problem)
    error.args = (f"{url}: {problem}",)
    return error


def url_filesystem(url: str):
    """(fsspec filesystem, path inside it) of ``url``; a missing protocol implementation
    (``s3fs``, ``gcsfs``…) or an unknown protocol is an :class:`InputFileError`."""
    try:
        import fsspec
    except ImportError:  # pragma: no cover - installed with dask
        raise url_error(url, "URLs need fsspec (pip install fsspec)") from None
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as exc:  # e.g. "Install s3fs to access S3"
        raise url_error(url, f"no fsspec implementation installed ({exc})") from None
    except ValueError as exc:  # "Protocol not known: xyz"
        raise url_error(url, f"cannot use this URL ({exc})") from None


def still_exists(path: str | Path) -> bool:
    """Whether a catalogued file (local path or fsspec URL) is still there; an unreachable
    store counts as present, so a duplicate ROOTNAME is reported rather than silently kept."""
    if not is_url(path):
        return Path(path).exists()
    try:
        fs, inner = url_filesystem(str(path))
        return bool(fs.exists(inner))
    except (InputFileError, OSError):
        return True


def _discover_url(url: str) -> list[str]:
    fs, root = url_filesystem(url)
    try:
        if fs.isdir(root):
            found = [p for p in fs.find(root) if is_ima_name(posixpath.basename(p))]
            return sorted(fs.unstrip_protocol(p) for p in found)
        if fs.isfile(root):
            return [fs.unstrip_protocol(root)]
    except OSError as exc:
        raise url_error(url, f"cannot list it ({exc})") from None
    raise url_error(url, "no such file or directory")


def _mtime_ns(info: dict) -> int:
    """The store's modification time of a listing entry in ns (0 when it gives none)."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if isinstance(value, dt.datetime):
            return round(value.timestamp() * 1e6) * 1000
        if isinstance(value, int | float):
            return round(value * 1e6) * 1000
    return 0


def _tag(info: dict) -> str:
    """The store's content tag of a listing entry (ETag, generation…), or ``""``."""
    for key in ("ETag", "etag", "md5Hash", "generation", "version_id"):
        if info.get(key):
            return str(info[key])
    return ""


def _remote_fingerprint(fs, path: str, size: int, tag: str) -> str:
    digest = hashlib.blake2b(size.to_bytes(8, "little"), digest_size=16)
    digest.update(fs.cat_file(path, start=0, end=min(size, _CHUNK)))
    if size > _CHUNK:  # the same bytes as the local fingerprint reads
        start = size - _CHUNK if size > 2 * _CHUNK else _CHUNK
        digest.update(fs.cat_file(path, start=start, end=size))
    if tag:
        digest.update(tag.encode())
    return digest.hexdigest()


def _remote_neighbours_sig(listing: dict[str, dict], path: str) -> str:
    stem, parent = ima_stem(path), posixpath.dirname(path)
    parts = []
    for kind in ("flt", "raw"):
        for suffix in (".fits", ".fits.gz"):
            entry = listing.get(f"{parent}/{stem}_{kind}{suffix}")
            if entry is not None:
                size, mtime = entry.get("size"), _mtime_ns(entry)
                parts.append(f"{stem}_{kind}{suffix}:{size}:{mtime}{_tag(entry)}")
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()


def _remote_info(fs, listing: dict[str, dict], url: str) -> FileInfo:
    path = fs._strip_protocol(url)
    entry = listing.get(path)
    if entry is None:
        raise FileNotFoundError(2, "no such file", url)
    size = int(entry["size"])
    return FileInfo(
        path=url,
        size=size,
        mtime_ns=_mtime_ns(entry),
        fingerprint=_remote_fingerprint(fs, path, size, _tag(entry)),
        neighbours_sig=_remote_neighbours_sig(listing, path),
    )


def remote_infos(urls: list[str]) -> dict[str, FileInfo | OSError]:
    """:class:`FileInfo` of each URL (or the ``OSError`` that prevented it): one listing per
    directory, the fingerprint reads in threads."""
    from concurrent.futures import ThreadPoolExecutor

    if not urls:
        return {}
    listings: dict[tuple[int, str], dict[str, dict]] = {}
    tasks = []
    for url in urls:
        fs, path = url_filesystem(url)
        key = (id(fs), posixpath.dirname(path))
        if key not in listings:
            try:
                entries = fs.ls(key[1], detail=True)
            except OSError:
                entries = []
            listings[key] = {fs._strip_protocol(e["name"]): e for e in entries}
        tasks.append((fs, listings[key], url))

    def one(task) -> FileInfo | OSError:
        try:
            return _remote_info(*task)
        except OSError as exc:
            return exc

    with ThreadPoolExecutor(min(_THREADS, max(1, len(tasks)))) as pool:
        return dict(zip(urls, pool.map(one, tasks), strict=True))


def remote_neighbour(fs, parent: str, stem: str, kind: str) -> str | None:
    """``<parent>/<stem>_<kind>.fits[.gz]`` in ``fs`` if it exists (names from the IMA's file
    name or a validated ASN_ID only)."""
    for suffix in (".fits", ".fits.gz"):
        candidate = f"{parent}/{stem}_{kind}{suffix}"
        if fs.isfile(candidate):
            return candidate
    return None


def fetch(fs, path: str, directory: Path) -> Path:
    """Stream-copy ``path`` of ``fs`` into ``directory`` (same file name); the local copy."""
    import shutil

    target = directory / posixpath.basename(path)
    with fs.open(path, "rb") as source, open(target, "wb") as copy:
        shutil.copyfileobj(source, copy, _COPY_BLOCK)
    return target
