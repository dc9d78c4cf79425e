"""Benchmark of the CRCORR-port core (:func:`survey.rampfit.fit_ramps`) on full-frame ramps.

Synthetic 1024² × 16-read STEP200 stacks (float32, e⁻), two cases:
- ``clean``: 0.5 e⁻/s sky, 1% of pixels hit by one cosmic ray;
- ``hei``: the same sky plus He I rising by 1.5 e⁻/s between 30% and 70% of the exposure, where
  calwf3 flags nearly every pixel (1–4 "CRs" each).

The first call (numba compile or cache load) is timed separately; then the best of ``--repeat``
warm calls is reported, the peak traced memory of one more call (numpy allocations: the outputs,
48 MiB for a full frame) and the process's max RSS (inputs included). The machine is shared:
run it when idle, and compare with ``--threads 1``.

Run: ``python benchmarks/bench_rampfit_core.py [--size 1024] [--repeat 3] [--threads N]``
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np

__all__ = ["main", "simulate_ramps"]

SKY = 0.5
HEI_AMPLITUDE = 1.5
READNOISE = 20.0
DARK = 0.036


def _cumulative_sky(t: np.ndarray, total: float, hei: bool) -> np.ndarray:
    """Expected sky counts since the zeroth read at times ``t`` (e⁻)."""
    counts = SKY * t
    if hei:
        t0, t1 = 0.3 * total, 0.7 * total
        ramp = np.clip(t - t0, 0.0, t1 - t0)
        # ∫ of a rate rising linearly from 0 to A over [t0, t1], then constant A
        counts = counts + HEI_AMPLITUDE * (ramp**2 / (2 * (t1 - t0)) + np.clip(t - t1, 0.0, None))
    return counts


def simulate_ramps(size: int, hei: bool, seed: int = 1):
    """(counts, counts_err, times, dq) for a size² STEP200 16-read exposure."""
    from survey.wfc3ir.sequences import read_times

    rng = np.random.default_rng(seed)
    times = read_times("STEP200", 16, 1024)
    npix = size * size
    expected = _cumulative_sky(times, times[-1], hei) + DARK * times
    increments = rng.poisson(np.diff(expected)[:, None], size=(15, npix)).astype(np.float32)
    signal = np.zeros((16, npix), np.float32)
    np.cumsum(increments, axis=0, out=signal[1:])
    signal -= (DARK * times).astype(np.float32)[:, None]  # DARKCORR removes the mean dark
    hits = rng.random(npix) < 0.01
    hit_read = rng.integers(1, 16, npix)
    signal += np.where(hits & (np.arange(16)[:, None] >= hit_read), np.float32(1000.0), 0)
    reads = signal + rng.normal(0.0, READNOISE / np.sqrt(2), (16, npix)).astype(np.float32)
    counts = reads - reads[0]
    err = np.sqrt(READNOISE**2 + np.abs(counts)).astype(np.float32)
    err[0] = 0
    dq = np.zeros((16, npix), np.uint16)
    shape = (16, size, size)
    return counts.reshape(shape), err.reshape(shape), times, dq.reshape(shape)


def _time_case(name: str, size: int, repeat: int) -> None:
    from survey.rampfit import fit_ramps

    counts, err, times, dq = simulate_ramps(size, hei=(name == "hei"))
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        result = fit_ramps(counts, err, times, dq)
        best = min(best, time.perf_counter() - start)
    # Peak memory in a separate call: tracemalloc slows numpy allocations down.
    tracemalloc.start()
    fit_ramps(counts, err, times, dq)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    flagged = ((result.read_dq & 8192) != 0).any(axis=0).mean()
    unstable = ((result.dq & 32) != 0).sum()
    print(
        f"{name:6s} {size}²×16: core {best:.3f} s (best of {repeat}), peak numpy "
        f"{peak / 2**20:.0f} MiB; 8192 on {100 * flagged:.1f}% of pixels, {unstable} UNSTABLE, "
        f"median rate {np.median(result.rate):.4f} e-/s, std {np.std(result.rate):.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    import numba

    if args.threads:
        numba.set_num_threads(args.threads)
    start = time.perf_counter()
    from survey.rampfit import fit_ramps

    counts, err, times, dq = simulate_ramps(16, hei=False)
    fit_ramps(counts, err, times, dq)
    print(
        f"import + first call (compile or cache load): {time.perf_counter() - start:.2f} s; "
        f"numba {numba.__version__}, {numba.get_num_threads()} threads"
    )
    for name in ("clean", "hei"):
        _time_case(name, args.size, args.repeat)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process max RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
