"""End-to-end `survey fit` on full-frame 16-read IMAs: read, fit, write the FLT.

Usage: python benchmarks/bench_fit.py [--repeat 5] [--workdir DIR]

Makes two full-frame STEP200 NSAMP-16 IMAs with the simulator (a clean sky and a strong He I
ramp like ibohbfb9q, where nearly every pixel gets "CRs"), then measures, each in its own
process so that peak memory (max RSS) is that step's alone:

- the I/O floor: read the IMA and write an FLT-sized imset, no fitting;
- `fit_exposure` in a warm process (numba loaded, one warm-up call): the steady state of a
  batch over a whole program;
- the `survey fit` command in a fresh process (interpreter start, imports, numba cache load).

calwf3 3.7.3 takes ~2.9 s wall and ~290 MB for CRCORR on such a file (domain reference §8).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = r"""
import json, resource, sys, time
from pathlib import Path
mode, ima, out, repeat = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
from survey.fit import fit_exposure
from survey.wfc3ir.fitsio import FLTImage, read_ima, write_flt

def floor():
    ramp = read_ima(ima)
    s = ramp.science[1:]
    flt = FLTImage(ramp.sci[-1][s], ramp.err[-1][s], ramp.dq[-1][s], ramp.samp[-1][s].copy(),
                   ramp.time[-1][s].copy(), ramp.primary, ramp.read_headers[-1])
    write_flt(flt, out, overwrite=True)

def fit():
    fit_exposure(ima, out, overwrite=True)

step = floor if mode == "floor" else fit
step()  # warm-up: page cache, numba cache load, allocator
times = []
for _ in range(repeat):
    t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"times": times, "max_rss_mb": rss}))
"""


def make_inputs(workdir: Path) -> dict[str, Path]:
    from survey.simulate import IBOHBFB9Q_HE, exposure_spec, simulate_exposure
    from survey.wfc3ir.fitsio import write_ima

    paths = {"clean": workdir / "iclean01q_ima.fits", "He I": workdir / "ihelium1q_ima.fits"}
    for path, he in zip(paths.values(), (None, IBOHBFB9Q_HE), strict=True):
        if not path.exists():
            changes = {"he": he} if he else {}
            sim = simulate_exposure(exposure_spec(size=1024, zodi=0.47, seed=7, **changes))
            write_ima(sim.ramp, path)
    return paths


def run_worker(mode: str, ima: Path, out: Path, repeat: int) -> dict:
    cmd = [sys.executable, "-c", WORKER, mode, str(ima), str(out), str(repeat)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def run_cli(ima: Path, out: Path, repeat: int) -> tuple[list[float], float]:
    survey = Path(sys.executable).with_name("survey")
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(
            [str(survey), "fit", str(ima), "-o", str(out), "--overwrite"],
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - t0)
    return times, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_fit_"))
    workdir.mkdir(parents=True, exist_ok=True)
    inputs = make_inputs(workdir)
    out = workdir / "out_flt.fits"
    print(f"full frame 1024x1024, 16 reads, STEP200; best of {args.repeat} (median in brackets)")
    for label, ima in inputs.items():
        floor = run_worker("floor", ima, out, args.repeat)
        warm = run_worker("fit", ima, out, args.repeat)
        cli, _ = run_cli(ima, out, args.repeat)
        rows = [
            ("I/O floor (read IMA, write FLT)", floor["times"], floor["max_rss_mb"]),
            ("fit_exposure, warm process", warm["times"], warm["max_rss_mb"]),
            ("survey fit, fresh process", cli, None),
        ]
        print(f"\n{label}:")
        for name, times, rss in rows:
            ts = sorted(times)
            mem = f"  max RSS {rss:.0f} MB" if rss else ""
            print(f"  {name:34s} {ts[0]:.3f} s  [{ts[len(ts) // 2]:.3f} s]{mem}")
        ratio = sorted(warm["times"])[0] / sorted(floor["times"])[0]
        print(f"  fit / I/O floor (warm)             {ratio:.1f}x")


if __name__ == "__main__":
    main()
