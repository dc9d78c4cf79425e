"""Parity with archive CRCORR runs on real IMAs (calwf3 3.5.2, SQ256SUB, NSAMP 4, RAPID).

The archive IMA carries the flags of its CRCORR run. Resetting them (§7.10) and refitting must
flag the same reads: the detection is unit-free per pixel, so it does not matter that calwf3 ran
on DN/s before the flat field and we run on the archive's flat-fielded e⁻/s.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from survey.rampfit import ZerothRead, fit_ramps, reset_crcorr_flags

pytestmark = pytest.mark.realdata

FILES = ["ibxy01z8q_ima.fits", "ibxy07p9q_ima.fits", "iccz11q4q_ima.fits"]


def read_ima(path):
    """Time-ordered counts, errors, times, DQ (science area) and the zeroth read of an IMA."""
    with fits.open(path) as hdul:
        nsamp = hdul[0].header["NSAMP"]
        imsets = [nsamp - k for k in range(nsamp)]  # read k is imset NSAMP - k
        trim = (slice(5, -5), slice(5, -5))
        sci = np.array([hdul["SCI", m].data[trim] for m in imsets], np.float32)
        err = np.array([hdul["ERR", m].data[trim] for m in imsets], np.float32)
        dq = np.array([hdul["DQ", m].data[trim] for m in imsets]).view(np.uint16)
        times = np.array([hdul["SCI", m].header["SAMPTIME"] for m in imsets])
        zeroth = ZerothRead(sci[0], err[0], dq[0], hdul[0].header["SAMPZERO"])
    t32 = times.astype(np.float32)[:, None, None]
    return sci * t32, err * t32, times, dq, zeroth


@pytest.mark.parametrize("name", FILES)
def test_refit_reproduces_archive_crcorr_flags(real_data, name):
    counts, err, times, archive_dq, zeroth = read_ima(real_data / name)
    result = fit_ramps(counts, err, times, reset_crcorr_flags(archive_dq), zeroth=zeroth)
    for bit in (8192, 4):
        ours = (result.read_dq & bit) != 0
        theirs = (archive_dq & bit) != 0
        assert (ours == theirs).all(axis=0).mean() >= 0.98
    assert np.isfinite(result.rate).all() and (result.err > 0).all()
