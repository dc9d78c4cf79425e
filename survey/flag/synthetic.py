"""Synthetic catalog rows for tests and the benchmark of ``survey flag``.

Writes ``exposures`` and ``reads`` rows straight into a catalog (no FITS files): per-read
instantaneous sky rates are given, everything else gets plausible constants. Rows go in as
Arrow batches through the scanner's own ``scan/insert_*.sql``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

__all__ = ["STEP200_TIMES", "write_synthetic_catalog"]

#: SAMPTIME of a full-frame STEP200, NSAMP = 16 (domain reference §1, ibohbfb9q).
STEP200_TIMES = np.array([2.93, 5.86, 8.80, 11.73, 24.23, 49.23, 99.23, 199.23, 399.23, 599.23,
                          799.23, 999.23, 1199.23, 1399.23, 1599.23])  # fmt: skip


def write_synthetic_catalog(
    path: str | Path,
    rates: np.ndarray,
    *,
    left: np.ndarray | None = None,
    right: np.ndarray | None = None,
    times: np.ndarray = STEP200_TIMES,
    sigma: np.ndarray | float | None = None,
    npix: int = 1_000_000,
    filters: list[str] | None = None,
    rootnames: list[str] | None = None,
) -> list[str]:
    """Create ``path`` with one exposure per row of ``rates`` (e⁻/s, shape n × reads).

    ``left``/``right`` are the box rates (default: equal to ``rates``); ``sigma`` the per-pixel
    scatter of r_k (default √(rate·Δt)/Δt plus 20 e⁻ read noise, i.e. Poisson + CDS noise).
    """
    import pyarrow as pa

    from ..scan.catalog import Catalog, load_sql
    from ..scan.params import ScanParameters

    rates = np.atleast_2d(np.asarray(rates, dtype=np.float64))
    n, k = rates.shape
    times = np.asarray(times, dtype=np.float64)[:k]
    dts = np.diff(times, prepend=0.0)
    left = rates if left is None else np.atleast_2d(left)
    right = rates if right is None else np.atleast_2d(right)
    if sigma is None:
        sigma = np.sqrt(np.clip(rates, 0, None) * dts + 2 * 20.0**2) / dts
    sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (n, k))
    names = rootnames or [f"s{i:08d}" for i in range(n)]
    filters = filters or ["F105W"] * n
    grism = np.array([f.startswith("G") for f in filters])
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    exposure_batch = pa.table({  # noqa: F841 (found by DuckDB's replacement scan)
        "rootname": names,
        "path": [f"/synthetic/{r}_ima.fits" for r in names],
        "asn_id": [f"S{i // 6:07d}0" for i in range(n)],
        "filter": filters,
        "obstype": np.where(grism, "SPECTROSCOPIC", "IMAGING"),
        "samp_seq": ["STEP200"] * n,
        "nsamp": np.full(n, k + 1, dtype=np.int32),
        "exptime": np.full(n, times[-1]),
        "expstart": 56000.0 + np.arange(n) * 0.02,
        "naxis1": np.full(n, 1024, dtype=np.int32),
        "naxis2": np.full(n, 1024, dtype=np.int32),
        "n_science": np.full(n, 1014 * 1014, dtype=np.int32),
        "applicable": ~grism,
        "not_applicable_reason": [("grism" if g else None) for g in grism],
        "file_size": np.zeros(n, dtype=np.int64),
        "file_mtime_ns": np.zeros(n, dtype=np.int64),
        "fingerprint": ["synthetic"] * n,
        "neighbours_sig": ["synthetic"] * n,
        "params_digest": [ScanParameters().digest()] * n,  # as if scanned now
        "survey_version": ["synthetic"] * n,
        "scanned_at": [now] * n,
    })  # fmt: skip
    reads_batch = pa.table({  # noqa: F841 (found by DuckDB's replacement scan)
        "rootname": np.repeat(np.asarray(names, dtype=object), k),
        "sampnum": np.tile(np.arange(1, k + 1, dtype=np.int32), n),
        "samptime": np.tile(times, n),
        "deltatim": np.tile(dts, n),
        "median_rate": (np.cumsum(rates * dts, axis=1) / times).ravel(),
        "sky_median": (np.cumsum(rates * dts, axis=1) / times).ravel(),
        "inst_median": rates.ravel(),
        "inst_mean": rates.ravel(),
        "inst_sigma": sigma.ravel(),
        "inst_npix": np.full(n * k, npix, dtype=np.int32),
        "inst_nclip": np.full(n * k, npix, dtype=np.int32),
        "inst_left_median": left.ravel(),
        "inst_right_median": right.ravel(),
        "inst_left_mean": left.ravel(),
        "inst_right_mean": right.ravel(),
    })  # fmt: skip
    with Catalog(path) as catalog:
        catalog.con.execute("begin transaction").fetchall()
        catalog.con.execute(load_sql("scan/insert_exposure.sql")).fetchall()
        catalog.con.execute(load_sql("scan/insert_reads.sql")).fetchall()
        catalog.con.execute("commit").fetchall()
    return names
