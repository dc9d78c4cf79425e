"""The scan's fixed parameters: one frozen object, recorded with every catalog and export."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from ..wfc3ir.dq import SKY_BAD_BITS

__all__ = ["ALGORITHM_VERSION", "ScanParameters"]

#: Bumped whenever a statistic's definition changes: a catalog made with another version is
#: rescanned file by file (see :meth:`ScanParameters.digest`).
ALGORITHM_VERSION = 2  # 2: left/right box means, the FLT notebook σ


@dataclass(frozen=True)
class ScanParameters:
    """How the per-read statistics are computed (units: σ of the quantity, pixels).

    Attributes:
        sky_bad_bits: DQ bits that exclude a pixel from the sky statistics of a read
            (4|16|32|256|512; cosmic-ray flags 8192 are *not* excluded, since a He I ramp makes
            calwf3 flag nearly every pixel).
        mask_sigma: source-mask threshold above the sky, in σ of the 3×3-smoothed last read.
        mask_grow: the source mask is grown by this many pixels (square).
        clip_sigma: σ-clipping half-width, in units of 1.4826·MAD.
        clip_iters: at most this many clipping iterations.
        bins_per_sigma: histogram bins per σ of the read (bin width ≈ σ/bins_per_sigma).
        box_columns: full-frame columns (0-based, half-open, reference border included) of the
            left and right scattered-light boxes; scaled by nx/1024 for subarrays.
    """

    sky_bad_bits: int = SKY_BAD_BITS
    mask_sigma: float = 3.0
    mask_grow: int = 3
    clip_sigma: float = 3.0
    clip_iters: int = 10
    bins_per_sigma: float = 32.0
    box_columns: tuple[int, int, int, int] = (40, 240, 760, 960)
    algorithm: int = ALGORITHM_VERSION

    def as_dict(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    def digest(self) -> str:
        """Short hash of the parameters: a catalog row made with other ones is rescanned."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]
