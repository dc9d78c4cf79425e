"""WFC3/IR data-quality bits (hstcal ``wf3dq.h``), with their IR meanings.

DQ arrays are stored as int16 in FITS; in memory ``survey`` always holds them as uint16 so
that bit 32768 is not a sign bit.
"""

from __future__ import annotations

from enum import IntFlag

__all__ = ["DQ", "SDQFLAGS", "SKY_BAD_BITS"]


class DQ(IntFlag):
    SOFTERR = 1
    DATALOST = 2
    DETECTORPROB = 4  # bad detector pixel; also how CRCORR writes its spikes into the IMA
    BADZERO = 8
    HOTPIX = 16
    UNSTABLE = 32  # static (BPIXTAB) or set by CRCORR after 4 CRs
    WARMPIX = 64
    BADBIAS = 128
    SATPIXEL = 256  # propagated to every later read
    BADFLAT = 512
    SPIKE = 1024  # cridcalc-internal spike mark; input 1024 masks a read
    ZEROSIG = 2048
    RESERVED4096 = 4096
    DATAREJECT = 8192  # IR cosmic ray: on the CR read and every later read (IMA only)
    HIGH_CURVATURE = 16384  # internal: more than max CRs, written out as 32
    RESERVED2 = 32768


#: "Serious" DQ flags written by calwf3 in every IR SCI header (all bits to 16384 but 1024).
SDQFLAGS = 31743

#: Bits that disqualify a pixel from sky statistics (§4 of the domain reference).
SKY_BAD_BITS = int(DQ.DETECTORPROB | DQ.HOTPIX | DQ.UNSTABLE | DQ.SATPIXEL | DQ.BADFLAT)
