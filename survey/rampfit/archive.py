"""Turn an archive IMA's DQ back into what CRCORR = PERFORM expects (domain reference §7.10).

An archive IMA went through CRCORR, which only ORs flags into the DQ of the reads: 8192 on each
CR read and every later read, 4 on spikes, 32 on every read of an UNSTABLE pixel. Refitting with
those flags in place would skip every read after an old "CR" (a lone-8192 interval is dropped) and
every old spike, so they must go. What can be told apart from static (BPIXTAB) flags, which DQICORR
ORs into *every* read:

- 8192: only CRCORR sets it in the IR pipeline → cleared in every read.
- 4 on only some reads → a CRCORR spike → cleared; 4 on every read is static → kept.
- 32 on only some reads → the last-read UNSTABLE edge case → cleared. 32 on every read is either
  static or CRCORR's UNSTABLE: kept, unless the caller passes the BPIXTAB's own 32 mask, in which
  case it is cleared where the BPIXTAB lacks it (exact).
- 256, 2048, 512 and every other bit are left alone.
"""

from __future__ import annotations

import numpy as np

__all__ = ["reset_crcorr_flags"]

_DETECTORPROB = 4
_UNSTABLE = 32
_DATAREJECT = 8192


def reset_crcorr_flags(
    read_dq: np.ndarray, *, bpixtab_unstable: np.ndarray | None = None
) -> np.ndarray:
    """A copy of ``read_dq`` (nsamp, ...) with the flags of an earlier CRCORR run removed.

    ``bpixtab_unstable``: optional boolean pixel mask, True where the exposure's BPIXTAB itself
    flags 32. When given, 32 present on every read is cleared where the mask is False. The input
    is never modified; the result is uint16.
    """
    dq = np.asarray(read_dq)
    if dq.ndim < 1 or dq.shape[0] < 1:
        raise ValueError(f"read_dq must be a (nsamp, ...) stack, got shape {dq.shape}")
    out = dq.view(np.uint16) if dq.dtype == np.int16 else dq.astype(np.uint16, copy=False)
    out = out.copy()
    out &= np.uint16(~_DATAREJECT & 0xFFFF)
    _clear_partial(out, _DETECTORPROB)
    on_all_reads = _clear_partial(out, _UNSTABLE)
    if bpixtab_unstable is not None:
        mask = np.broadcast_to(np.asarray(bpixtab_unstable, dtype=bool), out.shape[1:])
        clear = on_all_reads & ~mask
        out[:, clear] &= np.uint16(~_UNSTABLE & 0xFFFF)
    return out


def _clear_partial(dq: np.ndarray, bit: int) -> np.ndarray:
    """Clear ``bit`` in place where only some reads carry it; return where all reads do."""
    has = (dq & bit) != 0
    on_all = has.all(axis=0)
    partial = has.any(axis=0) & ~on_all
    dq[:, partial] &= np.uint16(~bit & 0xFFFF)
    return on_all
