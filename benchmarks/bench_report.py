"""Benchmark of ``survey report`` on a large synthetic program (no FITS files).

The catalog's ``exposures``/``reads`` rows are inserted straight into the tables
(:mod:`survey.flag.synthetic`): STEP200 full-frame reads with a 0.5 e⁻/s sky, a quarter of the
exposures with a He I-like rise, a tenth with a left-side brightening; 8 exposures per visit.
``survey flag`` runs on it, then :func:`survey.report.write_report` is timed. Printed: the
time, the number of pages, the index size and the largest visit page (goal: no page with tens
of MB of inline data; the inlined Vega bundle is ~0.9 MB of every page).

Run: ``python benchmarks/bench_report.py [--exposures 2000] [--per-visit 8]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]


def build(path: Path, n: int, per_visit: int, seed: int = 0) -> None:
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
    # rootname ipppssoot: program and visit from the exposure's visit number, ``oo`` its index
    names = [
        f"i{(i // per_visit) // 100:03d}{(i // per_visit) % 100:02d}{i % per_visit:02d}q"
        for i in range(n)
    ]
    write_synthetic_catalog(path, rates, left=left, rootnames=names)


def main(argv: list[str] | None = None) -> None:
    from survey.flag.triage import FlagParameters, flag_catalog
    from survey.report import write_report

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exposures", type=int, default=2000)
    parser.add_argument("--per-visit", type=int, default=8)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Path(tmp) / "big.duckdb"
        build(catalog, args.exposures, args.per_visit)
        flag_catalog(catalog, FlagParameters())
        start = time.perf_counter()
        result = write_report(catalog, Path(tmp) / "reports")
        elapsed = time.perf_counter() - start
        sizes = {p.name: p.stat().st_size for p in result.pages}
        visit_sizes = [size for name, size in sizes.items() if name != "index.html"]
        print(
            f"{args.exposures} exposures, {result.n_visits} visits: {elapsed:.1f} s "
            f"({elapsed / len(result.pages) * 1e3:.0f} ms/page), {len(result.pages)} pages, "
            f"{sum(sizes.values()) / 1e6:.0f} MB in all; index {sizes['index.html'] / 1e6:.2f} MB, "
            f"largest visit page {max(visit_sizes) / 1e6:.2f} MB"
        )


if __name__ == "__main__":
    main()
