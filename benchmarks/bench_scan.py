"""Benchmark of ``survey scan`` on full-frame 16-read IMAs, against the notebook way and the
read floor, all measured in one run (warm page cache).

Per file, best of ``--repeat`` rounds (the rounds interleave the methods, so a busy machine
slows them alike); wall and CPU time are both reported:

- **notebook**: ``wfc3tools.pstat(stat='midpt')`` over the science area, once with
  ``units='counts'`` and once with ``units='rate'`` (what the STScI notebooks do per file);
- **read floor**: only reading the 15 SCI arrays, as the issue defines it: open the IMA with
  astropy (``open_exposure`` + ``sci(k)``, and plain astropy memmap + conversion to native);
- **scanner's reader** (for information): what the scan itself reads, through its lean
  opener (:mod:`survey.scan.leanfits`: the same values, fewer parsed cards): open, then the
  SCI and DQ of the 15 reads;
- **scan (statistics)**: :func:`survey.scan.measure_exposure` in one thread, and as
  ``--jobs 1`` runs it (next read prefetched, each read's pixel passes shared with a helper
  thread, the FLT measured by another: pays only when a core is free); the FLT beside each
  IMA is measured too;
- **scan --jobs 1**: the whole command in-process, catalog transactions included;
- **scan --jobs 2**: exposures per second of the whole command with two worker processes
  (their start-up included), in a subprocess that also reports the workers' peak RSS.

Peak memory per worker is the max RSS of a fresh process that imports the scanner and scans
one file (``measure_exposure``), next to the RSS after the imports alone. The load average
before and after is printed: the machine is shared, so compare numbers of one run only.

Run: ``python benchmarks/bench_scan.py [--files 10] [--repeat 3] [--dir DIR]``. The synthetic
IMAs (``survey.simulate``, F105W STEP200 NSAMP 16, ≈168 MB each) are written to DIR (kept and
reused) or to a temporary folder.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]

_PEAK = """
import json, sys
def hwm():  # peak RSS of this address space (VmHWM; ru_maxrss would survive the exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
from survey.scan.measure import measure_exposure
from survey.scan.runner import _freeze_gc
_freeze_gc()
base = hwm()
for path in sys.argv[1:]:
    measure_exposure(path)
print(json.dumps({"base_mb": base, "peak_mb": hwm()}))
"""

_JOBS = """
import json, resource, sys, time
from survey.scan import runner
stored = []
original = runner._store
def timed_store(*args, **kwargs):
    original(*args, **kwargs)
    stored.append(time.perf_counter())
runner._store = timed_store
t = time.perf_counter()
summary = runner.scan_paths([sys.argv[1]], catalog=sys.argv[2], jobs=int(sys.argv[3]),
                            rescan=True, freeze_gc=True)
wall = time.perf_counter() - t
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"wall": wall, "stored": [x - t for x in stored],
                  "scanned": summary.scanned, "worker_peak_mb": children}))
"""


_SIMULATE = """
import sys
from survey.simulate import ProgramConfig, simulate_program
config = ProgramConfig(n_visits=1, exposures_per_visit=int(sys.argv[2]), size=1024, seed=42)
simulate_program(sys.argv[1], config)
"""


def make_files(folder: Path, n: int) -> list[Path]:
    """``n`` full-frame F105W STEP200 NSAMP-16 IMAs in ``folder/program<n>`` (reused)."""
    out = folder / f"program{n}"
    if not out.exists():  # in a subprocess: this one stays small for the memory numbers
        subprocess.run([sys.executable, "-c", _SIMULATE, str(out), str(n)], check=True)
    return sorted(out.glob("*_ima.fits"))[:n]


def _subprocess_json(script: str, *args: object) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout)


def _warm(paths: list[Path]) -> None:
    for path in paths:
        with open(path, "rb") as stream:
            while stream.read(1 << 24):
                pass


def _timed(fn, paths: list[Path]) -> tuple[float, float]:
    """(wall, cpu) seconds per file of fn(path) over all paths."""
    wall, cpu = time.perf_counter(), time.process_time()
    for path in paths:
        fn(path)
    n = len(paths)
    return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="keep/reuse the IMAs here")
    args = parser.parse_args(argv)

    tmp = tempfile.TemporaryDirectory() if args.dir is None else None
    folder = Path(tmp.name) if tmp else args.dir
    folder.mkdir(parents=True, exist_ok=True)
    paths = make_files(folder, args.files)
    _warm(paths)
    load_before = os.getloadavg()
    # memory and --jobs 2 first, in subprocesses, while this process is still small
    peak = _subprocess_json(_PEAK, *paths[:2])
    jobs2 = _subprocess_json(_JOBS, paths[0].parent, folder / "jobs2.duckdb", 2)

    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from astropy.io import fits
    from wfc3tools import pstat

    from survey.scan.leanfits import open_lean
    from survey.scan.measure import measure_exposure
    from survey.scan.runner import scan_paths
    from survey.wfc3ir.fitsio import open_exposure

    def notebook(path: Path) -> None:
        region = {"col_slice": (5, 1019), "row_slice": (5, 1019), "stat": "midpt", "plot": False}
        pstat(str(path), units="counts", **region)
        pstat(str(path), units="rate", **region)

    def floor(path: Path) -> None:
        with open_exposure(path) as exposure:
            for k in range(1, exposure.nsamp):
                exposure.sci(k)

    def floor_astropy(path: Path) -> None:
        with fits.open(path, memmap=True) as hdul:
            for m in range(1, hdul[0].header["NSAMP"]):
                np.array(hdul["SCI", m].data, dtype=np.float32)

    def scanner_reader(path: Path) -> None:
        with open_lean(path) as exposure:
            for k in range(1, exposure.nsamp):
                exposure.sci(k)
                exposure.dq(k)

    def stats_single(path: Path) -> None:
        measure_exposure(path, prefetch=False, threads=1)

    def stats(path: Path) -> None:
        measure_exposure(path, prefetch=True, threads=2)

    per_file = {
        "notebook (pstat counts + rate)": notebook,
        "read floor (open_exposure, 15 SCI)": floor,
        "read floor (astropy memmap, 15 SCI)": floor_astropy,
        "scanner's reader (lean open, 15 SCI + DQ)": scanner_reader,
        "scan statistics, one thread": stats_single,
        "scan statistics, as --jobs 1 runs (prefetch + helper threads)": stats,
    }
    for fn in per_file.values():  # compile/cache-load everything once
        fn(paths[0])
    gc.collect()  # as `survey scan` does (runner._freeze_gc): the same for every method here
    gc.freeze()
    catalog = folder / "bench.duckdb"
    best: dict[str, tuple[float, float]] = {}

    def keep(name: str, wall: float, cpu: float) -> None:
        old = best.get(name, (np.inf, np.inf))
        best[name] = (min(old[0], wall), min(old[1], cpu))

    for _ in range(args.repeat):
        for name, fn in per_file.items():
            keep(name, *_timed(fn, paths))
        wall, cpu = time.perf_counter(), time.process_time()
        scan_paths([paths[0].parent], catalog=catalog, jobs=1, rescan=True, freeze_gc=True)
        n = len(paths)
        keep(
            "survey scan --jobs 1 (catalog included)",
            (time.perf_counter() - wall) / n,
            (time.process_time() - cpu) / n,
        )

    floor_wall, floor_cpu = best["read floor (open_exposure, 15 SCI)"]
    single_wall, single_cpu = best["scan statistics, one thread"]
    scan_wall, _ = best["scan statistics, as --jobs 1 runs (prefetch + helper threads)"]
    note_wall, note_cpu = best["notebook (pstat counts + rate)"]
    whole_wall, _ = best["survey scan --jobs 1 (catalog included)"]
    n2 = jobs2["scanned"]
    results = {
        "speedup_vs_notebook_wall": note_wall / scan_wall,
        "speedup_vs_notebook_single_thread": note_cpu / single_cpu,
        "ratio_to_read_floor_wall": scan_wall / floor_wall,
        "ratio_to_read_floor_single_thread": single_cpu / floor_cpu,
        "ratio_to_read_floor_single_thread_wall": single_wall / floor_wall,
        "whole_scan_ratio_to_read_floor_wall": whole_wall / floor_wall,
        "jobs2_exposures_per_s": n2 / jobs2["wall"],
        # steady state: the files written after the first two (one per worker), over the time
        # since the second one was written
        "jobs2_exposures_per_s_after_startup": (n2 - 2)
        / (jobs2["stored"][-1] - jobs2["stored"][1]),
        "jobs1_exposures_per_s": 1.0 / whole_wall,
        "worker_peak_mb_jobs2": jobs2["worker_peak_mb"],
        "peak_mb_one_scan": peak["peak_mb"],
        "baseline_mb_after_imports": peak["base_mb"],
        "load_average_before": load_before[0],
        "load_average_after": os.getloadavg()[0],
    }
    lines = [
        f"{len(paths)} full-frame IMAs (1024², NSAMP 16), warm cache, best of {args.repeat}",
        "",
        "| method | wall ms/file | CPU ms/file |",
        "|---|---|---|",
        *(f"| {k} | {w * 1e3:.1f} | {c * 1e3:.1f} |" for k, (w, c) in best.items()),
        "",
        f"scan vs notebook: {results['speedup_vs_notebook_wall']:.1f}x faster (wall), "
        f"{results['speedup_vs_notebook_single_thread']:.1f}x (one thread, CPU)",
        f"scan / read floor: {results['ratio_to_read_floor_wall']:.2f}x (wall), "
        f"{results['ratio_to_read_floor_single_thread']:.2f}x (one thread, CPU); whole command "
        f"{results['whole_scan_ratio_to_read_floor_wall']:.2f}x (wall)",
        f"--jobs 1: {results['jobs1_exposures_per_s']:.1f} exposures/s; --jobs 2: {n2} files "
        f"in {jobs2['wall']:.2f} s = {results['jobs2_exposures_per_s']:.1f} exposures/s, "
        f"{results['jobs2_exposures_per_s_after_startup']:.1f}/s once running (first file "
        f"written after {jobs2['stored'][0]:.1f} s: worker start-up)",
        f"peak RSS of a scanning process: {peak['peak_mb']:.0f} MB ({peak['base_mb']:.0f} MB "
        f"after imports); --jobs 2 workers: {jobs2['worker_peak_mb']:.0f} MB max",
        f"load average (1 min) before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} cores",
    ]
    print("\n".join(lines))
    if tmp:
        tmp.cleanup()
    return results


if __name__ == "__main__":
    main()
