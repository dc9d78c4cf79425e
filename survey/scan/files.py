"""Which files to scan, and whether they changed since the last scan.

A file is *unchanged* when its size, modification time (ns), content fingerprint, the state of
its FLT/RAW neighbours and the scan parameters all equal what the catalog recorded. The
fingerprint is a BLAKE2b hash of the size and the first and last 64 KiB (primary header, first
extension headers and the end of the last read): cheap, and it notices a file rewritten with
the same size and a restored modification time.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputFileError

__all__ = ["IMA_SUFFIXES", "FileInfo", "discover", "file_info", "ima_stem", "is_ima_name"]

_CHUNK = 64 * 1024
IMA_SUFFIXES = ("_ima.fits", "_ima.fits.gz")


def ima_stem(path: Path) -> str:
    """``<stem>`` of ``<stem>_ima.fits[.gz]`` (the file name, never a header value)."""
    name = path.name
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


def discover(paths: list[Path] | tuple[Path, ...]) -> list[Path]:
    """IMA files under ``paths``: directories are searched recursively for
    ``*_ima.fits[.gz]``; files are taken as given (checked when scanned). Sorted, absolute,
    symlinks resolved, duplicates removed. A missing path is an :class:`InputFileError`.
    """
    found: dict[str, Path] = {}
    for given in paths:
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
