"""`survey scan`: per-read sky statistics of every IMA of a program into a DuckDB catalog.

Layout (data flows top to bottom):

- :mod:`~survey.scan.files` — which files, and did they change (size, mtime, fingerprint);
- :mod:`~survey.scan.measure` — one IMA → rows (streams one read at a time; worker side);
- :mod:`~survey.scan.stats`, :mod:`~survey.scan.regions` — per-read statistics from arrays
  (no I/O), with the numba kernels in ``_kernels``/``_histogram``;
- :mod:`~survey.scan.catalog` — DuckDB schema and one transaction per file (main process);
- :mod:`~survey.scan.runner` — the scan: plan, parallel compute, ordered writes, summary;
- :mod:`~survey.scan.command` — the click command.

The public names below are imported lazily, so importing the command stays instant.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

__all__ = [
    "Catalog",
    "CatalogError",
    "ExposureResult",
    "ScanParameters",
    "ScanSummary",
    "measure_exposure",
    "reference_stats",
    "scan_paths",
]

_WHERE = {
    "Catalog": "catalog",
    "CatalogError": "catalog",
    "ExposureResult": "measure",
    "ScanParameters": "params",
    "ScanSummary": "runner",
    "measure_exposure": "measure",
    "reference_stats": "stats",
    "scan_paths": "runner",
}

if TYPE_CHECKING:
    from .catalog import Catalog, CatalogError
    from .measure import ExposureResult, measure_exposure
    from .params import ScanParameters
    from .runner import ScanSummary, scan_paths
    from .stats import reference_stats


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
