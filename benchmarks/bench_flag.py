"""Benchmark of ``survey flag``: ranking a synthetic catalog of 100,000 exposures × 15 reads.

The catalog's rows are inserted straight into the tables (:mod:`survey.flag.synthetic`):
STEP200 full-frame reads with a 0.5 e⁻/s sky, a quarter of the exposures with a He I-like
rise, a tenth with a left-side brightening, and 5% grism. Timed, best of ``--repeat``:

- **rank**: the triage query ``100_ranking.sql`` (views 020/030 included) on an open catalog,
  to a polars frame — the target is ≤ 2 s;
- **flag**: the whole :func:`survey.flag.flag_catalog` (open, checks, rank, write ``flags``).

Run: ``python benchmarks/bench_flag.py [--exposures 100000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]


def build(path: Path, n: int, seed: int = 0) -> None:
    from survey.flag.synthetic import STEP200_TIMES, write_synthetic_catalog

    rng = np.random.default_rng(seed)
    k = len(STEP200_TIMES)
    rates = 0.5 + rng.normal(0, 0.005, (n, k))
    he = rng.random(n) < 0.25
    ramp = np.clip((STEP200_TIMES - 400.0) / 600.0, 0, 1)
    rates[he] += rng.uniform(0.2, 2.0, (he.sum(), 1)) * ramp
    left = rates.copy()
    limb = (rng.random(n) < 0.1) & ~he
    left[limb] += rng.uniform(0.2, 1.0, (limb.sum(), 1)) * ramp
    filters = np.where(rng.random(n) < 0.05, "G102", "F105W").tolist()
    write_synthetic_catalog(path, rates, left=left, filters=filters)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exposures", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    import duckdb

    from survey.flag import FlagParameters, flag_catalog, rank
    from survey.scan.catalog import load_sql

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        t0 = time.perf_counter()
        build(path, args.exposures)
        print(f"built {args.exposures} exposures × 15 reads in {time.perf_counter() - t0:.1f} s")
        params = FlagParameters()
        con = duckdb.connect(str(path))
        for name in ("020_read_metrics.sql", "030_exposure_metrics.sql"):
            con.execute(load_sql(name)).fetchall()
        best_rank = best_flag = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            frame = rank(con, params)
            best_rank = min(best_rank, time.perf_counter() - t0)
        con.close()
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            flag_catalog(path, params)
            best_flag = min(best_flag, time.perf_counter() - t0)
        counts = dict(frame["verdict"].value_counts().rows())
        print(f"verdicts: {counts}")
        status = "OK" if best_rank <= 2.0 else "SLOW"
        print(f"rank (100_ranking.sql → polars): {best_rank:.3f} s  [target ≤ 2 s: {status}]")
        print(f"flag_catalog (checks + rank + write flags): {best_flag:.3f} s")


if __name__ == "__main__":
    main()
