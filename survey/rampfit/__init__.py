"""Up-the-ramp fitting of WFC3/IR MULTIACCUM stacks: the calwf3 CRCORR port, on plain arrays.

- :func:`fit_ramps` — cridcalc's fit with cosmic-ray rejection (§7 of the domain reference).
- :func:`reset_crcorr_flags` — undo an archive CRCORR run's flags in an IMA DQ stack (§7.10).
"""

from .archive import reset_crcorr_flags
from .cridcalc import ERROR_MODELS, WEIGHTINGS, RampFitResult, ZerothRead, fit_ramps

__all__ = [
    "ERROR_MODELS",
    "WEIGHTINGS",
    "RampFitResult",
    "ZerothRead",
    "fit_ramps",
    "reset_crcorr_flags",
]
