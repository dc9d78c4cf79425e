"""The twelve WFC3/IR MULTIACCUM sample sequences, as data.

Read times are seconds since the zeroth read for a full-frame exposure (WFC3 IHB Table 7.8,
3 decimals; domain reference §3). An exposure with NSAMP < 16 uses the first NSAMP entries.

These tables exist for the synthetic-data generator and for sanity checks. Readers never look
times up here: they always trust ``SAMPTIME`` from the file, because subarrays, rounding and
non-standard sequences all differ.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FRAME_TIME", "MAX_NSAMP", "SEQUENCES", "read_times"]

MAX_NSAMP = 16

_TABLE = """
RAPID    0 2.932 5.865 8.797 11.729 14.661 17.594 20.526 23.458 26.391 29.323 32.255 35.187 38.120 41.052 43.984
SPARS5   0 2.932 7.933 12.934 17.935 22.935 27.936 32.937 37.938 42.938 47.939 52.940 57.941 62.942 67.942 72.943
SPARS10  0 2.932 12.933 22.934 32.935 42.936 52.937 62.938 72.939 82.940 92.941 102.942 112.943 122.944 132.945 142.946
SPARS25  0 2.932 27.933 52.933 77.934 102.934 127.935 152.935 177.936 202.936 227.937 252.937 277.938 302.938 327.939 352.940
SPARS50  0 2.932 52.933 102.933 152.934 202.934 252.935 302.935 352.935 402.936 452.936 502.937 552.937 602.938 652.938 702.939
SPARS100 0 2.932 102.933 202.933 302.933 402.934 502.934 602.934 702.935 802.935 902.935 1002.936 1102.936 1202.936 1302.936 1402.937
SPARS200 0 2.932 202.932 402.932 602.932 802.933 1002.933 1202.933 1402.933 1602.933 1802.933 2002.933 2202.933 2402.933 2602.933 2802.933
STEP25   0 2.932 5.865 8.797 11.729 24.230 49.230 74.231 99.231 124.232 149.232 174.233 199.233 224.234 249.234 274.235
STEP50   0 2.932 5.865 8.797 11.729 24.230 49.230 99.231 149.231 199.232 249.232 299.232 349.233 399.233 449.234 499.234
STEP100  0 2.932 5.865 8.797 11.729 24.230 49.230 99.231 199.231 299.231 399.232 499.232 599.232 699.233 799.233 899.233
STEP200  0 2.932 5.865 8.797 11.729 24.230 49.230 99.231 199.231 399.231 599.231 799.231 999.231 1199.231 1399.231 1599.231
STEP400  0 2.932 5.865 8.797 11.729 24.230 49.230 99.231 199.231 399.231 799.232 1199.232 1599.233 1999.233 2399.234 2799.235
"""

#: Sequence name -> full-frame read times (s), 16 entries starting with the zeroth read.
SEQUENCES: dict[str, tuple[float, ...]] = {
    row.split()[0]: tuple(float(v) for v in row.split()[1:]) for row in _TABLE.strip().splitlines()
}

#: Duration of one RAPID read (s) by raw/IMA array size. Full frame and 266 are read off real
#: headers (2.932291; 0.277815 in ibxy01z8q). 138 is the pstat docstring's first read time
#: (0.112705). 522 and 74 are the IHB's rounded RAPID times (unverified to more digits).
FRAME_TIME = {1024: 2.932291, 522: 0.853, 266: 0.277815, 138: 0.112705, 74: 0.061}


def read_times(samp_seq: str, nsamp: int, size: int = 1024) -> np.ndarray:
    """Read times (s since the zeroth read) for a sequence, NSAMP and raw array size.

    RAPID-length steps use the exact frame time (2.932291 s full frame), which reproduces the
    header values of real files (e.g. STEP50 5.864582, 8.796873). Subarrays keep the sequence's long steps but read faster: every RAPID-length step of the
    full-frame table (2.932 s) becomes the subarray's frame time. This is a model for synthetic
    data, good to the frame time; real subarray files always carry their own SAMPTIME.
    """
    if samp_seq not in SEQUENCES:
        raise ValueError(f"unknown sample sequence {samp_seq!r}; known: {', '.join(SEQUENCES)}")
    if not 2 <= nsamp <= MAX_NSAMP:
        raise ValueError(f"NSAMP must be 2..{MAX_NSAMP}, got {nsamp}")
    if size not in FRAME_TIME:
        raise ValueError(f"array size must be one of {sorted(FRAME_TIME)}, got {size}")
    full = np.asarray(SEQUENCES[samp_seq][:nsamp])
    steps = np.diff(full)
    rapid = np.isclose(steps, FRAME_TIME[1024], atol=2e-3)
    steps = np.where(rapid, FRAME_TIME[size], steps)
    return np.concatenate([[0.0], np.cumsum(steps)])
