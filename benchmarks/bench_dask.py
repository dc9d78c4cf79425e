"""Benchmark of ``survey scan`` on a Dask LocalCluster against the local process pool, on the
same files and the same number of workers: what distributing the work costs per file.

Each scan is a fresh ``scan_paths(..., rescan=True)`` in a subprocess (its own catalog, warm
page cache; best of ``--repeat``), reporting:

- **wall**: the whole scan, worker start-up included;
- **first result**: when the first file was committed (start-up plus one file);
- **steady ms/file**: (last − first commit) / (n − 1), the time per file once the workers
  run, which is what matters for 10⁵ files;
- **overhead ms/file**: steady ms/file minus the pool's.

Configurations: the ``spawn`` pool (``--jobs N``); ``--dask local`` (a LocalCluster started
and stopped by the scan); and a scan sent to an already running LocalCluster by address (the
cluster case: workers up, their numba kernels loaded by an earlier scan). Finally the bare
cost of the executor seam (:func:`survey.distributed.run_each` over 2,000 trivial tasks) and
of the single writer (``Catalog.write_result`` per file, in this process).

Run: ``python benchmarks/bench_dask.py [--files 40] [--size 266] [--jobs 2] [--full-frame 0]
[--repeat 2] [--dir DIR]``. The IMAs (``survey.simulate``, F105W STEP200 NSAMP 16) are written
to DIR (kept and reused) or to a temporary folder; ``--full-frame N`` adds N full-frame 1024²
IMAs (≈168 MB each).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]

_SCAN = """
import json, sys, time
from survey.scan import runner
stored = []
original = runner._store
def timed_store(*args, **kwargs):
    original(*args, **kwargs)
    stored.append(time.perf_counter())
runner._store = timed_store
catalog, jobs, dask, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
t = time.perf_counter()
summary = runner.scan_paths([folder], catalog=catalog, jobs=jobs, rescan=True, freeze_gc=True,
                            dask=None if dask == "-" else dask)
print(json.dumps({"wall": time.perf_counter() - t, "stored": [x - t for x in stored],
                  "failed": summary.failed}))
"""

_SIMULATE = """
import sys
from survey.simulate import ProgramConfig, simulate_program
n, size = int(sys.argv[2]), int(sys.argv[3])
config = ProgramConfig(n_visits=1, exposures_per_visit=n, size=size, seed=42, he_fraction=0.3)
simulate_program(sys.argv[1], config)
"""


def make_files(folder: Path, n: int, size: int) -> Path:
    """``n`` IMAs of ``size``² in ``folder/program<n>x<size>`` (made once, in a subprocess)."""
    out = folder / f"program{n}x{size}"
    if not out.exists():
        subprocess.run([sys.executable, "-c", _SIMULATE, str(out), str(n), str(size)], check=True)
    return out


def _scan(program: Path, catalog: Path, jobs: int, dask: str | None, repeat: int) -> dict:
    """Wall, first result and steady ms/file of the best of ``repeat`` fresh scans."""
    best: dict = {}
    for _ in range(repeat):
        catalog.unlink(missing_ok=True)
        args = [str(catalog), str(jobs), dask or "-", str(program)]
        done = subprocess.run(
            [sys.executable, "-c", _SCAN, *args], check=True, capture_output=True, text=True
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["failed"] == 0, result
        stored = result["stored"]
        result["first"] = stored[0]
        result["steady_ms"] = 1e3 * (stored[-1] - stored[0]) / max(1, len(stored) - 1)
        if not best or result["wall"] < best["wall"]:
            best = result
    return best


def _seam_cost(jobs: int, address: str, n: int = 2000) -> dict[str, float]:
    """µs per trivial task through :func:`run_each` on the pool and on the cluster."""
    import functools
    import operator

    from survey.distributed import Executor, run_each

    task = functools.partial(operator.mul, 2)
    costs = {}
    for name, executor in (("pool", Executor(jobs=jobs)), ("dask", Executor(dask=address))):
        list(run_each(task, list(range(50)), executor, on_error=print))  # warm up
        start = time.perf_counter()
        list(run_each(task, list(range(n)), executor, on_error=print))
        costs[name] = 1e6 * (time.perf_counter() - start) / n
    return costs


def _writer_cost(program: Path, tmp: Path, rounds: int = 3) -> float:
    """Best ms per file of the client's commit (``Catalog.write_result``) of these files'
    results: what caps a cluster's throughput with one writer."""
    from survey.scan.catalog import Catalog
    from survey.scan.files import file_info
    from survey.scan.measure import measure_exposure
    from survey.scan.params import ScanParameters

    params = ScanParameters()
    files = sorted(program.glob("*_ima.fits"))
    results = [(measure_exposure(path, params), file_info(path)) for path in files]
    best = float("inf")
    with Catalog(tmp / "writer.duckdb") as catalog:
        for _ in range(rounds):  # the later rounds replace rows, as a rescan does
            start = time.perf_counter()
            for result, info in results:
                catalog.write_result(result, info, params)
            best = min(best, (time.perf_counter() - start) / len(results))
    return 1e3 * best


def _rows(program: Path, tmp: Path, jobs: int, address: str, repeat: int) -> list[tuple]:
    runs = [
        (f"process pool, --jobs {jobs}", None),
        (f"--dask local (LocalCluster of {jobs}, started by the scan)", "local"),
        ("--dask tcp://… (a running LocalCluster, warm)", address),
    ]
    _scan(program, tmp / "warm.duckdb", jobs, address, 1)  # its workers load the kernels
    return [(label, _scan(program, tmp / "c.duckdb", jobs, dask, repeat)) for label, dask in runs]


def _print(title: str, rows: list[tuple]) -> None:
    pool = rows[0][1]["steady_ms"]
    print(f"\n{title}")
    print("| configuration | wall s | first result s | steady ms/file | overhead ms/file |")
    print("|---|---|---|---|---|")
    for label, r in rows:
        extra = r["steady_ms"] - pool
        print(
            f"| {label} | {r['wall']:.2f} | {r['first']:.2f} | {r['steady_ms']:.1f} "
            f"| {extra:+.1f} |"
        )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--size", type=int, default=266)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--full-frame", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=None, help="keep/reuse the IMAs here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        sets = [(f"{args.files} IMAs of {args.size}²", make_files(folder, args.files, args.size))]
        if args.full_frame:
            sets.append((f"{args.full_frame} full-frame IMAs", make_files(folder, args.full_frame,
                                                                           1024)))  # fmt: skip
        from survey.distributed import dask_client

        results = {}
        with dask_client("local", args.jobs) as client:
            address = client.scheduler.address
            for title, program in sets:
                rows = _rows(program, Path(tmp), args.jobs, address, args.repeat)
                _print(f"{title}, 16 reads, {args.jobs} workers", rows)
                results[title] = rows
            seam = _seam_cost(args.jobs, address)
        writer_ms = _writer_cost(sets[-1][1], Path(tmp))
        pool_us, dask_us = seam["pool"], seam["dask"]
        print(f"\nexecutor seam, trivial task: pool {pool_us:.0f} µs, Dask {dask_us:.0f} µs")
        print(f"single writer, {sets[-1][0]}: {writer_ms:.1f} ms per file commit")
        return {"scans": results, "seam_us": seam, "writer_ms": writer_ms}


if __name__ == "__main__":
    main()
