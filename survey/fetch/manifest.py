"""Provenance of a fetched folder: ``OUT/fetch_manifest.json``.

The downloaded files are MAST's bytes and stay untouched, so what made them is recorded beside
them instead: per file its dataURI, obs_id, size, SHA-256 (computed while it streamed) and
when it came; per run the tool version, the MAST server, the options and the counts. Entries
of earlier runs are kept; the file is replaced atomically.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..atomic import atomic_output
from .criteria import FetchCriteria

if TYPE_CHECKING:
    from .download import FetchSummary

__all__ = ["MANIFEST_NAME", "read_manifest", "write_manifest"]

MANIFEST_NAME = "fetch_manifest.json"


def read_manifest(out_dir: str | Path) -> dict:
    """The manifest of ``out_dir``; an empty one if there is none or it is unreadable."""
    try:
        document = json.loads((Path(out_dir) / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return {"files": {}, "runs": []}
    if not isinstance(document, dict):
        return {"files": {}, "runs": []}
    document.setdefault("files", {})
    document.setdefault("runs", [])
    return document


def write_manifest(summary: FetchSummary, criteria: FetchCriteria, server: str) -> Path | None:
    """Add this run and the files it downloaded; nothing is written if none was."""
    if not summary.received:
        return None
    now = datetime.now(UTC).isoformat(timespec="seconds")
    document = read_manifest(summary.out_dir)
    for dest, (product, got) in summary.received.items():
        document["files"][dest.name] = {
            "dataURI": product.uri,
            "obs_id": product.obs_id,
            "size": got.nbytes,
            "sha256": got.sha256,
            "fetched": now,
        }
    document["runs"].append(
        {
            "tool": f"survey {__version__} fetch",
            "time": now,
            "server": server,
            "criteria": asdict(criteria),
            "downloaded": len(summary.downloaded),
            "present": len(summary.present),
            "failed": len(summary.failed),
            "refused": len(summary.refused),
        }
    )
    path = summary.out_dir / MANIFEST_NAME
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    return path
