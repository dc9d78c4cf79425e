"""Configuration of a synthetic WFC3/IR program: what to observe and which physics to inject.

Three small frozen dataclasses hold the physics with documented defaults
(:class:`PhysicsConfig`, :class:`SceneConfig`, :class:`OrbitConfig`) and one holds the
program (:class:`ProgramConfig`). Every number that shapes the data lives here, so a test or
a demo can change one effect without touching the generator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..errors import SurveyError
from ..wfc3ir.detector import SUBARRAY_SIZES
from ..wfc3ir.sequences import MAX_NSAMP, SEQUENCES
from .sky import TimeProfile

__all__ = [
    "FILTERS",
    "HE_PROFILES",
    "OrbitConfig",
    "PhysicsConfig",
    "PlantedCase",
    "ProgramConfig",
    "SceneConfig",
    "SimulationConfigError",
]

#: He I excess profiles the generator knows (``none`` = no excess).
HE_PROFILES = ("none", "rising", "decaying", "step")
#: Earth-limb light time shapes (it brightens toward occultation or fades after shadow exit).
SCATTERED_PROFILES = ("none", "rising", "decaying")

#: Zodiacal sky (e-/s, flat-fielded) per filter at the typical high-latitude level. F105W ≈ 0.5
#: and F140W ≈ 0.9 come from the domain reference §1; the others scale with bandwidth (F110W is
#: twice as wide as F105W) and are plausible, not calibrated. Grism values are the mean over
#: the detector of the dispersed zodi.
_ZODI = {
    "F098M": 0.35,
    "F105W": 0.50,
    "F110W": 0.95,
    "F125W": 0.60,
    "F140W": 0.90,
    "F160W": 0.62,
    "G102": 0.60,
    "G141": 1.10,
}
FILTERS = tuple(_ZODI)


class SimulationConfigError(SurveyError, ValueError):
    """A simulation setting is out of range (reported to the user as one line)."""


def _frozen(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class PhysicsConfig:
    """Sky and detector physics. Rates are e-/s, charges e-, times s.

    Detector defaults follow the domain reference §8 (full well ≈78,000 e-, dark ≈0.04 e-/s)
    and the real IMA ibxy01z8q for the static bad-pixel fractions (≈0.7% of pixels carry 32,
    ≈0.8% carry 16, ≈1% sit in 512 blobs). Per-amplifier gain and read noise come from
    :mod:`survey.wfc3ir.detector` (CCDTAB).
    """

    zodi: Mapping[str, float] = field(default_factory=lambda: _frozen(_ZODI))
    #: Relative visit-to-visit scatter of the zodi (uniform ±), e.g. with ecliptic latitude.
    zodi_scatter: float = 0.10
    dark_rate: float = 0.04
    #: Relative pixel-to-pixel scatter of the ordinary dark current.
    dark_scatter: float = 0.10
    #: rms (e-) of a fixed per-pixel offset between the zeroth and later reads (the IR reset /
    #: shading signature) that the dark reference removes. It matters: without it every C_k
    #: is a multiple of the gain and medians of early reads snap to that lattice.
    dark_pedestal: float = 2.0
    full_well: float = 78_000.0
    full_well_scatter: float = 0.02
    #: Pixel-to-pixel response (flat field) rms; calwf3 divides it out, noise stays.
    flat_rms: float = 0.02
    #: Cosmic rays: fraction of science pixels hit per second (2% per 1600 s).
    cr_rate: float = 0.02 / 1600.0
    cr_min: float = 50.0
    cr_max: float = 5000.0
    #: Static BPIXTAB-like bits and the fraction of pixels carrying each (512 comes as blobs).
    badpix_fractions: Mapping[int, float] = field(
        default_factory=lambda: _frozen({4: 0.0005, 8: 0.001, 16: 0.008, 32: 0.007, 64: 0.003})
    )
    blob_fraction: float = 0.01
    #: ZSIGCORR keeps the zero-read signal where it exceeds this many CDS read-noise sigmas.
    zsig_nsigma: float = 4.0
    #: He I peak excess drawn uniformly from this range when a case is planted (e-/s).
    he_amplitude: tuple[float, float] = (0.6, 2.5)
    #: Scattered-light peak excess (in-array maximum) drawn from this range (e-/s).
    scattered_amplitude: tuple[float, float] = (0.4, 3.0)
    #: Column (full-frame science coordinates) where limb light has fallen to half, and the
    #: softness of that edge: a logistic fall-off from the left edge (domain reference §1).
    scattered_edge: tuple[float, float] = (150.0, 350.0)
    scattered_softness: tuple[float, float] = (30.0, 90.0)
    #: He I and limb light vary on ~10-min timescales: no case in shorter exposures.
    min_tvb_exptime: float = 500.0


@dataclass(frozen=True)
class SceneConfig:
    """Astrophysical scene, counts per full-frame science area (scaled down for subarrays).

    Fluxes are total e-/s per source, drawn from power laws N(>F) ∝ F^-slope between the
    limits, so a sparse field has a handful of saturated stars in a 1600-s exposure.
    """

    n_stars: int = 150
    n_galaxies: int = 400
    crowded_stars: int = 6000
    crowded_galaxies: int = 600
    star_flux: tuple[float, float] = (2.0, 3.0e5)
    star_slope: float = 0.75
    galaxy_flux: tuple[float, float] = (1.0, 3.0e3)
    galaxy_slope: float = 1.0
    #: Effective radius range (pixels) of the galaxies, log-uniform.
    galaxy_radius: tuple[float, float] = (0.8, 6.0)
    #: PSF: pixel-integrated Gaussian core (sigma, px) plus a Moffat wing holding this fraction.
    psf_sigma: float = 0.6
    psf_wing_fraction: float = 0.25
    psf_wing_alpha: float = 2.0
    psf_wing_beta: float = 2.5


@dataclass(frozen=True)
class OrbitConfig:
    """HST orbit timing used by the planner (seconds)."""

    period: float = 5760.0  # ≈96-min orbit
    visibility: float = 3550.0  # target visible ≈59 min per orbit (non-CVZ, high declination)
    acquisition: float = 300.0  # guide-star acquisition at the start of a visit
    reacquisition: float = 240.0  # re-acquisition in later orbits
    gap: tuple[float, float] = (20.0, 35.0)  # between exposures in one orbit (buffer, filter)
    visit_spacing_days: tuple[float, float] = (1.0, 20.0)


@dataclass(frozen=True)
class PlantedCase:
    """An explicit background case for one exposure: visit and exposure are 0-based indices.

    Planted exactly as given, before (and instead of) any random case on that exposure, so a
    program can promise e.g. "He I rising in the second exposure of every orbit" whatever the
    seed draws. Profile times are seconds since the zeroth read.
    """

    visit: int
    exposure: int
    he: TimeProfile = field(default_factory=TimeProfile)
    scatter: TimeProfile = field(default_factory=TimeProfile)
    #: Limb-light fall-off (full-frame science column at half level, and its softness).
    scatter_edge: float = 250.0
    scatter_softness: float = 60.0

    def validate(self) -> None:
        _check(self.visit >= 0 and self.exposure >= 0,
               f"planted case indices must be >= 0, got visit {self.visit}, "
               f"exposure {self.exposure}")  # fmt: skip
        _check(self.he.kind in HE_PROFILES, f"unknown He I profile {self.he.kind!r}")
        _check(self.scatter.kind in SCATTERED_PROFILES,
               f"unknown limb-light profile {self.scatter.kind!r}; "
               f"known: {', '.join(SCATTERED_PROFILES)}")  # fmt: skip
        for name, profile in (("he", self.he), ("scatter", self.scatter)):
            _check(profile.amplitude >= 0 and profile.width >= 0,
                   f"planted {name} amplitude and width must be >= 0")  # fmt: skip


@dataclass(frozen=True)
class ProgramConfig:
    """A synthetic program: visits of dithered exposures, one ASN per visit.

    ``exposures_per_visit`` (an int, or one per visit), ``filters``, ``samp_seq`` and ``nsamp``
    are per visit and cycled when shorter than ``n_visits``; ``filter_mix`` (filter -> weight)
    instead draws each visit's filter from the seed. A grism visit (G102/G141) takes a short
    direct image (F105W/F140W, SPARS25, NSAMP 11) every third exposure when ``grism_direct``
    is set. ``crowded`` is True/False for every
    visit, or a fraction of crowded visits. ``he_fraction`` and ``scattered_fraction`` are the
    fractions of *eligible* exposures that get a case (rounded, at least one when positive and
    possible); ``he_profiles`` restricts which He I shapes are planted. ``cases`` plants
    explicit :class:`PlantedCase` s on chosen exposures (the random planting leaves those alone).
    """

    n_visits: int = 2
    exposures_per_visit: int | tuple[int, ...] = 4
    size: int = 1024
    seed: int = 0
    filters: tuple[str, ...] = ("F105W",)
    filter_mix: Mapping[str, float] | None = None
    samp_seq: tuple[str, ...] = ("STEP200",)
    nsamp: tuple[int, ...] = (16,)
    crowded: bool | float = False
    he_fraction: float = 0.35
    he_profiles: tuple[str, ...] = ("rising", "decaying", "step")
    scattered_fraction: float = 0.15
    proposid: int = 12242
    program_code: str | None = None
    start_mjd: float | None = None
    drizcorr: str = "PERFORM"
    grism_direct: bool = True
    cases: tuple[PlantedCase, ...] = ()
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    scene: SceneConfig = field(default_factory=SceneConfig)
    orbit: OrbitConfig = field(default_factory=OrbitConfig)

    def __post_init__(self) -> None:
        for name in ("filters", "samp_seq", "nsamp", "he_profiles"):
            value = getattr(self, name)
            # accept a single value or any sequence; store a tuple (hashable, immutable)
            value = (value,) if isinstance(value, str | int) else tuple(value)
            object.__setattr__(self, name, value)
        if not isinstance(self.exposures_per_visit, int):
            object.__setattr__(self, "exposures_per_visit", tuple(self.exposures_per_visit))
        object.__setattr__(self, "cases", tuple(self.cases))
        self.validate()

    def visit_exposures(self, visit: int) -> int:
        """Number of exposures of visit ``visit`` (``exposures_per_visit``, cycled)."""
        n = self.exposures_per_visit
        return n if isinstance(n, int) else n[visit % len(n)]

    @property
    def n_exposures(self) -> int:
        return sum(self.visit_exposures(v) for v in range(self.n_visits))

    def validate(self) -> None:
        """Raise :class:`SimulationConfigError` with a specific message for a bad setting."""
        _check(1 <= self.n_visits <= 1295, f"n_visits must be 1..1295, got {self.n_visits}")
        counts = self.exposures_per_visit
        counts = (counts,) if isinstance(counts, int) else counts
        _check(
            bool(counts) and all(1 <= n <= 99 for n in counts),
            f"exposures_per_visit must be 1..99, got {self.exposures_per_visit}",
        )
        _check(
            self.size in SUBARRAY_SIZES, f"size must be one of {SUBARRAY_SIZES}, got {self.size}"
        )
        _check(self.seed >= 0, f"seed must be a non-negative integer, got {self.seed}")
        names = list(self.filters) + list(self.filter_mix or {})
        unknown = [f for f in names if f not in self.physics.zodi]
        _check(not unknown, f"unknown filter(s) {unknown}; known: {', '.join(self.physics.zodi)}")
        _check(bool(self.filters), "filters must name at least one filter")
        if self.filter_mix is not None:
            weights = list(self.filter_mix.values())
            _check(bool(weights) and min(weights) >= 0 and sum(weights) > 0,
                   "filter_mix weights must be non-negative and not all zero")  # fmt: skip
        bad_seq = [s for s in self.samp_seq if s not in SEQUENCES]
        _check(not bad_seq, f"unknown sample sequence(s) {bad_seq}; known: {', '.join(SEQUENCES)}")
        bad_n = [n for n in self.nsamp if not 2 <= n <= MAX_NSAMP]
        _check(not bad_n, f"nsamp must be 2..{MAX_NSAMP}, got {bad_n}")
        bad_he = [p for p in self.he_profiles if p not in HE_PROFILES]
        _check(not bad_he, f"unknown He I profile(s) {bad_he}; known: {', '.join(HE_PROFILES)}")
        for name in ("he_fraction", "scattered_fraction"):
            value = getattr(self, name)
            _check(0.0 <= value <= 1.0, f"{name} must be within 0..1, got {value}")
        if not isinstance(self.crowded, bool):
            _check(
                0.0 <= self.crowded <= 1.0, f"crowded must be a bool or 0..1, got {self.crowded}"
            )
        _check(1 <= self.proposid <= 99999, f"proposid must be 1..99999, got {self.proposid}")
        code = self.program_code
        _check(code is None or (len(code) == 3 and code.isalnum() and code.islower()),
               f"program_code must be 3 lower-case letters/digits, got {code!r}")  # fmt: skip
        _check(
            self.drizcorr in ("PERFORM", "OMIT"),
            f"drizcorr must be PERFORM or OMIT, got {self.drizcorr!r}",
        )
        self._validate_cases()

    def _validate_cases(self) -> None:
        seen = set()
        for case in self.cases:
            _check(isinstance(case, PlantedCase), f"cases must be PlantedCase, got {case!r}")
            case.validate()
            where = (case.visit, case.exposure)
            _check(case.visit < self.n_visits and case.exposure < self.visit_exposures(case.visit),
                   f"planted case for visit {case.visit} exposure {case.exposure}: "
                   "no such exposure in the program")  # fmt: skip
            _check(where not in seen, f"two planted cases for visit {where[0]} exposure {where[1]}")
            seen.add(where)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise SimulationConfigError(message)
